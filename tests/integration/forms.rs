//! Form bodies whose fields do not decode to UTF-8 are refused with a 400 on
//! every form, admin and auth, and change nothing (they used to be stored
//! with U+FFFD in place of what was sent). Sent as raw bytes to a real server.

use diesel::prelude::*;
use frontdesk_core::schema::{audit_events, organizations, sessions, users};

use crate::admin_browser::Framework;
use crate::admin_fixture as fx;
use crate::both_and_axum;
use crate::raw_http::post_form;

fn snapshot(db: &crate::support::TestDb) -> (i64, i64, i64, Vec<String>) {
    let c = &mut *db.conn();
    let count = |n: QueryResult<i64>| n.expect("count");
    (
        count(audit_events::table.count().get_result(c)),
        count(organizations::table.count().get_result(c)),
        count(
            sessions::table
                .filter(sessions::revoked_at.is_null())
                .count()
                .get_result(c),
        ),
        users::table
            .order(users::id)
            .select(users::first_name)
            .load(c)
            .expect("names"),
    )
}

both_and_axum!(
    forms_refuse_bodies_that_are_not_utf8,
    forms_refuse_bodies_that_are_not_utf8_on
);

fn forms_refuse_bodies_that_are_not_utf8_on(db: &crate::support::TestDb, framework: Framework) {
    let cast = fx::cast(db);
    let (base, server) = crate::admin_browser::serve_on(framework, db, "127.0.0.1", |b| b);
    let (browser, csrf) = fx::signed_in(db, cast.get("staff_owner"));
    let session = browser.jar.get("frontdesk_session").cloned();
    let (alice, org) = (cast.alice.id, cast.org_a.id);
    let before = snapshot(db);
    // Every urlencoded form; the multipart upload (`POST /admin/imports`)
    // checks each text field on its own.
    let admin = [
        "/admin/users/bulk".to_owned(),
        format!("/admin/users/{alice}/edit"),
        format!("/admin/users/{alice}/suspend"),
        format!("/admin/users/{alice}/restore"),
        format!("/admin/users/{alice}/local-login"),
        format!("/admin/users/{alice}/password-reset"),
        format!("/admin/users/{alice}/staff-role"),
        format!("/admin/users/{alice}/org-role"),
        format!("/admin/users/{alice}/tags"),
        format!("/admin/users/{alice}/tags/remove"),
        format!("/admin/users/{alice}/sessions/revoke-all"),
        format!("/admin/users/{alice}/lockout/clear"),
        format!("/admin/users/{alice}/delete"),
        "/admin/sessions/1/revoke".to_owned(),
        "/admin/organizations".to_owned(),
        format!("/admin/organizations/{org}"),
        format!("/admin/organizations/{org}/members"),
        format!("/admin/organizations/{org}/members/{alice}/role"),
        format!("/admin/organizations/{org}/members/{alice}/remove"),
        "/admin/invitations".to_owned(),
        "/admin/invitations/1/resend".to_owned(),
        "/admin/invitations/1/cancel".to_owned(),
        "/admin/imports/1/apply".to_owned(),
        "/admin/exports".to_owned(),
        "/admin/api-keys".to_owned(),
        "/admin/api-keys/1/revoke".to_owned(),
    ];
    let auth = [
        "/auth/login",
        "/auth/logout",
        "/auth/password-reset",
        "/auth/password-reset/some-token",
        "/auth/invitations/some-token",
        "/auth/password",
        "/auth/sessions/revoke-others",
        "/auth/sessions/1/revoke",
    ];
    // 0xFF never occurs in UTF-8; "%C3%28" is a broken two-byte sequence.
    let body = format!(
        "csrf_token={csrf}&first_name=Alice%FF&last_name=Test&name=Acme%C3%28&slug=acme2\
         &email=new%FF%40acme.test&role=member&reason=spam%FF&ids={alice}&action=suspend\
         &confirm=alice%40acme.test&password=secret%FFpass&password_confirm=secret%FFpass\
         &current_password=x%FF&new_password=y%FF"
    );
    for path in admin.iter().map(String::as_str).chain(auth) {
        let res = post_form(&base, path, session.as_deref(), body.as_bytes());
        assert_eq!(res.status, 400, "POST {path}: {}", res.body);
        assert!(res.body.contains("UTF-8"), "POST {path}: {}", res.body);
    }
    assert_eq!(snapshot(db), before, "nothing changed");
    // The same form with valid text goes through (the refusal is the bytes).
    let ok = format!(
        "csrf_token={csrf}&first_name=Alicia&last_name=Test&display_name=&email=alice%40acme.test"
    );
    let res = post_form(
        &base,
        &format!("/admin/users/{alice}/edit"),
        session.as_deref(),
        ok.as_bytes(),
    );
    assert_eq!(res.status, 303, "{}", res.body);
    assert_eq!(fx::reload(db, alice).expect("alice").first_name, "Alicia");
    server.stop();
}
