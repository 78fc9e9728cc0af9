//! Callbacks the host implements to keep its own rows in step with frontdesk
//! (like Django's auth signals). Every method has an empty default; they run
//! after the change is committed, with no pooled connection held, whatever
//! made the change (pages, API, CLI, imports, background jobs): the hooks are
//! one [`EventListener`] ([`HooksListener`]) fed by [`crate::events`].

use std::sync::{Arc, OnceLock};

use crate::events::{Event, EventListener};
use crate::invitations::{Accepted, Invitation};
use crate::login_attempts::Reason;
use crate::users::User;

/// Callbacks the host implements to keep its own rows in step with
/// frontdesk. Each runs after the change is committed; a panic is logged
/// and does not stop the others.
pub trait Hooks: Send + Sync + 'static {
    /// A user signed in and got a session.
    fn user_signed_in(&self, _user: &User) {}
    /// `email` is what was typed; `user_id` is set when it names an account.
    fn login_failed(&self, _email: &str, _user_id: Option<i64>, _reason: Reason) {}
    /// A user was created, by any path.
    fn user_created(&self, _user: &User) {}
    /// A user was deleted; only the id is left.
    fn user_deleted(&self, _user_id: i64) {}
    /// An invitee accepted: `accepted.user` is the new or existing account,
    /// now a member of `accepted.organization_id` with `accepted.role`.
    fn invitation_accepted(&self, _accepted: &Accepted) {}
    /// An invitee declined their invitation.
    fn invitation_declined(&self, _invitation: &Invitation) {}
}

/// The hooks used when the host sets none.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoHooks;

impl Hooks for NoHooks {}

/// Delivers [`Event`]s to a [`Hooks`]: `UserCreated` (any path, an
/// invitation's new account too) → `user_created`, `UserDeleted` → `user_deleted`,
/// `InvitationAccepted` → `invitation_accepted`, `InvitationDeclined` →
/// `invitation_declined`, `UserSignedIn` → `user_signed_in`, `LoginFailed` →
/// `login_failed`. The hooks take rows, which it reads after the commit
/// through the pool given to [`HooksListener::attach`].
pub struct HooksListener {
    hooks: Arc<dyn Hooks>,
    pool: OnceLock<crate::db::Pool>,
}

impl HooksListener {
    /// A listener that calls `hooks`; give it the pool with
    /// [`HooksListener::attach`] before events flow.
    pub fn new(hooks: Arc<dyn Hooks>) -> Self {
        HooksListener {
            hooks,
            pool: OnceLock::new(),
        }
    }

    /// The pool the listener reads rows from (the one whose events it gets).
    pub fn attach(&self, pool: crate::db::Pool) {
        let _ = self.pool.set(pool);
    }

    fn read<T>(
        &self,
        f: impl FnOnce(&mut crate::db::DbConnection) -> crate::CoreResult<T>,
    ) -> Option<T> {
        let pool = self.pool.get()?;
        match crate::events::run(pool, f) {
            Ok(v) => Some(v),
            Err(e) => {
                tracing::error!("frontdesk: a hook's row could not be read: {e}");
                None
            }
        }
    }
}

impl EventListener for HooksListener {
    fn after_commit(&self, event: &Event) {
        match event {
            Event::UserCreated { user_id, .. } => {
                if let Some(user) = self.read(|c| crate::users::get(c, *user_id)) {
                    self.hooks.user_created(&user);
                }
            }
            Event::UserDeleted { user_id, .. } => self.hooks.user_deleted(*user_id),
            Event::UserSignedIn { user_id } => {
                if let Some(user) = self.read(|c| crate::users::get(c, *user_id)) {
                    self.hooks.user_signed_in(&user);
                }
            }
            Event::LoginFailed {
                email,
                user_id,
                reason,
            } => self.hooks.login_failed(email, *user_id, *reason),
            Event::InvitationDeclined { invitation_id, .. } => {
                if let Some(inv) = self.read(|c| invitation(c, *invitation_id)) {
                    self.hooks.invitation_declined(&inv);
                }
            }
            Event::InvitationAccepted {
                invitation_id,
                organization_id,
                user_id,
                created_account,
                activated_account,
                ..
            } => {
                let rows = self.read(|c| {
                    let inv = invitation(c, *invitation_id)?;
                    let user = crate::users::get(c, *user_id)?;
                    Ok((inv, user))
                });
                let Some((invitation, user)) = rows else {
                    return;
                };
                // A new account's `user_created` comes from its own
                // `UserCreated` event, emitted by the acceptance too.
                let role =
                    crate::OrgRole::parse(&invitation.role).unwrap_or(crate::OrgRole::Member);
                self.hooks.invitation_accepted(&Accepted {
                    activated_account: *activated_account,
                    created_account: *created_account,
                    organization_id: *organization_id,
                    role,
                    user,
                    invitation,
                });
            }
            _ => {}
        }
    }
}

fn invitation(conn: &mut crate::db::DbConnection, id: i64) -> crate::CoreResult<Invitation> {
    use diesel::prelude::*;
    Ok(crate::schema::invitations::table
        .find(id)
        .select(Invitation::as_select())
        .first(conn)?)
}
