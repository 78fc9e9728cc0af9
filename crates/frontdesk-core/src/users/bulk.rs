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
    Suspend {
        reason: String,
        until: Option<NaiveDateTime>,
    },
    Restore,
    SetLocalLogin(bool),
    AddTag(i64),
    RemoveTag(i64),
    RevokeSessions,
    Delete,
}

/// Applies `change` to every user of `ids`, all or nothing.
pub fn apply(
    conn: &mut DbConnection,
    actor: &Actor,
    ids: &[i64],
    change: &BulkChange,
) -> CoreResult<()> {
    crate::db::write_transaction(conn, |conn| {
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
            }
        }
        Ok(())
    })
}
