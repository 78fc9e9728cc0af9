//! Password reset links: mailed through the outbox to the stored address,
//! never consumed by opening them, single use, expiring, and killed by a
//! password change or a newer link. Using one ends every session.

use actix_web::http::StatusCode;
use chrono::Duration;
use diesel::prelude::*;
use frontdesk_core::outbox::NewMail;
use frontdesk_core::schema::{outbox, password_resets};
use frontdesk_core::time::now;
use frontdesk_core::{auth, password_resets as resets, passwords, Actor};
use std::time::Duration as StdDuration;

use frontdesk::Frontdesk;

use crate::both;
use crate::host_app;
use crate::support::TestDb;
use crate::web_app::{block_on, count, frontdesk, user_with_password, Browser, Page, PASSWORD};

/// The reset link in the newest queued mail, as a path.
fn mailed_link(db: &TestDb) -> String {
    let mut conn = db.conn();
    let (to, text, html): (String, String, Option<String>) = outbox::table
        .order(outbox::id.desc())
        .select((outbox::recipient, outbox::text_body, outbox::html_body))
        .first(&mut *conn)
        .expect("a queued mail");
    assert_eq!(to, "ann@example.com");
    let start = text
        .find("http://app.test/auth/password-reset/")
        .expect("link built from the base URL");
    let link: String = text[start..]
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned();
    // Tera escapes `/` in HTML; the token itself is plain base64url.
    let token = link.rsplit('/').next().unwrap_or_default();
    assert!(html.unwrap_or_default().contains(token));
    link.trim_start_matches("http://app.test").to_owned()
}

/// Asks for a reset link on the public form, then waits for the work that
/// runs after the answer (looking the address up, queuing the mail).
async fn request(b: &mut Browser, app: &impl TestApp, fd: &Frontdesk, email: &str) -> Page {
    let csrf = b.get(app, "/auth/password-reset").await.csrf();
    let page = b
        .post(
            app,
            "/auth/password-reset",
            &[("email", email), ("csrf_token", &csrf)],
        )
        .await;
    fd.state().deferred_settled().await;
    page
}

// A shorthand for the service type `host_app!` builds.
pub trait TestApp:
    actix_web::dev::Service<
    actix_http::Request,
    Response = actix_web::dev::ServiceResponse,
    Error = actix_web::Error,
>
{
}
impl<S> TestApp for S where
    S: actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse,
        Error = actix_web::Error,
    >
{
}

