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
    /// The challenge's id.
    pub id: i64,
    /// The user who passed the first factor.
    pub user_id: i64,
    /// Wrong answers so far; too many end the challenge.
    pub failures: i32,
    /// When the challenge ends (UTC).
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
///
/// On PostgreSQL, outside a caller's transaction, the statement commits
/// without waiting for its WAL to reach the disk (`synchronous_commit` off
/// for this one transaction, set inside the statement): other connections
/// see it at once, but a server crash within a fraction of a second may
/// lose it, and then the user is asked for the password again. Nothing that
/// counts is lost that way: `mfa_required` is not a failure, and the second
/// step's own commits (the code taken, the failures, the session) wait for
/// the disk as every other commit does. The wait saved is one disk flush
/// per sign-in with a second step (`mfa_bench`).
pub fn issue_after_attempt(
    conn: &mut DbConnection,
    user_id: i64,
    email: &str,
    client: &ClientInfo,
    method: Method,
) -> CoreResult<SecretToken> {
    #[cfg(feature = "postgres")]
    #[allow(irrefutable_let_patterns)] // in a PostgreSQL-only build
    if let DbConnection::Pg(pg) = conn {
        use diesel::sql_types::{BigInt, Nullable, Text, Timestamp};
        let token = SecretToken::generate();
        let at = now();
        let client = client.sanitized();
        // Inside a caller's transaction the setting would hold for all of it.
        use diesel::connection::{AnsiTransactionManager, TransactionManager};
        let own_transaction = matches!(
            AnsiTransactionManager::transaction_manager_status_mut(pg).transaction_depth(),
            Ok(None)
        );
        Cached(
            diesel::sql_query(if own_transaction {
                "WITH attempt AS (\
                   INSERT INTO login_attempts \
                     (user_id, email, ip, user_agent, success, reason, created_at, method) \
                   VALUES ($1, $2, $3, $4, FALSE, $5, $6, $7)), \
                 no_flush AS (SELECT set_config('synchronous_commit', 'off', TRUE)) \
                 INSERT INTO mfa_challenges (user_id, token_hash, expires_at, created_at) \
                 SELECT $1, $8, $9, $6 FROM no_flush RETURNING id"
            } else {
                "WITH attempt AS (\
                   INSERT INTO login_attempts \
                     (user_id, email, ip, user_agent, success, reason, created_at, method) \
                   VALUES ($1, $2, $3, $4, FALSE, $5, $6, $7)) \
                 INSERT INTO mfa_challenges (user_id, token_hash, expires_at, created_at) \
                 VALUES ($1, $8, $9, $6) RETURNING id"
            })
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
        return Ok(token);
    }
    crate::db::write_transaction(conn, |conn| {
        login_attempts::record_method(
            conn,
            Some(user_id),
            email,
            client,
            Reason::MfaRequired,
            Some(method),
        )?;
        issue(conn, user_id)
    })
}

/// The row [`issue_after_attempt`]'s statement answers (loaded, not
/// executed, so that its prepared form is kept: see [`Cached`]).
#[cfg(feature = "postgres")]
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

/// What the code-checking second step reads before it checks a code.
pub(crate) struct Pending {
    pub challenge: Challenge,
    pub user: crate::users::User,
    /// The user's confirmed authenticator apps.
    pub apps: Vec<SealedApp>,
    /// The lockout counts for the user's email (as stored) and the IP.
    pub counts: login_attempts::Counts,
}

/// A live challenge with its user, their confirmed authenticator apps and
/// the lockout counts for the user's stored email and `ip` (window ending
/// at `at`), in one statement: one row per app, one with no app when there
/// is none. The second step needs all four before it checks a code, and on
/// PostgreSQL each round trip costs more than these reads (`mfa_bench`).
pub(crate) fn find_pending(
    conn: &mut DbConnection,
    token: &str,
    ip: Option<&str>,
    window: Duration,
    at: NaiveDateTime,
) -> CoreResult<Option<Pending>> {
    use diesel::sql_types::{Integer, Text, Timestamp};
    let ip = ip.filter(|ip| !ip.is_empty());
    let sql = format!(
        "SELECT c.id AS challenge_id, c.user_id AS challenge_user_id, \
           c.failures AS challenge_failures, c.expires_at AS challenge_expires_at, u.*, \
           f.id AS app_id, f.secret AS app_secret, {} \
         FROM mfa_challenges c JOIN users u ON u.id = c.user_id \
         LEFT JOIN mfa_factors f \
           ON f.user_id = c.user_id AND f.kind = $4 AND f.confirmed_at IS NOT NULL \
         WHERE c.token_hash = $1 AND c.used_at IS NULL AND c.expires_at > $2 \
           AND c.failures < $3 \
         ORDER BY f.id",
        login_attempts::counts_sql("u.email", ip.map(|_| "$6"), "$5")
    );
    let query = diesel::sql_query(crate::db::numbered_placeholders(conn, &sql))
        .bind::<Text, _>(hash_token(token))
        .bind::<Timestamp, _>(at)
        .bind::<Integer, _>(MAX_FAILURES)
        .bind::<Text, _>(super::Kind::Totp.as_str())
        .bind::<Timestamp, _>(at - window);
    // One of two fixed texts (with an IP or without): kept prepared.
    let rows: Vec<PendingRow> = match ip {
        Some(ip) => Cached(query.bind::<Text, _>(ip.to_owned())).load(conn)?,
        None => Cached(query).load(conn)?,
    };
    let mut rows = rows.into_iter();
    let Some(first) = rows.next() else {
        return Ok(None);
    };
    let apps = first
        .app()
        .into_iter()
        .chain(rows.filter_map(|r| r.app()))
        .collect();
    Ok(Some(Pending {
        challenge: Challenge {
            id: first.challenge_id,
            user_id: first.challenge_user_id,
            failures: first.challenge_failures,
            expires_at: first.challenge_expires_at,
        },
        user: first.user,
        apps,
        counts: first.counts,
    }))
}

/// A row of [`find_pending`]'s statement.
#[derive(diesel::QueryableByName)]
struct PendingRow {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    challenge_id: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    challenge_user_id: i64,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    challenge_failures: i32,
    #[diesel(sql_type = diesel::sql_types::Timestamp)]
    challenge_expires_at: NaiveDateTime,
    #[diesel(embed)]
    user: crate::users::User,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
    app_id: Option<i64>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    app_secret: Option<String>,
    #[diesel(embed)]
    counts: login_attempts::Counts,
}

impl PendingRow {
    fn app(&self) -> Option<SealedApp> {
        Some((self.app_id?, self.app_secret.clone()))
    }
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
