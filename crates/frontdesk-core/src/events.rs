//! Typed events for every change, emitted inside the change's transaction and
//! delivered to the host's listeners after it commits.
//!
//! How it works:
//! - Every change writes its audit row through [`crate::audit::record`]; that
//!   function also emits the change's [`Event`] (one per audit row, so bulk
//!   operations give one event per user). A few changes without an audit row
//!   per user (the users an import creates) call [`emit`] themselves.
//! - [`emit`] first asks every [`EventListener::before_commit`]; a [`Veto`]
//!   becomes [`CoreError::Vetoed`], which the service returns, so the
//!   transaction rolls back with the listener's message.
//! - The pending events travel on the connection: each pooled connection has
//!   an instrumentation ([`crate::db`]) that sees diesel's begin, commit and
//!   rollback with their depth. Events of a rolled back transaction (or
//!   savepoint) are dropped; those of the outermost commit become committed.
//!   An event emitted outside any transaction is committed at once. No
//!   service signature carries them.
//! - [`Checkout`] (from [`checkout`]) is a pooled connection that, when
//!   dropped, drains its committed events, returns the connection to the pool
//!   and only then calls [`EventListener::after_commit`] for each, in order:
//!   a listener never runs while frontdesk holds a pooled connection, and may
//!   read the database itself. A connection that goes back to the pool any
//!   other way loses its undelivered events with a warning in the log.
//!
//! The listeners live with the pool (its connection manager hands each
//! connection an `Arc<Listeners>`); `db::connect` makes a pool without any.

use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

use crate::db::{DbConnection, Pool, PooledConn};
use crate::error::CoreError;

