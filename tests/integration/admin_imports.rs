//! The import and export admin pages: multipart upload with CSRF, dry run
//! (nothing written, every row reported), apply of a kept dry run, strict,
//! the report as CSV, organization scoping, background imports with their
//! progress, an interrupted import marked failed at start-up, invitations for
//! imported users, and the export page streaming the users list's view.

use actix_web::http::{header, StatusCode};
use actix_web::test::TestRequest;
use diesel::prelude::*;
use frontdesk_core::import_jobs::{self, JobOptions, NewJob};
use frontdesk_core::imports::{ImportConfig, ImportMode, ImportOptions};
use frontdesk_core::schema::{audit_events, imports, invitations, outbox, users};
use frontdesk_core::{users as core_users, Actor};

use crate::admin_fixture::{self as fx};
use crate::both;
use crate::host_app;
use crate::support::TestDb;
use crate::web_app::{block_on, builder, frontdesk, Browser, Page};

const BOUNDARY: &str = "XfdBoundary7MA4YWxk";

/// A `multipart/form-data` body: text fields, then the file (if any).
fn multipart(fields: &[(&str, &str)], file: Option<(&str, &[u8])>) -> Vec<u8> {
    let mut b = Vec::new();
    for (k, v) in fields {
        b.extend_from_slice(
            format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n")
                .as_bytes(),
        );
    }
    if let Some((name, data)) = file {
        b.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: text/csv\r\n\r\n"
            )
            .as_bytes(),
        );
        b.extend_from_slice(data);
        b.extend_from_slice(b"\r\n");
    }
    b.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    b
}

async fn upload<S, B>(
    browser: &mut Browser,
    app: &S,
    fields: &[(&str, &str)],
    file: Option<(&str, &[u8])>,
) -> Page
where
    S: actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse<B>,
        Error = actix_web::Error,
    >,
    B: actix_web::body::MessageBody,
{
    let req = TestRequest::post()
        .uri("/admin/imports")
        .insert_header((
            header::CONTENT_TYPE,
            format!("multipart/form-data; boundary={BOUNDARY}"),
        ))
        .set_payload(multipart(fields, file));
    browser.send(app, req).await
}

fn count_users(db: &TestDb) -> i64 {
    users::table
        .count()
        .get_result(&mut *db.conn())
        .expect("count")
}

fn count(db: &TestDb, table: &str) -> i64 {
    let mut c = db.conn();
    match table {
        "audit" => audit_events::table.count().get_result(&mut *c),
        "outbox" => outbox::table.count().get_result(&mut *c),
        "invitations" => invitations::table.count().get_result(&mut *c),
        "imports" => imports::table.count().get_result(&mut *c),
        other => panic!("no counter for {other}"),
    }
    .expect("count")
}

fn exists(db: &TestDb, email: &str) -> bool {
    core_users::find_by_email(&mut db.conn(), email)
        .expect("find")
        .is_some()
}

/// The import id a redirect points at.
fn import_id(page: &Page) -> i64 {
    page.location()
        .trim_start_matches("/admin/imports/")
        .parse()
        .unwrap_or_else(|_| panic!("redirect to an import: {:?}", page.location()))
}

const MIXED: &str = "email,first_name,last_name,organization,role\n\
                     new1@acme.test,New,One,acme,member\n\
                     not-an-email,Bad,Row,acme,member\n\
                     alice@acme.test,Alice,Again,acme,member\n\
                     new2@acme.test,=HYPERLINK(\"x\"),Two,acme,member\n";

both!(dry_run_writes_nothing_then_applies_the_kept_file, |db| {
    let cast = fx::cast(db);
    let fd = frontdesk(db);
    block_on(async move {
        let app = host_app!(fd);
        let (mut b, csrf) = fx::signed_in(db, cast.get("staff_owner"));
        let page = b.get(&app, "/admin/imports").await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        assert!(page.body.contains("enctype=\"multipart/form-data\""));
        assert!(page.body.contains("imports/template.csv"));
        let t = b.get(&app, "/admin/imports/template.csv").await;
        assert!(
            t.body.starts_with("email,first_name,last_name"),
            "{}",
            t.body
        );
        assert!(t
            .header("content-disposition")
            .unwrap_or("")
            .contains("attachment"));

        let (users0, audit0, outbox0) = (count_users(db), count(db, "audit"), count(db, "outbox"));
        let res = upload(
            &mut b,
            &app,
            &[("csrf_token", &csrf), ("mode", "dry_run")],
            Some(("people.csv", MIXED.as_bytes())),
        )
        .await;
        assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
        let id = import_id(&res);
        assert_eq!(count_users(db), users0, "a dry run creates no user");
        assert_eq!(count(db, "audit"), audit0, "a dry run writes no audit row");
        assert_eq!(count(db, "outbox"), outbox0);
        let page = b.get(&app, &format!("/admin/imports/{id}")).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.body.contains("2 would be created"), "{}", page.body);
        assert!(page.body.contains("Dry run: nothing was written"));
        // One line per rejected or skipped row: number, email, reason.
        assert!(
            page.body.contains(
                "<td data-label=\"Row\">3</td><td data-label=\"Email\">not-an-email</td>"
            ),
            "{}",
            page.body
        );
        assert!(page.body.contains("invalid email address"));
        assert!(page.body.contains(
            "<td data-label=\"Row\">4</td><td data-label=\"Email\">alice@acme.test</td>"
        ));
        assert!(page.body.contains("already exists"));
        assert!(page.body.contains("Apply this file"));
        assert!(!exists(db, "new1@acme.test"));

        // Applying the kept file: no new upload.
        let res = b
            .post(
                &app,
                &format!("/admin/imports/{id}/apply"),
                &[("csrf_token", &csrf), ("mode", "apply")],
            )
            .await;
        assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
        let applied = import_id(&res);
        assert_ne!(applied, id);
        assert!(exists(db, "new1@acme.test") && exists(db, "new2@acme.test"));
        assert_eq!(count_users(db), users0 + 2);
        let page = b.get(&app, &format!("/admin/imports/{applied}")).await;
        assert!(page.body.contains("2 created"), "{}", page.body);
        let stored: (String, bool, i64) = imports::table
            .find(applied)
            .select((imports::status, imports::applied, imports::created))
            .first(&mut *db.conn())
            .expect("row");
        assert_eq!(stored, ("done".into(), true, 2));
        let audits: i64 = audit_events::table
            .filter(audit_events::action.eq("users.import"))
            .count()
            .get_result(&mut *db.conn())
            .expect("audit");
        assert_eq!(audits, 1, "the import is an audit event");

        // The kept file is used once.
        let again = b
            .post(
                &app,
                &format!("/admin/imports/{id}/apply"),
                &[("csrf_token", &csrf)],
            )
            .await;
        assert_eq!(again.status, StatusCode::SEE_OTHER);
        assert_eq!(again.location(), format!("/admin/imports/{id}"));
        let shown = b.get(&app, &format!("/admin/imports/{id}")).await;
        assert!(
            shown.body.contains("cannot be applied again"),
            "{}",
            shown.body
        );
        assert_eq!(count_users(db), users0 + 2);
        let list = b.get(&app, "/admin/imports").await;
        assert!(list.body.contains("people.csv"));
        assert!(list.body.contains("dry run") && list.body.contains(">done<"));
    });
});

