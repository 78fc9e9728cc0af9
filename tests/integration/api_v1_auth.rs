//! Who may call the API: keys of every scope, admin sessions with and without
//! CSRF, end users and anonymous callers; revoked keys; the 401/403/404 rules.

use actix_web::http::StatusCode;
use actix_web::test as actix_test;
use diesel::prelude::*;
use frontdesk_core::api_keys;
use frontdesk_core::schema::users as users_t;
use frontdesk_core::Actor;
use serde_json::json;

use crate::api_v1_support::*;
use crate::both_and_axum;
use crate::web_app::{block_on, frontdesk};

fn first_name(db: &crate::support::TestDb, id: i64) -> String {
    users_t::table
        .find(id)
        .select(users_t::first_name)
        .first(&mut *db.conn())
        .expect("user")
}

both_and_axum!(anonymous_and_bad_keys_get_401, |db, framework| {
    block_on(async {
        let fd = frontdesk(db);
        let app = crate::host_on!(framework, fd);
        let w = world_data(db);
        let a = expect(&app, &w, Who::Anonymous, "GET", "/users", None, 401).await;
        assert_eq!(a.problem_type(), "urn:frontdesk:problem:unauthorized");
        expect(
            &app,
            &w,
            Who::Anonymous,
            "PATCH",
            &format!("/users/{}", w.acme_member.id),
            Some(json!({"first_name": "X"})),
            401,
        )
        .await;
        assert_eq!(first_name(db, w.acme_member.id), "Test");
        for header in [
            "Bearer fdk_nope",
            "Bearer ",
            "Basic Zm9vOmJhcg==",
            "fdk_x",
            "Bearer  fdk_a b",
        ] {
            let req = actix_test::TestRequest::get()
                .uri(&format!("{API}/users"))
                .insert_header(("authorization", header))
                .to_request();
            let res = actix_test::call_service(&app, req).await;
            assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{header}");
            assert_eq!(
                res.headers()
                    .get("www-authenticate")
                    .and_then(|v| v.to_str().ok()),
                Some("Bearer")
            );
        }
    });
});

both_and_axum!(revoked_keys_are_refused_at_once, |db, framework| {
    block_on(async {
        let fd = frontdesk(db);
        let app = crate::host_on!(framework, fd);
        let w = world_data(db);
        expect(&app, &w, Who::AcmeAdminKey, "GET", "/users", None, 200).await;
        {
            let mut conn = db.conn();
            let key = api_keys::authenticate(&mut conn, &w.keys[&Who::AcmeAdminKey])
                .expect("auth")
                .expect("key");
            api_keys::revoke(&mut conn, &Actor::system(), key.id).expect("revoke");
        }
        let a = expect(&app, &w, Who::AcmeAdminKey, "GET", "/users", None, 401).await;
        assert_eq!(a.problem_type(), "urn:frontdesk:problem:unauthorized");
        expect(
            &app,
            &w,
            Who::AcmeAdminKey,
            "POST",
            &format!("/users/{}/suspend", w.acme_member.id),
            None,
            401,
        )
        .await;
        expect(&app, &w, Who::AcmeOwnerKey, "GET", "/users", None, 200).await;
    });
});

