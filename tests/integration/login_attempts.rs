//! Login attempts and lockout: every try is a row with its reason; failures per
//! account and per IP lock sign-in with a growing delay and the same message.

use actix_web::http::StatusCode;
use actix_web::test::TestRequest;
use chrono::Duration;
use diesel::prelude::*;
use frontdesk_core::auth::{self, AuthSettings, SignInError};
use frontdesk_core::login_attempts::{self as attempts, LockoutPolicy, Reason};
use frontdesk_core::schema::{login_attempts, users};
use frontdesk_core::sessions::ClientInfo;
use frontdesk_core::time::now;
use frontdesk_core::{passwords, Actor};

use crate::both;
use crate::host_app;
use crate::support::TestDb;
use crate::web_app::{block_on, builder, count, user_with_password, Browser, PASSWORD};

fn reasons(db: &TestDb) -> Vec<(String, bool, Option<i64>)> {
    let mut conn = db.conn();
    login_attempts::table
        .order(login_attempts::id)
        .select((
            login_attempts::reason,
            login_attempts::success,
            login_attempts::user_id,
        ))
        .load(&mut *conn)
        .expect("attempts")
}

fn refused(r: Result<auth::SignedIn, SignInError>) -> Reason {
    match r {
        Err(SignInError::Refused { reason, .. }) => reason,
        Err(SignInError::Other(e)) => panic!("unexpected error {e}"),
        Err(e) => panic!("unexpected {e:?}"),
        Ok(_) => panic!("signed in"),
    }
}

both!(every_attempt_is_recorded_with_its_reason, |db| {
    let ann = user_with_password(db, "ann@example.com");
    let sue = user_with_password(db, "sue@example.com");
    let sso = user_with_password(db, "sso@example.com");
    let mut conn = db.conn();
    frontdesk_core::users::suspend(&mut conn, &Actor::system(), sue.id, "fraud").expect("suspend");
    frontdesk_core::users::set_local_login(&mut conn, &Actor::system(), sso.id, false)
        .expect("sso");
    let s = AuthSettings::default();
    let c = ClientInfo {
        ip: Some("192.0.2.1".into()),
        user_agent: Some("curl".into()),
    };

    let ok =
        auth::sign_in(&mut conn, " Ann@Example.com ", PASSWORD, &c, &s, None).expect("sign in");
    assert_eq!(ok.user.id, ann.id);
    assert!(ok.user.last_login_at.is_some());
    assert_eq!(
        refused(auth::sign_in(
            &mut conn,
            "nobody@example.com",
            PASSWORD,
            &c,
            &s,
            None
        )),
        Reason::UnknownEmail
    );
    assert_eq!(
        refused(auth::sign_in(
            &mut conn,
            "ann@example.com",
            "wrong password",
            &c,
            &s,
            None
        )),
        Reason::BadPassword
    );
    assert_eq!(
        refused(auth::sign_in(
            &mut conn,
            "sue@example.com",
            PASSWORD,
            &c,
            &s,
            None
        )),
        Reason::Suspended
    );
    assert_eq!(
        refused(auth::sign_in(
            &mut conn,
            "sue@example.com",
            "wrong password",
            &c,
            &s,
            None
        )),
        Reason::BadPassword
    );
    assert_eq!(
        refused(auth::sign_in(
            &mut conn,
            "sso@example.com",
            PASSWORD,
            &c,
            &s,
            None
        )),
        Reason::LocalLoginDisabled
    );
    assert_eq!(
        refused(auth::sign_in(
            &mut conn,
            "not an email",
            PASSWORD,
            &c,
            &s,
            None
        )),
        Reason::UnknownEmail
    );
    let long = "p".repeat(129);
    assert_eq!(
        refused(auth::sign_in(
            &mut conn,
            "ann@example.com",
            &long,
            &c,
            &s,
            None
        )),
        Reason::BadPassword
    );

    let got = reasons(db);
    let want = [
        ("success", true, Some(ann.id)),
        ("unknown_email", false, None),
        ("bad_password", false, Some(ann.id)),
        ("suspended", false, Some(sue.id)),
        ("bad_password", false, Some(sue.id)),
        ("local_login_disabled", false, Some(sso.id)),
        ("unknown_email", false, None),
        ("bad_password", false, Some(ann.id)),
    ];
    assert_eq!(
        got,
        want.iter()
            .map(|(r, s, u)| ((*r).to_owned(), *s, *u))
            .collect::<Vec<_>>()
    );
    let (ip, ua, email): (Option<String>, Option<String>, String) = login_attempts::table
        .order(login_attempts::id)
        .select((
            login_attempts::ip,
            login_attempts::user_agent,
            login_attempts::email,
        ))
        .first(&mut *conn)
        .expect("row");
    assert_eq!(
        (ip.as_deref(), ua.as_deref(), email.as_str()),
        (Some("192.0.2.1"), Some("curl"), "ann@example.com")
    );
});