/// One change, with the ids and the small data a consumer needs (never a
/// secret, token or hash) and `actor`: who made it (`user:7`, `api_key:3`,
/// `system`), as in the audit log.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A user was created.
    UserCreated {
        /// The user's id.
        user_id: i64,
        /// Who made the change (`user:7`, `api_key:3`, `system`), as in the audit log.
        actor: String,
    },
    /// A user's details changed (names, email, profile, local login).
    UserUpdated {
        /// The user's id.
        user_id: i64,
        /// Who made the change (`user:7`, `api_key:3`, `system`), as in the audit log.
        actor: String,
    },
    /// A user was suspended: they can no longer sign in.
    UserSuspended {
        /// The user's id.
        user_id: i64,
        /// Who made the change (`user:7`, `api_key:3`, `system`), as in the audit log.
        actor: String,
    },
    /// A suspended user was restored.
    UserRestored {
        /// The user's id.
        user_id: i64,
        /// Who made the change (`user:7`, `api_key:3`, `system`), as in the audit log.
        actor: String,
    },
    /// A user was deleted with all their rows.
    UserDeleted {
        /// The user's id.
        user_id: i64,
        /// Who made the change (`user:7`, `api_key:3`, `system`), as in the audit log.
        actor: String,
    },
    /// A user's staff role was given, changed or taken away.
    StaffRoleChanged {
        /// The user's id.
        user_id: i64,
        /// Who made the change (`user:7`, `api_key:3`, `system`), as in the audit log.
        actor: String,
    },
    /// One session or all of a user's, by an admin or by the user
    /// themselves (`actor` is then the user).
    SessionsRevoked {
        /// The user's id.
        user_id: i64,
        /// Who made the change (`user:7`, `api_key:3`, `system`), as in the audit log.
        actor: String,
    },
    /// A password reset link was sent to the user.
    PasswordResetSent {
        /// The user's id.
        user_id: i64,
        /// Who made the change (`user:7`, `api_key:3`, `system`), as in the audit log.
        actor: String,
    },
    /// The user changed their own password (their other sessions ended).
    PasswordChanged {
        /// The user's id.
        user_id: i64,
        /// Who made the change (`user:7`, `api_key:3`, `system`), as in the audit log.
        actor: String,
    },
    /// A password was set through an emailed reset link (every session of
    /// the user ended).
    PasswordReset {
        /// The user's id.
        user_id: i64,
        /// Who made the change (`user:7`, `api_key:3`, `system`), as in the audit log.
        actor: String,
    },
    /// The user's sign-in lockout was cleared.
    LockoutCleared {
        /// The user's id.
        user_id: i64,
        /// Who made the change (`user:7`, `api_key:3`, `system`), as in the audit log.
        actor: String,
    },
    /// A user joined an organization.
    MembershipAdded {
        /// The user's id.
        user_id: i64,
        /// The organization's id.
        organization_id: i64,
        /// Who made the change (`user:7`, `api_key:3`, `system`), as in the audit log.
        actor: String,
    },
    /// A member's role in an organization changed.
    MembershipRoleChanged {
        /// The user's id.
        user_id: i64,
        /// The organization's id.
        organization_id: i64,
        /// Who made the change (`user:7`, `api_key:3`, `system`), as in the audit log.
        actor: String,
    },
    /// A user left an organization, or was removed from it.
    MembershipRemoved {
        /// The user's id.
        user_id: i64,
        /// The organization's id.
        organization_id: i64,
        /// Who made the change (`user:7`, `api_key:3`, `system`), as in the audit log.
        actor: String,
    },
    /// A tag was put on a user.
    TagAssigned {
        /// The user's id.
        user_id: i64,
        /// The tag's id.
        tag_id: i64,
        /// Who made the change (`user:7`, `api_key:3`, `system`), as in the audit log.
        actor: String,
    },
    /// A tag was taken off a user.
    TagUnassigned {
        /// The user's id.
        user_id: i64,
        /// The tag's id.
        tag_id: i64,
        /// Who made the change (`user:7`, `api_key:3`, `system`), as in the audit log.
        actor: String,
    },
    /// A tag was created.
    TagCreated {
        /// The tag's id.
        tag_id: i64,
        /// Who made the change (`user:7`, `api_key:3`, `system`), as in the audit log.
        actor: String,
    },
    /// An invitation to an organization was created and its mail queued.
    InvitationSent {
        /// The invitation's id.
        invitation_id: i64,
        /// The organization's id.
        organization_id: i64,
        /// Who made the change (`user:7`, `api_key:3`, `system`), as in the audit log.
        actor: String,
    },
    /// An invitation's mail was queued again.
    InvitationResent {
        /// The invitation's id.
        invitation_id: i64,
        /// The organization's id.
        organization_id: i64,
        /// Who made the change (`user:7`, `api_key:3`, `system`), as in the audit log.
        actor: String,
    },
    /// A pending invitation was cancelled.
    InvitationCancelled {
        /// The invitation's id.
        invitation_id: i64,
        /// The organization's id.
        organization_id: i64,
        /// Who made the change (`user:7`, `api_key:3`, `system`), as in the audit log.
        actor: String,
    },
    /// An invitee accepted their invitation and is now a member.
    InvitationAccepted {
        /// The invitation's id.
        invitation_id: i64,
        /// The organization's id.
        organization_id: i64,
        /// The user's id.
        user_id: i64,
        /// Whether accepting created the account.
        created_account: bool,
        /// An imported account without a password got its first one.
        activated_account: bool,
        /// Who made the change (`user:7`, `api_key:3`, `system`), as in the audit log.
        actor: String,
    },
    /// An invitee declined their invitation.
    InvitationDeclined {
        /// The invitation's id.
        invitation_id: i64,
        /// The organization's id.
        organization_id: i64,
        /// Who made the change (`user:7`, `api_key:3`, `system`), as in the audit log.
        actor: String,
    },
    /// A CSV import was applied (each user it created has a `UserCreated`,
    /// each it changed in update mode a `UserUpdated`).
    ImportFinished {
        /// The organization imported into, or `None` for a site-wide import.
        organization_id: Option<i64>,
        /// Users the import created.
        created: i64,
        /// Users the import changed (update mode only).
        updated: i64,
        /// Rows the import skipped.
        skipped: i64,
        /// Who made the change (`user:7`, `api_key:3`, `system`), as in the audit log.
        actor: String,
    },
    /// An API key was created.
    ApiKeyCreated {
        /// The API key's id.
        api_key_id: i64,
        /// Who made the change (`user:7`, `api_key:3`, `system`), as in the audit log.
        actor: String,
    },
    /// An API key was revoked.
    ApiKeyRevoked {
        /// The API key's id.
        api_key_id: i64,
        /// Who made the change (`user:7`, `api_key:3`, `system`), as in the audit log.
        actor: String,
    },
    /// A group was created in an organization.
    GroupCreated {
        /// The group's id.
        group_id: i64,
        /// The organization's id.
        organization_id: i64,
        /// Who made the change (`user:7`, `api_key:3`, `system`), as in the audit log.
        actor: String,
    },
    /// A group's name or details changed.
    GroupUpdated {
        /// The group's id.
        group_id: i64,
        /// The organization's id.
        organization_id: i64,
        /// Who made the change (`user:7`, `api_key:3`, `system`), as in the audit log.
        actor: String,
    },
    /// A group was deleted.
    GroupDeleted {
        /// The group's id.
        group_id: i64,
        /// The organization's id.
        organization_id: i64,
        /// Who made the change (`user:7`, `api_key:3`, `system`), as in the audit log.
        actor: String,
    },
    /// A member was added to a group.
    GroupMemberAdded {
        /// The group's id.
        group_id: i64,
        /// The organization's id.
        organization_id: i64,
        /// The user's id.
        user_id: i64,
        /// Who made the change (`user:7`, `api_key:3`, `system`), as in the audit log.
        actor: String,
    },
    /// A member was removed from a group.
    GroupMemberRemoved {
        /// The group's id.
        group_id: i64,
        /// The organization's id.
        organization_id: i64,
        /// The user's id.
        user_id: i64,
        /// Who made the change (`user:7`, `api_key:3`, `system`), as in the audit log.
        actor: String,
    },
    /// A licence given to a member directly.
    LicenceAssigned {
        /// The user's id.
        user_id: i64,
        /// The organization's id.
        organization_id: i64,
        /// The licence's key.
        licence: String,
        /// Who made the change (`user:7`, `api_key:3`, `system`), as in the audit log.
        actor: String,
    },
    /// A member's direct licence taken away (one held through a group stays).
    LicenceUnassigned {
        /// The user's id.
        user_id: i64,
        /// The organization's id.
        organization_id: i64,
        /// The licence's key.
        licence: String,
        /// Who made the change (`user:7`, `api_key:3`, `system`), as in the audit log.
        actor: String,
    },
    /// A licence put on a group: its members hold it.
    GroupLicenceAdded {
        /// The group's id.
        group_id: i64,
        /// The organization's id.
        organization_id: i64,
        /// The licence's key.
        licence: String,
        /// Who made the change (`user:7`, `api_key:3`, `system`), as in the audit log.
        actor: String,
    },
    /// A licence was taken off a group; members keep it only if they hold it another way.
    GroupLicenceRemoved {
        /// The group's id.
        group_id: i64,
        /// The organization's id.
        organization_id: i64,
        /// The licence's key.
        licence: String,
        /// Who made the change (`user:7`, `api_key:3`, `system`), as in the audit log.
        actor: String,
    },
    /// A SCIM token was created for an organization.
    ScimTokenCreated {
        /// The SCIM token's id.
        scim_token_id: i64,
        /// The organization's id.
        organization_id: i64,
        /// Who made the change (`user:7`, `api_key:3`, `system`), as in the audit log.
        actor: String,
    },
    /// A SCIM token was revoked.
    ScimTokenRevoked {
        /// The SCIM token's id.
        scim_token_id: i64,
        /// The organization's id.
        organization_id: i64,
        /// Who made the change (`user:7`, `api_key:3`, `system`), as in the audit log.
        actor: String,
    },
    /// An organization was created.
    OrganizationCreated {
        /// The organization's id.
        organization_id: i64,
        /// Who made the change (`user:7`, `api_key:3`, `system`), as in the audit log.
        actor: String,
    },
    /// An organization's name, slug or settings changed.
    OrganizationUpdated {
        /// The organization's id.
        organization_id: i64,
        /// Who made the change (`user:7`, `api_key:3`, `system`), as in the audit log.
        actor: String,
    },
    /// An organization was deleted.
    OrganizationDeleted {
        /// The organization's id.
        organization_id: i64,
        /// Who made the change (`user:7`, `api_key:3`, `system`), as in the audit log.
        actor: String,
    },
    /// A sign-in with a password, or an invitee signed in by accepting.
    UserSignedIn {
        /// The user who signed in.
        user_id: i64,
    },
    /// A refused sign-in: `email` as typed, `user_id` when it names an account.
    LoginFailed {
        /// The email as typed.
        email: String,
        /// The account the email names, if any.
        user_id: Option<i64>,
        /// Why the sign-in was refused.
        reason: crate::login_attempts::Reason,
    },
    /// Any other audited change (an export, an outbox retry, a host
    /// extension's own action): the audit row's fields.
    Audited {
        /// The audit row's action, such as `users.export`.
        action: String,
        /// The audit row's target, `kind:id`.
        target: String,
        /// The organization the change belongs to, if any.
        organization_id: Option<i64>,
        /// Who made the change (`user:7`, `api_key:3`, `system`), as in the audit log.
        actor: String,
    },
}

