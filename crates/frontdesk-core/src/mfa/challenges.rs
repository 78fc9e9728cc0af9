//! The step between the password and the second factor. Passing the password
//! gives a challenge: a 256-bit token (only its digest kept), valid for a few
//! minutes and a few wrong codes, used once. No session exists until the
//! challenge is used with a right factor.

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;

use crate::db::{Cached, DbConnection};
use crate::error::CoreResult;
use crate::login_attempts::{self, Method, Reason};
use crate::schema::mfa_challenges;
use crate::sessions::ClientInfo;
use crate::time::now;
use crate::tokens::{hash_token, SecretToken};

/// How long a challenge lives.
pub fn ttl() -> Duration {
    Duration::minutes(5)
}

/// Wrong codes a challenge takes before it dies (each also counts towards
/// the account's lockout).
pub const MAX_FAILURES: i32 = 5;

/// A live challenge.
#[derive(Debug, Clone, Queryable)]
pub struct Challenge {
    pub id: i64,
    pub user_id: i64,
    pub failures: i32,
    pub expires_at: NaiveDateTime,
}

/// Issues a challenge for a user who passed the first factor.
pub fn issue(conn: &mut DbConnection, user_id: i64) -> CoreResult<SecretToken> {
    let token = SecretToken::generate();
    let at = now();
    diesel::insert_into(mfa_challenges::table)
        .values((
            mfa_challenges::user_id.eq(user_id),
            mfa_challenges::token_hash.eq(token.hash()),
            mfa_challenges::expires_at.eq(at + ttl()),
            mfa_challenges::created_at.eq(at),
        ))
        .execute(conn)?;
    sweep_now_and_then(conn, at)?;
    Ok(token)
}

/// [`issue`] with the attempt that earned the challenge (`mfa_required`,
/// the row [`login_attempts::record_method`] would write), both or neither.
/// On PostgreSQL one autocommitted statement: a round trip there costs more
/// than the statements themselves, and two autocommitted inserts would
/// take two round trips and two commits (`mfa_bench`). On SQLite,
/// where a statement is a function call, the two inserts in one transaction.
pub fn issue_after_attempt(
    conn: &mut DbConnection,
    user_id: i64,
    email: &str,
    client: &ClientInfo,
    method: Method,
) -> CoreResult<SecretToken> {
    let DbConnection::Pg(pg) = conn else {
        return crate::db::write_transaction(conn, |conn| {
            login_attempts::record_method(
                conn,
                Some(user_id),
                email,
                client,
                Reason::MfaRequired,
                Some(method),
            )?;
            issue(conn, user_id)
        });
    };
    use diesel::sql_types::{BigInt, Nullable, Text, Timestamp};
    let token = SecretToken::generate();
    let at = now();
    let client = client.sanitized();
    Cached(
        diesel::sql_query(
            "WITH attempt AS (\
               INSERT INTO login_attempts \
                 (user_id, email, ip, user_agent, success, reason, created_at, method) \
               VALUES ($1, $2, $3, $4, FALSE, $5, $6, $7)) \
             INSERT INTO mfa_challenges (user_id, token_hash, expires_at, created_at) \
             VALUES ($1, $8, $9, $6) RETURNING id",
        )
        .bind::<BigInt, _>(user_id)
        .bind::<Text, _>(login_attempts::normalize(email))
        .bind::<Nullable<Text>, _>(client.ip)
        .bind::<Nullable<Text>, _>(client.user_agent)
        .bind::<Text, _>(Reason::MfaRequired.as_str())
        .bind::<Timestamp, _>(at)
        .bind::<Text, _>(method.as_str())
        .bind::<Text, _>(token.hash())
        .bind::<Timestamp, _>(at + ttl()),
    )
    .load::<Issued>(pg)?;
    sweep_now_and_then(conn, at)?;
    Ok(token)
}

/// The row [`issue_after_attempt`]'s statement answers (loaded, not
/// executed, so that its prepared form is kept: see [`Cached`]).
#[derive(diesel::QueryableByName)]
struct Issued {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    #[allow(dead_code)]
    id: i64,
}

