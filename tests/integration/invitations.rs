//! Invitations: create, list, resend, cancel, preview, accept, decline and
//! expiry, on both backends. Mail is read back from the outbox here; delivery
//! over SMTP is in `mail.rs`.

use std::sync::{Arc, Barrier};

use diesel::prelude::*;
use frontdesk_core::db::{self, DatabaseUrl, DbConnection};
use frontdesk_core::invitations::{
    self, Acceptance, InvitationError, InvitationFilter, InvitationSettings, InvitationStatus,
    LinkProblem, NewInvitation,
};
use frontdesk_core::schema::{
    audit_events, invitations as inv_t, memberships, outbox, users as users_t,
};
use frontdesk_core::users::{self, NewUser};
use frontdesk_core::{organizations, Actor, CoreError, OrgRole};
use frontdesk_mail::Templates;

use crate::both;

pub const BASE_URL: &str = "https://app.example.com";

/// An organization with an admin, plus what the service needs.
pub struct Fixture {
    pub org: i64,
    pub admin: Actor,
    pub settings: InvitationSettings,
    pub templates: Templates,
}

pub fn fixture(conn: &mut DbConnection, slug: &str, domains: &str) -> Fixture {
    let sys = Actor::system();
    let org = organizations::create(conn, &sys, slug, &format!("{slug} Inc"), domains)
        .expect("org")
        .id;
    let admin = users::create(
        conn,
        &sys,
        NewUser {
            email: format!("admin@{slug}.example"),
            first_name: "Ada".into(),
            last_name: "Admin".into(),
            organization: Some((org, OrgRole::Owner)),
            ..NewUser::default()
        },
    )
    .expect("admin");
    // An organization admin (not owner) is the everyday inviter.
    let invited_admin = users::create(
        conn,
        &sys,
        NewUser {
            email: format!("boss@{slug}.example"),
            first_name: "Bo".into(),
            last_name: "Boss".into(),
            organization: Some((org, OrgRole::Admin)),
            ..NewUser::default()
        },
    )
    .expect("org admin");
    let _ = admin;
    Fixture {
        org,
        admin: Actor::user(invited_admin.id, None, vec![(org, OrgRole::Admin)]),
        settings: InvitationSettings::new(BASE_URL).expect("settings"),
        templates: Templates::new().expect("templates"),
    }
}

pub fn invite(conn: &mut DbConnection, f: &Fixture, email: &str) -> invitations::IssuedInvitation {
    invitations::create(
        conn,
        &f.admin,
        &f.settings,
        &f.templates,
        &NewInvitation {
            organization_id: f.org,
            email: email.into(),
            role: OrgRole::Member,
            message: Some("Welcome aboard!".into()),
            first_name: None,
            last_name: None,
            groups: Vec::new(),
        },
    )
    .expect("invite")
}

