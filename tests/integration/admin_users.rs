//! The users list and user pages: filters in the URL, sort and paging, bulk
//! actions, suspension ending the user's session at once, typed delete
//! confirmation, CSRF and cross-site refusals, and escaping of user data.

use actix_web::http::StatusCode;
use frontdesk_core::users::{self, UserUpdate};
use frontdesk_core::{tags, Actor, OrgRole};

use crate::admin_fixture::{self as fx};
use crate::both;
use crate::host_app;
use crate::web_app::{block_on, frontdesk, user_with_password, PASSWORD};

both!(
    admin_users_list_filters_sorts_and_pages_from_the_url,
    |db| {
        let cast = fx::cast(db);
        let a = cast.org_a.id;
        let mut conn = db.conn();
        let vip = tags::create(&mut conn, &Actor::system(), "vip").expect("tag");
        tags::assign(&mut conn, &Actor::system(), cast.alice.id, vip.id).expect("tag alice");
        users::suspend(&mut conn, &Actor::system(), cast.bob.id, "spam").expect("suspend bob");
        drop(conn);
        for i in 0..3 {
            fx::user(
                db,
                &format!("page{i}@acme.test"),
                None,
                Some((a, OrgRole::Member)),
            );
        }
        let fd = frontdesk(db);
        block_on(async move {
            let app = host_app!(fd);
            let (mut b, _) = fx::signed_in(db, cast.get("staff_viewer"));
            let page = b.get(&app, "/admin/users?q=alice").await;
            assert_eq!(page.status, StatusCode::OK);
            assert!(page.body.contains("alice@acme.test"));
            assert!(!page.body.contains("bob@globex.test"));
            // The form shows what the URL asked for.
            assert!(page.body.contains("value=\"alice\""));

            let page = b.get(&app, "/admin/users?status=suspended").await;
            assert!(page.body.contains("bob@globex.test"));
            assert!(!page.body.contains("alice@acme.test"));

            let page = b
                .get(&app, &format!("/admin/users?tags_all={}", vip.id))
                .await;
            assert!(page.body.contains("alice@acme.test"));
            assert!(!page.body.contains("page0@acme.test"));
            let page = b
                .get(&app, &format!("/admin/users?tags_none={}", vip.id))
                .await;
            assert!(!page.body.contains("alice@acme.test"));
            assert!(page.body.contains("page0@acme.test"));

            let page = b
                .get(&app, &format!("/admin/users?org={a}&org_role=owner"))
                .await;
            assert!(page.body.contains("owner@acme.test"));
            assert!(!page.body.contains("alice@acme.test"));
            let page = b.get(&app, "/admin/users?staff=staff").await;
            assert!(page.body.contains("viewer@staff.test"));
            assert!(!page.body.contains("alice@acme.test"));
            let page = b.get(&app, "/admin/users?last_login=never&q=page").await;
            assert!(page.body.contains("page2@acme.test"));
            let page = b
                .get(&app, "/admin/users?last_login=range&last_from=2000-01-01")
                .await;
            assert!(page.body.contains("No users match."));
            let page = b
                .get(
                    &app,
                    "/admin/users?created_from=2999-01-01&created_to=2999-12-31",
                )
                .await;
            assert!(page.body.contains("No users match."));

            // Sorted by email ascending, two a page; the next link keeps the filters.
            let page = b
                .get(&app, "/admin/users?q=page&sort=email&dir=asc&limit=2")
                .await;
            let first = page.body.find("page0@acme.test").expect("page0");
            let second = page.body.find("page1@acme.test").expect("page1");
            assert!(first < second);
            assert!(!page.body.contains("page2@acme.test"));
            assert!(page
                .body
                .contains("q=page&amp;sort=email&amp;dir=asc&amp;limit=2&amp;page=2"));
            let page = b
                .get(
                    &app,
                    "/admin/users?q=page&sort=email&dir=asc&limit=2&page=2",
                )
                .await;
            assert!(page.body.contains("page2@acme.test"));
            assert!(!page.body.contains("page0@acme.test"));

            // Bad filters are a clear 400, not a silently ignored filter.
            for bad in [
                "status=gone",
                "sort=password",
                "page=0",
                "limit=1000",
                "created_from=yesterday",
                "org=abc",
                "last_login=sometimes",
            ] {
                let page = b.get(&app, &format!("/admin/users?{bad}")).await;
                assert_eq!(page.status, StatusCode::BAD_REQUEST, "{bad}");
            }
        });
    }
);

