//! Connections, the r2d2 pool and embedded migrations for both backends.
//! Backend-specific SQL lives here, behind explicit matches on `DbConnection`.
//! On PostgreSQL frontdesk's tables live in a schema of their own
//! ([`PgSchema`]); an installation that still has them in `public` is moved
//! there once, when the pool is first opened ([`migrate`]).
//!
//! Each backend is behind a cargo feature of the same name (`sqlite`,
//! `postgres`; both by default). A build without one still parses its URLs
//! and refuses them with a clear error; its connection variant, migrations
//! and SQL are not compiled in.

#[cfg(not(any(feature = "sqlite", feature = "postgres")))]
compile_error!(
    "frontdesk-core needs a database backend: enable its `sqlite` or `postgres` feature (or both)"
);

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::{self, ManageConnection};
use diesel::sql_types::{Bool, Text};
#[cfg(feature = "postgres")]
use diesel::PgConnection;
#[cfg(feature = "sqlite")]
use diesel::SqliteConnection;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use std::time::Duration;

use crate::error::CoreError;
use crate::schema::users;

#[cfg(feature = "postgres")]
mod pg_schema;
#[cfg(feature = "postgres")]
pub use pg_schema::move_from_public;

pub use connection::DbConnection;

mod connection {
    // diesel's `MultiConnection` derive writes public helper types next to
    // the enum (`MultiBackend`, `MultiRow`, ...) without docs; they stay in
    // this private module, reachable only through `DbConnection`'s traits.
    #![allow(missing_docs)]

    #[cfg(feature = "postgres")]
    use diesel::PgConnection;
    #[cfg(feature = "sqlite")]
    use diesel::SqliteConnection;

    /// One connection type for both backends; the database URL picks the variant.
    /// A variant exists only when its backend's feature is on.
    #[derive(diesel::MultiConnection)]
    pub enum DbConnection {
        /// A PostgreSQL connection.
        #[cfg(feature = "postgres")]
        Pg(PgConnection),
        /// A SQLite connection.
        #[cfg(feature = "sqlite")]
        Sqlite(SqliteConnection),
    }
}

/// Runs `$body` with `$c` bound to the concrete connection of whichever
/// backend `$conn` is: for the diesel calls the multi-backend connection
/// does not offer (multi-row inserts, `RETURNING` lists), written once.
/// Inside a transaction of the multi-connection, the statement joins it.
macro_rules! on_backend {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            #[cfg(feature = "sqlite")]
            $crate::db::DbConnection::Sqlite($c) => $body,
            #[cfg(feature = "postgres")]
            $crate::db::DbConnection::Pg($c) => $body,
        }
    };
}
pub(crate) use on_backend;

/// The diesel backend of [`DbConnection`], used for boxed queries.
pub type Backend = <DbConnection as diesel::Connection>::Backend;
/// The r2d2 pool of [`DbConnection`]s, made by [`connect`] or [`connect_with`].
pub type Pool = r2d2::Pool<ConnectionManager>;
/// A connection checked out of the [`Pool`]; it goes back when dropped.
pub type PooledConn = r2d2::PooledConnection<ConnectionManager>;

/// `.first(conn).optional()` for lookups by a unique key, without the
/// `LIMIT ?` that `first` adds: SQLite plans with the bound LIMIT value, so a
/// statement carrying one is re-prepared on every run (about seven times the
/// cost of the lookup itself). Used on the per-request paths.
pub(crate) trait LoadOne<T>: Sized {
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

/// A statement whose prepared form is kept in the connection's statement
/// cache, keyed by its SQL text and bind types. diesel never caches an
/// `UPDATE` (its `SET` clause may vary for one Rust type), so on PostgreSQL
/// each run is a `Parse` round trip and then an `Execute` one, and the
/// server parses and plans it again. For a statement whose SQL is fixed (no
/// `Option` changeset fields, no `IN` list), keying the cache by the SQL text
/// is exact: wrapped in `Cached`, it is prepared once per connection, and
/// later runs skip the server's parsing and planning. Used on the sign-in
/// path.
///
/// Run it with `load` / `get_result` (an `UPDATE` with a `RETURNING` clause,
/// counting the rows it answers), not `execute`: diesel's `execute` hands
/// the statement on by reference, and the reference's cache check walks the
/// wrapped statement, which still says "do not cache".
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cached<Q>(pub Q);

impl<Q, DB> diesel::query_builder::QueryFragment<DB> for Cached<Q>
where
    DB: diesel::backend::Backend,
    Q: diesel::query_builder::QueryFragment<DB>,
{
    fn walk_ast<'b>(&'b self, pass: diesel::query_builder::AstPass<'_, 'b, DB>) -> QueryResult<()> {
        self.0.walk_ast(pass)
    }

