//! CSV import/export benchmark. Generates a CSV of N users (default 1,000,000),
//! imports it into an empty SQLite database (and PostgreSQL when
//! `FRONTDESK_BENCH_POSTGRES` names a server where databases may be created),
//! exports it back, and compares with the `sqlite3` shell on the same data.
//!
//!     cargo run --release -p frontdesk-cli --example csv_bench -- [ROWS] [sqlite|postgres|both] [BATCH]
//!
//! BATCH is the configured batch size (default 2,000); the import raises it
//! for a large file (`imports::batch_rows`: 20,000 rows per transaction for 1M).
//!
//! `FRONTDESK_BENCH_SETUP_SQL` runs on the empty database before the import
//! (after the migrations), to measure what a piece of the schema costs, e.g.
//! `FRONTDESK_BENCH_SETUP_SQL='DROP TRIGGER users_search_ai'` (SQLite) or
//! `'DROP INDEX users_search_trgm'` (PostgreSQL). Such a run is an
//! experiment, not a figure for the README.
//!
//! Times are wall-clock and CPU (this process, or the sqlite3 child); peak RSS
//! is per phase (VmHWM, reset between phases), so run one backend per process
//! for a clean figure on a busy machine.

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use diesel::connection::SimpleConnection;
use diesel::{Connection, RunQueryDsl};
use frontdesk_core::authz::Actor;
use frontdesk_core::db;
use frontdesk_core::exports::{self, ExportRequest};
use frontdesk_core::imports::{self, ImportConfig, ImportOptions};
use frontdesk_core::organizations;
use frontdesk_core::users::query::UserQuery;
use rand::{Rng, SeedableRng};

const FIRST: &[&str] = &[
    "Ann", "Bob", "Chloé", "David", "Emma", "Farid", "Grace", "Hiro", "Ines", "Jonas", "Kasia",
    "Liam", "Maya", "Noah", "Olga", "Pablo", "Quinn", "Rosa", "Sven", "Tariq", "Uma", "Victor",
    "Wen", "Ximena", "Yusuf", "Zoë",
];
const LAST: &[&str] = &[
    "Smith", "García", "Müller", "Rossi", "Nowak", "Kim", "Okafor", "Dubois", "Silva", "Jensen",
    "Ivanova", "Tanaka", "O'Brien", "Haddad", "Novak", "Costa", "Berg", "Wong", "Khan", "López",
];
const ORGS: usize = 100;
const TAGS: &[&str] = &["beta", "vip", "trial", "churn-risk", "newsletter"];

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn main() -> Res<()> {
    let rows: u64 = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(1_000_000);
    let which = std::env::args().nth(2).unwrap_or_else(|| "both".into());
    let batch: usize = std::env::args()
        .nth(3)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(2_000);
    let dir = tempfile::tempdir()?;
    let csv_path = dir.path().join("users.csv");
    let t = Instant::now();
    generate(&csv_path, rows)?;
    let size = std::fs::metadata(&csv_path)?.len();
    println!(
        "generated {rows} rows ({:.1} MB) in {:.2} s",
        size as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );

    let sqlite_path = dir.path().join("frontdesk.db");
    let url = format!("sqlite://{}", sqlite_path.display());
    let export_path = dir.path().join("export.csv");
    if which != "postgres" {
        sqlite_and_shell(
            &url,
            &sqlite_path,
            dir.path(),
            &csv_path,
            &export_path,
            rows,
            batch,
        )?;
    }
    if which != "sqlite" {
        postgres(&csv_path, &export_path, rows, batch)?;
    }
    Ok(())
}