both!(
    admin_suspending_ends_the_users_session_on_their_next_request,
    |db| {
        let victim = user_with_password(db, "victim@example.test");
        let cast = fx::cast(db);
        let fd = frontdesk(db);
        block_on(async move {
            let app = host_app!(fd);
            let mut victim_browser = crate::web_app::Browser::new();
            let login = victim_browser
                .login(&app, "victim@example.test", PASSWORD)
                .await;
            assert_eq!(login.status, StatusCode::SEE_OTHER);
            let page = victim_browser.get(&app, "/notes").await;
            assert_eq!(page.status, StatusCode::OK);

            let (mut admin, csrf) = fx::signed_in(db, cast.get("staff_admin"));
            let uri = format!("/admin/users/{}/suspend", victim.id);
            // Without a reason: refused, nothing changed.
            let page = admin.post(&app, &uri, &[("csrf_token", &csrf)]).await;
            assert_eq!(page.status, StatusCode::SEE_OTHER);
            let shown = admin.get(&app, page.location()).await;
            assert!(shown.body.contains("give a reason"), "{}", shown.body);
            assert!(!fx::reload(db, victim.id).expect("victim").is_suspended());
            assert_eq!(
                victim_browser.get(&app, "/notes").await.status,
                StatusCode::OK
            );

            let page = admin
                .post(
                    &app,
                    &uri,
                    &[("csrf_token", &csrf), ("reason", "chargeback")],
                )
                .await;
            assert_eq!(page.status, StatusCode::SEE_OTHER);
            assert_eq!(page.location(), format!("/admin/users/{}", victim.id));
            let shown = admin.get(&app, page.location()).await;
            assert!(shown.body.contains("User suspended"), "flash shown");
            assert!(shown.body.contains("chargeback"));
            // The flash is shown once.
            let again = admin.get(&app, page.location()).await;
            assert!(!again.body.contains("User suspended"));

            let after = fx::reload(db, victim.id).expect("victim");
            assert!(after.is_suspended());
            assert_eq!(after.suspended_reason.as_deref(), Some("chargeback"));
            let page = victim_browser.get(&app, "/notes").await;
            assert_eq!(page.status, StatusCode::SEE_OTHER, "the session died");
            assert!(page.location().starts_with("/auth/login"));

            // Restore: the user can sign in again (the old session stays dead).
            let page = admin
                .post(
                    &app,
                    &format!("/admin/users/{}/restore", victim.id),
                    &[("csrf_token", &csrf)],
                )
                .await;
            assert_eq!(page.status, StatusCode::SEE_OTHER);
            assert!(!fx::reload(db, victim.id).expect("victim").is_suspended());
            assert_eq!(
                victim_browser.get(&app, "/notes").await.status,
                StatusCode::SEE_OTHER
            );
            let login = victim_browser
                .login(&app, "victim@example.test", PASSWORD)
                .await;
            assert_eq!(login.status, StatusCode::SEE_OTHER);
            assert_eq!(
                victim_browser.get(&app, "/notes").await.status,
                StatusCode::OK
            );
        });
    }
);

