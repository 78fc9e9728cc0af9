//! Activity recording: the middleware on the host's routes (signed-in users
//! only, route patterns, dedup), the feature API, the bounded queue (a full
//! queue drops and counts, requests never wait), the retention, and the
//! timeline API with its scoping, filters and cursor.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use chrono::Timelike;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use frontdesk::web::activity::Activity;
use frontdesk::{CurrentUser, OptionalUser};
use frontdesk_core::activity::{self, ActivityConfig, NewActivity};
use frontdesk_core::db::BackendKind;
use frontdesk_core::schema::{activity_events, users};
use serde_json::{json, Value};

use crate::api_v1_support::{expect, world, Who};
use crate::both;
use crate::support::TestDb;
use crate::web_app::{block_on, builder, user_with_password, Browser, PASSWORD};

async fn project(me: CurrentUser, id: web::Path<i64>) -> HttpResponse {
    HttpResponse::Ok().body(format!("project {} of {}", id.into_inner(), me.user.email))
}

/// A page anyone may open; the middleware still records signed-in visitors.
async fn public(_me: OptionalUser) -> HttpResponse {
    HttpResponse::Ok().body("public")
}

async fn health() -> HttpResponse {
    HttpResponse::Ok().body("ok")
}

/// A feature the host records by name.
async fn export(me: CurrentUser, activity: Activity) -> HttpResponse {
    let queued = activity.record(&me, "export.created", json!({ "rows": 3 }));
    HttpResponse::Ok().body(format!("queued {queued}"))
}

/// The host app: frontdesk mounted, and the host's own routes wrapped in the
/// activity middleware.
macro_rules! activity_app {
    ($fd:expr) => {
        actix_web::test::init_service(
            actix_web::App::new().configure($fd.configure()).service(
                actix_web::web::scope("")
                    .wrap($fd.activity_middleware().service("web"))
                    .route("/projects/{id}", actix_web::web::get().to(project))
                    .route("/public", actix_web::web::get().to(public))
                    .route("/health", actix_web::web::get().to(health))
                    .route("/export", actix_web::web::post().to(export)),
            ),
        )
        .await
    };
}

fn events(db: &TestDb) -> Vec<activity::ActivityEvent> {
    activity_events::table
        .select(activity::ActivityEvent::as_select())
        .order(activity_events::id.asc())
        .load(&mut *db.conn())
        .expect("events")
}

fn config() -> ActivityConfig {
    ActivityConfig::default().exclude_route("/health")
}

/// Waits until the current minute has at least `secs` seconds left, so
/// requests meant to share one dedup window do.
fn not_at_minute_end(secs: u32) {
    let s = chrono::Utc::now().second();
    if s + secs >= 60 {
        std::thread::sleep(Duration::from_secs(u64::from(61 - s)));
    }
}

