//! Who may open which admin page and make which change: every route for every
//! role (staff owner/admin/viewer, org owner/admin/member, end user,
//! anonymous), with the authorization function as the oracle, and the
//! database read back after each change. Also the host's own hook.

use actix_web::http::StatusCode;
use frontdesk_core::authz::{can, Action, Target};
use frontdesk_core::{users, Actor, OrgRole, StaffRole};

use crate::admin_fixture::{self as fx, ROLES};
use crate::both;
use crate::host_app;
use crate::web_app::{block_on, frontdesk, Browser};

/// The status a page or change must answer for this actor.
fn expected(actor: Option<&Actor>, visible: bool, allowed: bool) -> StatusCode {
    match actor {
        None => StatusCode::SEE_OTHER,
        Some(a) if !a.is_admin_user() => StatusCode::FORBIDDEN,
        Some(_) if !visible => StatusCode::NOT_FOUND,
        Some(_) if !allowed => StatusCode::FORBIDDEN,
        Some(_) => StatusCode::OK,
    }
}

both!(admin_pages_answer_every_role_as_authz_says, |db| {
    let cast = fx::cast(db);
    let fd = frontdesk(db);
    block_on(async move {
        let app = host_app!(fd);
        let mut conn = db.conn();
        let alice_t = users::target(&mut conn, &cast.alice).expect("target");
        let bob_t = users::target(&mut conn, &cast.bob).expect("target");
        drop(conn);
        let (a, b) = (cast.org_a.id, cast.org_b.id);
        for role in ROLES {
            let who = cast.get(role);
            let actor = who.map(|u| fx::actor(db, u));
            let act = actor.as_ref();
            let view = |t: &Target| act.is_some_and(|x| can(x, Action::View, t));
            let api_keys_ok = act.is_some_and(|x| {
                x.staff_role == Some(StaffRole::Owner)
                    || x.org_roles.iter().any(|(_, r)| *r >= OrgRole::Admin)
            });
            let pages: Vec<(String, bool, bool)> = vec![
                ("/admin/".into(), true, true),
                ("/admin/users".into(), true, true),
                (
                    format!("/admin/users/{}", cast.alice.id),
                    view(&alice_t),
                    true,
                ),
                (format!("/admin/users/{}", cast.bob.id), view(&bob_t), true),
                ("/admin/sessions".into(), true, true),
                ("/admin/login-attempts".into(), true, true),
                ("/admin/organizations".into(), true, true),
                (
                    format!("/admin/organizations/{a}"),
                    view(&Target::Organization(a)),
                    true,
                ),
                (
                    format!("/admin/organizations/{b}"),
                    view(&Target::Organization(b)),
                    true,
                ),
                ("/admin/audit".into(), true, true),
                ("/admin/api-keys".into(), true, api_keys_ok),
                // The admin's own assets describe the admin: admins only.
                ("/admin/static/admin.css".into(), true, true),
                ("/admin/static/admin.js".into(), true, true),
            ];
            let (mut browser, _) = fx::signed_in(db, who);
            for (uri, visible, allowed) in pages {
                let page = browser.get(&app, &uri).await;
                let want = expected(act, visible, allowed);
                assert_eq!(page.status, want, "{role} GET {uri}: {}", page.body);
                if want == StatusCode::SEE_OTHER {
                    assert!(
                        page.location().starts_with("/auth/login?next=%2Fadmin"),
                        "anonymous goes to the login page with next: {}",
                        page.location()
                    );
                }
                if want == StatusCode::OK && uri.contains("/static/") {
                    assert!(
                        page.header("cache-control")
                            .is_some_and(|c| c.starts_with("private")),
                        "{uri}: never kept by a shared cache"
                    );
                } else if want == StatusCode::OK {
                    assert_eq!(page.header("cache-control"), Some("no-store"));
                    assert!(page
                        .header("content-security-policy")
                        .is_some_and(|c| c.contains("script-src 'self'")));
                }
            }
        }
    });
});

