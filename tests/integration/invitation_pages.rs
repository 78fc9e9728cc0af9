//! The invitation pages in a real App, on both backends: the admin page
//! (create, list with delivery state, resend, cancel, scope), the invitee's
//! page (GET never consumes; accept signs in; decline is final; every dead link
//! looks the same), CSRF, and end to end through a real SMTP server on loopback.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::http::StatusCode;
use diesel::prelude::*;
use frontdesk_core::invitations::{self, Acceptance, InvitationSettings, NewInvitation};
use frontdesk_core::schema::{invitations as inv_t, memberships, outbox, users as users_t};
use frontdesk_core::users::User;
use frontdesk_core::{Actor, OrgRole};
use frontdesk_mail::test_smtp::TestSmtp;
use frontdesk_mail::{MailConfig, Templates};

use crate::admin_fixture::{self as fx};
use crate::both;
use crate::host_app;
use crate::support::TestDb;
use crate::web_app::{block_on, builder, frontdesk, Browser, PASSWORD};

const LINK: &str = "http://app.test/auth/invitations/";

/// The token of the first invitation link in a text.
fn token_in(text: &str) -> String {
    let start = text.find(LINK).expect("invitation link") + LINK.len();
    text[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}

/// The token in the newest queued mail.
fn latest_token(db: &TestDb) -> String {
    let mut conn = db.conn();
    let body: String = outbox::table
        .order(outbox::id.desc())
        .select(outbox::text_body)
        .first(&mut *conn)
        .expect("a queued mail");
    token_in(&body)
}

fn invitation_status(db: &TestDb, email: &str) -> Vec<String> {
    let mut conn = db.conn();
    inv_t::table
        .filter(inv_t::email.eq(email))
        .order(inv_t::id.asc())
        .select(inv_t::status)
        .load(&mut *conn)
        .expect("statuses")
}

fn counts(db: &TestDb) -> (i64, i64, i64, i64) {
    let mut conn = db.conn();
    let c = &mut *conn;
    (
        inv_t::table.count().get_result(c).expect("count"),
        outbox::table.count().get_result(c).expect("count"),
        users_t::table.count().get_result(c).expect("count"),
        memberships::table.count().get_result(c).expect("count"),
    )
}

fn role_in(db: &TestDb, email: &str, org: i64) -> Option<String> {
    let mut conn = db.conn();
    memberships::table
        .inner_join(users_t::table)
        .filter(users_t::email.eq(email))
        .filter(memberships::organization_id.eq(org))
        .select(memberships::role)
        .first(&mut *conn)
        .optional()
        .expect("membership")
}

/// Invites through the core (for tests about the invitee's side).
fn invite_direct(db: &TestDb, org: i64, email: &str, ttl: chrono::Duration) -> (i64, String) {
    let mut conn = db.conn();
    let settings = InvitationSettings::new("http://app.test")
        .expect("settings")
        .with_ttl(ttl);
    let issued = invitations::create(
        &mut conn,
        &Actor::system(),
        &settings,
        &Templates::new().expect("templates"),
        &NewInvitation {
            organization_id: org,
            email: email.into(),
            role: OrgRole::Member,
            message: None,
            first_name: None,
            last_name: None,
            groups: Vec::new(),
        },
    )
    .expect("invite");
    (issued.invitation.id, issued.token.expose().to_owned())
}

fn accept_form<'a>(csrf: &'a str, first: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("csrf_token", csrf),
        ("action", "accept"),
        ("first_name", first),
        ("last_name", "Invitee"),
        ("password", PASSWORD),
        ("password_confirm", PASSWORD),
    ]
}

/// Records what the host's hooks hear.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<String>>>);

impl Recorder {
    fn events(&self) -> Vec<String> {
        self.0.lock().map(|v| v.clone()).unwrap_or_default()
    }
    fn push(&self, e: String) {
        if let Ok(mut v) = self.0.lock() {
            v.push(e);
        }
    }
}

impl frontdesk::Hooks for Recorder {
    fn user_created(&self, user: &User) {
        self.push(format!("created {}", user.email));
    }
    fn invitation_accepted(&self, a: &invitations::Accepted) {
        self.push(format!("accepted {} {}", a.user.email, a.role));
    }
    fn invitation_declined(&self, inv: &invitations::Invitation) {
        self.push(format!("declined {}", inv.email));
    }
}

