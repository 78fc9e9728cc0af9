//! Connections, the r2d2 pool and embedded migrations for both backends.
//! Backend-specific SQL lives here, behind explicit matches on `DbConnection`.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::{self, ManageConnection};
use diesel::sql_types::{Bool, Text};
use diesel::{PgConnection, SqliteConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use std::time::Duration;

use crate::error::CoreError;
use crate::schema::users;

/// One connection type for both backends; the database URL picks the variant.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Pg(PgConnection),
    Sqlite(SqliteConnection),
}

/// The diesel backend of [`DbConnection`], used for boxed queries.
pub type Backend = <DbConnection as diesel::Connection>::Backend;
pub type Pool = r2d2::Pool<ConnectionManager>;
pub type PooledConn = r2d2::PooledConnection<ConnectionManager>;

/// `.first(conn).optional()` for lookups by a unique key, without the
/// `LIMIT ?` that `first` adds: SQLite plans with the bound LIMIT value, so a
/// statement carrying one is re-prepared on every run (about seven times the
/// cost of the lookup itself). Used on the per-request paths.
pub trait LoadOne<T>: Sized {
    fn load_one(self, conn: &mut DbConnection) -> QueryResult<Option<T>>;
}

impl<'q, Q, T> LoadOne<T> for Q
where
    Q: diesel::query_dsl::LoadQuery<'q, DbConnection, T>,
{
    fn load_one(self, conn: &mut DbConnection) -> QueryResult<Option<T>> {
        Ok(RunQueryDsl::load(self, conn)?.into_iter().next())
    }
}

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/sqlite");
const PG_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/postgres");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    Sqlite,
    Postgres,
}

impl DbConnection {
    pub fn kind(&self) -> BackendKind {
        match self {
            DbConnection::Pg(_) => BackendKind::Postgres,
            DbConnection::Sqlite(_) => BackendKind::Sqlite,
        }
    }
}

/// Where the database lives, parsed from a URL: `postgres://…` / `postgresql://…`
/// for PostgreSQL; `sqlite://path`, `sqlite:path` or a plain file path for SQLite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    Postgres(String),
    Sqlite(String),
}

impl DatabaseUrl {
    pub fn parse(url: &str) -> Result<Self, CoreError> {
        let url = url.trim();
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(DatabaseUrl::Postgres(url.to_owned()));
        }
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or(url);
        if path.is_empty() || path.contains("://") {
            return Err(CoreError::Config(format!(
                "unsupported database URL {url:?}: use postgres://… or sqlite://path"
            )));
        }
        if path == ":memory:" {
            return Err(CoreError::Config(
                "an in-memory SQLite database cannot be shared by a pool; use a file path".into(),
            ));
        }
        Ok(DatabaseUrl::Sqlite(path.to_owned()))
    }

    pub fn kind(&self) -> BackendKind {
        match self {
            DatabaseUrl::Postgres(_) => BackendKind::Postgres,
            DatabaseUrl::Sqlite(_) => BackendKind::Sqlite,
        }
    }
}

/// r2d2 manager that opens exactly the backend the URL names (diesel's own
/// `establish` on a multi-connection would fall back to SQLite and create a
/// file named like a PostgreSQL URL when the server is down).
#[derive(Debug, Clone)]
pub struct ConnectionManager {
    url: DatabaseUrl,
    busy_timeout: Duration,
}

impl ConnectionManager {
    pub fn new(url: DatabaseUrl) -> Self {
        ConnectionManager {
            url,
            busy_timeout: Duration::from_secs(5),
        }
    }
}

/// Opens one connection, applying the SQLite pragmas every connection needs.
pub fn establish(url: &DatabaseUrl, busy_timeout: Duration) -> ConnectionResult<DbConnection> {
    match url {
        DatabaseUrl::Postgres(u) => {
            let mut conn = PgConnection::establish(u)?;
            conn.set_instrumentation(ConnectionHealth::default());
            Ok(DbConnection::Pg(conn))
        }
        DatabaseUrl::Sqlite(path) => {
            let mut conn = SqliteConnection::establish(path)?;
            conn.batch_execute(&format!(
                "PRAGMA busy_timeout = {}; PRAGMA journal_mode = WAL; \
                 PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
                busy_timeout.as_millis()
            ))
            .map_err(|e| ConnectionError::BadConnection(e.to_string()))?;
            Ok(DbConnection::Sqlite(conn))
        }
    }
}

