//! Two-step sign-in: authenticator apps and recovery codes. Codes are made
//! here by an independent RFC 4226/6238 implementation (hmac + sha1), from
//! the key the enrolment page shows.

use actix_web::http::StatusCode;
use diesel::prelude::*;
use frontdesk_core::schema::{audit_events, login_attempts, mfa_challenges, mfa_factors, sessions};
use frontdesk_core::{mfa, Actor, CoreError, OrgRole};
use hmac::{Hmac, Mac};

use crate::both;
use crate::host_app;
use crate::support::TestDb;
use crate::web_app::{block_on, count, frontdesk, user_with_password, Browser, Page, PASSWORD};

pub(crate) fn base32_decode(s: &str) -> Vec<u8> {
    const ALPHA: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut bits = 0u64;
    let mut n = 0;
    let mut out = Vec::new();
    for c in s.bytes().filter(|c| *c != b'=') {
        let v = ALPHA.iter().position(|a| *a == c).expect("base32") as u64;
        bits = (bits << 5) | v;
        n += 5;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
        }
    }
    out
}

/// RFC 4226 HOTP with six digits for time step `step`.
pub(crate) fn code_at(seed: &[u8], step: i64) -> String {
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(seed).expect("key");
    mac.update(&(step as u64).to_be_bytes());
    let h = mac.finalize().into_bytes();
    let off = (h[19] & 0xf) as usize;
    let bin = ((h[off] as u32 & 0x7f) << 24)
        | ((h[off + 1] as u32) << 16)
        | ((h[off + 2] as u32) << 8)
        | h[off + 3] as u32;
    format!("{:06}", bin % 1_000_000)
}

pub(crate) fn now_step() -> i64 {
    chrono::Utc::now().timestamp().div_euclid(30)
}

fn between<'a>(body: &'a str, start: &str, end: &str) -> &'a str {
    let i = body.find(start).expect(start) + start.len();
    let j = body[i..].find(end).expect(end) + i;
    &body[i..j]
}

pub(crate) fn last_step(db: &TestDb) -> i64 {
    let mut conn = db.conn();
    mfa_factors::table
        .filter(mfa_factors::confirmed_at.is_not_null())
        .select(mfa_factors::last_step)
        .first::<Option<i64>>(&mut *conn)
        .expect("factor")
        .expect("a step")
}

fn reasons(db: &TestDb) -> Vec<String> {
    let mut conn = db.conn();
    login_attempts::table
        .order(login_attempts::id)
        .select(login_attempts::reason)
        .load(&mut *conn)
        .expect("attempts")
}

/// Signs in with the password: the answer and whether a second step follows.
async fn password_step<S: crate::password_resets::TestApp>(b: &mut Browser, app: &S) -> Page {
    b.login(app, "ann@example.com", PASSWORD).await
}

async fn second_step<S: crate::password_resets::TestApp>(
    b: &mut Browser,
    app: &S,
    field: &str,
    value: &str,
) -> Page {
    let page = b.get(app, "/auth/mfa").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let csrf = page.csrf();
    b.post(app, "/auth/mfa", &[(field, value), ("csrf_token", &csrf)])
        .await
}