both!(recorded_for_signed_in_users_by_route_pattern, |db| {
    block_on(async {
        let fd = builder(db).activity(config()).build().expect("frontdesk");
        let app = activity_app!(fd);
        user_with_password(db, "ada@example.com");

        // Anonymous: the protected page refuses, the public one answers;
        // neither is recorded.
        let mut anon = Browser::new();
        let page = anon.get(&app, "/projects/42?q=secret").await;
        assert_ne!(page.status, StatusCode::OK);
        assert_eq!(anon.get(&app, "/public").await.status, StatusCode::OK);
        fd.activity().flushed().await;
        assert!(events(db).is_empty(), "{:?}", events(db));

        not_at_minute_end(5);
        let mut b = Browser::new();
        b.login(&app, "ada@example.com", PASSWORD).await;
        let page = b.get(&app, "/projects/42?q=secret").await;
        assert_eq!(page.status, StatusCode::OK);
        // The public page, opened signed in, is recorded too.
        assert_eq!(b.get(&app, "/public").await.status, StatusCode::OK);
        // Excluded route, and a path no route matches: not recorded.
        assert_eq!(b.get(&app, "/health").await.status, StatusCode::OK);
        b.get(&app, "/nowhere/7").await;
        // frontdesk's own pages are outside the wrapped scope.
        b.get(&app, "/auth/sessions").await;
        fd.activity().flushed().await;

        let rows = events(db);
        let routes: Vec<_> = rows.iter().map(|e| e.route.clone()).collect();
        assert_eq!(
            routes,
            vec![
                Some("/projects/{id}".to_owned()),
                Some("/public".to_owned())
            ]
        );
        let e = &rows[0];
        assert_eq!(e.kind, "page_view");
        assert_eq!(e.method.as_deref(), Some("GET"));
        assert_eq!(e.status, Some(200));
        assert_eq!(e.service.as_deref(), Some("web"));
        assert_eq!(e.ip, None, "no IP unless configured");
        assert_eq!(e.details, "{}");
        for e in &rows {
            let stored = format!("{:?} {} {:?}", e.route, e.details, e.ip);
            assert!(
                !stored.contains("42") && !stored.contains("secret"),
                "{stored}"
            );
        }
        // last_active_at follows the events (moved a minute at a time).
        let last: Option<chrono::NaiveDateTime> = users::table
            .filter(users::id.eq(e.user_id))
            .select(users::last_active_at)
            .first(&mut *db.conn())
            .expect("user");
        assert!(
            last >= Some(rows[1].at - activity::LAST_ACTIVE_STEP),
            "{last:?}"
        );
    });
});

both!(raw_paths_and_ips_only_when_the_host_opts_in, |db| {
    block_on(async {
        let fd = builder(db)
            .activity(config().record_path(true).record_ip(true))
            .build()
            .expect("frontdesk");
        let app = activity_app!(fd);
        user_with_password(db, "ada@example.com");
        let mut b = Browser::new();
        b.login(&app, "ada@example.com", PASSWORD).await;
        let req = actix_web::test::TestRequest::get()
            .uri("/projects/42?q=x")
            .peer_addr("203.0.113.9:5000".parse().expect("addr"));
        assert_eq!(b.send(&app, req).await.status, StatusCode::OK);
        fd.activity().flushed().await;
        let rows = events(db);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].route.as_deref(), Some("/projects/{id}"));
        let details: Value = serde_json::from_str(&rows[0].details).expect("json");
        assert_eq!(details, json!({ "path": "/projects/42?q=x" }));
        assert_eq!(rows[0].ip.as_deref(), Some("203.0.113.9"));
    });
});

