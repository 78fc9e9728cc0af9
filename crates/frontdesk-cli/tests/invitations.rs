//! `frontdesk invite` and `frontdesk outbox` end to end: the binary against a
//! fresh SQLite file and a fresh PostgreSQL database (the integration suite's
//! `both!`), delivering to the loopback SMTP test server.

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use diesel::prelude::*;
use frontdesk_core::schema::{audit_events, invitations, outbox as outbox_t};
use frontdesk_core::users::{self, NewUser};
use frontdesk_core::{organizations, Actor, OrgRole};
use frontdesk_mail::test_smtp::TestSmtp;

#[path = "../../../tests/integration/support.rs"]
mod support;

use support::TestDb;

const BASE: &str = "https://app.example.com";
const FROM: &str = "Acme <no-reply@acme.test>";

fn frontdesk(db: &TestDb, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_frontdesk"))
        .args(args)
        .env("DATABASE_URL", &db.url)
        .env_remove("FRONTDESK_BASE_URL")
        .env_remove("FRONTDESK_AUTH_PREFIX")
        .env_remove("FRONTDESK_MAIL_URL")
        .env_remove("FRONTDESK_MAIL_FROM")
        .env_remove("FRONTDESK_MAIL_TEMPLATES")
        .stdin(Stdio::null())
        .output()
        .expect("run frontdesk")
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn show(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        out(o),
        err(o)
    )
}

/// acme (only acme.test addresses) with a member and an org admin, and a staff owner.
fn setup(db: &TestDb) -> i64 {
    let mut c = db.conn();
    let acme =
        organizations::create(&mut c, &Actor::system(), "acme", "Acme", "acme.test").expect("org");
    for (email, role) in [
        ("mem@acme.test", OrgRole::Member),
        ("boss@acme.test", OrgRole::Admin),
    ] {
        users::create(
            &mut c,
            &Actor::system(),
            NewUser {
                email: email.into(),
                first_name: "Pat".into(),
                last_name: "Example".into(),
                organization: Some((acme.id, role)),
                ..NewUser::default()
            },
        )
        .expect("user");
    }
    acme.id
}

/// (id, status, send_count) of the invitations to `email`.
fn invitations_of(db: &TestDb, email: &str) -> Vec<(i64, String, i32)> {
    invitations::table
        .filter(invitations::email.eq(email))
        .order(invitations::id.asc())
        .select((
            invitations::id,
            invitations::status,
            invitations::send_count,
        ))
        .load(&mut db.conn())
        .expect("invitations")
}

/// (id, status, attempts, text body, last error) of the mails to `email`, oldest first.
type MailRow = (i64, String, i32, String, Option<String>);

fn mails_to(db: &TestDb, email: &str) -> Vec<MailRow> {
    outbox_t::table
        .filter(outbox_t::recipient.eq(email))
        .order(outbox_t::id.asc())
        .select((
            outbox_t::id,
            outbox_t::status,
            outbox_t::attempts,
            outbox_t::text_body,
            outbox_t::last_error,
        ))
        .load(&mut db.conn())
        .expect("outbox")
}

fn audit_count(db: &TestDb, action: &str) -> i64 {
    audit_events::table
        .filter(audit_events::action.eq(action))
        .count()
        .get_result(&mut db.conn())
        .expect("audit")
}

fn invitation_count(db: &TestDb) -> i64 {
    invitations::table
        .count()
        .get_result(&mut db.conn())
        .expect("count")
}