both!(authenticator_app_and_recovery_codes, |db| {
    block_on(async {
        let fd = frontdesk(db);
        let app = host_app!(fd);
        let ann = user_with_password(db, "ann@example.com");
        let mut me = Browser::new();
        assert_eq!(
            password_step(&mut me, &app).await.status,
            StatusCode::SEE_OTHER
        );
        let setup = me.get(&app, "/auth/mfa/setup").await;
        assert!(
            setup.body.contains("is <strong>off</strong>"),
            "{}",
            setup.body
        );

        // Enrolment: the key and a QR code, never cached; nothing counts yet.
        let csrf = setup.csrf();
        let enrol = me
            .post(
                &app,
                "/auth/mfa/totp",
                &[("name", "Phone"), ("csrf_token", &csrf)],
            )
            .await;
        assert_eq!(enrol.status, StatusCode::OK, "{}", enrol.body);
        assert_eq!(enrol.header("cache-control"), Some("no-store"));
        assert!(enrol.body.contains("<svg"), "QR code inline");
        let key = between(&enrol.body, "<code class=\"fd-secret\">", "</code>").to_owned();
        let seed = base32_decode(&key);
        assert_eq!(seed.len(), 20, "160-bit seed");
        let factor_id = between(&enrol.body, "name=\"factor_id\" value=\"", "\"").to_owned();
        {
            let mut conn = db.conn();
            let sealed: Option<String> = mfa_factors::table
                .select(mfa_factors::secret)
                .first(&mut *conn)
                .expect("factor");
            let sealed = sealed.expect("sealed seed");
            assert!(sealed.starts_with("v1."));
            assert!(
                !sealed.contains(&key),
                "the seed is not stored in the clear"
            );
            assert!(!mfa::enabled(&mut conn, ann.id).expect("enabled"));
        }
        // Not confirmed: the password alone still signs in.
        assert_eq!(
            password_step(&mut Browser::new(), &app).await.status,
            StatusCode::SEE_OTHER
        );

        // A wrong first code: told, nothing confirmed, the same key shown again.
        let csrf = enrol.csrf();
        let wrong = code_at(&seed, now_step() + 5);
        let res = me
            .post(
                &app,
                "/auth/mfa/totp/confirm",
                &[
                    ("factor_id", &factor_id),
                    ("code", &wrong),
                    ("csrf_token", &csrf),
                ],
            )
            .await;
        assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(res.body.contains("not right"));
        assert!(res.body.contains(&key));
        assert!(!mfa::enabled(&mut db.conn(), ann.id).expect("enabled"));

        // The right code confirms it and shows ten recovery codes once.
        let res = me
            .post(
                &app,
                "/auth/mfa/totp/confirm",
                &[
                    ("factor_id", &factor_id),
                    ("code", &code_at(&seed, now_step())),
                    ("csrf_token", &csrf),
                ],
            )
            .await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.body);
        assert_eq!(res.header("cache-control"), Some("no-store"));
        let codes: Vec<String> = res
            .body
            .split("<li><code>")
            .skip(1)
            .map(|s| s.split('<').next().unwrap_or_default().to_owned())
            .collect();
        assert_eq!(codes.len(), 10);
        assert!(mfa::enabled(&mut db.conn(), ann.id).expect("enabled"));
        let setup = me.get(&app, "/auth/mfa/setup").await;
        assert!(
            setup.body.contains("is <strong>on</strong>"),
            "{} {}",
            setup.status,
            setup.body
        );
        assert!(setup.body.contains("<strong>10</strong> unused"));
        assert!(
            !setup.body.contains(&key),
            "the key is shown only while enrolling"
        );

        // The password alone no longer opens a session.
        let sessions_before = count(db, "sessions");
        let mut b = Browser::new();
        let res = password_step(&mut b, &app).await;
        assert_eq!(
            (res.status, res.location()),
            (StatusCode::SEE_OTHER, "/auth/mfa")
        );
        assert!(res.cookie("frontdesk_mfa").is_some());
        assert!(
            b.session().is_none(),
            "no session cookie before the second step"
        );
        assert_eq!(
            count(db, "sessions"),
            sessions_before,
            "no session row either"
        );
        assert_eq!(reasons(db).last().map(String::as_str), Some("mfa_required"));
        assert_eq!(b.get(&app, "/notes").await.status, StatusCode::SEE_OTHER);

        // A wrong code, then the code already used at confirmation: refused.
        let res = second_step(&mut b, &app, "code", "000000").await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED);
        assert!(res.body.contains("not right"));
        let used = code_at(&seed, last_step(db));
        let res = second_step(&mut b, &app, "code", &used).await;
        assert_eq!(
            res.status,
            StatusCode::UNAUTHORIZED,
            "a code is accepted once"
        );
        assert_eq!(reasons(db).iter().filter(|r| *r == "mfa_failed").count(), 2);
        assert!(b.session().is_none());

        // The next code signs in, once.
        let challenge = b
            .jar
            .get("frontdesk_mfa")
            .cloned()
            .expect("challenge cookie");
        let next = code_at(&seed, last_step(db) + 1);
        let res = second_step(&mut b, &app, "code", &next).await;
        assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
        assert!(b.session().is_some());
        assert!(
            !b.jar.contains_key("frontdesk_mfa"),
            "the challenge cookie is cleared"
        );
        assert_eq!(b.get(&app, "/notes").await.status, StatusCode::OK);
        assert_eq!(reasons(db).last().map(String::as_str), Some("success"));

        // The used challenge is dead, whatever is offered with it.
        let mut replay = Browser::new();
        replay.jar.insert("frontdesk_mfa".into(), challenge);
        let res = second_step(&mut replay, &app, "recovery_code", &codes[0]).await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED);
        assert!(res.body.contains("Sign in again"));
        assert!(replay.session().is_none());
        assert_eq!(
            mfa::summary(&mut db.conn(), ann.id)
                .expect("summary")
                .recovery_codes_left,
            10
        );

        // A recovery code signs in once.
        let mut c = Browser::new();
        password_step(&mut c, &app).await;
        let res = second_step(&mut c, &app, "recovery_code", &codes[0].to_uppercase()).await;
        assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
        assert!(c.session().is_some());
        assert_eq!(
            reasons(db).last().map(String::as_str),
            Some("mfa_recovery_code_used")
        );
        let mut d = Browser::new();
        password_step(&mut d, &app).await;
        let res = second_step(&mut d, &app, "recovery_code", &codes[0]).await;
        assert_eq!(
            res.status,
            StatusCode::UNAUTHORIZED,
            "a recovery code works once"
        );
        assert!(d.session().is_none());
        assert_eq!(
            mfa::summary(&mut db.conn(), ann.id)
                .expect("summary")
                .recovery_codes_left,
            9
        );

        // An expired challenge is refused even with a right code.
        {
            let mut conn = db.conn();
            diesel::update(mfa_challenges::table.filter(mfa_challenges::used_at.is_null()))
                .set(
                    mfa_challenges::expires_at
                        .eq(frontdesk_core::time::now() - chrono::Duration::seconds(1)),
                )
                .execute(&mut *conn)
                .expect("expire");
        }
        let res = second_step(&mut d, &app, "recovery_code", &codes[1]).await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED);
        assert!(res.body.contains("Sign in again"));
        assert_eq!(
            mfa::summary(&mut db.conn(), ann.id)
                .expect("summary")
                .recovery_codes_left,
            9
        );

        // No response, audit row or stored column holds the key.
        let mut conn = db.conn();
        let details: Vec<String> = audit_events::table
            .select(audit_events::details)
            .load(&mut *conn)
            .expect("audit");
        assert!(details.iter().all(|d| !d.contains(&key)));
        let actions: Vec<String> = audit_events::table
            .select(audit_events::action)
            .load(&mut *conn)
            .expect("audit");
        assert!(actions.contains(&"user.mfa.add".to_owned()));
        assert!(actions.contains(&"user.mfa.recovery_codes".to_owned()));
    })
});

