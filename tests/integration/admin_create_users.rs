//! Users created by admins (the "New user" page, `POST /users`, `POST
//! /organizations/{slug}/users`): who may create whom, the set-password mail
//! whose link activates and verifies the account, the `user_created` hook
//! once per arrival whatever the way in, and email verification from the
//! admin side (page, bulk bar, API) and the end user's side (banner, resend).

use std::sync::{Arc, Mutex};

use actix_web::http::StatusCode;
use diesel::prelude::*;
use frontdesk_core::schema::{audit_events, outbox, users as users_t};
use frontdesk_core::signup::SignupPolicy;
use frontdesk_core::users::UserStatus;
use frontdesk_core::{organizations, Actor};
use serde_json::json;

use crate::admin_fixture::{reload, signed_in};
use crate::api_v1_support::*;
use crate::both;
use crate::support::TestDb;
use crate::web_app::{block_on, builder, frontdesk, Browser};

const NEW_PASSWORD: &str = "a brand new password";

fn mails_to(db: &TestDb, kind: &str, to: &str) -> Vec<String> {
    outbox::table
        .filter(outbox::kind.eq(kind))
        .filter(outbox::recipient.eq(to))
        .order(outbox::id)
        .select(outbox::text_body)
        .load(&mut *db.conn())
        .expect("outbox")
}

fn audits(db: &TestDb, action: &str) -> i64 {
    audit_events::table
        .filter(audit_events::action.eq(action))
        .count()
        .get_result(&mut *db.conn())
        .expect("count")
}

fn user_id(db: &TestDb, email: &str) -> Option<i64> {
    users_t::table
        .filter(users_t::email.eq(email))
        .select(users_t::id)
        .first(&mut *db.conn())
        .optional()
        .expect("user")
}

/// The path of the first link under the auth prefix in a mail's text.
fn link_in(text: &str, marker: &str) -> String {
    let start = text
        .find(marker)
        .unwrap_or_else(|| panic!("no link: {text}"));
    let rest = &text[start..];
    let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
    rest[..end].to_owned()
}