/// Watches a PostgreSQL connection's queries for the sign that the server
/// ended it: a query that failed because the connection is closed, or could
/// not be sent at all. libpq does not reconnect, so such a connection fails
/// every later query; the pool drops it when it comes back.
#[derive(Debug, Default)]
struct ConnectionHealth {
    lost: bool,
}

impl diesel::connection::Instrumentation for ConnectionHealth {
    fn on_connection_event(&mut self, event: diesel::connection::InstrumentationEvent<'_>) {
        use diesel::result::{DatabaseErrorKind, Error};
        if let diesel::connection::InstrumentationEvent::FinishQuery {
            error: Some(Error::DatabaseError(kind, _)),
            ..
        } = event
        {
            if matches!(
                kind,
                DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand
            ) {
                self.lost = true;
            }
        }
    }
}

impl ManageConnection for ConnectionManager {
    type Connection = DbConnection;
    type Error = r2d2::Error;

    fn connect(&self) -> Result<DbConnection, r2d2::Error> {
        establish(&self.url, self.busy_timeout).map_err(r2d2::Error::ConnectionError)
    }

    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), r2d2::Error> {
        conn.batch_execute("SELECT 1")
            .map_err(r2d2::Error::QueryError)
    }

    /// A connection goes back into the pool only if it is usable: not when
    /// the thread is unwinding (it may be mid-transaction), and not when
    /// diesel's transaction bookkeeping is broken. On PostgreSQL the latter
    /// includes a connection the server ended: libpq then reports its
    /// transaction state as unknown, which diesel records as broken after the
    /// query that found out; a query that could not even be sent is caught by
    /// [`ConnectionHealth`]. Without this, after a restart or failover every
    /// pooled connection stayed dead in the pool and failed each request that
    /// drew it until it aged out.
    fn has_broken(&self, conn: &mut DbConnection) -> bool {
        use diesel::r2d2::R2D2Connection;
        std::thread::panicking()
            || match conn {
                DbConnection::Pg(c) => {
                    c.is_broken()
                        || c.instrumentation()
                            .downcast_ref::<ConnectionHealth>()
                            .is_some_and(|h| h.lost)
                }
                DbConnection::Sqlite(c) => c.is_broken(),
            }
    }
}

/// Runs `f` on a pooled connection, retrying while the database is away
/// ([`CoreError::is_outage`]): first on the pool's other connections, which
/// the server may have ended too (each leaves the pool as it fails), then a
/// few times more over about three seconds, for a server that is restarting.
/// For writes that must land after work outside the database was done (mail
/// handed to SMTP, an import's outcome).
pub fn retry_on_outage<T>(
    pool: &Pool,
    mut f: impl FnMut(&mut DbConnection) -> Result<T, CoreError>,
) -> Result<T, CoreError> {
    let stale = pool.max_size() as usize + 1;
    let waits = [200, 400, 800, 1600].map(Duration::from_millis);
    let mut attempt = 0;
    loop {
        let result = pool
            .get()
            .map_err(|e| CoreError::Pool(e.to_string()))
            .and_then(|mut conn| f(&mut conn));
        match result {
            Err(e) if e.is_outage() && attempt < stale + waits.len() => {
                if attempt >= stale {
                    std::thread::sleep(waits[attempt - stale]);
                }
                attempt += 1;
                log::warn!("frontdesk: database away, retrying: {e}");
            }
            other => return other,
        }
    }
}

