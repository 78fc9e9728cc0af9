//! Test databases: every test gets a fresh SQLite file or a fresh PostgreSQL
//! database of its own. PostgreSQL runs need `FRONTDESK_TEST_POSTGRES` (a URL
//! of a server where databases may be created); without it they are skipped
//! and say so, unless `FRONTDESK_REQUIRE_POSTGRES=1`, which turns a skip into
//! a failure (CI sets it).

use frontdesk_core::db::{self, BackendKind, Pool, PooledConn};
use std::sync::atomic::{AtomicU32, Ordering};

#[allow(dead_code)]
pub struct TestDb {
    pool: Option<Pool>,
    pub url: String,
    pub kind: BackendKind,
    pg: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    pub fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("frontdesk.db").display());
        let pool = db::connect(&url, 4).expect("sqlite pool");
        TestDb {
            pool: Some(pool),
            url,
            kind: BackendKind::Sqlite,
            pg: None,
            _dir: Some(dir),
        }
    }

    /// A fresh PostgreSQL database, or `None` (with a note) when none is
    /// configured. It is a copy of a template database that holds the
    /// migrated schema ([`template`]), so each test skips the migrations.
    pub fn postgres() -> Option<TestDb> {
        let admin_url = postgres_url_or_skip()?;
        let name = fresh_name();
        let template = template(&admin_url);
        admin_exec(
            &admin_url,
            &format!("CREATE DATABASE {name} TEMPLATE {template}"),
        );
        let url = replace_db_name(&admin_url, &name);
        let pool = db::connect(&url, 4).expect("postgres pool");
        Some(TestDb {
            pool: Some(pool),
            url,
            kind: BackendKind::Postgres,
            pg: Some((admin_url, name)),
            _dir: None,
        })
    }

    /// A fresh PostgreSQL database with nothing in it yet (no frontdesk
    /// tables, no pool): for tests that put a host's own tables in first and
    /// then hand the pool they build to [`TestDb::set_pool`].
    #[allow(dead_code)]
    pub fn postgres_empty() -> Option<TestDb> {
        let admin_url = postgres_url_or_skip()?;
        let name = fresh_name();
        admin_exec(&admin_url, &format!("CREATE DATABASE {name}"));
        let url = replace_db_name(&admin_url, &name);
        Some(TestDb {
            pool: None,
            url,
            kind: BackendKind::Postgres,
            pg: Some((admin_url, name)),
            _dir: None,
        })
    }

    #[allow(dead_code)]
    pub fn set_pool(&mut self, pool: Pool) {
        self.pool = Some(pool);
    }

    /// Closes this handle's pool (other clones of it stay open).
    #[allow(dead_code)]
    pub fn close_pool(&mut self) {
        self.pool = None;
    }

    pub fn pool(&self) -> &Pool {
        self.pool.as_ref().expect("pool")
    }

    pub fn conn(&self) -> PooledConn {
        self.pool().get().expect("connection")
    }

    /// A trigger that makes the database refuse to insert the user with this
    /// email ("refused by the database"), to fail one batch of an import.
    #[allow(dead_code)] // not every test binary that shares this file uses it
    pub fn refuse_user(&self, email: &str) {
        use diesel::connection::SimpleConnection;
        let sql = match self.kind {
            BackendKind::Sqlite => format!(
                "CREATE TRIGGER refuse_user BEFORE INSERT ON users WHEN NEW.email = '{email}' \
                 BEGIN SELECT RAISE(ABORT, 'refused by the database'); END;"
            ),
            BackendKind::Postgres => format!(
                "CREATE FUNCTION refuse_user() RETURNS trigger AS $$ BEGIN \
                   IF NEW.email = '{email}' THEN RAISE EXCEPTION 'refused by the database'; END IF; \
                   RETURN NEW; END $$ LANGUAGE plpgsql; \
                 CREATE TRIGGER refuse_user BEFORE INSERT ON users FOR EACH ROW EXECUTE FUNCTION refuse_user();"
            ),
        };
        self.conn().batch_execute(&sql).expect("trigger");
    }

    /// PostgreSQL: the server ends every connection to this database, as a
    /// restart or failover would. Returns how many it ended.
    #[allow(dead_code)] // not every test binary that shares this file uses it
    pub fn terminate_connections(&self) -> usize {
        self.terminator()()
    }

    /// [`TestDb::terminate_connections`] as a closure that may outlive `self`
    /// and run on any thread.
    #[allow(dead_code)]
    pub fn terminator(&self) -> impl Fn() -> usize + Send + Sync + 'static {
        let (admin, name) = self.pg.clone().expect("a PostgreSQL test database");
        move || {
            use diesel::{Connection, RunQueryDsl};
            #[derive(diesel::QueryableByName)]
            struct Ended {
                #[diesel(sql_type = diesel::sql_types::BigInt)]
                n: i64,
            }
            let mut c = diesel::PgConnection::establish(&admin)
                .expect("connect to FRONTDESK_TEST_POSTGRES");
            let ended = diesel::sql_query(format!(
                "SELECT count(pg_terminate_backend(pid)) AS n FROM pg_stat_activity \
                 WHERE datname = '{name}' AND pid <> pg_backend_pid()"
            ))
            .get_result::<Ended>(&mut c)
            .expect("terminate");
            ended.n as usize
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        drop(self.pool.take());
        if let Some((admin, name)) = &self.pg {
            admin_exec(
                admin,
                &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            );
        }
    }
}