both!(
    strict_with_a_bad_row_writes_nothing_and_the_report_downloads,
    |db| {
        let cast = fx::cast(db);
        let fd = frontdesk(db);
        block_on(async move {
            let app = host_app!(fd);
            let (mut b, csrf) = fx::signed_in(db, cast.get("staff_admin"));
            let before = count_users(db);
            let file = "email,first_name,last_name\nok@x.test,Ok,Row\n=cmd@x,=SUM(A1),Bad\n";
            let res = upload(
                &mut b,
                &app,
                &[("csrf_token", &csrf), ("mode", "strict")],
                Some(("strict.csv", file.as_bytes())),
            )
            .await;
            assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
            let id = import_id(&res);
            assert_eq!(
                count_users(db),
                before,
                "strict writes nothing when a row is bad"
            );
            assert!(!exists(db, "ok@x.test"));
            let page = b.get(&app, &format!("/admin/imports/{id}")).await;
            assert!(
                page.body.contains("Strict mode: nothing was written"),
                "{}",
                page.body
            );
            let csv = b
                .get(&app, &format!("/admin/imports/{id}/report.csv"))
                .await;
            assert_eq!(csv.status, StatusCode::OK);
            assert!(csv
                .header("content-type")
                .unwrap_or("")
                .starts_with("text/csv"));
            assert!(csv
                .header("content-disposition")
                .unwrap_or("")
                .contains(&format!("import-{id}-report.csv")));
            let mut lines = csv.body.lines();
            assert_eq!(lines.next(), Some("row,email,outcome,code,reason"));
            let bad = lines.next().expect("the rejected row");
            assert!(
                bad.starts_with("3,'=cmd@x,rejected,invalid_email,"),
                "formula cells neutralised: {bad}"
            );

            // Refused files and choices: a clear message, nothing written.
            for (fields, file, want) in [
                (
                    vec![("mode", "strict")],
                    Some(("x.xlsx", &b"PK\x03\x04binary"[..])),
                    "ZIP archive",
                ),
                (
                    vec![("mode", "apply")],
                    Some(("x.csv", &b"name;email\na;b\n"[..])),
                    "not comma-separated",
                ),
                (
                    vec![("mode", "apply")],
                    Some(("x.csv", &b"email,first_name\na@b.test,A\n"[..])),
                    "missing required column",
                ),
                (
                    vec![("mode", "maybe")],
                    Some(("x.csv", MIXED.as_bytes())),
                    "mode must be",
                ),
                (vec![("mode", "apply")], None, "Choose a CSV file"),
            ] {
                let mut f: Vec<(&str, &str)> = vec![("csrf_token", &csrf)];
                f.extend(fields);
                let res = upload(&mut b, &app, &f, file).await;
                assert_eq!(res.status, StatusCode::SEE_OTHER, "{want}: {}", res.body);
                assert_eq!(res.location(), "/admin/imports");
                let shown = b.get(&app, "/admin/imports").await;
                assert!(shown.body.contains(want), "{want}: {}", shown.body);
            }
            assert_eq!(count_users(db), before);
            let missing = b.get(&app, "/admin/imports/999999").await;
            assert_eq!(missing.status, StatusCode::NOT_FOUND);
        });
    }
);

both!(uploads_without_the_csrf_token_are_refused, |db| {
    let cast = fx::cast(db);
    let fd = frontdesk(db);
    block_on(async move {
        let app = host_app!(fd);
        let (mut b, _) = fx::signed_in(db, cast.get("staff_owner"));
        let before = (count_users(db), count(db, "imports"));
        let res = upload(
            &mut b,
            &app,
            &[("mode", "apply")],
            Some(("a.csv", MIXED.as_bytes())),
        )
        .await;
        assert_eq!(res.status, StatusCode::FORBIDDEN, "{}", res.body);
        let res = upload(
            &mut b,
            &app,
            &[("csrf_token", "forged"), ("mode", "apply")],
            Some(("a.csv", MIXED.as_bytes())),
        )
        .await;
        assert_eq!(res.status, StatusCode::FORBIDDEN);
        let mut cross = b.clone();
        cross
            .headers
            .push(("sec-fetch-site".into(), "cross-site".into()));
        let res = upload(
            &mut cross,
            &app,
            &[("mode", "apply")],
            Some(("a.csv", MIXED.as_bytes())),
        )
        .await;
        assert_eq!(res.status, StatusCode::FORBIDDEN);
        let res = b.post(&app, "/admin/exports", &[("fields", "email")]).await;
        assert_eq!(
            res.status,
            StatusCode::FORBIDDEN,
            "the export form needs its token too"
        );
        let res = b
            .post(&app, "/admin/imports/1/apply", &[("mode", "apply")])
            .await;
        assert_eq!(res.status, StatusCode::FORBIDDEN);
        assert_eq!((count_users(db), count(db, "imports")), before);
        // Anonymous visitors go to the login page; end users are refused.
        let mut anon = Browser::new();
        assert_eq!(
            anon.get(&app, "/admin/imports").await.status,
            StatusCode::SEE_OTHER
        );
        let (mut end_user, csrf) = fx::signed_in(db, cast.get("end_user"));
        assert_eq!(
            end_user.get(&app, "/admin/imports").await.status,
            StatusCode::FORBIDDEN
        );
        let res = upload(
            &mut end_user,
            &app,
            &[("csrf_token", &csrf)],
            Some(("a.csv", MIXED.as_bytes())),
        )
        .await;
        assert_eq!(res.status, StatusCode::FORBIDDEN);
        assert_eq!(count_users(db), before.0);
    });
});

