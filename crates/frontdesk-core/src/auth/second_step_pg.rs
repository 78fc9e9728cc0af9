//! The second step with an authenticator app's code on PostgreSQL, as one
//! statement.
//!
//! The general path ([`super::complete_second_step`]) runs the app's step,
//! the challenge, the user's sign-in times, the session and the attempt row
//! as five statements between `BEGIN` and `COMMIT`: seven round trips, and on
//! PostgreSQL a round trip costs more than any of these statements
//! (`mfa_bench`, README "Two-step sign-in"). Here they are one data-modifying
//! `WITH`, which PostgreSQL runs atomically (all of it or none, one commit
//! that waits for its WAL like every other sign-in's): one round trip.
//!
//! What each part writes is what the general path writes (the columns of
//! `sessions::create`, `login_attempts::record_method` and `open_session`'s
//! update), and each part runs only if the one before it did: the app's
//! step moves only while the challenge is live (in the statement's
//! snapshot), the challenge is used only if the app took the code, the user
//! and the session only if the challenge was used. A refused code writes
//! nothing (the caller counts the failure).
//! The `UserSignedIn` event is vetted by the listeners before the statement
//! is sent (a veto leaves nothing written) and queued once it went through.
//!
//! Taken only when the general path would do nothing more: no session to
//! replace (its revocation notifies the other instances' session caches)
//! and a user who is not suspended (a suspension past its end is lifted as
//! the user signs in). Recovery codes and passkeys take the general path.
//!
//! One difference, in a race only: when two requests bring the same
//! challenge at once, the loser's app may have its step moved (the winner
//! used the challenge between this statement's snapshot and its update)
//! and no session opens; that code was spent either way, and the loser is
//! told to sign in again. The integration tests run the second step on both
//! backends, so this path and SQLite's general one answer the same tests.

use diesel::sql_types::{BigInt, Integer, Nullable, Text, Timestamp};
use diesel::{QueryableByName, RunQueryDsl};

use super::{AuthSettings, SignInError, SignedIn};
use crate::db::{Cached, DbConnection};
use crate::error::CoreError;
use crate::events::{self, Event};
use crate::login_attempts::{self, Method, Reason};
use crate::mfa::{challenges, sealed::SecretBox, totp};
use crate::sessions::{ClientInfo, Session};
use crate::time::now;
use crate::tokens::SecretToken;
use crate::users::User;

/// The statement: `$1` step, `$2` now, `$3` app, `$4` challenge, `$5` the
/// challenge's failure limit, `$6` the session token's digest, `$7` IP,
/// `$8` user agent, `$9` the session's end, `$10` the attempt's email,
/// `$11` its reason, `$12` its method.
const SQL: &str = "\
WITH live AS (\
   SELECT id FROM mfa_challenges \
   WHERE id = $4 AND used_at IS NULL AND expires_at > $2 AND failures < $5), \
 app AS (\
   UPDATE mfa_factors SET last_step = $1, last_used_at = $2 \
   WHERE id = $3 AND confirmed_at IS NOT NULL \
     AND (last_step IS NULL OR last_step < $1) AND EXISTS (SELECT 1 FROM live) \
   RETURNING id), \
 used AS (\
   UPDATE mfa_challenges SET used_at = $2 \
   WHERE id = $4 AND used_at IS NULL AND expires_at > $2 \
     AND failures < $5 AND EXISTS (SELECT 1 FROM app) \
   RETURNING user_id), \
 signed AS (\
   UPDATE users SET last_login_at = $2, last_active_at = $2, \
     activated_at = COALESCE(activated_at, $2) \
   WHERE id IN (SELECT user_id FROM used) \
   RETURNING id), \
 session AS (\
   INSERT INTO sessions \
     (user_id, token_hash, ip, user_agent, created_at, last_active_at, expires_at) \
   SELECT id, $6, $7, $8, $2, $2, $9 FROM signed RETURNING id), \
 attempt AS (\
   INSERT INTO login_attempts \
     (user_id, email, ip, user_agent, success, reason, created_at, method) \
   SELECT id, $10, $7, $8, TRUE, $11, $2, $12 FROM signed) \
SELECT (SELECT COUNT(*) FROM live) AS live, \
       (SELECT COUNT(*) FROM app) AS advanced, \
       (SELECT COUNT(*) FROM used) AS used, \
       (SELECT id FROM session) AS session_id";