both!(
    admin_forms_refuse_missing_or_cross_site_csrf_and_change_nothing,
    |db| {
        let cast = fx::cast(db);
        let fd = frontdesk(db);
        block_on(async move {
            let app = host_app!(fd);
            let (mut admin, csrf) = fx::signed_in(db, cast.get("staff_owner"));
            let alice = cast.alice.id;
            let forms: Vec<(String, Vec<(&str, String)>)> = vec![
                (
                    format!("/admin/users/{alice}/suspend"),
                    vec![("reason", "x".into())],
                ),
                (
                    format!("/admin/users/{alice}/delete"),
                    vec![("confirm", "alice@acme.test".into())],
                ),
                (
                    format!("/admin/users/{alice}/staff-role"),
                    vec![("role", "owner".into())],
                ),
                (
                    format!("/admin/users/{alice}/local-login"),
                    vec![("enabled", "no".into())],
                ),
                (format!("/admin/users/{alice}/sessions/revoke-all"), vec![]),
                (
                    format!("/admin/users/{alice}/edit"),
                    vec![("first_name", "Mallory".into())],
                ),
                (
                    "/admin/users/bulk".into(),
                    vec![
                        ("action", "suspend".into()),
                        ("reason", "x".into()),
                        ("ids", alice.to_string()),
                    ],
                ),
                (
                    "/admin/organizations".into(),
                    vec![("slug", "evil".into()), ("name", "Evil".into())],
                ),
                (
                    "/admin/api-keys".into(),
                    vec![
                        ("name", "evil".into()),
                        ("organization", "site".into()),
                        ("role", "owner".into()),
                    ],
                ),
            ];
            let before = fx::audit_count(db);
            for (uri, fields) in &forms {
                let mut form: Vec<(&str, &str)> =
                    fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
                let page = admin.post(&app, uri, &form).await;
                assert_eq!(page.status, StatusCode::FORBIDDEN, "no token: {uri}");
                form.push(("csrf_token", "forged"));
                let page = admin.post(&app, uri, &form).await;
                assert_eq!(page.status, StatusCode::FORBIDDEN, "bad token: {uri}");
                form.pop();
                form.push(("csrf_token", &csrf));
                let mut cross = admin.clone();
                cross
                    .headers
                    .push(("sec-fetch-site".into(), "cross-site".into()));
                let page = cross.post(&app, uri, &form).await;
                assert_eq!(page.status, StatusCode::FORBIDDEN, "cross-site: {uri}");
                let mut other = admin.clone();
                other
                    .headers
                    .push(("origin".into(), "https://evil.test".into()));
                let page = other.post(&app, uri, &form).await;
                assert_eq!(page.status, StatusCode::FORBIDDEN, "foreign origin: {uri}");
            }
            assert_eq!(fx::audit_count(db), before, "nothing changed");
            let alice_now = fx::reload(db, alice).expect("alice not deleted");
            assert!(!alice_now.is_suspended());
            assert!(alice_now.staff_role.is_none());
            assert!(alice_now.local_login_enabled);
            assert_ne!(alice_now.first_name, "Mallory");
            // GET never changes anything either.
            let page = admin
                .get(&app, &format!("/admin/users/{alice}/suspend"))
                .await;
            assert!(matches!(page.status.as_u16(), 404 | 405), "{}", page.status);
            assert!(!fx::reload(db, alice).expect("alice").is_suspended());
        });
    }
);

both!(admin_pages_escape_user_supplied_values, |db| {
    let cast = fx::cast(db);
    let mut conn = db.conn();
    let mut profile = serde_json::Map::new();
    profile.insert("plan".into(), "<img src=x onerror=alert(2)>".into());
    users::update(
        &mut conn,
        &Actor::system(),
        cast.alice.id,
        UserUpdate {
            first_name: Some("<script>alert(1)</script>".into()),
            profile: Some(profile),
            ..UserUpdate::default()
        },
    )
    .expect("update");
    drop(conn);
    let fd = frontdesk(db);
    block_on(async move {
        let app = host_app!(fd);
        let (mut b, _) = fx::signed_in(db, cast.get("staff_owner"));
        for uri in [
            "/admin/users".to_owned(),
            format!("/admin/users/{}", cast.alice.id),
            format!("/admin/organizations/{}", cast.org_a.id),
            "/admin/audit".to_owned(),
        ] {
            let page = b.get(&app, &uri).await;
            assert_eq!(page.status, StatusCode::OK, "{uri}");
            assert!(!page.body.contains("<script>alert"), "{uri} escapes names");
            assert!(
                !page.body.contains("<img src=x"),
                "{uri} escapes profile fields"
            );
        }
        let page = b
            .get(&app, &format!("/admin/users/{}", cast.alice.id))
            .await;
        assert!(page
            .body
            .contains("&lt;script&gt;alert(1)&lt;&#x2F;script&gt;"));
        // A search term is echoed escaped too.
        let page = b.get(&app, "/admin/users?q=%22%3E%3Cscript%3Ex").await;
        assert!(!page.body.contains("\"><script>x"));
    });
});

