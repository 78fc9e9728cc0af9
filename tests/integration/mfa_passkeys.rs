//! Passkeys without a browser: what each policy offers, the ceremonies'
//! single use, refused answers counting towards the lockout, the method each
//! login attempt records, and no secret in any response, export, log line or
//! audit row. (Registering and using a real passkey is in `mfa_browser`.)

use actix_web::http::StatusCode;
use diesel::prelude::*;
use frontdesk::PasskeyPolicy;
use frontdesk_core::schema::{
    audit_events, login_attempts, mfa_factors, outbox, passkey_ceremonies,
};
use serde_json::{json, Value};

use crate::both;
use crate::host_app;
use crate::mfa::{base32_decode, code_at, now_step};
use crate::support::TestDb;
use crate::web_app::{block_on, builder, user_with_password, Browser, PASSWORD};

fn json_post(uri: &str, body: Value) -> actix_web::test::TestRequest {
    actix_web::test::TestRequest::post()
        .uri(uri)
        .insert_header(("content-type", "application/json"))
        .insert_header(("origin", "http://app.test"))
        .set_payload(body.to_string())
}

/// An answer shaped like an authenticator's, signed by nobody.
fn forged_assertion() -> Value {
    json!({
        "id": "AAAAAAAAAAAAAAAAAAAAAA",
        "rawId": "AAAAAAAAAAAAAAAAAAAAAA",
        "type": "public-key",
        "extensions": {},
        "response": {
            "authenticatorData": "SZYN5YgOjGh0NBcPZHZgW4_krrmihjLHmVzzuoMdl2MFAAAAAQ",
            "clientDataJSON": "eyJ0eXBlIjoid2ViYXV0aG4uZ2V0In0",
            "signature": "MEUCIQD0AAAA",
            "userHandle": "AAAAAAAAAAAAAAAAAAAAAA",
        }
    })
}

fn attempts(db: &TestDb) -> Vec<(String, Option<String>)> {
    login_attempts::table
        .order(login_attempts::id)
        .select((login_attempts::reason, login_attempts::method))
        .load(&mut *db.conn())
        .expect("attempts")
}

fn pair(reason: &str, method: &str) -> (String, Option<String>) {
    (reason.to_owned(), Some(method.to_owned()))
}

both!(each_passkey_policy_offers_what_it_says, |db| {
    block_on(async {
        user_with_password(db, "ann@example.com");
        for policy in [
            PasskeyPolicy::Off,
            PasskeyPolicy::SecondFactor,
            PasskeyPolicy::SignIn,
        ] {
            let fd = builder(db).passkeys(policy).build().expect("frontdesk");
            let app = host_app!(fd);
            let mut b = Browser::new();

            // The login page's button and its ceremony: only for SignIn.
            let login = b.get(&app, "/auth/login").await;
            assert_eq!(
                login.body.contains("Sign in with a passkey"),
                policy == PasskeyPolicy::SignIn,
                "{policy:?}"
            );
            let res = b
                .send(&app, json_post("/auth/api/login/passkey/begin", json!({})))
                .await;
            if policy == PasskeyPolicy::SignIn {
                assert_eq!(res.status, StatusCode::OK, "{}", res.body);
                let v: Value = serde_json::from_str(&res.body).expect("json");
                assert_eq!(v["options"]["publicKey"]["rpId"], "app.test");
                assert_eq!(v["options"]["publicKey"]["userVerification"], "required");
                assert!(
                    v["options"]["mediation"].is_null(),
                    "a button, not autofill"
                );
                let ceremony = v["ceremony"].as_str().expect("ceremony");
                // Only the token's digest is kept.
                let stored: Vec<String> = passkey_ceremonies::table
                    .select(passkey_ceremonies::token_hash)
                    .load(&mut *db.conn())
                    .expect("ceremonies");
                assert!(!stored.is_empty() && !stored.iter().any(|h| h == ceremony));
            } else {
                assert_eq!(res.status, StatusCode::NOT_FOUND, "{policy:?}");
            }

            // Adding one on the user's own page: any policy but Off.
            let page = b.login(&app, "ann@example.com", PASSWORD).await;
            assert_eq!(page.status, StatusCode::SEE_OTHER);
            let setup = b.get(&app, "/auth/mfa/setup").await;
            assert_eq!(
                setup.body.contains("Add a passkey"),
                policy.enabled(),
                "{policy:?}"
            );
            let csrf = setup.csrf();
            let begin = |with_csrf: bool| {
                let mut r = json_post("/auth/api/passkeys/register/begin", json!({}));
                if with_csrf {
                    r = r.insert_header(("x-csrf-token", csrf.clone()));
                }
                r
            };
            let res = b.send(&app, begin(false)).await;
            assert_eq!(
                res.status,
                StatusCode::FORBIDDEN,
                "{policy:?}: {}",
                res.body
            );
            let res = b.send(&app, begin(true)).await;
            if !policy.enabled() {
                assert_eq!(res.status, StatusCode::NOT_FOUND);
                continue;
            }
            assert_eq!(res.status, StatusCode::OK, "{}", res.body);
            let v: Value = serde_json::from_str(&res.body).expect("json");
            let pk = &v["options"]["publicKey"];
            assert_eq!(pk["rp"]["id"], "app.test");
            assert_eq!(pk["user"]["name"], "ann@example.com");
            assert_eq!(pk["authenticatorSelection"]["residentKey"], "required");
            assert_eq!(pk["authenticatorSelection"]["userVerification"], "required");
            let ceremony = v["ceremony"].as_str().expect("ceremony").to_owned();

            // A forged answer is refused, and nothing is stored; the
            // ceremony is gone with it.
            let finish = |ceremony: &str| {
                json_post(
                    "/auth/api/passkeys/register/finish",
                    json!({"ceremony": ceremony, "name": "Forged", "credential": {
                        "id": "AAAA", "rawId": "AAAA", "type": "public-key", "extensions": {},
                        "response": {"attestationObject": "o2NmbXRkbm9uZQ", "clientDataJSON": "e30"}
                    }}),
                )
                .insert_header(("x-csrf-token", csrf.clone()))
            };
            let res = b.send(&app, finish(&ceremony)).await;
            assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", res.body);
            assert!(res.body.contains("refused"), "{}", res.body);
            let res = b.send(&app, finish(&ceremony)).await;
            assert_eq!(res.status, StatusCode::BAD_REQUEST);
            assert!(res.body.contains("expired"), "{}", res.body);
            let n: i64 = mfa_factors::table
                .count()
                .get_result(&mut *db.conn())
                .expect("count");
            assert_eq!(n, 0);
        }
    })
});