both!(rehash_on_login_when_parameters_change, |db| {
    let ann = user_with_password(db, "ann@example.com");
    let mut conn = db.conn();
    let weak = passwords::hash_with(PASSWORD, argon2_params(4096, 1)).expect("hash");
    diesel::update(users::table.find(ann.id))
        .set(users::password_hash.eq(Some(&weak)))
        .execute(&mut *conn)
        .expect("set");
    let ok = auth::sign_in(
        &mut conn,
        "ann@example.com",
        PASSWORD,
        &ClientInfo::default(),
        &AuthSettings::default(),
        None,
    )
    .expect("sign in");
    let stored = ok.user.password_hash.expect("hash");
    assert_ne!(stored, weak);
    assert!(
        stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{stored}"
    );
    assert!(passwords::verify(PASSWORD, Some(&stored)));
});

fn argon2_params(m: u32, t: u32) -> argon2::Params {
    argon2::Params::new(m, t, 1, None).expect("params")
}

both!(lockout_grows_clears_and_resets, |db| {
    let ann = user_with_password(db, "ann@example.com");
    let mut conn = db.conn();
    let policy = LockoutPolicy {
        window: Duration::minutes(15),
        account_threshold: 3,
        ip_threshold: 5,
        base_delay: Duration::seconds(30),
        max_delay: Duration::minutes(5),
    };
    let s = AuthSettings {
        lockout: policy,
        ..AuthSettings::default()
    };
    let c = ClientInfo {
        ip: Some("198.51.100.7".into()),
        user_agent: None,
    };
    for _ in 0..3 {
        assert_eq!(
            refused(auth::sign_in(
                &mut conn,
                "ann@example.com",
                "bad password",
                &c,
                &s,
                None
            )),
            Reason::BadPassword
        );
    }
    // Locked now: the right password is refused too, and recorded as such.
    assert_eq!(
        refused(auth::sign_in(
            &mut conn,
            "ann@example.com",
            PASSWORD,
            &c,
            &s,
            None
        )),
        Reason::LockedOut
    );
    let lock = attempts::lockout(&mut conn, "ANN@example.com", None, &policy)
        .expect("lockout")
        .expect("locked");
    assert!(!lock.by_ip);
    let t = now();
    assert!(lock.until > t + Duration::seconds(25) && lock.until <= t + Duration::seconds(30));
    // After the delay it opens again; locked_out rows do not count.
    assert!(attempts::lockout_at(
        &mut conn,
        "ann@example.com",
        None,
        &policy,
        t + Duration::seconds(31)
    )
    .expect("l")
    .is_none());

    // The delay doubles with each further failure, up to the cap.
    assert_eq!(policy.delay_for(3, 3), Some(Duration::seconds(30)));
    assert_eq!(policy.delay_for(4, 3), Some(Duration::seconds(60)));
    assert_eq!(policy.delay_for(5, 3), Some(Duration::seconds(120)));
    assert_eq!(policy.delay_for(40, 3), Some(Duration::minutes(5)));
    assert_eq!(policy.delay_for(2, 3), None);
    attempts::record(
        &mut conn,
        Some(ann.id),
        "ann@example.com",
        &c,
        Reason::BadPassword,
    )
    .expect("record");
    let lock = attempts::lockout(&mut conn, "ann@example.com", None, &policy)
        .expect("lockout")
        .expect("locked");
    assert!(
        lock.until > now() + Duration::seconds(55),
        "second lock is longer"
    );

    // An admin clears it; nothing before counts any more.
    attempts::clear_lockout(&mut conn, &Actor::system(), ann.id).expect("clear");
    assert!(
        attempts::lockout(&mut conn, "ann@example.com", None, &policy)
            .expect("lockout")
            .is_none()
    );
    let ok = auth::sign_in(&mut conn, "ann@example.com", PASSWORD, &c, &s, None);
    assert!(ok.is_ok(), "sign-in works after clearing");
    // A success starts the count afresh too.
    for _ in 0..2 {
        refused(auth::sign_in(
            &mut conn,
            "ann@example.com",
            "bad password",
            &c,
            &s,
            None,
        ));
    }
    assert!(
        attempts::lockout(&mut conn, "ann@example.com", None, &policy)
            .expect("lockout")
            .is_none()
    );

    // Old failures fall out of the window.
    let later = now() + Duration::minutes(16);
    assert!(
        attempts::lockout_at(&mut conn, "ann@example.com", None, &policy, later)
            .expect("l")
            .is_none()
    );

    // An org-less member cannot clear anyone's lockout.
    let nobody = Actor::user(ann.id + 1000, None, Vec::new());
    assert!(attempts::clear_lockout(&mut conn, &nobody, ann.id).is_err());
});