both!(admin_bulk_actions_change_exactly_the_selected_users, |db| {
    let cast = fx::cast(db);
    let a = cast.org_a.id;
    let u1 = fx::user(db, "u1@acme.test", None, Some((a, OrgRole::Member)));
    let u2 = fx::user(db, "u2@acme.test", None, Some((a, OrgRole::Member)));
    let u3 = fx::user(db, "u3@acme.test", None, Some((a, OrgRole::Member)));
    let mut conn = db.conn();
    let beta = tags::create(&mut conn, &Actor::system(), "beta").expect("tag");
    drop(conn);
    let fd = frontdesk(db);
    block_on(async move {
        let app = host_app!(fd);
        let (mut admin, csrf) = fx::signed_in(db, cast.get("org_admin"));
        let (s1, s2) = (u1.id.to_string(), u2.id.to_string());
        let bulk = |action: &'static str| {
            vec![
                ("csrf_token", csrf.clone()),
                ("action", action.to_owned()),
                ("ids", s1.clone()),
                ("ids", s2.clone()),
                ("tag", beta.id.to_string()),
                ("return", "q=acme&status=active".to_owned()),
            ]
        };
        let send = |f: &Vec<(&'static str, String)>| {
            f.iter().map(|(k, v)| (*k, v.clone())).collect::<Vec<_>>()
        };

        let form = send(&bulk("add_tag"));
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let page = admin.post(&app, "/admin/users/bulk", &form).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER);
        assert_eq!(page.location(), "/admin/users?q=acme&status=active");
        let shown = admin.get(&app, page.location()).await;
        assert!(shown.body.contains("2 user(s) tagged."));
        let mut conn = db.conn();
        for (u, tagged) in [(&u1, true), (&u2, true), (&u3, false)] {
            let t = tags::tags_of(&mut conn, u.id).expect("tags");
            assert_eq!(t.iter().any(|t| t.id == beta.id), tagged, "{}", u.email);
        }
        drop(conn);

        for (action, check) in [
            ("disable_local_login", "local"),
            ("allow_local_login", "local"),
            ("revoke_sessions", "sessions"),
            ("remove_tag", "tag"),
        ] {
            let form = send(&bulk(action));
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let page = admin.post(&app, "/admin/users/bulk", &form).await;
            assert_eq!(page.status, StatusCode::SEE_OTHER, "{action}");
            let (x1, x3) = (
                fx::reload(db, u1.id).expect("u1"),
                fx::reload(db, u3.id).expect("u3"),
            );
            match (action, check) {
                ("disable_local_login", _) => {
                    assert!(!x1.local_login_enabled && x3.local_login_enabled)
                }
                ("allow_local_login", _) => assert!(x1.local_login_enabled),
                ("remove_tag", _) => {
                    let mut conn = db.conn();
                    assert!(tags::tags_of(&mut conn, u1.id).expect("tags").is_empty());
                }
                _ => {}
            }
        }

        // Suspend needs a reason; without one nothing changes.
        let mut form = send(&bulk("suspend"));
        let f: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let page = admin.post(&app, "/admin/users/bulk", &f).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER);
        assert!(!fx::reload(db, u1.id).expect("u1").is_suspended());
        form.push(("reason", "fraud ring".into()));
        let f: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        admin.post(&app, "/admin/users/bulk", &f).await;
        assert!(fx::reload(db, u1.id).expect("u1").is_suspended());
        assert!(fx::reload(db, u2.id).expect("u2").is_suspended());
        assert!(!fx::reload(db, u3.id).expect("u3").is_suspended());
        let form = send(&bulk("restore"));
        let f: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        admin.post(&app, "/admin/users/bulk", &f).await;
        assert!(!fx::reload(db, u1.id).expect("u1").is_suspended());

        // Delete asks first, saying what goes; only the typed word deletes.
        let form = send(&bulk("delete"));
        let f: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let page = admin.post(&app, "/admin/users/bulk", &f).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.body.contains("cannot be undone"));
        assert!(page.body.contains("u1@acme.test") && page.body.contains("u2@acme.test"));
        assert!(fx::reload(db, u1.id).is_some(), "nothing deleted yet");
        let mut form = send(&bulk("delete"));
        form.push(("confirm", "delete".into()));
        let f: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let page = admin.post(&app, "/admin/users/bulk", &f).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER);
        assert!(fx::reload(db, u1.id).is_none());
        assert!(fx::reload(db, u2.id).is_none());
        assert!(fx::reload(db, u3.id).is_some());

        // No selection, unknown action: an error, nothing changed.
        let before = fx::audit_count(db);
        for form in [
            vec![
                ("csrf_token", csrf.as_str()),
                ("action", "suspend"),
                ("reason", "x"),
            ],
            vec![
                ("csrf_token", csrf.as_str()),
                ("action", "explode"),
                ("ids", "1"),
            ],
        ] {
            let page = admin.post(&app, "/admin/users/bulk", &form).await;
            assert_eq!(page.status, StatusCode::SEE_OTHER);
            let shown = admin.get(&app, page.location()).await;
            assert!(shown.body.contains("fda-flash-error"));
        }
        assert_eq!(fx::audit_count(db), before);
    });
});

