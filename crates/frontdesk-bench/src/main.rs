//! `frontdesk-bench`: seeds a large database and measures frontdesk against it.
//! `users-query`: the users list query on SQLite and PostgreSQL, through the
//! same `UserQuery::run_scoped` the pages and API use. `http`: the same cases
//! through the admin users page and the JSON API's users list.

mod cases;
mod http;
mod names;
mod seed;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use diesel::PgConnection;
use frontdesk_core::db::DbConnection;

const USAGE: &str =
    "usage: frontdesk-bench users-query|http [--backend sqlite|postgres|both] [--users N] [--reuse] \
[--iterations N] [--sqlite PATH] [--postgres URL] [--markdown PATH] [--only CASE-TEXT] \
[--target page|api|both (http only)]";

const SQLITE_SCHEMA: &str =
    include_str!("../../frontdesk-core/migrations/sqlite/2026-11-25-000001_initial/up.sql");
const PG_SCHEMA: &str =
    include_str!("../../frontdesk-core/migrations/postgres/2026-11-25-000001_initial/up.sql");

pub struct Options {
    sqlite: bool,
    postgres: bool,
    users: usize,
    reuse: bool,
    iterations: usize,
    sqlite_path: PathBuf,
    postgres_url: String,
    markdown: Option<PathBuf>,
    /// Only the cases whose name contains this text.
    pub only: Option<String>,
    command: String,
    /// `http` rather than `users-query`.
    http: bool,
    /// What `http` requests: the admin page, the API, or both.
    page: bool,
    api: bool,
}

fn parse_args() -> Result<Options, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    let http = match it.next().map(String::as_str) {
        Some("users-query") => false,
        Some("http") => true,
        _ => return Err(USAGE.into()),
    };
    let mut o = Options {
        sqlite: true,
        postgres: true,
        users: 1_000_000,
        reuse: false,
        iterations: 30,
        sqlite_path: std::env::temp_dir().join("frontdesk-bench-users.sqlite3"),
        postgres_url: "postgres://postgres@127.0.0.1:5432/fd_bench".into(),
        markdown: None,
        only: None,
        command: format!(
            "cargo run --release -p frontdesk-bench -- {}",
            args.join(" ")
        ),
        http,
        page: true,
        api: true,
    };
    while let Some(a) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{a} needs a value\n{USAGE}"))
        };
        match a.as_str() {
            "--backend" => match value()?.as_str() {
                "sqlite" => (o.sqlite, o.postgres) = (true, false),
                "postgres" => (o.sqlite, o.postgres) = (false, true),
                "both" => (o.sqlite, o.postgres) = (true, true),
                other => return Err(format!("unknown backend {other:?}\n{USAGE}")),
            },
            "--users" => {
                o.users = value()?
                    .replace('_', "")
                    .parse()
                    .map_err(|e| format!("--users: {e}"))?
            }
            "--iterations" => {
                o.iterations = value()?.parse().map_err(|e| format!("--iterations: {e}"))?
            }
            "--reuse" => o.reuse = true,
            "--sqlite" => o.sqlite_path = value()?.into(),
            "--postgres" => o.postgres_url = value()?,
            "--markdown" => o.markdown = Some(value()?.into()),
            "--only" => o.only = Some(value()?),
            "--target" if http => match value()?.as_str() {
                "page" => (o.page, o.api) = (true, false),
                "api" => (o.page, o.api) = (false, true),
                "both" => (o.page, o.api) = (true, true),
                other => return Err(format!("unknown target {other:?}\n{USAGE}")),
            },
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    if o.users < 10_000 || o.iterations == 0 {
        return Err("--users must be at least 10000 and --iterations at least 1".into());
    }
    Ok(o)
}

/// What a reusable database must match: the seeded size and the schema it was seeded with.
fn fingerprint(schema: &str, users: usize) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in schema.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    format!("users={users} schema={h:016x} seed=1")
}

#[derive(QueryableByName)]
struct Meta {
    #[diesel(sql_type = Text)]
    fingerprint: String,
}

fn stored_fingerprint(conn: &mut DbConnection) -> Option<String> {
    diesel::sql_query("SELECT fingerprint FROM frontdesk_bench_meta")
        .get_result::<Meta>(conn)
        .ok()
        .map(|m| m.fingerprint)
}

fn store_fingerprint(conn: &mut DbConnection, fp: &str) -> QueryResult<()> {
    conn.batch_execute(
        "CREATE TABLE IF NOT EXISTS frontdesk_bench_meta (fingerprint TEXT NOT NULL)",
    )?;
    conn.batch_execute(&format!(
        "DELETE FROM frontdesk_bench_meta; INSERT INTO frontdesk_bench_meta VALUES ('{fp}')"
    ))
}

pub type BoxError = Box<dyn std::error::Error>;

fn open(url: &str) -> Result<DbConnection, BoxError> {
    let pool = frontdesk_core::db::connect(url, 1)?;
    let conn = frontdesk_core::db::establish(
        &frontdesk_core::db::DatabaseUrl::parse(url)?,
        std::time::Duration::from_secs(5),
    )?;
    drop(pool);
    Ok(conn)
}