both!(api_create_checks_who_may_create_whom, |db| {
    block_on(async {
        let fd = frontdesk(db);
        let app = crate::host_app!(fd);
        let w = world(db, &app).await;
        organizations::create(
            &mut db.conn(),
            &Actor::system(),
            "initech",
            "Initech",
            "initech.test",
        )
        .expect("org");
        let body = |email: &str| json!({"email": email, "first_name": "N", "last_name": "U"});
        // A staff viewer reads, never creates.
        for path in ["/users", "/organizations/acme/users"] {
            let a = expect(
                &app,
                &w,
                Who::StaffViewerKey,
                "POST",
                path,
                Some(body("v@x.test")),
                403,
            )
            .await;
            assert_eq!(a.problem_type(), "urn:frontdesk:problem:forbidden");
        }
        // Another organization is not there for an org admin, by either route.
        expect(
            &app,
            &w,
            Who::GlobexAdminKey,
            "POST",
            "/organizations/acme/users",
            Some(body("g@acme.test")),
            404,
        )
        .await;
        expect(
            &app,
            &w,
            Who::GlobexAdminKey,
            "POST",
            "/users",
            Some(json!({"email": "g@acme.test", "organization": "acme"})),
            404,
        )
        .await;
        expect(
            &app,
            &w,
            Who::AcmeAdminKey,
            "POST",
            "/organizations/nope/users",
            Some(body("n@acme.test")),
            404,
        )
        .await;
        // An org admin creates only into their organization, below owner.
        expect(
            &app,
            &w,
            Who::AcmeAdminKey,
            "POST",
            "/users",
            Some(body("o@acme.test")),
            403,
        )
        .await;
        expect(
            &app,
            &w,
            Who::AcmeAdminKey,
            "POST",
            "/organizations/acme/users",
            Some(json!({"email": "o@acme.test", "role": "owner"})),
            403,
        )
        .await;
        // Staff roles only from those who may grant them.
        expect(
            &app,
            &w,
            Who::StaffAdminKey,
            "POST",
            "/users",
            Some(json!({"email": "s@x.test", "staff_role": "viewer"})),
            403,
        )
        .await;
        // The organization's domains.
        let a = expect(
            &app,
            &w,
            Who::StaffOwnerKey,
            "POST",
            "/organizations/initech/users",
            Some(body("x@other.test")),
            422,
        )
        .await;
        assert_eq!(a.body["errors"][0]["field"], "email", "{}", a.raw);
        // A taken address, a bad one, an unknown field.
        let a = expect(
            &app,
            &w,
            Who::StaffOwnerKey,
            "POST",
            "/users",
            Some(body("member@acme.test")),
            409,
        )
        .await;
        assert!(a.raw.contains("already exists"), "{}", a.raw);
        let a = expect(
            &app,
            &w,
            Who::StaffOwnerKey,
            "POST",
            "/users",
            Some(body("not an email")),
            400,
        )
        .await;
        assert_eq!(a.body["errors"][0]["field"], "email", "{}", a.raw);
        expect(
            &app,
            &w,
            Who::StaffOwnerKey,
            "POST",
            "/users",
            Some(json!({"email": "z@x.test", "password": "x"})),
            400,
        )
        .await;
        expect(
            &app,
            &w,
            Who::StaffOwnerKey,
            "POST",
            "/users",
            Some(json!({"email": "z@x.test", "role": "admin"})),
            400,
        )
        .await;
        for e in [
            "v@x.test",
            "g@acme.test",
            "o@acme.test",
            "s@x.test",
            "x@other.test",
            "z@x.test",
        ] {
            assert_eq!(user_id(db, e), None, "{e} was not created");
        }
        let created_before = audits(db, "user.create");

        // Who may: a staff admin anywhere, an org admin into their own org.
        let a = expect(
            &app,
            &w,
            Who::StaffAdminKey,
            "POST",
            "/users",
            Some(body("new1@x.test")),
            201,
        )
        .await;
        assert_eq!(a.body["status"], "pending");
        assert_eq!(a.body["email_verified"], false);
        assert_eq!(a.body["memberships"], json!([]));
        let a = expect(
            &app,
            &w,
            Who::AcmeAdminKey,
            "POST",
            "/organizations/acme/users",
            Some(json!({"email": "New2@Acme.test", "role": "admin", "profile": {"team": "red"}})),
            201,
        )
        .await;
        assert_eq!(a.body["email"], "new2@acme.test");
        assert_eq!(a.body["memberships"][0]["organization_slug"], "acme");
        assert_eq!(a.body["memberships"][0]["role"], "admin");
        assert_eq!(a.body["profile"]["team"], "red");
        expect(
            &app,
            &w,
            Who::AcmeAdminSession,
            "POST",
            "/users",
            Some(json!({"email": "new3@acme.test", "organization": "acme"})),
            201,
        )
        .await;
        let a = expect(
            &app,
            &w,
            Who::StaffOwnerKey,
            "POST",
            "/users",
            Some(json!({"email": "new4@x.test", "staff_role": "viewer"})),
            201,
        )
        .await;
        assert_eq!(a.body["staff_role"], "viewer");
        assert_eq!(audits(db, "user.create"), created_before + 4);
        // Each got its mail: the organization's wording when it had one.
        let m = mails_to(db, "account_created", "new2@acme.test");
        assert_eq!(m.len(), 1);
        assert!(m[0].contains("You were added to Acme"), "{}", m[0]);
        let m = mails_to(db, "account_created", "new1@x.test");
        assert_eq!(m.len(), 1);
        assert!(m[0].contains("An account was created for you"), "{}", m[0]);
    });
});