fn sqlite_and_shell(
    url: &str,
    sqlite_path: &Path,
    dir: &Path,
    csv_path: &Path,
    export_path: &Path,
    rows: u64,
    batch: usize,
) -> Res<()> {
    let (import_s, export_s) = run_backend("sqlite", url, csv_path, export_path, rows, batch)?;
    // The sqlite3 shell on the same data, in the same run.
    let dump = dir.join("sqlite3-dump.csv");
    let t = Instant::now();
    let cpu0 = child_cpu_s();
    let out = Command::new("sqlite3")
        .arg("-csv")
        .arg("-header")
        .arg(sqlite_path)
        .arg("SELECT * FROM users;")
        .stdout(File::create(&dump)?)
        .status()?;
    let dump_s = t.elapsed().as_secs_f64();
    let dump_cpu = child_cpu_s() - cpu0;
    if !out.success() {
        return Err("sqlite3 -csv failed".into());
    }
    let raw_db = dir.join("raw.db");
    let t = Instant::now();
    let cpu0 = child_cpu_s();
    let out = Command::new("sqlite3")
        .arg(&raw_db)
        .arg(".mode csv")
        .arg(format!(".import {} users_raw", csv_path.display()))
        .status()?;
    let sqlite_import_s = t.elapsed().as_secs_f64();
    let sqlite_import_cpu = child_cpu_s() - cpu0;
    if !out.success() {
        return Err("sqlite3 .import failed".into());
    }
    println!(
        "sqlite3 -csv dump of users: {:.2} s wall / {:.2} s CPU ({:.0} rows/s); frontdesk export runs at {:.0} % of its speed (wall), {:.0} % (CPU)",
        dump_s,
        dump_cpu,
        rows as f64 / dump_s,
        100.0 * dump_s / export_s.0,
        100.0 * dump_cpu / export_s.1
    );
    println!(
        "sqlite3 .import (no validation, no indexes, no search index): {:.2} s wall / {:.2} s CPU; frontdesk import takes {:.1}x as long (wall), {:.1}x (CPU)",
        sqlite_import_s,
        sqlite_import_cpu,
        import_s.0 / sqlite_import_s,
        import_s.1 / sqlite_import_cpu.max(0.001)
    );
    Ok(())
}

fn postgres(csv_path: &Path, export_path: &Path, rows: u64, batch: usize) -> Res<()> {
    if let Ok(admin) = std::env::var("FRONTDESK_BENCH_POSTGRES") {
        let name = format!("fd_bench_{}", std::process::id());
        let mut c = diesel::PgConnection::establish(&admin)?;
        c.batch_execute(&format!("CREATE DATABASE {name}"))?;
        let url = match admin.rsplit_once('/') {
            Some((base, _)) => format!("{base}/{name}"),
            None => return Err("FRONTDESK_BENCH_POSTGRES must end with /database".into()),
        };
        let result = run_backend("postgres", &url, csv_path, export_path, rows, batch);
        c.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))?;
        result?;
    } else {
        println!("postgres: skipped (set FRONTDESK_BENCH_POSTGRES=postgres://user@host/db)");
    }
    Ok(())
}

/// CPU seconds (user + system) of this process, and of its waited-for children.
fn cpu_times() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may contain spaces) start at "state".
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<f64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    let tick = 100.0; // USER_HZ on Linux
    let get = |i: usize| f.get(i).copied().unwrap_or(0.0) / tick;
    // utime, stime, cutime, cstime are fields 14-17, i.e. 11-14 after "state".
    (get(11) + get(12), get(13) + get(14))
}

/// The PostgreSQL backend serving this connection, when it is a local process
/// this user may inspect (its CPU time is most of an import's cost).
fn server_pid(conn: &mut db::DbConnection) -> Option<u32> {
    #[derive(diesel::QueryableByName)]
    struct Pid {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        pid: i32,
    }
    if conn.kind() != db::BackendKind::Postgres {
        return None;
    }
    let pid = diesel::sql_query("SELECT pg_backend_pid() AS pid")
        .get_result::<Pid>(conn)
        .ok()?
        .pid;
    let pid = u32::try_from(pid).ok()?;
    process_cpu_s(pid).map(|_| pid)
}

/// CPU seconds (user + system) of another process, from /proc.
fn process_cpu_s(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<f64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    Some((f.get(11)? + f.get(12)?) / 100.0)
}

fn self_cpu_s() -> f64 {
    cpu_times().0
}

fn child_cpu_s() -> f64 {
    cpu_times().1
}

