//! An in-process cache of validated sessions (PostgreSQL), kept honest across
//! instances by `LISTEN/NOTIFY`.
//!
//! - Every change that ends a session or alters its user (revocation of one
//!   or all, suspension, deletion, password change or reset, any user update)
//!   calls [`crate::sessions::sessions_changed`] inside its transaction. On
//!   PostgreSQL that issues `SELECT pg_notify('frontdesk_sessions', payload)`,
//!   which is delivered only if the transaction commits; on every backend it
//!   also records the change for the calling thread ([`take_pending`]), so the
//!   instance that made it drops its own entries before it answers.
//! - Payloads: `session:<id>` (one session), `token:<sha256 hex>` (the session
//!   a token stands for), `user:<id>` (every session of that user).
//! - One listener thread per cache holds a dedicated connection (not from the
//!   pool) running `LISTEN frontdesk_sessions`. While it is not connected the
//!   cache is bypassed (nothing is read from it or added to it); once it has
//!   reconnected and issued `LISTEN` again, everything cached before the gap is
//!   dropped and the cache is used again. A lost connection is noticed at the
//!   next poll (every [`POLL`]) or at the latest by the ping every [`PING`].
//! - An entry lives at most the TTL; expiry (idle and absolute timeouts) is
//!   still judged on every request from the cached timestamps.
//! - A lookup that went to the database may only fill the cache if no
//!   invalidation happened since it started ([`SessionCache::ticket`]), so a
//!   read racing a revocation cannot put the revoked session back.

use std::cell::RefCell;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::NaiveDateTime;
#[cfg(feature = "postgres")]
use diesel::{pg::PgConnection, prelude::*};
use lru::LruCache;
#[cfg(feature = "postgres")]
use std::sync::Weak;

use crate::sessions::Session;
use crate::users::User;

/// The PostgreSQL channel invalidations travel on.
pub const CHANNEL: &str = "frontdesk_sessions";
/// The `application_name` of the listener's connection.
pub const LISTENER_NAME: &str = "frontdesk_session_listener";
/// How often the listener looks for notifications.
pub const POLL: Duration = Duration::from_millis(10);
/// How often the listener checks that its connection is still alive.
pub const PING: Duration = Duration::from_millis(500);
/// How long the listener waits before reconnecting after a loss.
pub const RECONNECT_DELAY: Duration = Duration::from_millis(500);

/// What changed: which cached sessions must go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invalidation {
    /// One session, by id.
    Session(i64),
    /// The session with this token digest (hex SHA-256).
    Token(String),
    /// Every session of a user.
    User(i64),
    /// Every cached session (many changes at once).
    All,
}

impl Invalidation {
    /// The notification's text (`session:7`, `token:<hex>`, `user:7`, `all`);
    /// [`Invalidation::parse`] reads it back.
    pub fn payload(&self) -> String {
        match self {
            Invalidation::Session(id) => format!("session:{id}"),
            Invalidation::Token(hash) => format!("token:{hash}"),
            Invalidation::User(id) => format!("user:{id}"),
            Invalidation::All => "all".into(),
        }
    }

    /// `None` for a payload this version does not know.
    pub fn parse(payload: &str) -> Option<Invalidation> {
        if payload == "all" {
            return Some(Invalidation::All);
        }
        let (kind, value) = payload.split_once(':')?;
        match kind {
            "session" => value.parse().ok().map(Invalidation::Session),
            "user" => value.parse().ok().map(Invalidation::User),
            "token" if !value.is_empty() => Some(Invalidation::Token(value.to_owned())),
            _ => None,
        }
    }
}

thread_local! {
    static PENDING: RefCell<Vec<Invalidation>> = const { RefCell::new(Vec::new()) };
}

/// How many changes a thread keeps before it stands them all for [`Invalidation::All`]
/// (a long import on a thread nobody drains must not grow without bound).
const MAX_PENDING: usize = 256;

/// Records a change made on this thread (see [`take_pending`]).
pub(crate) fn record_pending(inv: Invalidation) {
    PENDING.with(|p| {
        let mut p = p.borrow_mut();
        if p.first() == Some(&Invalidation::All) {
            return;
        }
        if p.len() >= MAX_PENDING {
            p.clear();
            p.push(Invalidation::All);
        } else {
            p.push(inv);
        }
    });
}