impl Event {
    /// The event an audit row stands for. `target` is `kind:id`.
    pub fn from_audit(
        actor_label: &str,
        action: &str,
        target: &str,
        organization_id: Option<i64>,
        details: &Value,
    ) -> Event {
        let actor = actor_label.to_owned();
        let id_of = |kind: &str| {
            target
                .strip_prefix(kind)
                .and_then(|t| t.strip_prefix(':'))
                .and_then(|t| t.parse::<i64>().ok())
        };
        let num = |key: &str| details.get(key).and_then(Value::as_i64);
        let text = |key: &str| details.get(key).and_then(Value::as_str).map(str::to_owned);
        let flag = |key: &str| details.get(key).and_then(Value::as_bool).unwrap_or(false);
        let user = id_of("user");
        let inv = id_of("invitation");
        let org = id_of("organization");
        let event = match (action, user, inv, org, organization_id) {
            ("user.create", Some(user_id), ..) => Some(Event::UserCreated { user_id, actor }),
            ("user.update", Some(user_id), ..) => Some(Event::UserUpdated { user_id, actor }),
            ("user.suspend", Some(user_id), ..) => Some(Event::UserSuspended { user_id, actor }),
            ("user.restore", Some(user_id), ..) => Some(Event::UserRestored { user_id, actor }),
            ("user.delete", Some(user_id), ..) => Some(Event::UserDeleted { user_id, actor }),
            ("user.staff_role", Some(user_id), ..) => {
                Some(Event::StaffRoleChanged { user_id, actor })
            }
            ("session.revoke" | "user.sessions.revoke", Some(user_id), ..) => {
                Some(Event::SessionsRevoked { user_id, actor })
            }
            ("user.password_reset.send", Some(user_id), ..) => {
                Some(Event::PasswordResetSent { user_id, actor })
            }
            ("user.password.change", Some(user_id), ..) => {
                Some(Event::PasswordChanged { user_id, actor })
            }
            ("user.password.reset", Some(user_id), ..) => {
                Some(Event::PasswordReset { user_id, actor })
            }
            ("user.lockout.clear", Some(user_id), ..) => {
                Some(Event::LockoutCleared { user_id, actor })
            }
            ("membership.add", Some(user_id), _, _, Some(organization_id)) => {
                Some(Event::MembershipAdded {
                    user_id,
                    organization_id,
                    actor,
                })
            }
            ("membership.role", Some(user_id), _, _, Some(organization_id)) => {
                Some(Event::MembershipRoleChanged {
                    user_id,
                    organization_id,
                    actor,
                })
            }
            ("membership.remove", Some(user_id), _, _, Some(organization_id)) => {
                Some(Event::MembershipRemoved {
                    user_id,
                    organization_id,
                    actor,
                })
            }
            ("tag.assign", Some(user_id), ..) => num("tag").map(|tag_id| Event::TagAssigned {
                user_id,
                tag_id,
                actor,
            }),
            ("tag.unassign", Some(user_id), ..) => num("tag").map(|tag_id| Event::TagUnassigned {
                user_id,
                tag_id,
                actor,
            }),
            ("tag.create", ..) => id_of("tag").map(|tag_id| Event::TagCreated { tag_id, actor }),
            ("invitation.create", _, Some(invitation_id), _, Some(organization_id)) => {
                Some(Event::InvitationSent {
                    invitation_id,
                    organization_id,
                    actor,
                })
            }
            ("invitation.resend", _, Some(invitation_id), _, Some(organization_id)) => {
                Some(Event::InvitationResent {
                    invitation_id,
                    organization_id,
                    actor,
                })
            }
            ("invitation.cancel", _, Some(invitation_id), _, Some(organization_id)) => {
                Some(Event::InvitationCancelled {
                    invitation_id,
                    organization_id,
                    actor,
                })
            }
            ("invitation.decline", _, Some(invitation_id), _, Some(organization_id)) => {
                Some(Event::InvitationDeclined {
                    invitation_id,
                    organization_id,
                    actor,
                })
            }
            ("invitation.accept", _, Some(invitation_id), _, Some(organization_id)) => {
                num("user_id").map(|user_id| Event::InvitationAccepted {
                    invitation_id,
                    organization_id,
                    user_id,
                    created_account: flag("created_account"),
                    activated_account: flag("activated_account"),
                    actor,
                })
            }
            ("users.import", ..) => Some(Event::ImportFinished {
                organization_id,
                created: num("created").unwrap_or(0),
                updated: num("updated").unwrap_or(0),
                skipped: num("skipped").unwrap_or(0),
                actor,
            }),
            ("group.create", _, _, _, Some(organization_id)) => {
                id_of("group").map(|group_id| Event::GroupCreated {
                    group_id,
                    organization_id,
                    actor,
                })
            }
            ("group.update", _, _, _, Some(organization_id)) => {
                id_of("group").map(|group_id| Event::GroupUpdated {
                    group_id,
                    organization_id,
                    actor,
                })
            }
            ("group.delete", _, _, _, Some(organization_id)) => {
                id_of("group").map(|group_id| Event::GroupDeleted {
                    group_id,
                    organization_id,
                    actor,
                })
            }
            ("group.member.add", _, _, _, Some(organization_id)) => id_of("group")
                .zip(num("user_id"))
                .map(|(group_id, user_id)| Event::GroupMemberAdded {
                    group_id,
                    organization_id,
                    user_id,
                    actor,
                }),
            ("group.member.remove", _, _, _, Some(organization_id)) => id_of("group")
                .zip(num("user_id"))
                .map(|(group_id, user_id)| Event::GroupMemberRemoved {
                    group_id,
                    organization_id,
                    user_id,
                    actor,
                }),
            ("licence.assign", Some(user_id), _, _, Some(organization_id)) => {
                text("licence").map(|licence| Event::LicenceAssigned {
                    user_id,
                    organization_id,
                    licence,
                    actor,
                })
            }
            ("licence.unassign", Some(user_id), _, _, Some(organization_id)) => text("licence")
                .map(|licence| Event::LicenceUnassigned {
                    user_id,
                    organization_id,
                    licence,
                    actor,
                }),
            ("group.licence.add", _, _, _, Some(organization_id)) => id_of("group")
                .zip(text("licence"))
                .map(|(group_id, licence)| Event::GroupLicenceAdded {
                    group_id,
                    organization_id,
                    licence,
                    actor,
                }),
            ("group.licence.remove", _, _, _, Some(organization_id)) => id_of("group")
                .zip(text("licence"))
                .map(|(group_id, licence)| Event::GroupLicenceRemoved {
                    group_id,
                    organization_id,
                    licence,
                    actor,
                }),
            ("scim_token.create", _, _, _, Some(organization_id)) => {
                id_of("scim_token").map(|scim_token_id| Event::ScimTokenCreated {
                    scim_token_id,
                    organization_id,
                    actor,
                })
            }
            ("scim_token.revoke", _, _, _, Some(organization_id)) => {
                id_of("scim_token").map(|scim_token_id| Event::ScimTokenRevoked {
                    scim_token_id,
                    organization_id,
                    actor,
                })
            }
            ("api_key.create", ..) => {
                id_of("api_key").map(|api_key_id| Event::ApiKeyCreated { api_key_id, actor })
            }
            ("api_key.revoke", ..) => {
                id_of("api_key").map(|api_key_id| Event::ApiKeyRevoked { api_key_id, actor })
            }
            ("organization.create", _, _, Some(organization_id), _) => {
                Some(Event::OrganizationCreated {
                    organization_id,
                    actor,
                })
            }
            ("organization.rename" | "organization.domains", _, _, Some(organization_id), _) => {
                Some(Event::OrganizationUpdated {
                    organization_id,
                    actor,
                })
            }
            ("organization.delete", _, _, Some(organization_id), _) => {
                Some(Event::OrganizationDeleted {
                    organization_id,
                    actor,
                })
            }
            _ => None,
        };
        event.unwrap_or_else(|| Event::Audited {
            action: action.to_owned(),
            target: target.to_owned(),
            organization_id,
            actor: actor_label.to_owned(),
        })
    }
}

