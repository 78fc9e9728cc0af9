//! Sessions: rows in `sessions` keyed by the SHA-256 of the cookie token. A
//! session is checked against the database on every request (on PostgreSQL
//! the web layer may answer from [`crate::session_cache`], which every change
//! that ends a session invalidates through [`sessions_changed`]), so a
//! revocation takes effect on the next request (with the cache: on the
//! instance that made it, and within milliseconds on the others).

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;
use serde::Serialize;

use serde_json::json;

use crate::audit;
use crate::authz::{Action, Actor};
use crate::db::{Backend, DbConnection};
use crate::error::{CoreError, CoreResult};
use crate::schema::{memberships, sessions, users};
use crate::session_cache::Invalidation;
use crate::time::now;
use crate::tokens::{hash_token, SecretToken};
use crate::users::User;
use crate::validate;

/// How long sessions live.
#[derive(Debug, Clone, Copy)]
pub struct SessionConfig {
    /// A session unused for this long ends.
    pub idle_timeout: Duration,
    /// A session ends this long after sign-in, however active.
    pub absolute_timeout: Duration,
    /// `last_active_at` is written at most this often per session.
    pub touch_interval: Duration,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            idle_timeout: Duration::hours(12),
            absolute_timeout: Duration::days(14),
            touch_interval: Duration::minutes(1),
        }
    }
}

/// A signed-in session, as stored. The token itself is never kept, only its
/// hash.
#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = sessions)]
pub struct Session {
    /// The session's id.
    pub id: i64,
    /// The user it signs in.
    pub user_id: i64,
    /// The SHA-256 hash of the cookie's token; never serialized.
    #[serde(skip)]
    pub token_hash: String,
    /// The client's IP address when the session started.
    pub ip: Option<String>,
    /// The client's user agent when the session started.
    pub user_agent: Option<String>,
    /// When the session started (UTC).
    pub created_at: NaiveDateTime,
    /// When it last authenticated a request (UTC), updated at most once per
    /// touch interval.
    pub last_active_at: NaiveDateTime,
    /// When it ends whatever the activity (UTC).
    pub expires_at: NaiveDateTime,
    /// When it was ended early (UTC), if it was.
    pub revoked_at: Option<NaiveDateTime>,
    /// Why it was ended early: one of the [`reason`] names.
    pub revoked_reason: Option<String>,
}

impl Session {
    /// True when the session may still authenticate a request at `at`.
    pub fn is_live(&self, config: &SessionConfig, at: NaiveDateTime) -> bool {
        self.revoked_at.is_none()
            && self.expires_at > at
            && self.last_active_at + config.idle_timeout > at
    }
}

/// Why a session ends; stored in `revoked_reason`.
pub mod reason {
    /// The user signed out.
    pub const LOGOUT: &str = "logout";
    /// The user ended it from their own sessions list.
    pub const REVOKED_BY_USER: &str = "revoked_by_user";
    /// An admin ended it.
    pub const REVOKED_BY_ADMIN: &str = "revoked_by_admin";
    /// A new sign-in in the same browser replaced it.
    pub const REPLACED: &str = "replaced_at_login";
    /// The user changed their password; their other sessions end.
    pub const PASSWORD_CHANGED: &str = "password_changed";
    /// A password was set through a reset link; every session ends.
    pub const PASSWORD_RESET: &str = "password_reset";
    /// The user was suspended.
    pub const SUSPENDED: &str = "suspended";
}

const MAX_USER_AGENT: usize = 512;
const MAX_IP: usize = 64;

/// Where a request came from, as recorded on sessions and login attempts.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    /// The client's IP address, if known; [`ClientInfo::sanitized`] cuts it to 64 characters.
    pub ip: Option<String>,
    /// The client's user agent, if sent; [`ClientInfo::sanitized`] cuts it to 512 characters.
    pub user_agent: Option<String>,
}

impl ClientInfo {
    /// Cuts over-long values and drops control characters: these come from headers.
    pub fn sanitized(&self) -> ClientInfo {
        let clean = |v: &Option<String>, max: usize| {
            v.as_deref()
                .map(|s| {
                    s.chars()
                        .filter(|c| !c.is_control())
                        .take(max)
                        .collect::<String>()
                })
                .filter(|s| !s.is_empty())
        };
        ClientInfo {
            ip: clean(&self.ip, MAX_IP),
            user_agent: clean(&self.user_agent, MAX_USER_AGENT),
        }
    }
}

