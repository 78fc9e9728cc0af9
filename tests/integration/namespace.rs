//! frontdesk as a guest in the host's database: on PostgreSQL its tables and
//! its record of migrations live in a schema of their own (default
//! `frontdesk`), beside a host's own `users`, `sessions` and `organizations`
//! in `public`; an installation made before that is moved there once, with
//! every row. On SQLite the database file is frontdesk's own.

use std::path::Path;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use diesel_migrations::{FileBasedMigrations, MigrationHarness};
use frontdesk_core::db::{self, PgSchema};
use frontdesk_core::imports::{self, ImportConfig, ImportOptions};
use frontdesk_core::{Actor, CoreError};

use crate::host_app;
use crate::support::TestDb;
use crate::web_app::{self, block_on, Browser, PASSWORD};

/// Every table frontdesk's PostgreSQL migrations create.
const FRONTDESK_TABLES: &[&str] = &[
    "activity_events",
    "api_keys",
    "audit_events",
    "email_verifications",
    "group_licences",
    "group_members",
    "groups",
    "identity_provider_domains",
    "identity_providers",
    "import_invitations",
    "imports",
    "invitation_groups",
    "invitations",
    "licence_types",
    "linked_identities",
    "login_attempts",
    "memberships",
    "mfa_challenges",
    "mfa_factors",
    "mfa_recovery_codes",
    "organizations",
    "outbox",
    "passkey_ceremonies",
    "password_resets",
    "scim_requests",
    "scim_tokens",
    "services",
    "session_services",
    "sessions",
    "set_counts",
    "signup_requests",
    "sso_exemptions",
    "sso_states",
    "tags",
    "user_licences",
    "user_services",
    "user_tags",
    "users",
];

/// frontdesk's migration versions, from the folder the migrations are
/// embedded from (`2026-11-25-000001_initial` is version `20261125000001`).
fn frontdesk_versions() -> Vec<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("crates/frontdesk-core/migrations/postgres");
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("migrations")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|n| Some(n.split_once('_')?.0.replace('-', "")))
        .collect();
    v.sort();
    v
}

#[derive(QueryableByName)]
struct Row {
    #[diesel(sql_type = Text)]
    v: String,
}

fn pg(url: &str) -> PgConnection {
    PgConnection::establish(url).expect("connect")
}

/// Lines of text from one query over a plain connection (the `search_path`
/// a host's own code has: `"$user", public`).
fn rows(url: &str, sql: &str) -> Vec<String> {
    let mut c = pg(url);
    diesel::sql_query(sql)
        .load::<Row>(&mut c)
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .into_iter()
        .map(|r| r.v)
        .collect()
}

fn tables_in(url: &str, schema: &str) -> Vec<String> {
    rows(
        url,
        &format!(
            "SELECT tablename::text AS v FROM pg_tables WHERE schemaname = '{schema}' ORDER BY 1"
        ),
    )
}

fn versions_in(url: &str, schema: &str) -> Vec<String> {
    rows(
        url,
        &format!("SELECT version::text AS v FROM {schema}.__diesel_schema_migrations ORDER BY 1"),
    )
}

/// The host app's own diesel migrations, written to `dir`: its own `users`,
/// `sessions` and `organizations`, and some rows in them.
fn host_migrations(dir: &Path) -> FileBasedMigrations {
    let m = [
        (
            "2020-01-01-000000_host_tables",
            // pg_trgm installed by the host, in `public`: frontdesk's
            // migration must find its operator class there.
            "CREATE EXTENSION IF NOT EXISTS pg_trgm;\n\
             CREATE TABLE users (id SERIAL PRIMARY KEY, login TEXT NOT NULL UNIQUE, email TEXT);\n\
             CREATE TABLE organizations (id SERIAL PRIMARY KEY, title TEXT NOT NULL);\n\
             CREATE TABLE sessions (id SERIAL PRIMARY KEY, \
               user_id INTEGER NOT NULL REFERENCES users (id), token TEXT NOT NULL);\n",
        ),
        (
            "2020-02-01-000000_host_rows",
            "INSERT INTO users (login, email) VALUES ('root', 'ada@example.com'), ('ops', NULL);\n\
             INSERT INTO organizations (title) VALUES ('Host Org');\n\
             INSERT INTO sessions (user_id, token) VALUES (1, 'host-token');\n",
        ),
    ];
    for (name, up) in m {
        let d = dir.join(name);
        std::fs::create_dir_all(&d).expect("dir");
        std::fs::write(d.join("up.sql"), up).expect("up.sql");
        std::fs::write(d.join("down.sql"), "SELECT 1;").expect("down.sql");
    }
    FileBasedMigrations::from_path(dir).expect("host migrations")
}

