//! An invitation in a real headless Chromium (the admin browser suite's
//! WebDriver helpers): staff invite an address on the admin invitations page,
//! the outbox worker delivers the mail, the invitee opens the mail's link,
//! sets a name and password, accepts, and lands signed in on the host's page.
//! With `FRONTDESK_SCREENSHOTS=<dir>` it saves the two pages as PNGs.

use std::time::{Duration, Instant};

use diesel::prelude::*;
use frontdesk_core::db::BackendKind;
use frontdesk_core::schema::{invitations, memberships};
use frontdesk_core::users::{self, NewUser};
use frontdesk_core::{organizations, passwords, Actor, StaffRole};
use frontdesk_mail::{MemoryTransport, StoredMail};
use serde_json::json;

use crate::admin_browser::{
    screenshot_dir, serve_with_memory_mail, start_driver, Browser, Framework,
};
use crate::both_and_axum;
use crate::support::TestDb;
use crate::web_app::PASSWORD;

const INVITEE: &str = "nora.hale@acme.test";

/// Waits (up to 30 s) for a mail to `to`.
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

/// The invitation link in a delivered mail (quoted-printable soft breaks undone).
fn link_in(mail: &StoredMail, base: &str) -> String {
    let text = mail.raw.replace("=\r\n", "");
    let prefix = format!("{base}/auth/invitations/");
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
    invitee_accepts_from_the_mailed_link_in_headless_chromium,
    invitee_accepts_from_the_mailed_link
);

