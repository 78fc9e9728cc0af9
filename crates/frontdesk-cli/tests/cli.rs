//! The `frontdesk` binary end to end on a SQLite file: migrate, create-admin,
//! template, import (dry run, strict, default, report file) and export.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn frontdesk(db: &str, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_frontdesk"))
        .args(args)
        .env("DATABASE_URL", db)
        .env_remove("FRONTDESK_PROFILE_FIELDS")
        .env_remove("FRONTDESK_POSTGRES_SCHEMA")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run frontdesk");
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes()).expect("stdin");
    }
    child.wait_with_output().expect("wait")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn operator_commands_on_sqlite() {
    let dir = tempfile::tempdir().expect("dir");
    let db = format!("sqlite://{}", dir.path().join("fd.db").display());
    operator_commands(&db, dir.path());
}

/// The same on a fresh PostgreSQL database when `FRONTDESK_TEST_POSTGRES` is set.
#[test]
fn operator_commands_on_postgres() {
    with_postgres(|db| {
        let dir = tempfile::tempdir().expect("dir");
        operator_commands(db, dir.path());
    });
}

/// `migrate` moves an installation made before frontdesk had a schema of its
/// own (everything in `public`) into its schema and says so; the other
/// commands then find the moved rows.
#[test]
fn migrate_moves_tables_out_of_public() {
    with_postgres(|db| {
        let o = frontdesk(db, &["migrate", "--postgres-schema", "Front-Desk"], None);
        assert!(!o.status.success());
        assert!(
            stderr(&o).contains("PostgreSQL schema \"Front-Desk\""),
            "{}",
            stderr(&o)
        );

        // `public` as the schema is the old layout.
        let old = ["--postgres-schema", "public"];
        let o = frontdesk(db, &[&["migrate"], &old[..]].concat(), None);
        assert!(o.status.success(), "{}", stderr(&o));
        let o = frontdesk(
            db,
            &[&["create-admin", "--email", "root@example.com"], &old[..]].concat(),
            None,
        );
        assert!(o.status.success(), "{}", stderr(&o));

        let o = frontdesk(db, &["migrate"], None);
        assert!(o.status.success(), "{}", stderr(&o));
        let out = stdout(&o);
        assert!(
            out.contains(
                "moved 38 tables from public into schema frontdesk: organizations, users,"
            ),
            "{out}"
        );
        assert!(!out.contains("applied migration"), "{out}");
        let o = frontdesk(db, &["export", "--fields", "email", "-o", "-"], None);
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(stdout(&o), "email\nroot@example.com\n");

        let o = frontdesk(db, &["migrate"], None);
        assert_eq!(stdout(&o), "database schema is up to date\n");
        // In another schema: a fresh set of tables, the moved ones untouched.
        let o = frontdesk(db, &["migrate", "--postgres-schema", "ops"], None);
        assert!(
            stdout(&o).contains("applied migration 20261125000001"),
            "{}",
            stdout(&o)
        );
        let o = frontdesk(
            db,
            &[
                "export",
                "--fields",
                "email",
                "-o",
                "-",
                "--postgres-schema",
                "ops",
            ],
            None,
        );
        assert_eq!(stdout(&o), "email\n");
    });
}

/// Runs `f` with the URL of a fresh PostgreSQL database when
/// `FRONTDESK_TEST_POSTGRES` is set.
fn with_postgres(f: impl FnOnce(&str) + std::panic::UnwindSafe) {
    use diesel::connection::SimpleConnection;
    use diesel::Connection;
    let Some(admin) = std::env::var("FRONTDESK_TEST_POSTGRES")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        assert!(
            std::env::var("FRONTDESK_REQUIRE_POSTGRES").map_or(true, |v| v != "1"),
            "PostgreSQL required"
        );
        eprintln!("SKIPPED (postgres): set FRONTDESK_TEST_POSTGRES to run");
        return;
    };
    let name = format!(
        "fd_cli_test_{}_{:08x}",
        std::process::id(),
        rand::random::<u32>()
    );
    let mut c = diesel::PgConnection::establish(&admin).expect("connect");
    c.batch_execute(&format!("CREATE DATABASE {name}"))
        .expect("create database");
    let (base, query) = admin
        .split_once('?')
        .map_or((admin.as_str(), None), |(b, q)| (b, Some(q)));
    let base = base.rsplit_once('/').map_or(base, |(b, _)| b);
    let db = match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    };
    let result = std::panic::catch_unwind(|| f(&db));
    c.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .expect("drop database");
    if let Err(p) = result {
        std::panic::resume_unwind(p);
    }
}

