//! Policies that require two-step sign-in: an organization's own setting
//! (turned on by its owners and admins on the organization page, audited),
//! the host's list of organizations and its "staff too". A user under one
//! without a factor adds an authenticator app right after the password; no
//! session cookie and no session row exist until its first code.

use actix_web::http::StatusCode;
use diesel::prelude::*;
use frontdesk_core::schema::{audit_events, login_attempts, organizations, sessions, users};
use frontdesk_core::{mfa, passwords};
use serde_json::{json, Value};

use crate::admin_fixture::{cast, signed_in};
use crate::both;
use crate::host_app;
use crate::mfa::{base32_decode, code_at, now_step};
use crate::support::TestDb;
use crate::web_app::{block_on, builder, Browser, PASSWORD};

fn with_password(db: &TestDb, user_id: i64) {
    diesel::update(users::table.find(user_id))
        .set(users::password_hash.eq(Some(passwords::hash(PASSWORD).expect("hash"))))
        .execute(&mut *db.conn())
        .expect("password");
}

fn sessions_of(db: &TestDb, user_id: i64) -> i64 {
    sessions::table
        .filter(sessions::user_id.eq(user_id))
        .count()
        .get_result(&mut *db.conn())
        .expect("count")
}

fn last_attempt(db: &TestDb) -> (String, Option<String>) {
    login_attempts::table
        .order(login_attempts::id.desc())
        .select((login_attempts::reason, login_attempts::method))
        .first(&mut *db.conn())
        .expect("attempt")
}

