//! Account status (pending/active/suspended), self sign-up and email
//! verification, on both backends.

use chrono::Duration;
use diesel::prelude::*;
use frontdesk_core::auth::{self, AuthSettings};
use frontdesk_core::email_verification as verification;
use frontdesk_core::outbox::NewMail;
use frontdesk_core::schema::{email_verifications, outbox, users as users_t};
use frontdesk_core::sessions::{ClientInfo, SessionConfig};
use frontdesk_core::signup::{self, Outcome, SignupLimits, SignupPolicy, Terms};
use frontdesk_core::tokens::SecretToken;
use frontdesk_core::users::{self, query::UserQuery, NewUser, User, UserStatus};
use frontdesk_core::{passwords, Actor, CoreError, DbConnection};

use crate::both;

fn mail(kind: &str) -> NewMail {
    NewMail {
        kind: kind.into(),
        recipient: "ignored@example.com".into(),
        subject: kind.into(),
        text_body: String::new(),
        html_body: None,
        invitation_id: None,
    }
}

/// A verification mail renderer that hands the raw token back to the test.
fn capture(into: &mut Option<String>) -> Box<verification::MailFn<'_>> {
    Box::new(move |_u: &User, t: &SecretToken, _| {
        *into = Some(t.expose().to_owned());
        Ok(mail("email_verification"))
    })
}

fn mails(c: &mut DbConnection, kind: &str) -> i64 {
    outbox::table
        .filter(outbox::kind.eq(kind))
        .count()
        .get_result(c)
        .expect("count")
}

fn statuses(c: &mut DbConnection, status: UserStatus) -> Vec<String> {
    let q = UserQuery {
        status: Some(status),
        ..UserQuery::default()
    };
    q.run(c, &Actor::system())
        .expect("query")
        .items
        .into_iter()
        .map(|u| u.email)
        .collect()
}

both!(admin_created_user_is_pending_until_first_sign_in, |db| {
    let c = &mut *db.conn();
    let hash = passwords::hash("correct horse battery").expect("hash");
    let u = users::create(
        c,
        &Actor::system(),
        NewUser {
            email: "p@example.com".into(),
            password_hash: Some(hash),
            ..NewUser::default()
        },
    )
    .expect("create");
    assert_eq!(u.account_status(), UserStatus::Pending);
    assert_eq!(statuses(c, UserStatus::Pending), vec!["p@example.com"]);
    assert!(statuses(c, UserStatus::Active).is_empty());
    let signed = auth::sign_in(
        c,
        "p@example.com",
        "correct horse battery",
        &ClientInfo::default(),
        &AuthSettings::default(),
        None,
    )
    .expect("sign in");
    assert_eq!(signed.user.account_status(), UserStatus::Active);
    assert_eq!(statuses(c, UserStatus::Active), vec!["p@example.com"]);
    assert!(statuses(c, UserStatus::Pending).is_empty());
    // Suspended wins over both, and a restore goes back to active.
    users::suspend(c, &Actor::system(), u.id, "test").expect("suspend");
    assert_eq!(statuses(c, UserStatus::Suspended), vec!["p@example.com"]);
    assert!(statuses(c, UserStatus::Active).is_empty());
});

both!(password_set_by_the_user_ends_pending, |db| {
    let c = &mut *db.conn();
    let u = users::create(
        c,
        &Actor::system(),
        NewUser {
            email: "r@example.com".into(),
            ..NewUser::default()
        },
    )
    .expect("create");
    assert_eq!(u.account_status(), UserStatus::Pending);
    let hash = passwords::hash("correct horse battery").expect("hash");
    auth::reset_password(c, u.id, &hash).expect("reset");
    let u = users::get(c, u.id).expect("get");
    assert_eq!(u.account_status(), UserStatus::Active);
});

fn new_unverified(c: &mut DbConnection, email: &str) -> User {
    users::create(
        c,
        &Actor::system(),
        NewUser {
            email: email.into(),
            activated: true,
            ..NewUser::default()
        },
    )
    .expect("create")
}

