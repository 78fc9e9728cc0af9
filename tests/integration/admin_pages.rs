//! The other admin pages: dashboard and chart, sessions, login attempts,
//! organizations, audit log, API keys, and host template overrides.

use actix_web::http::StatusCode;
use frontdesk_core::login_attempts::{self, Reason};
use frontdesk_core::sessions::ClientInfo;
use frontdesk_core::{api_keys, Actor};

use crate::admin_fixture::{self as fx};
use crate::both;
use crate::host_app;
use crate::web_app::{block_on, builder, frontdesk};

both!(admin_dashboard_counts_and_chart, |db| {
    let cast = fx::cast(db);
    let mut conn = db.conn();
    frontdesk_core::users::suspend(&mut conn, &Actor::system(), cast.bob.id, "x").expect("suspend");
    let client = ClientInfo::default();
    login_attempts::record(&mut conn, None, "who@x.test", &client, Reason::UnknownEmail)
        .expect("attempt");
    drop(conn);
    let fd = frontdesk(db);
    block_on(async move {
        let app = host_app!(fd);
        let (mut staff, _) = fx::signed_in(db, cast.get("staff_viewer"));
        let page = staff.get(&app, "/admin/").await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.body.contains("<strong>1</strong> suspended"));
        assert!(page
            .body
            .contains("<strong>1</strong> failed sign-ins (24 h)"));
        assert!(page.body.contains("<svg class=\"fd-chart\""));
        assert_eq!(page.body.matches("<polyline").count(), 3);
        assert!(!page.body.contains("<script>"), "no inline script");
        // An org admin's counts cover their organization only (bob is in B).
        let (mut org, _) = fx::signed_in(db, cast.get("org_admin"));
        let page = org.get(&app, "/admin").await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.body.contains("<strong>0</strong> suspended"));
        // The stylesheet and the script are served, cacheable.
        let css = org.get(&app, "/admin/static/admin.css").await;
        assert_eq!(css.status, StatusCode::OK);
        assert!(css
            .header("content-type")
            .is_some_and(|c| c.starts_with("text/css")));
        let js = org.get(&app, "/admin/static/admin.js").await;
        assert!(js.body.contains("fda-select-all"));
    });
});

both!(admin_sessions_page_lists_filters_and_revokes, |db| {
    let cast = fx::cast(db);
    let (mut alice_browser, _) = fx::signed_in(db, Some(&cast.alice));
    let (_bob_browser, _) = fx::signed_in(db, Some(&cast.bob));
    let fd = frontdesk(db);
    block_on(async move {
        let app = host_app!(fd);
        assert_eq!(
            alice_browser.get(&app, "/notes").await.status,
            StatusCode::OK
        );
        let (mut staff, csrf) = fx::signed_in(db, cast.get("staff_admin"));
        let page = staff.get(&app, "/admin/sessions").await;
        assert!(page.body.contains("alice@acme.test") && page.body.contains("bob@globex.test"));
        let page = staff
            .get(&app, &format!("/admin/sessions?org={}", cast.org_b.id))
            .await;
        assert!(!page.body.contains("alice@acme.test") && page.body.contains("bob@globex.test"));
        let page = staff
            .get(&app, &format!("/admin/sessions?user={}", cast.alice.id))
            .await;
        assert!(page.body.contains("alice@acme.test") && !page.body.contains("bob@globex.test"));
        assert!(page.body.contains("TestBrowser"));

        let mut conn = db.conn();
        let sid = frontdesk_core::sessions::list_live_for_user(
            &mut conn,
            cast.alice.id,
            &Default::default(),
        )
        .expect("sessions")[0]
            .id;
        drop(conn);
        let page = staff
            .post(
                &app,
                &format!("/admin/sessions/{sid}/revoke"),
                &[
                    ("csrf_token", &csrf),
                    ("return", &format!("user={}", cast.alice.id)),
                ],
            )
            .await;
        assert_eq!(page.status, StatusCode::SEE_OTHER);
        assert_eq!(
            page.location(),
            format!("/admin/sessions?user={}", cast.alice.id)
        );
        // Alice's next request is refused.
        assert_eq!(
            alice_browser.get(&app, "/notes").await.status,
            StatusCode::SEE_OTHER
        );
        let mut conn = db.conn();
        let s = frontdesk_core::sessions::get(&mut conn, sid).expect("session");
        assert_eq!(s.revoked_reason.as_deref(), Some("revoked_by_admin"));
        // Bob's session is untouched.
        let bob_live = frontdesk_core::sessions::list_live_for_user(
            &mut conn,
            cast.bob.id,
            &Default::default(),
        )
        .expect("sessions");
        assert_eq!(bob_live.len(), 1);
    });
});

