//! One change applied to many users in one transaction (the admin users
//! list's bulk actions): each user gets the single-user service's checks,
//! audit row and event; one refused user (not visible, not allowed, a veto)
//! rolls the whole action back.

use chrono::NaiveDateTime;

use crate::authz::Actor;
use crate::db::DbConnection;
use crate::error::CoreResult;

/// What a bulk action does to each selected user.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BulkChange {
    /// Suspend each user (see [`crate::users::suspend`]).
    Suspend {
        /// The reason, shown to admins.
        reason: String,
        /// When the suspension ends by itself; `None` lasts until restored.
        until: Option<NaiveDateTime>,
    },
    /// Lift each user's suspension.
    Restore,
    /// Allow (`true`) or forbid (`false`) signing in with a password.
    SetLocalLogin(bool),
    /// Put this tag (its id) on each user.
    AddTag(i64),
    /// Take this tag (its id) off each user.
    RemoveTag(i64),
    /// End every session of each user.
    RevokeSessions,
    /// Delete each user for good.
    Delete,
    /// Into this group (its id); every user must be a member of the group's
    /// organization.
    AddToGroup(i64),
    /// Out of this group (its id); users not in it are left alone.
    RemoveFromGroup(i64),
    /// The licence `key` given directly in organization `org` (every user
    /// must be a member; refused past its seats).
    AssignLicence {
        /// The organization's id.
        org: i64,
        /// The licence's key.
        key: String,
    },
    /// The direct licence `key` taken away in `org` (a group's stays).
    UnassignLicence {
        /// The organization's id.
        org: i64,
        /// The licence's key.
        key: String,
    },
}

/// Applies `change` to every user of `ids`, all or nothing.
pub fn apply(
    conn: &mut DbConnection,
    actor: &Actor,
    ids: &[i64],
    change: &BulkChange,
) -> CoreResult<()> {
    crate::db::write_transaction(conn, |conn| {
        let group = match change {
            BulkChange::AddToGroup(g) | BulkChange::RemoveFromGroup(g) => {
                Some(crate::groups::visible(conn, actor, *g)?)
            }
            _ => None,
        };
        for &id in ids {
            match change {
                BulkChange::Suspend { reason, until } => {
                    super::suspend_until(conn, actor, id, reason, *until)?;
                }
                BulkChange::Restore => {
                    super::restore(conn, actor, id)?;
                }
                BulkChange::SetLocalLogin(on) => {
                    super::set_local_login(conn, actor, id, *on)?;
                }
                BulkChange::AddTag(tag) => crate::tags::assign(conn, actor, id, *tag)?,
                BulkChange::RemoveTag(tag) => crate::tags::unassign(conn, actor, id, *tag)?,
                BulkChange::RevokeSessions => {
                    crate::sessions::revoke_all_by_admin(conn, actor, id)?;
                }
                BulkChange::Delete => super::delete(conn, actor, id)?,
                BulkChange::AssignLicence { org, key } => {
                    let user = super::get_for(conn, actor, id, crate::authz::Action::View)?;
                    must_be_member(conn, &user, *org, "the organization")?;
                    crate::licences::assign_user(conn, actor, *org, id, key)?;
                }
                BulkChange::UnassignLicence { org, key } => {
                    super::get_for(conn, actor, id, crate::authz::Action::View)?;
                    crate::licences::unassign_user(conn, actor, *org, id, key)?;
                }
                BulkChange::AddToGroup(_) | BulkChange::RemoveFromGroup(_) => {
                    let g = group.as_ref().expect("loaded above");
                    let adding = matches!(change, BulkChange::AddToGroup(_));
                    group_change(conn, actor, g, id, adding)?;
                }
            }
        }
        Ok(())
    })
}

/// One user into or out of `group`: the user must be one the actor may see,
/// and, to join, a member of the group's organization (said by email).
fn group_change(
    conn: &mut DbConnection,
    actor: &Actor,
    group: &crate::groups::Group,
    id: i64,
    adding: bool,
) -> CoreResult<()> {
    let user = super::get_for(conn, actor, id, crate::authz::Action::View)?;
    let org = group.organization_id;
    if adding {
        must_be_member(conn, &user, org, "the group's organization")?;
        crate::groups::add_member(conn, actor, org, group.id, id)?;
    } else {
        crate::groups::remove_member(conn, actor, org, group.id, id)?;
    }
    Ok(())
}

/// A clear refusal naming the user when they are not a member of `org`.
fn must_be_member(
    conn: &mut DbConnection,
    user: &super::User,
    org: i64,
    what: &str,
) -> CoreResult<()> {
    let member = crate::organizations::roles_of(conn, user.id)?
        .iter()
        .any(|(o, _)| *o == org);
    if member {
        Ok(())
    } else {
        Err(crate::error::CoreError::Invalid {
            field: "ids",
            reason: format!(
                "{} is not a member of {what}; add them to it first",
                user.email
            ),
        })
    }
}