/// Opens a session for a user; the token is returned once and only its digest stored.
pub fn create(
    conn: &mut DbConnection,
    user_id: i64,
    client: &ClientInfo,
    config: &SessionConfig,
) -> CoreResult<(Session, SecretToken)> {
    let client = client.sanitized();
    let token = SecretToken::generate();
    let t = now();
    let session = diesel::insert_into(sessions::table)
        .values((
            sessions::user_id.eq(user_id),
            sessions::token_hash.eq(token.hash()),
            sessions::ip.eq(client.ip),
            sessions::user_agent.eq(client.user_agent),
            sessions::created_at.eq(t),
            sessions::last_active_at.eq(t),
            sessions::expires_at.eq(t + config.absolute_timeout),
        ))
        .returning(sessions::all_columns)
        .get_result(conn)?;
    Ok((session, token))
}

/// What a presented token stands for, read without writing anything.
pub enum Check {
    /// Unknown, revoked, expired, idle too long, or its user is suspended.
    Invalid,
    /// Live, and marked active recently enough.
    Valid(Session, User),
    /// Live, but `last_active_at` is due to be written ([`authenticate`] does).
    Stale(Session, User),
}

/// The read half of [`authenticate`]: one indexed lookup, no write, so a
/// caller may run it where a write (which can wait for SQLite's write lock)
/// could not be allowed to block.
pub fn check(conn: &mut DbConnection, token: &str, config: &SessionConfig) -> CoreResult<Check> {
    // A well-formed token is 43 base64url characters; anything else cannot match.
    if token.len() != 43 {
        return Ok(Check::Invalid);
    }
    // This runs on every signed-in request, so it is written for speed: on the
    // backend's own connection (the statement is cached by its type, with no
    // SQL text built per call) and without `LIMIT ?` (token_hash is unique; a
    // bound LIMIT makes SQLite re-prepare the statement on every run).
    let hash = hash_token(token);
    let found = crate::db::on_backend!(conn, |c| sessions::table
        .inner_join(users::table)
        .filter(sessions::token_hash.eq(&hash))
        .select((Session::as_select(), User::as_select()))
        .load::<(Session, User)>(c))?;
    let Some((session, user)) = found.into_iter().next() else {
        return Ok(Check::Invalid);
    };
    Ok(judge(session, user, config))
}

/// Whether a session read earlier (from the database or a cache) may
/// authenticate a request now: the timeouts and suspension, judged at this
/// moment from its timestamps.
pub fn judge(session: Session, user: User, config: &SessionConfig) -> Check {
    let t = now();
    if !session.is_live(config, t) || user.is_suspended() {
        return Check::Invalid;
    }
    if t - session.last_active_at >= config.touch_interval {
        return Check::Stale(session, user);
    }
    Check::Valid(session, user)
}

/// Tells every instance's session cache that sessions ended or their user
/// changed. Call it inside the transaction of the change: on PostgreSQL it
/// issues `pg_notify`, delivered only on commit; on every backend it also
/// records the change for this thread ([`crate::session_cache::take_pending`]).
pub fn sessions_changed(conn: &mut DbConnection, what: Invalidation) -> CoreResult<()> {
    #[cfg(feature = "postgres")]
    #[allow(irrefutable_let_patterns)] // in a PostgreSQL-only build
    if let DbConnection::Pg(c) = conn {
        diesel::sql_query("SELECT pg_notify($1, $2)")
            .bind::<diesel::sql_types::Text, _>(crate::session_cache::CHANNEL)
            .bind::<diesel::sql_types::Text, _>(what.payload())
            .execute(c)?;
    }
    #[cfg(not(feature = "postgres"))]
    let _ = conn; // no other instance to tell
    crate::session_cache::record_pending(what);
    Ok(())
}

/// The session and user a presented token stands for, or `None` when the token
/// is unknown, revoked, expired, idle too long, or its user is suspended.
/// Marks the session (and user) active, at most once per `touch_interval`.
pub fn authenticate(
    conn: &mut DbConnection,
    token: &str,
    config: &SessionConfig,
) -> CoreResult<Option<(Session, User)>> {
    let (mut session, mut user) = match check(conn, token, config)? {
        Check::Invalid => return Ok(None),
        Check::Valid(session, user) => return Ok(Some((session, user))),
        Check::Stale(session, user) => (session, user),
    };
    let Some(t) = touch(conn, session.id, user.id)? else {
        return Ok(None);
    };
    session.last_active_at = t;
    user.last_active_at = Some(t);
    Ok(Some((session, user)))
}

/// Marks a session and its user active now (the write [`authenticate`] makes
/// once per `touch_interval`); `None` when the session was revoked meanwhile.
pub fn touch(
    conn: &mut DbConnection,
    session_id: i64,
    user_id: i64,
) -> CoreResult<Option<NaiveDateTime>> {
    let t = now();
    // Conditional on the row still being live, so a concurrent revocation
    // wins. Both statements stay prepared (`Cached`): this runs once a
    // minute for every session in use.
    let touched = crate::db::Cached(
        diesel::update(sessions::table.find(session_id))
            .filter(sessions::revoked_at.is_null())
            .set(sessions::last_active_at.eq(t))
            .returning(sessions::id),
    )
    .load::<i64>(conn)?;
    if touched.is_empty() {
        return Ok(None);
    }
    crate::db::Cached(
        diesel::update(users::table.find(user_id))
            .set(users::last_active_at.eq(Some(t)))
            .returning(users::id),
    )
    .load::<i64>(conn)?;
    Ok(Some(t))
}

