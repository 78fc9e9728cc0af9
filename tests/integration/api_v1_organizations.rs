//! `/organizations`: organizations, memberships and the organization-scoped
//! user endpoints; a key of one organization learns nothing of another.

use diesel::prelude::*;
use frontdesk_core::schema::{memberships, organizations as orgs_t, sessions as sessions_t};
use serde_json::json;

use crate::api_v1_support::*;
use crate::both_and_axum;
use crate::web_app::{block_on, frontdesk};

fn live_sessions(db: &crate::support::TestDb, user: i64) -> i64 {
    sessions_t::table
        .filter(sessions_t::user_id.eq(user))
        .filter(sessions_t::revoked_at.is_null())
        .count()
        .get_result(&mut *db.conn())
        .expect("count")
}

fn role_in(db: &crate::support::TestDb, org: i64, user: i64) -> Option<String> {
    memberships::table
        .find((user, org))
        .select(memberships::role)
        .first(&mut *db.conn())
        .optional()
        .expect("query")
}

both_and_axum!(org_scoped_users_have_the_seed_shapes, |db, framework| {
    block_on(async {
        let fd = frontdesk(db);
        let app = crate::host_on!(framework, fd);
        let w = world(db, &app).await;
        session_for(db, w.acme_member.id);
        session_for(db, w.acme_member.id);
        for who in [
            Who::StaffViewerKey,
            Who::AcmeOwnerKey,
            Who::AcmeAdminKey,
            Who::AcmeMemberKey,
            Who::AcmeAdminSession,
        ] {
            let a = expect(
                &app,
                &w,
                who,
                "GET",
                "/organizations/acme/users?limit=2&page=1",
                None,
                200,
            )
            .await;
            assert_eq!(
                a.body["pagination"],
                json!({"page": 1, "limit": 2, "total": 3, "total_is_exact": true}),
                "{who:?}"
            );
            let u = &a.body["users"][0];
            for field in ["id", "email", "created_at", "last_login_at", "mfa_enabled"] {
                assert!(u.get(field).is_some(), "{who:?}: {field} in {u}");
            }
            assert_eq!(u["mfa_enabled"], false);
        }
        let a = expect(
            &app,
            &w,
            Who::AcmeAdminKey,
            "GET",
            "/organizations/acme/users?search=member",
            None,
            200,
        )
        .await;
        assert_eq!(emails(&a), ["member@acme.test"]);
        expect(
            &app,
            &w,
            Who::AcmeAdminKey,
            "GET",
            "/organizations/acme/users?limit=101",
            None,
            400,
        )
        .await;
        expect(
            &app,
            &w,
            Who::AcmeAdminKey,
            "GET",
            "/organizations/acme/users?status=active",
            None,
            400,
        )
        .await;

        let path = format!("/organizations/acme/users/{}", w.acme_member.id);
        let a = expect(&app, &w, Who::AcmeAdminKey, "GET", &path, None, 200).await;
        assert_eq!(a.body["email"], "member@acme.test");
        assert_eq!(a.body["email_verified"], false);
        assert!(a.body["updated_at"].is_string());
        assert_eq!(a.body["linked_identities"], json!([]));
        assert_eq!(a.body["memberships"][0]["role"], "member");
        // Two made here and the member's own signed-in browser.
        assert_eq!(a.body["sessions"]["active_count"], 3);
        assert!(a.body["sessions"]["last_created_at"].is_string());

        expect(&app, &w, Who::MemberSession, "GET", &path, None, 403).await;
        let revoke = format!("{path}/sessions");
        expect(&app, &w, Who::AcmeMemberKey, "DELETE", &revoke, None, 403).await;
        expect(
            &app,
            &w,
            Who::AcmeAdminSessionNoCsrf,
            "DELETE",
            &revoke,
            None,
            403,
        )
        .await;
        assert_eq!(live_sessions(db, w.acme_member.id), 3);
        let a = expect(&app, &w, Who::AcmeAdminKey, "DELETE", &revoke, None, 200).await;
        assert_eq!(
            a.body,
            json!({"message": "All sessions revoked", "sessions_revoked": 3})
        );
        assert_eq!(live_sessions(db, w.acme_member.id), 0);
        expect(&app, &w, Who::Anonymous, "GET", &path, None, 401).await;
        // The member's own browser was among the sessions revoked.
        expect(&app, &w, Who::MemberSession, "GET", &path, None, 401).await;
    });
});