both!(wrong_second_steps_count_towards_the_lockout, |db| {
    block_on(async {
        let fd = frontdesk(db);
        let app = host_app!(fd);
        let (_, seed, _) = ann_with_an_app(db);
        // A challenge takes five wrong codes, then dies.
        let mut b = Browser::new();
        password_step(&mut b, &app).await;
        for _ in 0..5 {
            let res = second_step(&mut b, &app, "code", "000000").await;
            assert_eq!(res.status, StatusCode::UNAUTHORIZED);
        }
        let right = code_at(&seed, last_step(db) + 1);
        let res = second_step(&mut b, &app, "code", &right).await;
        assert!(res.body.contains("Sign in again"), "worn out after five");
        assert!(b.session().is_none());
        // Five wrong codes are five failures for the account's lockout (the
        // default locks after five): now even the password step is refused.
        let policy = fd.state().settings().auth.lockout;
        let locked = frontdesk_core::login_attempts::lockout(
            &mut db.conn(),
            "ann@example.com",
            None,
            &policy,
        )
        .expect("lockout");
        assert!(locked.is_some(), "mfa_failed counts towards the lockout");
        let res = password_step(&mut Browser::new(), &app).await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    })
});

/// The challenge a right password for ann@example.com earns, with its
/// `mfa_required` attempt, as the password step writes them.
fn password_passed(
    conn: &mut frontdesk_core::db::DbConnection,
    user_id: i64,
    client: &frontdesk_core::sessions::ClientInfo,
) -> frontdesk_core::tokens::SecretToken {
    mfa::challenges::issue_after_attempt(
        conn,
        user_id,
        "ann@example.com",
        client,
        frontdesk_core::login_attempts::Method::Password,
    )
    .expect("challenge")
}

/// Ann with a confirmed authenticator app: the app's seed and the keys.
pub(crate) fn ann_with_an_app(
    db: &TestDb,
) -> (frontdesk_core::users::User, Vec<u8>, mfa::sealed::SecretBox) {
    let ann = user_with_password(db, "ann@example.com");
    let keys = mfa::sealed::SecretBox::derive(&[7u8; 32], mfa::PURPOSE_TOTP).expect("keys");
    let enrol = mfa::totp::begin(&mut db.conn(), &keys, &ann, "Notes", "").expect("begin");
    let seed = base32_decode(&enrol.secret_base32);
    mfa::totp::confirm(
        &mut db.conn(),
        &keys,
        &ann,
        enrol.factor_id,
        &code_at(&seed, now_step()),
    )
    .expect("confirm");
    (ann, seed, keys)
}

both!(
    a_challenge_of_a_locked_account_is_refused_with_the_right_code,
    |db| {
        block_on(async {
            let fd = frontdesk(db);
            let app = host_app!(fd);
            let (_, seed, _) = ann_with_an_app(db);
            // Two challenges while the account is open; wrong codes on the first
            // lock it, and the second then takes no code, not even the right one
            // (guesses spread over many challenges still meet the lockout).
            let mut first = Browser::new();
            password_step(&mut first, &app).await;
            let mut second = Browser::new();
            password_step(&mut second, &app).await;
            for _ in 0..5 {
                let res = second_step(&mut first, &app, "code", "000000").await;
                assert_eq!(res.status, StatusCode::UNAUTHORIZED);
            }
            let right = code_at(&seed, last_step(db) + 1);
            let res = second_step(&mut second, &app, "code", &right).await;
            assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{}", res.body);
            assert!(second.session().is_none());
            assert_eq!(count(db, "sessions"), 0);
            assert_eq!(reasons(db).last().map(String::as_str), Some("locked_out"));
        })
    }
);