both!(admin_user_page_actions_and_typed_delete, |db| {
    let cast = fx::cast(db);
    let victim = user_with_password(db, "carol@acme.test");
    let mut conn = db.conn();
    frontdesk_core::organizations::add_member(
        &mut conn,
        &Actor::system(),
        cast.org_a.id,
        victim.id,
        OrgRole::Member,
    )
    .expect("member");
    drop(conn);
    let fd = frontdesk(db);
    block_on(async move {
        let app = host_app!(fd);
        // Lock carol out with wrong passwords.
        let mut carol = crate::web_app::Browser::new();
        for _ in 0..6 {
            carol
                .login(&app, "carol@acme.test", "wrong password!")
                .await;
        }
        let (mut admin, csrf) = fx::signed_in(db, cast.get("staff_owner"));
        let id = victim.id;
        let page = admin.get(&app, &format!("/admin/users/{id}")).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.body.contains("Locked out until"));
        assert!(page.body.contains("Wrong password"));
        assert!(!page.body.contains("bad_password"));
        assert!(page.body.contains("Acme"));
        assert!(
            page.body.contains("What deletion destroys") || page.body.contains("cannot be undone")
        );

        let page = admin
            .post(
                &app,
                &format!("/admin/users/{id}/lockout/clear"),
                &[("csrf_token", &csrf)],
            )
            .await;
        assert_eq!(page.status, StatusCode::SEE_OTHER);
        let page = admin.get(&app, &format!("/admin/users/{id}")).await;
        assert!(page.body.contains("Not locked out."));
        assert!(
            page.body.contains("user.lockout.clear"),
            "in the audit trail"
        );

        // Edit names, verification and a custom field.
        let page = admin
            .post(
                &app,
                &format!("/admin/users/{id}/edit"),
                &[
                    ("csrf_token", &csrf),
                    ("first_name", "Carol"),
                    ("last_name", "Danvers"),
                    ("display_name", ""),
                    ("email_verified", "yes"),
                    ("new_field", "plan"),
                    ("new_value", "pro"),
                ],
            )
            .await;
        assert_eq!(page.status, StatusCode::SEE_OTHER);
        let after = fx::reload(db, id).expect("carol");
        assert_eq!(after.first_name, "Carol");
        assert_eq!(after.last_name, "Danvers");
        assert!(after.email_verified);
        assert_eq!(
            after.profile_map().get("plan"),
            Some(&serde_json::json!("pro"))
        );
        assert_eq!(after.email, "carol@acme.test");

        // Org role change through the user page.
        let page = admin
            .post(
                &app,
                &format!("/admin/users/{id}/org-role"),
                &[
                    ("csrf_token", &csrf),
                    ("organization", &cast.org_a.id.to_string()),
                    ("role", "admin"),
                ],
            )
            .await;
        assert_eq!(page.status, StatusCode::SEE_OTHER);
        let mut conn = db.conn();
        let roles = frontdesk_core::organizations::roles_of(&mut conn, id).expect("roles");
        assert_eq!(roles, vec![(cast.org_a.id, OrgRole::Admin)]);
        drop(conn);

        // Password reset mail goes to the outbox.
        let before = crate::web_app::count(db, "outbox");
        let page = admin
            .post(
                &app,
                &format!("/admin/users/{id}/password-reset"),
                &[("csrf_token", &csrf)],
            )
            .await;
        assert_eq!(page.status, StatusCode::SEE_OTHER);
        assert_eq!(crate::web_app::count(db, "outbox"), before + 1);

        // A wrong confirmation deletes nothing.
        let page = admin
            .post(
                &app,
                &format!("/admin/users/{id}/delete"),
                &[("csrf_token", &csrf), ("confirm", "yes")],
            )
            .await;
        assert_eq!(page.status, StatusCode::SEE_OTHER);
        let shown = admin.get(&app, page.location()).await;
        assert!(
            shown.body.contains("type the user&#x27;s email address")
                || shown.body.contains("type the user")
        );
        assert!(fx::reload(db, id).is_some());
        let page = admin
            .post(
                &app,
                &format!("/admin/users/{id}/delete"),
                &[("csrf_token", &csrf), ("confirm", "Carol@Acme.test")],
            )
            .await;
        assert_eq!(page.status, StatusCode::SEE_OTHER);
        assert_eq!(page.location(), "/admin/users");
        assert!(fx::reload(db, id).is_none());
        let page = admin.get(&app, &format!("/admin/users/{id}")).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND);
    });
});