/// The changes recorded on this thread since the last call. The caller that
/// ran the database work applies them to its own cache once the work is done,
/// so the next request on this instance already sees them (changes of a
/// transaction that rolled back only drop a few entries too many).
pub fn take_pending() -> Vec<Invalidation> {
    PENDING.with(|p| std::mem::take(&mut *p.borrow_mut()))
}

struct Entry {
    session: Session,
    user: User,
    stored: Instant,
}

struct Inner {
    map: LruCache<String, Entry>,
    /// Bumped by every invalidation; a fill started at an older epoch is dropped.
    epoch: u64,
    /// True while the listener is connected and caught up.
    listening: bool,
}

/// What the cache has done (for tests and the bench).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Lookups answered from the cache.
    pub hits: u64,
    /// Lookups that read the database and filled the cache.
    pub misses: u64,
    /// Lookups that skipped the cache while it was not listening.
    pub bypassed: u64,
}

/// A bounded LRU of validated sessions keyed by token digest, with a TTL.
pub struct SessionCache {
    inner: Mutex<Inner>,
    ttl: Duration,
    stats: Mutex<Stats>,
}

impl std::fmt::Debug for SessionCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionCache")
            .field("ttl", &self.ttl)
            .field("listening", &self.is_listening())
            .finish()
    }
}

/// A fill permit: the epoch when a database lookup started.
#[derive(Debug, Clone, Copy)]
pub struct Ticket(u64);