both_and_axum!(
    sessions_need_admin_access_and_csrf_on_unsafe_methods,
    |db, framework| {
        block_on(async {
            let fd = frontdesk(db);
            let app = crate::host_on!(framework, fd);
            let w = world(db, &app).await;
            let path = format!("/users/{}", w.acme_member.id);
            // An end user's session is no way in.
            let a = expect(&app, &w, Who::MemberSession, "GET", "/users", None, 403).await;
            assert_eq!(a.problem_type(), "urn:frontdesk:problem:forbidden");
            // Reading needs no CSRF token; changing does.
            expect(
                &app,
                &w,
                Who::AcmeAdminSessionNoCsrf,
                "GET",
                &path,
                None,
                200,
            )
            .await;
            let a = expect(
                &app,
                &w,
                Who::AcmeAdminSessionNoCsrf,
                "PATCH",
                &path,
                Some(json!({"first_name": "Eve"})),
                403,
            )
            .await;
            assert_eq!(a.problem_type(), "urn:frontdesk:problem:csrf");
            assert_eq!(first_name(db, w.acme_member.id), "Test", "nothing changed");
            let a = expect(
                &app,
                &w,
                Who::AcmeAdminSession,
                "PATCH",
                &path,
                Some(json!({"first_name": "Eve"})),
                200,
            )
            .await;
            assert_eq!(a.body["first_name"], "Eve");
            assert_eq!(first_name(db, w.acme_member.id), "Eve");
            // A cross-site request is refused even with the token.
            let (browser, csrf) = w.browsers[&Who::AcmeAdminSession].clone();
            let mut b = browser;
            let page = b
                .send(
                    &app,
                    actix_test::TestRequest::patch()
                        .uri(&format!("{API}{path}"))
                        .insert_header(("content-type", "application/json"))
                        .insert_header(("x-csrf-token", csrf.as_str()))
                        .insert_header(("sec-fetch-site", "cross-site"))
                        .set_payload(json!({"first_name": "Mallory"}).to_string()),
                )
                .await;
            assert_eq!(page.status, StatusCode::FORBIDDEN);
            assert_eq!(first_name(db, w.acme_member.id), "Eve");
            // After sign-out the cookie is worth nothing.
            let mut b = w.browsers[&Who::AcmeAdminSession].0.clone();
            let out = b
                .send(
                    &app,
                    actix_test::TestRequest::post()
                        .uri("/auth/api/logout")
                        .insert_header(("x-csrf-token", csrf.as_str())),
                )
                .await;
            assert_eq!(out.status, StatusCode::NO_CONTENT);
            expect(&app, &w, Who::AcmeAdminSession, "GET", "/users", None, 401).await;
        });
    }
);