const HOST_VERSIONS: &[&str] = &["20200101000000", "20200201000000"];

/// Everything of the host's in `public`, as text: its tables and every row.
fn host_snapshot(url: &str) -> Vec<String> {
    let mut out = tables_in(url, "public");
    for t in ["users", "organizations", "sessions"] {
        out.extend(rows(
            url,
            &format!("SELECT t::text AS v FROM public.{t} t ORDER BY id"),
        ));
    }
    out.extend(versions_in(url, "public"));
    out
}

/// Runs a real flow through frontdesk: a user with a password signs in
/// through the web app and opens a host page, an organization admin invites
/// someone, a CSV import creates a user. Returns the signed-in user's id.
fn frontdesk_flow(db: &TestDb, fd: &frontdesk::Frontdesk) -> i64 {
    let ada = web_app::user_with_password(db, "ada@example.com");
    block_on(async {
        let app = host_app!(fd);
        let mut b = Browser::new();
        let login = b.login(&app, "ada@example.com", PASSWORD).await;
        assert!(login.status.is_redirection(), "login: {}", login.status);
        let notes = b.get(&app, "/notes").await;
        assert_eq!(notes.status, 200);
        assert_eq!(notes.body, "notes of ada@example.com");
    });
    let mut conn = db.conn();
    let f = crate::invitations::fixture(&mut conn, "acme", "");
    crate::invitations::invite(&mut conn, &f, "nina@example.com");
    let report = imports::import_bytes(
        &mut conn,
        &Actor::system(),
        &ImportConfig::default(),
        &ImportOptions {
            source_name: "people.csv".into(),
            ..ImportOptions::default()
        },
        b"email,first_name,last_name,tags\nbob@example.com,Bob,Builder,beta\n",
        &mut |_| {},
    )
    .expect("import");
    assert_eq!(report.created, 1);
    assert_eq!(report.tags_created, ["beta"]);
    ada.id
}

fn frontdesk_emails(db: &TestDb) -> Vec<String> {
    use frontdesk_core::schema::users;
    let mut emails: Vec<String> = users::table
        .select(users::email)
        .load(&mut db.conn())
        .expect("emails");
    emails.sort();
    emails
}

#[test]
fn schema_names_are_checked() {
    for good in ["frontdesk", "_fd", "crm_people2", "public", &"a".repeat(63)] {
        assert_eq!(PgSchema::new(good).expect(good).as_str(), good);
    }
    for bad in [
        "",
        "Frontdesk",
        "front-desk",
        "front desk",
        "fd;drop",
        "fd\"x",
        "2fd",
        "pg_fd",
        "é",
        &"a".repeat(64),
    ] {
        assert!(
            matches!(PgSchema::new(bad), Err(CoreError::Config(_))),
            "{bad:?} accepted"
        );
    }
}

#[test]
fn a_bad_schema_name_is_refused_before_anything_is_created() {
    let Some(db) = TestDb::postgres_empty() else {
        return;
    };
    let err = web_app::builder(&db)
        .postgres_schema("fd\"; DROP TABLE x; --")
        .build()
        .err()
        .expect("refused");
    assert!(matches!(err, CoreError::Config(_)), "{err}");
    assert!(rows(
        &db.url,
        "SELECT nspname::text AS v FROM pg_namespace WHERE nspname LIKE 'fd%'"
    )
    .is_empty());
    assert!(tables_in(&db.url, "public").is_empty());
}