/// Loads a session by id, live or not, without an access check;
/// [`CoreError::NotFound`] when there is none.
pub fn get(conn: &mut DbConnection, id: i64) -> CoreResult<Session> {
    sessions::table
        .find(id)
        .select(Session::as_select())
        .first(conn)
        .optional()?
        .ok_or(CoreError::NotFound("session"))
}

/// A user's sessions that can still be used, newest first.
pub fn list_live_for_user(
    conn: &mut DbConnection,
    user_id: i64,
    config: &SessionConfig,
) -> CoreResult<Vec<Session>> {
    let t = now();
    Ok(sessions::table
        .filter(sessions::user_id.eq(user_id))
        .filter(sessions::revoked_at.is_null())
        .filter(sessions::expires_at.gt(t))
        .filter(sessions::last_active_at.gt(t - config.idle_timeout))
        .order((sessions::created_at.desc(), sessions::id.desc()))
        .select(Session::as_select())
        .load(conn)?)
}

/// Ends one session. Returns false when it was already ended (or does not exist).
pub fn revoke(conn: &mut DbConnection, session_id: i64, why: &str) -> CoreResult<bool> {
    let why = validate::text("reason", why, 100)?;
    let n = diesel::update(sessions::table.find(session_id))
        .filter(sessions::revoked_at.is_null())
        .set((
            sessions::revoked_at.eq(Some(now())),
            sessions::revoked_reason.eq(Some(why)),
        ))
        .execute(conn)?;
    if n > 0 {
        sessions_changed(conn, Invalidation::Session(session_id))?;
    }
    Ok(n == 1)
}

/// Ends the session a presented token stands for (logout, or a new sign-in in
/// the same browser). Returns false when no live session matched.
pub fn revoke_by_token(conn: &mut DbConnection, token: &str, why: &str) -> CoreResult<bool> {
    let hash = hash_token(token);
    let n = diesel::update(sessions::table)
        .filter(sessions::token_hash.eq(&hash))
        .filter(sessions::revoked_at.is_null())
        .set((
            sessions::revoked_at.eq(Some(now())),
            sessions::revoked_reason.eq(Some(why)),
        ))
        .execute(conn)?;
    if n > 0 {
        sessions_changed(conn, Invalidation::Token(hash))?;
    }
    Ok(n == 1)
}

/// Ends a session only if it belongs to `user_id` (a user revoking their own).
pub fn revoke_own(conn: &mut DbConnection, user_id: i64, session_id: i64) -> CoreResult<bool> {
    let n = diesel::update(sessions::table.find(session_id))
        .filter(sessions::user_id.eq(user_id))
        .filter(sessions::revoked_at.is_null())
        .set((
            sessions::revoked_at.eq(Some(now())),
            sessions::revoked_reason.eq(Some(reason::REVOKED_BY_USER)),
        ))
        .execute(conn)?;
    if n > 0 {
        sessions_changed(conn, Invalidation::Session(session_id))?;
    }
    Ok(n == 1)
}

/// A signed-in user ends one of their own sessions ("My sessions"): one
/// transaction with its audit row (`session.revoke` by the user) and its
/// event. False (and no row) when it was not theirs or already ended.
pub fn end_own(conn: &mut DbConnection, user_id: i64, session_id: i64) -> CoreResult<bool> {
    crate::db::write_transaction(conn, |conn| {
        let ended = revoke_own(conn, user_id, session_id)?;
        if ended {
            audit::record(
                conn,
                &Actor::user(user_id, None, Vec::new()),
                "session.revoke",
                &format!("user:{user_id}"),
                None,
                json!({"session": session_id, "ended": true, "by": "self"}),
            )?;
        }
        Ok(ended)
    })
}

/// A signed-in user signs out everywhere else: every live session of theirs
/// but `keep` ends, with one audit row (`user.sessions.revoke` by the user)
/// and one event when any did. Returns how many ended.
pub fn end_own_others(conn: &mut DbConnection, user_id: i64, keep: i64) -> CoreResult<usize> {
    crate::db::write_transaction(conn, |conn| {
        let ended = revoke_all_for_user(conn, user_id, reason::REVOKED_BY_USER, Some(keep))?;
        if ended > 0 {
            audit::record(
                conn,
                &Actor::user(user_id, None, Vec::new()),
                "user.sessions.revoke",
                &format!("user:{user_id}"),
                None,
                json!({"sessions_revoked": ended, "by": "self"}),
            )?;
        }
        Ok(ended)
    })
}

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
    let n = q
        .set((
            sessions::revoked_at.eq(Some(now())),
            sessions::revoked_reason.eq(Some(reason)),
        ))
        .execute(conn)?;
    // Also when none ended: the caller may have changed the user (suspended,
    // new password) and a cached copy of a kept session must be read again.
    sessions_changed(conn, Invalidation::User(user_id))?;
    Ok(n)
}

