//! The invitee's side: the preview behind the link, accepting (a new
//! account or an existing one) and declining.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;
use serde_json::json;

use crate::audit;
use crate::authz::{Actor, OrgRole};
use crate::db::DbConnection;
use crate::error::CoreError;
use crate::organizations::{self};
use crate::schema::{invitations, memberships, users as users_table};
use crate::time::now;
use crate::tokens::hash_token;
use crate::users::{self, NewUser, User};
use crate::validate::{self, MAX_NAME};

use super::*;

/// What the invitee's page shows before they decide. Reading never consumes
/// the token: mail scanners open links too.
#[derive(Debug, Clone, Serialize)]
pub struct InvitationPreview {
    /// The invitation's id.
    pub invitation_id: i64,
    /// The invited email.
    pub email: String,
    /// The organization it invites to.
    pub organization_id: i64,
    /// The organization's name.
    pub organization_name: String,
    /// The role the invitee gets.
    pub role: OrgRole,
    /// The name of the user who sent it, if a user did and still exists.
    pub inviter_name: Option<String>,
    /// The admin's personal message, if any.
    pub message: Option<String>,
    /// The names the admin gave, to fill the form in with.
    pub first_name: Option<String>,
    /// The invitee's last name as the admin gave it.
    pub last_name: Option<String>,
    /// When the link stops working (UTC).
    pub expires_at: NaiveDateTime,
    /// An account with the invited address exists: the invitee signs in to accept.
    pub account_exists: bool,
}

/// Looks a link up without changing anything.
pub fn preview(conn: &mut DbConnection, token: &str) -> InvitationResult<InvitationPreview> {
    let t = now();
    let inv = by_token(conn, token)?;
    let inv = match inv {
        Some(i) if i.status_at(t) == InvitationStatus::Pending => i,
        other => return Err(InvitationError::InvalidLink(problem_of(other.as_ref(), t))),
    };
    let org = organizations::get(conn, inv.organization_id)?;
    let inviter_name = match inv.invited_by {
        Some(uid) => users::get(conn, uid).ok().map(|u| u.name()),
        None => None,
    };
    let account_exists = users::find_by_email(conn, &inv.email)?.is_some()
        && account_to_activate(conn, &inv)?.is_none();
    Ok(InvitationPreview {
        invitation_id: inv.id,
        email: inv.email.clone(),
        organization_id: org.id,
        organization_name: org.name,
        role: inv.role(),
        inviter_name,
        message: inv.message.clone(),
        first_name: inv.first_name.clone(),
        last_name: inv.last_name.clone(),
        expires_at: inv.expires_at,
        account_exists,
    })
}

/// How the invitee accepts.
#[derive(Clone)]
pub enum Acceptance {
    /// No account yet: create one with these names and an already computed
    /// password hash (hash outside the transaction, off the async executor).
    NewAccount {
        /// The invitee's first name.
        first_name: String,
        /// The invitee's last name.
        last_name: String,
        /// The Argon2 hash of the chosen password (see [`crate::passwords::hash`]).
        password_hash: String,
    },
    /// Signed in already: add the membership to this account, whose email
    /// must be the invited one.
    ExistingUser {
        /// The signed-in user's id.
        user_id: i64,
    },
}

impl std::fmt::Debug for Acceptance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Acceptance::NewAccount { .. } => f.write_str("Acceptance::NewAccount(***)"),
            Acceptance::ExistingUser { user_id } => {
                write!(f, "Acceptance::ExistingUser({user_id})")
            }
        }
    }
}

/// The outcome of an accepted invitation, for the host's hooks and the sign-in.
#[derive(Debug, Clone)]
pub struct Accepted {
    /// The invitation, now accepted.
    pub invitation: Invitation,
    /// The member: the new account, or the existing one.
    pub user: User,
    /// Whether accepting created the account.
    pub created_account: bool,
    /// An existing account without a password (made by an import) got its
    /// first password by this acceptance.
    pub activated_account: bool,
    /// The organization joined.
    pub organization_id: i64,
    /// The role held there now.
    pub role: OrgRole,
}

/// Claims a pending, unexpired invitation by token as the first write of the
/// transaction, so of many simultaneous attempts exactly one gets the row.
pub(super) fn claim(
    conn: &mut DbConnection,
    token: &str,
    to: InvitationStatus,
    at: NaiveDateTime,
) -> InvitationResult<Invitation> {
    let claimed = diesel::update(invitations::table)
        .filter(invitations::token_hash.eq(hash_token(token.trim())))
        .filter(invitations::status.eq(InvitationStatus::Pending.as_str()))
        .filter(invitations::expires_at.gt(at))
        .set((
            invitations::status.eq(to.as_str()),
            invitations::updated_at.eq(at),
        ))
        .returning(invitations::all_columns)
        .get_result::<Invitation>(conn)
        .optional()?;
    match claimed {
        Some(inv) => Ok(inv),
        None => {
            let inv = by_token(conn, token)?;
            Err(InvitationError::InvalidLink(problem_of(inv.as_ref(), at)))
        }
    }
}

