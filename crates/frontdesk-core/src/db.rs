//! Connections, the r2d2 pool and embedded migrations for both backends.
//! Backend-specific SQL lives here, behind explicit matches on `DbConnection`.
//! On PostgreSQL frontdesk's tables live in a schema of their own
//! ([`PgSchema`]); an installation that still has them in `public` is moved
//! there once, when the pool is first opened ([`migrate`]).

use diesel::connection::SimpleConnection;
use diesel::migration::MigrationSource;
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
pub struct Cached<Q>(pub Q);

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

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const PG_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

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

/// The PostgreSQL schema that holds frontdesk's tables and diesel's record of
/// its migrations (`__diesel_schema_migrations`). Every connection's
/// `search_path` is this schema alone, so frontdesk's unqualified table names
/// never reach a host's tables of the same name in `public`. The name ends up
/// in SQL, so it is checked: lower-case ASCII letters, digits and `_`,
/// starting with a letter or `_`, at most 63 bytes, not `pg_…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgSchema(String);

impl PgSchema {
    pub const DEFAULT: &'static str = "frontdesk";

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

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name as a quoted SQL identifier (safe: [`PgSchema::new`] checked it).
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
        DatabaseUrl::Postgres(u) => {
            let mut conn = PgConnection::establish(u)?;
            // A session setting, made outside any transaction, so a rollback
            // cannot undo it. A schema that does not exist yet is allowed on
            // the path; `migrate` creates it before anything is written.
            conn.batch_execute(&format!("SET search_path TO {}", schema.ident()))
                .map_err(|e| ConnectionError::BadConnection(e.to_string()))?;
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
        match &mut conn {
            DbConnection::Pg(c) => c.set_instrumentation(watch),
            DbConnection::Sqlite(c) => c.set_instrumentation(watch),
        }
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
    /// [`ConnectionHealth`]. Without this, after a restart or failover every
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

/// The event buffer of a pooled connection (none on a connection opened
/// outside the pool).
pub(crate) fn event_buffer(conn: &mut DbConnection) -> Option<&mut crate::events::Buffer> {
    let instrumentation = match conn {
        DbConnection::Pg(c) => c.instrumentation(),
        DbConnection::Sqlite(c) => c.instrumentation(),
    };
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
        DbConnection::Sqlite(c) => {
            let applied = c
                .run_pending_migrations(SQLITE_MIGRATIONS)
                .map(versions)
                .map_err(migrate)?;
            Ok(Migrated {
                moved_tables: Vec::new(),
                applied,
            })
        }
        DbConnection::Pg(c) => {
            c.batch_execute("SELECT pg_advisory_lock(7265746173)")?;
            let result = (|| {
                let moved_tables = prepare_pg_schema(c, schema)?;
                let applied = with_extensions_on_path(c, schema, |c| {
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

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    name: String,
}

fn names(c: &mut PgConnection, sql: &str, bind: &str) -> QueryResult<Vec<String>> {
    Ok(diesel::sql_query(sql)
        .bind::<Text, _>(bind)
        .load::<Name>(c)?
        .into_iter()
        .map(|n| n.name)
        .collect())
}

fn table_exists(c: &mut PgConnection, schema: &str, table: &str) -> QueryResult<bool> {
    Ok(!names(
        c,
        "SELECT c.relname::text AS name FROM pg_class c \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relkind IN ('r', 'p') AND n.nspname = $1",
        schema,
    )?
    .iter()
    .all(|t| t != table))
}

/// Creates the schema when missing (checked first, so a role without CREATE
/// on the database can use a schema its DBA made) and moves a `public`
/// installation into it. Returns the tables moved.
fn prepare_pg_schema(c: &mut PgConnection, schema: &PgSchema) -> Result<Vec<String>, CoreError> {
    let exists = !names(
        c,
        "SELECT nspname::text AS name FROM pg_namespace WHERE nspname = $1",
        schema.as_str(),
    )?
    .is_empty();
    if !exists {
        c.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {}", schema.ident()))?;
    }
    if schema.as_str() == "public" || table_exists(c, schema.as_str(), MIGRATIONS_TABLE)? {
        return Ok(Vec::new());
    }
    move_from_public(c, schema)
}

const MIGRATIONS_TABLE: &str = "__diesel_schema_migrations";

/// The tables each PostgreSQL migration creates: an installation in `public`
/// (from before frontdesk had a schema of its own, or one run with
/// `postgres_schema("public")`) has exactly the tables of the versions it
/// recorded there, and only those are moved. Every new migration gets a line
/// (with `&[]` when it creates no table); a unit test checks that none is missing.
const LEGACY_TABLES: &[(&str, &[&str])] = &[
    (
        "20261125000001",
        &[
            "organizations",
            "users",
            "memberships",
            "tags",
            "user_tags",
            "invitations",
            "sessions",
            "password_resets",
            "login_attempts",
            "audit_events",
            "outbox",
            "api_keys",
        ],
    ),
    ("20261125000050", &[]),
    ("20261126000100", &["imports", "import_invitations"]),
    ("20261126000200", &[]),
    ("20261204000100", &[]),
    ("20261204000200", &[]),
    ("20261204000400", &[]),
    (
        "20261205000100",
        &["email_verifications", "signup_requests"],
    ),
    (
        "20261205000400",
        &["mfa_factors", "mfa_recovery_codes", "mfa_challenges"],
    ),
    ("20261206000200", &["passkey_ceremonies"]),
    ("20261206000210", &[]),
    ("20261206000300", &["activity_events"]),
    (
        "20261206000310",
        &["services", "user_services", "session_services"],
    ),
    ("20261207000050", &[]),
    (
        "20261207000500",
        &["groups", "group_members", "scim_tokens", "scim_requests"],
    ),
    (
        "20261207000700",
        &["licence_types", "user_licences", "group_licences"],
    ),
    (
        "20261208000100",
        &[
            "identity_providers",
            "identity_provider_domains",
            "linked_identities",
            "sso_states",
            "sso_exemptions",
        ],
    ),
    ("20261209000100", &[]),
    ("20261209000200", &["invitation_groups"]),
    ("20261210000100", &[]),
];

/// Moves an installation made before frontdesk had a schema of its own from
/// `public` into `schema`, in one transaction: its tables (indexes,
/// constraints and the sequences of their `BIGSERIAL` columns go with them;
/// foreign keys follow, they point at tables, not names) and its rows of
/// diesel's migrations table, which are copied into the schema's own
/// migrations table and removed from `public`'s (dropped if that leaves it
/// empty). A host's own tables in `public` are never touched: the evidence for
/// a move is frontdesk's migration versions recorded in
/// `public.__diesel_schema_migrations`, and only the tables those versions
/// created are moved. Does nothing when `public` holds no such record.
pub fn move_from_public(c: &mut PgConnection, schema: &PgSchema) -> Result<Vec<String>, CoreError> {
    if !table_exists(c, "public", MIGRATIONS_TABLE)? {
        return Ok(Vec::new());
    }
    let ours: Vec<String> = MigrationSource::<diesel::pg::Pg>::migrations(&PG_MIGRATIONS)
        .map_err(|e| CoreError::Migration(e.to_string()))?
        .iter()
        .map(|m| m.name().version().to_string())
        .collect();
    let recorded: Vec<String> = names(
        c,
        "SELECT version::text AS name FROM public.__diesel_schema_migrations \
         WHERE version = ANY(string_to_array($1, ',')) ORDER BY version",
        &ours.join(","),
    )?;
    if recorded.is_empty() {
        return Ok(Vec::new());
    }
    let mut tables = Vec::new();
    for version in &recorded {
        let Some((_, made)) = LEGACY_TABLES.iter().find(|(v, _)| v == version) else {
            return Err(CoreError::Migration(format!(
                "public.{MIGRATIONS_TABLE} records frontdesk migration {version}, which \
                 never ran in public; move frontdesk's tables into schema {schema} by hand"
            )));
        };
        tables.extend(made.iter().copied());
    }
    for table in &tables {
        if !table_exists(c, "public", table)? {
            return Err(CoreError::Migration(format!(
                "public.{MIGRATIONS_TABLE} records frontdesk's migrations but public.{table} \
                 is missing; nothing was moved"
            )));
        }
        if table_exists(c, schema.as_str(), table)? {
            return Err(CoreError::Migration(format!(
                "both public.{table} and {schema}.{table} exist; nothing was moved"
            )));
        }
    }
    let s = schema.ident();
    c.transaction(|c| {
        for table in &tables {
            c.batch_execute(&format!("ALTER TABLE public.\"{table}\" SET SCHEMA {s}"))?;
        }
        c.batch_execute(&format!(
            "CREATE TABLE {s}.{MIGRATIONS_TABLE} \
               (LIKE public.{MIGRATIONS_TABLE} INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING INDEXES)"
        ))?;
        let list = recorded
            .iter()
            .map(|v| format!("'{v}'"))
            .collect::<Vec<_>>()
            .join(", ");
        c.batch_execute(&format!(
            "INSERT INTO {s}.{MIGRATIONS_TABLE} SELECT * FROM public.{MIGRATIONS_TABLE} \
               WHERE version IN ({list}); \
             DELETE FROM public.{MIGRATIONS_TABLE} WHERE version IN ({list})"
        ))?;
        let left: i64 = diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(&format!(
            "(SELECT count(*) FROM public.{MIGRATIONS_TABLE})"
        )))
        .get_result(c)?;
        if left == 0 {
            c.batch_execute(&format!("DROP TABLE public.{MIGRATIONS_TABLE}"))?;
        }
        Ok::<_, diesel::result::Error>(())
    })?;
    Ok(tables.into_iter().map(str::to_owned).collect())
}

/// Runs `f` with the schema holding an already installed extension (pg_trgm,
/// usually in `public`) on the `search_path` after frontdesk's own schema, so
/// that a migration finds its operator classes; the path is set back after.
/// Where no extension is installed yet, the migration's `CREATE EXTENSION`
/// puts it in frontdesk's schema (the first on the path, and one frontdesk may
/// create in). Queries need no such name: an index refers to its operator
/// class by id.
fn with_extensions_on_path<T>(
    c: &mut PgConnection,
    schema: &PgSchema,
    f: impl FnOnce(&mut PgConnection) -> Result<T, CoreError>,
) -> Result<T, CoreError> {
    let others = names(
        c,
        "SELECT DISTINCT n.nspname::text AS name FROM pg_extension e \
         JOIN pg_namespace n ON n.oid = e.extnamespace \
         WHERE e.extname = 'pg_trgm' AND n.nspname <> $1",
        schema.as_str(),
    )?;
    if others.is_empty() {
        return f(c);
    }
    let path = std::iter::once(schema.ident())
        .chain(
            others
                .iter()
                .map(|n| format!("\"{}\"", n.replace('"', "\"\""))),
        )
        .collect::<Vec<_>>()
        .join(", ");
    c.batch_execute(&format!("SET search_path TO {path}"))?;
    let result = f(c);
    c.batch_execute(&format!("SET search_path TO {}", schema.ident()))?;
    result
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
    match conn {
        DbConnection::Pg(_) => sql.to_owned(),
        DbConnection::Sqlite(_) => sql.replace('$', "?"),
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
        DbConnection::Sqlite(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use diesel::migration::MigrationSource;

    /// A migration missing from `LEGACY_TABLES` would make the move out of
    /// `public` refuse every installation that recorded it.
    #[test]
    fn every_postgres_migration_says_which_tables_it_creates() {
        let versions: Vec<String> = MigrationSource::<diesel::pg::Pg>::migrations(&PG_MIGRATIONS)
            .expect("embedded migrations")
            .iter()
            .map(|m| m.name().version().to_string())
            .collect();
        let listed: Vec<String> = LEGACY_TABLES.iter().map(|(v, _)| v.to_string()).collect();
        assert_eq!(versions, listed);
    }

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