/// Builds the pool and brings the schema up to date.
pub fn connect(url: &str, max_size: u32) -> Result<Pool, CoreError> {
    let url = DatabaseUrl::parse(url)?;
    let max_size = match url {
        DatabaseUrl::Sqlite(_) => max_size.clamp(1, 16),
        DatabaseUrl::Postgres(_) => max_size.max(1),
    };
    let pool = r2d2::Pool::builder()
        .max_size(max_size)
        .connection_timeout(Duration::from_secs(10))
        // A check query on every checkout would cost each request a round trip;
        // a dead connection surfaces as an error on its next use instead.
        .test_on_check_out(false)
        .build(ConnectionManager::new(url))
        .map_err(|e| CoreError::Pool(e.to_string()))?;
    let mut conn = pool.get().map_err(|e| CoreError::Pool(e.to_string()))?;
    run_migrations(&mut conn)?;
    Ok(pool)
}

/// Applies the embedded migrations of the connection's backend. On PostgreSQL
/// an advisory lock keeps two instances starting together from racing.
pub fn run_migrations(conn: &mut DbConnection) -> Result<(), CoreError> {
    let migrate = |e: Box<dyn std::error::Error + Send + Sync>| CoreError::Migration(e.to_string());
    match conn {
        DbConnection::Sqlite(c) => {
            c.run_pending_migrations(SQLITE_MIGRATIONS)
                .map_err(migrate)?;
        }
        DbConnection::Pg(c) => {
            c.batch_execute("SELECT pg_advisory_lock(7265746173)")?;
            let result = c
                .run_pending_migrations(PG_MIGRATIONS)
                .map(|_| ())
                .map_err(migrate);
            c.batch_execute("SELECT pg_advisory_unlock(7265746173)")?;
            result?;
        }
    }
    Ok(())
}

/// The FTS5 phrase SQLite matches a search term with, or `None` when the term
/// is searched with `LIKE` instead (PostgreSQL, or under three characters).
pub fn fts_phrase(kind: BackendKind, term: &str) -> Option<String> {
    let term = term.trim().to_lowercase();
    (kind == BackendKind::Sqlite && term.chars().count() >= 3)
        .then(|| format!("\"{}\"", term.replace('"', "\"\"")))
}

/// The free-text search predicate over `users.search_text` (already lower-cased).
/// SQLite asks its FTS5 trigram index for terms of three characters or more;
/// PostgreSQL's `LIKE` is served by the pg_trgm GIN index. With `walk`, the
/// SQLite form is written `+users.id IN (…)` so the planner may walk the sort
/// order's index and test each entry against the matches (see the users query).
pub fn search_predicate(
    kind: BackendKind,
    term: &str,
    walk: bool,
) -> Box<dyn BoxableExpression<users::table, Backend, SqlType = Bool>> {
    match fts_phrase(kind, term) {
        Some(phrase) => Box::new(
            diesel::dsl::sql::<Bool>(if walk {
                "+users.id IN (SELECT rowid FROM users_search WHERE users_search MATCH "
            } else {
                "users.id IN (SELECT rowid FROM users_search WHERE users_search MATCH "
            })
            .bind::<Text, _>(phrase)
            .sql(")"),
        ),
        None => {
            let term = term.trim().to_lowercase();
            Box::new(users::search_text.like(like_pattern(&term)).escape('\\'))
        }
    }
}

/// `%term%` with LIKE's wildcards in the term escaped.
pub fn like_pattern(term: &str) -> String {
    let mut p = String::with_capacity(term.len() + 2);
    p.push('%');
    for c in term.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// SQL for the calendar day (`YYYY-MM-DD` text) of a timestamp column.
pub fn day_of(kind: BackendKind, column: &str) -> String {
    match kind {
        BackendKind::Sqlite => format!("substr({column}, 1, 10)"),
        BackendKind::Postgres => format!("to_char({column}, 'YYYY-MM-DD')"),
    }
}

/// A transaction for a change. On SQLite it takes the write lock before its
/// first read: a deferred transaction that reads and then writes fails at once
/// with "database is locked" when another connection committed in between
/// (`busy_timeout` cannot help there), while waiting for the write lock up
/// front is covered by `busy_timeout`. On PostgreSQL it is a plain transaction.
pub fn write_transaction<T, E, F>(conn: &mut DbConnection, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    conn.transaction(|conn| {
        if conn.kind() == BackendKind::Sqlite {
            // A write statement takes the lock even when it matches no row.
            conn.batch_execute("UPDATE organizations SET id = id WHERE 0")?;
        }
        f(conn)
    })
}