/// The server's URL, or `None` after saying the PostgreSQL half is skipped
/// (a failure instead with `FRONTDESK_REQUIRE_POSTGRES=1`).
fn postgres_url_or_skip() -> Option<String> {
    let url = postgres_admin_url();
    if url.is_none() {
        if std::env::var("FRONTDESK_REQUIRE_POSTGRES").is_ok_and(|v| v == "1") {
            panic!("FRONTDESK_REQUIRE_POSTGRES=1 but FRONTDESK_TEST_POSTGRES is not set");
        }
        eprintln!("SKIPPED (postgres): set FRONTDESK_TEST_POSTGRES=postgres://user@host/db to run");
    }
    url
}

fn fresh_name() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    format!(
        "fd_test_{}_{}_{:08x}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        rand::random::<u32>()
    )
}

/// The name of a database holding frontdesk's migrated schema, made once per
/// set of PostgreSQL migrations and kept on the server for later runs
/// (`fd_tpl_<hash of the migration files and of the db module>`; drop them freely). It is built
/// under another name and renamed when complete, under an advisory lock, so
/// test runs starting together (or one killed half-way) never copy a
/// half-migrated template.
fn template(admin_url: &str) -> String {
    static TEMPLATE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TEMPLATE
        .get_or_init(|| {
            use diesel::connection::SimpleConnection;
            use diesel::{Connection, RunQueryDsl};
            use std::hash::{Hash, Hasher};
            // The workspace root: this file is shared by test binaries of
            // several packages.
            let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .ancestors()
                .find(|d| d.join("crates/frontdesk-core/src/db/mod.rs").is_file())
                .expect("workspace root");
            let dir = root.join("crates/frontdesk-core/migrations/postgres");
            let mut files: Vec<_> = std::fs::read_dir(&dir)
                .expect("migrations/postgres")
                .map(|e| e.expect("entry").path())
                .collect();
            files.sort();
            let mut h = std::collections::hash_map::DefaultHasher::new();
            db::PgSchema::DEFAULT.hash(&mut h);
            // The code that runs them, too (a change there may change the result).
            for code in ["mod.rs", "pg_schema.rs"] {
                std::fs::read(root.join("crates/frontdesk-core/src/db").join(code))
                    .expect("the db module")
                    .hash(&mut h);
            }
            for f in &files {
                f.file_name().hash(&mut h);
                std::fs::read(f.join("up.sql"))
                    .expect("up.sql")
                    .hash(&mut h);
            }
            let name = format!("fd_tpl_{:016x}", h.finish());

            let mut admin = diesel::PgConnection::establish(admin_url)
                .expect("connect to FRONTDESK_TEST_POSTGRES");
            admin
                .batch_execute("SELECT pg_advisory_lock(7265746174)")
                .expect("lock");
            #[derive(diesel::QueryableByName)]
            struct Found {
                #[diesel(sql_type = diesel::sql_types::BigInt)]
                n: i64,
            }
            let found: Found = diesel::sql_query(format!(
                "SELECT count(*) AS n FROM pg_database WHERE datname = '{name}'"
            ))
            .get_result(&mut admin)
            .expect("look for the template");
            if found.n == 0 {
                let building = format!("{name}_{}", std::process::id());
                admin_exec(admin_url, &format!("DROP DATABASE IF EXISTS {building}"));
                admin_exec(admin_url, &format!("CREATE DATABASE {building}"));
                let pool = db::connect(&replace_db_name(admin_url, &building), 1)
                    .expect("migrate the template");
                drop(pool);
                admin_exec(
                    admin_url,
                    &format!("ALTER DATABASE {building} RENAME TO {name}"),
                );
            }
            admin
                .batch_execute("SELECT pg_advisory_unlock(7265746174)")
                .expect("unlock");
            name
        })
        .clone()
}