/// One change per kind of permission, on alice (member of A) or bob (of B).
struct Change {
    name: &'static str,
    uri: String,
    form: Vec<(&'static str, String)>,
    visible: bool,
    allowed: bool,
}

both!(admin_changes_answer_every_role_as_authz_says, |db| {
    let cast = fx::cast(db);
    let fd = frontdesk(db);
    let mut conn = db.conn();
    let tag = frontdesk_core::tags::create(&mut conn, &Actor::system(), "vip").expect("tag");
    drop(conn);
    block_on(async move {
        let app = host_app!(fd);
        let a = cast.org_a.id;
        for role in ROLES {
            let who = cast.get(role);
            let actor = who.map(|u| fx::actor(db, u));
            // A victim of our own for each role, so deletions do not collide.
            let victim = fx::user(
                db,
                &format!("victim-{}@acme.test", role.replace('_', "-")),
                None,
                Some((a, OrgRole::Member)),
            );
            let mut conn = db.conn();
            let alice_t = users::target(&mut conn, &cast.alice).expect("target");
            let bob_t = users::target(&mut conn, &cast.bob).expect("target");
            let victim_t = users::target(&mut conn, &victim).expect("target");
            drop(conn);
            let may =
                |action: Action, t: &Target| actor.as_ref().is_some_and(|x| can(x, action, t));
            let sees = |t: &Target| may(Action::View, t);
            let api_keys_ok = actor.as_ref().is_some_and(|x| {
                x.staff_role == Some(StaffRole::Owner)
                    || x.org_roles.iter().any(|(_, r)| *r >= OrgRole::Admin)
            });
            let alice = cast.alice.id;
            let changes = vec![
                Change {
                    name: "suspend",
                    uri: format!("/admin/users/{alice}/suspend"),
                    form: vec![("reason", "test".into())],
                    visible: sees(&alice_t),
                    allowed: may(Action::Suspend, &alice_t),
                },
                Change {
                    name: "suspend other org",
                    uri: format!("/admin/users/{}/suspend", cast.bob.id),
                    form: vec![("reason", "test".into())],
                    visible: sees(&bob_t),
                    allowed: may(Action::Suspend, &bob_t),
                },
                Change {
                    name: "tag",
                    uri: format!("/admin/users/{alice}/tags"),
                    form: vec![("tag", tag.id.to_string())],
                    visible: sees(&alice_t),
                    allowed: may(Action::Edit, &alice_t),
                },
                Change {
                    name: "local login",
                    uri: format!("/admin/users/{alice}/local-login"),
                    form: vec![("enabled", "no".into())],
                    visible: sees(&alice_t),
                    allowed: may(Action::Edit, &alice_t),
                },
                Change {
                    name: "staff role",
                    uri: format!("/admin/users/{alice}/staff-role"),
                    form: vec![("role", "viewer".into())],
                    visible: sees(&alice_t),
                    allowed: may(Action::GrantStaffRole, &alice_t),
                },
                Change {
                    name: "revoke sessions",
                    uri: format!("/admin/users/{alice}/sessions/revoke-all"),
                    form: vec![],
                    visible: sees(&alice_t),
                    allowed: may(Action::Suspend, &alice_t),
                },
                Change {
                    name: "clear lockout",
                    uri: format!("/admin/users/{alice}/lockout/clear"),
                    form: vec![],
                    visible: sees(&alice_t),
                    allowed: may(Action::Suspend, &alice_t),
                },
                Change {
                    name: "password reset",
                    uri: format!("/admin/users/{alice}/password-reset"),
                    form: vec![],
                    visible: sees(&alice_t),
                    allowed: may(Action::Edit, &alice_t),
                },
                Change {
                    name: "delete",
                    uri: format!("/admin/users/{}/delete", victim.id),
                    form: vec![("confirm", victim.email.clone())],
                    visible: sees(&victim_t),
                    allowed: may(Action::Delete, &victim_t),
                },
                Change {
                    name: "create organization",
                    uri: "/admin/organizations".into(),
                    form: vec![
                        ("slug", format!("new-{}", role.replace('_', "-"))),
                        ("name", "New".into()),
                    ],
                    visible: true,
                    allowed: may(Action::ManageSite, &Target::Site),
                },
                Change {
                    name: "edit organization",
                    uri: format!("/admin/organizations/{a}"),
                    form: vec![("name", "Acme".into()), ("domains", "".into())],
                    visible: sees(&Target::Organization(a)),
                    allowed: may(Action::Edit, &Target::Organization(a)),
                },
                Change {
                    name: "api key",
                    uri: "/admin/api-keys".into(),
                    form: vec![
                        ("name", "k".into()),
                        ("organization", a.to_string()),
                        ("role", "member".into()),
                    ],
                    visible: true,
                    allowed: api_keys_ok
                        && may(
                            Action::GrantOrgRole(OrgRole::Member),
                            &Target::Organization(a),
                        ),
                },
            ];
            let (mut browser, csrf) = fx::signed_in(db, who);
            for c in changes {
                let before_alice = fx::reload(db, alice).expect("alice");
                let before_audit = fx::audit_count(db);
                let mut form: Vec<(&str, &str)> =
                    c.form.iter().map(|(k, v)| (*k, v.as_str())).collect();
                form.push(("csrf_token", &csrf));
                let page = browser.post(&app, &c.uri, &form).await;
                let want = match actor.as_ref() {
                    // A POST without a session is answered 401, never redirected.
                    None => StatusCode::UNAUTHORIZED,
                    Some(_) => match expected(actor.as_ref(), c.visible, c.allowed) {
                        StatusCode::OK => {
                            // The API key answer shows the key on the page itself.
                            if c.name == "api key" {
                                StatusCode::OK
                            } else {
                                StatusCode::SEE_OTHER
                            }
                        }
                        s => s,
                    },
                };
                assert_eq!(page.status, want, "{role} {}: {}", c.name, page.body);
                let changed = want.is_success() || want.is_redirection();
                assert_eq!(
                    fx::audit_count(db) > before_audit,
                    changed,
                    "{role} {}: an audit event exactly when something changed",
                    c.name
                );
                let after = fx::reload(db, alice).expect("alice");
                match c.name {
                    "suspend" => {
                        assert_eq!(after.is_suspended(), changed, "{role} suspend");
                        let mut conn = db.conn();
                        users::restore(&mut conn, &Actor::system(), alice).expect("restore");
                    }
                    "local login" => {
                        assert_eq!(after.local_login_enabled, !changed, "{role} local login");
                        let mut conn = db.conn();
                        users::set_local_login(&mut conn, &Actor::system(), alice, true)
                            .expect("reset");
                    }
                    "staff role" => {
                        assert_eq!(after.staff_role.is_some(), changed, "{role} staff role");
                        let mut conn = db.conn();
                        users::set_staff_role(&mut conn, &Actor::system(), alice, None)
                            .expect("reset");
                    }
                    "tag" => {
                        let mut conn = db.conn();
                        let tags = frontdesk_core::tags::tags_of(&mut conn, alice).expect("tags");
                        assert_eq!(!tags.is_empty(), changed, "{role} tag");
                        frontdesk_core::tags::unassign(&mut conn, &Actor::system(), alice, tag.id)
                            .expect("untag");
                    }
                    "delete" => {
                        assert_eq!(
                            fx::reload(db, victim.id).is_none(),
                            changed,
                            "{role} delete"
                        );
                    }
                    "suspend other org" => {
                        let bob = fx::reload(db, cast.bob.id).expect("bob");
                        assert_eq!(bob.is_suspended(), changed, "{role} suspend bob");
                        if changed {
                            let mut conn = db.conn();
                            users::restore(&mut conn, &Actor::system(), bob.id).expect("restore");
                        }
                    }
                    _ => {
                        // Nothing else about alice moved.
                        assert_eq!(after.status, before_alice.status);
                        assert_eq!(after.staff_role, before_alice.staff_role);
                        assert_eq!(after.email, before_alice.email);
                    }
                }
            }
        }
    });
});

both!(
    admin_org_admin_cannot_reach_another_orgs_user_by_guessing_ids,
    |db| {
        let cast = fx::cast(db);
        let fd = frontdesk(db);
        let (_bob_browser, _) = fx::signed_in(db, Some(&cast.bob));
        let mut conn = db.conn();
        let bob_sessions = frontdesk_core::sessions::list_live_for_user(
            &mut conn,
            cast.bob.id,
            &Default::default(),
        )
        .expect("sessions");
        drop(conn);
        let bob_session = bob_sessions.first().expect("bob has a session").id;
        block_on(async move {
            let app = host_app!(fd);
            let (mut admin, csrf) = fx::signed_in(db, cast.get("org_admin"));
            let bob = cast.bob.id;
            let page = admin.get(&app, &format!("/admin/users/{bob}")).await;
            assert_eq!(page.status, StatusCode::NOT_FOUND);
            // A user id that does not exist answers the same.
            let page = admin.get(&app, "/admin/users/999999").await;
            assert_eq!(page.status, StatusCode::NOT_FOUND);
            let list = admin.get(&app, "/admin/users?q=bob").await;
            assert_eq!(list.status, StatusCode::OK);
            assert!(
                !list.body.contains("bob@globex.test"),
                "not in the list either"
            );
            let sessions = admin.get(&app, "/admin/sessions").await;
            assert!(!sessions.body.contains("bob@globex.test"));
            for uri in [
                format!("/admin/users/{bob}/suspend"),
                format!("/admin/users/{bob}/delete"),
                format!("/admin/users/{bob}/sessions/revoke-all"),
                format!("/admin/sessions/{bob_session}/revoke"),
            ] {
                let page = admin
                    .post(
                        &app,
                        &uri,
                        &[
                            ("csrf_token", &csrf),
                            ("reason", "x"),
                            ("confirm", "bob@globex.test"),
                        ],
                    )
                    .await;
                assert_eq!(page.status, StatusCode::NOT_FOUND, "{uri}");
            }
            // A bulk action including bob changes no one, not even alice.
            let page = admin
                .post(
                    &app,
                    "/admin/users/bulk",
                    &[
                        ("csrf_token", &csrf),
                        ("action", "suspend"),
                        ("reason", "x"),
                        ("ids", &cast.alice.id.to_string()),
                        ("ids", &bob.to_string()),
                    ],
                )
                .await;
            assert_eq!(page.status, StatusCode::NOT_FOUND);
            assert!(!fx::reload(db, cast.alice.id).expect("alice").is_suspended());
            let bob_now = fx::reload(db, bob).expect("bob still exists");
            assert!(!bob_now.is_suspended());
            let mut conn = db.conn();
            let live =
                frontdesk_core::sessions::list_live_for_user(&mut conn, bob, &Default::default())
                    .expect("sessions");
            assert_eq!(live.len(), 1, "bob's session survives");
        });
    }
);

both!(admin_host_authorizer_decides_instead_of_roles, |db| {
    let cast = fx::cast(db);
    let owner_id = cast.get("staff_owner").expect("owner").id;
    let fd = crate::web_app::builder(db)
        .admin_authorizer(move |req| {
            match req
                .headers()
                .get("x-host-admin")
                .and_then(|v| v.to_str().ok())
            {
                Some("yes") => Ok(Actor::user(owner_id, Some(StaffRole::Owner), vec![])),
                _ => Err(frontdesk::WebError::forbidden("The host says no.")),
            }
        })
        .build()
        .expect("frontdesk");
    block_on(async move {
        let app = host_app!(fd);
        // A frontdesk staff owner without the host's approval is refused.
        let (mut staff, _) = fx::signed_in(db, cast.get("staff_owner"));
        let page = staff.get(&app, "/admin/users").await;
        assert_eq!(page.status, StatusCode::FORBIDDEN);
        assert!(page.body.contains("The host says no."));
        // With it, no frontdesk session is needed; forms use the pre-session token.
        let mut host = Browser::new();
        host.headers.push(("x-host-admin".into(), "yes".into()));
        let page = host.get(&app, "/admin/users").await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        assert!(page.body.contains("alice@acme.test"));
        let csrf = page.csrf();
        let uri = format!("/admin/users/{}/suspend", cast.alice.id);
        let page = host
            .post(&app, &uri, &[("csrf_token", &csrf), ("reason", "host")])
            .await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
        assert!(fx::reload(db, cast.alice.id).expect("alice").is_suspended());
        // The change is audited as the actor the host named.
        let mut conn = db.conn();
        let (events, _) = frontdesk_core::audit::list(
            &mut conn,
            &frontdesk_core::audit::AuditFilter {
                action: Some("user.suspend".into()),
                ..Default::default()
            },
            1,
            10,
        )
        .expect("audit");
        assert_eq!(events[0].actor, format!("user:{owner_id}"));
        // Without a token the hook's approval is not enough.
        let page = host.post(&app, &uri, &[("reason", "again")]).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN);
    });
});