both!(
    the_second_step_counts_the_typed_form_of_an_address_stored_in_another,
    |db| {
        use frontdesk_core::auth::{self, AuthSettings, SecondFactor, SignInError};
        use frontdesk_core::login_attempts::{Method, Reason};
        use frontdesk_core::schema::users;
        use frontdesk_core::sessions::ClientInfo;
        let (ann, seed, keys) = ann_with_an_app(db);
        let right = code_at(&seed, last_step(db) + 1);
        // An address stored as no sign-up or import stores one (kept from an
        // older version, or written by the host): the password step and the
        // failures count its normalized form, and so must the second step.
        let mut conn = db.conn();
        diesel::update(users::table.find(ann.id))
            .set(users::email.eq("Ann@Example.com"))
            .execute(&mut *conn)
            .expect("stored form");
        let client = ClientInfo {
            ip: Some("192.0.2.9".into()),
            user_agent: None,
        };
        let challenge = password_passed(&mut conn, ann.id, &client);
        for _ in 0..5 {
            frontdesk_core::login_attempts::record_method(
                &mut conn,
                Some(ann.id),
                "ann@example.com",
                &client,
                Reason::BadPassword,
                Some(Method::Password),
            )
            .expect("failure");
        }
        let answer = auth::complete_second_step(
            &mut conn,
            Some(&keys),
            challenge.expose(),
            SecondFactor::Totp(&right),
            &client,
            &AuthSettings::default(),
            None,
        );
        assert!(
            matches!(
                answer,
                Err(SignInError::Refused {
                    reason: Reason::LockedOut,
                    ..
                })
            ),
            "{answer:?}"
        );
    }
);

/// Vetoes `user_signed_in` while `veto` is set; records what it heard after
/// each commit, with the sessions the database then holds.
#[derive(Clone, Default)]
struct SignInListener {
    veto: std::sync::Arc<std::sync::atomic::AtomicBool>,
    heard: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl frontdesk::EventListener for SignInListener {
    fn before_commit(&self, event: &frontdesk::Event) -> Result<(), frontdesk::Veto> {
        let signed_in = matches!(event, frontdesk::Event::UserSignedIn { .. });
        if signed_in && self.veto.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(frontdesk::Veto("Billing holds this account.".into()));
        }
        Ok(())
    }

    fn after_commit(&self, event: &frontdesk::Event) {
        let kind = serde_json::to_value(event).expect("event")["event"].to_string();
        self.heard.lock().expect("heard").push(kind);
    }
}

