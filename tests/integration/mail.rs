//! The outbox worker against a real SMTP server on loopback, on both backends:
//! end-to-end invitation delivery, an SMTP outage, retries and final failure,
//! crashed-worker leases, two workers on one database, header injection, and
//! the file transport.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use diesel::prelude::*;
use frontdesk_core::db::{self, DbConnection};
use frontdesk_core::invitations::{self, Acceptance, NewInvitation};
use frontdesk_core::outbox::{self, NewMail};
use frontdesk_core::schema::outbox as outbox_t;
use frontdesk_core::{organizations, OrgRole};
use frontdesk_mail::test_smtp::{ReceivedMail, TestSmtp};
use frontdesk_mail::{MailConfig, Mailer, SmtpConfig, SmtpSecurity, Transport};

use crate::both;
use crate::invitations::{fixture, invite, token_in};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn config() -> MailConfig {
    let mut c = MailConfig::new("Acme <no-reply@acme.example>").expect("config");
    c.base_backoff = Duration::from_millis(200);
    c.max_backoff = Duration::from_secs(1);
    c.poll_interval = Duration::from_millis(20);
    c
}

fn smtp_to(port: u16) -> Transport {
    Transport::smtp(
        &SmtpConfig::new("127.0.0.1", SmtpSecurity::None)
            .port(port)
            .timeout(Duration::from_secs(5)),
    )
    .expect("smtp transport")
}

/// A loopback port with nothing listening on it (yet).
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// The text of a received mail with quoted-printable soft line breaks undone.
fn unfolded(m: &ReceivedMail) -> String {
    m.data.replace("=\r\n", "")
}

fn statuses(conn: &mut DbConnection) -> HashMap<String, i64> {
    outbox::counts(conn).expect("counts").into_iter().collect()
}

fn queue_plain(conn: &mut DbConnection, n: usize, tag: &str) -> Vec<i64> {
    (0..n)
        .map(|i| {
            outbox::enqueue(
                conn,
                &NewMail {
                    kind: "test".into(),
                    recipient: format!("{tag}{i}@example.com"),
                    subject: format!("{tag} {i}"),
                    text_body: format!("mail {i}"),
                    html_body: None,
                    invitation_id: None,
                },
            )
            .expect("enqueue")
        })
        .collect()
}

fn message_ids(mails: &[ReceivedMail]) -> HashSet<String> {
    mails
        .iter()
        .flat_map(|m| m.header_values("Message-ID"))
        .collect()
}

both!(invitation_mail_over_smtp_then_accept, |db| {
    runtime().block_on(async {
        let smtp = TestSmtp::start().await.expect("smtp server");
        let mailer = Mailer::new(db.pool().clone(), smtp_to(smtp.port()), config());
        let mut c = db.conn();
        let f = fixture(&mut c, "acme", "");
        let issued = invite(&mut c, &f, "newbie@example.com");

        let report = mailer.deliver_due_once().await.expect("deliver");
        assert_eq!(
            (report.claimed, report.sent, report.retried, report.failed),
            (1, 1, 0, 0)
        );
        let got = smtp.received();
        assert_eq!(got.len(), 1);
        let m = &got[0];
        assert_eq!(m.rcpt_to, vec!["newbie@example.com".to_owned()]);
        assert_eq!(m.mail_from, "no-reply@acme.example");
        assert_eq!(
            m.header_values("Subject"),
            vec!["Bo Boss invited you to join acme Inc".to_owned()]
        );
        assert_eq!(m.header_values("To"), vec!["newbie@example.com".to_owned()]);
        assert!(
            m.headers().contains("multipart/alternative"),
            "text and HTML parts"
        );
        let token = token_in(&unfolded(m));
        assert_eq!(token, issued.token.expose());

        // The link opened twice (a mail scanner, then the person), then accepted.
        invitations::preview(&mut c, &token).expect("first GET");
        invitations::preview(&mut c, &token).expect("second GET");
        let hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".to_owned();
        let accepted = invitations::accept(
            &mut c,
            &token,
            &Acceptance::NewAccount {
                first_name: "Nina".into(),
                last_name: "New".into(),
                password_hash: hash,
            },
        )
        .expect("accept");
        assert_eq!(
            organizations::roles_of(&mut c, accepted.user.id).expect("roles"),
            vec![(f.org, OrgRole::Member)]
        );

        let (status, attempts, sent_at): (String, i32, Option<chrono::NaiveDateTime>) =
            outbox_t::table
                .find(issued.outbox_id)
                .select((outbox_t::status, outbox_t::attempts, outbox_t::sent_at))
                .first(&mut c)
                .expect("row");
        assert_eq!(
            (status.as_str(), attempts, sent_at.is_some()),
            ("sent", 1, true)
        );
        assert_eq!(
            mailer.deliver_due_once().await.expect("deliver").claimed,
            0,
            "nothing is sent twice"
        );
        assert_eq!(smtp.count(), 1);
    });
});

