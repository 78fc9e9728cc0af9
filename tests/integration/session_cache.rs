//! The PostgreSQL session cache: every way a session ends is refused on the
//! very next request on the instance that ended it and within a second on
//! another instance; a cached session is answered without the database; a
//! lost listener sends every check to the database until it is back.

use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::test::TestRequest;
use diesel::prelude::*;
use frontdesk::Frontdesk;
use frontdesk_core::api_keys::{self, KeyRole};
use frontdesk_core::outbox::NewMail;
use frontdesk_core::schema::{sessions, users};
use frontdesk_core::session_cache::{SessionCache, LISTENER_NAME};
use frontdesk_core::{password_resets, Actor, StaffRole};

use crate::host_app;
use crate::support::TestDb;
use crate::web_app::{block_on, builder, user_with_password, Browser, PASSWORD};

const NEW_PASSWORD: &str = "another long passphrase";

fn cache(fd: &Frontdesk) -> &SessionCache {
    fd.state()
        .session_cache()
        .expect("PostgreSQL instances have a session cache")
}

/// Polls `ok` until it holds or `within` has passed; says whether it held.
async fn eventually(within: Duration, mut ok: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if ok() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        actix_web::rt::time::sleep(Duration::from_millis(10)).await;
    }
}

fn newest_session_of(db: &TestDb, user_id: i64) -> i64 {
    sessions::table
        .filter(sessions::user_id.eq(user_id))
        .order(sessions::id.desc())
        .select(sessions::id)
        .first(&mut *db.conn())
        .expect("a session")
}

fn revoked(db: &TestDb, session_id: i64) -> bool {
    sessions::table
        .find(session_id)
        .select(sessions::revoked_at)
        .first::<Option<chrono::NaiveDateTime>>(&mut *db.conn())
        .optional()
        .expect("read")
        // A deleted row is as ended as a revoked one.
        .is_none_or(|r| r.is_some())
}

/// Every way a session can end, each driven through instance A's pages or API.
#[derive(Debug, Clone, Copy)]
enum End {
    AdminPageRevokeOne,
    ApiRevokeOne,
    OwnSessionsPageRevokeOne,
    OwnSessionsPageRevokeOthers,
    ApiRevokeAll,
    AdminPageSuspend,
    ApiSuspend,
    AdminPageDelete,
    PasswordChange,
    PasswordReset,
}