both!(lockout_per_ip_spans_emails, |db| {
    user_with_password(db, "ann@example.com");
    let mut conn = db.conn();
    let policy = LockoutPolicy {
        account_threshold: 100,
        ip_threshold: 4,
        ..LockoutPolicy::default()
    };
    let s = AuthSettings {
        lockout: policy,
        ..AuthSettings::default()
    };
    let attacker = ClientInfo {
        ip: Some("203.0.113.9".into()),
        user_agent: None,
    };
    for i in 0..4 {
        let email = format!("guess{i}@example.com");
        assert_eq!(
            refused(auth::sign_in(
                &mut conn,
                &email,
                "whatever1",
                &attacker,
                &s,
                None
            )),
            Reason::UnknownEmail
        );
    }
    assert_eq!(
        refused(auth::sign_in(
            &mut conn,
            "ann@example.com",
            PASSWORD,
            &attacker,
            &s,
            None
        )),
        Reason::LockedOut
    );
    let lock = attempts::lockout(&mut conn, "x@example.com", Some("203.0.113.9"), &policy)
        .expect("l")
        .expect("locked");
    assert!(lock.by_ip);
    // Ann from her own address is not locked out.
    let home = ClientInfo {
        ip: Some("192.0.2.50".into()),
        user_agent: None,
    };
    assert!(auth::sign_in(&mut conn, "ann@example.com", PASSWORD, &home, &s, None).is_ok());
    // Staff can lift an IP lockout; an empty IP is a clear error.
    attempts::clear_ip_lockout(&mut conn, &Actor::system(), "203.0.113.9").expect("clear");
    assert!(
        attempts::lockout(&mut conn, "x@example.com", Some("203.0.113.9"), &policy)
            .expect("l")
            .is_none()
    );
});

async fn lockout_in_the_browser(db: &TestDb) {
    let policy = LockoutPolicy {
        account_threshold: 3,
        ..LockoutPolicy::default()
    };
    let fd = builder(db).lockout(policy).build().expect("frontdesk");
    let app = host_app!(fd);
    user_with_password(db, "ann@example.com");
    let mut b = Browser::new();
    let mut bodies = Vec::new();
    for _ in 0..3 {
        let res = b.login(&app, "ann@example.com", "wrong password").await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED);
        bodies.push(res.body);
    }
    // Locked: the right password gets exactly the page a wrong one gets.
    let res = b.login(&app, "ann@example.com", PASSWORD).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    assert_eq!(res.body, bodies[0]);
    assert!(res.body.contains(frontdesk::web::login::GENERIC_FAILURE));
    assert!(b.session().is_none());
    assert_eq!(count(db, "sessions"), 0);
    let last = reasons(db).pop().expect("row");
    assert_eq!(last.0, "locked_out");

    // The lockout does not block a password reset.
    let page = b.get(&app, "/auth/password-reset").await;
    let csrf = page.csrf();
    let res = b
        .post(
            &app,
            "/auth/password-reset",
            &[("email", "ann@example.com"), ("csrf_token", &csrf)],
        )
        .await;
    assert_eq!(res.status, StatusCode::OK);
    fd.state().deferred_settled().await;
    assert_eq!(count(db, "outbox"), 1);

    // The client IP recorded is the peer address, not a spoofable header.
    let page = b.get(&app, "/auth/login").await;
    let csrf = page.csrf();
    let req = TestRequest::post()
        .uri("/auth/login")
        .peer_addr("192.0.2.77:5000".parse().expect("addr"))
        .insert_header(("x-forwarded-for", "1.2.3.4"))
        .insert_header(("content-type", "application/x-www-form-urlencoded"))
        .set_payload(format!(
            "email=zed%40example.com&password=whatever1&csrf_token={csrf}"
        ));
    b.send(&app, req).await;
    let mut conn = db.conn();
    let ip: Option<String> = login_attempts::table
        .order(login_attempts::id.desc())
        .select(login_attempts::ip)
        .first(&mut *conn)
        .expect("row");
    assert_eq!(ip.as_deref(), Some("192.0.2.77"));
}
both!(lockout_answers_with_the_generic_message, |db| block_on(
    lockout_in_the_browser(db)
));