both!(admin_login_attempts_filters, |db| {
    let cast = fx::cast(db);
    let mut conn = db.conn();
    let c = |ip: &str| ClientInfo {
        ip: Some(ip.into()),
        user_agent: None,
    };
    login_attempts::record(
        &mut conn,
        Some(cast.alice.id),
        "alice@acme.test",
        &c("198.51.100.1"),
        Reason::BadPassword,
    )
    .expect("a");
    login_attempts::record(
        &mut conn,
        Some(cast.alice.id),
        "alice@acme.test",
        &c("198.51.100.1"),
        Reason::Success,
    )
    .expect("b");
    login_attempts::record(
        &mut conn,
        Some(cast.bob.id),
        "bob@globex.test",
        &c("203.0.113.9"),
        Reason::Suspended,
    )
    .expect("c");
    login_attempts::record(
        &mut conn,
        None,
        "nobody@x.test",
        &c("203.0.113.9"),
        Reason::UnknownEmail,
    )
    .expect("d");
    drop(conn);
    let fd = frontdesk(db);
    block_on(async move {
        let app = host_app!(fd);
        let (mut staff, _) = fx::signed_in(db, cast.get("staff_viewer"));
        let page = staff
            .get(&app, "/admin/login-attempts?result=failure")
            .await;
        assert!(
            page.body.contains("nobody@x.test")
                && !page.body.contains("fda-status-active\">success")
        );
        let page = staff
            .get(&app, "/admin/login-attempts?reason=suspended")
            .await;
        assert!(page.body.contains("bob@globex.test") && !page.body.contains("alice@acme.test"));
        let page = staff
            .get(&app, "/admin/login-attempts?ip=198.51.100.1")
            .await;
        assert!(page.body.contains("alice@acme.test") && !page.body.contains("bob@globex.test"));
        let page = staff
            .get(&app, "/admin/login-attempts?from=2999-01-01")
            .await;
        assert!(page.body.contains("No attempts match."));
        let page = staff.get(&app, "/admin/login-attempts?reason=bogus").await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST);
        // The org admin sees attempts on their organization's accounts only.
        let (mut org, _) = fx::signed_in(db, cast.get("org_admin"));
        let page = org.get(&app, "/admin/login-attempts").await;
        assert!(page.body.contains("alice@acme.test"));
        assert!(!page.body.contains("bob@globex.test") && !page.body.contains("nobody@x.test"));
    });
});