both!(
    verification_link_is_single_use_and_get_does_not_consume,
    |db| {
        let c = &mut *db.conn();
        let u = new_unverified(c, "v@example.com");
        let mut token = None;
        assert!(
            verification::issue(c, &u, Duration::hours(1), capture(&mut token)).expect("issue")
        );
        let token = token.expect("token");
        // Only the digest is stored.
        let stored: Vec<String> = email_verifications::table
            .select(email_verifications::token_hash)
            .load(c)
            .expect("load");
        assert_eq!(stored.len(), 1);
        assert_ne!(stored[0], token);
        // Checking (the GET) twice leaves it usable.
        for _ in 0..2 {
            assert!(verification::check(c, &token).expect("check").is_some());
        }
        assert!(!users::get(c, u.id).expect("get").email_verified);
        let done = verification::complete(c, &token, None).expect("complete");
        assert!(done.user.email_verified);
        assert!(done.session.is_none());
        let again = verification::complete(c, &token, None).expect_err("used");
        assert!(
            matches!(again, CoreError::Invalid { field: "token", .. }),
            "{again:?}"
        );
        assert!(verification::check(c, &token).expect("check").is_none());
    }
);

both!(
    newer_verification_link_kills_the_older_and_expiry_holds,
    |db| {
        let c = &mut *db.conn();
        let u = new_unverified(c, "w@example.com");
        let (mut first, mut second) = (None, None);
        verification::issue(c, &u, Duration::hours(1), capture(&mut first)).expect("issue");
        verification::issue(c, &u, Duration::hours(1), capture(&mut second)).expect("issue");
        let (first, second) = (first.expect("t1"), second.expect("t2"));
        assert!(
            verification::complete(c, &first, None).is_err(),
            "superseded link works"
        );
        assert!(!users::get(c, u.id).expect("get").email_verified);
        // An expired link is dead too.
        diesel::update(email_verifications::table)
            .set(
                email_verifications::expires_at
                    .eq(chrono::Utc::now().naive_utc() - Duration::minutes(1)),
            )
            .execute(c)
            .expect("expire");
        assert!(verification::check(c, &second).expect("check").is_none());
        assert!(
            verification::complete(c, &second, None).is_err(),
            "expired link works"
        );
        assert!(!users::get(c, u.id).expect("get").email_verified);
    }
);

both!(verification_sign_in_opens_a_session, |db| {
    let c = &mut *db.conn();
    let u = new_unverified(c, "s@example.com");
    let mut token = None;
    verification::issue(c, &u, Duration::hours(1), capture(&mut token)).expect("issue");
    let config = SessionConfig::default();
    let done = verification::complete(
        c,
        &token.expect("token"),
        Some((&ClientInfo::default(), &config)),
    )
    .expect("complete");
    assert!(done.session.is_some());
    assert!(done.user.email_verified);
});

both!(signup_policy_and_consent_are_checked, |db| {
    let _ = db;
    let terms = Terms {
        url: "https://example.com/terms".into(),
        version: "2026-01".into(),
    };
    let check = |p: &SignupPolicy, t: Option<&Terms>, email: &str, ok: bool| {
        signup::check(p, t, email, "A", "B", ok)
    };
    assert!(matches!(
        check(&SignupPolicy::Closed, None, "a@example.com", true),
        Err(CoreError::Forbidden)
    ));
    assert!(matches!(
        check(&SignupPolicy::InviteOnly, None, "a@example.com", true),
        Err(CoreError::Forbidden)
    ));
    assert!(check(&SignupPolicy::Open, None, "a@example.com", false).is_ok());
    let domains = SignupPolicy::AllowedDomains(vec!["example.com".into()]);
    assert!(check(&domains, None, "a@EXAMPLE.com", false).is_ok());
    assert!(matches!(
        check(&domains, None, "a@example.org", true),
        Err(CoreError::DomainNotAllowed)
    ));
    assert!(matches!(
        check(&SignupPolicy::Open, Some(&terms), "a@example.com", false),
        Err(CoreError::Invalid {
            field: "accept_terms",
            ..
        })
    ));
    let ok = check(&SignupPolicy::Open, Some(&terms), "a@example.com", true).expect("ok");
    assert_eq!(ok.terms_version.as_deref(), Some("2026-01"));
});