/// Expired and used challenges are of no use to anyone: swept by one issue
/// in sixteen, off most sign-ins' path.
fn sweep_now_and_then(conn: &mut DbConnection, at: NaiveDateTime) -> CoreResult<()> {
    if rand::random::<u8>() >= 16 {
        return Ok(());
    }
    diesel::delete(
        mfa_challenges::table
            .filter(mfa_challenges::expires_at.lt(at - Duration::hours(1)))
            .or_filter(mfa_challenges::used_at.lt(at - Duration::hours(1))),
    )
    .execute(conn)?;
    Ok(())
}

/// The live challenge a token names (not used, not expired, not worn out).
pub fn find(conn: &mut DbConnection, token: &str) -> CoreResult<Option<Challenge>> {
    let at = now();
    Ok(mfa_challenges::table
        .filter(mfa_challenges::token_hash.eq(hash_token(token)))
        .filter(mfa_challenges::used_at.is_null())
        .filter(mfa_challenges::expires_at.gt(at))
        .filter(mfa_challenges::failures.lt(MAX_FAILURES))
        .select((
            mfa_challenges::id,
            mfa_challenges::user_id,
            mfa_challenges::failures,
            mfa_challenges::expires_at,
        ))
        .first(conn)
        .optional()?)
}

/// A user's confirmed authenticator apps as the second step reads them: the
/// factor's id and its sealed seed.
pub type SealedApp = (i64, Option<String>);

/// [`find`] with the challenge's user and their confirmed authenticator apps,
/// in one statement (one row per app; one row with none when there is none):
/// the code-checking second step needs all three.
pub fn find_with_user_and_apps(
    conn: &mut DbConnection,
    token: &str,
) -> CoreResult<Option<(Challenge, crate::users::User, Vec<SealedApp>)>> {
    use crate::schema::{mfa_factors, users};
    let at = now();
    let rows: Vec<(Challenge, crate::users::User, Option<SealedApp>)> = mfa_challenges::table
        .inner_join(users::table.on(users::id.eq(mfa_challenges::user_id)))
        .left_join(
            mfa_factors::table.on(mfa_factors::user_id
                .eq(mfa_challenges::user_id)
                .and(mfa_factors::kind.eq(super::Kind::Totp.as_str()))
                .and(mfa_factors::confirmed_at.is_not_null())),
        )
        .filter(mfa_challenges::token_hash.eq(hash_token(token)))
        .filter(mfa_challenges::used_at.is_null())
        .filter(mfa_challenges::expires_at.gt(at))
        .filter(mfa_challenges::failures.lt(MAX_FAILURES))
        .order(mfa_factors::id.asc())
        .select((
            (
                mfa_challenges::id,
                mfa_challenges::user_id,
                mfa_challenges::failures,
                mfa_challenges::expires_at,
            ),
            crate::users::User::as_select(),
            (mfa_factors::id, mfa_factors::secret).nullable(),
        ))
        .load(conn)?;
    let mut rows = rows.into_iter();
    let Some((challenge, user, first)) = rows.next() else {
        return Ok(None);
    };
    let apps = first.into_iter().chain(rows.filter_map(|r| r.2)).collect();
    Ok(Some((challenge, user, apps)))
}

/// Counts a wrong code against the challenge.
pub fn fail(conn: &mut DbConnection, id: i64) -> CoreResult<()> {
    Cached(
        diesel::update(mfa_challenges::table.filter(mfa_challenges::id.eq(id)))
            .set(mfa_challenges::failures.eq(mfa_challenges::failures + 1))
            .returning(mfa_challenges::id),
    )
    .load::<i64>(conn)?;
    Ok(())
}

/// Uses the challenge: true for exactly one caller, and only while it lives.
pub fn consume(conn: &mut DbConnection, id: i64) -> CoreResult<bool> {
    let at = now();
    let n = Cached(
        diesel::update(
            mfa_challenges::table
                .filter(mfa_challenges::id.eq(id))
                .filter(mfa_challenges::used_at.is_null())
                .filter(mfa_challenges::expires_at.gt(at))
                .filter(mfa_challenges::failures.lt(MAX_FAILURES)),
        )
        .set(mfa_challenges::used_at.eq(Some(at)))
        .returning(mfa_challenges::id),
    )
    .load::<i64>(conn)?
    .len();
    Ok(n == 1)
}