both!(invite_queues_mail_and_refuses_bad_input_clearly, |db| {
    let acme = setup(db);

    let o = frontdesk(
        db,
        &[
            "invite",
            "--org",
            "acme",
            "--role",
            "member",
            "--message",
            "Welcome aboard, Ann",
            "--expires-days",
            "3",
            "--base-url",
            BASE,
            "Ann@Acme.test",
            "mem@acme.test",
            "eve@other.test",
            "not-an-email",
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    assert!(
        out(&o).contains("invited ann@acme.test to acme as member (invitation "),
        "{}",
        show(&o)
    );
    assert!(out(&o).contains("the app's mail worker delivers queued mail"));
    let e = err(&o);
    assert!(
        e.contains("error: mem@acme.test: already a member of acme"),
        "{e}"
    );
    assert!(
        e.contains(
            "error: eve@other.test: the email domain is not allowed in acme (allowed: acme.test)"
        ),
        "{e}"
    );
    assert!(
        e.contains("error: not-an-email: invalid email address"),
        "{e}"
    );
    // Only the good address got an invitation, pending, for three days, with its mail queued.
    assert_eq!(invitation_count(db), 1);
    let (inv_id, status, sends) = invitations_of(db, "ann@acme.test")[0].clone();
    assert_eq!((status.as_str(), sends), ("pending", 1));
    let expires: chrono::NaiveDateTime = invitations::table
        .find(inv_id)
        .select(invitations::expires_at)
        .first(&mut db.conn())
        .expect("expiry");
    let days = (expires - frontdesk_core::time::now()).num_hours();
    assert!((71..=72).contains(&days), "expires in {days} hours");
    let mails = mails_to(db, "ann@acme.test");
    assert_eq!(mails.len(), 1);
    let (first_mail, mail_status, _, body, _) = &mails[0];
    assert_eq!(mail_status, "queued");
    assert!(
        body.contains(&format!("{BASE}/auth/invitations/")),
        "{body}"
    );
    assert!(body.contains("Welcome aboard, Ann"), "{body}");
    assert_eq!(audit_count(db, "invitation.create"), 1);

    // Pending already: the answer says how to resend; --resend does.
    let o = frontdesk(
        db,
        &[
            "invite",
            "--org",
            "acme",
            "--role",
            "member",
            "--base-url",
            BASE,
            "ann@acme.test",
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    assert!(
        err(&o).contains(&format!(
            "error: ann@acme.test: an invitation is already pending in acme (invitation {inv_id}); pass --resend"
        )),
        "{}",
        show(&o)
    );
    assert_eq!(invitations_of(db, "ann@acme.test")[0].2, 1, "nothing sent");
    let o = frontdesk(
        db,
        &[
            "invite",
            "--org",
            "acme",
            "--role",
            "admin",
            "--resend",
            "--base-url",
            BASE,
            "ann@acme.test",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(out(&o).contains("re-invited ann@acme.test to acme as member"));
    assert!(
        out(&o).contains("keeps its role member"),
        "the role flag does not silently change a pending invitation: {}",
        show(&o)
    );
    assert_eq!(
        invitations_of(db, "ann@acme.test"),
        vec![(inv_id, "pending".to_owned(), 2)]
    );
    let mails = mails_to(db, "ann@acme.test");
    assert_eq!(mails.len(), 2);
    assert_eq!(mails[0].1, "failed", "the first link died with the resend");
    assert!(mails[0]
        .4
        .as_deref()
        .is_some_and(|e| e.starts_with("superseded")));
    assert_eq!(mails[1].1, "queued");

    // A superseded mail is never queued again: it carries a dead link.
    let o = frontdesk(db, &["outbox", "--retry", &first_mail.to_string()]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    assert!(
        err(&o).contains("was dropped because its link no longer works"),
        "{}",
        show(&o)
    );
    let o = frontdesk(db, &["outbox", "--retry-failed"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(out(&o).contains("queued again: 0 failed mails"));
    assert!(out(&o).contains("outbox: 1 queued, 0 sending, 0 sent, 1 failed"));
    assert!(
        !out(&o).contains("failed or stuck"),
        "superseded mail is not a problem to look at: {}",
        show(&o)
    );
    assert_eq!(mails_to(db, "ann@acme.test")[0].1, "failed");

    // Refusals of the whole command: exit 1, nothing written.
    let before = invitation_count(db);
    for (args, expected) in [
        (
            vec!["--org", "nope", "--role", "member", "--base-url", BASE],
            "error: unknown organization \"nope\"",
        ),
        (
            vec!["--org", "acme", "--role", "boss", "--base-url", BASE],
            "error: --role \"boss\": use member, admin or owner",
        ),
        (
            vec!["--org", "acme", "--role", "member"],
            "error: --base-url (or FRONTDESK_BASE_URL) is required",
        ),
        (
            vec!["--org", "acme", "--role", "member", "--base-url", "ftp://x"],
            "error: --base-url: configuration: base URL \"ftp://x\" must start with http:// or https://",
        ),
        (
            vec![
                "--org",
                "acme",
                "--role",
                "member",
                "--base-url",
                BASE,
                "--as",
                "ghost@acme.test",
            ],
            "error: no user with the email ghost@acme.test",
        ),
        (
            vec![
                "--org",
                "acme",
                "--role",
                "member",
                "--base-url",
                BASE,
                "--send",
                "--mail-url",
                "gopher://mail",
                "--mail-from",
                FROM,
            ],
            "error: --mail-url: mail configuration: unknown mail URL scheme \"gopher\"",
        ),
    ] {
        let mut full = vec!["invite"];
        full.extend(args);
        full.push("zed@acme.test");
        let o = frontdesk(db, &full);
        assert_eq!(o.status.code(), Some(1), "{full:?}: {}", show(&o));
        assert!(err(&o).contains(expected), "{full:?}: {}", show(&o));
    }
    // Usage errors (clap): a zero expiry, --send without a transport.
    for args in [
        vec!["--expires-days", "0"],
        vec!["--send", "--mail-from", FROM],
    ] {
        let mut full = vec![
            "invite",
            "--org",
            "acme",
            "--role",
            "member",
            "--base-url",
            BASE,
        ];
        full.extend(args);
        full.push("zed@acme.test");
        let o = frontdesk(db, &full);
        assert_eq!(o.status.code(), Some(2), "{full:?}: {}", show(&o));
        assert!(err(&o).contains("error:"), "{full:?}: {}", show(&o));
    }
    assert_eq!(invitation_count(db), before);

    // An org admin acting through --as may not grant owner.
    let o = frontdesk(
        db,
        &[
            "invite",
            "--org",
            "acme",
            "--role",
            "owner",
            "--base-url",
            BASE,
            "--as",
            "boss@acme.test",
            "zed@acme.test",
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    assert!(
        err(&o).contains("error: zed@acme.test: boss@acme.test may not invite into acme as owner"),
        "{}",
        show(&o)
    );
    assert_eq!(invitation_count(db), before);
    // As a member they may; the invitation names them as the inviter.
    let o = frontdesk(
        db,
        &[
            "invite",
            "--org",
            "acme",
            "--role",
            "member",
            "--base-url",
            BASE,
            "--as",
            "boss@acme.test",
            "zed@acme.test",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let inviter: Option<i64> = invitations::table
        .filter(invitations::email.eq("zed@acme.test"))
        .select(invitations::invited_by)
        .first(&mut db.conn())
        .expect("invitation");
    let boss = users::find_by_email(&mut db.conn(), "boss@acme.test")
        .expect("query")
        .expect("boss");
    assert_eq!(inviter, Some(boss.id));
    let _ = acme;
});

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn invite_and_send(db: &TestDb, mail_url: &str, emails: &[&str]) -> Output {
    let mut args = vec![
        "invite",
        "--org",
        "acme",
        "--role",
        "member",
        "--base-url",
        BASE,
        "--send",
        "--mail-url",
        mail_url,
        "--mail-from",
        FROM,
    ];
    args.extend_from_slice(emails);
    frontdesk(db, &args)
}

both!(
    send_delivers_and_outbox_shows_and_retries_failed_mail,
    |db| {
        setup(db);
        let rt = runtime();
        let smtp = rt.block_on(TestSmtp::start()).expect("smtp server");
        smtp.reject_recipients_containing("bounce");
        let url = format!("smtp://127.0.0.1:{}?tls=none", smtp.port());

        // One delivered, one refused for good by the server.
        let o = invite_and_send(db, &url, &["ok@acme.test", "bounce@acme.test"]);
        assert_eq!(o.status.code(), Some(2), "{}", show(&o));
        let s = out(&o);
        assert!(
            s.contains("delivered 1 of 2 mails, 1 failed for good"),
            "{s}"
        );
        let ok_mail = mails_to(db, "ok@acme.test")[0].0;
        let bounce_mail = mails_to(db, "bounce@acme.test")[0].0;
        assert!(
            s.contains(&format!("mail #{ok_mail} to ok@acme.test: sent")),
            "{s}"
        );
        assert!(
        s.contains(&format!(
            "mail #{bounce_mail} to bounce@acme.test: failed after 1 attempt(s): attempt 1 (permanent)"
        )),
        "{s}"
    );
        let received = smtp.received();
        assert_eq!(received.len(), 1);
        assert_eq!(received[0].rcpt_to, vec!["ok@acme.test".to_owned()]);
        assert_eq!(
            received[0].header_values("Subject"),
            vec!["You are invited to join Acme".to_owned()]
        );
        assert!(received[0]
            .data
            .contains(&format!("{BASE}/auth/invitations/")));

        // The operator's view.
        let o = frontdesk(db, &["outbox"]);
        assert_eq!(o.status.code(), Some(0), "{}", show(&o));
        let s = out(&o);
        assert!(
            s.contains("outbox: 0 queued, 0 sending, 1 sent, 1 failed"),
            "{s}"
        );
        assert!(
            s.contains(&format!(
                "#{bounce_mail} failed invitation to bounce@acme.test (attempts 1"
            )),
            "{s}"
        );
        assert!(s.contains("last error: attempt 1 (permanent)"), "{s}");
        assert!(!s.contains("ok@acme.test"), "sent mail is no problem: {s}");

        // Retrying what cannot be retried says why.
        let o = frontdesk(db, &["outbox", "--retry", &ok_mail.to_string()]);
        assert_eq!(o.status.code(), Some(1), "{}", show(&o));
        assert!(
            err(&o).contains(&format!(
                "error: mail #{ok_mail} is sent, not failed; only failed mail is retried"
            )),
            "{}",
            show(&o)
        );
        let o = frontdesk(db, &["outbox", "--retry", "999999"]);
        assert_eq!(o.status.code(), Some(1), "{}", show(&o));
        assert!(err(&o).contains("error: no mail #999999 in the outbox"));
        let o = frontdesk(db, &["outbox", "--retry", "seven"]);
        assert_eq!(o.status.code(), Some(2), "{}", show(&o));
        assert_eq!(audit_count(db, "outbox.retry"), 0);

        // The relay takes the address now: retry by id and deliver.
        let fixed = rt.block_on(TestSmtp::start()).expect("smtp server");
        let fixed_url = format!("smtp://127.0.0.1:{}?tls=none", fixed.port());
        let o = frontdesk(
            db,
            &[
                "outbox",
                "--retry",
                &bounce_mail.to_string(),
                "--send",
                "--mail-url",
                &fixed_url,
                "--mail-from",
                FROM,
            ],
        );
        assert_eq!(o.status.code(), Some(0), "{}", show(&o));
        let s = out(&o);
        assert!(
            s.contains(&format!("mail #{bounce_mail} queued again")),
            "{s}"
        );
        assert!(s.contains("delivered 1 of 1 mails"), "{s}");
        assert!(
            s.contains("outbox: 0 queued, 0 sending, 2 sent, 0 failed"),
            "{s}"
        );
        assert_eq!(fixed.received().len(), 1);
        assert_eq!(
            fixed.received()[0].rcpt_to,
            vec!["bounce@acme.test".to_owned()]
        );
        assert_eq!(audit_count(db, "outbox.retry"), 1);

        // The relay is down: the mail waits for a retry and the list says so.
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr").port()
        };
        let down_url = format!("smtp://127.0.0.1:{closed}?tls=none&timeout=5");
        let o = invite_and_send(db, &down_url, &["late@acme.test"]);
        assert_eq!(o.status.code(), Some(2), "{}", show(&o));
        assert!(
            out(&o).contains("1 failed and wait for a retry"),
            "{}",
            show(&o)
        );
        assert!(
            out(&o).contains("to late@acme.test: queued after 1 attempt(s): attempt 1 (transient)"),
            "{}",
            show(&o)
        );
        let late_mail = mails_to(db, "late@acme.test")[0].0;
        let o = frontdesk(db, &["outbox"]);
        let s = out(&o);
        assert!(
            s.contains("waiting for a retry after a failed attempt:"),
            "{s}"
        );
        assert!(
            s.contains(&format!(
                "#{late_mail} queued invitation to late@acme.test (attempts 1"
            )),
            "{s}"
        );
        assert!(s.contains("next attempt"), "{s}");
        // Only failed mail is requeued by hand; a queued one keeps its backoff.
        let o = frontdesk(db, &["outbox", "--retry", &late_mail.to_string()]);
        assert_eq!(o.status.code(), Some(1), "{}", show(&o));
        assert!(
            err(&o).contains("is already queued (next attempt"),
            "{}",
            show(&o)
        );

        // Mark it failed the way the worker does after its last attempt, then
        // --retry-failed puts it back and delivers it.
        {
            let mut c = db.conn();
            diesel::update(outbox_t::table.find(late_mail))
                .set(outbox_t::next_attempt_at.eq(frontdesk_core::time::now()))
                .execute(&mut c)
                .expect("due");
            let claimed =
                frontdesk_core::outbox::claim_due(&mut c, 10, chrono::Duration::minutes(5))
                    .expect("claim");
            assert_eq!(claimed.len(), 1);
            // While a worker holds it, a retry by hand is refused and says why.
            let o = frontdesk(db, &["outbox", "--retry", &late_mail.to_string()]);
            assert_eq!(o.status.code(), Some(1), "{}", show(&o));
            assert!(
                err(&o).contains(&format!(
                    "error: mail #{late_mail} is held by a worker until"
                )),
                "{}",
                show(&o)
            );
            assert!(frontdesk_core::outbox::mark_unsent(
                &mut c,
                late_mail,
                claimed[0].attempts,
                "attempt 2 (transient): connection refused",
                None
            )
            .expect("fail"));
        }
        let o = frontdesk(
            db,
            &[
                "outbox",
                "--retry-failed",
                "--send",
                "--mail-url",
                &fixed_url,
                "--mail-from",
                FROM,
            ],
        );
        assert_eq!(o.status.code(), Some(0), "{}", show(&o));
        let s = out(&o);
        assert!(s.contains("queued again: 1 failed mails"), "{s}");
        assert!(s.contains("delivered 1 of 1 mails"), "{s}");
        assert!(
            s.contains("outbox: 0 queued, 0 sending, 3 sent, 0 failed"),
            "{s}"
        );
        assert_eq!(
            rt.block_on(fixed.wait_for(2, Duration::from_secs(5))),
            2,
            "late@acme.test delivered"
        );
        assert_eq!(audit_count(db, "outbox.retry"), 2);
    }
);

both!(invite_may_name_the_invitee, |db| {
    setup(db);
    let base = [
        "invite",
        "--org",
        "acme",
        "--role",
        "member",
        "--base-url",
        BASE,
    ];
    // Names belong to one invitee: refused with two addresses, nothing written.
    let mut two = base.to_vec();
    two.extend(["--first-name", "Ann", "ann@acme.test", "bea@acme.test"]);
    let o = frontdesk(db, &two);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    assert!(err(&o).contains("give one address"), "{}", show(&o));
    assert_eq!(invitation_count(db), 0);

    let mut one = base.to_vec();
    one.extend(["--first-name", "Ann", "--last-name", "Lee", "ann@acme.test"]);
    let o = frontdesk(db, &one);
    assert!(o.status.success(), "{}", show(&o));
    let names: (Option<String>, Option<String>) = invitations::table
        .filter(invitations::email.eq("ann@acme.test"))
        .select((invitations::first_name, invitations::last_name))
        .first(&mut db.conn())
        .expect("invitation");
    assert_eq!(names, (Some("Ann".into()), Some("Lee".into())));

    let mut bad = base.to_vec();
    bad.extend(["--last-name", "Two\nLines", "cy@acme.test"]);
    let o = frontdesk(db, &bad);
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    assert!(err(&o).contains("contains a line break"), "{}", show(&o));
    assert_eq!(invitation_count(db), 1);
});