// The second step's writes are all or nothing, whichever way a backend runs
// them (on PostgreSQL an app's code is one statement): a listener's veto
// leaves the app's step, the challenge and the sessions as they were, and
// the event of a sign-in that went through is delivered once, after it.
both!(
    a_vetoed_second_step_writes_nothing_and_a_kept_one_is_heard_once,
    |db| {
        use frontdesk_core::auth::{self, AuthSettings, SecondFactor, SignInError};
        use frontdesk_core::sessions::ClientInfo;
        let (ann, seed, keys) = ann_with_an_app(db);
        let listener = SignInListener::default();
        let fd = crate::web_app::builder(db)
            .listener(listener.clone())
            .build()
            .expect("frontdesk");
        let client = ClientInfo {
            ip: Some("192.0.2.7".into()),
            user_agent: Some("test".into()),
        };
        let step_before = last_step(db);
        let right = code_at(&seed, step_before + 1);
        let mut conn = frontdesk_core::events::checkout(fd.pool()).expect("connection");
        let challenge = password_passed(&mut conn, ann.id, &client);
        let second = |conn: &mut frontdesk_core::db::DbConnection, code: &str| {
            auth::complete_second_step(
                conn,
                Some(&keys),
                challenge.expose(),
                SecondFactor::Totp(code),
                &client,
                &AuthSettings::default(),
                None,
            )
        };
        listener
            .veto
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let vetoed = second(&mut conn, &right);
        assert!(
            matches!(vetoed, Err(SignInError::Other(CoreError::Vetoed(_)))),
            "{vetoed:?}"
        );
        drop(conn);
        assert_eq!(count(db, "sessions"), 0, "no session");
        assert_eq!(last_step(db), step_before, "the app's step did not move");
        let used: Option<chrono::NaiveDateTime> = mfa_challenges::table
            .select(mfa_challenges::used_at)
            .first(&mut *db.conn())
            .expect("challenge");
        assert_eq!(used, None, "the challenge is still live");
        assert_eq!(reasons(db), ["mfa_required"], "no attempt row either");
        assert!(listener.heard.lock().expect("heard").is_empty());

        listener
            .veto
            .store(false, std::sync::atomic::Ordering::SeqCst);
        let mut conn = frontdesk_core::events::checkout(fd.pool()).expect("connection");
        let signed_in = second(&mut conn, &right).expect("signed in");
        assert!(
            listener.heard.lock().expect("heard").is_empty(),
            "not before the connection is back"
        );
        drop(conn);
        assert_eq!(
            *listener.heard.lock().expect("heard"),
            ["\"user_signed_in\""]
        );
        // What the sign-in answered is what the database holds.
        let row: frontdesk_core::sessions::Session = sessions::table
            .select(frontdesk_core::sessions::Session::as_select())
            .first(&mut *db.conn())
            .expect("session");
        assert_eq!(
            serde_json::to_value(&row).expect("row"),
            serde_json::to_value(&signed_in.session).expect("answer")
        );
        assert_eq!(row.token_hash, signed_in.session.token_hash);
        assert_eq!(
            row.token_hash,
            frontdesk_core::tokens::hash_token(signed_in.token.expose())
        );
        let user = frontdesk_core::users::get(&mut db.conn(), ann.id).expect("user");
        assert_eq!(user.last_login_at, signed_in.user.last_login_at);
        assert_eq!(user.last_active_at, signed_in.user.last_active_at);
        assert_eq!(user.activated_at, signed_in.user.activated_at);
        assert!(user.last_login_at.is_some());
        assert_eq!(last_step(db), step_before + 1);
        assert_eq!(reasons(db), ["mfa_required", "success"]);
        let method: Option<String> = login_attempts::table
            .order(login_attempts::id.desc())
            .select(login_attempts::method)
            .first(&mut *db.conn())
            .expect("method");
        assert_eq!(method.as_deref(), Some("totp"));
        // The challenge is spent: the next code is refused and opens nothing.
        let mut conn = frontdesk_core::events::checkout(fd.pool()).expect("connection");
        let again = second(&mut conn, &code_at(&seed, step_before + 2));
        assert!(
            matches!(again, Err(SignInError::ChallengeExpired)),
            "{again:?}"
        );
        drop(conn);
        assert_eq!(count(db, "sessions"), 1);
    }
);

both!(json_sign_in_with_a_second_step, |db| {
    block_on(async {
        let fd = frontdesk(db);
        let app = host_app!(fd);
        let (_, seed, _) = ann_with_an_app(db);
        let mut b = Browser::new();
        let json = |v: serde_json::Value| {
            actix_web::test::TestRequest::post()
                .insert_header(("content-type", "application/json"))
                .insert_header(("origin", "http://app.test"))
                .set_payload(v.to_string())
        };
        let res = b
            .send(
                &app,
                json(serde_json::json!({"email": "ann@example.com", "password": PASSWORD}))
                    .uri("/auth/api/login"),
            )
            .await;
        assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.body);
        assert!(b.session().is_none());
        let v: serde_json::Value = serde_json::from_str(&res.body).expect("json");
        assert_eq!(v["mfa_required"], true);
        let challenge = v["challenge"].as_str().expect("challenge").to_owned();
        let res = b
            .send(
                &app,
                json(serde_json::json!({"challenge": challenge, "code": "000000"}))
                    .uri("/auth/api/login/mfa"),
            )
            .await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED);
        assert!(res.header("content-type").unwrap_or("").contains("json"));
        let res = b
            .send(
                &app,
                json(serde_json::json!({
                    "challenge": challenge,
                    "code": code_at(&seed, last_step(db) + 1),
                }))
                .uri("/auth/api/login/mfa"),
            )
            .await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.body);
        assert!(b.session().is_some());
        let v: serde_json::Value = serde_json::from_str(&res.body).expect("json");
        assert_eq!(v["user"]["email"], "ann@example.com");
    })
});