both!(admin_organizations_create_edit_and_members, |db| {
    let cast = fx::cast(db);
    let extra = fx::user(db, "dave@initech.test", None, None);
    let fd = frontdesk(db);
    block_on(async move {
        let app = host_app!(fd);
        let (mut staff, csrf) = fx::signed_in(db, cast.get("staff_admin"));
        let page = staff
            .post(
                &app,
                "/admin/organizations",
                &[
                    ("csrf_token", &csrf),
                    ("slug", "initech"),
                    ("name", "Initech"),
                    ("domains", "initech.test"),
                ],
            )
            .await;
        assert_eq!(page.status, StatusCode::SEE_OTHER);
        let org_url = page.location().to_owned();
        let mut conn = db.conn();
        let org =
            frontdesk_core::organizations::get_by_slug(&mut conn, "initech").expect("created");
        assert_eq!(org.domains(), vec!["initech.test"]);
        drop(conn);
        // A duplicate slug is a clear error, nothing created.
        let page = staff
            .post(
                &app,
                "/admin/organizations",
                &[
                    ("csrf_token", &csrf),
                    ("slug", "initech"),
                    ("name", "Again"),
                ],
            )
            .await;
        let shown = staff.get(&app, page.location()).await;
        assert!(shown.body.contains("already taken"), "{}", shown.body);

        // Members: a user of another domain is refused, one of the domain added.
        let page = staff
            .post(
                &app,
                &format!("{org_url}/members"),
                &[
                    ("csrf_token", &csrf),
                    ("email", "alice@acme.test"),
                    ("role", "member"),
                ],
            )
            .await;
        let shown = staff.get(&app, page.location()).await;
        assert!(shown.body.contains("fda-flash-error"));
        let page = staff
            .post(
                &app,
                &format!("{org_url}/members"),
                &[
                    ("csrf_token", &csrf),
                    ("email", "dave@initech.test"),
                    ("role", "owner"),
                ],
            )
            .await;
        let shown = staff.get(&app, page.location()).await;
        assert!(
            shown.body.contains("dave@initech.test added."),
            "{}",
            shown.body
        );
        // The last owner cannot be demoted or removed.
        let page = staff
            .post(
                &app,
                &format!("{org_url}/members/{}/role", extra.id),
                &[("csrf_token", &csrf), ("role", "member")],
            )
            .await;
        let shown = staff.get(&app, page.location()).await;
        assert!(shown.body.contains("at least one owner"), "{}", shown.body);
        let mut conn = db.conn();
        assert_eq!(
            frontdesk_core::organizations::roles_of(&mut conn, extra.id).expect("roles"),
            vec![(org.id, frontdesk_core::OrgRole::Owner)]
        );
        drop(conn);
        // Domains edited.
        let page = staff
            .post(
                &app,
                &org_url,
                &[
                    ("csrf_token", &csrf),
                    ("name", "Initech Inc"),
                    ("domains", "initech.test, initech.example"),
                ],
            )
            .await;
        assert_eq!(page.status, StatusCode::SEE_OTHER);
        let mut conn = db.conn();
        let org = frontdesk_core::organizations::get(&mut conn, org.id).expect("org");
        assert_eq!(org.name, "Initech Inc");
        assert_eq!(org.domains(), vec!["initech.test", "initech.example"]);
        drop(conn);
        // An org admin lists only their own organization.
        let (mut org_admin, _) = fx::signed_in(db, cast.get("org_admin"));
        let page = org_admin.get(&app, "/admin/organizations").await;
        assert!(
            page.body.contains("Acme")
                && !page.body.contains("Initech")
                && !page.body.contains("Globex")
        );
        assert!(!page.body.contains("New organization"));
    });
});