both!(invitation_end_to_end_over_smtp, |db| {
    let cast = fx::cast(db);
    block_on(async move {
        let smtp = TestSmtp::start().await.expect("smtp server");
        let mut mail = MailConfig::new("Notes <no-reply@notes.example>").expect("mail config");
        mail.poll_interval = Duration::from_millis(50);
        let hooks = Recorder::default();
        let fd = builder(db)
            .mail_url(format!("smtp://127.0.0.1:{}?tls=none", smtp.port()))
            .mail_config(mail)
            .hooks(hooks.clone())
            .build()
            .expect("frontdesk");
        let worker = fd.start_mailer().expect("worker");
        let app = host_app!(fd);

        // An organization admin invites, from a request naming another host.
        let (mut admin, csrf) = fx::signed_in(db, cast.get("org_admin"));
        let page = admin.get(&app, "/admin/invitations").await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.body.contains("Invite someone"));
        let org = cast.org_a.id.to_string();
        admin.headers.push(("host".into(), "evil.example".into()));
        let created = admin
            .post(
                &app,
                "/admin/invitations",
                &[
                    ("csrf_token", &csrf),
                    ("email", "Newbie@Example.com"),
                    ("organization", &org),
                    ("role", "admin"),
                    ("message", "Welcome!\n<script>alert(1)</script>"),
                ],
            )
            .await;
        admin.headers.clear();
        assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
        assert_eq!(created.location(), "/admin/invitations");
        assert_eq!(invitation_status(db, "newbie@example.com"), vec!["pending"]);

        // The worker delivers it (woken by the page) to the stored address.
        assert_eq!(smtp.wait_for(1, Duration::from_secs(10)).await, 1);
        let got = smtp.received();
        let m = &got[0];
        assert_eq!(m.rcpt_to, vec!["newbie@example.com".to_owned()]);
        assert_eq!(
            m.header_values("Subject"),
            vec!["admin Test invited you to join Acme".to_owned()]
        );
        let text = m.data.replace("=\r\n", "");
        assert!(!text.contains("evil.example"), "links never come from Host");
        let token = token_in(&text);
        assert!(token.len() >= 43, "256-bit token");

        // The admin list shows the delivery.
        let mut sent = false;
        for _ in 0..100 {
            let list = admin.get(&app, "/admin/invitations?status=pending").await;
            if list.body.contains("fda-delivery-sent") {
                assert!(list.body.contains("newbie@example.com"));
                sent = true;
                break;
            }
            actix_web::rt::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(sent, "the list shows the mail as sent");

        // The invitee opens the link twice (a scanner, then the person).
        let link = format!("/auth/invitations/{token}");
        let mut invitee = Browser::new();
        for _ in 0..2 {
            let page = invitee.get(&app, &link).await;
            assert_eq!(page.status, StatusCode::OK);
            assert!(page.body.contains("Join Acme"));
            assert!(page.body.contains("admin Test invited you"));
            assert!(page.body.contains("<strong>admin</strong>"));
            assert!(page
                .body
                .contains("&lt;script&gt;alert(1)&lt;&#x2F;script&gt;"));
            assert!(!page.body.contains("<script>alert"));
            assert_eq!(page.header("referrer-policy"), Some("no-referrer"));
            assert_eq!(page.header("cache-control"), Some("no-store"));
        }
        assert_eq!(invitation_status(db, "newbie@example.com"), vec!["pending"]);

        // Accepting creates the account and signs the invitee in.
        let page = invitee.get(&app, &link).await;
        let csrf = page.csrf();
        let done = invitee
            .post(&app, &link, &accept_form(&csrf, "Newbie"))
            .await;
        assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
        assert_eq!(done.location(), "/");
        assert_eq!(done.header("referrer-policy"), Some("no-referrer"));
        let cookie = done.cookie("frontdesk_session").expect("session cookie");
        assert!(cookie.http_only().unwrap_or(false));
        let notes = invitee.get(&app, "/notes").await;
        assert_eq!(notes.status, StatusCode::OK);
        assert_eq!(notes.body, "notes of newbie@example.com");
        assert_eq!(
            role_in(db, "newbie@example.com", cast.org_a.id).as_deref(),
            Some("admin")
        );
        assert_eq!(
            invitation_status(db, "newbie@example.com"),
            vec!["accepted"]
        );
        assert_eq!(
            hooks.events(),
            vec![
                "created newbie@example.com".to_owned(),
                "accepted newbie@example.com admin".to_owned()
            ]
        );
        // The password chosen on the page is the account's.
        let mut fresh = Browser::new();
        let login = fresh.login(&app, "newbie@example.com", PASSWORD).await;
        assert_eq!(login.status, StatusCode::SEE_OTHER);

        // The link is used up.
        let again = invitee.get(&app, &link).await;
        assert_eq!(again.status, StatusCode::NOT_FOUND);
        worker.shutdown().await;
    });
});

