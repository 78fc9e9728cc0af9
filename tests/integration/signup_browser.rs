//! Self sign-up in a real headless Chromium, on the demo's configuration
//! (sign-up open, landing on the host's `/notes`): a visitor fills in the
//! form, the outbox worker delivers the verification mail, the visitor opens
//! its link, confirms, and lands signed in with a verified, active account.

use std::time::{Duration, Instant};

use frontdesk_core::signup::SignupPolicy;
use frontdesk_core::users::{self, UserStatus};
use frontdesk_mail::{MemoryTransport, StoredMail};
use serde_json::json;

use crate::admin_browser::{serve_with_memory_mail, start_driver, Browser, Framework};
use crate::both_and_axum;
use crate::support::TestDb;
use crate::web_app::PASSWORD;

const VISITOR: &str = "iris.quill@example.com";

fn mail_to(memory: &MemoryTransport, to: &str) -> StoredMail {
    let start = Instant::now();
    loop {
        if let Some(m) = memory.mails().into_iter().find(|m| m.to == [to]) {
            return m;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no mail to {to} was delivered"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The verification link in a delivered mail (quoted-printable soft breaks undone).
fn link_in(mail: &StoredMail, base: &str) -> String {
    let text = mail.raw.replace("=\r\n", "");
    let prefix = format!("{base}/auth/verify-email/");
    let start = text
        .find(&prefix)
        .unwrap_or_else(|| panic!("no link to {prefix} in the mail:\n{}", mail.raw))
        + prefix.len();
    let token: String = text[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    assert!(token.len() >= 43, "a 256-bit token: {token:?}");
    format!("{prefix}{token}")
}

both_and_axum!(
    visitor_signs_up_verifies_and_lands_signed_in_in_headless_chromium,
    visitor_signs_up_verifies_and_lands_signed_in
);

fn visitor_signs_up_verifies_and_lands_signed_in(db: &TestDb, framework: Framework) {
    let Some((driver, chromium)) = start_driver() else {
        return;
    };
    let (base, server, memory) =
        serve_with_memory_mail(framework, db, |b| b.signup_policy(SignupPolicy::Open));

    let visitor = Browser::open(&driver, &chromium, &base);
    visitor.go("/auth/signup");
    visitor.wait_for("Create an account");
    visitor.assert_skip_link_first();
    visitor.assert_accessible("the sign-up page");
    visitor.type_into("input[name=email]", VISITOR);
    visitor.type_into("input[name=first_name]", "Iris");
    visitor.type_into("input[name=last_name]", "Quill");
    visitor.type_into("input[name=password]", PASSWORD);
    visitor.click("form.fd-form button[type=submit]");
    visitor.wait_for("Check your mail");
    visitor.assert_accessible("the check-your-mail page");

    // The worker delivers the verification mail, with a link from the base URL.
    let delivered = mail_to(&memory, VISITOR);
    let link = link_in(&delivered, &base);
    {
        let mut conn = db.conn();
        let user = users::find_by_email(&mut conn, VISITOR)
            .expect("query")
            .expect("the new account");
        assert!(!user.email_verified, "not verified before the link is used");
    }

    // Opening the link shows the confirmation; the POST uses it and signs in.
    visitor.cmd("POST", "/url", Some(json!({ "url": link })));
    visitor.wait_for("Confirm your address");
    visitor.assert_accessible("the confirm-your-address page");
    visitor.click("form.fd-form button[type=submit]");
    visitor.wait_url("/notes");
    visitor.wait_for(&format!("notes of {VISITOR}"));
    // Verified: the own pages carry no banner.
    visitor.go("/auth/sessions");
    let page = visitor.wait_for(VISITOR);
    assert!(!page.contains("verify-banner"), "{page}");

    let mut conn = db.conn();
    let user = users::find_by_email(&mut conn, VISITOR)
        .expect("query")
        .expect("the account");
    assert!(user.email_verified);
    assert_eq!(user.account_status(), UserStatus::Active);
    assert_eq!(
        (user.first_name.as_str(), user.last_name.as_str()),
        ("Iris", "Quill")
    );
    drop(conn);

    // The link does not work twice.
    let again = Browser::open(&driver, &chromium, &base);
    again.cmd("POST", "/url", Some(json!({ "url": link })));
    again.wait_for("cannot be used");
    drop(again);
    drop(visitor);
    drop(driver);
    server.stop();
}