fn operator_commands(db: &str, dir: &std::path::Path) {
    let db = db.to_owned();
    let csv = dir.join("users.csv");
    std::fs::write(&csv, "email,first_name,last_name,tags\nann@example.com,=Ann,Lee,beta\nANN@example.com,Ann,Again,\nbob@example.com,Bob,Stone,\n")
        .expect("csv");
    let file = csv.to_str().expect("path");

    let o = frontdesk(&db, &["migrate"], None);
    assert!(o.status.success(), "{}", stderr(&o));

    let o = frontdesk(
        &db,
        &[
            "create-admin",
            "--email",
            "Root@Example.com",
            "--password-stdin",
        ],
        Some("correct horse battery\n"),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("created staff owner root@example.com"));
    assert!(!stdout(&o).contains("password"));
    let o = frontdesk(&db, &["create-admin", "--email", "ops@example.com"], None);
    assert!(
        stdout(&o).contains("password (shown once): "),
        "{}",
        stdout(&o)
    );
    let o = frontdesk(
        &db,
        &[
            "create-admin",
            "--email",
            "short@example.com",
            "--password-stdin",
        ],
        Some("short\n"),
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("password is invalid: must be at least 8 characters"),
        "{}",
        stderr(&o)
    );

    let o = frontdesk(&db, &["template", "--profile-fields", "company"], None);
    assert_eq!(
        stdout(&o),
        "email,first_name,last_name,display_name,organization,role,groups,tags,staff_role,company\n"
    );

    for mode in ["--dry-run", "--strict"] {
        let o = frontdesk(&db, &["import", file, mode, "--quiet"], None);
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        let out = stdout(&o);
        assert!(
            out.contains("row 3: rejected ANN@example.com: duplicate of row 2"),
            "{out}"
        );
        assert!(out.contains("nothing written"), "{out}");
    }
    let o = frontdesk(&db, &["export", "--fields", "email"], None);
    assert_eq!(stdout(&o), "email\nops@example.com\nroot@example.com\n");

    let report = dir.join("report.csv");
    let o = frontdesk(
        &db,
        &[
            "import",
            file,
            "--quiet",
            "--report",
            report.to_str().expect("path"),
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("3 rows: created 2, skipped 0, rejected 1"),
        "{}",
        stdout(&o)
    );
    let written = std::fs::read_to_string(&report).expect("report");
    assert!(
        written.starts_with(
            "row,email,outcome,code,reason\n3,ANN@example.com,rejected,duplicate_in_file,"
        ),
        "{written}"
    );

    let out = dir.join("out.csv");
    let o = frontdesk(
        &db,
        &[
            "export",
            "--fields",
            "email,first_name,tags",
            "--staff",
            "not-staff",
            "--sort",
            "email",
            "--asc",
            "-o",
            out.to_str().expect("path"),
        ],
        None,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        std::fs::read_to_string(&out).expect("export"),
        "email,first_name,tags\nann@example.com,'=Ann,beta\nbob@example.com,Bob,\n"
    );

    assert!(stderr(&o).contains("exported 2 users to"), "{}", stderr(&o));

    // A column the import does not know refuses the file, unless ignored.
    let extra = dir.join("extra.csv");
    std::fs::write(
        &extra,
        "email,first_name,last_name,shoe_size\ncy@example.com,Cy,Ng,44\n",
    )
    .expect("csv");
    let extra = extra.to_str().expect("path");
    let o = frontdesk(&db, &["import", extra, "--quiet"], None);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("unknown column(s): shoe_size"),
        "{}",
        stderr(&o)
    );
    let o = frontdesk(
        &db,
        &["import", extra, "--quiet", "--ignore-unknown-columns"],
        None,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains(
            "warning: row 1 (header): unknown column ignored, their cells were not imported: shoe_size"
        ),
        "{out}"
    );
    assert!(
        out.contains("1 row: created 1, skipped 0, rejected 0"),
        "{out}"
    );

    let o = frontdesk(&db, &["import", "/nonexistent/file.csv"], None);
    assert_eq!(o.status.code(), Some(1));
    let o = frontdesk(&db, &["export", "--fields", "email,secret"], None);
    assert!(
        stderr(&o).contains("unknown field \"secret\""),
        "{}",
        stderr(&o)
    );
}