pub fn postgres_admin_url() -> Option<String> {
    std::env::var("FRONTDESK_TEST_POSTGRES")
        .ok()
        .filter(|u| !u.is_empty())
}

fn admin_exec(admin_url: &str, sql: &str) {
    use diesel::connection::SimpleConnection;
    use diesel::Connection;
    let mut c =
        diesel::PgConnection::establish(admin_url).expect("connect to FRONTDESK_TEST_POSTGRES");
    c.batch_execute(sql)
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// The same URL pointing at another database.
pub fn replace_db_name(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

/// Runs the same test body on SQLite and on PostgreSQL: `both!(name, |db| { … })`
/// makes `name::sqlite` and `name::postgres`.
#[macro_export]
macro_rules! both {
    ($name:ident, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[test]
            fn sqlite() {
                let db = $crate::support::TestDb::sqlite();
                let f: fn(&$crate::support::TestDb) = $body;
                f(&db);
            }

            #[test]
            fn postgres() {
                if let Some(db) = $crate::support::TestDb::postgres() {
                    let f: fn(&$crate::support::TestDb) = $body;
                    f(&db);
                }
            }
        }
    };
}

/// [`both!`] for a test that serves frontdesk over HTTP, with a third case:
/// the same test through an axum host (frontdesk-axum) on SQLite. `$body`
/// is a function (or a closure capturing nothing) of the database and the
/// [`Framework`] to serve it with.
///
/// [`Framework`]: crate::admin_browser::Framework
#[macro_export]
macro_rules! both_and_axum {
    ($name:ident, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            use $crate::admin_browser::Framework;

            #[test]
            fn sqlite() {
                let f: fn(&$crate::support::TestDb, Framework) = $body;
                f(&$crate::support::TestDb::sqlite(), Framework::ActixWeb);
            }

            #[test]
            fn postgres() {
                if let Some(db) = $crate::support::TestDb::postgres() {
                    let f: fn(&$crate::support::TestDb, Framework) = $body;
                    f(&db, Framework::ActixWeb);
                }
            }

            #[test]
            fn sqlite_through_axum() {
                let f: fn(&$crate::support::TestDb, Framework) = $body;
                f(&$crate::support::TestDb::sqlite(), Framework::Axum);
            }
        }
    };
}

/// A problem+json body without its `request_id` (each request has its own),
/// for checking that two answers are otherwise byte-identical.
#[allow(dead_code)] // not every test binary that shares this file uses it
pub fn sans_request_id(body: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(body) {
        Ok(mut v) => {
            if let Some(o) = v.as_object_mut() {
                assert!(o.remove("request_id").is_some(), "no request_id: {body}");
            }
            v.to_string()
        }
        Err(_) => body.to_owned(),
    }
}
