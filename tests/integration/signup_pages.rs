//! The sign-up and verification pages over HTTP: policy, the same answer for
//! taken and free addresses with no work before it, one mail either way, and
//! the mailed link that verifies and signs in.

use actix_web::http::StatusCode;
use diesel::prelude::*;
use frontdesk::Frontdesk;
use frontdesk_core::schema::{outbox, users};
use frontdesk_core::signup::SignupPolicy;

use crate::both;
use crate::host_app;
use crate::support::TestDb;
use crate::web_app::Browser;
use crate::web_app::{block_on, builder, count, user_with_password};

fn open(db: &TestDb) -> Frontdesk {
    builder(db)
        .signup_policy(SignupPolicy::Open)
        .signup_terms("https://app.test/terms", "v1")
        .build()
        .expect("frontdesk")
}

fn users_count(db: &TestDb) -> i64 {
    users::table
        .count()
        .get_result(&mut *db.conn())
        .expect("count")
}

const PW: &str = "a long enough password";

async fn policy_pages(db: &TestDb) {
    let closed = builder(db).build().expect("frontdesk");
    let app = host_app!(closed);
    let mut b = Browser::new();
    assert_eq!(
        b.get(&app, "/auth/signup").await.status,
        StatusCode::NOT_FOUND
    );
    let invite = builder(db)
        .signup_policy(SignupPolicy::InviteOnly)
        .build()
        .expect("frontdesk");
    let app = host_app!(invite);
    let page = b.get(&app, "/auth/signup").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("invitation only"), "{}", page.body);
    let domains = builder(db)
        .signup_policy(SignupPolicy::AllowedDomains(vec!["example.com".into()]))
        .build()
        .expect("frontdesk");
    let app = host_app!(domains);
    let csrf = b.get(&app, "/auth/signup").await.csrf();
    let page = b
        .post(
            &app,
            "/auth/signup",
            &[
                ("email", "x@other.org"),
                ("password", PW),
                ("csrf_token", &csrf),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    domains.state().deferred_settled().await;
    assert_eq!(users_count(db), 0);
}
both!(signup_policy_pages, |db| block_on(policy_pages(db)));

async fn consent_required(db: &TestDb) {
    let fd = open(db);
    let app = host_app!(fd);
    let mut b = Browser::new();
    let csrf = b.get(&app, "/auth/signup").await.csrf();
    let page = b
        .post(
            &app,
            "/auth/signup",
            &[
                ("email", "n@example.com"),
                ("password", PW),
                ("csrf_token", &csrf),
            ],
        )
        .await;
    assert_eq!(
        page.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        page.body
    );
    fd.state().deferred_settled().await;
    assert_eq!(users_count(db), 0);
    assert_eq!(count(db, "outbox"), 0);
}
both!(signup_without_consent_is_refused, |db| block_on(
    consent_required(db)
));

/// Every pooled connection is held while a taken and a free address sign up:
/// any database work before the answer would fail it. Then each gets exactly
/// one mail: the verification link, or "already registered".
async fn same_answer(db: &TestDb) {
    let fd = open(db);
    let app = host_app!(fd);
    user_with_password(db, "ann@example.com");
    let mut b = Browser::new();
    let csrf = b.get(&app, "/auth/signup").await.csrf();
    let held: Vec<_> = (0..fd.pool().max_size())
        .map(|_| fd.pool().get().expect("connection"))
        .collect();
    let mut answers = Vec::new();
    for email in ["ann@example.com", "new@example.com"] {
        let page = b
            .post(
                &app,
                "/auth/signup",
                &[
                    ("email", email),
                    ("first_name", "N"),
                    ("last_name", "U"),
                    ("password", PW),
                    ("accept_terms", "yes"),
                    ("csrf_token", &csrf),
                ],
            )
            .await;
        answers.push((page.status, page.body));
    }
    assert_eq!(answers[0].0, StatusCode::OK, "{}", answers[0].1);
    assert_eq!(answers[0], answers[1], "the same page for both addresses");
    drop(held);
    fd.state().deferred_settled().await;
    let mut conn = db.conn();
    let mails: Vec<(String, String)> = outbox::table
        .order(outbox::id)
        .select((outbox::kind, outbox::recipient))
        .load(&mut *conn)
        .expect("mails");
    assert_eq!(mails.len(), 2, "one mail per request: {mails:?}");
    assert!(mails.contains(&("signup_existing".into(), "ann@example.com".into())));
    assert!(mails.contains(&("email_verification".into(), "new@example.com".into())));
    let (verified, terms): (bool, Option<String>) = users::table
        .filter(users::email.eq("new@example.com"))
        .select((users::email_verified, users::terms_version))
        .first(&mut *conn)
        .expect("new user");
    assert!(!verified);
    assert_eq!(terms.as_deref(), Some("v1"));
    drop(conn);

    // The mailed link: GET leaves it usable, POST verifies and signs in.
    let text: String = outbox::table
        .filter(outbox::kind.eq("email_verification"))
        .select(outbox::text_body)
        .first(&mut *db.conn())
        .expect("mail");
    let start = text
        .find("http://app.test/auth/verify-email/")
        .expect("link");
    let link = text[start..].split_whitespace().next().unwrap_or_default();
    let path = link.trim_start_matches("http://app.test").to_owned();
    let mut v = Browser::new();
    let page = v.get(&app, &path).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let csrf = v.get(&app, &path).await.csrf();
    let done = v.post(&app, &path, &[("csrf_token", &csrf)]).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    let verified: bool = users::table
        .filter(users::email.eq("new@example.com"))
        .select(users::email_verified)
        .first(&mut *db.conn())
        .expect("user");
    assert!(verified);
    let again = v.post(&app, &path, &[("csrf_token", &csrf)]).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST, "the link works once");
}
both!(signup_answers_alike_and_mails_once, |db| block_on(
    same_answer(db)
));

