//! An admin (page or API) creates a user: checked like an invitation (an
//! organization admin only into their own organization, below owner, within
//! its allowed email domains), created pending and unverified with its audit
//! row and `UserCreated` event, and mailed a single-use "set your password"
//! link (a password-reset token: hashed, expiring, a newer one kills it;
//! using it sets the password, verifies the address and activates the user),
//! all in one transaction.

use chrono::{Duration, NaiveDateTime};
use serde_json::{Map, Value};

use crate::authz::{can, Action, Actor, OrgRole, StaffRole, Target};
use crate::db::DbConnection;
use crate::error::{CoreError, CoreResult};
use crate::organizations::{self, Organization};
use crate::outbox::NewMail;
use crate::profile::{self, ProfileField};
use crate::tokens::SecretToken;
use crate::users::{self, NewUser, User};

/// The account an admin asks for.
#[derive(Debug, Clone, Default)]
pub struct NewAccount {
    /// The email address; it is trimmed, lower-cased and checked.
    pub email: String,
    /// The first name; may be empty.
    pub first_name: String,
    /// The last name; may be empty.
    pub last_name: String,
    /// The name to show instead of first and last name.
    pub display_name: Option<String>,
    /// Host-defined profile values, checked against the declared fields.
    pub profile: Map<String, Value>,
    /// The organization the user joins, and their role there.
    pub organization: Option<(i64, OrgRole)>,
    /// A staff role (only an actor who may grant staff roles may give one).
    pub staff_role: Option<StaffRole>,
    /// Groups of the organization the user joins (ids; only with an
    /// organization).
    pub groups: Vec<i64>,
}

/// What the set-password mail is told: the new user, the organization they
/// were added to (if any) with their role, the link's token and its expiry.
pub struct Welcome<'a> {
    /// The new user.
    pub user: &'a User,
    /// The organization they joined, with their role.
    pub organization: Option<(&'a Organization, OrgRole)>,
    /// The set-password link's token.
    pub token: &'a SecretToken,
    /// When the link stops working (UTC).
    pub expires_at: NaiveDateTime,
}

/// The created user and the organization they joined.
#[derive(Debug, Clone)]
pub struct Created {
    /// The new user.
    pub user: User,
    /// The organization they joined, if any.
    pub organization: Option<Organization>,
}

/// Loads the organization the actor wants to add a user to: one the actor
/// may not even see is reported as not found, like a missing one.
pub fn organization_for(
    conn: &mut DbConnection,
    actor: &Actor,
    org_id: i64,
) -> CoreResult<Organization> {
    if !can(actor, Action::View, &Target::Organization(org_id)) {
        return Err(CoreError::NotFound("organization"));
    }
    organizations::get(conn, org_id)
}

/// Creates the user and queues the set-password mail (`mail` renders it),
/// in one transaction; `ttl` is how long the link works.
pub fn create(
    conn: &mut DbConnection,
    actor: &Actor,
    declared: &[ProfileField],
    new: &NewAccount,
    ttl: Duration,
    mail: impl FnOnce(&Welcome<'_>) -> CoreResult<NewMail>,
) -> CoreResult<Created> {
    crate::db::write_transaction(conn, |conn| {
        let org = match new.organization {
            Some((id, role)) => Some((organization_for(conn, actor, id)?, role)),
            None => None,
        };
        // Authorization before the input is looked at, as for invitations.
        match &org {
            Some((o, role)) => crate::authz::authorize(
                actor,
                Action::GrantOrgRole(*role),
                &Target::Organization(o.id),
            )?,
            None => crate::authz::authorize(actor, Action::ManageSite, &Target::Site)?,
        }
        if new.staff_role.is_some() {
            crate::authz::authorize(actor, Action::GrantStaffRole, &Target::Site)?;
        }
        let email = crate::validate::normalize_email(&new.email)?;
        if let Some((o, _)) = &org {
            if !o.allows_email(&email) {
                return Err(CoreError::DomainNotAllowed);
            }
        }
        let profile = profile::validate(declared, &new.profile)?;
        let user = users::create(
            conn,
            actor,
            NewUser {
                email,
                first_name: new.first_name.clone(),
                last_name: new.last_name.clone(),
                display_name: new.display_name.clone(),
                staff_role: new.staff_role,
                profile,
                organization: new.organization,
                // Pending and unverified until the user sets their password.
                ..NewUser::default()
            },
        )?;
        match &org {
            Some((o, _)) => crate::groups::join_many(conn, actor, o.id, user.id, &new.groups)?,
            None if !new.groups.is_empty() => {
                return Err(CoreError::Invalid {
                    field: "groups",
                    reason: "need an organization (groups belong to one)".into(),
                })
            }
            None => {}
        }
        let organization = org.as_ref().map(|(o, r)| (o, *r));
        let sent = crate::password_resets::issue(conn, &user, ttl, |u, token, expires_at| {
            mail(&Welcome {
                user: u,
                organization,
                token,
                expires_at,
            })
        })?;
        debug_assert!(sent, "a new user has no earlier links");
        Ok(Created {
            user,
            organization: org.map(|(o, _)| o),
        })
    })
}