    fn is_safe_to_cache_prepared(&self, _backend: &DB) -> QueryResult<bool> {
        Ok(true)
    }
}

impl<Q> diesel::query_builder::QueryId for Cached<Q> {
    // No static id: the cache is keyed by the SQL text and the bind types.
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q: diesel::query_builder::Query> diesel::query_builder::Query for Cached<Q> {
    type SqlType = Q::SqlType;
}

impl<Q, Conn> RunQueryDsl<Conn> for Cached<Q> {}

#[cfg(feature = "sqlite")]
const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
#[cfg(feature = "postgres")]
const PG_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// Which database a connection or URL is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    /// SQLite.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

impl DbConnection {
    /// The backend of this connection.
    pub fn kind(&self) -> BackendKind {
        match self {
            #[cfg(feature = "postgres")]
            DbConnection::Pg(_) => BackendKind::Postgres,
            #[cfg(feature = "sqlite")]
            DbConnection::Sqlite(_) => BackendKind::Sqlite,
        }
    }
}

/// Where the database lives, parsed from a URL: `postgres://…` / `postgresql://…`
/// for PostgreSQL; `sqlite://path`, `sqlite:path` or a plain file path for SQLite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// A `postgres://` or `postgresql://` URL, as given.
    Postgres(String),
    /// A SQLite file path, without the `sqlite://` prefix.
    Sqlite(String),
}

impl DatabaseUrl {
    /// Reads a database URL. Refuses ([`CoreError::Config`]) an unknown scheme,
    /// an in-memory SQLite database (a pool cannot share one), and a backend
    /// this build was compiled without.
    pub fn parse(url: &str) -> Result<Self, CoreError> {
        let url = url.trim();
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            if cfg!(not(feature = "postgres")) {
                return Err(CoreError::Config(
                    "this build has no PostgreSQL support: enable frontdesk's `postgres` feature"
                        .into(),
                ));
            }
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
        if cfg!(not(feature = "sqlite")) {
            return Err(CoreError::Config(format!(
                "{url:?} names a SQLite database, and this build has no SQLite support: \
                 enable frontdesk's `sqlite` feature, or use a postgres:// URL"
            )));
        }
        Ok(DatabaseUrl::Sqlite(path.to_owned()))
    }

    /// The backend the URL names.
    pub fn kind(&self) -> BackendKind {
        match self {
            DatabaseUrl::Postgres(_) => BackendKind::Postgres,
            DatabaseUrl::Sqlite(_) => BackendKind::Sqlite,
        }
    }
}

/// The PostgreSQL schema that holds frontdesk's tables and diesel's record of
/// its migrations (`__diesel_schema_migrations`). Every connection's
/// `search_path` is this schema alone, so frontdesk's unqualified table names
/// never reach a host's tables of the same name in `public`. The name ends up
/// in SQL, so it is checked: lower-case ASCII letters, digits and `_`,
/// starting with a letter or `_`, at most 63 bytes, not `pg_…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgSchema(String);

impl PgSchema {
    /// The schema used unless the host names another: `frontdesk`.
    pub const DEFAULT: &'static str = "frontdesk";

    /// Checks a schema name; refuses ([`CoreError::Config`]) one that is not
    /// lower-case letters, digits and `_`, starts with a digit or `pg_`, or is
    /// longer than 63 bytes.
    pub fn new(name: &str) -> Result<Self, CoreError> {
        let ok = !name.is_empty()
            && name.len() <= 63
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            && !name.as_bytes()[0].is_ascii_digit()
            && !name.starts_with("pg_");
        if ok {
            Ok(PgSchema(name.to_owned()))
        } else {
            Err(CoreError::Config(format!(
                "PostgreSQL schema {name:?}: use lower-case letters, digits and _ \
                 (at most 63, not starting with a digit or pg_)"
            )))
        }
    }

    /// The schema's name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name as a quoted SQL identifier (safe: [`PgSchema::new`] checked it).
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    fn ident(&self) -> String {
        format!("\"{}\"", self.0)
    }
}

impl Default for PgSchema {
    fn default() -> Self {
        PgSchema(Self::DEFAULT.to_owned())
    }
}

impl std::fmt::Display for PgSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// r2d2 manager that opens exactly the backend the URL names (diesel's own
/// `establish` on a multi-connection would fall back to SQLite and create a
/// file named like a PostgreSQL URL when the server is down).
#[derive(Debug, Clone)]
pub struct ConnectionManager {
    url: DatabaseUrl,
    schema: PgSchema,
    busy_timeout: Duration,
    listeners: std::sync::Arc<crate::events::Listeners>,
}