both_and_axum!(
    a_key_of_one_organization_learns_nothing_of_another,
    |db, framework| {
        block_on(async {
            let fd = frontdesk(db);
            let app = crate::host_on!(framework, fd);
            let w = world(db, &app).await;
            session_for(db, w.globex_member.id);
            let g = w.globex_member.id;
            for who in [
                Who::AcmeOwnerKey,
                Who::AcmeAdminKey,
                Who::AcmeMemberKey,
                Who::AcmeAdminSession,
            ] {
                // Another organization, and its users, look exactly like ones that do not exist.
                for (real, fake) in [
                    (
                        "/organizations/globex".to_owned(),
                        "/organizations/nosuch".to_owned(),
                    ),
                    (
                        "/organizations/globex/users".to_owned(),
                        "/organizations/nosuch/users".to_owned(),
                    ),
                    (
                        "/organizations/globex/members".to_owned(),
                        "/organizations/nosuch/members".to_owned(),
                    ),
                    (
                        format!("/organizations/globex/users/{g}"),
                        "/organizations/nosuch/users/987654".to_owned(),
                    ),
                    (
                        format!("/organizations/acme/users/{g}"),
                        "/organizations/acme/users/987654".to_owned(),
                    ),
                    (format!("/users/{g}"), "/users/987654".to_owned()),
                    (
                        format!("/users/{g}/sessions"),
                        "/users/987654/sessions".to_owned(),
                    ),
                ] {
                    let a = expect(&app, &w, who, "GET", &real, None, 404).await;
                    let b = expect(&app, &w, who, "GET", &fake, None, 404).await;
                    assert_eq!(
                        crate::support::sans_request_id(&a.raw),
                        crate::support::sans_request_id(&b.raw),
                        "{who:?} {real}"
                    );
                }
                for (method, path) in [
                    (
                        "DELETE",
                        format!("/organizations/globex/users/{g}/sessions"),
                    ),
                    ("DELETE", format!("/users/{g}/sessions")),
                    ("POST", format!("/users/{g}/suspend")),
                    ("DELETE", format!("/users/{g}")),
                    ("DELETE", "/organizations/globex".to_owned()),
                ] {
                    expect(&app, &w, who, method, &path, None, 404).await;
                }
                let a = expect(&app, &w, who, "GET", "/organizations", None, 200).await;
                assert_eq!(a.body["organizations"].as_array().map(Vec::len), Some(1));
                assert_eq!(a.body["organizations"][0]["slug"], "acme");
                let a = expect(
                    &app,
                    &w,
                    who,
                    "GET",
                    &format!("/sessions?user_id={g}&active=false"),
                    None,
                    200,
                )
                .await;
                assert_eq!(a.body["pagination"]["total"], 0);
                let a = expect(
                    &app,
                    &w,
                    who,
                    "GET",
                    "/users?organization=globex",
                    None,
                    200,
                )
                .await;
                assert_eq!(a.body["pagination"]["total"], 0);
            }
            assert_eq!(live_sessions(db, g), 1, "nothing of globex changed");
            let n: i64 = orgs_t::table
                .count()
                .get_result(&mut *db.conn())
                .expect("count");
            assert_eq!(n, 2);
            // Even staff ask through the right organization.
            expect(
                &app,
                &w,
                Who::StaffOwnerKey,
                "GET",
                &format!("/organizations/acme/users/{g}"),
                None,
                404,
            )
            .await;
            expect(
                &app,
                &w,
                Who::StaffOwnerKey,
                "GET",
                &format!("/organizations/globex/users/{g}"),
                None,
                200,
            )
            .await;
        });
    }
);