/// A listener's refusal of a change; the message is shown to whoever asked
/// for it (a flash on the pages, the problem's `detail` on the API).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Veto(pub String);

/// What the host implements to follow frontdesk's changes.
pub trait EventListener: Send + Sync + 'static {
    /// Inside the change's transaction, before it commits: a [`Veto`] rolls
    /// the whole change back. Must not block for long (the transaction holds
    /// its locks) and must not use the pool (its connection is busy).
    fn before_commit(&self, _event: &Event) -> Result<(), Veto> {
        Ok(())
    }

    /// After the change committed, with no pooled connection held.
    fn after_commit(&self, _event: &Event) {}
}

/// The listeners of one pool.
#[derive(Default, Clone)]
pub struct Listeners(Vec<Arc<dyn EventListener>>);

impl std::fmt::Debug for Listeners {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Listeners({})", self.0.len())
    }
}

impl Listeners {
    /// The given listeners, called in this order.
    pub fn new(listeners: Vec<Arc<dyn EventListener>>) -> Self {
        Listeners(listeners)
    }

    /// Adds a listener after the others.
    pub fn push(&mut self, listener: Arc<dyn EventListener>) {
        self.0.push(listener);
    }

    /// Whether there is no listener at all.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn veto(&self, event: &Event) -> Result<(), Veto> {
        self.0.iter().try_for_each(|l| l.before_commit(event))
    }

    /// Calls every listener's `after_commit` for each event, in order. A
    /// listener that panics is logged and does not stop the others.
    pub fn deliver(&self, events: &[Event]) {
        for event in events {
            for l in &self.0 {
                let run = std::panic::AssertUnwindSafe(|| l.after_commit(event));
                if std::panic::catch_unwind(run).is_err() {
                    // The event's kind only (its serialized tag): its
                    // fields may name an address.
                    let kind = serde_json::to_value(event)
                        .ok()
                        .and_then(|v| v["event"].as_str().map(str::to_owned))
                        .unwrap_or_default();
                    tracing::error!("frontdesk: an event listener panicked on a {kind} event");
                }
            }
        }
    }
}