impl SessionCache {
    /// A cache that stays bypassed until a listener marks it caught up.
    pub fn new(capacity: NonZeroUsize, ttl: Duration) -> SessionCache {
        SessionCache {
            inner: Mutex::new(Inner {
                map: LruCache::new(capacity),
                epoch: 0,
                listening: false,
            }),
            ttl,
            stats: Mutex::new(Stats::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The data is a cache: after a panic elsewhere it is still usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn count(&self, f: impl FnOnce(&mut Stats)) {
        f(&mut self.stats.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// The counts so far.
    pub fn stats(&self) -> Stats {
        *self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// True while the listener is connected and the cache may be used.
    pub fn is_listening(&self) -> bool {
        self.lock().listening
    }

    /// The cached session and user for a token digest, if fresh and the cache
    /// is usable. The caller still judges expiry and suspension.
    pub fn get(&self, hash: &str) -> Option<(Session, User)> {
        let mut inner = self.lock();
        if !inner.listening {
            drop(inner);
            self.count(|s| s.bypassed += 1);
            return None;
        }
        let fresh = match inner.map.get(hash) {
            Some(e) if e.stored.elapsed() < self.ttl => Some((e.session.clone(), e.user.clone())),
            Some(_) => {
                inner.map.pop(hash);
                None
            }
            None => None,
        };
        drop(inner);
        self.count(|s| match fresh {
            Some(_) => s.hits += 1,
            None => s.misses += 1,
        });
        fresh
    }

    /// Taken before a database lookup whose result may fill the cache;
    /// `None` while the cache is bypassed.
    pub fn ticket(&self) -> Option<Ticket> {
        let inner = self.lock();
        inner.listening.then_some(Ticket(inner.epoch))
    }

    /// Stores a session read from the database, unless anything was
    /// invalidated (or the listener lost) since `ticket` was taken.
    pub fn insert(&self, ticket: Ticket, hash: &str, session: Session, user: User) {
        let mut inner = self.lock();
        if !inner.listening || inner.epoch != ticket.0 {
            return;
        }
        inner.map.put(
            hash.to_owned(),
            Entry {
                session,
                user,
                stored: Instant::now(),
            },
        );
    }

    /// Notes an activity write on the cached copy, so it is not asked for again.
    pub fn touched(&self, hash: &str, at: NaiveDateTime) {
        if let Some(e) = self.lock().map.peek_mut(hash) {
            e.session.last_active_at = at;
            e.user.last_active_at = Some(at);
        }
    }

    /// Drops the entries a change affects.
    pub fn invalidate(&self, inv: &Invalidation) {
        let mut inner = self.lock();
        inner.epoch += 1;
        let doomed: Vec<String> = match inv {
            Invalidation::All => {
                inner.map.clear();
                return;
            }
            Invalidation::Token(hash) => vec![hash.clone()],
            Invalidation::Session(id) => inner
                .map
                .iter()
                .filter(|(_, e)| e.session.id == *id)
                .map(|(k, _)| k.clone())
                .collect(),
            Invalidation::User(id) => inner
                .map
                .iter()
                .filter(|(_, e)| e.user.id == *id)
                .map(|(k, _)| k.clone())
                .collect(),
        };
        for k in doomed {
            inner.map.pop(&k);
        }
    }

    /// The listener lost its connection (`false`) or is back and caught up
    /// (`true`); either way everything cached so far is dropped.
    #[cfg_attr(not(any(feature = "postgres", test)), allow(dead_code))]
    fn set_listening(&self, listening: bool) {
        let mut inner = self.lock();
        inner.epoch += 1;
        inner.map.clear();
        inner.listening = listening;
    }
}

/// A build without the `postgres` feature has no listener and answers an
/// error (no cache can be shared across instances there).
#[cfg(not(feature = "postgres"))]
pub fn start_listener(_cache: &Arc<SessionCache>, _url: String) -> std::io::Result<()> {
    Err(std::io::Error::other(
        "this build has no PostgreSQL support: no session cache listener",
    ))
}

/// Starts the listener thread for `cache` on PostgreSQL `url`. The thread
/// ends soon after the last `Arc` of the cache is dropped.
#[cfg(feature = "postgres")]
pub fn start_listener(cache: &Arc<SessionCache>, url: String) -> std::io::Result<()> {
    let weak = Arc::downgrade(cache);
    std::thread::Builder::new()
        .name("frontdesk-session-listener".into())
        .spawn(move || listen(weak, url))
        .map(|_| ())
}

#[cfg(feature = "postgres")]
fn listen(weak: Weak<SessionCache>, url: String) {
    let mut logged = false;
    loop {
        if weak.strong_count() == 0 {
            return;
        }
        let mut conn = match connect(&url) {
            Ok(c) => c,
            Err(e) => {
                if !logged {
                    tracing::warn!(
                        "frontdesk: session cache listener cannot connect, cache bypassed: {e}"
                    );
                    logged = true;
                }
                std::thread::sleep(RECONNECT_DELAY);
                continue;
            }
        };
        logged = false;
        match weak.upgrade() {
            Some(cache) => cache.set_listening(true),
            None => return,
        }
        let mut last_ping = Instant::now();
        let lost = loop {
            let Some(cache) = weak.upgrade() else {
                return;
            };
            let mut failed = None;
            for n in conn.notifications_iter() {
                match n {
                    Ok(n) => {
                        if let Some(inv) = Invalidation::parse(&n.payload) {
                            cache.invalidate(&inv);
                        }
                    }
                    Err(e) => {
                        failed = Some(e.to_string());
                        break;
                    }
                }
            }
            if failed.is_none() && last_ping.elapsed() >= PING {
                last_ping = Instant::now();
                if let Err(e) = diesel::sql_query("SELECT 1").execute(&mut conn) {
                    failed = Some(e.to_string());
                }
            }
            if let Some(e) = failed {
                cache.set_listening(false);
                break e;
            }
            drop(cache);
            std::thread::sleep(POLL);
        };
        tracing::warn!("frontdesk: session cache listener lost its connection, cache bypassed until it is back: {lost}");
        std::thread::sleep(RECONNECT_DELAY);
    }
}

#[cfg(feature = "postgres")]
fn connect(url: &str) -> Result<PgConnection, String> {
    let mut conn = PgConnection::establish(url).map_err(|e| e.to_string())?;
    // Named, so operators (and tests) can tell it from pooled connections.
    diesel::sql_query(format!("SET application_name TO '{LISTENER_NAME}'"))
        .execute(&mut conn)
        .map_err(|e| e.to_string())?;
    diesel::sql_query(format!("LISTEN {CHANNEL}"))
        .execute(&mut conn)
        .map_err(|e| e.to_string())?;
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip_and_junk_is_ignored() {
        for inv in [
            Invalidation::Session(7),
            Invalidation::User(42),
            Invalidation::Token("ab12".into()),
            Invalidation::All,
        ] {
            assert_eq!(Invalidation::parse(&inv.payload()), Some(inv));
        }
        for junk in [
            "",
            "user:",
            "user:x",
            "session:1.5",
            "token:",
            "nope:1",
            "user",
        ] {
            assert_eq!(Invalidation::parse(junk), None, "{junk}");
        }
    }

    #[test]
    fn a_thread_keeps_a_bounded_list_of_changes() {
        take_pending();
        record_pending(Invalidation::User(1));
        assert_eq!(take_pending(), vec![Invalidation::User(1)]);
        assert!(take_pending().is_empty());
        for i in 0..(MAX_PENDING as i64 + 10) {
            record_pending(Invalidation::Session(i));
        }
        assert_eq!(take_pending(), vec![Invalidation::All]);
    }

    fn row(session_id: i64, user_id: i64) -> (Session, User) {
        let t = crate::time::now();
        let session = Session {
            id: session_id,
            user_id,
            token_hash: format!("h{session_id}"),
            ip: None,
            user_agent: None,
            created_at: t,
            last_active_at: t,
            expires_at: t,
            revoked_at: None,
            revoked_reason: None,
        };
        let user = User {
            id: user_id,
            email: format!("u{user_id}@example.com"),
            email_verified: true,
            first_name: String::new(),
            last_name: String::new(),
            display_name: None,
            password_hash: None,
            local_login_enabled: true,
            staff_role: None,
            status: "active".into(),
            suspended_reason: None,
            suspended_at: None,
            suspended_until: None,
            profile: "{}".into(),
            search_text: String::new(),
            created_at: t,
            updated_at: t,
            last_login_at: None,
            last_active_at: None,
            activated_at: Some(t),
            terms_version: None,
            terms_accepted_at: None,
        };
        (session, user)
    }

    fn fill(cache: &SessionCache, session_id: i64, user_id: i64) {
        let ticket = cache.ticket().expect("listening");
        let (s, u) = row(session_id, user_id);
        cache.insert(ticket, &format!("h{session_id}"), s, u);
    }

    fn listening_cache(ttl: Duration) -> SessionCache {
        let cache = SessionCache::new(NonZeroUsize::new(2).expect("2"), ttl);
        cache.set_listening(true);
        cache
    }

    #[test]
    fn bypassed_until_listening_and_emptied_on_loss() {
        let cache = SessionCache::new(NonZeroUsize::new(8).expect("8"), Duration::from_secs(30));
        assert!(
            cache.ticket().is_none(),
            "no fill before the listener is up"
        );
        assert!(cache.get("h1").is_none());
        assert_eq!(cache.stats().bypassed, 1);
        cache.set_listening(true);
        fill(&cache, 1, 10);
        assert_eq!(cache.get("h1").map(|(s, _)| s.id), Some(1));
        cache.set_listening(false);
        assert!(cache.get("h1").is_none());
        cache.set_listening(true);
        assert!(
            cache.get("h1").is_none(),
            "nothing from before the gap survives"
        );
    }

    #[test]
    fn a_fill_that_raced_an_invalidation_is_dropped() {
        let cache = listening_cache(Duration::from_secs(30));
        let ticket = cache.ticket().expect("listening");
        // The session is revoked while its lookup was on the way.
        cache.invalidate(&Invalidation::Session(1));
        let (s, u) = row(1, 10);
        cache.insert(ticket, "h1", s, u);
        assert!(cache.get("h1").is_none());
    }

    #[test]
    fn invalidation_by_session_token_user_and_all() {
        let cache = listening_cache(Duration::from_secs(30));
        fill(&cache, 1, 10);
        fill(&cache, 2, 20);
        cache.invalidate(&Invalidation::Session(1));
        assert!(cache.get("h1").is_none());
        assert!(cache.get("h2").is_some(), "others stay");
        cache.invalidate(&Invalidation::User(99));
        assert!(cache.get("h2").is_some());
        cache.invalidate(&Invalidation::User(20));
        assert!(cache.get("h2").is_none());
        fill(&cache, 3, 30);
        cache.invalidate(&Invalidation::Token("h3".into()));
        assert!(cache.get("h3").is_none());
        fill(&cache, 4, 40);
        cache.invalidate(&Invalidation::All);
        assert!(cache.get("h4").is_none());
    }

    #[test]
    fn entries_expire_and_the_bound_holds() {
        let cache = listening_cache(Duration::from_millis(30));
        fill(&cache, 1, 10);
        assert!(cache.get("h1").is_some());
        std::thread::sleep(Duration::from_millis(40));
        assert!(cache.get("h1").is_none(), "past the TTL");
        fill(&cache, 2, 10);
        fill(&cache, 3, 10);
        fill(&cache, 4, 10);
        assert!(cache.get("h2").is_none(), "least recently used went first");
        assert!(cache.get("h3").is_some() && cache.get("h4").is_some());
    }
}