both!(invitation_dead_links_all_look_the_same, |db| {
    let cast = fx::cast(db);
    let org = cast.org_a.id;
    let (_, expired) = invite_direct(db, org, "late@example.com", chrono::Duration::seconds(-1));
    let (cancel_id, cancelled) =
        invite_direct(db, org, "gone@example.com", chrono::Duration::days(1));
    let (_, used) = invite_direct(db, org, "used@example.com", chrono::Duration::days(1));
    let (_, declined) = invite_direct(db, org, "no@example.com", chrono::Duration::days(1));
    {
        let mut conn = db.conn();
        invitations::cancel(&mut conn, &Actor::system(), cancel_id).expect("cancel");
        invitations::accept(
            &mut conn,
            &used,
            &Acceptance::NewAccount {
                first_name: "U".into(),
                last_name: "Sed".into(),
                password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
            },
        )
        .expect("accept");
        invitations::decline(&mut conn, &declined).expect("decline");
    }
    let unknown = "A".repeat(43);
    let fd = frontdesk(db);
    block_on(async move {
        let app = host_app!(fd);
        let mut b = Browser::new();
        // A live link first, for the CSRF token the POSTs below carry.
        let (_, live) = invite_direct(db, org, "live@example.com", chrono::Duration::days(1));
        let page = b.get(&app, &format!("/auth/invitations/{live}")).await;
        assert_eq!(page.status, StatusCode::OK);
        let csrf = page.csrf();
        let before = counts(db);
        let mut bodies = Vec::new();
        for token in [&expired, &cancelled, &used, &declined, &unknown] {
            let link = format!("/auth/invitations/{token}");
            let get = b.get(&app, &link).await;
            assert_eq!(get.status, StatusCode::NOT_FOUND);
            assert_eq!(get.header("referrer-policy"), Some("no-referrer"));
            let accept = b.post(&app, &link, &accept_form(&csrf, "X")).await;
            assert_eq!(accept.status, StatusCode::NOT_FOUND);
            let decline = b
                .post(&app, &link, &[("csrf_token", &csrf), ("action", "decline")])
                .await;
            assert_eq!(decline.status, StatusCode::NOT_FOUND);
            assert_eq!(get.body, accept.body);
            assert_eq!(get.body, decline.body);
            bodies.push(get.body);
        }
        assert!(bodies.windows(2).all(|w| w[0] == w[1]), "one page for all");
        assert!(bodies[0].contains("cannot be used"));
        assert_eq!(counts(db), before, "nothing changed");
        assert_eq!(invitation_status(db, "late@example.com"), vec!["pending"]);
    });
});

both!(invitation_resend_and_cancel_from_the_admin_page, |db| {
    let cast = fx::cast(db);
    let fd = frontdesk(db);
    block_on(async move {
        let app = host_app!(fd);
        let (mut admin, csrf) = fx::signed_in(db, cast.get("staff_admin"));
        let org = cast.org_a.id.to_string();
        let created = admin
            .post(
                &app,
                "/admin/invitations",
                &[
                    ("csrf_token", &csrf),
                    ("email", "again@example.com"),
                    ("organization", &org),
                    ("role", "member"),
                ],
            )
            .await;
        assert_eq!(created.status, StatusCode::SEE_OTHER);
        let first = latest_token(db);
        let id: i64 = {
            let mut conn = db.conn();
            inv_t::table
                .filter(inv_t::email.eq("again@example.com"))
                .select(inv_t::id)
                .first(&mut *conn)
                .expect("id")
        };
        // No worker in this app: the list says the mail is queued.
        let list = admin.get(&app, "/admin/invitations?status=pending").await;
        assert!(list.body.contains("fda-delivery-queued"));

        let resent = admin
            .post(
                &app,
                &format!("/admin/invitations/{id}/resend"),
                &[("csrf_token", &csrf), ("return", "status=pending&evil=1")],
            )
            .await;
        assert_eq!(resent.status, StatusCode::SEE_OTHER);
        assert_eq!(resent.location(), "/admin/invitations?status=pending");
        let second = latest_token(db);
        assert_ne!(first, second);
        let mut invitee = Browser::new();
        let old = invitee
            .get(&app, &format!("/auth/invitations/{first}"))
            .await;
        assert_eq!(
            old.status,
            StatusCode::NOT_FOUND,
            "resend kills the old link"
        );
        let new = invitee
            .get(&app, &format!("/auth/invitations/{second}"))
            .await;
        assert_eq!(new.status, StatusCode::OK);
        let page = admin.get(&app, "/admin/invitations").await;
        assert!(page.body.contains("sent again"), "flash after resend");
        assert!(page.body.contains("(2×)"), "send count shown");
        {
            let mut conn = db.conn();
            let queued: Vec<(String, Option<String>)> = outbox::table
                .filter(outbox::invitation_id.eq(id))
                .order(outbox::id.asc())
                .select((outbox::status, outbox::last_error))
                .load(&mut *conn)
                .expect("mails");
            assert_eq!(queued.len(), 2);
            assert_eq!(queued[0].0, "failed", "the old link's mail is not sent");
            assert_eq!(queued[1].0, "queued");
        }

        let cancelled = admin
            .post(
                &app,
                &format!("/admin/invitations/{id}/cancel"),
                &[("csrf_token", &csrf)],
            )
            .await;
        assert_eq!(cancelled.status, StatusCode::SEE_OTHER);
        assert_eq!(
            invitation_status(db, "again@example.com"),
            vec!["cancelled"]
        );
        let dead = invitee
            .get(&app, &format!("/auth/invitations/{second}"))
            .await;
        assert_eq!(dead.status, StatusCode::NOT_FOUND, "cancel kills the link");
        // A cancelled invitation cannot be resent or cancelled again.
        let before = counts(db);
        let again = admin
            .post(
                &app,
                &format!("/admin/invitations/{id}/resend"),
                &[("csrf_token", &csrf)],
            )
            .await;
        assert_eq!(again.status, StatusCode::SEE_OTHER);
        let page = admin.get(&app, "/admin/invitations?status=cancelled").await;
        assert!(page
            .body
            .contains("is cancelled and can no longer be changed"));
        assert!(page.body.contains("again@example.com"));
        assert_eq!(counts(db), before);
    });
});