/// The events a connection carries, kept by its instrumentation.
#[derive(Debug, Default)]
pub(crate) struct Buffer {
    listeners: Arc<Listeners>,
    depth: u32,
    /// Emitted inside the open transaction, with the depth they belong to.
    pending: Vec<(u32, Event)>,
    /// The outermost COMMIT was sent; they count once it went through (the
    /// connection is outside a transaction or began a new one).
    committing: Vec<Event>,
    committed: Vec<Event>,
}

impl Buffer {
    /// An empty buffer whose committed events go to `listeners`.
    pub fn new(listeners: Arc<Listeners>) -> Self {
        Buffer {
            listeners,
            ..Default::default()
        }
    }

    fn settle(&mut self) {
        self.committed.append(&mut self.committing);
    }

    pub(crate) fn begin(&mut self, depth: u32) {
        if depth == 1 {
            self.settle();
        }
        self.depth = depth;
    }

    pub(crate) fn commit(&mut self, depth: u32) {
        if depth <= 1 {
            self.committing.extend(
                std::mem::take(&mut self.pending)
                    .into_iter()
                    .map(|(_, e)| e),
            );
        } else {
            for (d, _) in self.pending.iter_mut().filter(|(d, _)| *d >= depth) {
                *d = depth - 1;
            }
        }
        self.depth = depth.saturating_sub(1);
    }