/// What the statement did.
#[derive(QueryableByName)]
struct Done {
    #[diesel(sql_type = BigInt)]
    live: i64,
    #[diesel(sql_type = BigInt)]
    advanced: i64,
    #[diesel(sql_type = BigInt)]
    used: i64,
    #[diesel(sql_type = Nullable<BigInt>)]
    session_id: Option<i64>,
}

/// The code checked against `apps` (read with the challenge) and, for the
/// app that takes it, the whole sign-in in one statement. `Ok(None)`: no app
/// took the code (wrong, replayed, or no app), nothing written.
#[allow(clippy::too_many_arguments)]
pub(super) fn with_app_code(
    conn: &mut DbConnection,
    keys: &SecretBox,
    code: &str,
    user: &User,
    apps: &[challenges::SealedApp],
    challenge_id: i64,
    client: &ClientInfo,
    settings: &AuthSettings,
) -> Result<Option<SignedIn>, SignInError> {
    let at = now();
    let matching = totp::matching_apps(keys, user.id, code, apps, at)?;
    if matching.is_empty() {
        return Ok(None);
    }
    let event = Event::UserSignedIn { user_id: user.id };
    events::vet(conn, &event)?;
    let token = SecretToken::generate();
    let token_hash = token.hash();
    let client = client.sanitized();
    let expires_at = at + settings.sessions.absolute_timeout;
    let email = login_attempts::normalize(&user.email);
    for (app, step) in matching {
        #[allow(irrefutable_let_patterns)] // in a PostgreSQL-only build
        let DbConnection::Pg(pg) = &mut *conn
        else {
            return Err(CoreError::NotFound("PostgreSQL connection").into());
        };
        let done: Vec<Done> = Cached(
            diesel::sql_query(SQL)
                .bind::<BigInt, _>(step)
                .bind::<Timestamp, _>(at)
                .bind::<BigInt, _>(app)
                .bind::<BigInt, _>(challenge_id)
                .bind::<Integer, _>(challenges::MAX_FAILURES)
                .bind::<Text, _>(token_hash.clone())
                .bind::<Nullable<Text>, _>(client.ip.clone())
                .bind::<Nullable<Text>, _>(client.user_agent.clone())
                .bind::<Timestamp, _>(expires_at)
                .bind::<Text, _>(email.clone())
                .bind::<Text, _>(Reason::Success.as_str())
                .bind::<Text, _>(Method::Totp.as_str()),
        )
        .load(pg)
        .map_err(CoreError::from)?;
        let done = done.first().ok_or(CoreError::NotFound("second step"))?;
        if done.live == 0 {
            // Used, run out or worn out since it was read: nothing written.
            return Err(SignInError::ChallengeExpired);
        }
        if done.advanced == 0 {
            // This app had taken that step already (a replay): the next one.
            continue;
        }
        // The app took the code but the challenge was used or ran out
        // meanwhile (another request with the same challenge won): no
        // session. The app's step stays taken, as the code was spent.
        let (1, Some(session_id)) = (done.used, done.session_id) else {
            return Err(SignInError::ChallengeExpired);
        };
        events::push_vetted(conn, event);
        // The row as the statement left it: only the sign-in times changed.
        let mut user = user.clone();
        user.last_login_at = Some(at);
        user.last_active_at = Some(at);
        user.activated_at = user.activated_at.or(Some(at));
        let session = Session {
            id: session_id,
            user_id: user.id,
            token_hash,
            ip: client.ip,
            user_agent: client.user_agent,
            created_at: at,
            last_active_at: at,
            expires_at,
            revoked_at: None,
            revoked_reason: None,
        };
        return Ok(Some(SignedIn {
            user,
            session,
            token,
        }));
    }
    Ok(None)
}