both!(admins_reset_mfa_within_their_reach, |db| {
    let mut conn = db.conn();
    let ann = user_with_password(db, "ann@example.com");
    let keys = mfa::sealed::SecretBox::derive(&[7u8; 32], mfa::PURPOSE_TOTP).expect("keys");
    let enrol = mfa::totp::begin(&mut conn, &keys, &ann, "Notes", "").expect("begin");
    let seed = base32_decode(&enrol.secret_base32);
    mfa::totp::confirm(
        &mut conn,
        &keys,
        &ann,
        enrol.factor_id,
        &code_at(&seed, now_step()),
    )
    .expect("confirm");
    mfa::recovery::regenerate(&mut conn, ann.id).expect("codes");
    let client = frontdesk_core::sessions::ClientInfo::default();
    frontdesk_core::sessions::create(&mut conn, ann.id, &client, &Default::default())
        .expect("session");

    // An organization admin of an organization Ann is not in: not found.
    let org =
        frontdesk_core::organizations::create(&mut conn, &Actor::system(), "globex", "Globex", "")
            .expect("org");
    let outsider = Actor::user(999_999, None, vec![(org.id, OrgRole::Admin)]);
    assert!(matches!(
        mfa::reset(&mut conn, &outsider, ann.id),
        Err(CoreError::NotFound(_))
    ));
    assert!(mfa::enabled(&mut conn, ann.id).expect("enabled"));

    // Staff may: factors, codes and sessions end; audited.
    let removed = mfa::reset(&mut conn, &Actor::system(), ann.id).expect("reset");
    assert_eq!(removed, 1);
    let summary = mfa::summary(&mut conn, ann.id).expect("summary");
    assert!(!summary.enabled);
    assert_eq!(summary.recovery_codes_left, 0);
    let live: i64 = sessions::table
        .filter(sessions::user_id.eq(ann.id))
        .filter(sessions::revoked_at.is_null())
        .count()
        .get_result(&mut *conn)
        .expect("count");
    assert_eq!(live, 0);
    let action: String = audit_events::table
        .order(audit_events::id.desc())
        .select(audit_events::action)
        .first(&mut *conn)
        .expect("audit");
    assert_eq!(action, "user.mfa.reset");
});

/// Gives `user` a confirmed authenticator app; returns its base32 key.
pub(crate) fn enrol(db: &TestDb, user: &frontdesk_core::users::User) -> String {
    let keys = mfa::sealed::SecretBox::derive(&[7u8; 32], mfa::PURPOSE_TOTP).expect("keys");
    let mut conn = db.conn();
    let e = mfa::totp::begin(&mut conn, &keys, user, "Notes", "Phone").expect("begin");
    let seed = base32_decode(&e.secret_base32);
    mfa::totp::confirm(
        &mut conn,
        &keys,
        user,
        e.factor_id,
        &code_at(&seed, now_step()),
    )
    .expect("confirm");
    e.secret_base32
}

both!(the_user_page_shows_factors_and_resets_them, |db| {
    use crate::admin_fixture::{cast, signed_in};
    use frontdesk_core::schema::outbox;
    block_on(async {
        let fd = frontdesk(db);
        let app = host_app!(fd);
        let c = cast(db);
        let alice_key = enrol(db, &c.alice);
        enrol(db, &c.bob);
        let (mut admin, csrf) = signed_in(db, c.get("org_admin"));

        let page = admin
            .get(&app, &format!("/admin/users/{}", c.alice.id))
            .await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.body.contains("MFA on"), "{}", page.body);
        assert!(page.body.contains("Phone"));
        assert!(!page.body.contains(&alice_key));

        // A wrong confirmation changes nothing.
        let url = format!("/admin/users/{}/mfa/reset", c.alice.id);
        admin
            .post(
                &app,
                &url,
                &[("confirm", "nobody@acme.test"), ("csrf_token", &csrf)],
            )
            .await;
        assert!(mfa::enabled(&mut db.conn(), c.alice.id).expect("enabled"));

        // Outside the admin's organization: not found, nothing changed.
        let res = admin
            .post(
                &app,
                &format!("/admin/users/{}/mfa/reset", c.bob.id),
                &[("confirm", "bob@globex.test"), ("csrf_token", &csrf)],
            )
            .await;
        assert_eq!(res.status, StatusCode::NOT_FOUND);
        assert!(mfa::enabled(&mut db.conn(), c.bob.id).expect("enabled"));

        let (mut alice, _) = signed_in(db, Some(&c.alice));
        assert_eq!(alice.get(&app, "/notes").await.status, StatusCode::OK);
        let mails_before = count(db, "outbox");
        let res = admin
            .post(
                &app,
                &url,
                &[("confirm", "alice@acme.test"), ("csrf_token", &csrf)],
            )
            .await;
        assert_eq!(res.status, StatusCode::SEE_OTHER);
        assert!(!mfa::enabled(&mut db.conn(), c.alice.id).expect("enabled"));
        assert_eq!(
            alice.get(&app, "/notes").await.status,
            StatusCode::SEE_OTHER,
            "signed out"
        );
        assert_eq!(count(db, "outbox"), mails_before + 1);
        let (kind, to): (String, String) = outbox::table
            .order(outbox::id.desc())
            .select((outbox::kind, outbox::recipient))
            .first(&mut *db.conn())
            .expect("mail");
        assert_eq!(
            (kind.as_str(), to.as_str()),
            ("mfa_reset", "alice@acme.test")
        );
        let page = admin
            .get(&app, &format!("/admin/users/{}", c.alice.id))
            .await;
        assert!(page.body.contains("MFA off"));
        assert!(page.body.contains("user.mfa.reset") || page.body.contains("MFA reset"));
    })
});