both!(
    smtp_outage_during_1000_invitations_loses_none_and_sends_none_twice,
    |db| {
        runtime().block_on(async {
            let port = free_port();
            let mut cfg = config();
            cfg.max_attempts = 100;
            let mailer = Mailer::new(db.pool().clone(), smtp_to(port), cfg);
            let worker = mailer.spawn().expect("worker");
            let waker = worker.waker();
            let mut c = db.conn();
            let f = fixture(&mut c, "acme", "");
            let n = 1000;
            let mut tokens = HashMap::new();
            for i in 0..n {
                let issued = invite(&mut c, &f, &format!("person{i}@example.com"));
                tokens.insert(
                    issued.invitation.email.clone(),
                    issued.token.expose().to_owned(),
                );
                if i % 100 == 0 {
                    waker.wake();
                }
            }
            // The worker has been failing meanwhile: mail waits, nothing is lost or given up.
            let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            loop {
                let retried: i64 = outbox_t::table
                    .filter(outbox_t::attempts.ge(1))
                    .count()
                    .get_result(&mut c)
                    .expect("count");
                if retried == n as i64 || tokio::time::Instant::now() > deadline {
                    assert_eq!(
                        retried, n as i64,
                        "every mail was tried while SMTP was down"
                    );
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let s = statuses(&mut c);
            assert_eq!(s.get("sent"), None);
            assert_eq!(s.get("failed"), None);
            assert_eq!(
                s.get("queued").copied().unwrap_or(0) + s.get("sending").copied().unwrap_or(0),
                n as i64
            );
            let errors: i64 = outbox_t::table
                .filter(outbox_t::last_error.is_not_null())
                .count()
                .get_result(&mut c)
                .expect("count");
            assert!(errors > 0, "the failures are recorded");

            // SMTP is back on the same port.
            let smtp = TestSmtp::start_on(([127, 0, 0, 1], port).into())
                .await
                .expect("smtp server");
            worker.wake();
            let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
            loop {
                let sent = statuses(&mut c).get("sent").copied().unwrap_or(0);
                if sent == n as i64 || tokio::time::Instant::now() > deadline {
                    assert_eq!(sent, n as i64, "all mail delivered once SMTP is back");
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            worker.shutdown().await;

            let got = smtp.received();
            assert_eq!(got.len(), n, "0 lost, 0 sent twice");
            assert_eq!(message_ids(&got).len(), n);
            let mut per_recipient: HashMap<String, usize> = HashMap::new();
            for m in &got {
                for r in &m.rcpt_to {
                    *per_recipient.entry(r.clone()).or_default() += 1;
                }
                // Each mail carries the link of its own recipient's invitation.
                let want = tokens.get(&m.rcpt_to[0]).expect("invited recipient");
                assert_eq!(&token_in(&unfolded(m)), want);
            }
            assert_eq!(per_recipient.len(), n);
            assert!(per_recipient.values().all(|&k| k == 1));
            assert!(
                smtp.connections() < n / 4,
                "connections are reused ({} for {n} mails)",
                smtp.connections()
            );
        });
    }
);

both!(two_workers_on_one_database_deliver_each_mail_once, |db| {
    runtime().block_on(async {
        let smtp = TestSmtp::start().await.expect("smtp server");
        let n = 400;
        queue_plain(&mut db.conn(), n, "two");
        // Two app instances: separate pools and transports, one database.
        let mut cfg = config();
        cfg.batch_size = 10;
        let a = Mailer::new(
            db::connect(&db.url, 4).expect("pool a"),
            smtp_to(smtp.port()),
            cfg.clone(),
        );
        let b = Mailer::new(
            db::connect(&db.url, 4).expect("pool b"),
            smtp_to(smtp.port()),
            cfg,
        );
        let (ra, rb) = tokio::join!(a.deliver_all_due(), b.deliver_all_due());
        let (ra, rb) = (ra.expect("worker a"), rb.expect("worker b"));
        assert_eq!(ra.sent + rb.sent, n);
        assert_eq!(
            (ra.lost_claims, rb.lost_claims, ra.retried + rb.retried),
            (0, 0, 0)
        );
        assert!(
            ra.sent > 0 && rb.sent > 0,
            "both workers took part ({} / {})",
            ra.sent,
            rb.sent
        );
        let got = smtp.received();
        assert_eq!(got.len(), n);
        assert_eq!(
            message_ids(&got).len(),
            n,
            "each mail delivered exactly once"
        );
        assert_eq!(
            statuses(&mut db.conn()).get("sent").copied(),
            Some(n as i64)
        );
    });
});

both!(
    header_injection_in_subject_name_or_message_adds_no_header,
    |db| {
        runtime().block_on(async {
            let smtp = TestSmtp::start().await.expect("smtp server");
            let mailer = Mailer::new(db.pool().clone(), smtp_to(smtp.port()), config());
            let mut c = db.conn();
            let f = fixture(&mut c, "acme", "");
            // A subject that reached the outbox with line breaks in it (a custom template, a name).
            outbox::enqueue(
                &mut c,
                &NewMail {
                    kind: "test".into(),
                    recipient: "victim@example.com".into(),
                    subject: "Hello\r\nBcc: evil@attacker.example\r\nX-Injected: yes".into(),
                    text_body: "body".into(),
                    html_body: None,
                    invitation_id: None,
                },
            )
            .expect("enqueue");
            // A personal message written to look like headers.
            invitations::create(
                &mut c,
                &f.admin,
                &f.settings,
                &f.templates,
                &NewInvitation {
                    organization_id: f.org,
                    email: "invitee@example.com".into(),
                    role: OrgRole::Member,
                    message: Some("hi\r\nBcc: evil@attacker.example\r\n\r\nX-Injected: yes".into()),
                    first_name: None,
                    last_name: None,
                    groups: Vec::new(),
                },
            )
            .expect("invite");
            let r = mailer.deliver_due_once().await.expect("deliver");
            assert_eq!(r.sent, 2);
            let got = smtp.received();
            assert_eq!(got.len(), 2);
            for m in &got {
                assert_eq!(m.rcpt_to.len(), 1, "no extra recipient: {:?}", m.rcpt_to);
                assert!(!m.rcpt_to[0].contains("attacker"));
                assert_eq!(m.header_values("Subject").len(), 1, "one Subject header");
                let names: Vec<String> = m
                    .header_names()
                    .iter()
                    .map(|n| n.to_ascii_lowercase())
                    .collect();
                assert!(
                    !names.iter().any(|n| n == "bcc" || n == "x-injected"),
                    "extra headers: {names:?}"
                );
            }
            let first = got
                .iter()
                .find(|m| m.rcpt_to[0] == "victim@example.com")
                .expect("victim mail");
            assert_eq!(
                first.header_values("Subject"),
                vec!["Hello Bcc: evil@attacker.example X-Injected: yes".to_owned()]
            );
        });
    }
);

both!(failures_back_off_then_fail_with_the_last_error, |db| {
    runtime().block_on(async {
        let (transport, memory) = Transport::memory();
        let mut cfg = config();
        cfg.max_attempts = 3;
        // Backoffs long enough that a loaded machine cannot outrun them; the
        // test moves the due time instead of sleeping.
        cfg.base_backoff = Duration::from_secs(30);
        cfg.max_backoff = Duration::from_secs(60);
        let mailer = Mailer::new(db.pool().clone(), transport, cfg);
        let mut c = db.conn();
        let ids = queue_plain(&mut c, 1, "retry");
        memory.set_failing(Some("451 try again later"));

        let r = mailer.deliver_due_once().await.expect("round 1");
        assert_eq!((r.claimed, r.retried), (1, 1));
        let (status, attempts, next, err): (String, i32, chrono::NaiveDateTime, Option<String>) =
            outbox_t::table
                .find(ids[0])
                .select((
                    outbox_t::status,
                    outbox_t::attempts,
                    outbox_t::next_attempt_at,
                    outbox_t::last_error,
                ))
                .first(&mut c)
                .expect("row");
        assert_eq!((status.as_str(), attempts), ("queued", 1));
        assert!(next > frontdesk_core::time::now(), "the retry waits");
        assert!(err.is_some_and(|e| e.contains("451 try again later")));
        assert_eq!(
            mailer.deliver_due_once().await.expect("too early").claimed,
            0,
            "not due before its backoff"
        );

        for _ in 0..2 {
            diesel::update(outbox_t::table.find(ids[0]))
                .set(
                    outbox_t::next_attempt_at
                        .eq(frontdesk_core::time::now() - chrono::Duration::seconds(1)),
                )
                .execute(&mut c)
                .expect("make due");
            assert_eq!(mailer.deliver_due_once().await.expect("retry").claimed, 1);
        }
        let (status, attempts, err): (String, i32, Option<String>) = outbox_t::table
            .find(ids[0])
            .select((outbox_t::status, outbox_t::attempts, outbox_t::last_error))
            .first(&mut c)
            .expect("row");
        assert_eq!((status.as_str(), attempts), ("failed", 3));
        assert!(err.is_some_and(|e| e.starts_with("attempt 3")));
        assert_eq!(
            outbox::list_problems(&mut c, 10).expect("problems").len(),
            1
        );

        // An operator retries it once the transport works again.
        memory.set_failing(None);
        assert!(outbox::retry_failed(&mut c, ids[0]).expect("retry"));
        assert!(!outbox::retry_failed(&mut c, ids[0]).expect("not failed any more"));
        assert_eq!(mailer.deliver_due_once().await.expect("deliver").sent, 1);
        assert_eq!(memory.mails().len(), 1);
        assert!(memory.mails()[0].raw.contains("Subject: retry 0"));
    });
});

both!(a_permanent_smtp_refusal_fails_at_once, |db| {
    runtime().block_on(async {
        let smtp = TestSmtp::start().await.expect("smtp server");
        smtp.reject_recipients_containing("nobody");
        let mailer = Mailer::new(db.pool().clone(), smtp_to(smtp.port()), config());
        let mut c = db.conn();
        let ids = queue_plain(&mut c, 2, "nobody");
        queue_plain(&mut c, 1, "somebody");
        let r = mailer.deliver_due_once().await.expect("deliver");
        assert_eq!((r.sent, r.failed, r.retried), (1, 2, 0));
        let err: Option<String> = outbox_t::table
            .find(ids[0])
            .select(outbox_t::last_error)
            .first(&mut c)
            .expect("row");
        assert!(err.is_some_and(|e| e.contains("permanent") && e.contains("550")));
        assert_eq!(smtp.count(), 1);
    });
});

both!(
    mail_held_by_a_crashed_worker_is_taken_up_after_its_lease,
    |db| {
        runtime().block_on(async {
            let smtp = TestSmtp::start().await.expect("smtp server");
            let mailer = Mailer::new(db.pool().clone(), smtp_to(smtp.port()), config());
            let mut c = db.conn();
            let ids = queue_plain(&mut c, 3, "lease");
            // A worker claims the mail and dies before sending it.
            let held =
                outbox::claim_due(&mut c, 10, chrono::Duration::milliseconds(300)).expect("claim");
            assert_eq!(held.len(), 3);
            assert_eq!(
                mailer.deliver_due_once().await.expect("deliver").claimed,
                0,
                "the lease is respected"
            );
            tokio::time::sleep(Duration::from_millis(400)).await;
            let r = mailer.deliver_due_once().await.expect("deliver");
            assert_eq!((r.claimed, r.sent), (3, 3));
            // The dead worker's late report changes nothing.
            assert!(!outbox::mark_sent(&mut c, ids[0], 1).expect("stale mark"));
            let attempts: Vec<i32> = outbox_t::table
                .select(outbox_t::attempts)
                .order(outbox_t::id.asc())
                .load(&mut c)
                .expect("rows");
            assert_eq!(attempts, vec![2, 2, 2]);
            assert_eq!(smtp.count(), 3);
        });
    }
);

both!(smtp_auth_and_the_file_transport, |db| {
    runtime().block_on(async {
        let smtp = TestSmtp::start().await.expect("smtp server");
        smtp.require_auth("mailer", "s3cret");
        let good = SmtpConfig::new("127.0.0.1", SmtpSecurity::None)
            .port(smtp.port())
            .credentials("mailer", "s3cret");
        assert!(
            !format!("{good:?}").contains("s3cret"),
            "Debug hides the password"
        );
        let mut c = db.conn();
        queue_plain(&mut c, 1, "auth");
        let mailer = Mailer::new(
            db.pool().clone(),
            Transport::smtp(&good).expect("smtp"),
            config(),
        );
        assert_eq!(mailer.deliver_due_once().await.expect("deliver").sent, 1);
        assert_eq!(smtp.count(), 1);

        let dir = tempfile::tempdir().expect("dir");
        let folder = dir.path().join("mail");
        queue_plain(&mut c, 2, "file");
        let mailer = Mailer::new(
            db.pool().clone(),
            Transport::file(&folder).expect("file transport"),
            config(),
        );
        assert_eq!(mailer.deliver_due_once().await.expect("deliver").sent, 2);
        let emls: Vec<String> = std::fs::read_dir(&folder)
            .expect("folder")
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .map(|p| std::fs::read_to_string(p).expect("eml"))
            .collect();
        assert_eq!(emls.len(), 2);
        assert!(
            emls.iter().any(|e| e.contains("Subject: file 0"))
                && emls.iter().any(|e| e.contains("To: file1@example.com"))
        );

        assert!(Transport::smtp(&SmtpConfig::new("", SmtpSecurity::Tls)).is_err());
        assert_eq!(
            SmtpSecurity::parse("STARTTLS"),
            Some(SmtpSecurity::StartTls)
        );
        assert_eq!(
            SmtpConfig::new("smtp.example.com", SmtpSecurity::Tls).port,
            465
        );
    });
});

both!(tls_is_never_downgraded_to_plain_text, |db| {
    runtime().block_on(async {
        // The loopback server offers no STARTTLS and speaks no TLS: a transport
        // configured for either must not send the mail in the clear.
        let smtp = TestSmtp::start().await.expect("smtp server");
        let mut c = db.conn();
        let ids = queue_plain(&mut c, 2, "tls");
        for (i, security) in [SmtpSecurity::StartTls, SmtpSecurity::Tls]
            .into_iter()
            .enumerate()
        {
            let cfg = SmtpConfig::new("localhost", security)
                .port(smtp.port())
                .timeout(Duration::from_secs(5));
            let mut mc = config();
            mc.batch_size = 1;
            let mailer = Mailer::new(db.pool().clone(), Transport::smtp(&cfg).expect("smtp"), mc);
            let r = mailer.deliver_due_once().await.expect("deliver");
            assert_eq!((r.claimed, r.sent), (1, 0), "{security:?}");
            let err: Option<String> = outbox_t::table
                .find(ids[i])
                .select(outbox_t::last_error)
                .first(&mut c)
                .expect("row");
            assert!(err.is_some(), "{security:?}: the failure is recorded");
        }
        assert_eq!(smtp.count(), 0, "nothing went out in plain text");
    });
});

both!(
    mail_not_started_within_half_its_lease_goes_back_untried,
    |db| {
        runtime().block_on(async {
            let smtp = TestSmtp::start().await.expect("smtp server");
            let mut c = db.conn();
            let ids = queue_plain(&mut c, 3, "late");
            // A lease so short that no send may start: nothing goes out, nothing is lost.
            let mut cfg = config();
            cfg.lease = Duration::ZERO;
            let mailer = Mailer::new(db.pool().clone(), smtp_to(smtp.port()), cfg);
            let r = mailer.deliver_due_once().await.expect("deliver");
            assert_eq!((r.claimed, r.released, r.sent), (3, 3, 0));
            let rows: Vec<(String, i32)> = outbox_t::table
                .filter(outbox_t::id.eq_any(&ids))
                .select((outbox_t::status, outbox_t::attempts))
                .load(&mut c)
                .expect("rows");
            assert!(
                rows.iter().all(|(s, a)| s == "queued" && *a == 0),
                "{rows:?}"
            );
            assert_eq!(smtp.count(), 0);

            let mailer = Mailer::new(db.pool().clone(), smtp_to(smtp.port()), config());
            assert_eq!(mailer.deliver_due_once().await.expect("deliver").sent, 3);
            assert_eq!(smtp.count(), 3);
        });
    }
);