/// Hooks that write down what they were told.
#[derive(Clone, Default)]
struct Recorder(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

impl frontdesk::Hooks for Recorder {
    fn user_signed_in(&self, user: &frontdesk_core::users::User) {
        if let Ok(mut v) = self.0.lock() {
            v.push(format!("signed_in {}", user.email));
        }
    }
    fn login_failed(&self, email: &str, _user_id: Option<i64>, reason: Reason) {
        if let Ok(mut v) = self.0.lock() {
            v.push(format!("failed {email} {reason}"));
        }
    }
}

async fn hooks_are_called(db: &TestDb) {
    let seen = Recorder::default();
    let fd = builder(db).hooks(seen.clone()).build().expect("frontdesk");
    let app = host_app!(fd);
    user_with_password(db, "ann@example.com");
    let mut b = Browser::new();
    b.login(&app, "ann@example.com", "wrong password").await;
    b.login(&app, "zed@example.com", "wrong password").await;
    b.login(&app, "ann@example.com", PASSWORD).await;
    let got = seen.0.lock().map(|v| v.clone()).unwrap_or_default();
    assert_eq!(
        got,
        vec![
            "failed ann@example.com bad_password".to_owned(),
            "failed zed@example.com unknown_email".to_owned(),
            "signed_in ann@example.com".to_owned(),
        ]
    );
}
both!(hooks_hear_sign_ins_and_failures, |db| block_on(
    hooks_are_called(db)
));

/// Most argon2 runs at once, for a given cap.
async fn peak_hashing(db: &TestDb, cap: usize) -> usize {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let fd = builder(db)
        .max_concurrent_hashes(cap)
        .build()
        .expect("frontdesk");
    let running = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let mut jobs = Vec::new();
    for _ in 0..4 {
        let (state, running, peak) = (fd.state().clone(), running.clone(), peak.clone());
        jobs.push(actix_web::rt::spawn(async move {
            state
                .hashing(move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(std::time::Duration::from_millis(60));
                    running.fetch_sub(1, Ordering::SeqCst);
                })
                .await
        }));
    }
    for j in jobs {
        assert!(matches!(j.await, Ok(Ok(()))));
    }
    peak.load(Ordering::SeqCst)
}

#[test]
fn argon2_runs_are_capped_by_the_state_semaphore() {
    let db = TestDb::sqlite();
    block_on(async {
        assert_eq!(peak_hashing(&db, 1).await, 1);
        assert!(
            peak_hashing(&db, 3).await > 1,
            "the cap is what limits, not the pool"
        );
    });
    assert!(builder(&db).max_concurrent_hashes(0).build().is_err());
}

both!(unknown_email_costs_a_password_verification, |db| {
    use frontdesk_core::passwords;
    user_with_password(db, "ann@example.com");
    let sso = user_with_password(db, "sso@example.com");
    let mut conn = db.conn();
    frontdesk_core::users::set_local_login(&mut conn, &Actor::system(), sso.id, false)
        .expect("sso");
    let s = AuthSettings::default();
    let c = ClientInfo::default();
    // Counted, not timed: every refusal runs exactly one argon2 verification,
    // whichever the reason, so the answer's time cannot tell them apart.
    let mut argon2_runs = |email: &str, password: &str| {
        let before = passwords::argon2_runs_on_this_thread();
        refused(auth::sign_in(&mut conn, email, password, &c, &s, None));
        passwords::argon2_runs_on_this_thread() - before
    };
    assert_eq!(argon2_runs("ann@example.com", "wrong password"), 1, "known");
    assert_eq!(
        argon2_runs("zed@example.com", "wrong password"),
        1,
        "unknown"
    );
    assert_eq!(
        argon2_runs("sso@example.com", "wrong password"),
        1,
        "local login disabled"
    );
    assert_eq!(
        argon2_runs("not an email", "wrong password"),
        1,
        "malformed email"
    );
    let long = "x".repeat(10_000);
    assert_eq!(
        argon2_runs("zed@example.com", &long),
        1,
        "over-long password"
    );
    // And the dummy hash costs what a real one does: same algorithm and
    // parameters as a fresh hash.
    assert!(!passwords::needs_rehash(passwords::dummy_hash()));
});