impl ConnectionManager {
    /// A manager for the database at `url`, with frontdesk's tables in `schema`
    /// on PostgreSQL, a 5-second SQLite busy timeout and no event listeners.
    pub fn new(url: DatabaseUrl, schema: PgSchema) -> Self {
        ConnectionManager {
            url,
            schema,
            busy_timeout: Duration::from_secs(5),
            listeners: Default::default(),
        }
    }

    /// The event listeners every connection of this manager hands its
    /// events to (see [`crate::events`]).
    pub fn with_listeners(mut self, listeners: crate::events::Listeners) -> Self {
        self.listeners = std::sync::Arc::new(listeners);
        self
    }
}

/// Opens one connection in the default schema; see [`establish_in`].
pub fn establish(url: &DatabaseUrl, busy_timeout: Duration) -> ConnectionResult<DbConnection> {
    establish_in(url, &PgSchema::default(), busy_timeout)
}

/// Opens one connection: on PostgreSQL with `search_path` set to frontdesk's
/// schema, on SQLite with the pragmas every connection needs.
pub fn establish_in(
    url: &DatabaseUrl,
    schema: &PgSchema,
    busy_timeout: Duration,
) -> ConnectionResult<DbConnection> {
    match url {
        #[cfg(not(feature = "postgres"))]
        DatabaseUrl::Postgres(_) => Err(not_built("PostgreSQL")),
        #[cfg(not(feature = "sqlite"))]
        DatabaseUrl::Sqlite(_) => Err(not_built("SQLite")),
        #[cfg(feature = "postgres")]
        DatabaseUrl::Postgres(u) => {
            let _ = busy_timeout; // SQLite's alone
            let mut conn = PgConnection::establish(u)?;
            // A session setting, made outside any transaction, so a rollback
            // cannot undo it. A schema that does not exist yet is allowed on
            // the path; `migrate` creates it before anything is written.
            conn.batch_execute(&format!("SET search_path TO {}", schema.ident()))
                .map_err(|e| ConnectionError::BadConnection(e.to_string()))?;
            conn.set_instrumentation(ConnectionHealth::default());
            Ok(DbConnection::Pg(conn))
        }
        #[cfg(feature = "sqlite")]
        DatabaseUrl::Sqlite(path) => {
            let _ = schema; // PostgreSQL's alone
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

/// A URL of a backend this build leaves out ([`DatabaseUrl::parse`] refuses
/// those already; this is for a `DatabaseUrl` made by hand).
#[cfg(not(all(feature = "sqlite", feature = "postgres")))]
fn not_built(backend: &str) -> ConnectionError {
    ConnectionError::BadConnection(format!(
        "this build has no {backend} support (see frontdesk's features)"
    ))
}

/// Watches a PostgreSQL connection's queries for the sign that the server
/// ended it: a query that failed because the connection is closed, or could
/// not be sent at all. libpq does not reconnect, so such a connection fails
/// every later query; the pool drops it when it comes back.
///
/// On pooled connections (both backends) it also carries the connection's
/// pending and committed events ([`crate::events`]), following diesel's
/// begin, commit and rollback.
#[derive(Debug, Default)]
struct ConnectionHealth {
    lost: bool,
    events: Option<crate::events::Buffer>,
}

impl diesel::connection::Instrumentation for ConnectionHealth {
    fn on_connection_event(&mut self, event: diesel::connection::InstrumentationEvent<'_>) {
        use diesel::connection::InstrumentationEvent as E;
        use diesel::result::{DatabaseErrorKind, Error};
        if let Some(buffer) = self.events.as_mut() {
            match &event {
                E::BeginTransaction { depth, .. } => buffer.begin(depth.get()),
                E::CommitTransaction { depth, .. } => buffer.commit(depth.get()),
                E::RollbackTransaction { depth, .. } => buffer.rollback(depth.get()),
                _ => {}
            }
        }
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
        let mut conn = establish_in(&self.url, &self.schema, self.busy_timeout)
            .map_err(r2d2::Error::ConnectionError)?;
        let watch = ConnectionHealth {
            lost: false,
            events: Some(crate::events::Buffer::new(self.listeners.clone())),
        };
        on_backend!(&mut conn, |c| c.set_instrumentation(watch));
        Ok(conn)
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
    /// `ConnectionHealth`. Without this, after a restart or failover every
    /// pooled connection stayed dead in the pool and failed each request that
    /// drew it until it aged out.
    fn has_broken(&self, conn: &mut DbConnection) -> bool {
        use diesel::r2d2::R2D2Connection;
        // Events are delivered by `events::Checkout`; a connection returned
        // any other way must not hand its events to the next borrower.
        if let Some(buffer) = event_buffer(conn) {
            let lost = buffer.clear();
            if lost > 0 {
                tracing::warn!(
                    "frontdesk: {lost} undelivered event(s) dropped with a pooled connection"
                );
            }
        }
        std::thread::panicking()
            || match conn {
                #[cfg(feature = "postgres")]
                DbConnection::Pg(c) => {
                    c.is_broken()
                        || c.instrumentation()
                            .downcast_ref::<ConnectionHealth>()
                            .is_some_and(|h| h.lost)
                }
                #[cfg(feature = "sqlite")]
                DbConnection::Sqlite(c) => c.is_broken(),
            }
    }
}

/// The event buffer of a pooled connection (none on a connection opened
/// outside the pool).
pub(crate) fn event_buffer(conn: &mut DbConnection) -> Option<&mut crate::events::Buffer> {
    let instrumentation = on_backend!(conn, |c| c.instrumentation());
    instrumentation
        .downcast_mut::<ConnectionHealth>()
        .and_then(|h| h.events.as_mut())
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
        let result = crate::events::checkout(pool).and_then(|mut conn| f(&mut conn));
        match result {
            Err(e) if e.is_outage() && attempt < stale + waits.len() => {
                if attempt >= stale {
                    std::thread::sleep(waits[attempt - stale]);
                }
                attempt += 1;
                tracing::warn!("frontdesk: database away, retrying: {e}");
            }
            other => return other,
        }
    }
}

/// Builds the pool and brings the schema up to date, with frontdesk's tables
/// in the default PostgreSQL schema (`frontdesk`).
pub fn connect(url: &str, max_size: u32) -> Result<Pool, CoreError> {
    connect_in(url, max_size, &PgSchema::default())
}

/// Builds the pool with frontdesk's tables in `schema` (PostgreSQL; ignored
/// on SQLite) and brings them up to date.
pub fn connect_in(url: &str, max_size: u32, schema: &PgSchema) -> Result<Pool, CoreError> {
    connect_with(url, max_size, schema, crate::events::Listeners::default())
}

/// [`connect_in`] with the event listeners its connections deliver to.
pub fn connect_with(
    url: &str,
    max_size: u32,
    schema: &PgSchema,
    listeners: crate::events::Listeners,
) -> Result<Pool, CoreError> {
    let (pool, report) = open_with(url, max_size, schema, listeners)?;
    if !report.moved_tables.is_empty() {
        tracing::warn!(
            "frontdesk: moved its tables from public into schema {schema}: {}",
            report.moved_tables.join(", ")
        );
    }
    Ok(pool)
}

/// [`connect_in`], also saying what the migration did.
pub fn open(url: &str, max_size: u32, schema: &PgSchema) -> Result<(Pool, Migrated), CoreError> {
    open_with(url, max_size, schema, crate::events::Listeners::default())
}

/// [`open`] with the event listeners its connections deliver to.
pub fn open_with(
    url: &str,
    max_size: u32,
    schema: &PgSchema,
    listeners: crate::events::Listeners,
) -> Result<(Pool, Migrated), CoreError> {
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
        .build(ConnectionManager::new(url, schema.clone()).with_listeners(listeners))
        .map_err(|e| CoreError::Pool(e.to_string()))?;
    let mut conn = pool.get().map_err(|e| CoreError::Pool(e.to_string()))?;
    let report = migrate(&mut conn, schema)?;
    drop(conn);
    Ok((pool, report))
}

/// What [`migrate`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Migrated {
    /// Tables moved from `public` into frontdesk's schema (an installation
    /// made before frontdesk had a schema of its own), in the order moved.
    pub moved_tables: Vec<String>,
    /// Migrations applied now (their versions).
    pub applied: Vec<String>,
}

/// Applies the embedded migrations in the default schema; see [`migrate`].
pub fn run_migrations(conn: &mut DbConnection) -> Result<(), CoreError> {
    migrate(conn, &PgSchema::default()).map(|_| ())
}

/// Brings frontdesk's tables up to date. On PostgreSQL, under an advisory
/// lock (instances starting together do not race), it creates `schema` if
/// missing, moves an installation that still lives in `public` into it (see
/// [`move_from_public`]), then runs the migrations with diesel's
/// migrations table inside the schema. `conn` must have been opened for the
/// same schema (its `search_path`).
pub fn migrate(conn: &mut DbConnection, schema: &PgSchema) -> Result<Migrated, CoreError> {
    let migrate = |e: Box<dyn std::error::Error + Send + Sync>| CoreError::Migration(e.to_string());
    let versions = |done: Vec<diesel::migration::MigrationVersion<'_>>| {
        done.iter().map(|v| v.to_string()).collect::<Vec<_>>()
    };
    match conn {
        #[cfg(feature = "sqlite")]
        DbConnection::Sqlite(c) => {
            let _ = schema;
            let applied = c
                .run_pending_migrations(SQLITE_MIGRATIONS)
                .map(versions)
                .map_err(migrate)?;
            Ok(Migrated {
                moved_tables: Vec::new(),
                applied,
            })
        }
        #[cfg(feature = "postgres")]
        DbConnection::Pg(c) => {
            c.batch_execute("SELECT pg_advisory_lock(7265746173)")?;
            let result = (|| {
                let moved_tables = pg_schema::prepare_pg_schema(c, schema)?;
                let applied = pg_schema::with_extensions_on_path(c, schema, |c| {
                    c.run_pending_migrations(PG_MIGRATIONS)
                        .map(versions)
                        .map_err(migrate)
                })?;
                Ok(Migrated {
                    moved_tables,
                    applied,
                })
            })();
            c.batch_execute("SELECT pg_advisory_unlock(7265746173)")?;
            result
        }
    }
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

/// Raw SQL written with PostgreSQL's numbered placeholders (`$1`, which may
/// appear more than once) for the connection's backend: SQLite's form of the
/// same is `?1`. The SQL must hold no other `$`.
pub fn numbered_placeholders(conn: &DbConnection, sql: &str) -> String {
    match conn.kind() {
        BackendKind::Postgres => sql.to_owned(),
        BackendKind::Sqlite => sql.replace('$', "?"),
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

/// Serializes, until the end of the current transaction, the transactions
/// that lock any of the same `keys` (a count-then-insert such as a rate
/// limit, which PostgreSQL's read committed would otherwise let race). On
/// PostgreSQL: transaction-level advisory locks, taken in a fixed order so
/// two transactions never wait on each other; SQLite's write transaction
/// holds the one write lock already. Call inside [`write_transaction`].
pub fn lock_keys(conn: &mut DbConnection, keys: &[&str]) -> QueryResult<()> {
    match conn {
        #[cfg(feature = "postgres")]
        DbConnection::Pg(c) => {
            let mut keys: Vec<&str> = keys.to_vec();
            keys.sort_unstable();
            keys.dedup();
            for key in keys {
                diesel::sql_query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
                    .bind::<diesel::sql_types::Text, _>(key)
                    .execute(c)?;
            }
            Ok(())
        }
        #[cfg(feature = "sqlite")]
        DbConnection::Sqlite(_) => {
            let _ = keys;
            Ok(())
        }
    }
}

#[cfg(all(test, feature = "sqlite"))]
mod tests {
    use super::*;

    /// How many statements `run` puts in the connection's statement cache,
    /// through the connection over both backends, as the services use it.
    fn statements_cached(run: impl Fn(&mut DbConnection)) -> usize {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;
        let mut sqlite = SqliteConnection::establish(":memory:").expect("sqlite");
        sqlite
            .batch_execute("CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)")
            .expect("table");
        let cached = Arc::new(AtomicUsize::new(0));
        let seen = cached.clone();
        sqlite.set_instrumentation(move |event: diesel::connection::InstrumentationEvent<'_>| {
            if let diesel::connection::InstrumentationEvent::CacheQuery { .. } = event {
                seen.fetch_add(1, Ordering::SeqCst);
            }
        });
        let mut conn = DbConnection::Sqlite(sqlite);
        for _ in 0..3 {
            run(&mut conn);
        }
        cached.load(Ordering::SeqCst)
    }

    diesel::table! {
        t (id) {
            id -> BigInt,
            n -> BigInt,
        }
    }

    #[test]
    fn a_cached_update_is_prepared_once_where_a_plain_one_never_is() {
        let plain = statements_cached(|c| {
            diesel::update(t::table.filter(t::id.eq(1)))
                .set(t::n.eq(t::n + 1))
                .returning(t::id)
                .load::<i64>(c)
                .expect("update");
        });
        assert_eq!(plain, 0, "diesel caches no UPDATE of its own");
        let wrapped = statements_cached(|c| {
            Cached(
                diesel::update(t::table.filter(t::id.eq(1)))
                    .set(t::n.eq(t::n + 1))
                    .returning(t::id),
            )
            .load::<i64>(c)
            .expect("update");
        });
        assert_eq!(wrapped, 1, "prepared on the first run, reused after");
    }
}