/// Accepts an invitation (the POST of the invitee's page): marks it accepted,
/// creates the account or adds the membership, all in one transaction. Only
/// one of any number of concurrent attempts succeeds; the rest get `InvalidLink`.
pub fn accept(
    conn: &mut DbConnection,
    token: &str,
    how: &Acceptance,
) -> InvitationResult<Accepted> {
    let names = match how {
        Acceptance::NewAccount {
            first_name,
            last_name,
            ..
        } => Some((
            validate::text("first_name", first_name, MAX_NAME)?,
            validate::text("last_name", last_name, MAX_NAME)?,
        )),
        Acceptance::ExistingUser { .. } => None,
    };
    crate::db::write_transaction(conn, |conn| {
        let t = now();
        let inv = claim(conn, token, InvitationStatus::Accepted, t)?;
        let role = inv.role();
        let mut activated_account = false;
        let (user, created_account) = match (how, names.as_ref()) {
            (Acceptance::NewAccount { password_hash, .. }, Some((first, last))) => {
                if users::find_by_email(conn, &inv.email)?.is_some() {
                    let Some(existing) = account_to_activate(conn, &inv)? else {
                        return Err(InvitationError::SignInRequired);
                    };
                    let user =
                        activate(conn, &existing, &inv, role, first, last, password_hash, t)?;
                    activated_account = true;
                    (user, false)
                } else {
                    let new = NewUser {
                        email: inv.email.clone(),
                        first_name: first.clone(),
                        last_name: last.clone(),
                        password_hash: Some(password_hash.clone()),
                        // The invitee proved they read mail sent to this address.
                        email_verified: true,
                        organization: Some((inv.organization_id, role)),
                        activated: true,
                        ..NewUser::default()
                    };
                    let user = match users::create(conn, &Actor::system(), new) {
                        Err(CoreError::DuplicateEmail(_)) => {
                            return Err(InvitationError::SignInRequired)
                        }
                        other => other?,
                    };
                    (user, true)
                }
            }
            (Acceptance::ExistingUser { user_id }, _) => {
                let user = users::get(conn, *user_id)?;
                if user.email != inv.email {
                    return Err(InvitationError::WrongAccount);
                }
                if user.is_suspended() {
                    return Err(CoreError::Forbidden.into());
                }
                let org = organizations::get(conn, inv.organization_id)?;
                if !org.allows_email(&user.email) {
                    return Err(CoreError::DomainNotAllowed.into());
                }
                organizations::insert_membership(conn, user.id, inv.organization_id, role)?;
                (user, false)
            }
            (Acceptance::NewAccount { .. }, None) => return Err(CoreError::Forbidden.into()),
        };
        let inv = diesel::update(invitations::table.find(inv.id))
            .set(invitations::accepted_user_id.eq(Some(user.id)))
            .returning(invitations::all_columns)
            .get_result::<Invitation>(conn)?;
        let skipped = super::groups::join_on_accept(conn, inv.organization_id, inv.id, user.id)?;
        let invitee = Actor::user(
            user.id,
            user.staff_role(),
            vec![(inv.organization_id, role)],
        );
        let mut details = json!({"email": inv.email, "role": role, "user_id": user.id, "created_account": created_account, "activated_account": activated_account});
        if !skipped.is_empty() {
            // Groups not joined: a licence they carry had no seat left.
            details["groups_skipped"] = json!(skipped);
        }
        audit::record(
            conn,
            &invitee,
            "invitation.accept",
            &format!("invitation:{}", inv.id),
            Some(inv.organization_id),
            details,
        )?;
        Ok(Accepted {
            organization_id: inv.organization_id,
            invitation: inv,
            user,
            created_account,
            activated_account,
            role,
        })
    })
}

/// The invitee of an imported account sets its first password: names and
/// password from the form, the address counts as verified, and the
/// membership is added unless the import made it already.
#[allow(clippy::too_many_arguments)]
pub(super) fn activate(
    conn: &mut DbConnection,
    user: &User,
    inv: &Invitation,
    role: OrgRole,
    first: &str,
    last: &str,
    password_hash: &str,
    t: NaiveDateTime,
) -> InvitationResult<User> {
    let n: i64 = memberships::table
        .find((user.id, inv.organization_id))
        .count()
        .get_result(conn)?;
    if n == 0 {
        let org = organizations::get(conn, inv.organization_id)?;
        if !org.allows_email(&user.email) {
            return Err(CoreError::DomainNotAllowed.into());
        }
        organizations::insert_membership(conn, user.id, inv.organization_id, role)?;
    }
    let profile = user.profile_map();
    let display = user.display_name.clone();
    diesel::update(users_table::table.find(user.id))
        // Only while it still has no password: two links used at once set one.
        .filter(users_table::password_hash.is_null())
        .set((
            users_table::first_name.eq(first),
            users_table::last_name.eq(last),
            users_table::password_hash.eq(Some(password_hash)),
            users_table::email_verified.eq(true),
            users_table::activated_at.eq(Some(t)),
            users_table::search_text.eq(users::search_text(
                &user.email,
                first,
                last,
                display.as_deref(),
                &profile,
            )),
            users_table::updated_at.eq(t),
        ))
        .execute(conn)
        .map_err(InvitationError::from)
        .and_then(|n| {
            if n == 1 {
                Ok(())
            } else {
                Err(InvitationError::SignInRequired)
            }
        })?;
    Ok(users::get(conn, user.id)?)
}

/// Declines an invitation (final: the link never works again).
pub fn decline(conn: &mut DbConnection, token: &str) -> InvitationResult<Invitation> {
    crate::db::write_transaction(conn, |conn| {
        let t = now();
        let inv = claim(conn, token, InvitationStatus::Declined, t)?;
        supersede_queued_mail(conn, inv.id, "the invitation was declined")?;
        audit::record(
            conn,
            &Actor::system(),
            "invitation.decline",
            &format!("invitation:{}", inv.id),
            Some(inv.organization_id),
            json!({"email": inv.email, "by": "invitee"}),
        )?;
        Ok(inv)
    })
}