both!(admin_api_key_is_shown_once_and_revoked, |db| {
    let cast = fx::cast(db);
    let fd = frontdesk(db);
    block_on(async move {
        let app = host_app!(fd);
        let (mut owner, csrf) = fx::signed_in(db, cast.get("staff_owner"));
        let page = owner
            .post(
                &app,
                "/admin/api-keys",
                &[
                    ("csrf_token", &csrf),
                    ("name", "billing sync"),
                    ("organization", "site"),
                    ("role", "viewer"),
                ],
            )
            .await;
        assert_eq!(page.status, StatusCode::OK);
        let start = page.body.find("fdk_").expect("the key is shown");
        let key: String = page.body[start..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
            .collect();
        assert!(key.len() > 40);
        let mut conn = db.conn();
        let found = api_keys::authenticate(&mut conn, &key)
            .expect("auth")
            .expect("key works");
        drop(conn);
        let list = owner.get(&app, "/admin/api-keys").await;
        assert!(list.body.contains("billing sync"));
        assert!(!list.body.contains(&key), "never shown again");
        let page = owner
            .post(
                &app,
                &format!("/admin/api-keys/{}/revoke", found.id),
                &[("csrf_token", &csrf)],
            )
            .await;
        assert_eq!(page.status, StatusCode::SEE_OTHER);
        let mut conn = db.conn();
        assert!(api_keys::authenticate(&mut conn, &key)
            .expect("auth")
            .is_none());
        drop(conn);
        // A bad role is an error and creates nothing.
        let page = owner
            .post(
                &app,
                "/admin/api-keys",
                &[
                    ("csrf_token", &csrf),
                    ("name", "x"),
                    ("organization", "site"),
                    ("role", "god"),
                ],
            )
            .await;
        assert_eq!(page.status, StatusCode::SEE_OTHER);
        let mut conn = db.conn();
        let actor = fx::actor(db, cast.get("staff_owner").expect("owner"));
        assert_eq!(api_keys::list(&mut conn, &actor).expect("keys").len(), 1);
    });
});

both!(admin_audit_log_filters_and_scopes, |db| {
    let cast = fx::cast(db);
    let mut conn = db.conn();
    frontdesk_core::users::suspend(&mut conn, &Actor::system(), cast.alice.id, "a").expect("s");
    frontdesk_core::users::suspend(&mut conn, &Actor::system(), cast.bob.id, "b").expect("s");
    drop(conn);
    let fd = frontdesk(db);
    block_on(async move {
        let app = host_app!(fd);
        let (mut staff, _) = fx::signed_in(db, cast.get("staff_viewer"));
        // Targets are named and linked to the user's page.
        let link = |id: i64| format!("href=\"&#x2F;admin/users/{id}\"");
        let page = staff.get(&app, "/admin/audit?action=user.suspend").await;
        assert!(page.body.contains(&link(cast.alice.id)));
        assert!(page.body.contains(&link(cast.bob.id)));
        assert!(!page.body.contains("organization.create"));
        let page = staff
            .get(&app, &format!("/admin/audit?target=user:{}", cast.bob.id))
            .await;
        assert!(!page.body.contains(&link(cast.alice.id)));
        let (mut org, _) = fx::signed_in(db, cast.get("org_admin"));
        let page = org.get(&app, "/admin/audit?action=user.suspend").await;
        assert!(page.body.contains(&link(cast.alice.id)));
        assert!(
            !page.body.contains(&link(cast.bob.id)),
            "another org's events are hidden"
        );
    });
});

both!(admin_templates_are_overridden_by_name, |db| {
    let cast = fx::cast(db);
    let dir = tempfile::tempdir().expect("dir");
    std::fs::create_dir_all(dir.path().join("admin")).expect("mkdir");
    // Branding: the host's base replaces ours on every admin page.
    let base = frontdesk_web::templates::EMBEDDED
        .iter()
        .find(|(n, _)| *n == "admin/base.html")
        .expect("embedded base")
        .1
        .replace(
            "{% block brand %}",
            "{% block brand %}<span class=\"host-brand\">Notes Inc. console</span>",
        );
    std::fs::write(dir.path().join("admin/base.html"), base).expect("write");
    // One page replaced entirely.
    std::fs::write(
        dir.path().join("admin/audit.html"),
        "{% extends \"admin/base.html\" %}{% block content %}<h1>Host audit</h1>{{ total }} events{% endblock content %}",
    )
    .expect("write");
    let fd = builder(db)
        .template_dir(dir.path())
        .build()
        .expect("frontdesk");
    block_on(async move {
        let app = host_app!(fd);
        let (mut staff, _) = fx::signed_in(db, cast.get("staff_owner"));
        let page = staff.get(&app, "/admin/users").await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.body.contains("Notes Inc. console"));
        assert!(
            page.body.contains("alice@acme.test"),
            "the page itself is ours"
        );
        let page = staff.get(&app, "/admin/audit").await;
        assert!(page.body.contains("<h1>Host audit</h1>"));
        assert!(page.body.contains("Notes Inc. console"));
    });
});