both!(
    signup_creates_unverified_active_user_with_consent_and_one_mail,
    |db| {
        let c = &mut *db.conn();
        let terms = Terms {
            url: "https://example.com/terms".into(),
            version: "v3".into(),
        };
        let form = signup::check(
            &SignupPolicy::Open,
            Some(&terms),
            "New@Example.com",
            "N",
            "U",
            true,
        )
        .expect("check");
        let mut token = None;
        let out = signup::create(
            c,
            &form,
            passwords::hash("correct horse battery").expect("hash"),
            Duration::hours(24),
            capture(&mut token),
            |_| Ok(mail("signup_existing")),
        )
        .expect("create");
        let Outcome::Created { user_id } = out else {
            panic!("{out:?}")
        };
        let u = users::get(c, user_id).expect("get");
        assert!(!u.email_verified);
        assert_eq!(u.account_status(), UserStatus::Active);
        assert_eq!(u.terms_version.as_deref(), Some("v3"));
        assert!(u.terms_accepted_at.is_some());
        assert_eq!(mails(c, "email_verification"), 1);
        assert_eq!(mails(c, "signup_existing"), 0);
        // The same address again: no second account, one "already registered" mail.
        let mut token2 = None;
        let out = signup::create(
            c,
            &form,
            passwords::hash("another password 1").expect("hash"),
            Duration::hours(24),
            capture(&mut token2),
            |_| Ok(mail("signup_existing")),
        )
        .expect("create");
        assert_eq!(out, Outcome::AlreadyRegistered);
        assert!(token2.is_none());
        let n: i64 = users_t::table.count().get_result(c).expect("count");
        assert_eq!(n, 1);
        assert_eq!(mails(c, "email_verification"), 1);
        assert_eq!(mails(c, "signup_existing"), 1);
    }
);

both!(signup_rate_limits_per_email_and_per_ip, |db| {
    let c = &mut *db.conn();
    let limits = SignupLimits {
        window: Duration::hours(1),
        per_email: 2,
        per_ip: 3,
    };
    assert!(signup::admit(c, "a@example.com", Some("10.0.0.1"), &limits).expect("admit"));
    assert!(signup::admit(c, "a@example.com", Some("10.0.0.2"), &limits).expect("admit"));
    assert!(!signup::admit(c, "a@example.com", Some("10.0.0.3"), &limits).expect("admit"));
    assert!(signup::admit(c, "b@example.com", Some("10.0.0.1"), &limits).expect("admit"));
    assert!(signup::admit(c, "c@example.com", Some("10.0.0.1"), &limits).expect("admit"));
    assert!(!signup::admit(c, "d@example.com", Some("10.0.0.1"), &limits).expect("admit"));
});

both!(unverified_sign_in_follows_require_verified_email, |db| {
    let c = &mut *db.conn();
    let u = users::create(
        c,
        &Actor::system(),
        NewUser {
            email: "u@example.com".into(),
            password_hash: Some(passwords::hash("correct horse battery").expect("hash")),
            ..NewUser::default()
        },
    )
    .expect("create");
    assert!(!u.email_verified);
    let strict = AuthSettings {
        require_verified_email: true,
        ..AuthSettings::default()
    };
    let refused = auth::sign_in(
        c,
        "u@example.com",
        "correct horse battery",
        &ClientInfo::default(),
        &strict,
        None,
    );
    assert!(
        matches!(
            refused,
            Err(auth::SignInError::Refused {
                reason: frontdesk_core::login_attempts::Reason::EmailUnverified,
                ..
            })
        ),
        "{refused:?}"
    );
    assert_eq!(
        users::get(c, u.id).expect("get").account_status(),
        UserStatus::Pending
    );
    // Allowed by default.
    auth::sign_in(
        c,
        "u@example.com",
        "correct horse battery",
        &ClientInfo::default(),
        &AuthSettings::default(),
        None,
    )
    .expect("allowed by default");
    // Verified: allowed under the strict setting too.
    verification::mark_verified(c, &Actor::system(), u.id).expect("verify");
    auth::sign_in(
        c,
        "u@example.com",
        "correct horse battery",
        &ClientInfo::default(),
        &strict,
        None,
    )
    .expect("verified signs in");
});