#[test]
fn frontdesk_lives_in_its_own_schema() {
    let Some(db) = TestDb::postgres() else {
        return;
    };
    let mut with_migrations: Vec<&str> = FRONTDESK_TABLES.to_vec();
    with_migrations.push("__diesel_schema_migrations");
    with_migrations.sort();
    assert_eq!(tables_in(&db.url, "frontdesk"), with_migrations);
    assert_eq!(tables_in(&db.url, "public"), Vec::<String>::new());
    assert_eq!(versions_in(&db.url, "frontdesk"), frontdesk_versions());
    // The sequences of its ids are its own too.
    assert_eq!(
        rows(
            &db.url,
            "SELECT sequencename::text AS v FROM pg_sequences WHERE sequencename = 'users_id_seq' \
             ORDER BY schemaname"
        ),
        ["users_id_seq"]
    );
    assert_eq!(
        rows(
            &db.url,
            "SELECT schemaname::text AS v FROM pg_sequences WHERE sequencename = 'users_id_seq'"
        ),
        ["frontdesk"]
    );
    // The migrations are applied once: a second start changes nothing.
    let (_, again) = db::open(&db.url, 1, &PgSchema::default()).expect("again");
    assert_eq!(again, db::Migrated::default());
}

#[test]
fn the_schema_is_a_builder_option() {
    let Some(mut db) = TestDb::postgres_empty() else {
        return;
    };
    let fd = web_app::builder(&db)
        .postgres_schema("crm_people")
        .build()
        .expect("build");
    db.set_pool(fd.pool().clone());
    frontdesk_flow(&db, &fd);
    assert!(tables_in(&db.url, "crm_people").contains(&"users".to_owned()));
    assert!(tables_in(&db.url, "frontdesk").is_empty());
    assert!(tables_in(&db.url, "public").is_empty());
    let mut there = rows(&db.url, "SELECT email AS v FROM crm_people.users");
    there.sort();
    assert_eq!(there, frontdesk_emails(&db));
    assert_eq!(there.len(), 4);
}