async fn busy_answer(db: &TestDb) {
    let fd = builder(db)
        .max_concurrent_hashes(1)
        .hash_queue_timeout(std::time::Duration::from_millis(100))
        .build()
        .expect("frontdesk");
    let app = host_app!(fd);
    user_with_password(db, "ann@example.com");
    let mut b = Browser::new();
    let csrf = b.get(&app, "/auth/login").await.csrf();
    // Hold the only argon2 slot, as a flood of logins would.
    let permit = fd.state().hash_permit().await.expect("slot");
    let form = [
        ("email", "ann@example.com"),
        ("password", PASSWORD),
        ("csrf_token", csrf.as_str()),
    ];
    let res = b.post(&app, "/auth/login", &form).await;
    assert_eq!(res.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        (count(db, "sessions"), count(db, "login_attempts")),
        (0, 0),
        "nothing recorded"
    );
    drop(permit);
    let res = b.post(&app, "/auth/login", &form).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
}
both!(a_full_argon2_queue_answers_busy, |db| block_on(
    busy_answer(db)
));

/// Posts a failed sign-in from `peer` with the given `X-Forwarded-For`.
async fn forwarded_login<S, B>(app: &S, b: &mut Browser, email: &str, peer: &str, xff: &str)
where
    S: actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse<B>,
        Error = actix_web::Error,
    >,
    B: actix_web::body::MessageBody,
{
    let page = b.get(app, "/auth/login").await;
    let csrf = page.csrf();
    let req = TestRequest::post()
        .uri("/auth/login")
        .peer_addr(peer.parse().expect("addr"))
        .insert_header(("x-forwarded-for", xff))
        .insert_header(("content-type", "application/x-www-form-urlencoded"))
        .set_payload(format!(
            "email={}&password=wrong-password&csrf_token={csrf}",
            email.replace('@', "%40")
        ));
    b.send(app, req).await;
}

fn last_attempt(db: &TestDb) -> (Option<String>, String) {
    let mut conn = db.conn();
    login_attempts::table
        .order(login_attempts::id.desc())
        .select((login_attempts::ip, login_attempts::reason))
        .first(&mut *conn)
        .expect("row")
}

// Behind trusted proxies the client is read from the right of
// X-Forwarded-For: whatever the client puts in the header itself cannot
// change the address recorded, nor escape the per-IP lockout.
both!(forwarded_for_is_read_from_the_right, |db| block_on(async {
    let policy = LockoutPolicy {
        ip_threshold: 3,
        account_threshold: 1000,
        ..LockoutPolicy::default()
    };
    let fd = builder(db)
        .lockout(policy)
        .trusted_proxies(frontdesk::TrustedProxies::Hops(1))
        .build()
        .expect("frontdesk");
    let app = host_app!(fd);
    let mut b = Browser::new();
    for i in 0..3 {
        // A new forged prefix each time, as an attacker would rotate it.
        let xff = format!("203.0.113.{i}, 198.51.100.7");
        forwarded_login(
            &app,
            &mut b,
            &format!("u{i}@example.com"),
            "10.0.0.2:4000",
            &xff,
        )
        .await;
        assert_eq!(last_attempt(db).0.as_deref(), Some("198.51.100.7"));
    }
    forwarded_login(
        &app,
        &mut b,
        "u9@example.com",
        "10.0.0.2:4000",
        "192.0.2.200, 198.51.100.7",
    )
    .await;
    assert_eq!(
        last_attempt(db),
        (Some("198.51.100.7".into()), "locked_out".into()),
        "the forged prefix did not escape the IP lockout"
    );
    // Another client behind the same proxy is not locked out.
    forwarded_login(
        &app,
        &mut b,
        "u1@example.com",
        "10.0.0.2:4000",
        "198.51.100.8",
    )
    .await;
    assert_eq!(
        last_attempt(db),
        (Some("198.51.100.8".into()), "unknown_email".into())
    );

    // Trusted networks: a peer outside them is the client, whatever it says.
    let fd = builder(db)
        .trusted_proxies(frontdesk::TrustedProxies::networks(["10.0.0.0/8"]).expect("cidr"))
        .build()
        .expect("frontdesk");
    let app = host_app!(fd);
    forwarded_login(
        &app,
        &mut b,
        "v@example.com",
        "192.0.2.50:4000",
        "198.51.100.9",
    )
    .await;
    assert_eq!(last_attempt(db).0.as_deref(), Some("192.0.2.50"));
    forwarded_login(
        &app,
        &mut b,
        "v@example.com",
        "10.0.0.2:4000",
        "6.6.6.6, 198.51.100.9, 10.9.9.9",
    )
    .await;
    assert_eq!(last_attempt(db).0.as_deref(), Some("198.51.100.9"));
}));