both_and_axum!(
    api_keys_are_managed_by_signed_in_admins_only,
    |db, framework| {
        block_on(async {
            let fd = frontdesk(db);
            let app = crate::host_on!(framework, fd);
            let w = world(db, &app).await;
            for who in KEYS {
                expect(&app, &w, *who, "GET", "/api-keys", None, 403).await;
                expect(
                    &app,
                    &w,
                    *who,
                    "POST",
                    "/api-keys",
                    Some(json!({"name": "x", "role": "viewer"})),
                    403,
                )
                .await;
            }
            expect(&app, &w, Who::Anonymous, "GET", "/api-keys", None, 401).await;
            expect(&app, &w, Who::MemberSession, "GET", "/api-keys", None, 403).await;
            let before = count_keys(db);
            expect(
                &app,
                &w,
                Who::AcmeAdminSessionNoCsrf,
                "POST",
                "/api-keys",
                Some(json!({"name": "x", "role": "member", "organization": "acme"})),
                403,
            )
            .await;
            assert_eq!(count_keys(db), before);

            // The staff owner makes a site-wide key; it works, is listed without its
            // secret, and stops working when revoked.
            let a = expect(
                &app,
                &w,
                Who::StaffOwnerSession,
                "POST",
                "/api-keys",
                Some(json!({"name": "ci", "role": "viewer"})),
                201,
            )
            .await;
            let secret = a.body["secret"].as_str().expect("secret").to_owned();
            assert!(secret.starts_with("fdk_"));
            let id = a.body["api_key"]["id"].as_i64().expect("id");
            let list = expect(
                &app,
                &w,
                Who::StaffOwnerSession,
                "GET",
                "/api-keys",
                None,
                200,
            )
            .await;
            assert!(!list.raw.contains(&secret[4..]), "secrets are never listed");
            assert!(list.body["api_keys"]
                .as_array()
                .expect("keys")
                .iter()
                .any(|k| k["id"] == id));
            let mut w2 = world_keyless(&w);
            w2.keys.insert(Who::StaffViewerKey, secret);
            expect(&app, &w2, Who::StaffViewerKey, "GET", "/users", None, 200).await;
            expect(
                &app,
                &w2,
                Who::StaffViewerKey,
                "PATCH",
                &format!("/users/{}", w.acme_member.id),
                Some(json!({"first_name": "V"})),
                403,
            )
            .await;
            expect(
                &app,
                &w,
                Who::StaffOwnerSession,
                "DELETE",
                &format!("/api-keys/{id}"),
                None,
                204,
            )
            .await;
            expect(&app, &w2, Who::StaffViewerKey, "GET", "/users", None, 401).await;

            // An org admin makes keys for their own organization, no stronger than themselves.
            expect(
                &app,
                &w,
                Who::AcmeAdminSession,
                "POST",
                "/api-keys",
                Some(json!({"name": "a", "role": "member", "organization": "acme"})),
                201,
            )
            .await;
            expect(
                &app,
                &w,
                Who::AcmeAdminSession,
                "POST",
                "/api-keys",
                Some(json!({"name": "a", "role": "owner", "organization": "acme"})),
                403,
            )
            .await;
            expect(
                &app,
                &w,
                Who::AcmeAdminSession,
                "POST",
                "/api-keys",
                Some(json!({"name": "a", "role": "viewer"})),
                403,
            )
            .await;
            let a = expect(
                &app,
                &w,
                Who::AcmeAdminSession,
                "POST",
                "/api-keys",
                Some(json!({"name": "a", "role": "member", "organization": "globex"})),
                400,
            )
            .await;
            assert_eq!(a.body["errors"][0]["field"], "organization");
            let a = expect(
                &app,
                &w,
                Who::StaffOwnerSession,
                "POST",
                "/api-keys",
                Some(json!({"name": "a", "role": "member"})),
                400,
            )
            .await;
            assert_eq!(a.body["errors"][0]["field"], "role");
            let a = expect(
                &app,
                &w,
                Who::StaffOwnerSession,
                "POST",
                "/api-keys",
                Some(json!({"name": "", "role": "admin"})),
                400,
            )
            .await;
            assert_eq!(a.body["errors"][0]["field"], "name");
            let a = expect(
                &app,
                &w,
                Who::StaffOwnerSession,
                "POST",
                "/api-keys",
                Some(json!({"role": "admin"})),
                400,
            )
            .await;
            assert_eq!(a.body["errors"][0]["field"], "name");
            let acme_keys = expect(
                &app,
                &w,
                Who::AcmeAdminSession,
                "GET",
                "/api-keys",
                None,
                200,
            )
            .await;
            for k in acme_keys.body["api_keys"].as_array().expect("keys") {
                assert_eq!(
                    k["organization_id"], w.acme.id,
                    "org admins see their org's keys only"
                );
            }
        });
    }
);

fn count_keys(db: &crate::support::TestDb) -> i64 {
    use frontdesk_core::schema::api_keys as k;
    k::table.count().get_result(&mut *db.conn()).expect("count")
}

fn world_keyless(w: &World) -> World {
    World {
        acme: w.acme.clone(),
        globex: w.globex.clone(),
        staff_owner: w.staff_owner.clone(),
        acme_owner: w.acme_owner.clone(),
        acme_admin: w.acme_admin.clone(),
        acme_member: w.acme_member.clone(),
        globex_member: w.globex_member.clone(),
        keys: Default::default(),
        browsers: Default::default(),
    }
}

both_and_axum!(
    unknown_routes_and_bad_ids_are_problem_404s,
    |db, framework| {
        block_on(async {
            let fd = frontdesk(db);
            let app = crate::host_on!(framework, fd);
            let w = world_data(db);
            for path in [
                "/nope",
                "/users/abc",
                "/users/99999999999999999999",
                "/users/0",
                "/users/999999",
            ] {
                let a = expect(&app, &w, Who::StaffOwnerKey, "GET", path, None, 404).await;
                assert_eq!(a.problem_type(), "urn:frontdesk:problem:not-found");
            }
        });
    }
);