#[test]
fn beside_a_host_schema_neither_side_touches_the_other() {
    let Some(mut db) = TestDb::postgres_empty() else {
        return;
    };
    let dir = tempfile::tempdir().expect("dir");
    let host = host_migrations(dir.path());
    let applied = pg(&db.url)
        .run_pending_migrations(host.clone())
        .expect("host migrations")
        .len();
    assert_eq!(applied, 2);
    let before = host_snapshot(&db.url);
    assert_eq!(tables_in(&db.url, "public").len(), 4, "{before:?}");

    let fd = web_app::frontdesk(&db);
    db.set_pool(fd.pool().clone());
    let ada = frontdesk_flow(&db, &fd);

    // Every connection of the pool, not only the one that migrated, finds
    // frontdesk's users (4) and not the host's (2).
    let held: Vec<_> = (0..fd.pool().max_size())
        .map(|_| fd.pool().get().expect("connection"))
        .collect();
    for mut c in held {
        let n: i64 = frontdesk_core::schema::users::table
            .count()
            .get_result(&mut *c)
            .expect("count");
        assert_eq!(n, 4);
    }

    // The host's tables, rows and record of migrations are as they were, and
    // the host's own migration run still finds nothing to do.
    assert_eq!(host_snapshot(&db.url), before);
    assert_eq!(versions_in(&db.url, "public"), HOST_VERSIONS);
    assert!(pg(&db.url)
        .pending_migrations(host)
        .expect("pending")
        .is_empty());
    // frontdesk's are in its schema, with only its own migrations recorded.
    assert_eq!(versions_in(&db.url, "frontdesk"), frontdesk_versions());
    for t in FRONTDESK_TABLES {
        assert!(
            tables_in(&db.url, "frontdesk").contains(&(*t).to_owned()),
            "{t}"
        );
    }
    assert_eq!(
        frontdesk_emails(&db),
        [
            "ada@example.com",
            "admin@acme.example",
            "bob@example.com",
            "boss@acme.example"
        ]
    );
    assert_eq!(
        rows(&db.url, "SELECT email AS v FROM frontdesk.invitations"),
        ["nina@example.com"]
    );
    assert_eq!(
        rows(
            &db.url,
            "SELECT count(*)::text AS v FROM frontdesk.sessions WHERE revoked_at IS NULL"
        ),
        ["1"]
    );

    // A host table may point at frontdesk's users (the README's example).
    let mut c = pg(&db.url);
    c.batch_execute(
        "CREATE TABLE notes (id SERIAL PRIMARY KEY, \
           user_id BIGINT NOT NULL REFERENCES frontdesk.users (id) ON DELETE CASCADE, \
           body TEXT NOT NULL)",
    )
    .expect("host table with a foreign key");
    diesel::sql_query("INSERT INTO notes (user_id, body) VALUES ($1, 'hello')")
        .bind::<BigInt, _>(ada)
        .execute(&mut c)
        .expect("note of a frontdesk user");
    let missing = diesel::sql_query("INSERT INTO notes (user_id, body) VALUES ($1, 'x')")
        .bind::<BigInt, _>(ada + 1000)
        .execute(&mut c);
    assert!(
        matches!(
            missing,
            Err(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::ForeignKeyViolation,
                _
            ))
        ),
        "{missing:?}"
    );
    frontdesk_core::users::delete(&mut db.conn(), &Actor::system(), ada).expect("delete");
    assert!(rows(&db.url, "SELECT body AS v FROM public.notes").is_empty());
    assert_eq!(
        host_snapshot(&db.url)[..],
        {
            let mut b = before.clone();
            b.insert(1, "notes".into());
            b
        }[..]
    );
}

/// Every row of every frontdesk table in `schema`, as text, plus where each
/// id sequence stands.
fn frontdesk_snapshot(url: &str, schema: &str, tables: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for t in tables {
        out.push(format!("-- {t}"));
        out.extend(rows(
            url,
            &format!("SELECT t::text AS v FROM {schema}.{t} t ORDER BY t::text"),
        ));
    }
    let sequences = tables
        .iter()
        .map(|t| format!("'{t}_id_seq'"))
        .collect::<Vec<_>>()
        .join(", ");
    out.extend(rows(
        url,
        &format!(
            "SELECT sequencename || '=' || coalesce(last_value::text, '-') AS v \
             FROM pg_sequences WHERE schemaname = '{schema}' AND sequencename IN ({sequences}) \
             ORDER BY 1"
        ),
    ));
    out
}

/// A database laid out as before frontdesk had a schema: its tables and its
/// migration versions in `public`, next to a host's own table and migrations,
/// with rows in every table a real flow writes. Returns the host's migrations
/// and the browser that signed in (its session cookie).
fn old_installation(db: &mut TestDb, dir: &Path) -> (FileBasedMigrations, Browser, i64) {
    let d = dir.join("2020-01-01-000000_host_accounts");
    std::fs::create_dir_all(&d).expect("dir");
    std::fs::write(
        d.join("up.sql"),
        "CREATE TABLE accounts (id SERIAL PRIMARY KEY, plan TEXT NOT NULL);\n\
         INSERT INTO accounts (plan) VALUES ('gold');\n",
    )
    .expect("up.sql");
    std::fs::write(d.join("down.sql"), "SELECT 1;").expect("down.sql");
    let host = FileBasedMigrations::from_path(dir).expect("host migrations");
    pg(&db.url)
        .run_pending_migrations(host.clone())
        .expect("host migrations");

    // `public` as the schema is exactly the old layout: search_path public,
    // diesel's table shared with the host's.
    let old = PgSchema::new("public").expect("public");
    let fd = web_app::builder(db)
        .postgres_schema("public")
        .build()
        .expect("old layout");
    db.set_pool(fd.pool().clone());
    let (_, report) = db::open(&db.url, 1, &old).expect("old layout again");
    assert_eq!(report, db::Migrated::default());
    let ada = frontdesk_flow(db, &fd);
    let mut b = Browser::new();
    block_on(async {
        let app = host_app!(fd);
        b.login(&app, "ada@example.com", PASSWORD).await;
        assert_eq!(b.get(&app, "/notes").await.status, 200);
    });
    let mut c = pg(&db.url);
    c.batch_execute(
        "CREATE TABLE notes (id SERIAL PRIMARY KEY, \
           user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE, body TEXT NOT NULL)",
    )
    .expect("host notes");
    diesel::sql_query("INSERT INTO notes (user_id, body) VALUES ($1, 'kept')")
        .bind::<BigInt, _>(ada)
        .execute(&mut c)
        .expect("note");
    (host, b, ada)
}