    pub(crate) fn rollback(&mut self, depth: u32) {
        // A failed COMMIT is followed by a rollback at depth 1.
        if depth <= 1 {
            self.committing.clear();
        }
        self.pending.retain(|(d, _)| *d < depth);
        self.depth = depth.saturating_sub(1);
    }

    fn push(&mut self, event: Event) {
        if self.depth == 0 {
            // After the last COMMIT went through: keep the order of emission.
            self.settle();
            self.committed.push(event);
        } else {
            self.pending.push((self.depth, event));
        }
    }

    /// Committed events and the listeners to give them to; what a
    /// transaction still holds open stays.
    pub(crate) fn take(&mut self) -> (Vec<Event>, Arc<Listeners>) {
        if self.depth == 0 {
            self.settle();
        }
        (std::mem::take(&mut self.committed), self.listeners.clone())
    }

    /// Drops everything (a connection going back to the pool with events
    /// nobody delivered); returns how many were lost.
    pub(crate) fn clear(&mut self) -> usize {
        let n = self.pending.len() + self.committing.len() + self.committed.len();
        self.pending.clear();
        self.committing.clear();
        self.committed.clear();
        n
    }
}

/// Emits `event` for the change being made on `conn`: asks the veto
/// listeners, then keeps it with the connection's transaction. Call it inside
/// the transaction that makes the change (next to its audit row; `audit::record`
/// already does). On a connection outside frontdesk's pool (no
/// instrumentation), or on a pool with no listeners, the event goes nowhere:
/// nothing would ever read it, and a long-held connection (an import of a
/// million rows) would otherwise keep every one until it is dropped.
pub fn emit(conn: &mut DbConnection, event: Event) -> Result<(), CoreError> {
    let Some(buffer) = listening(conn) else {
        tracing::debug!("frontdesk: event on a connection without listeners: {event:?}");
        return Ok(());
    };
    buffer
        .listeners
        .veto(&event)
        .map_err(|Veto(message)| CoreError::Vetoed(message))?;
    buffer.push(event);
    Ok(())
}