/// Filters for the admin sessions list.
#[derive(Debug, Clone, Default)]
pub struct SessionFilter {
    /// Only this user's sessions.
    pub user_id: Option<i64>,
    /// Only sessions that can still be used.
    pub live_only: bool,
    /// Limit to users of these organizations (an org admin's view); `None` for all.
    pub organizations: Option<Vec<i64>>,
}

/// [`list`] limited to the users of `scope` organizations when given.
pub fn list_for_admin(
    conn: &mut DbConnection,
    filter: &SessionFilter,
    scope: Option<&[i64]>,
    config: &SessionConfig,
    page: i64,
    limit: i64,
) -> CoreResult<(Vec<Session>, i64)> {
    let filter = SessionFilter {
        organizations: scope
            .map(<[i64]>::to_vec)
            .or_else(|| filter.organizations.clone()),
        ..filter.clone()
    };
    list(conn, &filter, config, page, limit)
}

/// Sessions, newest first, with the total count (admin pages and API).
pub fn list(
    conn: &mut DbConnection,
    filter: &SessionFilter,
    config: &SessionConfig,
    page: i64,
    limit: i64,
) -> CoreResult<(Vec<Session>, i64)> {
    let limit = limit.clamp(1, 100);
    let t = now();
    let build = || {
        let mut q = sessions::table.into_boxed::<Backend>();
        if let Some(u) = filter.user_id {
            q = q.filter(sessions::user_id.eq(u));
        }
        if filter.live_only {
            q = q
                .filter(sessions::revoked_at.is_null())
                .filter(sessions::expires_at.gt(t))
                .filter(sessions::last_active_at.gt(t - config.idle_timeout));
        }
        if let Some(orgs) = &filter.organizations {
            q = q.filter(
                sessions::user_id.eq_any(
                    memberships::table
                        .select(memberships::user_id)
                        .filter(memberships::organization_id.eq_any(orgs.clone())),
                ),
            );
        }
        q
    };
    let total = build().count().get_result(conn)?;
    let rows = build()
        .order((sessions::created_at.desc(), sessions::id.desc()))
        .limit(limit)
        .offset((page.max(1) - 1) * limit)
        .select(Session::as_select())
        .load(conn)?;
    Ok((rows, total))
}

/// An admin ends one session of a user they may suspend (a user the actor
/// may not even see is reported as not found, as `users::get_for` does).
pub fn revoke_by_admin(
    conn: &mut DbConnection,
    actor: &Actor,
    session_id: i64,
) -> CoreResult<bool> {
    crate::db::write_transaction(conn, |conn| {
        let session = get(conn, session_id)?;
        crate::users::get_for(conn, actor, session.user_id, Action::Suspend)?;
        let ended = revoke(conn, session_id, reason::REVOKED_BY_ADMIN)?;
        audit::record(
            conn,
            actor,
            "session.revoke",
            &format!("user:{}", session.user_id),
            None,
            json!({"session": session_id, "ended": ended}),
        )?;
        Ok(ended)
    })
}

/// An admin ends every session of a user; returns how many ended.
pub fn revoke_all_by_admin(
    conn: &mut DbConnection,
    actor: &Actor,
    user_id: i64,
) -> CoreResult<usize> {
    crate::db::write_transaction(conn, |conn| {
        crate::users::get_for(conn, actor, user_id, Action::Suspend)?;
        let ended = revoke_all_for_user(conn, user_id, reason::REVOKED_BY_ADMIN, None)?;
        audit::record(
            conn,
            actor,
            "user.sessions.revoke",
            &format!("user:{user_id}"),
            None,
            json!({"sessions_revoked": ended}),
        )?;
        Ok(ended)
    })
}

/// How many live sessions a user has, and when the newest began.
pub fn summary_for_user(
    conn: &mut DbConnection,
    user_id: i64,
    config: &SessionConfig,
) -> CoreResult<(i64, Option<NaiveDateTime>)> {
    let t = now();
    let (n, last): (i64, Option<NaiveDateTime>) = sessions::table
        .filter(sessions::user_id.eq(user_id))
        .filter(sessions::revoked_at.is_null())
        .filter(sessions::expires_at.gt(t))
        .filter(sessions::last_active_at.gt(t - config.idle_timeout))
        .select((
            diesel::dsl::count_star(),
            diesel::dsl::max(sessions::created_at),
        ))
        .first(conn)?;
    Ok((n, last))
}