#[test]
fn an_installation_in_public_is_moved_with_every_row() {
    let Some(mut db) = TestDb::postgres_empty() else {
        return;
    };
    let dir = tempfile::tempdir().expect("dir");
    let (host, mut browser, ada) = old_installation(&mut db, dir.path());
    let mut public_before = FRONTDESK_TABLES.to_vec();
    public_before.extend(["__diesel_schema_migrations", "accounts", "notes"]);
    public_before.sort();
    assert_eq!(tables_in(&db.url, "public"), public_before);
    let mut all_versions = frontdesk_versions();
    all_versions.insert(0, "20200101000000".to_owned());
    assert_eq!(versions_in(&db.url, "public"), all_versions);
    let before = frontdesk_snapshot(&db.url, "public", FRONTDESK_TABLES);
    for t in [
        "users",
        "sessions",
        "invitations",
        "login_attempts",
        "audit_events",
        "outbox",
    ] {
        let n = rows(
            &db.url,
            &format!("SELECT count(*)::text AS v FROM public.{t}"),
        );
        assert_ne!(n, ["0"], "{t} has rows to move");
    }
    db.close_pool();

    let (pool, report) = db::open(&db.url, 2, &PgSchema::default()).expect("upgrade");
    let mut moved = report.moved_tables.clone();
    moved.sort();
    assert_eq!(moved, FRONTDESK_TABLES);
    assert!(report.applied.is_empty(), "{:?}", report.applied);
    drop(pool);

    // Every row, and every sequence where it stood, now in the schema.
    assert_eq!(
        frontdesk_snapshot(&db.url, "frontdesk", FRONTDESK_TABLES),
        before
    );
    assert_eq!(
        tables_in(&db.url, "public"),
        ["__diesel_schema_migrations", "accounts", "notes"]
    );
    assert_eq!(versions_in(&db.url, "public"), ["20200101000000"]);
    assert_eq!(versions_in(&db.url, "frontdesk"), frontdesk_versions());
    assert!(pg(&db.url)
        .pending_migrations(host)
        .expect("pending")
        .is_empty());
    assert_eq!(
        rows(&db.url, "SELECT t::text AS v FROM public.accounts t"),
        ["(1,gold)"]
    );

    // The app works on the moved tables: the session from before the move is
    // still valid, sign-in works, new rows continue the old ids.
    let fd = web_app::frontdesk(&db);
    db.set_pool(fd.pool().clone());
    block_on(async {
        let app = host_app!(fd);
        let notes = browser.get(&app, "/notes").await;
        assert_eq!(notes.status, 200);
        assert_eq!(notes.body, "notes of ada@example.com");
        let mut b = Browser::new();
        b.login(&app, "ada@example.com", PASSWORD).await;
        assert_eq!(b.get(&app, "/notes").await.status, 200);
    });
    let max_before: i64 = rows(&db.url, "SELECT max(id)::text AS v FROM frontdesk.users")[0]
        .parse()
        .expect("id");
    let carol = web_app::user_with_password(&db, "carol@example.com");
    assert!(carol.id > max_before);
    // The triggers' functions moved too, and look in the schema: a change of
    // a sign-up time, from a session whose path is `public`, rewrites the
    // copies in frontdesk's `memberships` and `user_tags`.
    assert_eq!(
        rows(
            &db.url,
            "SELECT n.nspname || ' ' || array_to_string(p.proconfig, ',') AS v \
             FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace \
             WHERE p.proname IN ('copy_user_created_at', 'user_created_at_changed') ORDER BY 1"
        ),
        [
            "frontdesk search_path=frontdesk",
            "frontdesk search_path=frontdesk"
        ]
    );
    let mut c = pg(&db.url);
    c.batch_execute("CREATE TABLE public.memberships (user_id BIGINT, user_created_at TIMESTAMP);")
        .expect("a host table named like frontdesk's");
    c.batch_execute("UPDATE frontdesk.users SET created_at = created_at - interval '1 day'")
        .expect("sign-up times moved");
    for table in ["memberships", "user_tags"] {
        assert_eq!(
            rows(
                &db.url,
                &format!(
                    "SELECT (count(*) > 0)::text || ' ' || count(*) FILTER \
                       (WHERE s.user_created_at IS DISTINCT FROM u.created_at) AS v \
                     FROM frontdesk.{table} s JOIN frontdesk.users u ON u.id = s.user_id"
                )
            ),
            ["true 0"],
            "{table}: rows, each copy following its user"
        );
    }
    c.batch_execute("DROP TABLE public.memberships")
        .expect("drop");
    // The kept counts' triggers too: users added from a session whose path
    // is `public`, beside a host table named like frontdesk's, are counted
    // in frontdesk's `set_counts`.
    c.batch_execute(
        "CREATE TABLE public.set_counts (counted TEXT, key BIGINT, n BIGINT); \
         INSERT INTO frontdesk.users (email, created_at, updated_at) \
         VALUES ('dan@example.com', now(), now()), ('eve@example.com', now(), now())",
    )
    .expect("users added from public");
    assert_eq!(
        rows(
            &db.url,
            "SELECT ((SELECT sum(n) FROM frontdesk.set_counts WHERE counted = 'users') \
               = (SELECT count(*) FROM frontdesk.users))::text || ' ' || \
               (SELECT count(*) FROM public.set_counts) AS v"
        ),
        ["true 0"]
    );
    c.batch_execute("DROP TABLE public.set_counts")
        .expect("drop");
    // The host's foreign key followed the table.
    frontdesk_core::users::delete(&mut db.conn(), &Actor::system(), ada).expect("delete");
    assert!(rows(&db.url, "SELECT body AS v FROM public.notes").is_empty());

    // A second start moves nothing.
    let (_, again) = db::open(&db.url, 1, &PgSchema::default()).expect("again");
    assert_eq!(again, db::Migrated::default());
}