/// [`emit`] in two halves, for a change made by one statement: the
/// listeners' veto ([`Listeners`]' `before_commit`) before the statement is
/// sent, so that a veto leaves nothing written, and [`push_vetted`] once it
/// went through.
#[cfg(feature = "postgres")]
pub(crate) fn vet(conn: &mut DbConnection, event: &Event) -> Result<(), CoreError> {
    match listening(conn) {
        Some(buffer) => buffer
            .listeners
            .veto(event)
            .map_err(|Veto(message)| CoreError::Vetoed(message)),
        None => Ok(()),
    }
}

/// The second half of [`vet`]: the event of a change that went through.
#[cfg(feature = "postgres")]
pub(crate) fn push_vetted(conn: &mut DbConnection, event: Event) {
    if let Some(buffer) = listening(conn) {
        buffer.push(event);
    }
}

/// The event buffer of `conn` when its pool has listeners: where an event
/// goes (see [`emit`] for why none is kept otherwise).
fn listening(conn: &mut DbConnection) -> Option<&mut Buffer> {
    crate::db::event_buffer(conn).filter(|b| !b.listeners.is_empty())
}

/// Drains the committed events of `conn` (to deliver them after it went back
/// to the pool, with [`Listeners::deliver`]).
pub fn take_committed(conn: &mut DbConnection) -> (Vec<Event>, Arc<Listeners>) {
    match crate::db::event_buffer(conn) {
        Some(b) => b.take(),
        None => (Vec::new(), Arc::default()),
    }
}

/// A pooled connection that delivers its committed events when dropped:
/// first the connection goes back to the pool, then the listeners run.
pub struct Checkout {
    conn: Option<PooledConn>,
}

/// Takes a connection from the pool, as [`Checkout`].
pub fn checkout(pool: &Pool) -> Result<Checkout, CoreError> {
    pool.get()
        .map(|c| Checkout { conn: Some(c) })
        .map_err(|e| CoreError::Pool(e.to_string()))
}

/// Runs `f` on a pooled connection; the committed events are delivered after
/// the connection went back to the pool, before this returns.
pub fn run<T>(
    pool: &Pool,
    f: impl FnOnce(&mut DbConnection) -> Result<T, CoreError>,
) -> Result<T, CoreError> {
    let mut conn = checkout(pool)?;
    f(&mut conn)
}

impl std::ops::Deref for Checkout {
    type Target = DbConnection;
    fn deref(&self) -> &DbConnection {
        self.conn.as_ref().expect("connection present until drop")
    }
}

impl std::ops::DerefMut for Checkout {
    fn deref_mut(&mut self) -> &mut DbConnection {
        self.conn.as_mut().expect("connection present until drop")
    }
}