both!(set_password_mail_activates_and_verifies, |db| {
    block_on(async {
        let fd = frontdesk(db);
        let app = crate::host_app!(fd);
        let w = world_data(db);
        let a = expect(
            &app,
            &w,
            Who::StaffOwnerKey,
            "POST",
            "/organizations/acme/users",
            Some(json!({"email": "fresh@acme.test", "first_name": "Fresh"})),
            201,
        )
        .await;
        let id = a.body["id"].as_i64().expect("id");
        let text = mails_to(db, "account_created", "fresh@acme.test").remove(0);
        let link = link_in(&text, "http://app.test/auth/password-reset/");
        let path = link.trim_start_matches("http://app.test");
        let mut b = Browser::new();
        // Opening the link twice uses nothing.
        for _ in 0..2 {
            let page = b.get(&app, path).await;
            assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        }
        let csrf = b.get(&app, path).await.csrf();
        let done = b
            .post(
                &app,
                path,
                &[
                    ("password", NEW_PASSWORD),
                    ("password_confirm", NEW_PASSWORD),
                    ("csrf_token", &csrf),
                ],
            )
            .await;
        assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
        let u = reload(db, id).expect("user");
        assert_eq!(u.account_status(), UserStatus::Active);
        assert!(u.email_verified);
        // Once only.
        let again = b
            .post(
                &app,
                path,
                &[
                    ("password", "another new password"),
                    ("password_confirm", "another new password"),
                    ("csrf_token", &csrf),
                ],
            )
            .await;
        assert_eq!(again.status, StatusCode::BAD_REQUEST);
        let mut b = Browser::new();
        let page = b.login(&app, "fresh@acme.test", NEW_PASSWORD).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    });
});

/// `user_created` as the host hears it, by email.
#[derive(Clone, Default)]
struct Created(Arc<Mutex<Vec<String>>>);

impl frontdesk::Hooks for Created {
    fn user_created(&self, user: &frontdesk_core::users::User) {
        if let Ok(mut v) = self.0.lock() {
            v.push(user.email.clone());
        }
    }
}

impl Created {
    fn times(&self, email: &str) -> usize {
        self.0
            .lock()
            .map(|v| v.iter().filter(|e| *e == email).count())
            .unwrap_or(0)
    }
}

both!(user_created_fires_once_for_every_way_in, |db| {
    block_on(async {
        let hooks = Created::default();
        let fd = builder(db)
            .hooks(hooks.clone())
            .signup_policy(SignupPolicy::Open)
            .build()
            .expect("frontdesk");
        let app = crate::host_app!(fd);
        let w = world_data(db);
        // Sign-up.
        let mut b = Browser::new();
        let csrf = b.get(&app, "/auth/signup").await.csrf();
        let page = b
            .post(
                &app,
                "/auth/signup",
                &[
                    ("email", "signup@x.test"),
                    ("first_name", "S"),
                    ("last_name", "U"),
                    ("password", NEW_PASSWORD),
                    ("csrf_token", &csrf),
                ],
            )
            .await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        fd.state().deferred_settled().await;
        // The admin page.
        let (mut admin, csrf) = signed_in(db, Some(&w.staff_owner));
        let page = admin
            .post(
                &app,
                "/admin/users/new",
                &[
                    ("email", "page@x.test"),
                    ("first_name", "P"),
                    ("csrf_token", &csrf),
                ],
            )
            .await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
        // The API and its organization-scoped form.
        expect(
            &app,
            &w,
            Who::StaffOwnerKey,
            "POST",
            "/users",
            Some(json!({"email": "api@x.test"})),
            201,
        )
        .await;
        expect(
            &app,
            &w,
            Who::AcmeAdminKey,
            "POST",
            "/organizations/acme/users",
            Some(json!({"email": "org@acme.test"})),
            201,
        )
        .await;
        // An import.
        let key = w.keys.get(&Who::AcmeAdminKey).cloned().expect("key");
        let req = actix_web::test::TestRequest::post()
            .uri(&format!("{API}/import?mode=apply"))
            .insert_header(("content-type", "text/csv"))
            .insert_header(("authorization", format!("Bearer {key}")))
            .set_payload(
                "email,first_name,last_name,organization,role\nimp@acme.test,I,M,acme,member\n",
            );
        let res = actix_web::test::call_service(&app, req.to_request()).await;
        assert_eq!(res.status(), StatusCode::OK);
        // The CLI's `create-admin` runs this core call on a pooled connection.
        {
            let mut conn = frontdesk_core::events::checkout(fd.pool()).expect("conn");
            frontdesk_core::users::create_admin(&mut conn, "cli@x.test", NEW_PASSWORD)
                .expect("admin");
        }
        for e in [
            "signup@x.test",
            "page@x.test",
            "api@x.test",
            "org@acme.test",
            "imp@acme.test",
            "cli@x.test",
        ] {
            assert_eq!(
                hooks.times(e),
                1,
                "{e}: {:?}",
                hooks.0.lock().map(|v| v.clone())
            );
        }
        // A refused creation is heard of by no one.
        expect(
            &app,
            &w,
            Who::StaffOwnerKey,
            "POST",
            "/users",
            Some(json!({"email": "api@x.test"})),
            409,
        )
        .await;
        assert_eq!(hooks.times("api@x.test"), 1);
    });
});