async fn ends_everywhere(db: &TestDb, how: End) {
    let a = builder(db).build().expect("instance A");
    let b = builder(db).build().expect("instance B");
    let app_a = host_app!(a);
    let app_b = host_app!(b);
    assert!(
        eventually(Duration::from_secs(5), || cache(&a).is_listening()
            && cache(&b).is_listening())
        .await,
        "both listeners connected"
    );

    let ann = user_with_password(db, "ann@example.com");
    let boss = user_with_password(db, "boss@example.com");
    diesel::update(users::table.find(boss.id))
        .set(users::staff_role.eq(Some("owner")))
        .execute(&mut *db.conn())
        .expect("owner");
    let (_, key) = api_keys::create(
        &mut db.conn(),
        &Actor::system(),
        "ops",
        KeyRole::Staff(StaffRole::Owner),
    )
    .expect("key");
    let mut admin = Browser::new();
    admin.login(&app_a, "boss@example.com", PASSWORD).await;
    let mut api = Browser::new();
    api.headers
        .push(("Authorization".into(), format!("Bearer {}", key.expose())));

    // Ann's phone: the session that must end. Her laptop keeps its own.
    let mut laptop = Browser::new();
    laptop.login(&app_a, "ann@example.com", PASSWORD).await;
    let mut phone = Browser::new();
    phone.login(&app_a, "ann@example.com", PASSWORD).await;
    let phone_session = newest_session_of(db, ann.id);

    // Cached on both instances: the second request on each is a hit.
    for (app, fd) in [(&app_a, &a), (&app_b, &b)] {
        assert_eq!(phone.get(app, "/notes").await.status, StatusCode::OK);
        let hits = cache(fd).stats().hits;
        assert_eq!(phone.get(app, "/notes").await.status, StatusCode::OK);
        assert_eq!(
            cache(fd).stats().hits,
            hits + 1,
            "{how:?}: served from the cache"
        );
    }
    let mut phone_b = phone.clone();

    let status = match how {
        End::AdminPageRevokeOne => {
            let csrf = admin.get(&app_a, "/admin/sessions").await.csrf();
            admin
                .post(
                    &app_a,
                    &format!("/admin/sessions/{phone_session}/revoke"),
                    &[("csrf_token", &csrf)],
                )
                .await
                .status
        }
        End::ApiRevokeOne => {
            let req = TestRequest::delete().uri(&format!("/admin/api/v1/sessions/{phone_session}"));
            api.send(&app_a, req).await.status
        }
        End::OwnSessionsPageRevokeOne => {
            let csrf = laptop.get(&app_a, "/auth/sessions").await.csrf();
            laptop
                .post(
                    &app_a,
                    &format!("/auth/sessions/{phone_session}/revoke"),
                    &[("csrf_token", &csrf)],
                )
                .await
                .status
        }
        End::OwnSessionsPageRevokeOthers => {
            let csrf = laptop.get(&app_a, "/auth/sessions").await.csrf();
            laptop
                .post(
                    &app_a,
                    "/auth/sessions/revoke-others",
                    &[("csrf_token", &csrf)],
                )
                .await
                .status
        }
        End::ApiRevokeAll => {
            let req =
                TestRequest::delete().uri(&format!("/admin/api/v1/users/{}/sessions", ann.id));
            api.send(&app_a, req).await.status
        }
        End::AdminPageSuspend => {
            let csrf = admin
                .get(&app_a, &format!("/admin/users/{}", ann.id))
                .await
                .csrf();
            admin
                .post(
                    &app_a,
                    &format!("/admin/users/{}/suspend", ann.id),
                    &[("csrf_token", &csrf), ("reason", "card declined")],
                )
                .await
                .status
        }
        End::ApiSuspend => {
            let req = TestRequest::post()
                .uri(&format!("/admin/api/v1/users/{}/suspend", ann.id))
                .set_json(serde_json::json!({"reason": "card declined"}));
            api.send(&app_a, req).await.status
        }
        End::AdminPageDelete => {
            let csrf = admin
                .get(&app_a, &format!("/admin/users/{}", ann.id))
                .await
                .csrf();
            admin
                .post(
                    &app_a,
                    &format!("/admin/users/{}/delete", ann.id),
                    &[("csrf_token", &csrf), ("confirm", "ann@example.com")],
                )
                .await
                .status
        }
        End::PasswordChange => {
            let csrf = laptop.get(&app_a, "/auth/password").await.csrf();
            laptop
                .post(
                    &app_a,
                    "/auth/password",
                    &[
                        ("csrf_token", &csrf),
                        ("current_password", PASSWORD),
                        ("password", NEW_PASSWORD),
                        ("password_confirm", NEW_PASSWORD),
                    ],
                )
                .await
                .status
        }
        End::PasswordReset => {
            let mut raw = String::new();
            let sent = password_resets::request(
                &mut db.conn(),
                "ann@example.com",
                chrono::Duration::hours(1),
                |u, t, _| {
                    raw = t.expose().to_owned();
                    Ok(NewMail {
                        kind: "password_reset".into(),
                        recipient: u.email.clone(),
                        subject: "reset".into(),
                        text_body: "reset".into(),
                        html_body: None,
                        invitation_id: None,
                    })
                },
            )
            .expect("reset requested");
            assert!(sent);
            let mut stranger = Browser::new();
            let path = format!("/auth/password-reset/{raw}");
            let csrf = stranger.get(&app_a, &path).await.csrf();
            stranger
                .post(
                    &app_a,
                    &path,
                    &[
                        ("csrf_token", &csrf),
                        ("password", NEW_PASSWORD),
                        ("password_confirm", NEW_PASSWORD),
                    ],
                )
                .await
                .status
        }
    };
    assert!(
        status.is_success() || status.is_redirection(),
        "{how:?}: the change was accepted ({status})"
    );
    assert!(revoked(db, phone_session), "{how:?}: ended in the database");

    // The instance that made the change refuses the very next request.
    assert_eq!(
        phone.get(&app_a, "/notes").await.status,
        StatusCode::SEE_OTHER,
        "{how:?}: same instance, next request"
    );
    // The other instance within a second.
    let deadline = Instant::now() + Duration::from_secs(1);
    let mut refused = false;
    while Instant::now() < deadline {
        if phone_b.get(&app_b, "/notes").await.status == StatusCode::SEE_OTHER {
            refused = true;
            break;
        }
        actix_web::rt::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(refused, "{how:?}: other instance within 1 s");
    assert_eq!(
        phone_b.get(&app_b, "/notes").await.status,
        StatusCode::SEE_OTHER,
        "{how:?}: and stays refused"
    );
}

macro_rules! pg_only {
    ($name:ident, $how:expr) => {
        #[test]
        fn $name() {
            let Some(db) = TestDb::postgres() else {
                return;
            };
            block_on(ends_everywhere(&db, $how));
        }
    };
}

pg_only!(cache_admin_page_revoke_one, End::AdminPageRevokeOne);
pg_only!(cache_api_revoke_one, End::ApiRevokeOne);
pg_only!(cache_own_page_revoke_one, End::OwnSessionsPageRevokeOne);
pg_only!(
    cache_own_page_revoke_others,
    End::OwnSessionsPageRevokeOthers
);
pg_only!(cache_api_revoke_all, End::ApiRevokeAll);
pg_only!(cache_admin_page_suspend, End::AdminPageSuspend);
pg_only!(cache_api_suspend, End::ApiSuspend);
pg_only!(cache_admin_page_delete, End::AdminPageDelete);
pg_only!(cache_password_change, End::PasswordChange);
pg_only!(cache_password_reset, End::PasswordReset);

/// A cached session is answered with every pooled connection taken.
async fn hit_needs_no_connection(db: &TestDb) {
    let fd = builder(db).pool_size(2).build().expect("frontdesk");
    let app = host_app!(fd);
    assert!(eventually(Duration::from_secs(5), || cache(&fd).is_listening()).await);
    user_with_password(db, "ann@example.com");
    let mut ann = Browser::new();
    ann.login(&app, "ann@example.com", PASSWORD).await;
    assert_eq!(ann.get(&app, "/notes").await.status, StatusCode::OK);

    let held: Vec<_> = (0..2)
        .map(|_| fd.pool().get().expect("a pooled connection"))
        .collect();
    let started = Instant::now();
    let page = ann.get(&app, "/notes").await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.body, "notes of ann@example.com");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "answered without waiting for a connection"
    );
    // A session nobody cached does need the database: it waits, then 503s.
    let mut stranger = Browser::new();
    stranger
        .jar
        .insert("frontdesk_session".into(), "A".repeat(43));
    assert_eq!(
        stranger.get(&app, "/notes").await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    drop(held);
}