both!(invitation_decline_is_final, |db| {
    let cast = fx::cast(db);
    let (id, token) = invite_direct(
        db,
        cast.org_a.id,
        "maybe@example.com",
        chrono::Duration::days(1),
    );
    let hooks = Recorder::default();
    let fd = builder(db).hooks(hooks.clone()).build().expect("frontdesk");
    block_on(async move {
        let app = host_app!(fd);
        let link = format!("/auth/invitations/{token}");
        let mut b = Browser::new();
        let page = b.get(&app, &link).await;
        let csrf = page.csrf();
        let declined = b
            .post(&app, &link, &[("csrf_token", &csrf), ("action", "decline")])
            .await;
        assert_eq!(declined.status, StatusCode::OK);
        assert!(declined.body.contains("Invitation declined"));
        assert_eq!(declined.header("referrer-policy"), Some("no-referrer"));
        assert_eq!(invitation_status(db, "maybe@example.com"), vec!["declined"]);
        assert_eq!(
            hooks.events(),
            vec!["declined maybe@example.com".to_owned()]
        );
        let before = counts(db);
        let accept = b.post(&app, &link, &accept_form(&csrf, "Late")).await;
        assert_eq!(accept.status, StatusCode::NOT_FOUND);
        assert_eq!(counts(db), before, "no account made");
        // An admin cannot revive it either.
        let (mut admin, acsrf) = fx::signed_in(db, cast.get("staff_owner"));
        let resend = admin
            .post(
                &app,
                &format!("/admin/invitations/{id}/resend"),
                &[("csrf_token", &acsrf)],
            )
            .await;
        assert_eq!(resend.status, StatusCode::SEE_OTHER);
        assert_eq!(invitation_status(db, "maybe@example.com"), vec!["declined"]);
        assert_eq!(counts(db), before);
    });
});

both!(invitation_posts_need_csrf_and_same_origin, |db| {
    let cast = fx::cast(db);
    let (_, token) = invite_direct(
        db,
        cast.org_a.id,
        "csrf@example.com",
        chrono::Duration::days(1),
    );
    let fd = frontdesk(db);
    block_on(async move {
        let app = host_app!(fd);
        let link = format!("/auth/invitations/{token}");
        let mut b = Browser::new();
        let csrf = b.get(&app, &link).await.csrf();
        let before = counts(db);
        let no_token = b.post(&app, &link, &accept_form("", "Eve")).await;
        assert_eq!(no_token.status, StatusCode::FORBIDDEN);
        let wrong = b
            .post(
                &app,
                &link,
                &[("csrf_token", "bogus"), ("action", "decline")],
            )
            .await;
        assert_eq!(wrong.status, StatusCode::FORBIDDEN);
        b.headers
            .push(("sec-fetch-site".into(), "cross-site".into()));
        let cross = b.post(&app, &link, &accept_form(&csrf, "Eve")).await;
        assert_eq!(cross.status, StatusCode::FORBIDDEN);
        let cross = b
            .post(&app, &link, &[("csrf_token", &csrf), ("action", "decline")])
            .await;
        assert_eq!(cross.status, StatusCode::FORBIDDEN);
        b.headers.clear();
        assert_eq!(counts(db), before);
        assert_eq!(invitation_status(db, "csrf@example.com"), vec!["pending"]);

        // The admin form too.
        let (mut admin, _) = fx::signed_in(db, cast.get("staff_owner"));
        let org = cast.org_a.id.to_string();
        let refused = admin
            .post(
                &app,
                "/admin/invitations",
                &[
                    ("email", "x@example.com"),
                    ("organization", &org),
                    ("role", "member"),
                ],
            )
            .await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN);
        assert_eq!(counts(db), before);

        // A bad form is a clear error and changes nothing.
        let csrf = b.get(&app, &link).await.csrf();
        let mut short = accept_form(&csrf, "Eve");
        short[4] = ("password", "short");
        short[5] = ("password_confirm", "short");
        let page = b.post(&app, &link, &short).await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(page.body.contains("fd-error"));
        let mut mismatch = accept_form(&csrf, "Eve");
        mismatch[5] = ("password_confirm", "something else entirely");
        let page = b.post(&app, &link, &mismatch).await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(page.body.contains("do not match"));
        let page = b.post(&app, &link, &accept_form(&csrf, "")).await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
        let page = b
            .post(&app, &link, &[("csrf_token", &csrf), ("action", "maybe")])
            .await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST);
        assert_eq!(counts(db), before);
        assert_eq!(invitation_status(db, "csrf@example.com"), vec!["pending"]);
    });
});