both!(new_user_page_creates_and_shows_errors_by_field, |db| {
    block_on(async {
        let fd = frontdesk(db);
        let app = crate::host_app!(fd);
        let w = world_data(db);
        organizations::create(
            &mut db.conn(),
            &Actor::system(),
            "initech",
            "Initech",
            "initech.test",
        )
        .expect("org");
        let initech = organizations::get_by_slug(&mut db.conn(), "initech").expect("initech");
        // The list offers the button to whoever may create someone.
        let (mut owner, csrf) = signed_in(db, Some(&w.staff_owner));
        let list = owner.get(&app, "/admin/users").await;
        assert!(list.body.contains("id=\"new-user\""), "{}", list.body);
        let form = owner.get(&app, "/admin/users/new").await;
        assert_eq!(form.status, StatusCode::OK);
        assert!(form.body.contains("name=\"staff_role\""));
        // Without a CSRF token: refused, nothing made.
        let page = owner
            .post(&app, "/admin/users/new", &[("email", "nocsrf@x.test")])
            .await;
        assert_eq!(page.status, StatusCode::FORBIDDEN);
        assert_eq!(user_id(db, "nocsrf@x.test"), None);
        // A bad address: the form again, the email field marked.
        let page = owner
            .post(
                &app,
                "/admin/users/new",
                &[
                    ("email", "nope"),
                    ("first_name", "Kept"),
                    ("csrf_token", &csrf),
                ],
            )
            .await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.body);
        assert!(page.body.contains("name=\"email\" value=\"nope\" required maxlength=\"254\" autocomplete=\"off\" aria-invalid=\"true\" aria-describedby=\"form-error\""), "{}", page.body);
        assert!(page.body.contains("value=\"Kept\""));
        // A domain the organization does not allow: 422 on the email.
        let org = initech.id.to_string();
        let page = owner
            .post(
                &app,
                "/admin/users/new",
                &[
                    ("email", "a@other.test"),
                    ("organization", &org),
                    ("role", "member"),
                    ("csrf_token", &csrf),
                ],
            )
            .await;
        assert_eq!(
            page.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            page.body
        );
        assert!(page.body.contains("aria-invalid=\"true\""));
        // A taken address: 409 with a clear message.
        let page = owner
            .post(
                &app,
                "/admin/users/new",
                &[("email", "member@acme.test"), ("csrf_token", &csrf)],
            )
            .await;
        assert_eq!(page.status, StatusCode::CONFLICT);
        assert!(page.body.contains("already exists"), "{}", page.body);
        // Success: to the new user's page.
        let page = owner
            .post(
                &app,
                "/admin/users/new",
                &[
                    ("email", "b@initech.test"),
                    ("organization", &org),
                    ("role", "admin"),
                    ("csrf_token", &csrf),
                ],
            )
            .await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
        let id = user_id(db, "b@initech.test").expect("created");
        let to = page
            .headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        assert_eq!(to, format!("/admin/users/{id}"));
        assert_eq!(mails_to(db, "account_created", "b@initech.test").len(), 1);

        // An org admin: only their own organization, 404 for another one.
        let (mut acme_admin, csrf) = signed_in(db, Some(&w.acme_admin));
        let form = acme_admin.get(&app, "/admin/users/new").await;
        assert_eq!(form.status, StatusCode::OK);
        assert!(!form.body.contains("name=\"staff_role\""));
        assert!(!form.body.contains("Globex"));
        let globex = w.globex.id.to_string();
        let page = acme_admin
            .post(
                &app,
                "/admin/users/new",
                &[
                    ("email", "c@globex.test"),
                    ("organization", &globex),
                    ("role", "member"),
                    ("csrf_token", &csrf),
                ],
            )
            .await;
        assert_eq!(page.status, StatusCode::NOT_FOUND);
        let page = acme_admin
            .post(
                &app,
                "/admin/users/new",
                &[("email", "c@acme.test"), ("csrf_token", &csrf)],
            )
            .await;
        assert_eq!(page.status, StatusCode::FORBIDDEN);
        let acme = w.acme.id.to_string();
        let page = acme_admin
            .post(
                &app,
                "/admin/users/new",
                &[
                    ("email", "c@acme.test"),
                    ("organization", &acme),
                    ("role", "member"),
                    ("csrf_token", &csrf),
                ],
            )
            .await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
        assert!(user_id(db, "c@acme.test").is_some());
        assert_eq!(user_id(db, "c@globex.test"), None);

        // A staff viewer sees no button and may not create.
        let viewer = frontdesk_core::users::find_by_email(&mut db.conn(), "viewer@staff.test")
            .expect("find")
            .expect("viewer");
        let (mut vb, csrf) = signed_in(db, Some(&viewer));
        let list = vb.get(&app, "/admin/users").await;
        assert!(!list.body.contains("id=\"new-user\""));
        assert_eq!(
            vb.get(&app, "/admin/users/new").await.status,
            StatusCode::FORBIDDEN
        );
        let page = vb
            .post(
                &app,
                "/admin/users/new",
                &[("email", "d@x.test"), ("csrf_token", &csrf)],
            )
            .await;
        assert_eq!(page.status, StatusCode::FORBIDDEN);
        assert_eq!(user_id(db, "d@x.test"), None);
    });
});