both!(the_api_tells_mfa_and_lists_factors_without_secrets, |db| {
    use crate::admin_fixture::{cast, signed_in};
    block_on(async {
        let fd = frontdesk(db);
        let app = host_app!(fd);
        let c = cast(db);
        let key = enrol(db, &c.alice);
        let sealed: Option<String> = mfa_factors::table
            .select(mfa_factors::secret)
            .first(&mut *db.conn())
            .expect("factor");
        let sealed = sealed.expect("sealed");
        let (mut staff, _) = signed_in(db, c.get("staff_owner"));
        let get = |p: String| actix_web::test::TestRequest::get().uri(&p);
        let res = staff
            .send(&app, get(format!("/admin/api/v1/users/{}", c.alice.id)))
            .await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.body);
        let v: serde_json::Value = serde_json::from_str(&res.body).expect("json");
        assert_eq!(v["mfa_enabled"], true);
        assert_eq!(v["mfa_factors"][0]["kind"], "totp");
        assert_eq!(v["mfa_factors"][0]["name"], "Phone");
        assert_eq!(v["mfa_recovery_codes_left"], 0);
        let list = staff
            .send(&app, get("/admin/api/v1/users?limit=100".into()))
            .await;
        let l: serde_json::Value = serde_json::from_str(&list.body).expect("json");
        let users = l["users"].as_array().expect("users");
        for u in users {
            let expected = u["id"] == c.alice.id;
            assert_eq!(u["mfa_enabled"], expected, "{}", u["email"]);
        }
        for body in [&res.body, &list.body] {
            assert!(!body.contains(&key) && !body.contains(&sealed));
        }
    })
});

both!(the_users_list_api_and_export_filter_by_mfa, |db| {
    use crate::admin_fixture::{cast, signed_in};
    block_on(async {
        let fd = frontdesk(db);
        let app = host_app!(fd);
        let c = cast(db);
        enrol(db, &c.alice);
        let (mut staff, _) = signed_in(db, c.get("staff_owner"));
        let get = |p: &str| actix_web::test::TestRequest::get().uri(p);
        let emails = |body: &str| -> Vec<String> {
            let v: serde_json::Value = serde_json::from_str(body).expect("json");
            v["users"]
                .as_array()
                .expect("users")
                .iter()
                .map(|u| u["email"].as_str().unwrap_or("").to_owned())
                .collect()
        };
        let on = staff.send(&app, get("/admin/api/v1/users?mfa=on")).await;
        assert_eq!(on.status, StatusCode::OK, "{}", on.body);
        assert_eq!(emails(&on.body), ["alice@acme.test"]);
        let off = staff
            .send(&app, get("/admin/api/v1/users?mfa=off&limit=100"))
            .await;
        let off = emails(&off.body);
        assert!(off.contains(&"bob@globex.test".to_owned()));
        assert!(!off.contains(&"alice@acme.test".to_owned()));
        let all = staff.send(&app, get("/admin/api/v1/users?limit=100")).await;
        assert_eq!(emails(&all.body).len(), off.len() + 1);
        let bad = staff.send(&app, get("/admin/api/v1/users?mfa=maybe")).await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST);
        assert!(bad.body.contains("\"mfa\""), "{}", bad.body);

        let export = staff
            .send(&app, get("/admin/api/v1/export?mfa=on&fields=email"))
            .await;
        assert_eq!(export.status, StatusCode::OK, "{}", export.body);
        assert_eq!(export.body.trim(), "email\nalice@acme.test");
        let export = staff
            .send(
                &app,
                get("/admin/api/v1/export?fields=email,mfa_enabled&limit=100"),
            )
            .await;
        assert_eq!(export.status, StatusCode::OK, "{}", export.body);
        assert!(
            export.body.starts_with("email,mfa_enabled\n"),
            "{}",
            export.body
        );
        assert!(
            export.body.contains("alice@acme.test,true\n"),
            "{}",
            export.body
        );
        assert!(
            export.body.contains("bob@globex.test,false\n"),
            "{}",
            export.body
        );

        let page = staff.get(&app, "/admin/users?mfa=on").await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.body.contains("alice@acme.test"));
        assert!(!page.body.contains("bob@globex.test"));
        assert!(page.body.contains("<option value=\"on\" selected>"));
        assert!(page.body.contains("<th scope=\"col\">MFA</th>"));
        assert!(page.body.contains("<td data-label=\"MFA\">on</td>"));
        let page = staff.get(&app, "/admin/users?mfa=off").await;
        assert!(page.body.contains("<td data-label=\"MFA\">off</td>"));
        assert!(!page.body.contains("<td data-label=\"MFA\">on</td>"));

        let doc = staff.send(&app, get("/admin/api/v1/openapi.json")).await;
        let v: serde_json::Value = serde_json::from_str(&doc.body).expect("json");
        for path in ["/users", "/export"] {
            let params = v["paths"][path]["get"]["parameters"]
                .as_array()
                .expect("parameters");
            assert!(params.iter().any(|p| p["name"] == "mfa"), "{path}");
        }
    })
});