both!(
    organization_admins_import_and_export_only_their_organization,
    |db| {
        let cast = fx::cast(db);
        let fd = frontdesk(db);
        block_on(async move {
            let app = host_app!(fd);
            // Staff file an import of their own, invisible to organization admins.
            let (mut staff, staff_csrf) = fx::signed_in(db, cast.get("staff_owner"));
            let res = upload(
                &mut staff,
                &app,
                &[("csrf_token", &staff_csrf), ("mode", "dry_run")],
                Some(("staff.csv", b"email,first_name,last_name\nzed@x.test,Z,Z\n")),
            )
            .await;
            let staff_import = import_id(&res);

            let (mut b, csrf) = fx::signed_in(db, cast.get("org_admin"));
            let page = b.get(&app, "/admin/imports").await;
            assert_eq!(page.status, StatusCode::OK);
            assert!(
                !page.body.contains("staff.csv"),
                "another scope's import is not listed"
            );
            assert!(page.body.contains("<option value=\"acme\">"));
            assert!(!page.body.contains("<option value=\"globex\">"));
            assert!(
                !page.body.contains("staff_role"),
                "org admins may not grant staff roles"
            );
            assert_eq!(
                b.get(&app, &format!("/admin/imports/{staff_import}"))
                    .await
                    .status,
                StatusCode::NOT_FOUND
            );
            assert_eq!(
                b.get(&app, &format!("/admin/imports/{staff_import}/report.csv"))
                    .await
                    .status,
                StatusCode::NOT_FOUND
            );

            // Into another organization: refused as unknown, nothing written.
            let before = count_users(db);
            let res = upload(
                &mut b,
                &app,
                &[
                    ("csrf_token", &csrf),
                    ("mode", "apply"),
                    ("organization", "globex"),
                ],
                Some((
                    "g.csv",
                    b"email,first_name,last_name\ng1@globex.test,G,One\n",
                )),
            )
            .await;
            assert_eq!(res.status, StatusCode::NOT_FOUND, "{}", res.body);
            let file = "email,first_name,last_name,organization\ng2@globex.test,G,Two,globex\na1@acme.test,A,One,\n";
            let res = upload(
                &mut b,
                &app,
                &[
                    ("csrf_token", &csrf),
                    ("mode", "apply"),
                    ("organization", "acme"),
                ],
                Some(("mixed.csv", file.as_bytes())),
            )
            .await;
            assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
            let id = import_id(&res);
            let page = b.get(&app, &format!("/admin/imports/{id}")).await;
            assert!(page.body.contains("unknown organization"), "{}", page.body);
            assert!(!exists(db, "g1@globex.test") && !exists(db, "g2@globex.test"));
            assert!(exists(db, "a1@acme.test"));
            assert_eq!(count_users(db), before + 1);
            // Their import is theirs to see, and the staff see it too.
            assert_eq!(
                staff
                    .get(&app, &format!("/admin/imports/{id}"))
                    .await
                    .status,
                StatusCode::OK
            );

            // The export: only acme's users, whatever the filter asks for.
            let res = b
                .post(
                    &app,
                    "/admin/exports",
                    &[("csrf_token", &csrf), ("fields", "email")],
                )
                .await;
            assert_eq!(res.status, StatusCode::OK, "{}", res.body);
            assert!(res.body.contains("alice@acme.test"));
            assert!(!res.body.contains("bob@globex.test"));
            let filters = format!("org={}", cast.org_b.id);
            let res = b
                .post(
                    &app,
                    "/admin/exports",
                    &[
                        ("csrf_token", &csrf),
                        ("fields", "email"),
                        ("filters", &filters),
                    ],
                )
                .await;
            assert_eq!(
                res.body.trim(),
                "email",
                "another organization's users never leave"
            );
            let (mut member, mcsrf) = fx::signed_in(db, cast.get("staff_viewer"));
            let res = member
                .post(&app, "/admin/exports", &[("csrf_token", &mcsrf)])
                .await;
            assert_eq!(res.status, StatusCode::FORBIDDEN, "viewers do not export");
            assert_eq!(
                member.get(&app, "/admin/exports").await.status,
                StatusCode::FORBIDDEN
            );
        });
    }
);