fn unverified(db: &TestDb, email: &str) -> i64 {
    let id = user_id(db, email).expect("user");
    diesel::update(users_t::table.find(id))
        .set(users_t::email_verified.eq(false))
        .execute(&mut *db.conn())
        .expect("unverify");
    id
}

both!(admins_mark_verified_and_resend_on_page_and_api, |db| {
    block_on(async {
        let fd = frontdesk(db);
        let app = crate::host_app!(fd);
        let w = world(db, &app).await;
        let member = unverified(db, "member@acme.test");
        let globex = unverified(db, "member@globex.test");
        // The user page offers both while the address is unverified.
        let (mut admin, csrf) = signed_in(db, Some(&w.acme_admin));
        let page = admin.get(&app, &format!("/admin/users/{member}")).await;
        assert!(page.body.contains("Mark email verified"), "{}", page.body);
        assert!(page.body.contains("Resend verification mail"));
        // Resend: a new mail each time, the older link dead.
        let to = format!("/admin/users/{member}/resend-verification");
        let page = admin.post(&app, &to, &[("csrf_token", &csrf)]).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER);
        assert_eq!(
            mails_to(db, "email_verification", "member@acme.test").len(),
            1
        );
        assert_eq!(audits(db, "user.email_verification.send"), 1);
        // Without CSRF nothing happens.
        let page = admin.post(&app, &to, &[]).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN);
        assert_eq!(
            mails_to(db, "email_verification", "member@acme.test").len(),
            1
        );
        // Another organization's member is not there.
        for action in ["verify-email", "resend-verification"] {
            let page = admin
                .post(
                    &app,
                    &format!("/admin/users/{globex}/{action}"),
                    &[("csrf_token", &csrf)],
                )
                .await;
            assert_eq!(page.status, StatusCode::NOT_FOUND, "{action}");
        }
        assert!(!reload(db, globex).expect("user").email_verified);
        assert!(mails_to(db, "email_verification", "member@globex.test").is_empty());
        let page = admin
            .post(
                &app,
                &format!("/admin/users/{member}/verify-email"),
                &[("csrf_token", &csrf)],
            )
            .await;
        assert_eq!(page.status, StatusCode::SEE_OTHER);
        assert!(reload(db, member).expect("user").email_verified);
        assert_eq!(audits(db, "user.email.verify"), 1);
        let page = admin.get(&app, &format!("/admin/users/{member}")).await;
        assert!(!page.body.contains("Mark email verified"));

        // The API: viewers may not, another organization's key finds nothing,
        // a verified address gets no mail.
        let member = unverified(db, "member@acme.test");
        for path in [
            format!("/users/{member}/verify-email"),
            format!("/users/{member}/resend-verification"),
            format!("/organizations/acme/users/{member}/verify-email"),
        ] {
            expect(&app, &w, Who::StaffViewerKey, "POST", &path, None, 403).await;
            expect(&app, &w, Who::GlobexAdminKey, "POST", &path, None, 404).await;
        }
        expect(
            &app,
            &w,
            Who::AcmeAdminKey,
            "POST",
            &format!("/organizations/globex/users/{globex}/verify-email"),
            None,
            404,
        )
        .await;
        let a = expect(
            &app,
            &w,
            Who::AcmeAdminKey,
            "POST",
            &format!("/organizations/acme/users/{member}/resend-verification"),
            None,
            200,
        )
        .await;
        assert_eq!(a.body["email_verified"], false);
        assert_eq!(
            mails_to(db, "email_verification", "member@acme.test").len(),
            2
        );
        let a = expect(
            &app,
            &w,
            Who::StaffAdminKey,
            "POST",
            &format!("/users/{member}/verify-email"),
            None,
            200,
        )
        .await;
        assert_eq!(a.body["email_verified"], true);
        let a = expect(
            &app,
            &w,
            Who::StaffAdminKey,
            "POST",
            &format!("/users/{member}/resend-verification"),
            None,
            409,
        )
        .await;
        assert!(a.raw.contains("verified already"), "{}", a.raw);
        assert_eq!(
            mails_to(db, "email_verification", "member@acme.test").len(),
            2
        );
        assert_eq!(audits(db, "user.email.verify"), 2);
    });
});

