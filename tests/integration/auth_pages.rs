//! The auth pages as a browser meets them: identical answers for unknown and
//! known emails, CSRF and cross-site refusals that change nothing, safe `next`
//! redirects, security headers, JSON login, and host template overrides.

use actix_web::http::StatusCode;
use actix_web::test::TestRequest;
use frontdesk::web::login::safe_next;

use crate::both;
use crate::host_app;
use crate::support::TestDb;
use crate::web_app::{block_on, builder, count, frontdesk, user_with_password, Browser, PASSWORD};

#[test]
fn next_only_allows_same_site_paths() {
    for bad in [
        "//evil.example",
        "https://evil.example/",
        "/\\evil.example",
        "\\\\evil",
        "javascript:alert(1)",
        "",
        " //x",
        "/a b",
        "/\t/evil",
    ] {
        assert_eq!(safe_next(Some(bad), "/home"), "/home", "{bad:?} accepted");
    }
    assert_eq!(
        safe_next(Some("/notes?id=3#top"), "/home"),
        "/notes?id=3#top"
    );
    assert_eq!(safe_next(None, "/home"), "/home");
}

async fn unknown_and_known_alike(db: &TestDb) {
    let fd = frontdesk(db);
    let app = host_app!(fd);
    user_with_password(db, "ann@example.com");
    let mut b = Browser::new();
    let known = b.login(&app, "ann@example.com", "wrong password").await;
    let unknown = b.login(&app, "zed@example.com", "wrong password").await;
    assert_eq!(known.status, StatusCode::UNAUTHORIZED);
    assert_eq!(known.status, unknown.status);
    assert_eq!(
        known.body.replace("ann@example.com", "EMAIL"),
        unknown.body.replace("zed@example.com", "EMAIL")
    );
    let names = |p: &crate::web_app::Page| {
        let mut h: Vec<String> = p.headers.keys().map(|k| k.to_string()).collect();
        h.sort();
        h
    };
    assert_eq!(names(&known), names(&unknown));

    // The password reset page answers alike too, and mails only the real account.
    let csrf = b.get(&app, "/auth/password-reset").await.csrf();
    let a = b
        .post(
            &app,
            "/auth/password-reset",
            &[("email", "ann@example.com"), ("csrf_token", &csrf)],
        )
        .await;
    let z = b
        .post(
            &app,
            "/auth/password-reset",
            &[("email", "zed@example.com"), ("csrf_token", &csrf)],
        )
        .await;
    assert_eq!((a.status, &a.body), (z.status, &z.body));
    fd.state().deferred_settled().await;
    assert_eq!(count(db, "outbox"), 1);
}
both!(unknown_and_known_emails_get_identical_answers, |db| {
    block_on(unknown_and_known_alike(db))
});