both!(refused_passkeys_count_towards_the_lockout, |db| {
    block_on(async {
        let fd = builder(db)
            .passkeys(PasskeyPolicy::SignIn)
            .build()
            .expect("frontdesk");
        let app = host_app!(fd);
        let ann = user_with_password(db, "ann@example.com");
        let seed = base32_decode(&crate::mfa::enrol(db, &ann));

        // The password, then a passkey answer no passkey of hers signed.
        let mut b = Browser::new();
        let res = b
            .send(
                &app,
                json_post(
                    "/auth/api/login",
                    json!({"email": "ann@example.com", "password": PASSWORD}),
                ),
            )
            .await;
        assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.body);
        let v: Value = serde_json::from_str(&res.body).expect("json");
        let challenge = v["challenge"].as_str().expect("challenge").to_owned();
        // She has no passkey: there is nothing to begin.
        let res = b
            .send(
                &app,
                json_post(
                    "/auth/api/login/mfa/passkey/begin",
                    json!({"challenge": challenge}),
                ),
            )
            .await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{}", res.body);
        for _ in 0..5 {
            let res = b
                .send(
                    &app,
                    json_post(
                        "/auth/api/login/mfa/passkey/finish",
                        json!({"challenge": challenge, "ceremony": "made-up",
                               "credential": forged_assertion()}),
                    ),
                )
                .await;
            assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{}", res.body);
            assert!(b.session().is_none());
        }
        let recorded = attempts(db);
        assert_eq!(recorded[0], pair("mfa_required", "password"));
        assert_eq!(recorded[1..], vec![pair("mfa_failed", "passkey"); 5][..]);
        // Five refused passkeys lock the account: even the right code and
        // the right password are refused now.
        let res = b
            .send(
                &app,
                json_post(
                    "/auth/api/login/mfa",
                    json!({"challenge": challenge, "code": code_at(&seed, now_step() + 1)}),
                ),
            )
            .await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED);
        let res = Browser::new()
            .send(
                &app,
                json_post(
                    "/auth/api/login",
                    json!({"email": "ann@example.com", "password": PASSWORD}),
                ),
            )
            .await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED);
        assert_eq!(attempts(db).last(), Some(&pair("locked_out", "password")));

        // A sign-in with a passkey nobody registered: refused, counted for
        // the IP (the answer names no account).
        let mut other = Browser::new();
        let res = other
            .send(&app, json_post("/auth/api/login/passkey/begin", json!({})))
            .await;
        let v: Value = serde_json::from_str(&res.body).expect("json");
        let ceremony = v["ceremony"].as_str().expect("ceremony").to_owned();
        let finish = json!({"ceremony": ceremony, "credential": forged_assertion()});
        let res = other
            .send(
                &app,
                json_post("/auth/api/login/passkey/finish", finish.clone()),
            )
            .await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{}", res.body);
        assert_eq!(
            attempts(db).last(),
            Some(&pair("passkey_failed", "passkey"))
        );
        // The ceremony was used up by that answer.
        let before = attempts(db).len();
        let res = other
            .send(&app, json_post("/auth/api/login/passkey/finish", finish))
            .await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED);
        assert!(res.body.contains("Sign in again"), "{}", res.body);
        assert_eq!(attempts(db).len(), before);
    })
});