both!(
    page_views_are_recorded_once_per_user_route_and_minute,
    |db| {
        block_on(async {
            let fd = builder(db).activity(config()).build().expect("frontdesk");
            let app = activity_app!(fd);
            user_with_password(db, "ada@example.com");
            user_with_password(db, "bob@example.com");
            let mut ada = Browser::new();
            ada.login(&app, "ada@example.com", PASSWORD).await;
            let mut bob = Browser::new();
            bob.login(&app, "bob@example.com", PASSWORD).await;

            not_at_minute_end(5);
            for id in [1, 2, 3] {
                assert_eq!(
                    ada.get(&app, &format!("/projects/{id}")).await.status,
                    StatusCode::OK
                );
            }
            ada.get(&app, "/public").await;
            bob.get(&app, "/projects/1").await;
            fd.activity().flushed().await;
            let rows = events(db);
            assert_eq!(rows.len(), 3, "{rows:?}");
            assert_eq!(fd.activity().stats().deduplicated, 2);
            // Features are never folded together.
            for _ in 0..2 {
                let req = actix_web::test::TestRequest::post().uri("/export");
                assert_eq!(ada.send(&app, req).await.status, StatusCode::OK);
            }
            fd.activity().flushed().await;
            let exports: Vec<_> = events(db)
                .into_iter()
                .filter(|e| e.kind == "export.created")
                .collect();
            assert_eq!(exports.len(), 2);
            assert_eq!(exports[0].details, r#"{"rows":3}"#);
            assert_eq!(exports[0].service, None);
        });
    }
);

both!(without_the_window_every_page_view_is_recorded, |db| {
    block_on(async {
        let fd = builder(db)
            .activity(config().page_view_dedup(None))
            .build()
            .expect("frontdesk");
        let app = activity_app!(fd);
        user_with_password(db, "ada@example.com");
        let mut b = Browser::new();
        b.login(&app, "ada@example.com", PASSWORD).await;
        for _ in 0..3 {
            b.get(&app, "/projects/1").await;
        }
        fd.activity().flushed().await;
        assert_eq!(events(db).len(), 3);
    });
});

both!(recording_is_off_unless_the_host_turns_it_on, |db| {
    block_on(async {
        let fd = builder(db).build().expect("frontdesk");
        let app = activity_app!(fd);
        user_with_password(db, "ada@example.com");
        let mut b = Browser::new();
        b.login(&app, "ada@example.com", PASSWORD).await;
        assert_eq!(b.get(&app, "/projects/1").await.status, StatusCode::OK);
        assert!(!fd.activity().enabled());
        assert!(events(db).is_empty());
    });
});

/// Holds the table so the writer cannot write, on a thread of its own, until
/// told to let go (or 20 s passed, so a broken queue that makes requests
/// wait ends in a failed assertion rather than a hang): SQLite's write lock,
/// or PostgreSQL's EXCLUSIVE lock on `activity_events` (reads go on).
fn hold_writes(db: &TestDb) -> std::sync::mpsc::Sender<()> {
    let mut conn = db.conn();
    let (locked_tx, locked) = std::sync::mpsc::channel();
    let (release, released) = std::sync::mpsc::channel::<()>();
    let kind = db.kind;
    std::thread::spawn(move || {
        match kind {
            BackendKind::Sqlite => conn.batch_execute("BEGIN IMMEDIATE"),
            BackendKind::Postgres => {
                conn.batch_execute("BEGIN; LOCK TABLE activity_events IN EXCLUSIVE MODE")
            }
        }
        .expect("lock");
        locked_tx.send(()).expect("locked");
        let _ = released.recv_timeout(Duration::from_secs(20));
        conn.batch_execute("COMMIT").expect("unlock");
    });
    locked.recv().expect("lock taken");
    release
}

both!(
    a_full_queue_drops_and_counts_and_requests_never_wait,
    |db| {
        block_on(async {
            let fd = builder(db)
                .activity(
                    config()
                        .queue_capacity(4)
                        .batch_size(2)
                        .page_view_dedup(None),
                )
                .build()
                .expect("frontdesk");
            let app = activity_app!(fd);
            user_with_password(db, "ada@example.com");
            let mut b = Browser::new();
            b.login(&app, "ada@example.com", PASSWORD).await;

            let release = hold_writes(db);
            const N: u64 = 20;
            for i in 0..N {
                let page = b.get(&app, &format!("/projects/{i}")).await;
                assert_eq!(page.status, StatusCode::OK);
            }
            let stats = fd.activity().stats();
            let _ = release.send(());
            // The writer holds at most one batch (2), the queue 4: the rest drop.
            assert!(stats.dropped >= N - 6, "{stats:?}");
            assert_eq!(stats.queued + stats.dropped, N, "{stats:?}");

            fd.activity().flushed().await;
            let stats = fd.activity().stats();
            assert_eq!(stats.written, stats.queued, "{stats:?}");
            assert_eq!(stats.failed, 0);
            assert_eq!(events(db).len() as u64, stats.queued);
        });
    }
);

fn event(user_id: i64, at: chrono::NaiveDateTime, kind: &str, service: &str) -> NewActivity {
    NewActivity {
        user_id,
        at,
        kind: kind.into(),
        service: Some(service.into()),
        route: Some("/projects/{id}".into()),
        method: Some("GET".into()),
        status: Some(200),
        details: "{}".into(),
        ip: None,
    }
}

both!(retention_deletes_only_older_events, |db| {
    block_on(async {
        let fd = builder(db)
            .activity(
                config()
                    .retention(Some(chrono::Duration::days(30)))
                    .retention_batch(2),
            )
            .build()
            .expect("frontdesk");
        let ada = user_with_password(db, "ada@example.com");
        let now = frontdesk_core::time::now();
        let day = chrono::Duration::days(1);
        let mut batch = Vec::new();
        for age in [400, 90, 31, 30 + 1] {
            batch.push(event(ada.id, now - day * age, "page_view", "web"));
        }
        // Just inside the retention, and recent.
        batch.push(event(ada.id, now - day * 29, "page_view", "web"));
        batch.push(event(ada.id, now, "page_view", "web"));
        activity::insert_batch(&mut db.conn(), &batch).expect("insert");

        // Four older than 30 days, deleted two at a time.
        assert_eq!(fd.activity().purge_now().await, 4);
        let left: Vec<_> = events(db).iter().map(|e| e.at).collect();
        assert_eq!(left, vec![now - day * 29, now]);
        assert_eq!(fd.activity().purge_now().await, 0);
        assert_eq!(events(db).len(), 2);
    });
});

both!(last_active_at_moves_forward_with_the_events, |db| {
    let ada = user_with_password(db, "ada@example.com");
    let mut conn = db.conn();
    diesel::update(users::table.filter(users::id.eq(ada.id)))
        .set(users::last_active_at.eq(None::<chrono::NaiveDateTime>))
        .execute(&mut *conn)
        .expect("reset");
    let t = frontdesk_core::time::now();
    let h = chrono::Duration::hours(1);
    activity::insert_batch(
        &mut conn,
        &[
            event(ada.id, t - h, "page_view", "web"),
            event(ada.id, t, "a", "web"),
        ],
    )
    .expect("insert");
    let last = |conn: &mut frontdesk_core::db::DbConnection| -> Option<chrono::NaiveDateTime> {
        users::table
            .filter(users::id.eq(ada.id))
            .select(users::last_active_at)
            .first(conn)
            .expect("user")
    };
    assert_eq!(last(&mut conn), Some(t));
    // An older event does not move it back.
    activity::insert_batch(&mut conn, &[event(ada.id, t - h * 5, "b", "web")]).expect("insert");
    assert_eq!(last(&mut conn), Some(t));
    // Less than a minute later: left as it is; a minute or more: moved.
    let s = chrono::Duration::seconds(1);
    activity::insert_batch(&mut conn, &[event(ada.id, t + s * 59, "d", "web")]).expect("insert");
    assert_eq!(last(&mut conn), Some(t));
    activity::insert_batch(&mut conn, &[event(ada.id, t + s * 61, "e", "web")]).expect("insert");
    assert_eq!(last(&mut conn), Some(t + s * 61));
    // Events of a user deleted meanwhile are left out; the rest are written.
    let n = activity::insert_batch(
        &mut conn,
        &[event(ada.id, t, "c", "web"), event(999_999, t, "c", "web")],
    )
    .expect("insert");
    assert_eq!(n, 1);
});

both!(timeline_api_pages_filters_and_scopes, |db| {
    block_on(async {
        let fd = builder(db).build().expect("frontdesk");
        let app = crate::host_app!(fd);
        let w = world(db, &app).await;
        let member = w.acme_member.id;
        let t = frontdesk_core::time::now();
        let s = chrono::Duration::seconds(1);
        let mut batch = Vec::new();
        for i in 0..5 {
            batch.push(event(member, t - s * (10 - i), "page_view", "web"));
        }
        let mut export = event(member, t, "export.created", "mobile-api");
        export.route = None;
        export.method = None;
        export.status = None;
        export.details = r#"{"rows":3}"#.into();
        batch.push(export);
        batch.push(event(w.globex_member.id, t, "page_view", "web"));
        activity::insert_batch(&mut db.conn(), &batch).expect("insert");

        // Newest first, in pages joined by the cursor.
        let path = format!("/users/{member}/activity");
        let a = expect(
            &app,
            &w,
            Who::StaffOwnerKey,
            "GET",
            &format!("{path}?limit=4"),
            None,
            200,
        )
        .await;
        let first = a.body["events"].as_array().expect("events").clone();
        assert_eq!(first.len(), 4);
        let at: chrono::DateTime<chrono::Utc> =
            serde_json::from_value(first[0]["at"].clone()).expect("at");
        assert_eq!(at.naive_utc(), t);
        assert_eq!(
            first[0],
            json!({
                "at": first[0]["at"],
                "kind": "export.created",
                "service": "mobile-api",
                "route": null,
                "details": { "rows": 3 },
            })
        );
        assert_eq!(first[1]["route"], "/projects/{id}");
        assert_eq!(
            first[1]["details"],
            json!({ "method": "GET", "status": 200 })
        );
        let cursor = a.body["next_cursor"].as_str().expect("cursor").to_owned();
        let a = expect(
            &app,
            &w,
            Who::StaffOwnerKey,
            "GET",
            &format!("{path}?limit=4&cursor={cursor}"),
            None,
            200,
        )
        .await;
        let second = a.body["events"].as_array().expect("events");
        assert_eq!(second.len(), 2);
        assert_eq!(a.body["next_cursor"], Value::Null);
        let ats: Vec<&str> = first
            .iter()
            .chain(second)
            .map(|e| e["at"].as_str().unwrap_or(""))
            .collect();
        let mut sorted = ats.clone();
        sorted.sort_by(|a, b| b.cmp(a));
        assert_eq!(ats, sorted);

        // Filters.
        let a = expect(
            &app,
            &w,
            Who::StaffOwnerKey,
            "GET",
            &format!("{path}?kind=export.created"),
            None,
            200,
        )
        .await;
        assert_eq!(a.body["events"].as_array().map(Vec::len), Some(1));
        let a = expect(
            &app,
            &w,
            Who::StaffOwnerKey,
            "GET",
            &format!("{path}?service=web"),
            None,
            200,
        )
        .await;
        assert_eq!(a.body["events"].as_array().map(Vec::len), Some(5));
        // Bad input names the parameter.
        for (q, name) in [
            ("cursor=nope", "cursor"),
            ("limit=0", "limit"),
            ("kind=Bad%20Kind", "kind"),
            // The document's patterns need a character: empty is no filter
            // to fall back on, and padding is not trimmed away.
            ("kind=", "kind"),
            ("kind=%20page_view", "kind"),
            ("cursor=", "cursor"),
            ("colour=red", "colour"),
        ] {
            let a = expect(
                &app,
                &w,
                Who::StaffOwnerKey,
                "GET",
                &format!("{path}?{q}"),
                None,
                400,
            )
            .await;
            assert!(a.raw.contains(name), "{q}: {}", a.raw);
        }

        // Organization admins: their organization's users only.
        expect(&app, &w, Who::AcmeAdminKey, "GET", &path, None, 200).await;
        let globex_path = format!("/users/{}/activity", w.globex_member.id);
        expect(&app, &w, Who::AcmeAdminKey, "GET", &globex_path, None, 404).await;
        expect(&app, &w, Who::GlobexAdminKey, "GET", &path, None, 404).await;
        let org = format!("/organizations/acme/users/{member}/activity");
        let a = expect(&app, &w, Who::AcmeAdminKey, "GET", &org, None, 200).await;
        assert_eq!(a.body["events"].as_array().map(Vec::len), Some(6));
        let other = format!("/organizations/acme/users/{}/activity", w.globex_member.id);
        expect(&app, &w, Who::AcmeAdminKey, "GET", &other, None, 404).await;
        expect(&app, &w, Who::GlobexAdminKey, "GET", &org, None, 404).await;
        // Staff see every user, but not under an organization they are not in.
        expect(&app, &w, Who::StaffOwnerKey, "GET", &other, None, 404).await;
        expect(&app, &w, Who::Anonymous, "GET", &path, None, 401).await;
        expect(&app, &w, Who::MemberSession, "GET", &path, None, 403).await;
    });
});

both!(last_access_tab_and_csv, |db| {
    block_on(async {
        let fd = builder(db).activity(config()).build().expect("frontdesk");
        let app = crate::host_app!(fd);
        let w = world(db, &app).await;
        let member = w.acme_member.id;
        let t = frontdesk_core::time::now();
        let day = chrono::Duration::days(1);
        let mut feature = event(member, t, "export.created", "mobile-api");
        feature.route = None;
        // A cell a spreadsheet would run as a formula.
        feature.ip = Some("=HYPERLINK(\"x\")".into());
        activity::insert_batch(
            &mut db.conn(),
            &[
                event(member, t - day * 2, "page_view", "web"),
                event(member, t - day, "page_view", "web"),
                feature,
                event(w.globex_member.id, t, "page_view", "web"),
            ],
        )
        .expect("insert");

        let (mut staff, _) = w.browsers[&Who::StaffOwnerSession].clone();
        let page = staff.get(&app, &format!("/admin/users/{member}")).await;
        assert!(
            page.body
                .contains(&format!("/users/{member}/activity\">Last access")),
            "{} {}",
            page.status,
            page.body
        );
        let page = staff
            .get(&app, &format!("/admin/users/{member}/activity"))
            .await;
        assert_eq!(page.status, StatusCode::OK);
        // Grouped by day, newest day first.
        let days: Vec<String> = [t, t - day, t - day * 2]
            .iter()
            .map(|d| d.format("%Y-%m-%d").to_string())
            .collect();
        let at: Vec<usize> = days
            .iter()
            .map(|d| page.body.find(&format!("<h2>{d}")).expect(d))
            .collect();
        assert!(at[0] < at[1] && at[1] < at[2], "{at:?}");
        assert!(page
            .body
            .replace("&#x2F;", "/")
            .contains("GET <code>/projects/{id}</code>"));
        // Filters.
        let page = staff
            .get(
                &app,
                &format!("/admin/users/{member}/activity?service=mobile-api"),
            )
            .await;
        assert!(page.body.contains("export.created"));
        assert!(!page
            .body
            .replace("&#x2F;", "/")
            .contains("/projects/{id}</code>"));
        let page = staff
            .get(&app, &format!("/admin/users/{member}/activity?cursor=bad"))
            .await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST);

        // The CSV: newest first, formulas neutralised, an attachment.
        let csv = staff
            .get(&app, &format!("/admin/users/{member}/activity.csv"))
            .await;
        assert_eq!(csv.status, StatusCode::OK);
        assert!(csv
            .header("content-disposition")
            .unwrap_or("")
            .starts_with("attachment"));
        let lines: Vec<&str> = csv.body.lines().collect();
        assert_eq!(lines[0], "at,kind,service,route,method,status,details,ip");
        assert_eq!(lines.len(), 4, "{}", csv.body);
        assert!(lines[1].contains("export.created"), "{}", lines[1]);
        assert!(
            lines[1].ends_with(r#","'=HYPERLINK(""x"")""#),
            "{}",
            lines[1]
        );

        // An organization admin: their organization's users only.
        let (mut acme, _) = w.browsers[&Who::AcmeAdminSession].clone();
        let page = acme
            .get(&app, &format!("/admin/users/{member}/activity"))
            .await;
        assert_eq!(page.status, StatusCode::OK);
        for path in ["activity", "activity.csv"] {
            let page = acme
                .get(&app, &format!("/admin/users/{}/{path}", w.globex_member.id))
                .await;
            assert_eq!(page.status, StatusCode::NOT_FOUND, "{path}");
        }
        // An end user: no admin pages.
        let (mut end_user, _) = w.browsers[&Who::MemberSession].clone();
        let page = end_user
            .get(&app, &format!("/admin/users/{member}/activity.csv"))
            .await;
        assert_eq!(page.status, StatusCode::FORBIDDEN);
    });
});

both!(recent_activity_filters_on_list_api_and_export, |db| {
    block_on(async {
        let fd = builder(db).build().expect("frontdesk");
        let app = crate::host_app!(fd);
        let w = world(db, &app).await;
        let now = frontdesk_core::time::now();
        let day = chrono::Duration::days(1);
        let set = |id: i64, at: Option<chrono::NaiveDateTime>| {
            diesel::update(users::table.filter(users::id.eq(id)))
                .set(users::last_active_at.eq(at))
                .execute(&mut *db.conn())
                .expect("set");
        };
        // Everyone else: active long ago, so only these three are recent.
        diesel::update(users::table)
            .set(users::last_active_at.eq(Some(now - day * 400)))
            .execute(&mut *db.conn())
            .expect("all");
        set(w.acme_member.id, Some(now - day * 2));
        set(w.globex_member.id, Some(now - day * 10));
        set(w.acme_owner.id, None);

        let emails = |a: &crate::api_v1_support::Answer| {
            let mut v = crate::api_v1_support::emails(a);
            v.sort();
            v
        };
        let a = expect(
            &app,
            &w,
            Who::StaffOwnerKey,
            "GET",
            "/users?active_days=7",
            None,
            200,
        )
        .await;
        assert_eq!(emails(&a), vec![w.acme_member.email.clone()]);
        let a = expect(
            &app,
            &w,
            Who::StaffOwnerKey,
            "GET",
            "/users?active_days=30&sort=last_active&dir=desc",
            None,
            200,
        )
        .await;
        assert_eq!(
            crate::api_v1_support::emails(&a),
            vec![w.acme_member.email.clone(), w.globex_member.email.clone()]
        );
        let a = expect(
            &app,
            &w,
            Who::StaffOwnerKey,
            "GET",
            "/users?inactive_days=5&limit=100",
            None,
            200,
        )
        .await;
        let inactive = emails(&a);
        assert!(inactive.contains(&w.globex_member.email), "{inactive:?}");
        assert!(
            inactive.contains(&w.acme_owner.email),
            "never active counts as inactive"
        );
        assert!(!inactive.contains(&w.acme_member.email));
        // Organization admins: their organization only.
        let a = expect(
            &app,
            &w,
            Who::AcmeAdminKey,
            "GET",
            "/users?active_days=30",
            None,
            200,
        )
        .await;
        assert_eq!(emails(&a), vec![w.acme_member.email.clone()]);
        for q in ["active_days=0", "inactive_days=x", "active_days=3651"] {
            let name = q.split('=').next().unwrap_or("");
            let a = expect(
                &app,
                &w,
                Who::StaffOwnerKey,
                "GET",
                &format!("/users?{q}"),
                None,
                400,
            )
            .await;
            assert!(a.raw.contains(name), "{q}: {}", a.raw);
        }
        // The export takes the same filter.
        let a = crate::api_v1_support::call(
            &app,
            &w,
            Who::StaffOwnerKey,
            "GET",
            "/export?fields=email&active_days=7",
            None,
        )
        .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.raw);
        assert_eq!(
            a.raw.lines().collect::<Vec<_>>(),
            vec!["email", w.acme_member.email.as_str()]
        );
        // The users page.
        let (mut staff, _) = w.browsers[&Who::StaffOwnerSession].clone();
        let page = staff.get(&app, "/admin/users?active_days=7").await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.body.contains(&w.acme_member.email));
        assert!(!page.body.contains(&w.globex_member.email));
        assert!(page
            .body
            .contains("name=\"active_days\" min=\"1\" max=\"3650\" value=\"7\""));
    });
});