fn prepare_sqlite(o: &Options, data: &mut Option<seed::Data>) -> Result<DbConnection, BoxError> {
    let url = o.sqlite_path.to_string_lossy().into_owned();
    let fp = fingerprint(SQLITE_SCHEMA, o.users);
    if o.reuse && o.sqlite_path.exists() {
        let mut conn = open(&url)?;
        if stored_fingerprint(&mut conn).as_deref() == Some(fp.as_str()) {
            eprintln!("sqlite: reusing {}", o.sqlite_path.display());
            return Ok(conn);
        }
        eprintln!(
            "sqlite: {} holds other data, seeding afresh",
            o.sqlite_path.display()
        );
    }
    for suffix in ["", "-wal", "-shm"] {
        let mut p = o.sqlite_path.clone().into_os_string();
        p.push(suffix);
        let _ = std::fs::remove_file(p);
    }
    let data = data.get_or_insert_with(|| generate(o.users));
    let mut conn = open(&url)?;
    let t = Instant::now();
    match &mut conn {
        DbConnection::Sqlite(c) => seed::load_sqlite(c, data)?,
        DbConnection::Pg(_) => return Err("expected a SQLite connection".into()),
    }
    store_fingerprint(&mut conn, &fp)?;
    eprintln!(
        "sqlite: loaded and indexed in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    Ok(conn)
}

fn prepare_postgres(o: &Options, data: &mut Option<seed::Data>) -> Result<DbConnection, BoxError> {
    let fp = fingerprint(PG_SCHEMA, o.users);
    if o.reuse {
        if let Ok(mut conn) = open(&o.postgres_url) {
            if stored_fingerprint(&mut conn).as_deref() == Some(fp.as_str()) {
                eprintln!("postgres: reusing {}", o.postgres_url);
                return Ok(conn);
            }
            eprintln!(
                "postgres: {} holds other data, seeding afresh",
                o.postgres_url
            );
        }
    }
    let (base, db) = o
        .postgres_url
        .rsplit_once('/')
        .filter(|(_, db)| {
            !db.is_empty() && db.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
        .ok_or("the PostgreSQL URL must end in a plain database name")?;
    let mut admin = PgConnection::establish(&format!("{base}/postgres"))?;
    admin.batch_execute(&format!("DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)"))?;
    admin.batch_execute(&format!("CREATE DATABASE \"{db}\""))?;
    let data = data.get_or_insert_with(|| generate(o.users));
    let mut conn = open(&o.postgres_url)?;
    let t = Instant::now();
    match &mut conn {
        DbConnection::Pg(c) => seed::load_postgres(c, data)?,
        DbConnection::Sqlite(_) => return Err("expected a PostgreSQL connection".into()),
    }
    store_fingerprint(&mut conn, &fp)?;
    eprintln!(
        "postgres: loaded and indexed in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    Ok(conn)
}

fn generate(users: usize) -> seed::Data {
    let t = Instant::now();
    let data = seed::generate(users);
    eprintln!(
        "generated {} users, {} organizations, {} memberships, {} tag assignments in {:.1} s",
        data.users.len(),
        data.orgs.len(),
        data.memberships.len(),
        data.user_tags.len(),
        t.elapsed().as_secs_f64()
    );
    data
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// The seeded database of one backend, checked to hold `--users` users.
fn prepared(
    o: &Options,
    name: &str,
    data: &mut Option<seed::Data>,
) -> Result<DbConnection, BoxError> {
    let mut conn = if name == "SQLite" {
        prepare_sqlite(o, data)?
    } else {
        prepare_postgres(o, data)?
    };
    let n: Count = diesel::sql_query("SELECT count(*) AS n FROM users").get_result(&mut conn)?;
    if n.n as usize != o.users {
        return Err(format!("{name}: expected {} users, found {}", o.users, n.n).into());
    }
    Ok(conn)
}

fn write_report(o: &Options, report: &str) -> Result<(), BoxError> {
    println!("{report}");
    if let Some(path) = &o.markdown {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, report)?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

fn run(o: &Options) -> Result<(), BoxError> {
    let mut data = None;
    let mut results = Vec::new();
    let mut versions = Vec::new();
    let mut floors = Vec::new();
    for (enabled, name) in [(o.sqlite, "SQLite"), (o.postgres, "PostgreSQL")] {
        if !enabled {
            continue;
        }
        let mut conn = prepared(o, name, &mut data)?;
        versions.push(cases::version(&mut conn)?);
        eprintln!("{name}: measuring ({} iterations per case)", o.iterations);
        results.push((
            name,
            cases::measure(&mut conn, o.iterations, o.only.as_deref())?,
        ));
        floors.push(cases::count_floor(&mut conn, o.iterations)?);
    }
    drop(data);
    write_report(o, &cases::report(o, &versions, &floors, &results))
}

/// `http`: seeds (or reuses) each backend, then measures the page and the API on it.
fn run_http(o: &Options) -> Result<(), BoxError> {
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".into());
    let mut data = None;
    let mut results = Vec::new();
    let mut versions = Vec::new();
    for (enabled, name) in [(o.sqlite, "SQLite"), (o.postgres, "PostgreSQL")] {
        if !enabled {
            continue;
        }
        let mut conn = prepared(o, name, &mut data)?;
        versions.push(cases::version(&mut conn)?);
        drop(conn);
        let url = if name == "SQLite" {
            o.sqlite_path.to_string_lossy().into_owned()
        } else {
            o.postgres_url.clone()
        };
        eprintln!("{name}: measuring ({} iterations per case)", o.iterations);
        results.push((name, http::measure(&url, o)?));
    }
    drop(data);
    write_report(o, &http::report(o, &load, &versions, &results))
}

fn main() -> ExitCode {
    let o = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let result = if o.http { run_http(&o) } else { run(&o) };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
