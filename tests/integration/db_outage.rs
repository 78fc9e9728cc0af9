//! The database server ending connections (a restart, a failover, an
//! operator's `pg_terminate_backend`): a pooled connection the server closed
//! fails the one use that finds out, and is then replaced, instead of staying
//! in the pool and failing every request that draws it.

use diesel::connection::SimpleConnection;
use frontdesk_core::db;

use crate::support::TestDb;

#[test]
fn connections_the_server_ended_are_replaced() {
    let Some(test_db) = TestDb::postgres() else {
        return;
    };
    let pool = db::connect(&test_db.url, 3).expect("pool");
    {
        // Three connections open and back in the pool.
        let mut held: Vec<_> = (0..3).map(|_| pool.get().expect("checkout")).collect();
        for c in &mut held {
            c.batch_execute("SELECT 1").expect("query");
        }
    }
    assert!(test_db.terminate_connections() >= 3);
    let mut failures = 0;
    for _ in 0..10 {
        let mut c = pool.get().expect("checkout");
        if c.batch_execute("SELECT 1").is_err() {
            failures += 1;
        }
    }
    assert!(
        failures <= 3,
        "{failures} of 10 uses failed: closed connections went back into the pool"
    );
    for _ in 0..5 {
        pool.get()
            .expect("checkout")
            .batch_execute("SELECT 1")
            .expect("the pool works again");
    }
}

/// The same through the API: the requests that meet an ended connection get a
/// clear 503 (retry), never a 500 or the server's message, and the ones after
/// them succeed.
#[test]
fn the_api_answers_503_then_recovers_when_the_server_ends_connections() {
    use crate::api_v1_support::*;
    use crate::web_app::{block_on, frontdesk};
    use actix_web::http::StatusCode;

    let Some(test_db) = TestDb::postgres() else {
        return;
    };
    let db = &test_db;
    block_on(async {
        let fd = frontdesk(db);
        let app = crate::host_app!(fd);
        let w = world(db, &app).await;
        // Every connection of the app's pool (4) in use once.
        for _ in 0..8 {
            expect(&app, &w, Who::StaffViewerKey, "GET", "/users", None, 200).await;
        }
        assert!(db.terminate_connections() >= 1);
        let mut unavailable = 0;
        let mut ok_in_a_row = 0;
        for _ in 0..20 {
            let a = call(&app, &w, Who::StaffViewerKey, "GET", "/users", None).await;
            if a.status == StatusCode::OK {
                ok_in_a_row += 1;
                if ok_in_a_row == 5 {
                    break;
                }
                continue;
            }
            ok_in_a_row = 0;
            unavailable += 1;
            assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE, "{}", a.raw);
            assert_eq!(
                a.problem_type(),
                "urn:frontdesk:problem:unavailable",
                "{}",
                a.raw
            );
            assert!(
                !a.raw.contains("terminat"),
                "the server's message leaked: {}",
                a.raw
            );
        }
        assert_eq!(ok_in_a_row, 5, "the API recovered");
        assert!(
            unavailable <= 4,
            "{unavailable} requests failed for a pool of 4"
        );
    });
}

/// A background import whose connection the server ends mid-way: the batches
/// committed before stay, the import is recorded as failed with how far it
/// got (not left "running"), and applying the file again creates exactly the
/// missing users.
#[test]
fn an_import_cut_off_by_the_server_says_how_far_it_got_and_can_be_applied_again() {
    use diesel::prelude::*;
    use frontdesk_core::import_jobs::{self, JobOptions, NewJob};
    use frontdesk_core::imports::{ImportConfig, ImportError, ImportMode, ImportOptions};
    use frontdesk_core::schema::{imports, users};
    use frontdesk_core::Actor;

    let Some(test_db) = TestDb::postgres() else {
        return;
    };
    let db = &test_db;
    let mut file = String::from("email,first_name,last_name\n");
    for i in 0..30 {
        file.push_str(&format!("cut{i}@example.com,Cut,{i}\n"));
    }
    let config = ImportConfig {
        batch_size: 10,
        ..ImportConfig::default()
    };
    let options = ImportOptions {
        mode: ImportMode::Apply,
        ..ImportOptions::default()
    };
    let new = NewJob {
        actor: Actor::system(),
        organization_id: None,
        file_name: "cut.csv".into(),
        mode: ImportMode::Apply,
        options: JobOptions::default(),
        upload_key: None,
    };
    let job = import_jobs::queue(&mut db.conn(), &new, 30).expect("queue");
    let mut cut = false;
    let e = import_jobs::run(
        db.pool(),
        job.id,
        &Actor::system(),
        &config,
        &options,
        std::io::Cursor::new(file.clone().into_bytes()),
        &mut |p| {
            if !cut && p.rows_done == 10 {
                cut = true;
                assert!(db.terminate_connections() >= 1);
            }
        },
    )
    .expect_err("the server ended the import's connection");
    assert!(
        matches!(
            e,
            ImportError::Stopped {
                committed_rows: 10,
                created: 10,
                ..
            }
        ),
        "{e:?}"
    );
    let (status, error): (String, Option<String>) = imports::table
        .find(job.id)
        .select((imports::status, imports::error))
        .first(&mut *db.conn())
        .expect("job");
    assert_eq!(status, "failed");
    let error = error.expect("the reason is stored");
    assert!(
        error.starts_with("the import stopped after row 11 (10 users created and saved"),
        "{error}"
    );
    let count = |db: &TestDb| -> i64 {
        users::table
            .filter(users::email.like("cut%"))
            .count()
            .get_result(&mut *db.conn())
            .expect("count")
    };
    assert_eq!(count(db), 10, "the first batch stays, nothing after it");

    let again = import_jobs::queue(&mut db.conn(), &new, 30).expect("queue");
    let report = import_jobs::run(
        db.pool(),
        again.id,
        &Actor::system(),
        &config,
        &options,
        std::io::Cursor::new(file.into_bytes()),
        &mut |_| {},
    )
    .expect("applied again");
    assert_eq!((report.created, report.skipped), (20, 10));
    assert_eq!(count(db), 30);
}