fn generate(path: &Path, rows: u64) -> Res<()> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut w = csv::Writer::from_writer(BufWriter::new(File::create(path)?));
    w.write_record([
        "email",
        "first_name",
        "last_name",
        "organization",
        "role",
        "tags",
        "company",
    ])?;
    for i in 0..rows {
        let first = FIRST[rng.gen_range(0..FIRST.len())];
        let last = LAST[rng.gen_range(0..LAST.len())];
        let org = format!("org-{}", rng.gen_range(0..ORGS));
        let role = if rng.gen_ratio(1, 50) {
            "admin"
        } else {
            "member"
        };
        let tags = if rng.gen_ratio(1, 3) {
            TAGS[rng.gen_range(0..TAGS.len())]
        } else {
            ""
        };
        let email = format!(
            "{}.{}.{i}@example.com",
            first.to_lowercase(),
            last.to_lowercase().replace('\'', "")
        );
        let company = format!("{last} & Co, {}", rng.gen_range(1..500));
        w.write_record([email.as_str(), first, last, &org, role, tags, &company])?;
    }
    w.flush()?;
    Ok(())
}

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

fn current_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

/// Resets the peak RSS counter so each phase is measured on its own.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Returns (wall, CPU) seconds of the import and of the export.
fn run_backend(
    label: &str,
    url: &str,
    csv_path: &Path,
    export_path: &Path,
    rows: u64,
    batch: usize,
) -> Res<((f64, f64), (f64, f64))> {
    let pool = db::connect(url, 2)?;
    let mut conn = pool.get()?;
    // What an index or constraint costs: drop it here and compare runs.
    if let Ok(sql) = std::env::var("FRONTDESK_BENCH_SETUP_SQL") {
        conn.batch_execute(&sql)?;
    }
    let system = Actor::system();
    for i in 0..ORGS {
        organizations::create(
            &mut conn,
            &system,
            &format!("org-{i}"),
            &format!("Org {i}"),
            "",
        )?;
    }
    let config = ImportConfig {
        profile_fields: vec!["company".into()],
        max_rows: rows.max(1),
        max_bytes: u64::MAX,
        batch_size: batch,
        ..ImportConfig::default()
    };
    let options = ImportOptions {
        source_name: "bench.csv".into(),
        ..ImportOptions::default()
    };
    let server = server_pid(&mut conn);
    let server_cpu0 = server.and_then(process_cpu_s);
    reset_peak_rss();
    let t = Instant::now();
    let cpu0 = self_cpu_s();
    let report = imports::import(
        &mut conn,
        &system,
        &config,
        &options,
        BufReader::new(File::open(csv_path)?),
        &mut |_| {},
    )?;
    let import_s = t.elapsed().as_secs_f64();
    let import_cpu = self_cpu_s() - cpu0;
    let import_rss = peak_rss_mb();
    let server_cpu = match (server.and_then(process_cpu_s), server_cpu0) {
        (Some(b), Some(a)) => format!(", {:.2} s CPU in the PostgreSQL server process", b - a),
        _ => String::new(),
    };
    if report.created != rows {
        return Err(format!(
            "{label}: created {} of {rows} rows: {}",
            report.created,
            report.summary()
        )
        .into());
    }
    println!(
        "{label}: import {rows} rows in {import_s:.2} s wall / {import_cpu:.2} s CPU in this process{server_cpu} ({:.0} rows/s), peak RSS {import_rss:.0} MB",
        rows as f64 / import_s
    );

    reset_peak_rss();
    // Memory the import freed but the allocator kept counts in the export's peak.
    let rss_before_export = current_rss_mb();
    let req = ExportRequest::new(
        exports::default_fields(&config.profile_fields),
        UserQuery::default(),
    );
    let t = Instant::now();
    let cpu0 = self_cpu_s();
    let out = BufWriter::new(File::create(export_path)?);
    let summary = exports::export(&mut conn, &system, &req, out, &mut |_| {})?;
    let export_s = t.elapsed().as_secs_f64();
    let export_cpu = self_cpu_s() - cpu0;
    let export_rss = peak_rss_mb();
    println!(
        "{label}: export {} rows in {export_s:.2} s wall / {export_cpu:.2} s CPU ({:.0} rows/s), peak RSS {export_rss:.0} MB (RSS {rss_before_export:.0} MB when it started)",
        summary.rows,
        summary.rows as f64 / export_s
    );
    let mut stdout = std::io::stdout();
    stdout.flush()?;
    Ok(((import_s, import_cpu), (export_s, export_cpu)))
}