both!(the_export_page_streams_the_users_list_view, |db| {
    let cast = fx::cast(db);
    let fd = frontdesk(db);
    let mut conn = db.conn();
    core_users::update(
        &mut conn,
        &Actor::system(),
        cast.alice.id,
        core_users::UserUpdate {
            first_name: Some("=cmd|' /C calc'!A0".into()),
            ..Default::default()
        },
    )
    .expect("update");
    drop(conn);
    block_on(async move {
        let app = host_app!(fd);
        let (mut b, csrf) = fx::signed_in(db, cast.get("staff_owner"));
        let list = b
            .get(&app, "/admin/users?q=alice&status=active&page=1")
            .await;
        assert!(
            list.body.contains("exports?q=alice&amp;status=active"),
            "the list links to the export with its filters: {}",
            list.body
        );
        let page = b.get(&app, "/admin/exports?q=alice&status=active").await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(
            page.body
                .contains("name=\"filters\" value=\"q=alice&amp;status=active\""),
            "{}",
            page.body
        );
        assert!(page.body.contains("value=\"email\" checked"));
        let bad = b.get(&app, "/admin/exports?status=gone").await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST);

        let audit0 = count(db, "audit");
        let res = b
            .post(
                &app,
                "/admin/exports",
                &[
                    ("csrf_token", &csrf),
                    // alice was imported and never signed in: pending.
                    ("filters", "q=alice&status=pending"),
                    ("fields", "email"),
                    ("fields", "first_name"),
                ],
            )
            .await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.body);
        assert!(res
            .header("content-type")
            .unwrap_or("")
            .starts_with("text/csv"));
        let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
        assert_eq!(
            res.header("content-disposition"),
            Some(format!("attachment; filename=\"users-{today}.csv\"").as_str())
        );
        assert_eq!(
            res.body, "email,first_name\nalice@acme.test,'=cmd|' /C calc'!A0\n",
            "one user, formula neutralised"
        );
        assert_eq!(
            count(db, "audit"),
            audit0 + 1,
            "the export is an audit event"
        );
        let res = b
            .post(
                &app,
                "/admin/exports",
                &[("csrf_token", &csrf), ("fields", "password_hash")],
            )
            .await;
        assert_eq!(res.status, StatusCode::SEE_OTHER);
        let shown = b.get(&app, res.location()).await;
        assert!(shown.body.contains("unknown field"), "{}", shown.body);
    });
});

fn rows_csv(n: usize, org: Option<&str>) -> String {
    let mut s = String::from("email,first_name,last_name,organization\n");
    for i in 0..n {
        s.push_str(&format!(
            "bulk{i}@acme.test,Bulk,{i},{}\n",
            org.unwrap_or("")
        ));
    }
    s
}

fn small_batches() -> ImportConfig {
    ImportConfig {
        background_threshold_rows: 20,
        batch_size: 10,
        ..ImportConfig::default()
    }
}