both!(
    admin_user_page_hides_other_organizations_audit_events,
    |db| {
        use frontdesk_core::organizations;
        let cast = fx::cast(db);
        let mut conn = db.conn();
        let sys = Actor::system();
        organizations::add_member(
            &mut conn,
            &sys,
            cast.org_b.id,
            cast.alice.id,
            OrgRole::Member,
        )
        .expect("alice joins globex");
        organizations::change_role(
            &mut conn,
            &sys,
            cast.org_b.id,
            cast.alice.id,
            OrgRole::Admin,
        )
        .expect("role in globex");
        drop(conn);
        let fd = frontdesk(db);
        block_on(async move {
            let app = host_app!(fd);
            let uri = format!("/admin/users/{}", cast.alice.id);
            let (mut staff, _) = fx::signed_in(db, cast.get("staff_owner"));
            let page = staff.get(&app, &uri).await;
            assert_eq!(page.status, StatusCode::OK);
            assert!(
                page.body.contains("membership.role"),
                "staff see alice's globex role change"
            );
            let (mut acme_admin, _) = fx::signed_in(db, cast.get("org_admin"));
            let page = acme_admin.get(&app, &uri).await;
            assert_eq!(page.status, StatusCode::OK);
            assert!(page.body.contains("user.create"), "acme's own events show");
            assert!(
                !page.body.contains("membership.role") && !page.body.contains("membership.add"),
                "acme's admin sees nothing of alice's globex membership"
            );
        });
    }
);

/// Seconds from now to a user's suspension end.
fn ends_in(db: &crate::support::TestDb, id: i64) -> Option<i64> {
    let u = fx::reload(db, id).expect("user");
    u.suspended_until
        .map(|t| (t - frontdesk_core::time::now()).num_seconds())
}