both!(invitation_admin_scope_and_clear_errors, |db| {
    let cast = fx::cast(db);
    let fd = frontdesk(db);
    block_on(async move {
        let app = host_app!(fd);
        let a = cast.org_a.id.to_string();
        let b_org = cast.org_b.id.to_string();
        let (mut org_admin, csrf) = fx::signed_in(db, cast.get("org_admin"));
        let page = org_admin.get(&app, "/admin/invitations").await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(!page.body.contains("Globex"), "only their organization");
        assert!(
            !page.body.contains("<option value=\"owner\""),
            "owner not grantable"
        );
        assert!(page.body.contains("<option value=\"admin\""));
        let before = counts(db);
        for (org, role) in [(b_org.as_str(), "member"), (a.as_str(), "owner")] {
            let refused = org_admin
                .post(
                    &app,
                    "/admin/invitations",
                    &[
                        ("csrf_token", csrf.as_str()),
                        ("email", "new@example.com"),
                        ("organization", org),
                        ("role", role),
                    ],
                )
                .await;
            assert_eq!(refused.status, StatusCode::FORBIDDEN, "{org} {role}");
        }
        assert_eq!(counts(db), before, "nothing created");
        // Nor may they touch another organization's invitation.
        let (other_id, _) = invite_direct(
            db,
            cast.org_b.id,
            "b@example.com",
            chrono::Duration::days(1),
        );
        let before = counts(db);
        for action in ["resend", "cancel"] {
            let r = org_admin
                .post(
                    &app,
                    &format!("/admin/invitations/{other_id}/{action}"),
                    &[("csrf_token", &csrf)],
                )
                .await;
            assert_eq!(r.status, StatusCode::NOT_FOUND);
        }
        assert_eq!(counts(db), before);
        assert_eq!(invitation_status(db, "b@example.com"), vec!["pending"]);
        let list = org_admin.get(&app, "/admin/invitations").await;
        assert!(!list.body.contains("b@example.com"));

        // An existing member is a clear error; nothing is created.
        let r = org_admin
            .post(
                &app,
                "/admin/invitations",
                &[
                    ("csrf_token", &csrf),
                    ("email", "alice@acme.test"),
                    ("organization", &a),
                    ("role", "member"),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER);
        let page = org_admin.get(&app, r.location()).await;
        assert!(page.body.contains("already a member"), "{}", page.body);
        assert_eq!(counts(db), before);
        // A bad address, a missing role, a message too long: clear errors.
        let long = "x".repeat(invitations::MAX_MESSAGE + 1);
        for (email, role, message, says) in [
            ("not-an-email", "member", "", "invalid email"),
            ("ok@example.com", "", "", "Choose a role"),
            ("ok@example.com", "member", long.as_str(), "too long"),
        ] {
            let r = org_admin
                .post(
                    &app,
                    "/admin/invitations",
                    &[
                        ("csrf_token", &csrf),
                        ("email", email),
                        ("organization", &a),
                        ("role", role),
                        ("message", message),
                    ],
                )
                .await;
            assert_eq!(r.status, StatusCode::SEE_OTHER);
            let page = org_admin.get(&app, r.location()).await;
            assert!(page.body.contains(says), "{says}");
        }
        assert_eq!(counts(db), before);

        // A second invitation to a pending address offers the resend.
        let new_form = [
            ("csrf_token", csrf.as_str()),
            ("email", "dup@example.com"),
            ("organization", a.as_str()),
            ("role", "member"),
        ];
        let first = org_admin.post(&app, "/admin/invitations", &new_form).await;
        assert_eq!(first.status, StatusCode::SEE_OTHER);
        let after_first = counts(db);
        let second = org_admin.post(&app, "/admin/invitations", &new_form).await;
        assert_eq!(second.status, StatusCode::SEE_OTHER);
        assert!(second.location().contains("status=pending"));
        let page = org_admin.get(&app, second.location()).await;
        assert!(page.body.contains("already pending"));
        assert!(page.body.contains("Resend"));
        assert!(page.body.contains("dup@example.com"));
        assert_eq!(counts(db), after_first);

        // Who may open the page at all.
        let (mut viewer, vcsrf) = fx::signed_in(db, cast.get("staff_viewer"));
        let page = viewer.get(&app, "/admin/invitations").await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(
            !page.body.contains("Invite someone"),
            "viewers do not invite"
        );
        let r = viewer
            .post(
                &app,
                "/admin/invitations",
                &[
                    ("csrf_token", vcsrf.as_str()),
                    ("email", "v@example.com"),
                    ("organization", a.as_str()),
                    ("role", "member"),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        for role in ["org_member", "end_user"] {
            let (mut b, _) = fx::signed_in(db, cast.get(role));
            assert_eq!(
                b.get(&app, "/admin/invitations").await.status,
                StatusCode::FORBIDDEN,
                "{role}"
            );
        }
        let mut anon = Browser::new();
        assert_eq!(
            anon.get(&app, "/admin/invitations").await.status,
            StatusCode::SEE_OTHER
        );
        assert_eq!(counts(db), after_first);
    });
});

both!(invitation_to_an_existing_account_needs_its_sign_in, |db| {
    let cast = fx::cast(db);
    // Bob (a member of Globex) is invited to Acme.
    let (_, token) = invite_direct(
        db,
        cast.org_a.id,
        "bob@globex.test",
        chrono::Duration::days(1),
    );
    let fd = frontdesk(db);
    block_on(async move {
        let app = host_app!(fd);
        let link = format!("/auth/invitations/{token}");
        let mut anon = Browser::new();
        let page = anon.get(&app, &link).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.body.contains("already have an account"));
        assert!(page.body.contains("login?next=%2Fauth%2Finvitations%2F"));
        let before = counts(db);
        let r = anon
            .post(&app, &link, &accept_form(&page.csrf(), "Bob"))
            .await;
        assert_eq!(r.status, StatusCode::CONFLICT);
        assert!(r.body.contains("sign in to accept"));
        let (mut alice, csrf) = fx::signed_in(db, Some(&cast.alice));
        let page = alice.get(&app, &link).await;
        assert!(page
            .body
            .contains("but this invitation is for bob@globex.test"));
        let r = alice
            .post(&app, &link, &[("csrf_token", &csrf), ("action", "accept")])
            .await;
        assert_eq!(r.status, StatusCode::CONFLICT);
        assert_eq!(counts(db), before);
        assert_eq!(invitation_status(db, "bob@globex.test"), vec!["pending"]);

        let (mut bob, csrf) = fx::signed_in(db, Some(&cast.bob));
        let page = bob.get(&app, &link).await;
        assert!(page.body.contains("Accept and join Acme"));
        let session = bob.session().map(str::to_owned);
        let r = bob
            .post(&app, &link, &[("csrf_token", &csrf), ("action", "accept")])
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
        assert_eq!(
            bob.session().map(str::to_owned),
            session,
            "still the same sign-in"
        );
        assert_eq!(
            role_in(db, "bob@globex.test", cast.org_a.id).as_deref(),
            Some("member")
        );
        assert_eq!(
            role_in(db, "bob@globex.test", cast.org_b.id).as_deref(),
            Some("member")
        );
        assert_eq!(invitation_status(db, "bob@globex.test"), vec!["accepted"]);
    });
});

both!(invitation_mail_config_errors_are_clear, |db| {
    let err = |b: frontdesk::FrontdeskBuilder| match b.build() {
        Ok(_) => String::new(),
        Err(e) => e.to_string(),
    };
    assert!(err(builder(db).mail_url("smtp://localhost:2525")).contains("mail_from is required"));
    assert!(err(builder(db).mail_from("a@example.com")).contains("needs mail_url"));
    assert!(err(builder(db)
        .mail_url("gopher://x")
        .mail_from("a@example.com"))
    .contains("unknown mail URL scheme"));
    assert!(err(builder(db)
        .mail_url("smtp://localhost")
        .mail_from("not an address"))
    .contains("mail address"));
    assert!(err(builder(db).invitation_ttl(chrono::Duration::zero())).contains("invitation_ttl"));
    let fd = frontdesk(db);
    block_on(async move {
        assert!(fd.mailer().is_none());
        match fd.start_mailer() {
            Ok(_) => panic!("no transport configured"),
            Err(e) => assert!(e.to_string().contains("no mail transport configured")),
        }
    });
});

both!(
    invitation_mail_follows_prefix_ttl_and_template_overrides,
    |db| {
        let cast = fx::cast(db);
        let dir = tempfile::tempdir().expect("dir");
        std::fs::create_dir_all(dir.path().join("email/invitation")).expect("mkdir");
        std::fs::write(
            dir.path().join("email/invitation/subject.txt"),
            "Come join {{ organization }}",
        )
        .expect("write");
        let fd = builder(db)
            .auth_prefix("/account")
            .invitation_ttl(chrono::Duration::hours(2))
            .template_dir(dir.path())
            .build()
            .expect("frontdesk");
        block_on(async move {
            let app = host_app!(fd);
            let (mut admin, csrf) = fx::signed_in(db, cast.get("staff_owner"));
            let org = cast.org_a.id.to_string();
            let r = admin
                .post(
                    &app,
                    "/admin/invitations",
                    &[
                        ("csrf_token", csrf.as_str()),
                        ("email", "prefix@example.com"),
                        ("organization", org.as_str()),
                        ("role", "owner"),
                    ],
                )
                .await;
            assert_eq!(r.status, StatusCode::SEE_OTHER);
            let mut conn = db.conn();
            let (subject, body): (String, String) = outbox::table
                .order(outbox::id.desc())
                .select((outbox::subject, outbox::text_body))
                .first(&mut *conn)
                .expect("mail");
            let (created, expires): (chrono::NaiveDateTime, chrono::NaiveDateTime) = inv_t::table
                .filter(inv_t::email.eq("prefix@example.com"))
                .select((inv_t::created_at, inv_t::expires_at))
                .first(&mut *conn)
                .expect("invitation");
            drop(conn);
            assert_eq!(subject, "Come join Acme");
            assert_eq!(expires - created, chrono::Duration::hours(2));
            let marker = "http://app.test/account/invitations/";
            let start = body.find(marker).expect("link under the auth prefix") + marker.len();
            let token: String = body[start..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                .collect();
            let mut invitee = Browser::new();
            let page = invitee
                .get(&app, &format!("/account/invitations/{token}"))
                .await;
            assert_eq!(page.status, StatusCode::OK);
            assert!(
                page.body.contains("<strong>owner</strong>"),
                "staff may grant owner"
            );
        });
    }
);

/// The `<input>` tag of the field named `name` in a page.
fn input_tag<'a>(body: &'a str, name: &str) -> &'a str {
    let at = body
        .find(&format!("name=\"{name}\""))
        .unwrap_or_else(|| panic!("no field {name} in:\n{body}"));
    let start = body[..at].rfind("<input").expect("an input tag");
    let end = at + body[at..].find('>').expect("the tag's end");
    &body[start..=end]
}

both!(invitation_form_errors_mark_their_fields, |db| {
    let cast = fx::cast(db);
    let (_, token) = invite_direct(
        db,
        cast.org_a.id,
        "fields@example.com",
        chrono::Duration::days(1),
    );
    let fd = frontdesk(db);
    block_on(async move {
        let app = host_app!(fd);
        let mut b = Browser::new();
        let link = format!("/auth/invitations/{token}");
        let page = b.get(&app, &link).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(
            !page.body.contains("aria-invalid"),
            "nothing marked before a mistake"
        );
        let csrf = page.csrf();
        let long_name = "x".repeat(101);
        // (what is wrong, the fields marked, the fields left alone)
        type Case<'a> = (Vec<(&'a str, &'a str)>, &'a [&'a str], &'a [&'a str]);
        let cases: [Case; 4] = [
            (
                accept_form(&csrf, ""),
                &["first_name"],
                &["last_name", "password", "password_confirm"],
            ),
            (
                accept_form(&csrf, "Ann")
                    .into_iter()
                    .map(|(k, v)| (k, if k == "last_name" { &long_name } else { v }))
                    .collect(),
                &["last_name"],
                &["first_name", "password", "password_confirm"],
            ),
            (
                accept_form(&csrf, "Ann")
                    .into_iter()
                    .map(|(k, v)| {
                        (
                            k,
                            if k == "password_confirm" {
                                "other one"
                            } else {
                                v
                            },
                        )
                    })
                    .collect(),
                &["password", "password_confirm"],
                &["first_name", "last_name"],
            ),
            (
                accept_form(&csrf, "Ann")
                    .into_iter()
                    .map(|(k, v)| {
                        (
                            k,
                            if k.starts_with("password") {
                                "short"
                            } else {
                                v
                            },
                        )
                    })
                    .collect(),
                &["password"],
                &["first_name", "last_name", "password_confirm"],
            ),
        ];
        for (form, marked, clean) in cases {
            let res = b.post(&app, &link, &form).await;
            assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "{marked:?}");
            assert!(
                res.body
                    .contains("<p class=\"fd-error\" id=\"fd-error\" role=\"alert\">"),
                "the message has the id the fields point to: {}",
                res.body
            );
            for (i, name) in marked.iter().enumerate() {
                let tag = input_tag(&res.body, name);
                assert!(
                    tag.contains("aria-invalid=\"true\"")
                        && tag.contains("aria-describedby=\"fd-error\""),
                    "{name}: {tag}"
                );
                assert_eq!(
                    tag.contains("autofocus"),
                    i == 0,
                    "only the first is focused: {tag}"
                );
            }
            for name in clean {
                let tag = input_tag(&res.body, name);
                assert!(
                    !tag.contains("aria-invalid") && !tag.contains("autofocus"),
                    "{name}: {tag}"
                );
            }
        }
        // None of it changed anything.
        assert_eq!(invitation_status(db, "fields@example.com"), vec!["pending"]);
        let accounts: i64 = users_t::table
            .filter(users_t::email.eq("fields@example.com"))
            .count()
            .get_result(&mut db.conn())
            .expect("count");
        assert_eq!(accounts, 0);
    });
});

fn invited_names(db: &TestDb, email: &str) -> Option<(Option<String>, Option<String>)> {
    let mut conn = db.conn();
    inv_t::table
        .filter(inv_t::email.eq(email))
        .select((inv_t::first_name, inv_t::last_name))
        .first(&mut *conn)
        .optional()
        .expect("names")
}

both!(
    invitation_names_are_kept_and_fill_in_the_accept_page,
    |db| {
        let cast = fx::cast(db);
        let fd = frontdesk(db);
        block_on(async move {
            let app = host_app!(fd);
            let (mut admin, csrf) = fx::signed_in(db, cast.get("org_admin"));
            let page = admin.get(&app, "/admin/invitations").await;
            assert!(page.body.contains(r#"name="first_name""#), "{}", page.body);
            assert!(page.body.contains(r#"name="last_name""#));
            let org = cast.org_a.id.to_string();
            let invite = |email: &'static str, first: &'static str, last: &'static str| {
                vec![
                    ("csrf_token", csrf.clone()),
                    ("email", email.to_owned()),
                    ("organization", org.clone()),
                    ("role", "member".to_owned()),
                    ("first_name", first.to_owned()),
                    ("last_name", last.to_owned()),
                ]
            };
            let post = |form: Vec<(&'static str, String)>| {
                let mut admin = admin.clone();
                let app = &app;
                async move {
                    let pairs: Vec<(&str, &str)> =
                        form.iter().map(|(k, v)| (*k, v.as_str())).collect();
                    let res = admin.post(app, "/admin/invitations", &pairs).await;
                    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
                    admin.get(app, "/admin/invitations").await
                }
            };

            let listed = post(invite("ada@example.com", "  Ada ", "Lovelace")).await;
            assert!(listed
                .body
                .contains("Invitation to ada@example.com created"));
            assert_eq!(
                invited_names(db, "ada@example.com"),
                Some((Some("Ada".into()), Some("Lovelace".into())))
            );
            // The invitee's page starts with the names filled in.
            let token = latest_token(db);
            let mut invitee = Browser::new();
            let page = invitee
                .get(&app, &format!("/auth/invitations/{token}"))
                .await;
            assert_eq!(page.status, StatusCode::OK);
            assert!(
                page.body.contains(r#"name="first_name" value="Ada""#),
                "{}",
                page.body
            );
            assert!(page.body.contains(r#"name="last_name" value="Lovelace""#));

            // Empty names are no names; the page then starts empty.
            post(invite("noname@example.com", " ", "")).await;
            assert_eq!(invited_names(db, "noname@example.com"), Some((None, None)));
            let token = latest_token(db);
            let page = invitee
                .get(&app, &format!("/auth/invitations/{token}"))
                .await;
            assert!(
                page.body.contains(r#"name="first_name" value="""#),
                "{}",
                page.body
            );

            // A bad name is refused with a clear reason and nothing is created.
            let before = counts(db);
            let refused = post(invite("bell@example.com", "Bell\u{7}", "")).await;
            assert!(
                refused
                    .body
                    .contains("first_name is invalid: contains control characters"),
                "{}",
                refused.body
            );
            let long = "x".repeat(101);
            let refused = post(vec![
                ("csrf_token", csrf.clone()),
                ("email", "long@example.com".into()),
                ("organization", org.clone()),
                ("role", "member".into()),
                ("last_name", long),
            ])
            .await;
            assert!(
                refused.body.contains("last_name is too long"),
                "{}",
                refused.body
            );
            let refused = post(invite("line@example.com", "Two\nLines", "")).await;
            assert!(
                refused.body.contains("contains a line break"),
                "{}",
                refused.body
            );
            assert_eq!(counts(db), before);
            assert_eq!(invited_names(db, "bell@example.com"), None);
        });
    }
);

both!(invitation_pages_say_when_mail_waits_for_a_transport, |db| {
    let cast = fx::cast(db);
    const WAITS: &str = "Invitations will wait in the outbox until mail is set up";
    block_on(async move {
        let org = cast.org_a.id.to_string();
        let (mut admin, csrf) = fx::signed_in(db, cast.get("staff_owner"));
        // No transport: the pages warn, and the confirmation does not promise mail.
        let fd = frontdesk(db);
        let app = host_app!(fd);
        for path in ["/admin/invitations", "/admin/imports"] {
            let page = admin.get(&app, path).await;
            assert!(page.body.contains(WAITS), "{path}: {}", page.body);
        }
        admin
            .post(
                &app,
                "/admin/invitations",
                &[
                    ("csrf_token", &csrf),
                    ("email", "first@example.com"),
                    ("organization", &org),
                    ("role", "member"),
                ],
            )
            .await;
        let page = admin.get(&app, "/admin/invitations").await;
        assert!(
            page.body
                .contains("it waits in the outbox until mail is set up"),
            "{}",
            page.body
        );
        assert!(!page.body.contains("on its way"));

        // With a transport: no warning, and the mail is on its way.
        let (transport, _memory) = frontdesk_mail::Transport::memory();
        let fd = builder(db)
            .mail_transport(transport)
            .mail_from("Notes <no-reply@notes.example>")
            .build()
            .expect("frontdesk");
        let app = host_app!(fd);
        for path in ["/admin/invitations", "/admin/imports"] {
            let page = admin.get(&app, path).await;
            assert_eq!(page.status, StatusCode::OK);
            assert!(!page.body.contains(WAITS), "{path}");
        }
        admin
            .post(
                &app,
                "/admin/invitations",
                &[
                    ("csrf_token", &csrf),
                    ("email", "second@example.com"),
                    ("organization", &org),
                    ("role", "member"),
                ],
            )
            .await;
        let page = admin.get(&app, "/admin/invitations").await;
        assert!(
            page.body
                .contains("Invitation to second@example.com created; the mail is on its way."),
            "{}",
            page.body
        );
    });
});