both!(
    end_users_see_a_banner_and_ask_for_new_links_within_limits,
    |db| {
        block_on(async {
            let fd = builder(db)
                .require_verified_email(false)
                .build()
                .expect("frontdesk");
            let app = crate::host_app!(fd);
            let w = world_data(db);
            let member = unverified(db, "member@acme.test");
            let owner = user_id(db, "owner@staff.test").expect("owner");
            diesel::update(users_t::table.find(owner))
                .set(users_t::email_verified.eq(true))
                .execute(&mut *db.conn())
                .expect("verified");
            let (mut b, csrf) = signed_in(db, Some(&w.acme_member));
            let page = b.get(&app, "/auth/sessions").await;
            assert!(page.body.contains("id=\"verify-banner\""), "{}", page.body);
            // The banner's button: the signed-in user's own address.
            let page = b
                .post(&app, "/auth/verify-email", &[("csrf_token", &csrf)])
                .await;
            assert_eq!(page.status, StatusCode::OK);
            fd.state().deferred_settled().await;
            assert_eq!(
                mails_to(db, "email_verification", "member@acme.test").len(),
                1
            );
            // The public form: the same answer for any address, mail only to an
            // unverified account, and no more than the limit per address.
            let mut anon = Browser::new();
            let csrf = anon.get(&app, "/auth/verify-email").await.csrf();
            let mut answers = Vec::new();
            for email in ["member@acme.test", "nobody@x.test", "owner@staff.test"] {
                let page = anon
                    .post(
                        &app,
                        "/auth/verify-email",
                        &[("email", email), ("csrf_token", &csrf)],
                    )
                    .await;
                answers.push((page.status, page.body));
            }
            assert!(
                answers.iter().all(|a| a == &answers[0]),
                "the same page for every address"
            );
            fd.state().deferred_settled().await;
            assert_eq!(
                mails_to(db, "email_verification", "member@acme.test").len(),
                2
            );
            assert!(mails_to(db, "email_verification", "owner@staff.test").is_empty());
            for _ in 0..5 {
                anon.post(
                    &app,
                    "/auth/verify-email",
                    &[("email", "member@acme.test"), ("csrf_token", &csrf)],
                )
                .await;
            }
            fd.state().deferred_settled().await;
            // Three requests per address within the hour (the sign-up limit).
            assert_eq!(
                mails_to(db, "email_verification", "member@acme.test").len(),
                3
            );
            // Verified by an admin: the banner goes at once.
            let (mut admin, admin_csrf) = signed_in(db, Some(&w.staff_owner));
            let page = admin
                .post(
                    &app,
                    &format!("/admin/users/{member}/verify-email"),
                    &[("csrf_token", &admin_csrf)],
                )
                .await;
            assert_eq!(page.status, StatusCode::SEE_OTHER);
            let page = b.get(&app, "/auth/sessions").await;
            assert!(!page.body.contains("id=\"verify-banner\""));
        });
    }
);

