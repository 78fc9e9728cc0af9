//! On PostgreSQL, exact counts of the largest sets of users in constant time:
//! every user, and the users with one tag. An exact `count(*)` there reads
//! one index entry per user (35 ms for 1,000,000 on an idle 2-core machine),
//! more than a page of the users list may take.
//!
//! The counts live in `set_counts` (migration `set_counts`): statement-level
//! triggers on `users` and `user_tags` append one row per changed set with
//! the change, in the writer's transaction, whatever wrote (frontdesk, an
//! import, a cascade, the host's own SQL, `TRUNCATE`). A count is the sum of
//! its set's rows. Writers only append, so they never wait on one another;
//! readers fold a set's rows into one when there are many, under an advisory
//! lock so that two readers never fold the same rows. SQLite has no such
//! table: its `count(*)` over 1,000,000 users takes a few milliseconds.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Text};

use crate::db::{BackendKind, DbConnection};

/// A set whose size `set_counts` keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CountedSet {
    /// Every user.
    Users,
    /// The users with this tag.
    Tag(i64),
}

impl CountedSet {
    fn key(self) -> (&'static str, i64) {
        match self {
            CountedSet::Users => ("users", 0),
            CountedSet::Tag(id) => ("tag", id),
        }
    }
}

/// A set's rows past which a read folds them into one.
const FOLD_AFTER_ROWS: i64 = 64;

#[derive(QueryableByName)]
struct Sum {
    #[diesel(sql_type = BigInt)]
    n: i64,
    #[diesel(sql_type = BigInt)]
    rows: i64,
}

#[derive(QueryableByName)]
struct Locked {
    #[diesel(sql_type = Bool)]
    locked: bool,
}

/// The exact size of `set` on PostgreSQL, as of the caller's snapshot; `None`
/// on SQLite, which keeps no counts. Folds the set's rows into one when there
/// are more than [`FOLD_AFTER_ROWS`] of them; a fold that fails (a read-only
/// connection, say) is logged and left for a later read, the count stands.
pub fn count(conn: &mut DbConnection, set: CountedSet) -> QueryResult<Option<i64>> {
    if conn.kind() != BackendKind::Postgres {
        return Ok(None);
    }
    let (counted, key) = set.key();
    let sum = diesel::sql_query(
        "SELECT coalesce(sum(n), 0)::bigint AS n, count(*) AS rows \
         FROM set_counts WHERE counted = $1 AND key = $2",
    )
    .bind::<Text, _>(counted)
    .bind::<BigInt, _>(key)
    .get_result::<Sum>(conn)?;
    if sum.rows > FOLD_AFTER_ROWS {
        if let Err(e) = fold(conn, set) {
            tracing::warn!("frontdesk: set_counts not folded ({e}); counted without it");
        }
    }
    Ok(Some(sum.n))
}

/// Replaces `set`'s rows by one row with their sum (none when it is zero), in
/// one statement: a concurrent reader sees either all the old rows or the new
/// one, and a writer's rows committed meanwhile are not among those removed
/// (the statement only deletes the rows its snapshot sees). Skipped when
/// another session is folding the same set (the lock is per schema, so two
/// installations in one database do not share it); returns whether it folded.
pub fn fold(conn: &mut DbConnection, set: CountedSet) -> QueryResult<bool> {
    if conn.kind() != BackendKind::Postgres {
        return Ok(false);
    }
    let (counted, key) = set.key();
    conn.transaction(|c| {
        let locked = diesel::sql_query(
            "SELECT pg_try_advisory_xact_lock(hashtextextended(\
             current_schema() || '.set_counts.' || $1 || '.' || $2::text, 0)) AS locked",
        )
        .bind::<Text, _>(counted)
        .bind::<BigInt, _>(key)
        .get_result::<Locked>(c)?
        .locked;
        if !locked {
            return Ok(false);
        }
        diesel::sql_query(
            "WITH folded AS (\
                DELETE FROM set_counts WHERE counted = $1 AND key = $2 RETURNING n) \
             INSERT INTO set_counts (counted, key, n) \
             SELECT $1, $2, sum(n) FROM folded HAVING sum(n) <> 0",
        )
        .bind::<Text, _>(counted)
        .bind::<BigInt, _>(key)
        .execute(c)?;
        Ok(true)
    })
}