both!(attempts_record_the_method, |db| {
    use crate::admin_fixture::signed_in;
    block_on(async {
        let fd = crate::web_app::frontdesk(db);
        let app = host_app!(fd);
        let ann = user_with_password(db, "ann@example.com");
        let mut b = Browser::new();
        b.login(&app, "ann@example.com", "wrong password").await;
        b.login(&app, "ann@example.com", PASSWORD).await;
        let seed = base32_decode(&crate::mfa::enrol(db, &ann));
        let codes =
            frontdesk_core::mfa::recovery::regenerate(&mut db.conn(), ann.id).expect("codes");
        for (field, value) in [
            ("code", code_at(&seed, now_step() + 1)),
            ("recovery_code", codes[0].clone()),
        ] {
            let mut b = Browser::new();
            b.login(&app, "ann@example.com", PASSWORD).await;
            let page = b.get(&app, "/auth/mfa").await;
            let csrf = page.csrf();
            let res = b
                .post(&app, "/auth/mfa", &[(field, &value), ("csrf_token", &csrf)])
                .await;
            assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
        }
        assert_eq!(
            attempts(db),
            vec![
                pair("bad_password", "password"),
                pair("success", "password"),
                pair("mfa_required", "password"),
                pair("success", "totp"),
                pair("mfa_required", "password"),
                pair("mfa_recovery_code_used", "recovery_code"),
            ]
        );

        // The attempts page and the API show it.
        let staff = user_with_password(db, "staff@example.com");
        diesel::update(frontdesk_core::schema::users::table.find(staff.id))
            .set(frontdesk_core::schema::users::staff_role.eq(Some("owner")))
            .execute(&mut *db.conn())
            .expect("staff");
        let (mut admin, _) = signed_in(db, Some(&staff));
        let page = admin.get(&app, "/admin/login-attempts").await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        for label in [
            "Authenticator app",
            "Recovery code",
            "<th scope=\"col\">Method</th>",
        ] {
            assert!(page.body.contains(label), "{label}");
        }
        let res = admin
            .send(
                &app,
                actix_web::test::TestRequest::get().uri("/admin/api/v1/login-attempts?limit=100"),
            )
            .await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.body);
        let v: Value = serde_json::from_str(&res.body).expect("json");
        let methods: Vec<&str> = v["login_attempts"]
            .as_array()
            .expect("attempts")
            .iter()
            .filter_map(|a| a["method"].as_str())
            .collect();
        for m in ["password", "totp", "recovery_code"] {
            assert!(methods.contains(&m), "{m}: {methods:?}");
        }
    })
});

