//! Sessions: cookies, rotation, digests only in the database, revocation,
//! timeouts, suspension, password changes, and two instances on one database.

use actix_web::http::StatusCode;
use actix_web::test::TestRequest;
use chrono::Duration;
use diesel::prelude::*;
use frontdesk_core::schema::{sessions, users};
use frontdesk_core::sessions::{self as store, ClientInfo, SessionConfig};
use frontdesk_core::time::now;
use frontdesk_core::{auth, passwords, Actor};

use crate::both;
use crate::host_app;
use crate::support::TestDb;
use crate::web_app::{block_on, builder, frontdesk, user_with_password, Browser, PASSWORD};

fn session_row(db: &TestDb, id: i64) -> store::Session {
    let mut conn = db.conn();
    store::get(&mut conn, id).expect("session")
}

both!(
    authenticate_checks_revocation_expiry_idle_and_digest,
    |db| {
        let user = user_with_password(db, "ann@example.com");
        let mut conn = db.conn();
        let config = SessionConfig::default();
        let client = ClientInfo {
            ip: Some("10.0.0.1".into()),
            user_agent: Some("Firefox\u{7}".into()),
        };
        let (s, token) = store::create(&mut conn, user.id, &client, &config).expect("create");
        assert_eq!(
            s.user_agent.as_deref(),
            Some("Firefox"),
            "control characters dropped"
        );
        assert_eq!(s.expires_at, s.created_at + config.absolute_timeout);

        // Only the digest is stored: no column of any session holds the raw token.
        let rows: Vec<(String, Option<String>, Option<String>)> = sessions::table
            .select((sessions::token_hash, sessions::ip, sessions::user_agent))
            .load(&mut *conn)
            .expect("rows");
        assert!(rows.iter().all(|(h, ip, ua)| h != token.expose()
            && ip.as_deref() != Some(token.expose())
            && ua.as_deref() != Some(token.expose())));
        assert_eq!(rows[0].0, token.hash());

        let (found, u) = store::authenticate(&mut conn, token.expose(), &config)
            .expect("auth")
            .expect("live");
        assert_eq!((found.id, u.id), (s.id, user.id));
        assert!(store::authenticate(&mut conn, "x", &config)
            .expect("auth")
            .is_none());
        assert!(store::authenticate(&mut conn, &"A".repeat(43), &config)
            .expect("auth")
            .is_none());

        // Idle: last activity longer ago than the idle timeout.
        diesel::update(sessions::table.find(s.id))
            .set(sessions::last_active_at.eq(now() - config.idle_timeout - Duration::seconds(1)))
            .execute(&mut *conn)
            .expect("age");
        assert!(
            store::authenticate(&mut conn, token.expose(), &config)
                .expect("auth")
                .is_none(),
            "idle session accepted"
        );

        // Expired: past the absolute timeout, however active.
        diesel::update(sessions::table.find(s.id))
            .set((
                sessions::last_active_at.eq(now()),
                sessions::expires_at.eq(now() - Duration::seconds(1)),
            ))
            .execute(&mut *conn)
            .expect("expire");
        assert!(
            store::authenticate(&mut conn, token.expose(), &config)
                .expect("auth")
                .is_none(),
            "expired session accepted"
        );

        // Revoked.
        let (s2, t2) =
            store::create(&mut conn, user.id, &ClientInfo::default(), &config).expect("create");
        assert!(store::revoke(&mut conn, s2.id, store::reason::LOGOUT).expect("revoke"));
        assert!(!store::revoke(&mut conn, s2.id, store::reason::LOGOUT).expect("revoke twice"));
        assert!(
            store::authenticate(&mut conn, t2.expose(), &config)
                .expect("auth")
                .is_none(),
            "revoked session accepted"
        );
    }
);