both!(
    large_files_run_in_the_background_with_progress_then_the_report,
    |db| {
        let cast = fx::cast(db);
        let fd = builder(db)
            .import_config(small_batches())
            .build()
            .expect("frontdesk");
        block_on(async move {
            let app = host_app!(fd);
            let (mut b, csrf) = fx::signed_in(db, cast.get("staff_owner"));
            let res = upload(
                &mut b,
                &app,
                &[("csrf_token", &csrf), ("mode", "apply")],
                Some(("big.csv", rows_csv(45, Some("acme")).as_bytes())),
            )
            .await;
            assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
            let id = import_id(&res);
            let first = b.get(&app, &format!("/admin/imports/{id}")).await;
            assert!(
                first.body.contains("runs in the background"),
                "{}",
                first.body
            );
            let mut done = None;
            for _ in 0..300 {
                let page = b.get(&app, &format!("/admin/imports/{id}")).await;
                if !page.body.contains("This page refreshes itself") {
                    done = Some(page);
                    break;
                }
                assert_eq!(
                    page.header("refresh"),
                    Some("2"),
                    "a running import's page reloads"
                );
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            let page = done.expect("the background import finished");
            assert!(page.body.contains("45 created"), "{}", page.body);
            assert!(page.header("refresh").is_none());
            let row: (bool, String, i64, i64) = imports::table
                .find(id)
                .select((
                    imports::background,
                    imports::status,
                    imports::rows_done,
                    imports::created,
                ))
                .first(&mut *db.conn())
                .expect("row");
            assert_eq!(row, (true, "done".into(), 45, 45));
            assert!(exists(db, "bulk44@acme.test"));
        });
    }
);

both!(background_imports_beyond_the_cap_wait_queued, |db| {
    let cast = fx::cast(db);
    let config = ImportConfig {
        max_running: 1,
        ..small_batches()
    };
    let fd = builder(db)
        .import_config(config)
        .build()
        .expect("frontdesk");
    // The test holds the one slot while it uploads, as a long import would:
    // all three wait, queued, whatever the machine's speed; then it lets go.
    let slots = fd.state().import_slots().clone();
    block_on(async move {
        let app = host_app!(fd);
        let (mut b, csrf) = fx::signed_in(db, cast.get("staff_owner"));
        let mut held = Some(
            slots
                .acquire(1, std::time::Duration::from_millis(10), &mut || true)
                .expect("a free slot"),
        );
        let mut ids = Vec::new();
        for n in 0..3 {
            let csv = rows_csv(1_200, Some("acme")).replace("bulk", &format!("cap{n}-"));
            let res = upload(
                &mut b,
                &app,
                &[("csrf_token", &csrf), ("mode", "apply")],
                Some(("big.csv", csv.as_bytes())),
            )
            .await;
            assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
            ids.push(import_id(&res));
        }
        // Watched from the database: never two running at once, and all done.
        let (mut seen_queued, mut held_polls) = (false, 0);
        for _ in 0..6_000 {
            let states: Vec<String> = imports::table
                .filter(imports::id.eq_any(&ids))
                .select(imports::status)
                .load(&mut *db.conn())
                .expect("states");
            let running = states.iter().filter(|s| *s == "running").count();
            assert!(running <= 1, "{states:?}");
            if held.is_some() {
                // Held for 40 polls (200 ms or more): none may leave the queue.
                assert!(
                    states.iter().all(|s| s == "queued"),
                    "an import ran while the one slot was held: {states:?}"
                );
                held_polls += 1;
                if held_polls == 40 {
                    seen_queued = true;
                    held = None;
                }
            }
            if states.iter().all(|s| s == "done") {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let done: i64 = imports::table
            .filter(imports::id.eq_any(&ids))
            .filter(imports::status.eq("done"))
            .filter(imports::created.eq(1_200))
            .count()
            .get_result(&mut *db.conn())
            .expect("count");
        assert_eq!(done, 3);
        assert!(seen_queued, "the later uploads waited their turn");
        assert!(exists(db, "cap2-1199@acme.test"));
    });
});

both!(progress_is_visible_while_a_background_import_runs, |db| {
    let cast = fx::cast(db);
    let fd = builder(db)
        .import_config(small_batches())
        .build()
        .expect("frontdesk");
    let staff = fx::actor(db, cast.get("staff_owner").expect("staff"));
    let new = NewJob {
        actor: staff.clone(),
        organization_id: None,
        file_name: "slow.csv".into(),
        mode: ImportMode::Apply,
        options: JobOptions::default(),
        upload_key: None,
    };
    let job = import_jobs::queue(&mut db.conn(), &new, 30).expect("queue");
    let pool = fd.pool().clone();
    let (at_batch, wait) = std::sync::mpsc::channel::<u64>();
    let (go, resume) = std::sync::mpsc::channel::<()>();
    let file = rows_csv(30, Some("acme"));
    let runner = std::thread::spawn(move || {
        let mut first = true;
        import_jobs::run(
            &pool,
            job.id,
            &staff,
            &small_batches(),
            &ImportOptions {
                mode: ImportMode::Apply,
                ..ImportOptions::default()
            },
            std::io::Cursor::new(file.into_bytes()),
            &mut |p| {
                if first {
                    first = false;
                    let _ = at_batch.send(p.rows_done);
                    let _ = resume.recv();
                }
            },
        )
    });
    assert_eq!(wait.recv().expect("first batch"), 10);
    block_on(async {
        let app = host_app!(fd);
        let (mut b, _) = fx::signed_in(db, cast.get("staff_owner"));
        let page = b.get(&app, &format!("/admin/imports/{}", job.id)).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(
            page.body
                .contains("<strong id=\"import-progress\">10 / 30</strong>"),
            "{}",
            page.body
        );
        assert!(page.body.contains("10 created"));
        assert!(page.body.contains("http-equiv=\"refresh\""));
        let list = b.get(&app, "/admin/imports").await;
        assert!(
            list.body.contains("running") && list.body.contains("10 / 30"),
            "{}",
            list.body
        );
        go.send(()).expect("resume");
        let report = runner.join().expect("runner").expect("import");
        assert_eq!(report.created, 30);
        let page = b.get(&app, &format!("/admin/imports/{}", job.id)).await;
        assert!(page.body.contains("30 created"), "{}", page.body);
        assert!(!page.body.contains("http-equiv=\"refresh\""));
    });
});

both!(
    an_import_interrupted_by_a_stop_is_marked_failed_at_start_up,
    |db| {
        let cast = fx::cast(db);
        let staff = fx::actor(db, cast.get("staff_owner").expect("staff"));
        let new = NewJob {
            actor: staff.clone(),
            organization_id: None,
            file_name: "killed.csv".into(),
            mode: ImportMode::Apply,
            options: JobOptions::default(),
            upload_key: None,
        };
        let job = import_jobs::queue(&mut db.conn(), &new, 30).expect("queue");
        let before = count_users(db);
        // The process "dies" right after the first batch was committed and its
        // progress written: nothing of the import runs after that point.
        let died = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            import_jobs::run(
                db.pool(),
                job.id,
                &staff,
                &small_batches(),
                &ImportOptions {
                    mode: ImportMode::Apply,
                    ..ImportOptions::default()
                },
                std::io::Cursor::new(rows_csv(30, Some("acme")).into_bytes()),
                &mut |_| panic!("the process stops here"),
            )
        }));
        assert!(died.is_err());
        let status = |db: &TestDb| -> (String, Option<String>, i64) {
            imports::table
                .find(job.id)
                .select((imports::status, imports::error, imports::rows_done))
                .first(&mut *db.conn())
                .expect("row")
        };
        assert_eq!(
            status(db).0,
            "running",
            "left running, as a killed process leaves it"
        );
        assert_eq!(
            count_users(db),
            before + 10,
            "the committed batch stays, nothing after it"
        );

        if db.kind == frontdesk_core::db::BackendKind::Postgres {
            // Another instance may still be running it: only a silent one is dead.
            let _other = builder(db).build().expect("second instance");
            assert_eq!(status(db).0, "running");
        }
        let fd = builder(db)
            .import_config(ImportConfig {
                heartbeat_timeout: std::time::Duration::ZERO,
                ..ImportConfig::default()
            })
            .build()
            .expect("restart");
        let (s, error, rows) = status(db);
        assert_eq!((s.as_str(), rows), ("failed", 10));
        let error = error.expect("a reason");
        assert!(error.starts_with("interrupted after 10 rows"), "{error}");
        assert!(error.contains("10 users created"), "{error}");
        block_on(async move {
            let app = host_app!(fd);
            let (mut b, _) = fx::signed_in(db, cast.get("staff_owner"));
            let page = b.get(&app, &format!("/admin/imports/{}", job.id)).await;
            assert!(
                page.body
                    .contains("The import failed: interrupted after 10 rows"),
                "{}",
                page.body
            );
        });
    }
);