#[test]
fn cache_hit_runs_no_query() {
    let Some(db) = TestDb::postgres() else {
        return;
    };
    block_on(hit_needs_no_connection(&db));
}

/// Kills the listener's backend; the cache is bypassed until it is back.
async fn listener_loss(db: &TestDb) {
    let fd = builder(db).build().expect("frontdesk");
    let app = host_app!(fd);
    assert!(eventually(Duration::from_secs(5), || cache(&fd).is_listening()).await);
    let ann = user_with_password(db, "ann@example.com");
    let mut phone = Browser::new();
    phone.login(&app, "ann@example.com", PASSWORD).await;
    let phone_session = newest_session_of(db, ann.id);
    let mut laptop = Browser::new();
    laptop.login(&app, "ann@example.com", PASSWORD).await;
    for b in [&mut phone, &mut laptop] {
        assert_eq!(b.get(&app, "/notes").await.status, StatusCode::OK);
        assert_eq!(b.get(&app, "/notes").await.status, StatusCode::OK);
    }
    assert!(cache(&fd).stats().hits >= 2, "both cached");

    #[derive(QueryableByName)]
    struct Ended {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        ended: bool,
    }
    let ended: Vec<Ended> = diesel::sql_query(
        "SELECT pg_terminate_backend(pid) AS ended FROM pg_stat_activity \
         WHERE datname = current_database() AND application_name = $1",
    )
    .bind::<diesel::sql_types::Text, _>(LISTENER_NAME)
    .load(&mut *db.conn())
    .expect("terminate");
    assert_eq!(ended.len(), 1, "one listener for one instance");
    assert!(ended[0].ended);
    assert!(
        eventually(Duration::from_secs(2), || !cache(&fd).is_listening()).await,
        "the loss is noticed"
    );

    // A revocation nobody announces (raw SQL, no NOTIFY) during the gap.
    diesel::update(sessions::table.find(phone_session))
        .set(sessions::revoked_at.eq(Some(frontdesk_core::time::now())))
        .execute(&mut *db.conn())
        .expect("revoke behind its back");
    let bypassed = cache(&fd).stats().bypassed;
    assert_eq!(
        phone.get(&app, "/notes").await.status,
        StatusCode::SEE_OTHER,
        "checked in the database, not the cache"
    );
    assert!(
        cache(&fd).stats().bypassed > bypassed,
        "the cache was bypassed"
    );

    // Back, caught up, and used again.
    assert!(
        eventually(Duration::from_secs(5), || cache(&fd).is_listening()).await,
        "the listener reconnects"
    );
    assert_eq!(
        phone.get(&app, "/notes").await.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(laptop.get(&app, "/notes").await.status, StatusCode::OK);
    let hits = cache(&fd).stats().hits;
    assert_eq!(laptop.get(&app, "/notes").await.status, StatusCode::OK);
    assert_eq!(cache(&fd).stats().hits, hits + 1, "cached again");
}

#[test]
fn cache_bypassed_while_listener_is_down() {
    let Some(db) = TestDb::postgres() else {
        return;
    };
    block_on(listener_loss(&db));
}

#[test]
fn sqlite_has_no_session_cache() {
    let db = TestDb::sqlite();
    let fd = builder(&db).build().expect("frontdesk");
    assert!(fd.state().session_cache().is_none());
}

/// The timeouts are judged on every request from the cached timestamps.
async fn idle_from_cache(db: &TestDb) {
    let fd = builder(db)
        .session_idle_timeout(chrono::Duration::seconds(1))
        .build()
        .expect("frontdesk");
    let app = host_app!(fd);
    assert!(eventually(Duration::from_secs(5), || cache(&fd).is_listening()).await);
    user_with_password(db, "ann@example.com");
    let mut ann = Browser::new();
    ann.login(&app, "ann@example.com", PASSWORD).await;
    assert_eq!(ann.get(&app, "/notes").await.status, StatusCode::OK);
    actix_web::rt::time::sleep(Duration::from_millis(1100)).await;
    let hits = cache(&fd).stats().hits;
    assert_eq!(
        ann.get(&app, "/notes").await.status,
        StatusCode::SEE_OTHER,
        "idle longer than the timeout"
    );
    assert_eq!(
        cache(&fd).stats().hits,
        hits + 1,
        "judged from the cached row"
    );
}

#[test]
fn cache_judges_idle_timeout_from_cached_row() {
    let Some(db) = TestDb::postgres() else {
        return;
    };
    block_on(idle_from_cache(&db));
}