async fn reset_flow(db: &TestDb) {
    let fd = frontdesk(db);
    let app = host_app!(fd);
    user_with_password(db, "ann@example.com");
    let mut signed_in = Browser::new();
    signed_in.login(&app, "ann@example.com", PASSWORD).await;

    let mut b = Browser::new();
    let res = request(&mut b, &app, &fd, "  ANN@example.com ").await;
    assert_eq!(res.status, StatusCode::OK);
    assert!(res.body.contains("Check your mail"));
    assert_eq!((count(db, "outbox"), count(db, "password_resets")), (1, 1));
    let link = mailed_link(db);
    let token = link.rsplit('/').next().unwrap_or_default().to_owned();
    {
        let mut conn = db.conn();
        let stored: String = password_resets::table
            .select(password_resets::token_hash)
            .first(&mut *conn)
            .expect("row");
        assert_ne!(stored, token, "only the digest is stored");
    }

    // Opening the link (twice, as a mail scanner would) uses nothing up.
    for _ in 0..2 {
        let page = b.get(&app, &link).await;
        assert_eq!(page.status, StatusCode::OK);
        assert_eq!(page.header("referrer-policy"), Some("no-referrer"));
        assert!(page.body.contains("Choose a new password"));
    }
    let csrf = b.get(&app, &link).await.csrf();

    // Bad input: mismatch, too short, too long; each a clear error, nothing used.
    for (p1, p2, msg) in [
        ("new password 1", "new password 2", "do not match"),
        ("short", "short", "at least 8"),
        (&*"x".repeat(129), &*"x".repeat(129), "too long"),
    ] {
        let res = b
            .post(
                &app,
                &link,
                &[
                    ("password", p1),
                    ("password_confirm", p2),
                    ("csrf_token", &csrf),
                ],
            )
            .await;
        assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(res.body.contains(msg), "{msg}: {}", res.body);
    }
    let res = b
        .post(
            &app,
            &link,
            &[
                ("password", "brand new secret"),
                ("password_confirm", "brand new secret"),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN, "no CSRF token");
    assert_eq!(
        signed_in.get(&app, "/notes").await.status,
        StatusCode::OK,
        "nothing changed yet"
    );

    let new = "brand new secret";
    let res = b
        .post(
            &app,
            &link,
            &[
                ("password", new),
                ("password_confirm", new),
                ("csrf_token", &csrf),
            ],
        )
        .await;
    assert_eq!(
        (res.status, res.location()),
        (StatusCode::SEE_OTHER, "/auth/login?reset=done")
    );
    assert_eq!(res.header("referrer-policy"), Some("no-referrer"));
    // Every session ended; the old password is dead, the new one works.
    assert_eq!(
        signed_in.get(&app, "/notes").await.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        Browser::new()
            .login(&app, "ann@example.com", PASSWORD)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        Browser::new()
            .login(&app, "ann@example.com", new)
            .await
            .status,
        StatusCode::SEE_OTHER
    );

    // Single use: the link is dead, by GET and by POST.
    assert_eq!(b.get(&app, &link).await.status, StatusCode::BAD_REQUEST);
    let res = b
        .post(
            &app,
            &link,
            &[
                ("password", "third password"),
                ("password_confirm", "third password"),
                ("csrf_token", &csrf),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        Browser::new()
            .login(&app, "ann@example.com", new)
            .await
            .status,
        StatusCode::SEE_OTHER
    );

    // Unknown and suspended addresses get the same page and no mail.
    let before = count(db, "outbox");
    let res = request(&mut b, &app, &fd, "zed@example.com").await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(count(db, "outbox"), before);
}
both!(reset_link_is_checked_on_get_used_once_on_post, |db| {
    block_on(reset_flow(db))
});

fn mail(
    user: &frontdesk_core::users::User,
    token: &frontdesk_core::tokens::SecretToken,
) -> NewMail {
    NewMail {
        kind: "password_reset".into(),
        // Whatever the renderer says, the mail goes to the stored address.
        recipient: "attacker@evil.example".into(),
        subject: "reset".into(),
        text_body: format!("{} {}", user.email, token.expose()),
        html_body: None,
        invitation_id: None,
    }
}

fn request_token(db: &TestDb) -> String {
    let mut conn = db.conn();
    let mut raw = String::new();
    let sent = resets::request(
        &mut conn,
        "ann@example.com",
        Duration::hours(1),
        |u, t, _| {
            raw = t.expose().to_owned();
            Ok(mail(u, t))
        },
    )
    .expect("request");
    assert!(sent);
    raw
}

both!(expiry_newer_links_and_password_changes_kill_tokens, |db| {
    let ann = user_with_password(db, "ann@example.com");
    let hash = passwords::hash("another password").expect("hash");

    // Mail goes to the stored address.
    let first = request_token(db);
    let mut conn = db.conn();
    let to: String = outbox::table
        .select(outbox::recipient)
        .first(&mut *conn)
        .expect("mail");
    assert_eq!(to, "ann@example.com");

    // A newer link kills the older one.
    let second = request_token(db);
    assert!(resets::check(&mut conn, &first).expect("check").is_none());
    assert!(resets::check(&mut conn, &second).expect("check").is_some());

    // Expired: refused, nothing changed.
    diesel::update(password_resets::table)
        .set(password_resets::expires_at.eq(now() - Duration::seconds(1)))
        .execute(&mut *conn)
        .expect("expire");
    assert!(resets::check(&mut conn, &second).expect("check").is_none());
    assert!(resets::complete(&mut conn, &second, &hash).is_err());
    assert!(auth::verify_password(
        &frontdesk_core::users::get(&mut conn, ann.id).expect("user"),
        PASSWORD
    ));

    // A password change kills pending links.
    let third = request_token(db);
    auth::change_password(&mut conn, ann.id, &hash, None).expect("change");
    assert!(resets::complete(
        &mut conn,
        &third,
        &passwords::hash("yet another one").expect("hash")
    )
    .is_err());
    assert!(auth::verify_password(
        &frontdesk_core::users::get(&mut conn, ann.id).expect("user"),
        "another password"
    ));

    // Garbage tokens are simply invalid.
    assert!(resets::check(&mut conn, "").expect("check").is_none());
    assert!(resets::complete(&mut conn, "../../etc", &hash).is_err());
    // At most five links an hour.
    for _ in 0..2 {
        request_token(db);
    }
    let sent = resets::request(
        &mut conn,
        "ann@example.com",
        Duration::hours(1),
        |u, t, _| Ok(mail(u, t)),
    )
    .expect("request");
    assert!(!sent, "the sixth link in an hour is not sent");
});

both!(admins_send_reset_mails_within_their_scope, |db| {
    use frontdesk_core::{organizations, CoreError, OrgRole};
    let sys = Actor::system();
    let ann = user_with_password(db, "ann@example.com");
    let boss = user_with_password(db, "boss@example.com");
    let fd = crate::web_app::frontdesk(db);
    let mut conn = db.conn();
    let acme = organizations::create(&mut conn, &sys, "acme", "Acme", "").expect("org");
    organizations::add_member(&mut conn, &sys, acme.id, boss.id, OrgRole::Admin).expect("admin");
    let boss_actor = frontdesk_core::users::actor_for(&mut conn, boss.id, None).expect("actor");
    let state = fd.state().clone();
    let render = |u: &frontdesk_core::users::User, t: &frontdesk_core::tokens::SecretToken, e| {
        frontdesk::web::password_resets::reset_mail(&state, u, t, e)
    };

    // Ann is not in the admin's organization: not found, nothing queued.
    let err = resets::request_for_user(&mut conn, &boss_actor, ann.id, Duration::hours(1), render);
    assert!(matches!(err, Err(CoreError::NotFound(_))));
    assert_eq!(count(db, "outbox"), 0);
    organizations::add_member(&mut conn, &sys, acme.id, ann.id, OrgRole::Member).expect("member");
    let boss_actor = frontdesk_core::users::actor_for(&mut conn, boss.id, None).expect("actor");
    resets::request_for_user(&mut conn, &boss_actor, ann.id, Duration::hours(1), render)
        .expect("sent");
    drop(conn);
    let link = mailed_link(db);
    let mut conn = db.conn();
    let token = link.rsplit('/').next().unwrap_or_default().to_owned();
    assert!(resets::check(&mut conn, &token).expect("check").is_some());
    let (events, _) = frontdesk_core::audit::list(
        &mut conn,
        &frontdesk_core::audit::AuditFilter {
            action: Some("user.password_reset.send".into()),
            ..Default::default()
        },
        1,
        10,
    )
    .expect("audit");
    assert_eq!(events.len(), 1);

    // A suspended user gets no link, and the admin is told why.
    frontdesk_core::users::suspend(&mut conn, &sys, ann.id, "spam").expect("suspend");
    let err = resets::request_for_user(&mut conn, &sys, ann.id, Duration::hours(1), render);
    assert!(matches!(err, Err(CoreError::Invalid { field: "user", .. })));
    assert_eq!(count(db, "outbox"), 1);
});

/// Waits (up to `limit`) until the memory transport holds `n` mails.
async fn delivered(
    memory: &frontdesk_mail::MemoryTransport,
    n: usize,
    limit: StdDuration,
) -> usize {
    let deadline = std::time::Instant::now() + limit;
    loop {
        let got = memory.mails().len();
        if got >= n || std::time::Instant::now() >= deadline {
            return got;
        }
        actix_web::rt::time::sleep(StdDuration::from_millis(20)).await;
    }
}

both!(reset_mails_wake_the_worker, |db| {
    block_on(async move {
        let (transport, memory) = frontdesk_mail::Transport::memory();
        let mut mail =
            frontdesk_mail::MailConfig::new("Notes <no-reply@notes.example>").expect("mail config");
        // Far longer than the test may wait: only a wake-up delivers in time.
        mail.poll_interval = StdDuration::from_secs(3600);
        let fd = crate::web_app::builder(db)
            .mail_transport(transport)
            .mail_config(mail)
            .build()
            .expect("frontdesk");
        user_with_password(db, "ann@example.com");
        let staff = crate::admin_fixture::user(
            db,
            "staff@example.com",
            Some(frontdesk_core::StaffRole::Admin),
            None,
        );
        // A mail already queued when the worker starts: once it is delivered,
        // the first round is over and the worker sleeps for its poll interval.
        {
            let mut conn = db.conn();
            frontdesk_core::outbox::enqueue(
                &mut conn,
                &NewMail {
                    kind: "test".into(),
                    recipient: "first@example.com".into(),
                    subject: "first".into(),
                    text_body: "first".into(),
                    html_body: None,
                    invitation_id: None,
                },
            )
            .expect("queue");
        }
        let worker = fd.start_mailer().expect("worker");
        let app = host_app!(fd);
        assert_eq!(delivered(&memory, 1, StdDuration::from_secs(30)).await, 1);

        // The public form: the reset mail goes out at once.
        let mut b = Browser::new();
        let res = request(&mut b, &app, &fd, "ann@example.com").await;
        assert_eq!(res.status, StatusCode::OK);
        assert_eq!(
            delivered(&memory, 2, StdDuration::from_secs(30)).await,
            2,
            "the reset mail is delivered without waiting for the next poll"
        );
        let reset = &memory.mails()[1];
        assert_eq!(reset.to, vec!["ann@example.com".to_owned()]);
        assert!(reset.raw.contains("Reset your Notes password"));

        // An unknown address queues nothing (and the same page answers).
        let res = request(&mut b, &app, &fd, "nobody@example.com").await;
        assert_eq!(res.status, StatusCode::OK);
        assert_eq!(count(db, "outbox"), 2);

        // The admin's "send password reset" on the user's page, likewise.
        let ann = frontdesk_core::users::find_by_email(&mut db.conn(), "ann@example.com")
            .expect("query")
            .expect("ann");
        let (mut admin, csrf) = crate::admin_fixture::signed_in(db, Some(&staff));
        let page = admin
            .post(
                &app,
                &format!("/admin/users/{}/password-reset", ann.id),
                &[("csrf_token", &csrf)],
            )
            .await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
        assert_eq!(
            delivered(&memory, 3, StdDuration::from_secs(30)).await,
            3,
            "the admin's reset mail is delivered without waiting for the next poll"
        );
        assert_eq!(memory.mails()[2].to, vec!["ann@example.com".to_owned()]);
        // Shutting down waits for the round in progress to record its outcomes.
        worker.shutdown().await;
        let statuses: Vec<String> = outbox::table
            .select(outbox::status)
            .load(&mut db.conn())
            .expect("statuses");
        assert_eq!(statuses, vec!["sent"; 3]);
    });
});

/// Whether the address has an account must not show in how long the answer
/// takes: neither path may touch the database before answering. Every pooled
/// connection is held while both requests are answered; any lookup, token or
/// queued mail before the answer would wait for a connection and fail (503).
async fn no_work_before_the_answer(db: &TestDb) {
    let fd = frontdesk(db);
    let app = host_app!(fd);
    user_with_password(db, "ann@example.com");
    let mut b = Browser::new();
    let csrf = b.get(&app, "/auth/password-reset").await.csrf();
    let held: Vec<_> = (0..fd.pool().max_size())
        .map(|_| fd.pool().get().expect("connection"))
        .collect();
    let mut answers = Vec::new();
    for email in ["ann@example.com", "nobody@example.com"] {
        let page = b
            .post(
                &app,
                "/auth/password-reset",
                &[("email", email), ("csrf_token", &csrf)],
            )
            .await;
        answers.push((page.status, page.body));
    }
    assert_eq!(answers[0].0, StatusCode::OK, "{}", answers[0].1);
    assert_eq!(answers[0], answers[1], "the same page for both addresses");
    // Once connections are free again, the work done after the answers
    // queues exactly one mail, to the account's stored address.
    drop(held);
    fd.state().deferred_settled().await;
    assert_eq!((count(db, "outbox"), count(db, "password_resets")), (1, 1));
    let mut conn = db.conn();
    let to: String = outbox::table
        .select(outbox::recipient)
        .first(&mut *conn)
        .expect("mail");
    assert_eq!(to, "ann@example.com");
}
both!(reset_requests_do_no_work_before_answering, |db| block_on(
    no_work_before_the_answer(db)
));

/// ann asks for a link, opens the mailed one and sets `new`.
async fn reset_by_mail(
    b: &mut Browser,
    app: &impl TestApp,
    fd: &Frontdesk,
    db: &TestDb,
    new: &str,
) -> Page {
    request(b, app, fd, "ann@example.com").await;
    let link = mailed_link(db);
    let csrf = b.get(app, &link).await.csrf();
    b.post(
        app,
        &link,
        &[
            ("password", new),
            ("password_confirm", new),
            ("csrf_token", &csrf),
        ],
    )
    .await
}

// A completed reset proves control of the mailbox, so it lifts the account's
// lockout: the new password works at once, not after the delay runs out.
async fn reset_lifts_the_lockout(db: &TestDb) {
    let policy = frontdesk_core::login_attempts::LockoutPolicy {
        account_threshold: 3,
        ..Default::default()
    };
    let fd = crate::web_app::builder(db)
        .lockout(policy)
        .build()
        .expect("frontdesk");
    let app = host_app!(fd);
    user_with_password(db, "ann@example.com");
    let mut b = Browser::new();
    for _ in 0..3 {
        b.login(&app, "ann@example.com", "wrong password").await;
    }
    let locked = b.login(&app, "ann@example.com", PASSWORD).await;
    assert_eq!(locked.status, StatusCode::UNAUTHORIZED, "locked out");
    let new = "a fresh passphrase";
    let res = reset_by_mail(&mut b, &app, &fd, db, new).await;
    assert!(res.status.is_redirection(), "{}", res.body);
    let res = Browser::new().login(&app, "ann@example.com", new).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
}
both!(a_completed_reset_lifts_the_lockout, |db| block_on(
    reset_lifts_the_lockout(db)
));

/// The audit actions recorded against one user, in order.
fn actions_on(db: &TestDb, user_id: i64) -> Vec<(String, String)> {
    use frontdesk_core::schema::audit_events;
    audit_events::table
        .filter(audit_events::target.eq(format!("user:{user_id}")))
        .order(audit_events::id.asc())
        .select((audit_events::action, audit_events::actor))
        .load(&mut *db.conn())
        .expect("audit")
}

both!(a_reset_through_the_link_is_audited_as_a_reset, |db| {
    block_on(async {
        let fd = frontdesk(db);
        let app = host_app!(fd);
        let ann = user_with_password(db, "ann@example.com");
        let mut b = Browser::new();
        let res = reset_by_mail(&mut b, &app, &fd, db, "brand new secret").await;
        assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
        let me = format!("user:{}", ann.id);
        let actions = actions_on(db, ann.id);
        assert!(
            actions.contains(&("user.password.reset".to_owned(), me.clone())),
            "{actions:?}"
        );
        assert!(
            !actions.iter().any(|(a, _)| a == "user.password.change"),
            "{actions:?}"
        );

        // A change made by the signed-in user stays a change.
        let hash = passwords::hash("yet another secret").expect("hash");
        auth::change_password(&mut db.conn(), ann.id, &hash, None).expect("change");
        let actions = actions_on(db, ann.id);
        assert_eq!(
            actions.last(),
            Some(&("user.password.change".to_owned(), me))
        );
        assert_eq!(
            actions
                .iter()
                .filter(|(a, _)| a == "user.password.reset")
                .count(),
            1
        );
    });
});

both!(a_suspension_past_its_end_does_not_block_a_reset, |db| {
    use frontdesk_core::schema::users as users_t;
    use frontdesk_core::users as core_users;
    block_on(async {
        let fd = frontdesk(db);
        let app = host_app!(fd);
        let ann = user_with_password(db, "ann@example.com");
        let sys = Actor::system();
        core_users::suspend_until(
            &mut db.conn(),
            &sys,
            ann.id,
            "spam",
            Some(now() + Duration::days(1)),
        )
        .expect("suspend");
        // While it lasts, no link goes out.
        let mut b = Browser::new();
        request(&mut b, &app, &fd, "ann@example.com").await;
        assert_eq!(count(db, "outbox"), 0);
        // Past its end (not yet swept), the reset works and restores the user.
        diesel::update(users_t::table.find(ann.id))
            .set(users_t::suspended_until.eq(Some(now() - Duration::seconds(1))))
            .execute(&mut *db.conn())
            .expect("end passes");
        request(&mut b, &app, &fd, "ann@example.com").await;
        assert_eq!(count(db, "outbox"), 1);
        let link = mailed_link(db);
        let csrf = b.get(&app, &link).await.csrf();
        let new = "brand new secret";
        let res = b
            .post(
                &app,
                &link,
                &[
                    ("password", new),
                    ("password_confirm", new),
                    ("csrf_token", &csrf),
                ],
            )
            .await;
        assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
        let u = core_users::get(&mut db.conn(), ann.id).expect("user");
        assert!(!u.is_suspended());
        assert!(auth::verify_password(&u, new));
        let actions: Vec<String> = actions_on(db, ann.id).into_iter().map(|(a, _)| a).collect();
        assert!(actions.contains(&"user.restore".to_owned()), "{actions:?}");
    });
});

// A flood of reset requests cannot queue work without end: past
// PENDING_PUBLIC_REQUESTS waiting, the form answers "busy" (503) for a known
// and an unknown address alike and does nothing for them.
async fn request_flood_is_bounded(db: &TestDb) {
    let fd = frontdesk(db);
    let app = host_app!(fd);
    user_with_password(db, "ann@example.com");
    let mut b = Browser::new();
    let csrf = b.get(&app, "/auth/password-reset").await.csrf();
    let held: Vec<_> = (0..fd.pool().max_size())
        .map(|_| fd.pool().get().expect("connection"))
        .collect();
    for i in 0..frontdesk::web::state::PENDING_PUBLIC_REQUESTS {
        let email = format!("nobody{i}@example.com");
        let page = b
            .post(
                &app,
                "/auth/password-reset",
                &[("email", email.as_str()), ("csrf_token", &csrf)],
            )
            .await;
        assert_eq!(page.status, StatusCode::OK, "{i}");
    }
    let mut busy = Vec::new();
    for email in ["ann@example.com", "someone@example.com"] {
        let page = b
            .post(
                &app,
                "/auth/password-reset",
                &[("email", email), ("csrf_token", &csrf)],
            )
            .await;
        busy.push((
            page.status,
            page.body.contains("Too many requests right now"),
        ));
    }
    assert_eq!(busy, vec![(StatusCode::SERVICE_UNAVAILABLE, true); 2]);
    drop(held);
    fd.state().deferred_settled().await;
    assert_eq!((count(db, "outbox"), count(db, "password_resets")), (0, 0));
    // With the queue drained, the form works again.
    request(&mut b, &app, &fd, "ann@example.com").await;
    assert_eq!((count(db, "outbox"), count(db, "password_resets")), (1, 1));
}
both!(a_flood_of_reset_requests_is_bounded, |db| block_on(
    request_flood_is_bounded(db)
));