both_and_axum!(
    organizations_and_memberships_follow_roles,
    |db, framework| {
        block_on(async {
            let fd = frontdesk(db);
            let app = crate::host_on!(framework, fd);
            let w = world(db, &app).await;
            let new = || {
                Some(
                    json!({"slug": "initech", "name": "Initech", "allowed_email_domains": ["initech.test"]}),
                )
            };
            for (who, status) in [
                (Who::Anonymous, 401),
                (Who::StaffViewerKey, 403),
                (Who::AcmeOwnerKey, 403),
                (Who::AcmeAdminSession, 403),
                (Who::MemberSession, 403),
            ] {
                expect(&app, &w, who, "POST", "/organizations", new(), status).await;
            }
            let a = expect(
                &app,
                &w,
                Who::StaffAdminKey,
                "POST",
                "/organizations",
                new(),
                201,
            )
            .await;
            assert_eq!(a.body["allowed_email_domains"], json!(["initech.test"]));
            let a = expect(
                &app,
                &w,
                Who::StaffOwnerKey,
                "POST",
                "/organizations",
                new(),
                409,
            )
            .await;
            assert_eq!(a.problem_type(), "urn:frontdesk:problem:conflict");
            for (body, field) in [
                (json!({"slug": "Bad Slug", "name": "x"}), "slug"),
                (json!({"slug": "ok", "name": " "}), "name"),
                (
                    json!({"slug": "ok", "name": "x", "allowed_email_domains": ["not a domain"]}),
                    "allowed_email_domains",
                ),
                (json!({"slug": "ok"}), "name"),
            ] {
                let a = expect(
                    &app,
                    &w,
                    Who::StaffOwnerKey,
                    "POST",
                    "/organizations",
                    Some(body),
                    400,
                )
                .await;
                assert_eq!(a.body["errors"][0]["field"], field, "{}", a.raw);
            }
            let n: i64 = orgs_t::table
                .count()
                .get_result(&mut *db.conn())
                .expect("count");
            assert_eq!(n, 3, "only the one good organization was made");

            // Org owners and admins edit their organization; members and other orgs cannot.
            expect(
                &app,
                &w,
                Who::AcmeMemberKey,
                "PATCH",
                "/organizations/acme",
                Some(json!({"name": "X"})),
                403,
            )
            .await;
            expect(
                &app,
                &w,
                Who::GlobexAdminKey,
                "PATCH",
                "/organizations/acme",
                Some(json!({"name": "X"})),
                404,
            )
            .await;
            let a = expect(
                &app,
                &w,
                Who::AcmeAdminKey,
                "PATCH",
                "/organizations/acme",
                Some(json!({"name": "Acme 2", "allowed_email_domains": []})),
                200,
            )
            .await;
            assert_eq!(a.body["name"], "Acme 2");
            let a = expect(
                &app,
                &w,
                Who::AcmeAdminKey,
                "PATCH",
                "/organizations/acme",
                Some(json!({"name": "Acme 3", "allowed_email_domains": ["-bad-"]})),
                400,
            )
            .await;
            assert_eq!(a.body["errors"][0]["field"], "allowed_email_domains");
            let a = expect(
                &app,
                &w,
                Who::StaffViewerKey,
                "GET",
                "/organizations/acme",
                None,
                200,
            )
            .await;
            assert_eq!(a.body["name"], "Acme 2", "the bad patch changed nothing");

            // Members: list, add, change role, remove; the last owner stays.
            let a = expect(
                &app,
                &w,
                Who::AcmeMemberKey,
                "GET",
                "/organizations/acme/members",
                None,
                200,
            )
            .await;
            assert_eq!(a.body["pagination"]["total"], 3);
            let acme = w.acme.id;
            let globex_user = w.globex_member.id;
            expect(
                &app,
                &w,
                Who::AcmeAdminKey,
                "POST",
                "/organizations/acme/members",
                Some(json!({"user_id": globex_user, "role": "member"})),
                404,
            )
            .await;
            assert_eq!(role_in(db, acme, globex_user), None);
            let a = expect(
                &app,
                &w,
                Who::StaffAdminKey,
                "POST",
                "/organizations/acme/members",
                Some(json!({"user_id": globex_user, "role": "member"})),
                201,
            )
            .await;
            assert_eq!(a.body["role"], "member");
            assert_eq!(role_in(db, acme, globex_user).as_deref(), Some("member"));
            expect(
                &app,
                &w,
                Who::StaffAdminKey,
                "POST",
                "/organizations/acme/members",
                Some(json!({"user_id": globex_user, "role": "member"})),
                409,
            )
            .await;
            expect(
                &app,
                &w,
                Who::StaffAdminKey,
                "POST",
                "/organizations/acme/members",
                Some(json!({"user_id": 987654, "role": "member"})),
                404,
            )
            .await;
            expect(
                &app,
                &w,
                Who::StaffAdminKey,
                "POST",
                "/organizations/acme/members",
                Some(json!({"user_id": globex_user, "role": "king"})),
                400,
            )
            .await;
            let path = format!("/organizations/acme/members/{}", w.acme_member.id);
            expect(
                &app,
                &w,
                Who::AcmeAdminKey,
                "PATCH",
                &path,
                Some(json!({"role": "owner"})),
                403,
            )
            .await;
            expect(
                &app,
                &w,
                Who::AcmeAdminKey,
                "PATCH",
                &path,
                Some(json!({"role": "admin"})),
                200,
            )
            .await;
            assert_eq!(
                role_in(db, acme, w.acme_member.id).as_deref(),
                Some("admin")
            );
            let owner = format!("/organizations/acme/members/{}", w.acme_owner.id);
            let a = expect(
                &app,
                &w,
                Who::AcmeOwnerKey,
                "PATCH",
                &owner,
                Some(json!({"role": "member"})),
                409,
            )
            .await;
            assert_eq!(a.problem_type(), "urn:frontdesk:problem:last-owner");
            expect(&app, &w, Who::AcmeOwnerKey, "DELETE", &owner, None, 409).await;
            assert_eq!(role_in(db, acme, w.acme_owner.id).as_deref(), Some("owner"));
            expect(&app, &w, Who::AcmeAdminKey, "DELETE", &path, None, 204).await;
            assert_eq!(role_in(db, acme, w.acme_member.id), None);

            // Deleting an organization: org owners may, admins may not.
            expect(
                &app,
                &w,
                Who::AcmeAdminKey,
                "DELETE",
                "/organizations/acme",
                None,
                403,
            )
            .await;
            expect(
                &app,
                &w,
                Who::StaffOwnerKey,
                "DELETE",
                "/organizations/initech",
                None,
                204,
            )
            .await;
            expect(
                &app,
                &w,
                Who::StaffOwnerKey,
                "GET",
                "/organizations/initech",
                None,
                404,
            )
            .await;
        });
    }
);