both!(suspensions_may_end_on_a_date, |db| {
    let cast = fx::cast(db);
    let fd = frontdesk(db);
    block_on(async move {
        let app = host_app!(fd);
        let (mut admin, csrf) = fx::signed_in(db, cast.get("staff_admin"));
        let alice = cast.alice.id;
        let bob = cast.bob.id;
        let page = admin.get(&app, &format!("/admin/users/{alice}")).await;
        assert!(page.body.contains(r#"name="days""#), "{}", page.body);
        assert!(page.body.contains(r#"name="until""#));

        // Bad ends are refused with the reason; nothing changes.
        let uri = format!("/admin/users/{alice}/suspend");
        let before = fx::audit_count(db);
        for (days, until, why) in [
            ("0", "", "from 1 to 3650"),
            ("3651", "", "from 1 to 3650"),
            ("seven", "", "from 1 to 3650"),
            ("", "2001-01-01", "must be in the future"),
            ("", "31/12/2099", "is not a date"),
            ("3", "2099-01-01", "not both"),
        ] {
            let res = admin
                .post(
                    &app,
                    &uri,
                    &[
                        ("csrf_token", &csrf),
                        ("reason", "spam"),
                        ("days", days),
                        ("until", until),
                    ],
                )
                .await;
            assert_eq!(res.status, StatusCode::SEE_OTHER);
            let shown = admin.get(&app, res.location()).await;
            assert!(
                shown.body.contains(why),
                "{days:?} {until:?}: {}",
                shown.body
            );
            assert!(!fx::reload(db, alice).expect("alice").is_suspended());
        }
        assert_eq!(fx::audit_count(db), before);

        // For 7 days.
        let res = admin
            .post(
                &app,
                &uri,
                &[("csrf_token", &csrf), ("reason", "spam"), ("days", "7")],
            )
            .await;
        let shown = admin.get(&app, res.location()).await;
        assert!(
            shown.body.contains("User suspended until"),
            "{}",
            shown.body
        );
        assert!(shown.body.contains(r#"<dd id="suspended-until">"#));
        let secs = ends_in(db, alice).expect("an end");
        assert!((7 * 86400 - 60..=7 * 86400).contains(&secs), "{secs}");
        let list = admin.get(&app, "/admin/users?status=suspended").await;
        let until = fx::reload(db, alice)
            .and_then(|u| u.suspended_until)
            .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
            .expect("until");
        assert!(
            list.body.contains(&format!("until {until}")),
            "{until}: {}",
            list.body
        );
        admin
            .post(
                &app,
                &format!("/admin/users/{alice}/restore"),
                &[("csrf_token", &csrf)],
            )
            .await;
        assert_eq!(ends_in(db, alice), None, "a restore clears the end");

        // Until a date: restored at the start of that day (UTC).
        let day = (frontdesk_core::time::now() + chrono::Duration::days(10)).date();
        let res = admin
            .post(
                &app,
                &uri,
                &[
                    ("csrf_token", &csrf),
                    ("reason", "spam"),
                    ("until", &day.to_string()),
                ],
            )
            .await;
        assert_eq!(res.status, StatusCode::SEE_OTHER);
        let u = fx::reload(db, alice).expect("alice");
        assert_eq!(u.suspended_until, day.and_hms_opt(0, 0, 0));

        // Without an end: open-ended, as before.
        let res = admin
            .post(
                &app,
                &format!("/admin/users/{bob}/suspend"),
                &[("csrf_token", &csrf), ("reason", "spam")],
            )
            .await;
        assert_eq!(res.status, StatusCode::SEE_OTHER);
        assert!(fx::reload(db, bob).expect("bob").is_suspended());
        assert_eq!(ends_in(db, bob), None);
        let page = admin.get(&app, &format!("/admin/users/{bob}")).await;
        assert!(page.body.contains("restored by hand"));
    });
});

both!(bulk_suspension_may_end_after_days, |db| {
    let cast = fx::cast(db);
    let fd = frontdesk(db);
    block_on(async move {
        let app = host_app!(fd);
        let (mut admin, csrf) = fx::signed_in(db, cast.get("staff_admin"));
        let (alice, bob) = (cast.alice.id.to_string(), cast.bob.id.to_string());
        let bulk = |days: &'static str| {
            vec![
                ("csrf_token", csrf.clone()),
                ("action", "suspend".to_owned()),
                ("reason", "fraud ring".to_owned()),
                ("days", days.to_owned()),
                ("ids", alice.clone()),
                ("ids", bob.clone()),
            ]
        };
        let form = bulk("0");
        let f: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let res = admin.post(&app, "/admin/users/bulk", &f).await;
        let shown = admin.get(&app, res.location()).await;
        assert!(shown.body.contains("from 1 to 3650"), "{}", shown.body);
        assert!(!fx::reload(db, cast.alice.id).expect("alice").is_suspended());

        let form = bulk("3");
        let f: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        admin.post(&app, "/admin/users/bulk", &f).await;
        for id in [cast.alice.id, cast.bob.id] {
            assert!(fx::reload(db, id).expect("user").is_suspended());
            let secs = ends_in(db, id).expect("an end");
            assert!((3 * 86400 - 60..=3 * 86400).contains(&secs), "{secs}");
        }
    });
});