/// `POST {API}/api-keys` with an admin's session cookie and CSRF token.
fn new_key_with_session(cookie: &str, csrf: &str, role: &str) -> actix_http::Request {
    actix_test::TestRequest::post()
        .uri(&format!("{API}/api-keys"))
        .insert_header(("content-type", "application/json"))
        .insert_header(("cookie", format!("frontdesk_session={cookie}")))
        .insert_header(("x-csrf-token", csrf))
        .set_payload(json!({"name": "ci", "role": role}).to_string())
        .to_request()
}

both_and_axum!(the_readme_curl_session_works, |db, framework| {
    block_on(async {
        // Sign in with JSON, make a key with the session and its CSRF token,
        // then list users and end a user's sessions with the key alone.
        let fd = frontdesk(db);
        let app = crate::host_on!(framework, fd);
        let w = world_data(db);
        let victim = session_for(db, w.acme_member.id);
        let login = actix_test::call_service(
            &app,
            actix_test::TestRequest::post()
                .uri("/auth/api/login")
                .insert_header(("content-type", "application/json"))
                .set_payload(
                    json!({"email": "owner@staff.test", "password": crate::web_app::PASSWORD})
                        .to_string(),
                )
                .to_request(),
        )
        .await;
        assert_eq!(login.status(), StatusCode::OK);
        let cookie = login
            .response()
            .cookies()
            .find(|c| c.name() == "frontdesk_session")
            .map(|c| c.value().to_owned())
            .expect("session cookie");
        let body: serde_json::Value = actix_test::read_body_json(login).await;
        let csrf = body["csrf_token"].as_str().expect("csrf").to_owned();

        let made =
            actix_test::call_service(&app, new_key_with_session(&cookie, &csrf, "admin")).await;
        assert_eq!(made.status(), StatusCode::CREATED);
        let made: serde_json::Value = actix_test::read_body_json(made).await;
        let key = made["secret"].as_str().expect("secret").to_owned();

        let list = actix_test::call_service(
            &app,
            actix_test::TestRequest::get()
                .uri(&format!("{API}/users?search=acme&limit=10"))
                .insert_header(("authorization", format!("Bearer {key}")))
                .to_request(),
        )
        .await;
        assert_eq!(list.status(), StatusCode::OK);
        let list: serde_json::Value = actix_test::read_body_json(list).await;
        assert_eq!(list["pagination"]["total"], 3);

        let revoked = actix_test::call_service(
            &app,
            actix_test::TestRequest::delete()
                .uri(&format!("{API}/users/{}/sessions", w.acme_member.id))
                .insert_header(("authorization", format!("Bearer {key}")))
                .to_request(),
        )
        .await;
        assert_eq!(revoked.status(), StatusCode::OK);
        let revoked: serde_json::Value = actix_test::read_body_json(revoked).await;
        assert_eq!(revoked["sessions_revoked"], 1);
        let ended: Option<chrono::NaiveDateTime> = frontdesk_core::schema::sessions::table
            .find(victim)
            .select(frontdesk_core::schema::sessions::revoked_at)
            .first(&mut *db.conn())
            .expect("session");
        assert!(ended.is_some());
    });
});

/// `POST {API}/sign-in` with JSON; the answer and the session cookie.
async fn api_sign_in<S>(app: &S, body: serde_json::Value) -> (StatusCode, Option<String>, String)
where
    S: actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse,
        Error = actix_web::Error,
    >,
{
    let res = actix_test::call_service(
        app,
        actix_test::TestRequest::post()
            .uri(&format!("{API}/sign-in"))
            .insert_header(("content-type", "application/json"))
            .set_payload(body.to_string())
            .to_request(),
    )
    .await;
    let status = res.status();
    let cookie = res
        .response()
        .cookies()
        .find(|c| c.name() == "frontdesk_session")
        .map(|c| c.value().to_owned());
    let body = String::from_utf8(actix_test::read_body(res).await.to_vec()).expect("utf-8");
    (status, cookie, body)
}