// Read-then-write handlers take SQLite's write lock first: a deferred
// transaction that reads, then writes after another connection committed,
// fails at once with "database is locked" (busy_timeout does not apply), which
// the fuzzer once met as a 500 while the mail worker wrote in the background.
both_and_axum!(
    edits_succeed_while_another_connection_keeps_committing,
    |db, framework| {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::Arc;
        block_on(async {
            let fd = frontdesk(db);
            let app = crate::host_on!(framework, fd);
            let w = world(db, &app).await;
            let stop = Arc::new(AtomicBool::new(false));
            let writer = {
                let stop = stop.clone();
                let pool = db.pool().clone();
                std::thread::spawn(move || {
                    let mut n = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let mut conn = pool.get().expect("connection");
                        diesel::update(orgs_t::table.filter(orgs_t::slug.eq("globex")))
                            .set(orgs_t::name.eq(format!("Globex {n}")))
                            .execute(&mut *conn)
                            .expect("background write");
                        n += 1;
                    }
                    n
                })
            };
            for i in 0..150 {
                expect(
                    &app,
                    &w,
                    Who::StaffOwnerKey,
                    "PATCH",
                    "/organizations/acme",
                    Some(json!({"name": format!("Acme {i}")})),
                    200,
                )
                .await;
            }
            stop.store(true, Ordering::Relaxed);
            let writes = writer.join().expect("writer");
            assert!(writes > 0, "the background writer ran");
            let name: String = orgs_t::table
                .filter(orgs_t::slug.eq("acme"))
                .select(orgs_t::name)
                .first(&mut *db.conn())
                .expect("acme");
            assert_eq!(name, "Acme 149");
        });
    }
);

both_and_axum!(
    what_a_directory_delete_does_is_set_through_the_api,
    |db, framework| {
        block_on(async {
            let fd = frontdesk(db);
            let app = crate::host_on!(framework, fd);
            let w = world(db, &app).await;
            let a = expect(
                &app,
                &w,
                Who::AcmeAdminKey,
                "GET",
                "/organizations/acme",
                None,
                200,
            )
            .await;
            assert_eq!(a.body["scim_delete"], "membership");
            let a = expect(
                &app,
                &w,
                Who::AcmeOwnerKey,
                "PATCH",
                "/organizations/acme",
                Some(json!({"scim_delete": "user"})),
                200,
            )
            .await;
            assert_eq!(a.body["scim_delete"], "user");
            let stored: String = orgs_t::table
                .filter(orgs_t::slug.eq("acme"))
                .select(orgs_t::scim_delete)
                .first(&mut *db.conn())
                .expect("org");
            assert_eq!(stored, "user");
            let audited: i64 = frontdesk_core::schema::audit_events::table
                .filter(frontdesk_core::schema::audit_events::action.eq("organization.scim_delete"))
                .count()
                .get_result(&mut *db.conn())
                .expect("audit");
            assert_eq!(audited, 1);
            // Anything else is refused by name; a member may not change it.
            let a = expect(
                &app,
                &w,
                Who::AcmeOwnerKey,
                "PATCH",
                "/organizations/acme",
                Some(json!({"scim_delete": "everything"})),
                400,
            )
            .await;
            assert!(a.raw.contains("scim_delete"), "{}", a.raw);
            expect(
                &app,
                &w,
                Who::AcmeMemberKey,
                "PATCH",
                "/organizations/acme",
                Some(json!({"scim_delete": "membership"})),
                403,
            )
            .await;
            let stored: String = orgs_t::table
                .filter(orgs_t::slug.eq("acme"))
                .select(orgs_t::scim_delete)
                .first(&mut *db.conn())
                .expect("org");
            assert_eq!(stored, "user");
        });
    }
);