/// The outbox worker: the database ends its connections while mail is being
/// handed to SMTP. The outcomes are still recorded (on fresh connections), so
/// when the leases run out nothing is claimed and sent a second time.
#[test]
fn mail_sent_while_the_server_ends_connections_is_recorded_and_not_sent_again() {
    use crate::invitations::{fixture, invite};
    use frontdesk_core::outbox;
    use frontdesk_mail::test_smtp::TestSmtp;
    use frontdesk_mail::{MailConfig, Mailer, SmtpConfig, SmtpSecurity, Transport};
    use std::time::Duration;

    let Some(test_db) = TestDb::postgres() else {
        return;
    };
    let db = &test_db;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        {
            let mut c = db.conn();
            let f = fixture(&mut c, "acme", "");
            for i in 0..5 {
                invite(&mut c, &f, &format!("person{i}@example.com"));
            }
        }
        let smtp = TestSmtp::start().await.expect("smtp server");
        let terminate = db.terminator();
        let done = std::sync::atomic::AtomicBool::new(false);
        smtp.on_mail(move || {
            if !done.swap(true, std::sync::atomic::Ordering::SeqCst) {
                terminate();
            }
        });
        let mut cfg = MailConfig::new("Acme <no-reply@acme.example>").expect("config");
        cfg.lease = Duration::from_secs(2);
        let transport = Transport::smtp(
            &SmtpConfig::new("127.0.0.1", SmtpSecurity::None)
                .port(smtp.port())
                .timeout(Duration::from_secs(5)),
        )
        .expect("transport");
        let mailer = Mailer::new(db.pool().clone(), transport, cfg);
        let report = mailer.deliver_due_once().await.expect("one round");
        assert_eq!((report.claimed, report.sent), (5, 5), "{report:?}");
        // Past the leases: a mail left marked "sending" would be claimed again.
        tokio::time::sleep(Duration::from_millis(2_500)).await;
        let again = mailer.deliver_due_once().await.expect("second round");
        assert_eq!(again.claimed, 0, "{again:?}");
        assert_eq!(smtp.count(), 5, "each mail sent once");
        let fresh = db::connect(&db.url, 1).expect("pool");
        let counts: std::collections::HashMap<String, i64> =
            outbox::counts(&mut fresh.get().expect("connection"))
                .expect("counts")
                .into_iter()
                .collect();
        assert_eq!(counts.get("sent"), Some(&5), "{counts:?}");
    });
}

/// The JSON endpoints answer a database outage in JSON too: the session
/// check of `/auth/api/session` and of the admin API meeting an ended
/// connection gives a 503 problem+json, not the HTML page meant for browsers.
#[test]
fn json_endpoints_answer_an_outage_with_problem_json() {
    use crate::web_app::{block_on, frontdesk};
    use actix_web::http::StatusCode;

    let Some(test_db) = TestDb::postgres() else {
        return;
    };
    let db = &test_db;
    let cast = crate::admin_fixture::cast(db);
    block_on(async {
        let fd = frontdesk(db);
        let app = crate::host_app!(fd);
        let (mut b, _) = crate::admin_fixture::signed_in(db, cast.get("staff_owner"));
        b.headers.push(("Accept".into(), "application/json".into()));
        for path in ["/auth/api/session", "/admin/api/v1/users"] {
            // Every connection of the app's pool (4) in use once.
            for _ in 0..8 {
                assert_eq!(b.get(&app, path).await.status, StatusCode::OK, "{path}");
            }
            assert!(db.terminate_connections() >= 1);
            // A session cache answers from memory until its listener (ended
            // too) notices; from then on every check meets the database.
            if let Some(cache) = fd.state().session_cache() {
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
                while cache.is_listening() {
                    assert!(std::time::Instant::now() < deadline, "loss noticed");
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                }
            }
            let mut unavailable = 0;
            for _ in 0..8 {
                let page = b.get(&app, path).await;
                if page.status == StatusCode::OK {
                    continue;
                }
                unavailable += 1;
                assert_eq!(page.status, StatusCode::SERVICE_UNAVAILABLE, "{path}");
                assert_eq!(
                    page.header("content-type"),
                    Some("application/problem+json"),
                    "{path}: {}",
                    page.body
                );
                let problem: serde_json::Value =
                    serde_json::from_str(&page.body).expect("problem+json");
                assert_eq!(problem["type"], "urn:frontdesk:problem:unavailable");
            }
            assert!(unavailable >= 1, "{path}: the outage was met");
        }
    });
}
