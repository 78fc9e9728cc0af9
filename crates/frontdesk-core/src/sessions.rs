//! Sessions: rows in `sessions` keyed by the SHA-256 of the cookie token.

use diesel::prelude::*;

use crate::db::DbConnection;
use crate::error::CoreResult;
use crate::schema::sessions;
use crate::time::now;

/// Ends every live session of a user (but `except`), returning how many ended.
pub fn revoke_all_for_user(
    conn: &mut DbConnection,
    user_id: i64,
    reason: &str,
    except: Option<i64>,
) -> CoreResult<usize> {
    let mut q = diesel::update(sessions::table)
        .filter(sessions::user_id.eq(user_id))
        .filter(sessions::revoked_at.is_null())
        .into_boxed();
    if let Some(id) = except {
        q = q.filter(sessions::id.ne(id));
    }
    Ok(q.set((
        sessions::revoked_at.eq(Some(now())),
        sessions::revoked_reason.eq(Some(reason)),
    ))
    .execute(conn)?)
}