both!(
    an_organization_that_requires_mfa_sends_members_through_enrolment,
    |db| {
        block_on(async {
            let fd = builder(db).build().expect("frontdesk");
            let app = host_app!(fd);
            let c = cast(db);
            let acme = c.org_a.id;
            let require = |on: &str, csrf: &str| {
                (
                    format!("/admin/organizations/{acme}/require-mfa"),
                    vec![
                        ("require_mfa".to_owned(), on.to_owned()),
                        ("csrf_token".to_owned(), csrf.to_owned()),
                    ],
                )
            };
            let required = |db: &TestDb| -> bool {
                organizations::table
                    .find(acme)
                    .select(organizations::require_mfa)
                    .first(&mut *db.conn())
                    .expect("org")
            };

            // A member cannot turn it on; another organization's admin cannot.
            for who in ["org_member", "end_user"] {
                let (mut b, csrf) = signed_in(db, c.get(who));
                let (path, form) = require("1", &csrf);
                let form: Vec<(&str, &str)> =
                    form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                let res = b.post(&app, &path, &form).await;
                assert!(
                    res.status == StatusCode::FORBIDDEN || res.status == StatusCode::NOT_FOUND,
                    "{who}: {}",
                    res.status
                );
            }
            assert!(!required(db));

            // The organization's admin turns it on, from the organization page.
            let (mut admin, csrf) = signed_in(db, c.get("org_admin"));
            let page = admin
                .get(&app, &format!("/admin/organizations/{acme}"))
                .await;
            assert!(
                page.body.contains("Require two-step sign-in for members"),
                "{}",
                page.body
            );
            let (path, form) = require("1", &csrf);
            let form: Vec<(&str, &str)> =
                form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let res = admin.post(&app, &path, &form).await;
            assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
            assert!(required(db));
            let audited: Vec<(String, String)> = audit_events::table
                .filter(audit_events::action.eq("organization.require_mfa"))
                .select((audit_events::target, audit_events::details))
                .load(&mut *db.conn())
                .expect("audit");
            assert_eq!(audited.len(), 1, "{audited:?}");
            assert_eq!(audited[0].0, format!("organization:{acme}"));
            assert!(audited[0].1.contains("true"));
            // Saying it again changes and audits nothing.
            admin.post(&app, &path, &form).await;
            let n: i64 = audit_events::table
                .filter(audit_events::action.eq("organization.require_mfa"))
                .count()
                .get_result(&mut *db.conn())
                .expect("count");
            assert_eq!(n, 1);

            // Alice (a member, no factor): the password leads to enrolment, and
            // there is no session, neither cookie nor row.
            with_password(db, c.alice.id);
            let mut b = Browser::new();
            let res = b.login(&app, "alice@acme.test", PASSWORD).await;
            assert_eq!(res.status, StatusCode::SEE_OTHER);
            assert_eq!(res.header("location"), Some("/auth/mfa/enrol"));
            assert!(b.session().is_none());
            assert_eq!(sessions_of(db, c.alice.id), 0);
            assert_eq!(
                last_attempt(db),
                ("mfa_required".to_owned(), Some("password".to_owned()))
            );
            // Her pages are still closed to her.
            assert_eq!(b.get(&app, "/notes").await.status, StatusCode::SEE_OTHER);
            // The JSON sign-in says so and opens nothing either.
            let res = Browser::new()
                .send(
                    &app,
                    actix_web::test::TestRequest::post()
                        .uri("/auth/api/login")
                        .insert_header(("content-type", "application/json"))
                        .insert_header(("origin", "http://app.test"))
                        .set_payload(
                            json!({"email": "alice@acme.test", "password": PASSWORD}).to_string(),
                        ),
                )
                .await;
            assert_eq!(res.status, StatusCode::FORBIDDEN, "{}", res.body);
            let v: Value = serde_json::from_str(&res.body).expect("json");
            assert!(v["detail"].as_str().unwrap_or("").contains("required"));

            let page = b.get(&app, "/auth/mfa/enrol").await;
            assert_eq!(page.status, StatusCode::OK, "{}", page.body);
            assert!(page.body.contains("Set up two-step sign-in"));
            let csrf = page.csrf();
            let enrol = b
                .post(
                    &app,
                    "/auth/mfa/enrol",
                    &[("name", "Phone"), ("csrf_token", &csrf)],
                )
                .await;
            assert_eq!(enrol.status, StatusCode::OK, "{}", enrol.body);
            let open = "<code class=\"fd-secret\">";
            let i = enrol.body.find(open).expect("key") + open.len();
            let seed =
                base32_decode(&enrol.body[i..i + enrol.body[i..].find("</code>").expect("end")]);
            let factor = enrol
                .body
                .split("name=\"factor_id\" value=\"")
                .nth(1)
                .expect("factor");
            let factor = factor[..factor.find('"').expect("end")].to_owned();
            assert!(enrol
                .body
                .replace("&#x2F;", "/")
                .contains("action=\"/auth/mfa/enrol/confirm\""));
            let wrong = if code_at(&seed, now_step()) == "000000" {
                "111111"
            } else {
                "000000"
            };
            let csrf = enrol.csrf();
            let res = b
                .post(
                    &app,
                    "/auth/mfa/enrol/confirm",
                    &[
                        ("factor_id", &factor),
                        ("code", wrong),
                        ("csrf_token", &csrf),
                    ],
                )
                .await;
            assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", res.body);
            assert!(b.session().is_none());
            assert_eq!(sessions_of(db, c.alice.id), 0);
            assert!(!mfa::enabled(&mut db.conn(), c.alice.id).expect("enabled"));
            assert_eq!(
                last_attempt(db),
                ("mfa_failed".to_owned(), Some("totp".to_owned()))
            );

            // The first right code: the app counts, the codes are shown, and now
            // the session exists.
            let csrf = res.csrf();
            let res = b
                .post(
                    &app,
                    "/auth/mfa/enrol/confirm",
                    &[
                        ("factor_id", &factor),
                        ("code", &code_at(&seed, now_step())),
                        ("csrf_token", &csrf),
                    ],
                )
                .await;
            assert_eq!(res.status, StatusCode::OK, "{}", res.body);
            assert!(res.body.contains("Your recovery codes"));
            assert_eq!(res.body.matches("<li><code>").count(), 10);
            assert!(b.session().is_some());
            assert_eq!(sessions_of(db, c.alice.id), 1);
            assert!(mfa::enabled(&mut db.conn(), c.alice.id).expect("enabled"));
            assert_eq!(
                last_attempt(db),
                ("success".to_owned(), Some("totp".to_owned()))
            );
            assert_eq!(b.get(&app, "/notes").await.status, StatusCode::OK);

            // From now on she has the usual second step.
            let mut again = Browser::new();
            let res = again.login(&app, "alice@acme.test", PASSWORD).await;
            assert_eq!(res.header("location"), Some("/auth/mfa"));

            // Turned off: a member without a factor signs in as before.
            let (path, form) = require("0", &csrf_of(&mut admin, &app, acme).await);
            let form: Vec<(&str, &str)> =
                form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            admin.post(&app, &path, &form).await;
            assert!(!required(db));
            let member = c.get("org_member").expect("member");
            with_password(db, member.id);
            let res = Browser::new()
                .login(&app, "member@acme.test", PASSWORD)
                .await;
            assert_eq!(res.header("location"), Some("/"), "no second step");
        })
    }
);

async fn csrf_of<S: crate::password_resets::TestApp>(b: &mut Browser, app: &S, org: i64) -> String {
    b.get(app, &format!("/admin/organizations/{org}"))
        .await
        .csrf()
}

both!(
    the_host_requires_mfa_for_staff_and_named_organizations,
    |db| {
        block_on(async {
            let fd = builder(db)
                .require_mfa_for_staff(true)
                .require_mfa_for_organizations(["globex"])
                .build()
                .expect("frontdesk");
            let app = host_app!(fd);
            let c = cast(db);
            for (user, enrol) in [
                (c.get("staff_viewer").expect("staff"), true),
                (&c.bob, true),
                (&c.alice, false),
                (c.get("end_user").expect("end user"), false),
            ] {
                with_password(db, user.id);
                let mut b = Browser::new();
                let res = b.login(&app, &user.email, PASSWORD).await;
                assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", user.email);
                let to = res.header("location").unwrap_or("");
                assert_eq!(to == "/auth/mfa/enrol", enrol, "{}: {to}", user.email);
                assert_eq!(b.session().is_some(), !enrol, "{}", user.email);
                assert_eq!(
                    sessions_of(db, user.id),
                    i64::from(!enrol),
                    "{}",
                    user.email
                );
            }
        })
    }
);