both!(last_active_is_written_at_most_once_a_minute, |db| {
    let user = user_with_password(db, "ann@example.com");
    let mut conn = db.conn();
    let config = SessionConfig::default();
    let (s, token) =
        store::create(&mut conn, user.id, &ClientInfo::default(), &config).expect("create");
    store::authenticate(&mut conn, token.expose(), &config)
        .expect("auth")
        .expect("live");
    assert_eq!(
        session_row(db, s.id).last_active_at,
        s.last_active_at,
        "touched within the minute"
    );

    let earlier = now() - Duration::seconds(90);
    diesel::update(sessions::table.find(s.id))
        .set(sessions::last_active_at.eq(earlier))
        .execute(&mut *conn)
        .expect("age");
    store::authenticate(&mut conn, token.expose(), &config)
        .expect("auth")
        .expect("live");
    let after = session_row(db, s.id).last_active_at;
    assert!(
        after > earlier + Duration::seconds(60),
        "not touched after a minute"
    );
    let user_active: Option<chrono::NaiveDateTime> = users::table
        .find(user.id)
        .select(users::last_active_at)
        .first(&mut *conn)
        .expect("user");
    assert_eq!(user_active, Some(after));
});

both!(suspending_a_user_ends_their_sessions, |db| {
    let user = user_with_password(db, "ann@example.com");
    let mut conn = db.conn();
    let config = SessionConfig::default();
    let (_, t1) =
        store::create(&mut conn, user.id, &ClientInfo::default(), &config).expect("create");
    let (_, t2) =
        store::create(&mut conn, user.id, &ClientInfo::default(), &config).expect("create");
    frontdesk_core::users::suspend(&mut conn, &Actor::system(), user.id, "spam").expect("suspend");
    for t in [&t1, &t2] {
        assert!(store::authenticate(&mut conn, t.expose(), &config)
            .expect("auth")
            .is_none());
    }
    let reasons: Vec<Option<String>> = sessions::table
        .select(sessions::revoked_reason)
        .load(&mut *conn)
        .expect("rows");
    assert_eq!(reasons, vec![Some("suspended".to_owned()); 2]);
    // Restored, the old sessions stay dead.
    frontdesk_core::users::restore(&mut conn, &Actor::system(), user.id).expect("restore");
    assert!(store::authenticate(&mut conn, t1.expose(), &config)
        .expect("auth")
        .is_none());
});

both!(password_change_ends_the_other_sessions, |db| {
    let user = user_with_password(db, "ann@example.com");
    let mut conn = db.conn();
    let config = SessionConfig::default();
    let (keep, t1) =
        store::create(&mut conn, user.id, &ClientInfo::default(), &config).expect("create");
    let (_, t2) =
        store::create(&mut conn, user.id, &ClientInfo::default(), &config).expect("create");
    let hash = passwords::hash("another good password").expect("hash");
    assert_eq!(
        auth::change_password(&mut conn, user.id, &hash, Some(keep.id)).expect("change"),
        1
    );
    assert!(store::authenticate(&mut conn, t1.expose(), &config)
        .expect("auth")
        .is_some());
    assert!(store::authenticate(&mut conn, t2.expose(), &config)
        .expect("auth")
        .is_none());
    // Something that is not a current hash is refused, and nothing changes.
    let before = store::list_live_for_user(&mut conn, user.id, &config)
        .expect("list")
        .len();
    assert!(auth::change_password(&mut conn, user.id, "not-a-hash", None).is_err());
    assert_eq!(
        store::list_live_for_user(&mut conn, user.id, &config)
            .expect("list")
            .len(),
        before
    );
});