both!(secrets_never_leave_the_enrolment_pages, |db| {
    use crate::admin_fixture::signed_in;
    crate::captured_log::install();
    block_on(async {
        let fd = crate::web_app::frontdesk(db);
        let app = host_app!(fd);
        let ann = user_with_password(db, "ann@example.com");
        let mut seen: Vec<String> = Vec::new();

        // Enrol through the pages: the key is on the enrolment page, the
        // codes on the page after it, and nowhere else.
        let mut b = Browser::new();
        b.login(&app, "ann@example.com", PASSWORD).await;
        let setup = b.get(&app, "/auth/mfa/setup").await;
        let csrf = setup.csrf();
        seen.push(setup.body);
        let enrol = b
            .post(
                &app,
                "/auth/mfa/totp",
                &[("name", "Phone"), ("csrf_token", &csrf)],
            )
            .await;
        let open = "<code class=\"fd-secret\">";
        let i = enrol.body.find(open).expect("key") + open.len();
        let key = enrol.body[i..i + enrol.body[i..].find("</code>").expect("end")].to_owned();
        let seed = base32_decode(&key);
        let factor = enrol
            .body
            .split("name=\"factor_id\" value=\"")
            .nth(1)
            .expect("factor");
        let factor = factor[..factor.find('"').expect("end")].to_owned();
        let codes_page = b
            .post(
                &app,
                "/auth/mfa/totp/confirm",
                &[
                    ("factor_id", factor.as_str()),
                    ("code", &code_at(&seed, now_step())),
                    ("csrf_token", &csrf),
                ],
            )
            .await;
        let codes: Vec<String> = codes_page
            .body
            .split("<li><code>")
            .skip(1)
            .map(|c| c[..c.find("</code>").expect("end")].to_owned())
            .collect();
        assert_eq!(codes.len(), 10, "{}", codes_page.body);

        // Everything after: the setup page, both second steps, the admin's
        // page, API, export and the attempts list.
        seen.push(b.get(&app, "/auth/mfa/setup").await.body);
        for (field, value) in [
            ("code", code_at(&seed, now_step() + 1)),
            ("recovery_code", codes[0].clone()),
        ] {
            let mut b = Browser::new();
            seen.push(b.login(&app, "ann@example.com", PASSWORD).await.body);
            let page = b.get(&app, "/auth/mfa").await;
            let csrf = page.csrf();
            seen.push(page.body);
            let res = b
                .post(&app, "/auth/mfa", &[(field, &value), ("csrf_token", &csrf)])
                .await;
            assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
            seen.push(res.body);
        }
        let mut b = Browser::new();
        let res = b
            .send(
                &app,
                json_post(
                    "/auth/api/login",
                    json!({"email": "ann@example.com", "password": PASSWORD}),
                ),
            )
            .await;
        seen.push(res.body);
        let staff = user_with_password(db, "staff@example.com");
        diesel::update(frontdesk_core::schema::users::table.find(staff.id))
            .set(frontdesk_core::schema::users::staff_role.eq(Some("owner")))
            .execute(&mut *db.conn())
            .expect("staff");
        let (mut admin, admin_csrf) = signed_in(db, Some(&staff));
        for path in [
            format!("/admin/users/{}", ann.id),
            "/admin/users".to_owned(),
            "/admin/login-attempts".to_owned(),
            "/admin/audit".to_owned(),
        ] {
            let page = admin.get(&app, &path).await;
            assert_eq!(page.status, StatusCode::OK, "{path}");
            seen.push(page.body);
        }
        for path in [
            format!("/admin/api/v1/users/{}", ann.id),
            "/admin/api/v1/users?limit=100".to_owned(),
            "/admin/api/v1/login-attempts?limit=100".to_owned(),
        ] {
            let res = admin
                .send(&app, actix_web::test::TestRequest::get().uri(&path))
                .await;
            assert_eq!(res.status, StatusCode::OK, "{path}");
            seen.push(res.body);
        }
        let export = admin
            .post(&app, "/admin/exports", &[("csrf_token", &admin_csrf)])
            .await;
        assert_eq!(export.status, StatusCode::OK, "{}", export.body);
        assert!(export.body.contains("ann@example.com"));
        seen.push(export.body);

        // The rows: audit, mail, attempts.
        let mut conn = db.conn();
        let audit: Vec<(String, String)> = audit_events::table
            .select((audit_events::action, audit_events::details))
            .load(&mut *conn)
            .expect("audit");
        assert!(audit.iter().any(|(a, _)| a == "user.mfa.add"));
        seen.extend(audit.into_iter().map(|(a, d)| format!("{a} {d}")));
        let mails: Vec<(String, String)> = outbox::table
            .select((outbox::subject, outbox::text_body))
            .load(&mut *conn)
            .expect("mail");
        assert!(!mails.is_empty());
        seen.extend(mails.into_iter().map(|(s, t)| format!("{s} {t}")));
        seen.extend(crate::captured_log::lines());

        let lower_key = key.to_lowercase();
        let sealed: Option<String> = mfa_factors::table
            .select(mfa_factors::secret)
            .first(&mut *conn)
            .expect("factor");
        let sealed = sealed.expect("sealed");
        for text in &seen {
            assert!(
                !text.contains(&key) && !text.contains(&lower_key),
                "the key leaked: {text}"
            );
            assert!(!text.contains(&sealed), "the sealed key leaked: {text}");
            for c in &codes {
                assert!(
                    !text.contains(c.as_str()) && !text.contains(&c.replace('-', "")),
                    "a recovery code leaked: {text}"
                );
            }
        }
        assert!(seen.len() > 20, "{}", seen.len());
    })
});