both!(the_organizations_api_reads_and_sets_require_mfa, |db| {
    block_on(async {
        let fd = builder(db).build().expect("frontdesk");
        let app = host_app!(fd);
        let c = cast(db);
        let patch = |csrf: &str, body: Value| {
            actix_web::test::TestRequest::patch()
                .uri("/admin/api/v1/organizations/acme")
                .insert_header(("content-type", "application/json"))
                .insert_header(("x-csrf-token", csrf.to_owned()))
                .set_payload(body.to_string())
        };
        let (mut admin, csrf) = signed_in(db, c.get("org_admin"));
        let res = admin
            .send(&app, patch(&csrf, json!({"require_mfa": true})))
            .await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.body);
        let v: Value = serde_json::from_str(&res.body).expect("json");
        assert_eq!(v["require_mfa"], true);
        let res = admin
            .send(
                &app,
                actix_web::test::TestRequest::get().uri("/admin/api/v1/organizations/acme"),
            )
            .await;
        let v: Value = serde_json::from_str(&res.body).expect("json");
        assert_eq!(v["require_mfa"], true, "{}", res.body);
        let n: i64 = audit_events::table
            .filter(audit_events::action.eq("organization.require_mfa"))
            .count()
            .get_result(&mut *db.conn())
            .expect("count");
        assert_eq!(n, 1);
        // Not a boolean: refused, nothing changed.
        let res = admin
            .send(&app, patch(&csrf, json!({"require_mfa": "no"})))
            .await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", res.body);
        // Another organization's admin cannot reach it.
        let (mut other, ocsrf) = signed_in(db, Some(&c.bob));
        let res = other
            .send(&app, patch(&ocsrf, json!({"require_mfa": false})))
            .await;
        assert!(res.status.is_client_error(), "{}", res.status);
        let on: bool = organizations::table
            .filter(organizations::slug.eq("acme"))
            .select(organizations::require_mfa)
            .first(&mut *db.conn())
            .expect("org");
        assert!(on);
    })
});

// A user with a factor who passed the password holds a second-step challenge.
// Enrolment's pages and calls must refuse it: adding another factor there
// would open a session with the password alone.
both!(a_second_step_challenge_cannot_enrol_another_factor, |db| {
    use frontdesk_core::schema::mfa_factors;
    block_on(async {
        let fd = builder(db)
            .passkeys(frontdesk::PasskeyPolicy::SecondFactor)
            .build()
            .expect("frontdesk");
        let app = host_app!(fd);
        let c = cast(db);
        with_password(db, c.alice.id);
        crate::mfa::enrol(db, &c.alice);
        let factors = |db: &TestDb| -> i64 {
            mfa_factors::table
                .filter(mfa_factors::user_id.eq(c.alice.id))
                .count()
                .get_result(&mut *db.conn())
                .expect("count")
        };

        let mut b = Browser::new();
        let res = b.login(&app, "alice@acme.test", PASSWORD).await;
        assert_eq!(res.header("location"), Some("/auth/mfa"), "second step");
        let page = b.get(&app, "/auth/mfa/enrol").await;
        let csrf = page.csrf();
        let res = b
            .post(
                &app,
                "/auth/mfa/enrol",
                &[("name", "Mine now"), ("csrf_token", &csrf)],
            )
            .await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{}", res.body);
        assert!(!res.body.contains("fd-secret"), "no key shown");
        assert_eq!(factors(db), 1, "nothing added");

        // An app begun elsewhere (say, on her own setup page) cannot be
        // confirmed through the challenge either.
        let keys = mfa::sealed::SecretBox::derive(&[7u8; 32], mfa::PURPOSE_TOTP).expect("keys");
        let begun =
            mfa::totp::begin(&mut db.conn(), &keys, &c.alice, "Notes", "Second").expect("begin");
        let seed = base32_decode(&begun.secret_base32);
        let res = b
            .post(
                &app,
                "/auth/mfa/enrol/confirm",
                &[
                    ("factor_id", &begun.factor_id.to_string()),
                    ("code", &code_at(&seed, now_step())),
                    ("csrf_token", &csrf),
                ],
            )
            .await;
        assert_ne!(res.status, StatusCode::OK, "{}", res.body);
        assert!(b.session().is_none());
        assert_eq!(sessions_of(db, c.alice.id), 0);
        let confirmed: i64 = mfa_factors::table
            .filter(mfa_factors::user_id.eq(c.alice.id))
            .filter(mfa_factors::confirmed_at.is_not_null())
            .count()
            .get_result(&mut *db.conn())
            .expect("count");
        assert_eq!(confirmed, 1, "the second app stays unconfirmed");

        // Nor can a passkey be registered with it.
        let res = b
            .send(
                &app,
                actix_web::test::TestRequest::post()
                    .uri("/auth/api/login/mfa/enrol/passkey/begin")
                    .insert_header(("content-type", "application/json"))
                    .insert_header(("origin", "http://app.test"))
                    .set_payload("{}"),
            )
            .await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{}", res.body);
        assert_eq!(factors(db), 2, "only the app begun above");
    })
});