async fn cookie_attributes_and_rotation(db: &TestDb) {
    let fd = frontdesk(db);
    let app = host_app!(fd);
    user_with_password(db, "ann@example.com");
    let mut b = Browser::new();
    let res = b.login(&app, "ann@example.com", PASSWORD).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    assert_eq!(res.location(), "/");
    let cookie = res.cookie("frontdesk_session").expect("session cookie");
    assert_eq!(cookie.http_only(), Some(true));
    assert_eq!(cookie.same_site(), Some(actix_web::cookie::SameSite::Lax));
    assert_eq!(cookie.path(), Some("/"));
    assert_ne!(
        cookie.secure(),
        Some(true),
        "plain http base URL: no Secure flag"
    );
    let first = cookie.value().to_owned();
    assert_eq!(first.len(), 43, "256 bits in base64url");

    let notes = b.get(&app, "/notes").await;
    assert_eq!(notes.status, StatusCode::OK);
    assert_eq!(notes.body, "notes of ann@example.com");

    // Signing in again (same browser) gives a new token; the old one is dead.
    let again = b.login(&app, "ann@example.com", PASSWORD).await;
    let second = again
        .cookie("frontdesk_session")
        .expect("cookie")
        .value()
        .to_owned();
    assert_ne!(first, second);
    let mut old = Browser::new();
    old.jar.insert("frontdesk_session".into(), first.clone());
    assert_eq!(old.get(&app, "/notes").await.status, StatusCode::SEE_OTHER);
    let mut conn = db.conn();
    let reasons: Vec<Option<String>> = sessions::table
        .order(sessions::id)
        .select(sessions::revoked_reason)
        .load(&mut *conn)
        .expect("rows");
    assert_eq!(reasons, vec![Some("replaced_at_login".to_owned()), None]);
    let hashes: Vec<String> = sessions::table
        .select(sessions::token_hash)
        .load(&mut *conn)
        .expect("rows");
    assert!(
        !hashes.contains(&first) && !hashes.contains(&second),
        "raw token stored"
    );

    // An https base URL: Secure and the __Host- name.
    let fd = builder(db)
        .base_url("https://app.test")
        .build()
        .expect("frontdesk");
    let app = host_app!(fd);
    let mut b = Browser::new();
    let page = b.get(&app, "/auth/login").await;
    let pre = page
        .cookie("__Host-frontdesk_csrf")
        .expect("pre-session cookie");
    assert_eq!(
        (pre.secure(), pre.http_only(), pre.path()),
        (Some(true), Some(true), Some("/"))
    );
    let csrf = page.csrf();
    let res = b
        .post(
            &app,
            "/auth/login",
            &[
                ("email", "ann@example.com"),
                ("password", PASSWORD),
                ("csrf_token", &csrf),
            ],
        )
        .await;
    let cookie = res
        .cookie("__Host-frontdesk_session")
        .expect("__Host- cookie");
    assert_eq!(
        (cookie.secure(), cookie.http_only(), cookie.path()),
        (Some(true), Some(true), Some("/"))
    );
    assert!(cookie.domain().is_none(), "__Host- cookies carry no Domain");
}
both!(cookie_attributes_rotation_and_no_raw_token, |db| block_on(
    cookie_attributes_and_rotation(db)
));

async fn refused_next_request(db: &TestDb) {
    let fd = frontdesk(db);
    let app = host_app!(fd);
    user_with_password(db, "ann@example.com");
    let mut b = Browser::new();
    b.login(&app, "ann@example.com", PASSWORD).await;
    assert_eq!(b.get(&app, "/notes").await.status, StatusCode::OK);

    // Revoked through this instance (as an admin page would): the very next
    // request is refused.
    let id: i64 = sessions::table
        .select(sessions::id)
        .first(&mut *db.conn())
        .expect("id");
    fd.state()
        .db(move |conn| store::revoke(conn, id, store::reason::REVOKED_BY_ADMIN))
        .await
        .expect("revoke");
    let page = b.get(&app, "/notes?x=1").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.location(), "/auth/login?next=%2Fnotes%3Fx%3D1");
    let json = b
        .send(
            &app,
            TestRequest::get()
                .uri("/notes")
                .insert_header(("accept", "application/json")),
        )
        .await;
    assert_eq!(json.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        json.header("content-type"),
        Some("application/problem+json")
    );
    assert!(json.body.contains("\"status\":401"));

    // Idle and expired sessions likewise. The rows are aged by hand here, which
    // nothing does in real life (a PostgreSQL instance's session cache judges
    // the timeouts from the timestamps it read: see session_cache.rs), so the
    // check must meet the database: the rows are aged before the first check.
    for kind in ["idle", "expired"] {
        let mut b = Browser::new();
        b.login(&app, "ann@example.com", PASSWORD).await;
        {
            let mut conn = db.conn();
            let hash = frontdesk_core::tokens::hash_token(b.session().expect("cookie"));
            let q = diesel::update(sessions::table.filter(sessions::token_hash.eq(hash)));
            let n = if kind == "idle" {
                q.set(sessions::last_active_at.eq(now() - Duration::hours(13)))
                    .execute(&mut *conn)
            } else {
                q.set(sessions::expires_at.eq(now() - Duration::seconds(1)))
                    .execute(&mut *conn)
            };
            assert_eq!(n.expect("update"), 1);
        }
        assert_eq!(
            b.get(&app, "/notes").await.status,
            StatusCode::SEE_OTHER,
            "{kind} session accepted"
        );
    }

    // Suspension through the core service ends the web session too.
    let mut b = Browser::new();
    b.login(&app, "ann@example.com", PASSWORD).await;
    assert_eq!(b.get(&app, "/notes").await.status, StatusCode::OK);
    let id: i64 = users::table
        .select(users::id)
        .first(&mut *db.conn())
        .expect("id");
    fd.state()
        .db(move |conn| frontdesk_core::users::suspend(conn, &Actor::system(), id, "abuse"))
        .await
        .expect("suspend");
    assert_eq!(b.get(&app, "/notes").await.status, StatusCode::SEE_OTHER);
}
both!(
    revoked_idle_expired_and_suspended_sessions_are_refused,
    |db| block_on(refused_next_request(db))
);