async fn csrf_refusals(db: &TestDb) {
    let fd = frontdesk(db);
    let app = host_app!(fd);
    user_with_password(db, "ann@example.com");
    let mut b = Browser::new();
    let csrf = b.get(&app, "/auth/login").await.csrf();
    let creds = [("email", "ann@example.com"), ("password", PASSWORD)];

    // No token, a wrong token, a token without its cookie: 403, no session, no attempt row.
    let missing = b.post(&app, "/auth/login", &creds).await;
    assert_eq!(missing.status, StatusCode::FORBIDDEN);
    let forged = b
        .post(
            &app,
            "/auth/login",
            &[creds[0], creds[1], ("csrf_token", "AAAA")],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let mut cookieless = Browser::new();
    let res = cookieless
        .post(
            &app,
            "/auth/login",
            &[creds[0], creds[1], ("csrf_token", &csrf)],
        )
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    // Cross-site, even with a valid token.
    for (h, v) in [
        ("sec-fetch-site", "cross-site"),
        ("sec-fetch-site", "same-site"),
        ("origin", "https://evil.example"),
    ] {
        let mut x = b.clone();
        x.headers.push((h.into(), v.into()));
        let res = x
            .post(
                &app,
                "/auth/login",
                &[creds[0], creds[1], ("csrf_token", &csrf)],
            )
            .await;
        assert_eq!(res.status, StatusCode::FORBIDDEN, "{h}: {v}");
    }
    assert_eq!(
        (count(db, "sessions"), count(db, "login_attempts")),
        (0, 0),
        "a refused request changed something"
    );

    // Same-origin with the token works.
    let mut ok = b.clone();
    ok.headers
        .push(("sec-fetch-site".into(), "same-origin".into()));
    ok.headers.push(("origin".into(), "http://app.test".into()));
    let res = ok
        .post(
            &app,
            "/auth/login",
            &[creds[0], creds[1], ("csrf_token", &csrf)],
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);

    // Signed in: logout and revocations without the session's token change nothing.
    let page = ok.get(&app, "/auth/sessions").await;
    let session_csrf = page.csrf();
    assert_ne!(session_csrf, csrf, "the token is bound to the session");
    let res = ok.post(&app, "/auth/logout", &[]).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    let res = ok
        .post(
            &app,
            "/auth/sessions/revoke-others",
            &[("csrf_token", "nope")],
        )
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    let mut evil = ok.clone();
    evil.headers = vec![("sec-fetch-site".into(), "cross-site".into())];
    let res = evil
        .post(&app, "/auth/logout", &[("csrf_token", &session_csrf)])
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    assert_eq!(
        ok.get(&app, "/notes").await.status,
        StatusCode::OK,
        "still signed in"
    );
    // Another user's session token does not stand in for this one's.
    let mut other = Browser::new();
    user_with_password(db, "bob@example.com");
    other.login(&app, "bob@example.com", PASSWORD).await;
    let bob_csrf = other.get(&app, "/auth/sessions").await.csrf();
    let res = ok
        .post(&app, "/auth/logout", &[("csrf_token", &bob_csrf)])
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    assert_eq!(ok.get(&app, "/notes").await.status, StatusCode::OK);
    // Nothing changes on GET.
    assert_eq!(
        ok.get(&app, "/auth/logout").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(ok.get(&app, "/notes").await.status, StatusCode::OK);
}
both!(
    csrf_missing_or_cross_site_is_refused_and_changes_nothing,
    |db| block_on(csrf_refusals(db))
);

async fn next_redirects(db: &TestDb) {
    let fd = frontdesk(db);
    let app = host_app!(fd);
    user_with_password(db, "ann@example.com");
    // The protected page sends the browser to the login page with `next`.
    let mut b = Browser::new();
    let res = b.get(&app, "/notes").await;
    assert_eq!(res.location(), "/auth/login?next=%2Fnotes");
    let page = b.get(&app, res.location()).await;
    assert!(
        page.body.contains("name=\"next\" value=\"&#x2F;notes\""),
        "{}",
        page.body
    );
    for (next, expect) in [
        ("/notes", "/notes"),
        ("//evil.example/x", "/"),
        ("https://evil.example", "/"),
        ("/\\evil.example", "/"),
    ] {
        let mut b = Browser::new();
        let csrf = b.get(&app, "/auth/login").await.csrf();
        let res = b
            .post(
                &app,
                "/auth/login",
                &[
                    ("email", "ann@example.com"),
                    ("password", PASSWORD),
                    ("csrf_token", &csrf),
                    ("next", next),
                ],
            )
            .await;
        assert_eq!(
            (res.status, res.location()),
            (StatusCode::SEE_OTHER, expect),
            "next={next}"
        );
    }
    // An off-site `next` is not even put in the form.
    let page = Browser::new()
        .get(&app, "/auth/login?next=%2F%2Fevil.example")
        .await;
    assert!(!page.body.contains("evil.example"));
}
both!(next_cannot_redirect_off_site, |db| block_on(
    next_redirects(db)
));

async fn headers(db: &TestDb) {
    let fd = frontdesk(db);
    let app = host_app!(fd);
    let mut b = Browser::new();
    let page = b.get(&app, "/auth/login").await;
    assert_eq!(page.status, StatusCode::OK);
    let csp = page.header("content-security-policy").expect("CSP");
    assert!(
        csp.contains("frame-ancestors 'none'")
            && csp.contains("script-src 'self'")
            && !csp.contains("unsafe-inline")
    );
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(page.header("cache-control"), Some("no-store"));
    assert!(!page.body.contains("<script"), "no inline script");
    assert!(!page.body.contains("style="), "no inline style");
    // Token pages send no referrer.
    let reset = b.get(&app, "/auth/password-reset/some-token").await;
    assert_eq!(reset.header("referrer-policy"), Some("no-referrer"));
    assert_eq!(reset.header("x-frame-options"), Some("DENY"));
    // Errors carry the headers too.
    let refused = b.post(&app, "/auth/login", &[]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(refused.header("x-frame-options"), Some("DENY"));
    let css = b.get(&app, "/auth/static/frontdesk.css").await;
    assert_eq!(css.status, StatusCode::OK);
    assert!(css
        .header("content-type")
        .unwrap_or("")
        .starts_with("text/css"));
}
both!(security_headers_on_every_response, |db| block_on(headers(
    db
)));

async fn json_api(db: &TestDb) {
    let fd = frontdesk(db);
    let app = host_app!(fd);
    user_with_password(db, "ann@example.com");
    let mut b = Browser::new();
    let login = |email: &str, password: &str| {
        TestRequest::post()
            .uri("/auth/api/login")
            .insert_header(("content-type", "application/json"))
            .set_payload(serde_json::json!({"email": email, "password": password}).to_string())
    };
    let bad = b.send(&app, login("ann@example.com", "nope nope")).await;
    let unknown = b.send(&app, login("zed@example.com", "nope nope")).await;
    assert_eq!(bad.status, StatusCode::UNAUTHORIZED);
    assert_eq!(bad.header("content-type"), Some("application/problem+json"));
    assert_eq!(
        crate::support::sans_request_id(&bad.body),
        crate::support::sans_request_id(&unknown.body)
    );
    // A malformed body is a clear problem+json error and records nothing.
    let broken = b
        .send(
            &app,
            TestRequest::post()
                .uri("/auth/api/login")
                .insert_header(("content-type", "application/json"))
                .set_payload("{\"email\": 3"),
        )
        .await;
    assert_eq!(broken.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        broken.header("content-type"),
        Some("application/problem+json")
    );
    assert_eq!(count(db, "login_attempts"), 2);
    let mut cross = b.clone();
    cross
        .headers
        .push(("origin".into(), "https://evil.example".into()));
    assert_eq!(
        cross
            .send(&app, login("ann@example.com", PASSWORD))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(count(db, "sessions"), 0);

    let ok = b.send(&app, login("ann@example.com", PASSWORD)).await;
    assert_eq!(ok.status, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_str(&ok.body).expect("json");
    assert_eq!(v["user"]["email"], "ann@example.com");
    let csrf = v["csrf_token"].as_str().expect("token").to_owned();
    let me = b
        .send(&app, TestRequest::get().uri("/auth/api/session"))
        .await;
    assert_eq!(me.status, StatusCode::OK);
    let logout = || TestRequest::post().uri("/auth/api/logout");
    assert_eq!(b.send(&app, logout()).await.status, StatusCode::FORBIDDEN);
    assert_eq!(
        b.send(
            &app,
            logout().insert_header(("x-csrf-token", csrf.as_str()))
        )
        .await
        .status,
        StatusCode::NO_CONTENT
    );
    let me = b
        .send(&app, TestRequest::get().uri("/auth/api/session"))
        .await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED);
    assert_eq!(me.header("content-type"), Some("application/problem+json"));
}
both!(json_login_and_logout, |db| block_on(json_api(db)));

async fn template_override(db: &TestDb) {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::create_dir_all(dir.path().join("auth")).expect("mkdir");
    std::fs::write(
        dir.path().join("auth/login.html"),
        "{% extends \"auth/base.html\" %}{% block content %}<p>HOST LOGIN for {{ site_name }}</p>\
         <input name=\"csrf_token\" value=\"{{ csrf_token }}\">{% endblock content %}",
    )
    .expect("write");
    let fd = builder(db)
        .template_dir(dir.path())
        .build()
        .expect("frontdesk");
    let app = host_app!(fd);
    let page = Browser::new().get(&app, "/auth/login").await;
    assert!(
        page.body.contains("<p>HOST LOGIN for Notes</p>"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("frontdesk.css"),
        "the embedded base is still used"
    );
    let reset = Browser::new().get(&app, "/auth/password-reset").await;
    assert!(
        reset.body.contains("Reset your password"),
        "other templates stay embedded"
    );

    // A broken override is a clear error at build time, not a 500 later.
    std::fs::write(dir.path().join("auth/login.html"), "{% if %}").expect("write");
    let err = builder(db)
        .template_dir(dir.path())
        .build()
        .err()
        .expect("refused");
    assert!(err.to_string().contains("login.html"), "{err}");
    assert!(builder(db)
        .template_dir(dir.path().join("missing"))
        .build()
        .is_err());
}
both!(host_templates_override_by_name, |db| block_on(
    template_override(db)
));

async fn staff_only(me: frontdesk::Staff<frontdesk::role::Admin>) -> actix_web::HttpResponse {
    actix_web::HttpResponse::Ok().body(format!("staff {}", me.user.email))
}

async fn maybe(user: frontdesk::OptionalUser) -> actix_web::HttpResponse {
    actix_web::HttpResponse::Ok().body(user.0.map_or("anonymous".to_owned(), |u| u.user.email))
}

async fn guards(db: &TestDb) {
    let fd = frontdesk(db);
    let app = actix_web::test::init_service(
        actix_web::App::new()
            .configure(fd.configure())
            .route("/staff", actix_web::web::get().to(staff_only))
            .route("/maybe", actix_web::web::get().to(maybe)),
    )
    .await;
    user_with_password(db, "ann@example.com");
    {
        let mut conn = db.conn();
        frontdesk_core::users::create_admin(&mut conn, "boss@example.com", PASSWORD)
            .expect("admin");
        // Bad input to create_admin is a clear error.
        assert!(
            frontdesk_core::users::create_admin(&mut conn, "boss@example.com", PASSWORD).is_err()
        );
        assert!(
            frontdesk_core::users::create_admin(&mut conn, "new@example.com", "short").is_err()
        );
        assert!(
            frontdesk_core::users::find_by_email(&mut conn, "new@example.com")
                .expect("find")
                .is_none()
        );
    }
    let mut anon = Browser::new();
    assert_eq!(anon.get(&app, "/maybe").await.body, "anonymous");
    assert_eq!(
        anon.get(&app, "/staff").await.location(),
        "/auth/login?next=%2Fstaff"
    );
    let mut ann = Browser::new();
    ann.login(&app, "ann@example.com", PASSWORD).await;
    assert_eq!(ann.get(&app, "/maybe").await.body, "ann@example.com");
    assert_eq!(ann.get(&app, "/staff").await.status, StatusCode::FORBIDDEN);
    let mut boss = Browser::new();
    boss.login(&app, "boss@example.com", PASSWORD).await;
    let res = boss.get(&app, "/staff").await;
    assert_eq!(
        (res.status, res.body.as_str()),
        (StatusCode::OK, "staff boss@example.com")
    );
}
both!(role_guard_and_optional_user, |db| block_on(guards(db)));

#[test]
fn bad_configuration_is_a_clear_error() {
    let db = TestDb::sqlite();
    let no_base = frontdesk::Frontdesk::builder()
        .database_url(&db.url)
        .build();
    assert!(no_base
        .err()
        .is_some_and(|e| e.to_string().contains("base_url")));
    let cases: Vec<(frontdesk::FrontdeskBuilder, &str)> = vec![
        (builder(&db).base_url("ftp://app.test"), "http or https"),
        (builder(&db).base_url("not a url"), "base_url"),
        (builder(&db).auth_prefix("auth"), "auth_prefix"),
        (
            builder(&db).after_login("https://evil.example"),
            "after_login",
        ),
        (builder(&db).secret_key(vec![1u8; 8]), "32 bytes"),
        (
            builder(&db).session_idle_timeout(chrono::Duration::zero()),
            "timeouts",
        ),
    ];
    for (b, want) in cases {
        let err = b.build().err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains(want), "{want}: {err:?}");
    }
    // A custom prefix mounts the pages there.
    assert!(builder(&db).auth_prefix("/account/").build().is_ok());
}

async fn custom_prefix(db: &TestDb) {
    let fd = builder(db)
        .auth_prefix("/account")
        .build()
        .expect("frontdesk");
    let app = host_app!(fd);
    user_with_password(db, "ann@example.com");
    let mut b = Browser::new();
    assert_eq!(
        b.get(&app, "/notes").await.location(),
        "/account/login?next=%2Fnotes"
    );
    let page = b.get(&app, "/account/login").await;
    assert!(
        page.body.contains("action=\"&#x2F;account/login\""),
        "{}",
        page.body
    );
    assert!(
        !page.body.contains("name=\"referrer\""),
        "a meta tag would override the header"
    );
    let csrf = page.csrf();
    let form = [
        ("email", "ann@example.com"),
        ("password", PASSWORD),
        ("csrf_token", csrf.as_str()),
        ("next", "/notes"),
    ];
    let res = b.post(&app, "/account/login", &form).await;
    assert_eq!(
        (res.status, res.location()),
        (StatusCode::SEE_OTHER, "/notes")
    );
    assert_eq!(b.get(&app, "/notes").await.status, StatusCode::OK);
    assert_eq!(
        b.get(&app, "/auth/login").await.status,
        StatusCode::NOT_FOUND
    );
}
both!(pages_mount_under_a_custom_prefix, |db| block_on(
    custom_prefix(db)
));

/// Users who may sign in with `PASSWORD`: staff, an organization admin, a
/// member and someone in no organization.
fn landing_cast(db: &TestDb) -> Vec<(&'static str, &'static str)> {
    use frontdesk_core::users::{self, NewUser};
    use frontdesk_core::{organizations, passwords, Actor, OrgRole, StaffRole};
    let mut conn = db.conn();
    let sys = Actor::system();
    let org = organizations::create(&mut conn, &sys, "acme", "Acme", "").expect("org");
    let hash = passwords::hash(PASSWORD).expect("hash");
    let people = [
        ("viewer@staff.test", Some(StaffRole::Viewer), None),
        ("admin@acme.test", None, Some((org.id, OrgRole::Admin))),
        ("member@acme.test", None, Some((org.id, OrgRole::Member))),
        ("someone@else.test", None, None),
    ];
    for (email, staff_role, organization) in people {
        users::create(
            &mut conn,
            &sys,
            NewUser {
                email: email.into(),
                first_name: "Test".into(),
                password_hash: Some(hash.clone()),
                staff_role,
                organization,
                ..NewUser::default()
            },
        )
        .expect("user");
    }
    vec![
        ("viewer@staff.test", "admin"),
        ("admin@acme.test", "admin"),
        ("member@acme.test", "host"),
        ("someone@else.test", "host"),
    ]
}

both!(
    staff_and_organization_admins_land_on_the_admin_dashboard,
    |db| {
        let cast = landing_cast(db);
        block_on(async move {
            let fd = builder(db)
                .after_login("/notes")
                .build()
                .expect("frontdesk");
            assert_eq!(fd.admin_url(), "/admin/");
            let app = host_app!(fd);
            for (email, lands) in &cast {
                let mut b = Browser::new();
                let res = b.login(&app, email, PASSWORD).await;
                assert_eq!(res.status, StatusCode::SEE_OTHER, "{email}");
                let want = if *lands == "admin" {
                    "/admin/"
                } else {
                    "/notes"
                };
                assert_eq!(res.location(), want, "{email}");
                // A `next` still wins, for everyone.
                let mut b = Browser::new();
                let csrf = b.get(&app, "/auth/login").await.csrf();
                let res = b
                    .post(
                        &app,
                        "/auth/login",
                        &[
                            ("email", email),
                            ("password", PASSWORD),
                            ("csrf_token", &csrf),
                            ("next", "/notes/7"),
                        ],
                    )
                    .await;
                assert_eq!(res.location(), "/notes/7", "{email}");
            }
            // The dashboard really is where the admin lands.
            let mut b = Browser::new();
            b.login(&app, "admin@acme.test", PASSWORD).await;
            let dash = b.get(&app, "/admin/").await;
            assert_eq!(dash.status, StatusCode::OK);

            // Turned off, everyone goes to `after_login`; a moved admin is followed.
            let fd = builder(db)
                .after_login("/notes")
                .admin_after_login(false)
                .build()
                .expect("frontdesk");
            let app = host_app!(fd);
            let mut b = Browser::new();
            let res = b.login(&app, "viewer@staff.test", PASSWORD).await;
            assert_eq!(res.location(), "/notes");
            let fd = builder(db)
                .admin_prefix("/backoffice")
                .build()
                .expect("frontdesk");
            assert_eq!(fd.admin_url(), "/backoffice/");
            let app = host_app!(fd);
            let mut b = Browser::new();
            let res = b.login(&app, "viewer@staff.test", PASSWORD).await;
            assert_eq!(res.location(), "/backoffice/");
            let mut b = Browser::new();
            let res = b.login(&app, "member@acme.test", PASSWORD).await;
            assert_eq!(res.location(), "/");
        });
    }
);