fn invitee_accepts_from_the_mailed_link(db: &TestDb, framework: Framework) {
    let Some((driver, chromium)) = start_driver() else {
        return;
    };
    // Both backends and both hosts show the same pages: one set of
    // screenshots is enough.
    let shots = screenshot_dir()
        .filter(|_| db.kind == BackendKind::Sqlite && matches!(framework, Framework::ActixWeb));
    let shots = shots.as_deref();

    let acme = {
        let mut conn = db.conn();
        organizations::create(
            &mut conn,
            &Actor::system(),
            "acme",
            "Acme Corp",
            "acme.test",
        )
        .expect("org")
    };
    {
        let mut conn = db.conn();
        users::create(
            &mut conn,
            &Actor::system(),
            NewUser {
                email: "sam.rivera@frontdesk.test".into(),
                first_name: "Sam".into(),
                last_name: "Rivera".into(),
                password_hash: Some(passwords::hash(PASSWORD).expect("hash")),
                staff_role: Some(StaffRole::Owner),
                ..NewUser::default()
            },
        )
        .expect("staff owner");
    }
    let (base, server, memory) = serve_with_memory_mail(framework, db, |b| b);

    // Staff sign in on the way to the invitations page and invite.
    let admin = Browser::open(&driver, &chromium, &base);
    admin.go("/admin/invitations");
    admin.wait_for("Sign in");
    admin.type_into("input[name=email]", "sam.rivera@frontdesk.test");
    admin.type_into("input[name=password]", PASSWORD);
    admin.click("form button[type=submit]");
    admin.wait_for("Invite someone");
    admin.type_into("form.fda-form input[name=email]", INVITEE);
    admin.click(&format!(
        "form.fda-form select[name=organization] option[value='{}']",
        acme.id
    ));
    admin.click("form.fda-form select[name=role] option[value=admin]");
    admin.type_into(
        "form.fda-form textarea[name=message]",
        "Welcome to the team, Nora! Your first week's plan is in the handbook.",
    );
    admin.click("form.fda-form button[type=submit]");
    admin.wait_for(&format!("Invitation to {INVITEE} created"));
    admin.assert_accessible("the invitations page with a flash message");

    // The worker delivers the mail; its link is built from the base URL.
    let delivered = mail_to(&memory, INVITEE);
    assert!(
        delivered
            .raw
            .contains("Sam Rivera invited you to join Acme Corp"),
        "{}",
        delivered.raw
    );
    let link = link_in(&delivered, &base);
    // The list shows it as sent once the worker has recorded the delivery.
    let start = Instant::now();
    loop {
        admin.go("/admin/invitations");
        if admin.wait_for(INVITEE).contains("fda-delivery-sent") {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the list never showed the mail as sent"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    admin.screenshot(shots, "invitations");

    // The invitee, in a browser of their own, opens the link from the mail.
    let invitee = Browser::open(&driver, &chromium, &base);
    invitee.cmd("POST", "/url", Some(json!({ "url": link })));
    let page = invitee.wait_for("Join Acme Corp");
    assert!(
        page.contains("Your first week"),
        "the personal message shows"
    );
    assert!(page.contains(INVITEE));
    invitee.assert_skip_link_first();
    invitee.assert_accessible("the invitation page");
    assert_eq!(invitee.assert_field_borders(), 4);
    // Two passwords that differ: the form comes back with both fields
    // marked invalid, tied to the message, the first one focused, and
    // the invitation still pending.
    invitee.type_into("input[name=first_name]", "Nora");
    invitee.type_into("input[name=last_name]", "Hale");
    invitee.type_into("input[name=password]", PASSWORD);
    invitee.type_into("input[name=password_confirm]", "not the same password");
    invitee.screenshot(shots, "invitation");
    invitee.click("form.fd-form button[type=submit]");
    invitee.wait_for("The two passwords do not match.");
    let state = invitee.execute(
        "return ['first_name', 'password', 'password_confirm'].map(function (n) {\
               var f = document.querySelector('[name=' + n + ']');\
               var d = document.getElementById(f.getAttribute('aria-describedby') || '');\
               return [n, f.getAttribute('aria-invalid'), d ? d.textContent.trim() : null,\
                 document.activeElement === f];\
             });",
        json!([]),
    );
    assert_eq!(
        state,
        json!([
            ["first_name", null, null, false],
            ["password", "true", "The two passwords do not match.", true],
            [
                "password_confirm",
                "true",
                "The two passwords do not match.",
                false
            ]
        ])
    );
    invitee.assert_accessible("the invitation page with an error");
    let status: String = invitations::table
        .filter(invitations::email.eq(INVITEE))
        .select(invitations::status)
        .first(&mut db.conn())
        .expect("invitation");
    assert_eq!(status, "pending");
    // The names typed are kept; the passwords are typed again.
    assert_eq!(
        invitee.execute(
            "return [document.querySelector('[name=first_name]').value,\
                   document.querySelector('[name=last_name]').value];",
            json!([])
        ),
        json!(["Nora", "Hale"])
    );
    invitee.type_into("input[name=password]", PASSWORD);
    invitee.type_into("input[name=password_confirm]", PASSWORD);
    invitee.click("form.fd-form button[type=submit]");

    // Signed in, on the host's page.
    invitee.wait_url("/notes");
    invitee.wait_for(&format!("notes of {INVITEE}"));
    invitee.go("/auth/sessions");
    invitee.wait_for(INVITEE);
    invitee.assert_accessible("the own sessions page");

    // The account and the membership exist; the invitation is used up.
    let mut conn = db.conn();
    let user = users::find_by_email(&mut conn, INVITEE)
        .expect("query")
        .expect("the invitee's account");
    assert_eq!(
        (user.first_name.as_str(), user.last_name.as_str()),
        ("Nora", "Hale")
    );
    assert!(user.email_verified);
    let role: String = memberships::table
        .find((user.id, acme.id))
        .select(memberships::role)
        .first(&mut conn)
        .expect("membership");
    assert_eq!(role, "admin");
    let (status, accepted_by): (String, Option<i64>) = invitations::table
        .filter(invitations::email.eq(INVITEE))
        .select((invitations::status, invitations::accepted_user_id))
        .first(&mut conn)
        .expect("invitation");
    assert_eq!((status.as_str(), accepted_by), ("accepted", Some(user.id)));
    drop(conn);

    // The link does not work twice.
    let again = Browser::open(&driver, &chromium, &base);
    again.cmd("POST", "/url", Some(json!({ "url": link })));
    let page = again.wait_for("This invitation link cannot be used");
    again.assert_accessible("the page of a used invitation link");
    assert!(!page.contains("Acme Corp"), "a used link tells nothing");

    drop(again);
    drop(invitee);
    drop(admin);
    drop(driver);
    server.stop();
}