async fn sessions_page(db: &TestDb) {
    let fd = frontdesk(db);
    let app = host_app!(fd);
    user_with_password(db, "ann@example.com");
    user_with_password(db, "bob@example.com");
    let mut phone = Browser::new();
    phone
        .headers
        .push(("user-agent".into(), "Phone <script>".into()));
    phone.login(&app, "ann@example.com", PASSWORD).await;
    let mut laptop = Browser::new();
    laptop.login(&app, "ann@example.com", PASSWORD).await;
    let mut bob = Browser::new();
    bob.login(&app, "bob@example.com", PASSWORD).await;

    let page = laptop.get(&app, "/auth/sessions").await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.header("cache-control"), Some("no-store"));
    assert!(
        page.body.contains("Phone &lt;script&gt;"),
        "user agent shown, escaped"
    );
    assert!(!page.body.contains("<script>"));
    assert_eq!(
        page.body.matches("/revoke\"").count(),
        2,
        "only ann's two sessions"
    );

    // Bob cannot end Ann's session: not found, nothing changed.
    let (ann_phone, bob_csrf) = {
        let mut conn = db.conn();
        let hash = frontdesk_core::tokens::hash_token(phone.session().expect("cookie"));
        let id: i64 = sessions::table
            .filter(sessions::token_hash.eq(hash))
            .select(sessions::id)
            .first(&mut *conn)
            .expect("id");
        (id, bob.get(&app, "/auth/sessions").await.csrf())
    };
    let res = bob
        .post(
            &app,
            &format!("/auth/sessions/{ann_phone}/revoke"),
            &[("csrf_token", &bob_csrf)],
        )
        .await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
    assert_eq!(phone.get(&app, "/notes").await.status, StatusCode::OK);

    // Ann ends her phone session from the laptop.
    let csrf = page.csrf();
    let res = laptop
        .post(
            &app,
            &format!("/auth/sessions/{ann_phone}/revoke"),
            &[("csrf_token", &csrf)],
        )
        .await;
    assert_eq!(
        (res.status, res.location()),
        (StatusCode::SEE_OTHER, "/auth/sessions")
    );
    assert_eq!(
        phone.get(&app, "/notes").await.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(laptop.get(&app, "/notes").await.status, StatusCode::OK);

    // "Sign out everywhere else" keeps only the current one.
    let mut tablet = Browser::new();
    tablet.login(&app, "ann@example.com", PASSWORD).await;
    let res = laptop
        .post(
            &app,
            "/auth/sessions/revoke-others",
            &[("csrf_token", &csrf)],
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    assert_eq!(
        tablet.get(&app, "/notes").await.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(laptop.get(&app, "/notes").await.status, StatusCode::OK);
    assert_eq!(
        bob.get(&app, "/notes").await.status,
        StatusCode::OK,
        "other users untouched"
    );

    // Logout ends the session and clears the cookie.
    let res = laptop
        .post(&app, "/auth/logout", &[("csrf_token", &csrf)])
        .await;
    assert_eq!(
        (res.status, res.location()),
        (StatusCode::SEE_OTHER, "/auth/login")
    );
    assert!(laptop.session().is_none());
    let mut conn = db.conn();
    let live: i64 = sessions::table
        .filter(sessions::revoked_at.is_null())
        .count()
        .get_result(&mut *conn)
        .expect("count");
    assert_eq!(live, 1, "only bob's session is left");
}
both!(sessions_page_lists_and_revokes_own_sessions_only, |db| {
    block_on(sessions_page(db))
});

async fn two_instances(db: &TestDb) {
    // Two independently built instances over one database, as behind a load balancer.
    let a = frontdesk(db);
    let b = frontdesk(db);
    let app_a = host_app!(a);
    let app_b = host_app!(b);
    user_with_password(db, "ann@example.com");
    let mut phone = Browser::new();
    phone.login(&app_a, "ann@example.com", PASSWORD).await;
    let mut laptop = Browser::new();
    laptop.login(&app_b, "ann@example.com", PASSWORD).await;
    assert_eq!(
        phone.get(&app_b, "/notes").await.status,
        StatusCode::OK,
        "a session from A works on B"
    );

    // Revoke the phone's session through instance A.
    let page = laptop.get(&app_a, "/auth/sessions").await;
    let csrf = page.csrf();
    let res = laptop
        .post(
            &app_a,
            "/auth/sessions/revoke-others",
            &[("csrf_token", &csrf)],
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    // B refuses it on its next request (SQLite, or PostgreSQL without a cache)
    // or, when B answers from its session cache, within a second.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
    while phone.get(&app_b, "/notes").await.status == StatusCode::OK {
        assert!(std::time::Instant::now() < deadline, "B still accepts it");
        actix_web::rt::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(
        phone.get(&app_b, "/notes").await.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(laptop.get(&app_b, "/notes").await.status, StatusCode::OK);
}
both!(two_instances_share_revocation, |db| block_on(
    two_instances(db)
));

both!(deleting_a_user_ends_their_sessions, |db| {
    let user = user_with_password(db, "ann@example.com");
    let mut conn = db.conn();
    let config = SessionConfig::default();
    let (_, token) =
        store::create(&mut conn, user.id, &ClientInfo::default(), &config).expect("create");
    frontdesk_core::users::delete(&mut conn, &Actor::system(), user.id).expect("delete");
    assert!(store::authenticate(&mut conn, token.expose(), &config)
        .expect("auth")
        .is_none());
    assert_eq!(
        sessions::table
            .count()
            .get_result::<i64>(&mut *conn)
            .expect("count"),
        0
    );
});

async fn password_change_page(db: &TestDb) {
    let fd = frontdesk(db);
    let app = host_app!(fd);
    user_with_password(db, "ann@example.com");
    let mut phone = Browser::new();
    phone.login(&app, "ann@example.com", PASSWORD).await;
    let mut laptop = Browser::new();
    laptop.login(&app, "ann@example.com", PASSWORD).await;
    let page = laptop.get(&app, "/auth/password").await;
    assert_eq!(page.status, StatusCode::OK);
    let csrf = page.csrf();
    let new = "a new long password";

    // Wrong current password, mismatch, too short: each refused, nothing changed.
    for (current, p1, p2) in [
        ("wrong password", new, new),
        (PASSWORD, new, "other one!"),
        (PASSWORD, "short", "short"),
    ] {
        let form = [
            ("current_password", current),
            ("password", p1),
            ("password_confirm", p2),
            ("csrf_token", &csrf),
        ];
        let res = laptop.post(&app, "/auth/password", &form).await;
        assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(phone.get(&app, "/notes").await.status, StatusCode::OK);
    }
    let form = [
        ("current_password", PASSWORD),
        ("password", new),
        ("password_confirm", new),
    ];
    assert_eq!(
        laptop.post(&app, "/auth/password", &form).await.status,
        StatusCode::FORBIDDEN,
        "no CSRF token"
    );

    let form = [
        ("current_password", PASSWORD),
        ("password", new),
        ("password_confirm", new),
        ("csrf_token", &csrf),
    ];
    let res = laptop.post(&app, "/auth/password", &form).await;
    assert_eq!(res.status, StatusCode::OK);
    assert!(res.body.contains("Your password was changed"));
    // The other session ended; this one goes on; the new password works.
    assert_eq!(
        phone.get(&app, "/notes").await.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(laptop.get(&app, "/notes").await.status, StatusCode::OK);
    assert_eq!(
        Browser::new()
            .login(&app, "ann@example.com", new)
            .await
            .status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        Browser::new()
            .login(&app, "ann@example.com", PASSWORD)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
}
both!(password_change_page_ends_other_sessions, |db| block_on(
    password_change_page(db)
));

both!(admins_list_and_revoke_sessions_within_their_scope, |db| {
    use frontdesk_core::login_attempts::{self, AttemptFilter, Reason};
    use frontdesk_core::sessions::SessionFilter;
    use frontdesk_core::{organizations, CoreError, OrgRole, StaffRole};
    let sys = Actor::system();
    let ann = user_with_password(db, "ann@example.com");
    let bob = user_with_password(db, "bob@example.com");
    let boss = user_with_password(db, "boss@example.com");
    let mut conn = db.conn();
    let acme = organizations::create(&mut conn, &sys, "acme", "Acme", "").expect("org");
    let beta = organizations::create(&mut conn, &sys, "beta", "Beta", "").expect("org");
    organizations::add_member(&mut conn, &sys, acme.id, ann.id, OrgRole::Member).expect("member");
    organizations::add_member(&mut conn, &sys, beta.id, bob.id, OrgRole::Member).expect("member");
    organizations::add_member(&mut conn, &sys, acme.id, boss.id, OrgRole::Admin).expect("admin");
    let config = SessionConfig::default();
    let c = ClientInfo::default();
    let (ann1, _) = store::create(&mut conn, ann.id, &c, &config).expect("s");
    store::create(&mut conn, ann.id, &c, &config).expect("s");
    let (bob1, bob_token) = store::create(&mut conn, bob.id, &c, &config).expect("s");

    // The org admin sees and ends only sessions of their organization's users.
    let admin = frontdesk_core::users::actor_for(&mut conn, boss.id, None).expect("actor");
    let scoped = SessionFilter {
        organizations: admin.visible_orgs(),
        live_only: true,
        ..SessionFilter::default()
    };
    let (rows, total) = store::list(&mut conn, &scoped, &config, 1, 50).expect("list");
    assert_eq!(total, 2);
    assert!(rows.iter().all(|s| s.user_id == ann.id));
    assert!(matches!(
        store::revoke_by_admin(&mut conn, &admin, bob1.id),
        Err(CoreError::NotFound(_))
    ));
    assert!(matches!(
        store::revoke_all_by_admin(&mut conn, &admin, bob.id),
        Err(CoreError::NotFound(_))
    ));
    assert!(
        store::authenticate(&mut conn, bob_token.expose(), &config)
            .expect("auth")
            .is_some(),
        "nothing changed"
    );
    assert!(store::revoke_by_admin(&mut conn, &admin, ann1.id).expect("revoke"));
    assert_eq!(
        store::revoke_all_by_admin(&mut conn, &admin, ann.id).expect("revoke all"),
        1
    );
    let (events, _) = frontdesk_core::audit::list(
        &mut conn,
        &frontdesk_core::audit::AuditFilter {
            actor: Some(format!("user:{}", boss.id)),
            ..Default::default()
        },
        1,
        50,
    )
    .expect("audit");
    let mut actions: Vec<String> = events.into_iter().map(|e| e.action).collect();
    actions.sort();
    assert_eq!(
        actions,
        vec![
            "session.revoke".to_owned(),
            "user.sessions.revoke".to_owned()
        ]
    );

    // A staff viewer sees everything and may end nothing.
    let viewer = Actor::user(boss.id + 100, Some(StaffRole::Viewer), Vec::new());
    assert!(matches!(
        store::revoke_all_by_admin(&mut conn, &viewer, bob.id),
        Err(CoreError::Forbidden)
    ));
    let (_, all) = store::list(&mut conn, &SessionFilter::default(), &config, 1, 50).expect("list");
    let live = SessionFilter {
        live_only: true,
        ..SessionFilter::default()
    };
    let (_, live) = store::list(&mut conn, &live, &config, 1, 50).expect("list");
    assert_eq!((all, live), (3, 1));

    // Login attempts scoped the same way; unknown emails belong to nobody.
    login_attempts::record(
        &mut conn,
        Some(ann.id),
        "ann@example.com",
        &c,
        Reason::BadPassword,
    )
    .expect("a");
    login_attempts::record(
        &mut conn,
        Some(bob.id),
        "bob@example.com",
        &c,
        Reason::BadPassword,
    )
    .expect("a");
    login_attempts::record(&mut conn, None, "zed@example.com", &c, Reason::UnknownEmail)
        .expect("a");
    let f = AttemptFilter {
        organizations: admin.visible_orgs(),
        ..AttemptFilter::default()
    };
    let (rows, total) = login_attempts::list(&mut conn, &f, 1, 50).expect("list");
    assert_eq!((total, rows[0].email.as_str()), (1, "ann@example.com"));
    let (_, total) =
        login_attempts::list(&mut conn, &AttemptFilter::default(), 1, 50).expect("list");
    assert_eq!(total, 3);
});

/// The `user.restore` events of one user: (actor, reason).
fn restores(db: &TestDb, user_id: i64) -> Vec<(String, Option<String>)> {
    use frontdesk_core::schema::audit_events;
    audit_events::table
        .filter(audit_events::action.eq("user.restore"))
        .filter(audit_events::target.eq(format!("user:{user_id}")))
        .select((audit_events::actor, audit_events::details))
        .load::<(String, String)>(&mut *db.conn())
        .expect("audit")
        .into_iter()
        .map(|(a, d)| {
            let d: serde_json::Value = serde_json::from_str(&d).expect("json");
            (a, d["reason"].as_str().map(str::to_owned))
        })
        .collect()
}

/// Moves a timed suspension's end into the past, as time passing would.
fn end_passes(db: &TestDb, user_id: i64) {
    diesel::update(users::table.find(user_id))
        .set(users::suspended_until.eq(Some(now() - Duration::seconds(1))))
        .execute(&mut *db.conn())
        .expect("end passes");
}

both!(a_timed_suspension_ends_at_sign_in, |db| {
    use frontdesk_core::users as core_users;
    let user = user_with_password(db, "ann@example.com");
    let sys = Actor::system();
    // The end must lie ahead.
    let mut conn = db.conn();
    let past = now() - Duration::minutes(1);
    let e = core_users::suspend_until(&mut conn, &sys, user.id, "spam", Some(past));
    assert!(e.is_err());
    assert!(!core_users::get(&mut conn, user.id)
        .expect("user")
        .is_suspended());
    let until = now() + Duration::days(7);
    let s =
        core_users::suspend_until(&mut conn, &sys, user.id, "spam", Some(until)).expect("suspend");
    assert!(s.is_suspended());
    assert_eq!(
        s.suspended_until.map(|t| t.and_utc().timestamp()),
        Some(until.and_utc().timestamp())
    );
    drop(conn);
    let fd = frontdesk(db);
    block_on(async move {
        let app = host_app!(fd);
        // Before the end: refused like any suspended user.
        let mut b = Browser::new();
        let res = b.login(&app, "ann@example.com", PASSWORD).await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED);
        assert!(restores(db, user.id).is_empty());
        // After it: signs in normally and is restored, by the system.
        end_passes(db, user.id);
        let res = b.login(&app, "ann@example.com", PASSWORD).await;
        assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
        assert_eq!(b.get(&app, "/notes").await.status, StatusCode::OK);
        let now_user = core_users::get(&mut db.conn(), user.id).expect("user");
        assert!(!now_user.is_suspended());
        assert_eq!(
            (
                now_user.suspended_until,
                now_user.suspended_reason,
                now_user.suspended_at
            ),
            (None, None, None)
        );
        assert_eq!(
            restores(db, user.id),
            vec![("system".to_owned(), Some("suspension ended".to_owned()))]
        );
        // Once only: the next sign-in restores nothing more.
        let mut again = Browser::new();
        again.login(&app, "ann@example.com", PASSWORD).await;
        assert_eq!(restores(db, user.id).len(), 1);
    });
    // An open-ended suspension never ends by itself, and a wrong password
    // after the end restores nobody.
    let mut conn = db.conn();
    core_users::suspend(&mut conn, &sys, user.id, "again").expect("suspend");
    assert_eq!(
        core_users::restore_ended_suspensions(&mut conn).expect("sweep"),
        0
    );
    assert!(core_users::get(&mut conn, user.id)
        .expect("user")
        .is_suspended());
    core_users::restore(&mut conn, &sys, user.id).expect("restore");
    core_users::suspend_until(
        &mut conn,
        &sys,
        user.id,
        "x",
        Some(now() + Duration::hours(1)),
    )
    .expect("suspend");
    drop(conn);
    end_passes(db, user.id);
    let fd = frontdesk(db);
    block_on(async move {
        let app = host_app!(fd);
        let mut b = Browser::new();
        let res = b.login(&app, "ann@example.com", "wrong password!").await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED);
        let u = frontdesk_core::users::get(&mut db.conn(), user.id).expect("user");
        assert!(u.is_suspended());
    });
});

both!(
    the_mail_worker_restores_users_whose_suspension_ended,
    |db| {
        use frontdesk_core::users as core_users;
        let sys = Actor::system();
        let ann = user_with_password(db, "ann@example.com");
        let bob = user_with_password(db, "bob@example.com");
        let cleo = user_with_password(db, "cleo@example.com");
        let mut conn = db.conn();
        let later = now() + Duration::days(1);
        for u in [&ann, &bob] {
            core_users::suspend_until(&mut conn, &sys, u.id, "timed", Some(later))
                .expect("suspend");
        }
        core_users::suspend(&mut conn, &sys, cleo.id, "open-ended").expect("suspend");
        drop(conn);
        end_passes(db, ann.id);
        block_on(async move {
            let (transport, _memory) = frontdesk_mail::Transport::memory();
            let mut config =
                frontdesk_mail::MailConfig::new("Notes <no-reply@notes.example>").expect("config");
            config.poll_interval = std::time::Duration::from_millis(20);
            config.sweep_interval = std::time::Duration::from_millis(50);
            let fd = builder(db)
                .mail_transport(transport)
                .mail_config(config)
                .build()
                .expect("frontdesk");
            let worker = fd.start_mailer().expect("worker");
            let mut restored = false;
            for _ in 0..200 {
                if !core_users::get(&mut db.conn(), ann.id)
                    .expect("ann")
                    .is_suspended()
                {
                    restored = true;
                    break;
                }
                actix_web::rt::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            assert!(restored, "the worker restored ann");
            assert_eq!(
                restores(db, ann.id),
                vec![("system".to_owned(), Some("suspension ended".to_owned()))]
            );
            // Later sweeps find bob's end once it passes, and never cleo.
            end_passes(db, bob.id);
            let mut restored = false;
            for _ in 0..200 {
                if !core_users::get(&mut db.conn(), bob.id)
                    .expect("bob")
                    .is_suspended()
                {
                    restored = true;
                    break;
                }
                actix_web::rt::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            assert!(restored, "a later sweep restored bob");
            worker.shutdown().await;
            assert!(core_users::get(&mut db.conn(), cleo.id)
                .expect("cleo")
                .is_suspended());
            assert_eq!(restores(db, ann.id).len(), 1);
            assert_eq!(restores(db, bob.id).len(), 1);
            assert!(restores(db, cleo.id).is_empty());
        });
    }
);