impl Drop for Checkout {
    fn drop(&mut self) {
        if let Some(mut conn) = self.conn.take() {
            let (events, listeners) = take_committed(&mut conn);
            drop(conn);
            listeners.deliver(&events);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(id: i64) -> Event {
        Event::UserDeleted {
            user_id: id,
            actor: "system".into(),
        }
    }

    fn ids(events: &[Event]) -> Vec<i64> {
        events
            .iter()
            .filter_map(|e| match e {
                Event::UserDeleted { user_id, .. } => Some(*user_id),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn rollback_drops_what_its_level_emitted_and_commit_keeps_the_rest_in_order() {
        let mut b = Buffer::default();
        b.push(ev(1)); // outside a transaction: committed at once
        b.begin(1);
        b.push(ev(2));
        b.begin(2);
        b.push(ev(3));
        b.rollback(2); // the savepoint's event goes
        b.begin(2);
        b.push(ev(4));
        b.commit(2); // released: belongs to the outer transaction now
        assert_eq!(ids(&b.take().0), vec![1], "nothing of an open transaction");
        b.commit(1);
        b.push(ev(5));
        assert_eq!(ids(&b.take().0), vec![2, 4, 5]);
        assert!(b.take().0.is_empty(), "drained once");
    }

    /// With no listener, nothing is kept: a connection held for a whole
    /// import of a million rows kept a million events (about 120 MB).
    #[test]
    fn a_pool_without_listeners_keeps_no_events() {
        struct Quiet;
        impl EventListener for Quiet {}
        let cases: [(Listeners, usize); 2] = [
            (Listeners::default(), 0),
            (Listeners::new(vec![Arc::new(Quiet)]), 2),
        ];
        for (listeners, kept) in cases {
            let path = std::env::temp_dir()
                .join(format!("frontdesk-events-{}-{kept}.db", std::process::id()));
            let url = format!("sqlite://{}", path.display());
            let pool =
                crate::db::connect_with(&url, 1, &Default::default(), listeners).expect("pool");
            let mut conn = pool.get().expect("connection");
            emit(&mut conn, ev(1)).expect("outside a transaction");
            diesel::Connection::transaction(&mut *conn, |c| emit(c, ev(2))).expect("commit");
            assert_eq!(take_committed(&mut conn).0.len(), kept);
            drop(conn);
            drop(pool);
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
            }
        }
    }

    #[test]
    fn a_failed_commit_and_a_rolled_back_transaction_deliver_nothing() {
        let mut b = Buffer::default();
        b.begin(1);
        b.push(ev(1));
        b.commit(1);
        b.rollback(1); // diesel rolls back when COMMIT fails
        b.begin(1);
        b.push(ev(2));
        b.rollback(1);
        assert!(b.take().0.is_empty());
        b.begin(1);
        b.push(ev(3));
        b.commit(1);
        b.begin(1); // the next transaction: the last COMMIT went through
        b.push(ev(4));
        assert_eq!(ids(&b.take().0), vec![3]);
        assert_eq!(b.clear(), 1, "the open transaction's event");
    }

    #[test]
    fn audit_rows_map_to_typed_events() {
        let e = Event::from_audit(
            "user:3",
            "membership.role",
            "user:9",
            Some(4),
            &serde_json::json!({}),
        );
        assert_eq!(
            e,
            Event::MembershipRoleChanged {
                user_id: 9,
                organization_id: 4,
                actor: "user:3".into()
            }
        );
        let e = Event::from_audit(
            "system",
            "invitation.accept",
            "invitation:5",
            Some(2),
            &serde_json::json!({"user_id": 8, "created_account": true}),
        );
        assert!(matches!(
            e,
            Event::InvitationAccepted {
                invitation_id: 5,
                user_id: 8,
                created_account: true,
                activated_account: false,
                ..
            }
        ));
        let e = Event::from_audit(
            "api_key:2",
            "licence.assign",
            "user:9",
            Some(4),
            &serde_json::json!({"licence": "pro"}),
        );
        assert_eq!(
            e,
            Event::LicenceAssigned {
                user_id: 9,
                organization_id: 4,
                licence: "pro".into(),
                actor: "api_key:2".into()
            }
        );
        let e = Event::from_audit(
            "user:1",
            "group.licence.remove",
            "group:5",
            Some(4),
            &serde_json::json!({"licence": "team", "group": "Support"}),
        );
        assert_eq!(
            e,
            Event::GroupLicenceRemoved {
                group_id: 5,
                organization_id: 4,
                licence: "team".into(),
                actor: "user:1".into()
            }
        );
        // A target that names no id, or an action frontdesk does not know
        // (a host extension's): the audit row's fields as they are.
        for (action, target) in [("user.suspend", "user:x"), ("billing.refund", "user:9")] {
            let e = Event::from_audit("user:1", action, target, None, &serde_json::json!({}));
            assert_eq!(
                e,
                Event::Audited {
                    action: action.into(),
                    target: target.into(),
                    organization_id: None,
                    actor: "user:1".into()
                }
            );
        }
    }
}