both_and_axum!(
    the_api_signs_in_an_admin_for_the_session_operations,
    |db, framework| {
        block_on(async {
            let fd = frontdesk(db);
            let app = crate::host_on!(framework, fd);
            world_data(db);
            let password = crate::web_app::PASSWORD;

            // Wrong password: one problem for every refusal, recorded like any.
            let (status, cookie, body) = api_sign_in(
                &app,
                json!({"email": "owner@staff.test", "password": "not it"}),
            )
            .await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
            assert!(cookie.is_none());
            let problem: serde_json::Value = serde_json::from_str(&body).expect("problem");
            assert_eq!(problem["type"], "urn:frontdesk:problem:unauthorized");
            let reasons: Vec<String> = frontdesk_core::schema::login_attempts::table
                .select(frontdesk_core::schema::login_attempts::reason)
                .load(&mut *db.conn())
                .expect("attempts");
            assert_eq!(reasons, ["bad_password"]);

            // A field the document does not name is a 400, not a sign-in.
            let (status, cookie, _) = api_sign_in(
                &app,
                json!({"email": "owner@staff.test", "password": password, "remember": true}),
            )
            .await;
            assert_eq!(status, StatusCode::BAD_REQUEST);
            assert!(cookie.is_none());

            // Right: a session cookie and its CSRF token, enough for the
            // operations that take a session and never a key.
            let (status, cookie, body) = api_sign_in(
                &app,
                json!({"email": "owner@staff.test", "password": password}),
            )
            .await;
            assert_eq!(status, StatusCode::OK, "{body}");
            let cookie = cookie.expect("session cookie");
            let body: serde_json::Value = serde_json::from_str(&body).expect("json");
            assert_eq!(body["user"]["email"], "owner@staff.test");
            assert_eq!(body["user"]["staff_role"], "owner");
            let csrf = body["csrf_token"].as_str().expect("csrf").to_owned();
            let made =
                actix_test::call_service(&app, new_key_with_session(&cookie, &csrf, "viewer"))
                    .await;
            assert_eq!(made.status(), StatusCode::CREATED);
        });
    }
);

both_and_axum!(
    the_api_sign_in_asks_for_the_second_factor,
    |db, framework| {
        block_on(async {
            let fd = frontdesk(db);
            let app = crate::host_on!(framework, fd);
            // Ann's app took the code of `step` at its enrolment.
            let (_, seed, _) = crate::mfa::ann_with_an_app(db);
            let step = crate::mfa::last_step(db);
            let (status, cookie, body) = api_sign_in(
                &app,
                json!({"email": "ann@example.com", "password": crate::web_app::PASSWORD}),
            )
            .await;
            assert_eq!(status, StatusCode::ACCEPTED, "{body}");
            assert!(cookie.is_none(), "no session before the second factor");
            let body: serde_json::Value = serde_json::from_str(&body).expect("json");
            let challenge = body["challenge"].as_str().expect("challenge").to_owned();
            let second = |code: String| {
                actix_test::TestRequest::post()
                    .uri(&format!("{API}/sign-in/second-step"))
                    .insert_header(("content-type", "application/json"))
                    .set_payload(json!({"challenge": challenge, "code": code}).to_string())
                    .to_request()
            };
            let wrong = actix_test::call_service(&app, second("000000".into())).await;
            assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
            let right =
                actix_test::call_service(&app, second(crate::mfa::code_at(&seed, step + 1))).await;
            assert_eq!(right.status(), StatusCode::OK);
            assert!(right
                .response()
                .cookies()
                .any(|c| c.name() == "frontdesk_session"));
        });
    }
);