/// The token in the link of a mail body.
pub fn token_in(text: &str) -> String {
    let marker = format!("{BASE_URL}/auth/invitations/");
    let start = text.find(&marker).expect("link in mail") + marker.len();
    text[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}

fn new_account(first: &str) -> Acceptance {
    // A real argon2 hash is not needed for the invitation logic; sign-in tests
    // cover hashing. Any PHC-looking string will do here.
    Acceptance::NewAccount {
        first_name: first.into(),
        last_name: "Invitee".into(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
    }
}

fn count_rows(conn: &mut DbConnection) -> (i64, i64, i64, i64) {
    (
        inv_t::table.count().get_result(conn).expect("count"),
        outbox::table.count().get_result(conn).expect("count"),
        users_t::table.count().get_result(conn).expect("count"),
        memberships::table.count().get_result(conn).expect("count"),
    )
}

fn audit_actions(conn: &mut DbConnection, target: &str) -> Vec<String> {
    audit_events::table
        .filter(audit_events::target.eq(target))
        .order(audit_events::id.asc())
        .select(audit_events::action)
        .load(conn)
        .expect("audit")
}

both!(
    create_queues_mail_preview_never_consumes_accept_once,
    |db| {
        let mut c = db.conn();
        let f = fixture(&mut c, "acme", "");
        let issued = invite(&mut c, &f, " Newbie@Example.COM ");
        let inv = &issued.invitation;
        assert_eq!(inv.email, "newbie@example.com");
        assert_eq!(inv.status, "pending");
        assert_eq!(inv.send_count, 1);
        assert!(
            inv.token_hash != issued.token.expose() && inv.token_hash.len() == 64,
            "only the digest is stored"
        );

        // The mail is in the outbox, to the stored address, with a link from the configured base URL.
        let (recipient, subject, text, html): (String, String, String, Option<String>) =
            outbox::table
                .find(issued.outbox_id)
                .select((
                    outbox::recipient,
                    outbox::subject,
                    outbox::text_body,
                    outbox::html_body,
                ))
                .first(&mut c)
                .expect("mail");
        assert_eq!(recipient, "newbie@example.com");
        assert_eq!(subject, "Bo Boss invited you to join acme Inc");
        assert_eq!(token_in(&text), issued.token.expose());
        assert!(text.contains("Welcome aboard!"));
        assert!(html.is_some_and(|h| h.contains("Welcome aboard!")));

        // Opening the link (twice) changes nothing.
        for _ in 0..2 {
            let p = invitations::preview(&mut c, issued.token.expose()).expect("preview");
            assert_eq!(p.organization_name, "acme Inc");
            assert_eq!(p.inviter_name.as_deref(), Some("Bo Boss"));
            assert_eq!(p.role, OrgRole::Member);
            assert!(!p.account_exists);
        }
        let status: String = inv_t::table
            .find(inv.id)
            .select(inv_t::status)
            .first(&mut c)
            .expect("status");
        assert_eq!(status, "pending");

        let accepted = invitations::accept(&mut c, issued.token.expose(), &new_account("Nina"))
            .expect("accept");
        assert!(accepted.created_account);
        assert_eq!(accepted.user.email, "newbie@example.com");
        assert!(accepted.user.email_verified);
        assert_eq!(accepted.user.first_name, "Nina");
        assert_eq!(
            organizations::roles_of(&mut c, accepted.user.id).expect("roles"),
            vec![(f.org, OrgRole::Member)]
        );
        let (status, accepted_user): (String, Option<i64>) = inv_t::table
            .find(inv.id)
            .select((inv_t::status, inv_t::accepted_user_id))
            .first(&mut c)
            .expect("row");
        assert_eq!(
            (status.as_str(), accepted_user),
            ("accepted", Some(accepted.user.id))
        );
        assert_eq!(
            audit_actions(&mut c, &format!("invitation:{}", inv.id)),
            vec!["invitation.create", "invitation.accept"]
        );

        // Used: every later attempt is refused, and nothing more is written.
        let before = count_rows(&mut c);
        assert!(matches!(
            invitations::accept(&mut c, issued.token.expose(), &new_account("Again")),
            Err(InvitationError::InvalidLink(LinkProblem::Accepted))
        ));
        assert!(matches!(
            invitations::preview(&mut c, issued.token.expose()),
            Err(InvitationError::InvalidLink(LinkProblem::Accepted))
        ));
        assert!(matches!(
            invitations::decline(&mut c, issued.token.expose()),
            Err(InvitationError::InvalidLink(_))
        ));
        assert!(matches!(
            invitations::preview(&mut c, "no-such-token"),
            Err(InvitationError::InvalidLink(LinkProblem::Unknown))
        ));
        assert_eq!(count_rows(&mut c), before);
    }
);

both!(who_may_invite_whom_and_bad_input_change_nothing, |db| {
    let mut c = db.conn();
    let f = fixture(&mut c, "acme", "acme.example, partner.example");
    let other = fixture(&mut c, "globex", "");
    let member = users::create(
        &mut c,
        &Actor::system(),
        NewUser {
            email: "member@acme.example".into(),
            organization: Some((f.org, OrgRole::Member)),
            ..NewUser::default()
        },
    )
    .expect("member");
    let member_actor = Actor::user(member.id, None, vec![(f.org, OrgRole::Member)]);
    let before = count_rows(&mut c);
    let new = |org: i64, email: &str, role: OrgRole, message: Option<&str>| NewInvitation {
        organization_id: org,
        email: email.into(),
        role,
        message: message.map(str::to_owned),
        first_name: None,
        last_name: None,
        groups: Vec::new(),
    };
    let try_create = |c: &mut DbConnection, actor: &Actor, n: NewInvitation| {
        invitations::create(c, actor, &f.settings, &f.templates, &n)
    };

    // Another organization, a role above the admin's, a plain member, an unknown organization.
    assert!(matches!(
        try_create(
            &mut c,
            &f.admin,
            new(other.org, "x@acme.example", OrgRole::Member, None)
        ),
        Err(InvitationError::Core(CoreError::Forbidden))
    ));
    assert!(matches!(
        try_create(
            &mut c,
            &f.admin,
            new(f.org, "x@acme.example", OrgRole::Owner, None)
        ),
        Err(InvitationError::Core(CoreError::Forbidden))
    ));
    assert!(matches!(
        try_create(
            &mut c,
            &member_actor,
            new(f.org, "x@acme.example", OrgRole::Member, None)
        ),
        Err(InvitationError::Core(CoreError::Forbidden))
    ));
    assert!(matches!(
        try_create(
            &mut c,
            &Actor::system(),
            new(9999, "x@acme.example", OrgRole::Member, None)
        ),
        Err(InvitationError::Core(CoreError::NotFound(_)))
    ));
    // Domains, addresses, messages.
    assert!(matches!(
        try_create(
            &mut c,
            &f.admin,
            new(f.org, "x@gmail.com", OrgRole::Member, None)
        ),
        Err(InvitationError::Core(CoreError::DomainNotAllowed))
    ));
    assert!(matches!(
        try_create(
            &mut c,
            &f.admin,
            new(f.org, "not-an-email", OrgRole::Member, None)
        ),
        Err(InvitationError::Core(CoreError::InvalidEmail(_)))
    ));
    assert!(matches!(
        try_create(
            &mut c,
            &f.admin,
            new(
                f.org,
                "x@acme.example\r\nBcc: y@z.example",
                OrgRole::Member,
                None
            )
        ),
        Err(InvitationError::Core(CoreError::InvalidEmail(_)))
    ));
    let long = "m".repeat(invitations::MAX_MESSAGE + 1);
    assert!(matches!(
        try_create(
            &mut c,
            &f.admin,
            new(f.org, "x@acme.example", OrgRole::Member, Some(&long))
        ),
        Err(InvitationError::Core(CoreError::TooLong {
            field: "message",
            ..
        }))
    ));
    assert!(matches!(
        try_create(
            &mut c,
            &f.admin,
            new(f.org, "x@acme.example", OrgRole::Member, Some("bell\u{7}"))
        ),
        Err(InvitationError::Core(CoreError::Invalid {
            field: "message",
            ..
        }))
    ));
    // An existing member.
    assert!(matches!(
        try_create(
            &mut c,
            &f.admin,
            new(f.org, "MEMBER@acme.example", OrgRole::Member, None)
        ),
        Err(InvitationError::Core(CoreError::AlreadyMember))
    ));
    assert_eq!(
        count_rows(&mut c),
        before,
        "refused invitations write nothing"
    );

    // Allowed: the admin may grant admin; a second invitation of the same address suggests resend.
    let first = try_create(
        &mut c,
        &f.admin,
        new(
            f.org,
            "Lead@Partner.example",
            OrgRole::Admin,
            Some("line one\r\nline two"),
        ),
    )
    .expect("invite");
    assert_eq!(
        first.invitation.message.as_deref(),
        Some("line one\nline two")
    );
    let after_first = count_rows(&mut c);
    match try_create(
        &mut c,
        &f.admin,
        new(f.org, "lead@partner.example", OrgRole::Member, None),
    ) {
        Err(e @ InvitationError::AlreadyPending { invitation_id, .. }) => {
            assert_eq!(invitation_id, Some(first.invitation.id));
            assert!(e.to_string().contains("resend"), "{e}");
        }
        other => panic!("expected AlreadyPending, got {other:?}"),
    }
    assert_eq!(count_rows(&mut c), after_first);
    // Staff (system) may invite an owner anywhere.
    try_create(
        &mut c,
        &Actor::system(),
        new(other.org, "owner@else.example", OrgRole::Owner, None),
    )
    .expect("staff invites owner");
});

both!(resend_kills_the_old_link_and_cancel_kills_the_link, |db| {
    let mut c = db.conn();
    let f = fixture(&mut c, "acme", "");
    let first = invite(&mut c, &f, "ann@example.com");
    let second = invitations::resend(
        &mut c,
        &f.admin,
        &f.settings,
        &f.templates,
        first.invitation.id,
    )
    .expect("resend");
    assert_ne!(first.token.expose(), second.token.expose());
    assert_eq!(second.invitation.send_count, 2);
    assert!(matches!(
        invitations::preview(&mut c, first.token.expose()),
        Err(InvitationError::InvalidLink(LinkProblem::Unknown))
    ));
    assert!(matches!(
        invitations::accept(&mut c, first.token.expose(), &new_account("Ann")),
        Err(InvitationError::InvalidLink(_))
    ));
    invitations::preview(&mut c, second.token.expose()).expect("the new link works");
    // The first mail, not yet sent, carries a dead link: it is dropped, the new one is queued.
    let statuses: Vec<(i64, String)> = outbox::table
        .filter(outbox::invitation_id.eq(first.invitation.id))
        .order(outbox::id.asc())
        .select((outbox::id, outbox::status))
        .load(&mut c)
        .expect("mails");
    assert_eq!(
        statuses,
        vec![
            (first.outbox_id, "failed".to_owned()),
            (second.outbox_id, "queued".to_owned())
        ]
    );

    let cancelled = invitations::cancel(&mut c, &f.admin, first.invitation.id).expect("cancel");
    assert_eq!(cancelled.status, "cancelled");
    assert!(matches!(
        invitations::preview(&mut c, second.token.expose()),
        Err(InvitationError::InvalidLink(LinkProblem::Cancelled))
    ));
    assert!(matches!(
        invitations::accept(&mut c, second.token.expose(), &new_account("Ann")),
        Err(InvitationError::InvalidLink(LinkProblem::Cancelled))
    ));
    assert!(matches!(
        invitations::cancel(&mut c, &f.admin, first.invitation.id),
        Err(InvitationError::NotPending(InvitationStatus::Cancelled))
    ));
    assert!(matches!(
        invitations::resend(
            &mut c,
            &f.admin,
            &f.settings,
            &f.templates,
            first.invitation.id
        ),
        Err(InvitationError::NotPending(InvitationStatus::Cancelled))
    ));
    let queued: i64 = outbox::table
        .filter(outbox::status.eq("queued"))
        .count()
        .get_result(&mut c)
        .expect("count");
    assert_eq!(queued, 0, "no mail with a dead link stays queued");
    let users_with_email: i64 = users_t::table
        .filter(users_t::email.eq("ann@example.com"))
        .count()
        .get_result(&mut c)
        .expect("count");
    assert_eq!(users_with_email, 0);
    assert_eq!(
        audit_actions(&mut c, &format!("invitation:{}", first.invitation.id)),
        vec![
            "invitation.create",
            "invitation.resend",
            "invitation.cancel"
        ]
    );
    // Someone from another organization cannot see or touch it.
    let other = fixture(&mut c, "globex", "");
    assert!(matches!(
        invitations::cancel(&mut c, &other.admin, first.invitation.id),
        Err(InvitationError::Core(CoreError::NotFound(_)))
    ));
});

both!(expiry_is_enforced_by_the_server_clock, |db| {
    let mut c = db.conn();
    let f = fixture(&mut c, "acme", "");
    let issued = invite(&mut c, &f, "late@example.com");
    // Time passes: the invitation's expiry is now in the past.
    let past = frontdesk_core::time::now() - chrono::Duration::seconds(1);
    diesel::update(inv_t::table.find(issued.invitation.id))
        .set(inv_t::expires_at.eq(past))
        .execute(&mut c)
        .expect("age");

    assert!(matches!(
        invitations::preview(&mut c, issued.token.expose()),
        Err(InvitationError::InvalidLink(LinkProblem::Expired))
    ));
    assert!(matches!(
        invitations::accept(&mut c, issued.token.expose(), &new_account("Late")),
        Err(InvitationError::InvalidLink(LinkProblem::Expired))
    ));
    assert!(matches!(
        invitations::decline(&mut c, issued.token.expose()),
        Err(InvitationError::InvalidLink(LinkProblem::Expired))
    ));
    let users_with_email: i64 = users_t::table
        .filter(users_t::email.eq("late@example.com"))
        .count()
        .get_result(&mut c)
        .expect("count");
    assert_eq!(users_with_email, 0);

    let filter = |s| InvitationFilter {
        status: Some(s),
        ..InvitationFilter::default()
    };
    let (expired, n) =
        invitations::list(&mut c, &f.admin, &filter(InvitationStatus::Expired), 1, 50)
            .expect("list");
    assert_eq!((n, expired[0].status), (1, InvitationStatus::Expired));
    assert_eq!(
        invitations::list(&mut c, &f.admin, &filter(InvitationStatus::Pending), 1, 50)
            .expect("list")
            .1,
        0
    );
    assert_eq!(invitations::expire_due(&mut c).expect("sweep"), 1);
    assert_eq!(invitations::expire_due(&mut c).expect("sweep"), 0);

    // An expired invitation may be sent again, with a new link and expiry.
    let again = invitations::resend(
        &mut c,
        &f.admin,
        &f.settings,
        &f.templates,
        issued.invitation.id,
    )
    .expect("resend");
    assert!(again.invitation.expires_at > frontdesk_core::time::now() + chrono::Duration::days(6));
    invitations::accept(&mut c, again.token.expose(), &new_account("Late"))
        .expect("accept after resend");
});

both!(declined_is_final, |db| {
    let mut c = db.conn();
    let f = fixture(&mut c, "acme", "");
    let issued = invite(&mut c, &f, "no@example.com");
    let declined = invitations::decline(&mut c, issued.token.expose()).expect("decline");
    assert_eq!(declined.status, "declined");
    assert!(matches!(
        invitations::accept(&mut c, issued.token.expose(), &new_account("No")),
        Err(InvitationError::InvalidLink(LinkProblem::Declined))
    ));
    assert!(matches!(
        invitations::decline(&mut c, issued.token.expose()),
        Err(InvitationError::InvalidLink(LinkProblem::Declined))
    ));
    assert!(matches!(
        invitations::resend(
            &mut c,
            &f.admin,
            &f.settings,
            &f.templates,
            issued.invitation.id
        ),
        Err(InvitationError::NotPending(InvitationStatus::Declined))
    ));
    assert!(matches!(
        invitations::cancel(&mut c, &f.admin, issued.invitation.id),
        Err(InvitationError::NotPending(InvitationStatus::Declined))
    ));
    let status: String = inv_t::table
        .find(issued.invitation.id)
        .select(inv_t::status)
        .first(&mut c)
        .expect("status");
    assert_eq!(status, "declined");
    assert_eq!(
        audit_actions(&mut c, &format!("invitation:{}", issued.invitation.id)),
        vec!["invitation.create", "invitation.decline"]
    );
    // The address may be invited afresh later.
    invite(&mut c, &f, "no@example.com");
});

both!(existing_accounts_sign_in_to_accept, |db| {
    let mut c = db.conn();
    let f = fixture(&mut c, "acme", "");
    let other = fixture(&mut c, "globex", "");
    let existing = users::create(
        &mut c,
        &Actor::system(),
        NewUser {
            email: "known@example.com".into(),
            organization: Some((other.org, OrgRole::Member)),
            ..NewUser::default()
        },
    )
    .expect("user");
    let stranger = users::create(
        &mut c,
        &Actor::system(),
        NewUser {
            email: "stranger@example.com".into(),
            ..NewUser::default()
        },
    )
    .expect("user");
    let issued = invite(&mut c, &f, "known@example.com");
    assert!(
        invitations::preview(&mut c, issued.token.expose())
            .expect("preview")
            .account_exists
    );

    let before = count_rows(&mut c);
    assert!(matches!(
        invitations::accept(&mut c, issued.token.expose(), &new_account("Dup")),
        Err(InvitationError::SignInRequired)
    ));
    assert!(matches!(
        invitations::accept(
            &mut c,
            issued.token.expose(),
            &Acceptance::ExistingUser {
                user_id: stranger.id
            }
        ),
        Err(InvitationError::WrongAccount)
    ));
    assert_eq!(count_rows(&mut c), before, "refused accepts change nothing");
    let status: String = inv_t::table
        .find(issued.invitation.id)
        .select(inv_t::status)
        .first(&mut c)
        .expect("status");
    assert_eq!(status, "pending");

    let ok = invitations::accept(
        &mut c,
        issued.token.expose(),
        &Acceptance::ExistingUser {
            user_id: existing.id,
        },
    )
    .expect("accept");
    assert!(!ok.created_account);
    assert_eq!(ok.user.id, existing.id);
    let mut roles = organizations::roles_of(&mut c, existing.id).expect("roles");
    roles.sort();
    let mut want = vec![(f.org, OrgRole::Member), (other.org, OrgRole::Member)];
    want.sort();
    assert_eq!(roles, want);
});

both!(
    fifty_parallel_accepts_make_one_user_and_one_membership,
    |db| {
        let issued = {
            let mut c = db.conn();
            let f = fixture(&mut c, "acme", "");
            invite(&mut c, &f, "racer@example.com")
        };
        let url = DatabaseUrl::parse(&db.url).expect("url");
        let n = 50;
        let barrier = Arc::new(Barrier::new(n));
        let token = issued.token.expose().to_owned();
        let handles: Vec<_> = (0..n)
            .map(|i| {
                let (barrier, token, url) = (barrier.clone(), token.clone(), url.clone());
                std::thread::spawn(move || {
                    // One connection each, opened before the barrier: the accepts start together.
                    let mut conn =
                        db::establish(&url, std::time::Duration::from_secs(30)).expect("connect");
                    barrier.wait();
                    invitations::accept(&mut conn, &token, &new_account(&format!("Racer{i}")))
                })
            })
            .collect();
        let results: Vec<_> = handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect();
        let ok = results.iter().filter(|r| r.is_ok()).count();
        let used = results
            .iter()
            .filter(|r| matches!(r, Err(InvitationError::InvalidLink(LinkProblem::Accepted))))
            .count();
        let other: Vec<_> = results
            .iter()
            .filter_map(|r| r.as_ref().err())
            .filter(|e| !matches!(e, InvitationError::InvalidLink(_)))
            .collect();
        assert!(other.is_empty(), "unexpected errors: {other:?}");
        assert_eq!((ok, used), (1, n - 1));

        let mut c = db.conn();
        let ids: Vec<i64> = users_t::table
            .filter(users_t::email.eq("racer@example.com"))
            .select(users_t::id)
            .load(&mut c)
            .expect("users");
        assert_eq!(ids.len(), 1);
        let m: i64 = memberships::table
            .filter(memberships::user_id.eq(ids[0]))
            .count()
            .get_result(&mut c)
            .expect("count");
        assert_eq!(m, 1);
        let accepts: i64 = audit_events::table
            .filter(audit_events::action.eq("invitation.accept"))
            .count()
            .get_result(&mut c)
            .expect("count");
        assert_eq!(accepts, 1);
    }
);

both!(list_filters_by_status_and_shows_delivery_state, |db| {
    let mut c = db.conn();
    let f = fixture(&mut c, "acme", "");
    let other = fixture(&mut c, "globex", "");
    let a = invite(&mut c, &f, "a@example.com");
    let b = invite(&mut c, &f, "b@example.com");
    invite(&mut c, &other, "c@example.com");
    invitations::cancel(&mut c, &f.admin, b.invitation.id).expect("cancel");
    // The worker's view of a's mail: one failed attempt, queued for a retry.
    diesel::update(outbox::table.find(a.outbox_id))
        .set((
            outbox::attempts.eq(1),
            outbox::last_error.eq(Some("attempt 1 (transient): connection refused")),
        ))
        .execute(&mut c)
        .expect("age");

    let all = InvitationFilter::default();
    let (items, total) = invitations::list(&mut c, &f.admin, &all, 1, 50).expect("list");
    assert_eq!(total, 2, "an org admin sees only their organization");
    let item_a = items
        .iter()
        .find(|i| i.invitation.id == a.invitation.id)
        .expect("a listed");
    let d = item_a.delivery.as_ref().expect("delivery");
    assert_eq!((d.status.as_str(), d.attempts), ("queued", 1));
    assert!(d
        .last_error
        .as_deref()
        .is_some_and(|e| e.contains("connection refused")));
    assert_eq!(item_a.organization_slug, "acme");

    let pending = InvitationFilter {
        status: Some(InvitationStatus::Pending),
        ..all.clone()
    };
    let (items, total) = invitations::list(&mut c, &f.admin, &pending, 1, 50).expect("list");
    assert_eq!((total, items[0].invitation.id), (1, a.invitation.id));
    let cancelled = InvitationFilter {
        status: Some(InvitationStatus::Cancelled),
        ..all.clone()
    };
    assert_eq!(
        invitations::list(&mut c, &f.admin, &cancelled, 1, 50)
            .expect("list")
            .1,
        1
    );
    let by_email = InvitationFilter {
        email: Some("B@EX".into()),
        ..all.clone()
    };
    assert_eq!(
        invitations::list(&mut c, &f.admin, &by_email, 1, 50)
            .expect("list")
            .1,
        1
    );
    assert_eq!(
        invitations::list(&mut c, &Actor::system(), &all, 1, 50)
            .expect("list")
            .1,
        3,
        "staff see every organization"
    );
});

#[test]
fn links_come_from_the_configured_base_url_only() {
    let token = frontdesk_core::tokens::SecretToken::generate();
    let s = InvitationSettings::new("https://app.example.com/").expect("settings");
    assert_eq!(
        s.link(&token),
        format!(
            "https://app.example.com/auth/invitations/{}",
            token.expose()
        )
    );
    let s = InvitationSettings::new("https://example.com/portal")
        .expect("settings")
        .with_auth_path("account");
    assert_eq!(
        s.link(&token),
        format!(
            "https://example.com/portal/account/invitations/{}",
            token.expose()
        )
    );
    for bad in [
        "",
        "app.example.com",
        "ftp://x.example",
        "https://",
        "https://a b.example",
        "https://x.example/?next=1",
    ] {
        assert!(InvitationSettings::new(bad).is_err(), "{bad:?} accepted");
    }
}