both!(refused_unverified_sign_in_links_to_a_new_mail, |db| {
    block_on(async {
        let fd = builder(db)
            .require_verified_email(true)
            .build()
            .expect("frontdesk");
        let app = crate::host_app!(fd);
        world_data(db);
        unverified(db, "member@acme.test");
        let mut b = Browser::new();
        let page = b
            .login(&app, "member@acme.test", crate::web_app::PASSWORD)
            .await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED);
        assert!(
            page.body.contains("id=\"resend-verification\""),
            "{}",
            page.body
        );
        let page = b.login(&app, "member@acme.test", "wrong password!").await;
        assert!(!page.body.contains("id=\"resend-verification\""));
    });
});

both!(bulk_bar_marks_verified_and_resends_all_or_nothing, |db| {
    block_on(async {
        let fd = frontdesk(db);
        let app = crate::host_app!(fd);
        let w = world_data(db);
        let member = unverified(db, "member@acme.test").to_string();
        let admin = unverified(db, "admin@acme.test").to_string();
        let globex = unverified(db, "member@globex.test").to_string();
        let (mut b, csrf) = signed_in(db, Some(&w.acme_admin));
        let list = b.get(&app, "/admin/users").await;
        assert!(list.body.contains("value=\"resend_verification\""));
        // One user the admin may not see (another organization): no one changes.
        let page = b
            .post(
                &app,
                "/admin/users/bulk",
                &[
                    ("action", "resend_verification"),
                    ("ids", &member),
                    ("ids", &globex),
                    ("csrf_token", &csrf),
                ],
            )
            .await;
        assert_eq!(page.status, StatusCode::NOT_FOUND);
        assert!(mails_to(db, "email_verification", "member@acme.test").is_empty());
        // Oneself is not an org admin's to edit either: refused as a whole.
        let page = b
            .post(
                &app,
                "/admin/users/bulk",
                &[
                    ("action", "verify_email"),
                    ("ids", &member),
                    ("ids", &admin),
                    ("csrf_token", &csrf),
                ],
            )
            .await;
        assert_eq!(page.status, StatusCode::FORBIDDEN);
        assert!(!reload(db, w.acme_member.id).expect("user").email_verified);
        let page = b
            .post(
                &app,
                "/admin/users/bulk",
                &[
                    ("action", "resend_verification"),
                    ("ids", &member),
                    ("csrf_token", &csrf),
                ],
            )
            .await;
        assert_eq!(page.status, StatusCode::SEE_OTHER);
        assert_eq!(
            mails_to(db, "email_verification", "member@acme.test").len(),
            1
        );
        let page = b
            .post(
                &app,
                "/admin/users/bulk",
                &[
                    ("action", "verify_email"),
                    ("ids", &member),
                    ("csrf_token", &csrf),
                ],
            )
            .await;
        assert_eq!(page.status, StatusCode::SEE_OTHER);
        assert!(reload(db, w.acme_member.id).expect("user").email_verified);
        // A staff viewer changes no one.
        let viewer = frontdesk_core::users::find_by_email(&mut db.conn(), "viewer@staff.test")
            .expect("find")
            .expect("viewer");
        let (mut vb, csrf) = signed_in(db, Some(&viewer));
        let page = vb
            .post(
                &app,
                "/admin/users/bulk",
                &[
                    ("action", "verify_email"),
                    ("ids", &globex),
                    ("csrf_token", &csrf),
                ],
            )
            .await;
        assert_eq!(page.status, StatusCode::FORBIDDEN);
        assert!(
            !reload(db, globex.parse().expect("id"))
                .expect("user")
                .email_verified
        );
    });
});