both!(
    invited_imported_users_get_invitations_and_set_their_password,
    |db| {
        let cast = fx::cast(db);
        let fd = frontdesk(db);
        block_on(async move {
            let app = host_app!(fd);
            let (mut b, csrf) = fx::signed_in(db, cast.get("staff_owner"));
            let (outbox0, inv0) = (count(db, "outbox"), count(db, "invitations"));
            let file = "email,first_name,last_name,organization,role\n\
                    joiner@acme.test,Jo,Iner,acme,admin\n\
                    loner@solo.test,Lo,Ner,,\n";
            let res = upload(
                &mut b,
                &app,
                &[("csrf_token", &csrf), ("mode", "apply"), ("invite", "1")],
                Some(("invite.csv", file.as_bytes())),
            )
            .await;
            assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
            let page = b.get(&app, res.location()).await;
            assert!(
                page.body.contains("2 invitation or welcome mails queued"),
                "{}",
                page.body
            );
            // No mail transport here: the report says the mail waits.
            assert!(
                page.body
                    .contains("no mail transport is configured, so they wait in the outbox until mail is set up"),
                "{}",
                page.body
            );
            assert_eq!(count(db, "invitations"), inv0 + 1);
            assert_eq!(count(db, "outbox"), outbox0 + 2);
            let (org, email, role, status): (i64, String, String, String) = invitations::table
                .select((
                    invitations::organization_id,
                    invitations::email,
                    invitations::role,
                    invitations::status,
                ))
                .order(invitations::id.desc())
                .first(&mut *db.conn())
                .expect("invitation");
            assert_eq!(
                (org, email.as_str(), role.as_str(), status.as_str()),
                (cast.org_a.id, "joiner@acme.test", "admin", "pending")
            );
            let mails: Vec<(String, String, String)> = outbox::table
                .filter(outbox::id.gt(outbox0))
                .select((outbox::kind, outbox::recipient, outbox::text_body))
                .order(outbox::recipient.asc())
                .load(&mut *db.conn())
                .expect("mail");
            assert_eq!(mails[0].0, "invitation");
            assert_eq!(mails[0].1, "joiner@acme.test");
            assert_eq!(
                (mails[1].0.as_str(), mails[1].1.as_str()),
                ("import_welcome", "loner@solo.test")
            );
            assert!(mails[1].2.contains("http://app.test/auth/password-reset"));

            // The invitee opens the link and sets the password of the imported account.
            let link_at = mails[0]
                .2
                .find("http://app.test/auth/invitations/")
                .expect("link");
            let token: String = mails[0].2[link_at + "http://app.test/auth/invitations/".len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                .collect();
            let mut invitee = Browser::new();
            let page = invitee
                .get(&app, &format!("/auth/invitations/{token}"))
                .await;
            assert_eq!(page.status, StatusCode::OK);
            assert!(
                page.body.contains("name=\"password\""),
                "a password form, not 'sign in first': {}",
                page.body
            );
            let icsrf = page.csrf();
            let res = invitee
                .post(
                    &app,
                    &format!("/auth/invitations/{token}"),
                    &[
                        ("csrf_token", &icsrf),
                        ("action", "accept"),
                        ("first_name", "Jo"),
                        ("last_name", "Iner"),
                        ("password", "a long enough secret"),
                        ("password_confirm", "a long enough secret"),
                    ],
                )
                .await;
            assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
            assert!(invitee.session().is_some(), "signed in after accepting");
            let user = core_users::find_by_email(&mut db.conn(), "joiner@acme.test")
                .expect("find")
                .expect("user");
            assert!(user.password_hash.is_some() && user.email_verified);
            let status: String = invitations::table
                .filter(invitations::email.eq("joiner@acme.test"))
                .select(invitations::status)
                .first(&mut *db.conn())
                .expect("status");
            assert_eq!(status, "accepted");
            let notes = invitee.get(&app, "/notes").await;
            assert_eq!(notes.body, "notes of joiner@acme.test");
            // The link is single use; the account is now an ordinary one.
            let again = invitee
                .get(&app, &format!("/auth/invitations/{token}"))
                .await;
            assert_eq!(again.status, StatusCode::NOT_FOUND);
        });
    }
);

both!(
    the_api_runs_large_files_in_the_background_and_reports_status,
    |db| {
        use crate::api_v1_support::{call, world_data, Who, API};
        let fd = builder(db)
            .import_config(small_batches())
            .build()
            .expect("frontdesk");
        block_on(async move {
            let app = host_app!(fd);
            let w = world_data(db);
            let key = w.keys.get(&Who::AcmeAdminKey).expect("key").clone();
            let post = |query: &'static str, body: String| {
                TestRequest::post()
                    .uri(&format!("{API}/import{query}"))
                    .insert_header(("content-type", "text/csv"))
                    .insert_header(("authorization", format!("Bearer {key}")))
                    .set_payload(body)
                    .to_request()
            };
            // A small file: the report at once, with the id it is filed under.
            let res = actix_web::test::call_service(
                &app,
                post("?mode=dry_run", rows_csv(3, Some("acme"))),
            )
            .await;
            assert_eq!(res.status(), StatusCode::OK);
            let small: serde_json::Value = actix_web::test::read_body_json(res).await;
            assert_eq!(small["created"], 3);
            let small_id = small["import_id"].as_i64().expect("import_id");

            // A large one: 202, then its status until the report.
            let res = actix_web::test::call_service(
                &app,
                post("?mode=apply&invite=true", rows_csv(35, Some("acme"))),
            )
            .await;
            assert_eq!(res.status(), StatusCode::ACCEPTED);
            let location = res
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            let queued: serde_json::Value = actix_web::test::read_body_json(res).await;
            let id = queued["id"].as_i64().expect("id");
            assert_eq!(location, format!("{API}/imports/{id}"));
            assert!(queued["status"] == "queued" || queued["status"] == "running");
            assert_eq!(queued["total_rows"], 35);
            let mut last = serde_json::Value::Null;
            for _ in 0..300 {
                last = call(
                    &app,
                    &w,
                    Who::AcmeAdminKey,
                    "GET",
                    &format!("/imports/{id}"),
                    None,
                )
                .await
                .body;
                if last["status"] == "done" || last["status"] == "failed" {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            assert_eq!(last["status"], "done", "{last}");
            assert_eq!(last["report"]["created"], 35);
            assert_eq!(last["report"]["welcome_mails_queued"], 35);
            assert_eq!(last["background"], true);
            assert_eq!(
                count(db, "invitations"),
                35,
                "one invitation per created user"
            );

            let list = call(&app, &w, Who::AcmeMemberKey, "GET", "/imports", None).await;
            assert_eq!(list.status, StatusCode::OK);
            let ids: Vec<i64> = list.body["imports"]
                .as_array()
                .expect("imports")
                .iter()
                .filter_map(|i| i["id"].as_i64())
                .collect();
            assert_eq!(ids, vec![id, small_id], "newest first");
            let other = call(
                &app,
                &w,
                Who::GlobexAdminKey,
                "GET",
                &format!("/imports/{id}"),
                None,
            )
            .await;
            assert_eq!(other.status, StatusCode::NOT_FOUND);
            let listed = call(&app, &w, Who::GlobexAdminKey, "GET", "/imports", None).await;
            assert_eq!(listed.body["pagination"]["total"], 0);
            let bad = call(&app, &w, Who::AcmeAdminKey, "GET", "/imports?page=0", None).await;
            assert_eq!(bad.status, StatusCode::BAD_REQUEST);
        });
    }
);

both!(an_upload_arriving_in_small_pieces_is_read_exactly, |db| {
    let cast = fx::cast(db);
    let fd = frontdesk(db);
    block_on(async move {
        let app = host_app!(fd);
        let (b, csrf) = fx::signed_in(db, cast.get("staff_owner"));
        // A BOM, CRLF line ends, a quoted line break, and "\r\n--" inside
        // the data that is not the boundary.
        let file = "\u{feff}email,first_name,last_name,display_name\r\n\
                    piece1@x.test,Multi,Line,\"first\r\n--second\"\r\n\
                    piece2@x.test,Two,X,\"--XfdBoundary7MA4YWx\"\r\n";
        let body = multipart(
            &[("csrf_token", &csrf), ("mode", "apply")],
            Some(("pieces.csv", file.as_bytes())),
        );
        for size in [1usize, 7, 64] {
            let (mut sender, payload) = actix_http::h1::Payload::create(false);
            for piece in body.chunks(size) {
                sender.feed_data(actix_web::web::Bytes::copy_from_slice(piece));
            }
            sender.feed_eof();
            let mut req = TestRequest::post().uri("/admin/imports").insert_header((
                header::CONTENT_TYPE,
                format!("multipart/form-data; boundary={BOUNDARY}"),
            ));
            for (k, v) in &b.jar {
                req = req.cookie(actix_web::cookie::Cookie::new(k.clone(), v.clone()));
            }
            let (req, _) = req
                .to_request()
                .replace_payload(actix_http::Payload::from(payload));
            let res = actix_web::test::call_service(&app, req).await;
            assert_eq!(
                res.status(),
                StatusCode::SEE_OTHER,
                "pieces of {size} bytes"
            );
            let id: i64 = res
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .and_then(|l| l.trim_start_matches("/admin/imports/").parse().ok())
                .expect("an import");
            let (total, created, skipped, rejected): (i64, i64, i64, i64) = imports::table
                .find(id)
                .select((
                    imports::total_rows,
                    imports::created,
                    imports::skipped,
                    imports::rejected,
                ))
                .first(&mut *db.conn())
                .expect("row");
            // Two records (the quoted line break kept inside its cell); the
            // name with a line break is refused by the import's own check.
            assert_eq!((total, rejected), (2, 1), "pieces of {size} bytes");
            assert_eq!(created + skipped, 1, "pieces of {size} bytes");
            let report = stored_report(db, id);
            assert!(report.contains("display_name"), "{report}");
        }
        assert!(!exists(db, "piece1@x.test"));
        let u = core_users::find_by_email(&mut db.conn(), "piece2@x.test")
            .expect("find")
            .expect("user");
        assert_eq!(u.display_name.as_deref(), Some("--XfdBoundary7MA4YWx"));
    });
});

/// The stored report of an import, as text.
fn stored_report(db: &TestDb, id: i64) -> String {
    imports::table
        .find(id)
        .select(imports::report)
        .first::<Option<String>>(&mut *db.conn())
        .expect("row")
        .unwrap_or_default()
}

const WITH_UNKNOWN: &str = "email,first_name,last_name,organization,shoe_size\n\
                            one@acme.test,One,Person,acme,44\n";

/// The `import` in the details of each `user.create` event, by user email.
fn created_by_import(db: &TestDb) -> Vec<(String, serde_json::Value)> {
    audit_events::table
        .filter(audit_events::action.eq("user.create"))
        .select(audit_events::details)
        .load::<String>(&mut *db.conn())
        .expect("events")
        .into_iter()
        .filter_map(|d| serde_json::from_str::<serde_json::Value>(&d).ok())
        .filter(|d| d["via"] == "import")
        .map(|d| {
            (
                d["email"].as_str().unwrap_or("").to_owned(),
                d["import"].clone(),
            )
        })
        .collect()
}

both!(
    the_import_page_can_ignore_unknown_columns_and_names_the_app,
    |db| {
        let cast = fx::cast(db);
        let fd = builder(db)
            .environment_label("production")
            .build()
            .expect("frontdesk");
        block_on(async move {
            let app = host_app!(fd);
            let (mut b, csrf) = fx::signed_in(db, cast.get("staff_owner"));
            let page = b.get(&app, "/admin/imports").await;
            assert!(
                page.body.contains(r#"name="ignore_unknown_columns""#),
                "{}",
                page.body
            );
            // The form names the app and its environment next to the button, and
            // the header shows the environment on every admin page.
            assert!(page.body.contains(
            r#"<p id="import-target">Into <strong>Notes</strong>, the <strong id="import-environment">production</strong> app.</p>"#
        ), "{}", page.body);
            assert!(page
                .body
                .contains(r#"<span class="fda-env" id="environment-label">production</span>"#));
            let export = b.get(&app, "/admin/exports").await;
            assert!(export.body.contains(
            r#"<p id="export-target">From <strong>Notes</strong>, the <strong id="export-environment">production</strong> app.</p>"#
        ), "{}", export.body);
            let users = b.get(&app, "/admin/users").await;
            assert!(users.body.contains(r#"id="environment-label">production<"#));

            // Refused without the box, with the column named; nothing filed.
            let before = (count_users(db), count(db, "imports"));
            let res = upload(
                &mut b,
                &app,
                &[("csrf_token", &csrf), ("mode", "apply")],
                Some(("shoes.csv", WITH_UNKNOWN.as_bytes())),
            )
            .await;
            assert_eq!(res.status, StatusCode::SEE_OTHER);
            let back = b.get(&app, res.location()).await;
            assert!(
                back.body.contains("unknown column(s): shoe_size"),
                "{}",
                back.body
            );
            assert_eq!((count_users(db), count(db, "imports")), before);

            // With it: imported, the report warns and says "1 row".
            let res = upload(
                &mut b,
                &app,
                &[
                    ("csrf_token", &csrf),
                    ("mode", "apply"),
                    ("ignore_unknown_columns", "1"),
                ],
                Some(("shoes.csv", WITH_UNKNOWN.as_bytes())),
            )
            .await;
            assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
            let id = import_id(&res);
            let report = b.get(&app, res.location()).await;
            assert!(
                report
                    .body
                    .contains("1 row: created 1, skipped 0, rejected 0"),
                "the flash: {}",
                report.body
            );
            assert!(
                report.body.contains(r#"<p id="import-summary">1 row:"#),
                "{}",
                report.body
            );
            assert!(!report.body.contains("1 rows"));
            assert!(report.body.contains(
            "Warning: row 1 (header): unknown column ignored, their cells were not imported: shoe_size"
        ), "{}", report.body);
            assert!(report.body.contains("ignoring unknown columns"));
            assert!(exists(db, "one@acme.test"));
            let one = core_users::find_by_email(&mut db.conn(), "one@acme.test")
                .expect("find")
                .expect("one");
            assert!(one.profile_map().is_empty());
            // The created user's own audit event names this import.
            assert_eq!(
                created_by_import(db),
                vec![("one@acme.test".to_owned(), serde_json::json!(id))]
            );
            let options: String = imports::table
                .find(id)
                .select(imports::options)
                .first(&mut *db.conn())
                .expect("options");
            assert!(
                options.contains(r#""ignore_unknown_columns":true"#),
                "{options}"
            );
        });
    }
);

both!(
    the_import_pages_without_an_environment_label_name_the_site,
    |db| {
        let cast = fx::cast(db);
        let fd = frontdesk(db);
        block_on(async move {
            let app = host_app!(fd);
            let (mut b, _) = fx::signed_in(db, cast.get("staff_owner"));
            let page = b.get(&app, "/admin/imports").await;
            assert!(page
                .body
                .contains(r#"<p id="import-target">Into <strong>Notes</strong>.</p>"#));
            assert!(!page.body.contains("environment-label"));
        });
        for bad in ["", "   ", "a\nb", &"x".repeat(41)] {
            let err = builder(db)
                .environment_label(bad)
                .build()
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(err.contains("environment_label"), "{bad:?}: {err}");
        }
    }
);

// Upload forms that cannot be read: each is refused with its own message,
// and no import is filed.
both!(unreadable_upload_forms_are_refused_by_name, |db| {
    let cast = fx::cast(db);
    let fd = builder(db)
        .import_config(ImportConfig {
            max_bytes: 200,
            ..ImportConfig::default()
        })
        .build()
        .expect("frontdesk");
    block_on(async move {
        let app = host_app!(fd);
        let (mut b, csrf) = fx::signed_in(db, cast.get("staff_owner"));
        let csv = "email,first_name,last_name\nform@acme.test,Form,Check\n";
        let good = multipart(
            &[("csrf_token", &csrf), ("mode", "apply")],
            Some(("people.csv", csv.as_bytes())),
        );
        let truncated = good[..good.len() - 12].to_vec();
        let mut two_files = multipart(&[("csrf_token", &csrf)], Some(("a.csv", csv.as_bytes())));
        let closing = format!("--{BOUNDARY}--\r\n");
        two_files.truncate(two_files.len() - closing.len());
        two_files.extend_from_slice(&multipart(&[], Some(("b.csv", csv.as_bytes()))));
        let long_field = "x".repeat(17 * 1024);
        let big_file = format!("{csv}{}", "more@acme.test,More,Rows\n".repeat(10));
        let cases: Vec<(&str, String, Vec<u8>, &str)> = vec![
            (
                "not multipart",
                "application/x-www-form-urlencoded".into(),
                b"mode=apply".to_vec(),
                "must be sent as multipart",
            ),
            (
                "no boundary",
                "multipart/form-data".into(),
                good.clone(),
                "must be sent as multipart",
            ),
            (
                "cut short",
                format!("multipart/form-data; boundary={BOUNDARY}"),
                truncated,
                "could not be read",
            ),
            (
                "two files",
                format!("multipart/form-data; boundary={BOUNDARY}"),
                two_files,
                "one file at a time",
            ),
            (
                "a field too long",
                format!("multipart/form-data; boundary={BOUNDARY}"),
                multipart(
                    &[("csrf_token", &csrf), ("mode", &long_field)],
                    Some(("people.csv", csv.as_bytes())),
                ),
                "field is too long",
            ),
            (
                "a file over max_bytes",
                format!("multipart/form-data; boundary={BOUNDARY}"),
                multipart(
                    &[("csrf_token", &csrf), ("mode", "apply")],
                    Some(("people.csv", big_file.as_bytes())),
                ),
                "at most 200 bytes",
            ),
        ];
        let imports0 = count(db, "imports");
        for (what, content_type, body, message) in cases {
            let req = TestRequest::post()
                .uri("/admin/imports")
                .insert_header((header::CONTENT_TYPE, content_type))
                .set_payload(body);
            let res = b.send(&app, req).await;
            assert_eq!(res.status, StatusCode::SEE_OTHER, "{what}: {}", res.body);
            assert_eq!(res.location(), "/admin/imports", "{what}");
            let shown = b.get(&app, res.location()).await;
            assert!(shown.body.contains(message), "{what}: {}", shown.body);
            assert_eq!(count(db, "imports"), imports0, "{what}: no import filed");
            assert!(!exists(db, "form@acme.test"), "{what}");
        }
        // The same form, whole, goes through.
        let res = upload(
            &mut b,
            &app,
            &[("csrf_token", &csrf), ("mode", "apply")],
            Some(("people.csv", csv.as_bytes())),
        )
        .await;
        assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
        assert!(exists(db, "form@acme.test"));
    });
});