both!(admin_prefix_is_configurable, |db| {
    let cast = fx::cast(db);
    let fd = builder(db)
        .admin_prefix("/staff/")
        .build()
        .expect("frontdesk");
    block_on(async move {
        let app = host_app!(fd);
        let (mut staff, _) = fx::signed_in(db, cast.get("staff_owner"));
        let page = staff.get(&app, "/staff/users").await;
        assert_eq!(page.status, StatusCode::OK);
        // Tera writes the prefix's slashes as entities; browsers read them back.
        assert!(page.body.contains("href=\"&#x2F;staff/users/"));
        assert!(page.body.contains("&#x2F;staff/static/admin.css"));
        assert_eq!(
            staff.get(&app, "/admin/users").await.status,
            StatusCode::NOT_FOUND
        );
    });
    assert!(builder(db).admin_prefix("staff").build().is_err());
    assert!(builder(db).admin_prefix("/auth").build().is_err());
});

// A path id that does not fit a number (20 digits, letters) is a page that
// does not exist, answered exactly like a missing record, not with the
// framework's plain-text parser message.
both!(unparsable_ids_are_ordinary_not_found_pages, |db| {
    let cast = fx::cast(db);
    let fd = frontdesk(db);
    block_on(async move {
        let app = host_app!(fd);
        let (mut staff, _) = fx::signed_in(db, cast.get("staff_owner"));
        let missing = staff.get(&app, "/admin/users/424242").await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND);
        for uri in [
            "/admin/users/99999999999999999999",
            "/admin/users/abc",
            "/admin/organizations/99999999999999999999",
        ] {
            let page = staff.get(&app, uri).await;
            assert_eq!(
                (page.status, &page.body),
                (missing.status, &missing.body),
                "{uri}"
            );
        }
    });
});

// The flash message is signed: one frontdesk did not set (a cookie from a
// sibling subdomain, or its words altered) is not shown.
both!(a_flash_cookie_frontdesk_did_not_sign_is_not_shown, |db| {
    let cast = fx::cast(db);
    let fd = frontdesk(db);
    block_on(async move {
        let app = host_app!(fd);
        let (mut staff, csrf) = fx::signed_in(db, cast.get("staff_admin"));
        let form = [
            ("csrf_token", csrf.as_str()),
            ("slug", "flashco"),
            ("name", "Flash Co"),
        ];
        let created = staff.post(&app, "/admin/organizations", &form).await;
        assert_eq!(created.status, StatusCode::SEE_OTHER);
        let again = staff.post(&app, "/admin/organizations", &form).await;
        assert_eq!(again.status, StatusCode::SEE_OTHER);
        let real = staff
            .jar
            .get("frontdesk_flash")
            .cloned()
            .expect("a flash cookie");
        let (mac, _) = real.split_once('.').expect("signed: mac.message");
        let forged = [
            "error%3ASession+expired%3A+sign+in+again+at+evil.test".to_owned(),
            format!("{mac}.error%3ASession+expired%3A+sign+in+again+at+evil.test"),
            format!("AAAA{mac}.error%3Aalready+taken+at+evil.test"),
        ];
        for cookie in forged {
            staff.jar.insert("frontdesk_flash".into(), cookie.clone());
            let shown = staff.get(&app, "/admin/organizations").await;
            assert_eq!(shown.status, StatusCode::OK);
            assert!(
                !shown.body.contains("evil.test"),
                "{cookie}: {}",
                shown.body
            );
        }
        staff.jar.insert("frontdesk_flash".into(), real);
        let shown = staff.get(&app, "/admin/organizations").await;
        assert!(shown.body.contains("already taken"), "{}", shown.body);
    });
});