both!(
    the_user_page_and_attempts_page_show_two_step_attempts_with_their_method,
    |db| {
        use crate::admin_fixture::{cast, signed_in};
        use frontdesk_core::login_attempts::{self, Method, Reason};
        use frontdesk_core::sessions::ClientInfo;
        block_on(async {
            let fd = frontdesk(db);
            let app = host_app!(fd);
            let c = cast(db);
            {
                let mut conn = db.conn();
                let client = ClientInfo {
                    ip: Some("192.0.2.7".into()),
                    user_agent: None,
                };
                let alice = Some(c.alice.id);
                let mail = "alice@acme.test";
                let write = |conn: &mut _, reason, method| {
                    login_attempts::record_method(conn, alice, mail, &client, reason, method)
                        .expect("attempt")
                };
                write(&mut conn, Reason::BadPassword, Some(Method::Password));
                write(&mut conn, Reason::MfaRequired, Some(Method::Password));
                write(&mut conn, Reason::MfaFailed, Some(Method::Totp));
                write(&mut conn, Reason::Success, Some(Method::Passkey));
                write(&mut conn, Reason::Success, Some(Method::Password));
            }
            let (mut admin, _) = signed_in(db, c.get("org_admin"));
            let page = admin
                .get(&app, &format!("/admin/users/{}", c.alice.id))
                .await;
            assert_eq!(page.status, StatusCode::OK);
            let section = between(&page.body, "Two-step sign-in attempts", "</table>");
            // The second step's attempts and the passkey, not the password-only ones.
            assert_eq!(section.matches("<tr><td>").count(), 3, "{section}");
            assert!(section.contains("Authenticator app"), "{section}");
            assert!(section.contains("Passkey"), "{section}");
            let recent = between(&page.body, "Recent login attempts", "</table>");
            assert_eq!(recent.matches("<tr><td>").count(), 5, "{recent}");
            assert!(recent.contains("<td>Password</td>"), "{recent}");

            let url = format!("/admin/login-attempts?user={}&step=two_step", c.alice.id);
            let list = admin.get(&app, &url).await;
            assert_eq!(list.status, StatusCode::OK);
            assert_eq!(list.body.matches("data-label=\"When\"").count(), 3);
            let all = admin
                .get(&app, &format!("/admin/login-attempts?user={}", c.alice.id))
                .await;
            assert_eq!(all.body.matches("data-label=\"When\"").count(), 5);
            let bad = admin.get(&app, "/admin/login-attempts?step=second").await;
            assert_eq!(bad.status, StatusCode::BAD_REQUEST);
        })
    }
);

/// The challenge's statement commits without waiting for the disk only when
/// it is a transaction of its own, and the setting ends with it: the next
/// commits on the connection (failures that count, sessions) and a caller's
/// own transaction still wait.
#[test]
fn a_challenge_skips_the_flush_of_its_own_commit_only() {
    use diesel::connection::Connection;
    use frontdesk_core::login_attempts::Method;
    use frontdesk_core::sessions::ClientInfo;
    let Some(db) = TestDb::postgres() else {
        return;
    };
    let ann = user_with_password(&db, "ann@example.com");
    let setting = |conn: &mut frontdesk_core::db::DbConnection| -> String {
        #[derive(diesel::QueryableByName)]
        struct Setting {
            #[diesel(sql_type = diesel::sql_types::Text)]
            value: String,
        }
        diesel::sql_query("SELECT current_setting('synchronous_commit') AS value")
            .get_result::<Setting>(conn)
            .expect("setting")
            .value
    };
    let issue = |conn: &mut frontdesk_core::db::DbConnection| {
        mfa::challenges::issue_after_attempt(
            conn,
            ann.id,
            "ann@example.com",
            &ClientInfo::default(),
            Method::Password,
        )
        .expect("challenge");
    };
    let mut conn = db.conn();
    issue(&mut conn);
    assert_eq!(
        setting(&mut conn),
        "on",
        "the setting outlived its statement"
    );
    conn.transaction::<_, diesel::result::Error, _>(|conn| {
        issue(conn);
        assert_eq!(setting(conn), "on", "a caller's transaction lost its flush");
        Ok(())
    })
    .expect("transaction");
    let challenges: i64 = mfa_challenges::table
        .count()
        .get_result(&mut *conn)
        .expect("count");
    assert_eq!(challenges, 2);
}