#[test]
fn an_installation_whose_tables_do_not_match_its_record_is_left_alone() {
    let Some(mut db) = TestDb::postgres_empty() else {
        return;
    };
    let dir = tempfile::tempdir().expect("dir");
    old_installation(&mut db, dir.path());
    db.close_pool();
    pg(&db.url)
        .batch_execute("DROP TABLE public.api_keys")
        .expect("drop");
    let before = frontdesk_snapshot(&db.url, "public", &["users", "sessions", "invitations"]);
    let err = db::open(&db.url, 1, &PgSchema::default()).expect_err("refused");
    assert!(
        matches!(&err, CoreError::Migration(m) if m.contains("public.api_keys is missing")),
        "{err}"
    );
    assert_eq!(
        frontdesk_snapshot(&db.url, "public", &["users", "sessions", "invitations"]),
        before
    );
    assert!(tables_in(&db.url, "frontdesk").is_empty());
    // The host's version and every one of frontdesk's, still in public.
    assert_eq!(
        versions_in(&db.url, "public").len(),
        1 + frontdesk_versions().len()
    );
}

#[test]
fn on_sqlite_frontdesk_keeps_to_its_own_file() {
    use diesel::SqliteConnection;
    let dir = tempfile::tempdir().expect("dir");
    let host_file = dir.path().join("host.db");
    let host_url = host_file.display().to_string();
    let mig = tempfile::tempdir().expect("dir");
    let sqlite_host = {
        let d = mig.path().join("2020-01-01-000000_host_tables");
        std::fs::create_dir_all(&d).expect("dir");
        std::fs::write(
            d.join("up.sql"),
            "CREATE TABLE users (id INTEGER PRIMARY KEY, login TEXT NOT NULL UNIQUE);\n\
             CREATE TABLE organizations (id INTEGER PRIMARY KEY, title TEXT NOT NULL);\n\
             CREATE TABLE sessions (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users (id), token TEXT NOT NULL);\n\
             INSERT INTO users (login) VALUES ('root');\n\
             INSERT INTO organizations (title) VALUES ('Host Org');\n\
             INSERT INTO sessions (user_id, token) VALUES (1, 'host-token');\n",
        )
        .expect("up.sql");
        std::fs::write(d.join("down.sql"), "SELECT 1;").expect("down.sql");
        FileBasedMigrations::from_path(mig.path()).expect("host migrations")
    };
    let mut host = SqliteConnection::establish(&host_url).expect("host db");
    host.run_pending_migrations(sqlite_host)
        .expect("host migrations");
    let snapshot = |c: &mut SqliteConnection| -> Vec<String> {
        diesel::sql_query("SELECT name || ':' || type AS v FROM sqlite_master ORDER BY name")
            .load::<Row>(c)
            .expect("schema")
            .into_iter()
            .chain(
                diesel::sql_query(
                    "SELECT 'u' || id || login AS v FROM users UNION ALL \
                 SELECT 'o' || id || title FROM organizations UNION ALL \
                 SELECT 's' || id || user_id || token FROM sessions UNION ALL \
                 SELECT version FROM __diesel_schema_migrations ORDER BY 1",
                )
                .load::<Row>(c)
                .expect("rows"),
            )
            .map(|r| r.v)
            .collect()
    };
    let before = snapshot(&mut host);

    let db = TestDb::sqlite();
    let fd = web_app::frontdesk(&db);
    let ada = frontdesk_flow(&db, &fd);
    assert_eq!(snapshot(&mut host), before);

    // The host reads frontdesk's users through ATTACH; SQLite has no foreign
    // key into another file, so the host keeps a plain id column and cleans
    // up from the user-deleted hook (see the README).
    let fd_file = db.url.trim_start_matches("sqlite://").to_owned();
    diesel::sql_query("ATTACH DATABASE ? AS frontdesk")
        .bind::<Text, _>(&fd_file)
        .execute(&mut host)
        .expect("attach");
    let cross = host.batch_execute(
        "CREATE TABLE notes (id INTEGER PRIMARY KEY, \
           user_id INTEGER NOT NULL REFERENCES frontdesk.users (id), body TEXT)",
    );
    assert!(cross.is_err(), "a foreign key into another file: {cross:?}");
    host.batch_execute(
        "CREATE TABLE notes (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL, body TEXT)",
    )
    .expect("notes");
    diesel::sql_query("INSERT INTO notes (user_id, body) VALUES (?, 'hello')")
        .bind::<BigInt, _>(ada)
        .execute(&mut host)
        .expect("note");
    let joined = diesel::sql_query(
        "SELECT u.email || ':' || n.body AS v FROM notes n JOIN frontdesk.users u ON u.id = n.user_id",
    )
    .load::<Row>(&mut host)
    .expect("join");
    assert_eq!(joined.len(), 1);
    assert_eq!(joined[0].v, "ada@example.com:hello");
}