// A flood of sign-ups cannot queue work without end: past eight waiting per
// argon2 slot the form answers "busy" (503) for every address alike and does
// nothing for it; the sign-ups already answered all complete.
async fn flood_is_bounded(db: &TestDb) {
    let fd = builder(db)
        .signup_policy(SignupPolicy::Open)
        .signup_limits(frontdesk_core::signup::SignupLimits {
            per_ip: 1000,
            ..Default::default()
        })
        .max_concurrent_hashes(1)
        .build()
        .expect("frontdesk");
    let app = host_app!(fd);
    user_with_password(db, "ann@example.com");
    let mut b = Browser::new();
    let csrf = b.get(&app, "/auth/signup").await.csrf();
    // The answered sign-ups' work waits for a connection: the queue fills.
    let held: Vec<_> = (0..fd.pool().max_size())
        .map(|_| fd.pool().get().expect("connection"))
        .collect();
    let form = |email: String| {
        vec![
            ("email".to_owned(), email),
            ("first_name".to_owned(), "N".to_owned()),
            ("last_name".to_owned(), "U".to_owned()),
            ("password".to_owned(), PW.to_owned()),
            ("csrf_token".to_owned(), csrf.clone()),
        ]
    };
    let mut statuses = Vec::new();
    for i in 0..frontdesk::web::state::PENDING_SIGNUPS_PER_HASH_SLOT {
        let fields = form(format!("new{i}@example.com"));
        let refs: Vec<(&str, &str)> = fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        statuses.push(b.post(&app, "/auth/signup", &refs).await.status);
    }
    assert!(
        statuses.iter().all(|s| *s == StatusCode::OK),
        "{statuses:?}"
    );
    let mut busy = Vec::new();
    for email in ["ann@example.com", "late@example.com"] {
        let fields = form(email.to_owned());
        let refs: Vec<(&str, &str)> = fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let page = b.post(&app, "/auth/signup", &refs).await;
        busy.push((
            page.status,
            page.body.contains("Too many people are signing up"),
        ));
    }
    assert_eq!(
        busy,
        vec![(StatusCode::SERVICE_UNAVAILABLE, true); 2],
        "busy, alike for a taken and a free address"
    );
    drop(held);
    fd.state().deferred_settled().await;
    // Every answered sign-up made its account; the busy ones nothing.
    assert_eq!(users_count(db), 1 + 8);
    let late: i64 = outbox::table
        .filter(outbox::recipient.eq_any(["late@example.com", "ann@example.com"]))
        .count()
        .get_result(&mut *db.conn())
        .expect("count");
    assert_eq!(late, 0);
    // With the queue drained, sign-up works again.
    let fields = form("later@example.com".to_owned());
    let refs: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        b.post(&app, "/auth/signup", &refs).await.status,
        StatusCode::OK
    );
}
both!(a_signup_flood_is_bounded_and_answers_busy_alike, |db| {
    block_on(flood_is_bounded(db))
});