/// The lines of `--events` output (JSON objects) among what went to stderr.
fn events_of(o: &Output) -> Vec<serde_json::Value> {
    stderr(o)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v.get("event").is_some())
        .collect()
}

fn kinds(events: &[serde_json::Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["event"].as_str().unwrap_or("?").to_owned())
        .collect()
}

#[test]
fn events_are_printed_once_per_change_after_commit() {
    let dir = tempfile::tempdir().expect("dir");
    let db = format!("sqlite://{}", dir.path().join("fd.db").display());
    let o = frontdesk(&db, &["migrate"], None);
    assert!(o.status.success(), "{}", stderr(&o));

    // Without the flag: nothing printed.
    let o = frontdesk(&db, &["create-admin", "--email", "quiet@example.com"], None);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(events_of(&o).is_empty(), "{}", stderr(&o));

    let o = frontdesk(
        &db,
        &["--events", "create-admin", "--email", "root@example.com"],
        None,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let events = events_of(&o);
    assert_eq!(kinds(&events), vec!["user_created"], "{}", stderr(&o));
    assert_eq!(events[0]["actor"], "system");
    assert!(events[0]["user_id"].as_i64().is_some());

    // A refused change (the address is taken): no event.
    let o = frontdesk(
        &db,
        &["--events", "create-admin", "--email", "root@example.com"],
        None,
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(events_of(&o).is_empty(), "{}", stderr(&o));

    // An import: one user_created per created user, then the summary; the
    // rejected row and the dry run give none.
    let csv = dir.path().join("users.csv");
    std::fs::write(
        &csv,
        "email,first_name,last_name\nann@example.com,Ann,Lee\nnot-an-email,X,Y\nbob@example.com,Bob,Stone\n",
    )
    .expect("csv");
    let file = csv.to_str().expect("path");
    let o = frontdesk(&db, &["--events", "import", file, "--dry-run"], None);
    assert!(events_of(&o).is_empty(), "{}", stderr(&o));
    let o = frontdesk(&db, &["--events", "import", file], None);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let events = events_of(&o);
    assert_eq!(
        kinds(&events),
        vec!["user_created", "user_created", "import_finished"],
        "{}",
        stderr(&o)
    );
    assert_eq!(events[2]["created"], 2);

    // Update mode: one user_updated per changed user (the unchanged one and
    // the new one are not updates), then the summary.
    std::fs::write(
        &csv,
        "email,first_name,last_name\nann@example.com,Annie,Lee\nbob@example.com,Bob,Stone\ncy@example.com,Cy,Young\n",
    )
    .expect("csv");
    let o = frontdesk(
        &db,
        &["--events", "import", file, "--update", "--dry-run"],
        None,
    );
    assert!(events_of(&o).is_empty(), "{}", stderr(&o));
    let o = frontdesk(&db, &["--events", "import", file, "--update"], None);
    assert!(o.status.success(), "{}", stderr(&o));
    let events = events_of(&o);
    let mut got = kinds(&events);
    let last = got.pop();
    got.sort();
    assert_eq!(got, vec!["user_created", "user_updated"], "{}", stderr(&o));
    assert_eq!(last.as_deref(), Some("import_finished"));
    let updated = events.iter().find(|e| e["event"] == "user_updated");
    assert_eq!(updated.map(|e| e["actor"].clone()), Some("system".into()));
    assert_eq!(events[2]["updated"], 1);
}
