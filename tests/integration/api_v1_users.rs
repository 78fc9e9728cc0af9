//! `/users`: the list with every filter and its bounds, detail, update,
//! suspend, restore, delete and revoking sessions, for every caller.

use diesel::prelude::*;
use frontdesk_core::schema::{audit_events, sessions as sessions_t, users as users_t};
use frontdesk_core::tags;
use frontdesk_core::Actor;
use serde_json::json;

use crate::api_v1_support::*;
use crate::both_and_axum;
use crate::web_app::{block_on, frontdesk};

fn status_of(db: &crate::support::TestDb, id: i64) -> Option<String> {
    users_t::table
        .find(id)
        .select(users_t::status)
        .first(&mut *db.conn())
        .optional()
        .expect("query")
}

fn live_sessions(db: &crate::support::TestDb, user: i64) -> i64 {
    sessions_t::table
        .filter(sessions_t::user_id.eq(user))
        .filter(sessions_t::revoked_at.is_null())
        .count()
        .get_result(&mut *db.conn())
        .expect("count")
}

both_and_axum!(list_pagination_bounds_are_clear_400s, |db, framework| {
    block_on(async {
        let fd = frontdesk(db);
        let app = crate::host_on!(framework, fd);
        let w = world_data(db);
        for q in [
            "limit=0",
            "limit=101",
            "limit=-1",
            "limit=abc",
            "limit=",
            "limit=1.5",
            "page=0",
            "page=-3",
            "page=x",
            "page=99999999999999999999",
        ] {
            let a = expect(
                &app,
                &w,
                Who::StaffOwnerKey,
                "GET",
                &format!("/users?{q}"),
                None,
                400,
            )
            .await;
            assert_eq!(a.problem_type(), "urn:frontdesk:problem:validation", "{q}");
            let field = q.split('=').next().unwrap_or_default();
            assert_eq!(a.body["errors"][0]["field"], field, "{q}: {}", a.raw);
            assert!(a.body["detail"].as_str().unwrap_or("").contains(field));
        }
        let a = expect(
            &app,
            &w,
            Who::StaffOwnerKey,
            "GET",
            "/users?limit=1&limit=2&stauts=active&status=gone",
            None,
            400,
        )
        .await;
        let fields: Vec<&str> = a.body["errors"]
            .as_array()
            .expect("errors")
            .iter()
            .filter_map(|e| e["field"].as_str())
            .collect();
        assert_eq!(
            fields,
            ["limit", "stauts", "status"],
            "every problem at once"
        );

        let a = expect(&app, &w, Who::StaffOwnerKey, "GET", "/users", None, 200).await;
        assert_eq!(
            a.body["pagination"],
            json!({"page": 1, "limit": 50, "total": 8, "total_is_exact": true})
        );
        let a = expect(
            &app,
            &w,
            Who::StaffOwnerKey,
            "GET",
            "/users?limit=100",
            None,
            200,
        )
        .await;
        assert_eq!(a.body["pagination"]["limit"], 100);
        let a = expect(
            &app,
            &w,
            Who::StaffOwnerKey,
            "GET",
            "/users?limit=3&page=3&sort=email&dir=asc",
            None,
            200,
        )
        .await;
        assert_eq!(
            a.body["pagination"],
            json!({"page": 3, "limit": 3, "total": 8, "total_is_exact": true})
        );
        assert_eq!(emails(&a), ["owner@staff.test", "viewer@staff.test"]);
        let a = expect(
            &app,
            &w,
            Who::StaffOwnerKey,
            "GET",
            "/users?page=50",
            None,
            200,
        )
        .await;
        assert!(emails(&a).is_empty());
    });
});

both_and_axum!(list_takes_the_whole_users_query, |db, framework| {
    block_on(async {
        let fd = frontdesk(db);
        let app = crate::host_on!(framework, fd);
        let w = world_data(db);
        let beta = {
            let c = &mut *db.conn();
            let sys = Actor::system();
            let beta = tags::create(c, &sys, "beta").expect("tag");
            tags::assign(c, &sys, w.acme_member.id, beta.id).expect("tag");
            tags::assign(c, &sys, w.globex_member.id, beta.id).expect("tag");
            frontdesk_core::users::suspend(c, &sys, w.globex_member.id, "spam").expect("suspend");
            beta
        };
        let q = |s: &str| format!("/users?sort=email&dir=asc&{s}");
        let k = Who::StaffAdminKey;
        let cases: Vec<(String, Vec<&str>)> = vec![
            (
                q("search=member"),
                vec!["member@acme.test", "member@globex.test"],
            ),
            (q("status=suspended"), vec!["member@globex.test"]),
            (
                q("staff=staff"),
                vec!["admin@staff.test", "owner@staff.test", "viewer@staff.test"],
            ),
            (q("staff=viewer"), vec!["viewer@staff.test"]),
            (
                q("organization=acme&org_role=admin"),
                vec!["admin@acme.test"],
            ),
            (
                q("org_role=owner"),
                vec!["owner@acme.test", "owner@globex.test"],
            ),
            (
                q(&format!("tags_all={}", beta.id)),
                vec!["member@acme.test", "member@globex.test"],
            ),
            (
                q(&format!("tags_any={},999&organization=globex", beta.id)),
                vec!["member@globex.test"],
            ),
            // Arrays also as repeated keys, as generated clients send them.
            (
                q(&format!(
                    "tags_any={}&tags_any=999&organization=globex",
                    beta.id
                )),
                vec!["member@globex.test"],
            ),
            (
                q(&format!("tags_all={0}&tags_all={0}", beta.id)),
                vec!["member@acme.test", "member@globex.test"],
            ),
            (
                q(&format!("tags_none={}&organization=acme", beta.id)),
                vec!["admin@acme.test", "owner@acme.test"],
            ),
            (
                q("created_from=2000-01-01&created_to=2999-01-01T00:00:00Z&staff=owner"),
                vec!["owner@staff.test"],
            ),
            (q("created_to=2000-01-01"), vec![]),
            (q("last_login=never&staff=admin"), vec!["admin@staff.test"]),
            (q("last_login_from=2000-01-01"), vec![]),
        ];
        for (path, want) in cases {
            let a = expect(&app, &w, k, "GET", &path, None, 200).await;
            assert_eq!(emails(&a), want, "{path}");
            assert_eq!(a.body["pagination"]["total"], want.len(), "{path}");
        }
        let a = expect(
            &app,
            &w,
            k,
            "GET",
            "/users?sort=email&dir=desc&limit=1",
            None,
            200,
        )
        .await;
        assert_eq!(emails(&a), ["viewer@staff.test"]);
        for (bad, field) in [
            ("status=gone", "status"),
            ("staff=boss", "staff"),
            ("org_role=king", "org_role"),
            ("tags_all=a,b", "tags_all"),
            ("tags_any=1,,2", "tags_any"),
            ("tags_any=1&tags_any=", "tags_any"),
            // Control characters are refused before trimming: a bare CR is
            // not "not given".
            ("organization=%0D", "organization"),
            ("search=%0A", "search"),
            ("tags_all=%0D", "tags_all"),
            ("status=active&status=suspended", "status"),
            ("created_from=yesterday", "created_from"),
            ("last_login=sometimes", "last_login"),
            ("sort=age", "sort"),
            ("dir=up", "dir"),
            ("search=", "-"),
        ] {
            let path = format!("/users?{bad}");
            if field == "-" {
                expect(&app, &w, k, "GET", &path, None, 200).await;
                continue;
            }
            let a = expect(&app, &w, k, "GET", &path, None, 400).await;
            assert_eq!(a.body["errors"][0]["field"], field, "{bad}: {}", a.raw);
        }
        // Filters that match nobody: contradictory ones, an unknown organization,
        // and for an organization key another organization, answered alike.
        for (who, q) in [
            (k, "last_login=never&last_login_from=2020-01-01"),
            (k, "organization=nosuch"),
            (Who::AcmeAdminKey, "organization=globex"),
            (Who::AcmeAdminKey, "organization=nosuch"),
        ] {
            let a = expect(&app, &w, who, "GET", &format!("/users?{q}"), None, 200).await;
            assert_eq!(
                a.body,
                json!({"users": [], "pagination": {"page": 1, "limit": 50, "total": 0, "total_is_exact": true}}),
                "{q}"
            );
        }
    });
});

both_and_axum!(list_is_scoped_per_caller, |db, framework| {
    block_on(async {
        let fd = frontdesk(db);
        let app = crate::host_on!(framework, fd);
        let w = world(db, &app).await;
        let acme = ["admin@acme.test", "member@acme.test", "owner@acme.test"];
        for who in [
            Who::StaffOwnerKey,
            Who::StaffAdminKey,
            Who::StaffViewerKey,
            Who::StaffOwnerSession,
        ] {
            let a = expect(&app, &w, who, "GET", "/users?sort=email", None, 200).await;
            assert_eq!(a.body["pagination"]["total"], 8, "{who:?}");
        }
        for who in [
            Who::AcmeOwnerKey,
            Who::AcmeAdminKey,
            Who::AcmeMemberKey,
            Who::AcmeAdminSession,
            Who::AcmeAdminSessionNoCsrf,
        ] {
            let a = expect(&app, &w, who, "GET", "/users?sort=email&dir=asc", None, 200).await;
            assert_eq!(emails(&a), acme, "{who:?}");
        }
        let a = expect(
            &app,
            &w,
            Who::GlobexAdminKey,
            "GET",
            "/users?sort=email&dir=asc",
            None,
            200,
        )
        .await;
        assert_eq!(emails(&a), ["member@globex.test", "owner@globex.test"]);
        expect(&app, &w, Who::MemberSession, "GET", "/users", None, 403).await;
        expect(&app, &w, Who::Anonymous, "GET", "/users", None, 401).await;
    });
});

both_and_axum!(detail_hides_other_organizations, |db, framework| {
    block_on(async {
        let fd = frontdesk(db);
        let app = crate::host_on!(framework, fd);
        let w = world(db, &app).await;
        session_for(db, w.acme_member.id);
        let acme_path = format!("/users/{}", w.acme_member.id);
        let globex_path = format!("/users/{}", w.globex_member.id);
        for who in [
            Who::StaffOwnerKey,
            Who::StaffAdminKey,
            Who::StaffViewerKey,
            Who::AcmeOwnerKey,
            Who::AcmeAdminKey,
            Who::AcmeMemberKey,
            Who::AcmeAdminSession,
        ] {
            let a = expect(&app, &w, who, "GET", &acme_path, None, 200).await;
            assert_eq!(a.body["email"], "member@acme.test");
            assert_eq!(a.body["mfa_enabled"], false);
            assert_eq!(a.body["linked_identities"], json!([]));
            assert_eq!(a.body["memberships"][0]["organization_slug"], "acme");
            assert!(
                a.body["sessions"]["active_count"].as_i64().unwrap_or(0) >= 1,
                "{}",
                a.raw
            );
        }
        for who in [
            Who::AcmeOwnerKey,
            Who::AcmeAdminKey,
            Who::AcmeMemberKey,
            Who::AcmeAdminSession,
        ] {
            let hidden = expect(&app, &w, who, "GET", &globex_path, None, 404).await;
            let missing = expect(&app, &w, who, "GET", "/users/987654", None, 404).await;
            assert_eq!(
                crate::support::sans_request_id(&hidden.raw),
                crate::support::sans_request_id(&missing.raw),
                "{who:?}: another org's user looks like no user"
            );
        }
        expect(
            &app,
            &w,
            Who::GlobexAdminKey,
            "GET",
            &globex_path,
            None,
            200,
        )
        .await;
        expect(&app, &w, Who::Anonymous, "GET", &acme_path, None, 401).await;
        expect(&app, &w, Who::MemberSession, "GET", &acme_path, None, 403).await;
    });
});

both_and_axum!(
    update_follows_roles_and_changes_all_or_nothing,
    |db, framework| {
        block_on(async {
            let fd = frontdesk(db);
            let app = crate::host_on!(framework, fd);
            let w = world(db, &app).await;
            let path = format!("/users/{}", w.acme_member.id);
            let body = || Some(json!({"first_name": "New"}));
            for (who, status) in [
                (Who::Anonymous, 401),
                (Who::StaffViewerKey, 403),
                (Who::AcmeMemberKey, 403),
                (Who::GlobexAdminKey, 404),
                (Who::AcmeAdminSessionNoCsrf, 403),
                (Who::MemberSession, 403),
            ] {
                expect(&app, &w, who, "PATCH", &path, body(), status).await;
            }
            let unchanged: String = users_t::table
                .find(w.acme_member.id)
                .select(users_t::first_name)
                .first(&mut *db.conn())
                .expect("user");
            assert_eq!(unchanged, "Test");
            for who in [
                Who::StaffOwnerKey,
                Who::StaffAdminKey,
                Who::AcmeOwnerKey,
                Who::AcmeAdminKey,
                Who::AcmeAdminSession,
            ] {
                let a = expect(
                    &app,
                    &w,
                    who,
                    "PATCH",
                    &path,
                    Some(json!({"last_name": format!("{who:?}")})),
                    200,
                )
                .await;
                assert_eq!(a.body["last_name"], format!("{who:?}"));
            }
            let a = expect(
                &app,
                &w,
                Who::AcmeAdminKey,
                "PATCH",
                &path,
                Some(json!({
                    "first_name": "Ada", "display_name": "ada", "email_verified": true,
                    "profile": {"plan": "pro"}, "local_login_enabled": false
                })),
                200,
            )
            .await;
            assert_eq!(a.body["name"], "ada");
            assert_eq!(a.body["profile"]["plan"], "pro");
            assert_eq!(a.body["local_login_enabled"], false);
            let a = expect(
                &app,
                &w,
                Who::AcmeAdminKey,
                "PATCH",
                &path,
                Some(json!({"display_name": null})),
                200,
            )
            .await;
            assert_eq!(a.body["display_name"], json!(null));
            // Bad input: a clear 400 and nothing changes, not even the valid fields.
            for (body, field) in [
                (
                    json!({"first_name": "x".repeat(101), "last_name": "Kept"}),
                    "first_name",
                ),
                (json!({"first_name": "Ok", "email": "new@x.test"}), "email"),
                (json!({"first_name": "\tAda"}), "first_name"),
                (
                    json!({"last_name": format!("{}  ", "y".repeat(99))}),
                    "last_name",
                ),
                (json!({"first_name": 3}), "body"),
                (json!(["first_name"]), "body"),
            ] {
                let a = expect(
                    &app,
                    &w,
                    Who::StaffOwnerKey,
                    "PATCH",
                    &path,
                    Some(body),
                    400,
                )
                .await;
                assert_eq!(a.body["errors"][0]["field"], field, "{}", a.raw);
            }
            let (first, local): (String, bool) = users_t::table
                .find(w.acme_member.id)
                .select((users_t::first_name, users_t::local_login_enabled))
                .first(&mut *db.conn())
                .expect("user");
            assert_eq!((first.as_str(), local), ("Ada", false));
            // An org admin cannot touch the org's owner; a member key cannot write at all.
            expect(
                &app,
                &w,
                Who::AcmeAdminKey,
                "PATCH",
                &format!("/users/{}", w.acme_owner.id),
                body(),
                403,
            )
            .await;
            expect(
                &app,
                &w,
                Who::AcmeOwnerKey,
                "PATCH",
                &format!("/users/{}", w.acme_owner.id),
                body(),
                200,
            )
            .await;
            // Staff admins do not act on staff owners.
            expect(
                &app,
                &w,
                Who::StaffAdminKey,
                "PATCH",
                &format!("/users/{}", w.staff_owner.id),
                body(),
                403,
            )
            .await;
            let events: i64 = audit_events::table
                .filter(audit_events::action.eq("user.update"))
                .count()
                .get_result(&mut *db.conn())
                .expect("count");
            assert!(events >= 8, "every change is audited ({events})");
        });
    }
);

both_and_axum!(suspend_restore_and_revoke_sessions, |db, framework| {
    block_on(async {
        let fd = frontdesk(db);
        let app = crate::host_on!(framework, fd);
        let w = world(db, &app).await;
        let id = w.acme_member.id;
        session_for(db, id);
        let suspend = format!("/users/{id}/suspend");
        for (who, status) in [
            (Who::Anonymous, 401),
            (Who::StaffViewerKey, 403),
            (Who::AcmeMemberKey, 403),
            (Who::GlobexAdminKey, 404),
            (Who::AcmeAdminSessionNoCsrf, 403),
            (Who::MemberSession, 403),
        ] {
            expect(&app, &w, who, "POST", &suspend, None, status).await;
        }
        assert_eq!(status_of(db, id).as_deref(), Some("active"));
        assert!(live_sessions(db, id) >= 2);
        let a = expect(
            &app,
            &w,
            Who::AcmeAdminKey,
            "POST",
            &suspend,
            Some(json!({"reason": "abuse"})),
            200,
        )
        .await;
        assert_eq!(a.body["status"], "suspended");
        assert_eq!(a.body["suspended_reason"], "abuse");
        assert_eq!(live_sessions(db, id), 0, "suspending ends every session");
        expect(
            &app,
            &w,
            Who::AcmeAdminKey,
            "POST",
            &suspend,
            Some(json!({"why": "x"})),
            400,
        )
        .await;
        expect(
            &app,
            &w,
            Who::StaffViewerKey,
            "POST",
            &format!("/users/{id}/restore"),
            None,
            403,
        )
        .await;
        let a = expect(
            &app,
            &w,
            Who::AcmeAdminSession,
            "POST",
            &format!("/users/{id}/restore"),
            None,
            200,
        )
        .await;
        assert_eq!(a.body["status"], "active");
        assert_eq!(status_of(db, id).as_deref(), Some("active"));
        // Suspending oneself is refused.
        let a = expect(
            &app,
            &w,
            Who::StaffOwnerSession,
            "POST",
            &format!("/users/{}/suspend", w.staff_owner.id),
            None,
            400,
        )
        .await;
        assert_eq!(a.body["errors"][0]["field"], "user");

        session_for(db, id);
        session_for(db, id);
        let revoke = format!("/users/{id}/sessions");
        for (who, status) in [
            (Who::Anonymous, 401),
            (Who::StaffViewerKey, 403),
            (Who::AcmeMemberKey, 403),
            (Who::GlobexAdminKey, 404),
            (Who::AcmeAdminSessionNoCsrf, 403),
        ] {
            expect(&app, &w, who, "DELETE", &revoke, None, status).await;
        }
        assert_eq!(live_sessions(db, id), 2);
        let a = expect(&app, &w, Who::AcmeOwnerKey, "DELETE", &revoke, None, 200).await;
        assert_eq!(
            a.body,
            json!({"message": "All sessions revoked", "sessions_revoked": 2})
        );
        assert_eq!(live_sessions(db, id), 0);
        let a = expect(&app, &w, Who::StaffAdminKey, "DELETE", &revoke, None, 200).await;
        assert_eq!(a.body["sessions_revoked"], 0);
    });
});

both_and_axum!(delete_follows_roles, |db, framework| {
    block_on(async {
        let fd = frontdesk(db);
        let app = crate::host_on!(framework, fd);
        let w = world(db, &app).await;
        let id = w.acme_member.id;
        let path = format!("/users/{id}");
        for (who, status) in [
            (Who::Anonymous, 401),
            (Who::StaffViewerKey, 403),
            (Who::AcmeMemberKey, 403),
            (Who::GlobexAdminKey, 404),
            (Who::AcmeAdminSessionNoCsrf, 403),
            (Who::MemberSession, 403),
        ] {
            expect(&app, &w, who, "DELETE", &path, None, status).await;
        }
        assert!(status_of(db, id).is_some(), "still there");
        expect(
            &app,
            &w,
            Who::AcmeAdminKey,
            "DELETE",
            &format!("/users/{}", w.acme_owner.id),
            None,
            403,
        )
        .await;
        expect(&app, &w, Who::AcmeAdminKey, "DELETE", &path, None, 204).await;
        assert!(status_of(db, id).is_none(), "deleted");
        expect(&app, &w, Who::AcmeAdminKey, "DELETE", &path, None, 404).await;
        expect(&app, &w, Who::AcmeAdminKey, "GET", &path, None, 404).await;
        // The last staff owner stays.
        let a = expect(
            &app,
            &w,
            Who::StaffOwnerKey,
            "DELETE",
            &format!("/users/{}", w.staff_owner.id),
            None,
            409,
        )
        .await;
        assert_eq!(a.problem_type(), "urn:frontdesk:problem:last-owner");
        assert!(status_of(db, w.staff_owner.id).is_some());
    });
});

both_and_axum!(
    oversized_bodies_and_profiles_are_refused,
    |db, framework| {
        block_on(async {
            let fd = frontdesk(db);
            let app = crate::host_on!(framework, fd);
            let w = world_data(db);
            let path = format!("/users/{}", w.acme_member.id);
            let fields: serde_json::Map<String, serde_json::Value> =
                (0..51).map(|i| (format!("f{i}"), json!("v"))).collect();
            let a = expect(
                &app,
                &w,
                Who::StaffOwnerKey,
                "PATCH",
                &path,
                Some(json!({"profile": fields})),
                400,
            )
            .await;
            assert_eq!(a.body["errors"][0]["field"], "profile");
            // Just past the limit, and far past it: the answer still arrives
            // (over HTTP through axum the rest of the body is read and
            // dropped, so the client still writing does not meet a broken
            // pipe or a reset).
            for size in [1024 * 1024 + 1, 6 * 1024 * 1024] {
                let big = "x".repeat(size);
                let a = expect(
                    &app,
                    &w,
                    Who::StaffOwnerKey,
                    "PATCH",
                    &path,
                    Some(json!({"profile": {"big": big}})),
                    400,
                )
                .await;
                assert_eq!(a.problem_type(), "urn:frontdesk:problem:payload-too-large");
            }
            let a = expect(&app, &w, Who::StaffOwnerKey, "GET", &path, None, 200).await;
            assert_eq!(a.body["profile"], json!({}), "nothing changed");
        });
    }
);

fn suspended_until_of(db: &crate::support::TestDb, id: i64) -> Option<chrono::NaiveDateTime> {
    users_t::table
        .find(id)
        .select(users_t::suspended_until)
        .first(&mut *db.conn())
        .expect("query")
}

both_and_axum!(suspend_with_an_end, |db, framework| {
    block_on(async {
        let fd = frontdesk(db);
        let app = crate::host_on!(framework, fd);
        let w = world(db, &app).await;
        let id = w.acme_member.id;
        let suspend = format!("/users/{id}/suspend");
        let past = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
        let future = chrono::Utc::now() + chrono::Duration::days(30);
        for (body, field) in [
            (json!({"reason": "x", "days": 0}), "days"),
            (json!({"reason": "x", "days": 3651}), "days"),
            (
                json!({"reason": "x", "days": 2, "suspended_until": future.to_rfc3339()}),
                "suspended_until",
            ),
            (
                json!({"reason": "x", "suspended_until": past}),
                "suspended_until",
            ),
            (
                json!({"reason": "x", "suspended_until": "next tuesday"}),
                "",
            ),
        ] {
            let a = expect(
                &app,
                &w,
                Who::AcmeAdminKey,
                "POST",
                &suspend,
                Some(body.clone()),
                400,
            )
            .await;
            if !field.is_empty() {
                assert!(a.raw.contains(field), "{body}: {}", a.raw);
            }
            assert_eq!(status_of(db, id).as_deref(), Some("active"), "{body}");
        }

        let a = expect(
            &app,
            &w,
            Who::AcmeAdminKey,
            "POST",
            &suspend,
            Some(json!({"reason": "abuse", "suspended_until": future.to_rfc3339()})),
            200,
        )
        .await;
        assert_eq!(a.body["status"], "suspended");
        let stored = suspended_until_of(db, id).expect("stored");
        assert_eq!(stored.and_utc().timestamp(), future.timestamp());
        let shown = a.body["suspended_until"].as_str().expect("suspended_until");
        let shown = chrono::DateTime::parse_from_rfc3339(shown).expect("rfc 3339");
        assert_eq!(shown.timestamp(), future.timestamp());
        // The detail and the list show it too.
        let d = expect(
            &app,
            &w,
            Who::AcmeAdminKey,
            "GET",
            &format!("/users/{id}"),
            None,
            200,
        )
        .await;
        assert_eq!(d.body["suspended_until"], a.body["suspended_until"]);
        let l = expect(
            &app,
            &w,
            Who::AcmeAdminKey,
            "GET",
            "/users?status=suspended",
            None,
            200,
        )
        .await;
        assert!(
            l.raw
                .contains(a.body["suspended_until"].as_str().unwrap_or("?")),
            "{}",
            l.raw
        );

        // Restored, the end goes; then `days` sets one from now.
        let r = expect(
            &app,
            &w,
            Who::AcmeAdminKey,
            "POST",
            &format!("/users/{id}/restore"),
            None,
            200,
        )
        .await;
        assert!(r.body["suspended_until"].is_null());
        assert_eq!(suspended_until_of(db, id), None);
        expect(
            &app,
            &w,
            Who::AcmeAdminKey,
            "POST",
            &suspend,
            Some(json!({"reason": "abuse", "days": 7})),
            200,
        )
        .await;
        let secs =
            (suspended_until_of(db, id).expect("end") - frontdesk_core::time::now()).num_seconds();
        assert!((7 * 86400 - 60..=7 * 86400).contains(&secs), "{secs}");
        let ev: String = audit_events::table
            .filter(audit_events::action.eq("user.suspend"))
            .order(audit_events::id.desc())
            .select(audit_events::details)
            .first(&mut *db.conn())
            .expect("event");
        assert!(ev.contains("\"until\""), "{ev}");
    });
});

both_and_axum!(
    the_sso_exemption_is_granted_and_withdrawn_through_the_api,
    |db, framework| {
        block_on(async {
            let fd = frontdesk(db);
            let app = crate::host_on!(framework, fd);
            let w = world(db, &app).await;
            let path = format!("/users/{}", w.acme_member.id);
            let exempt = |db: &crate::support::TestDb| {
                frontdesk_core::sso::is_exempt(&mut db.conn(), w.acme_member.id).expect("exempt")
            };
            let a = expect(&app, &w, Who::AcmeAdminKey, "GET", &path, None, 200).await;
            assert_eq!(a.body["sso_exempt"], false);
            // Another organization's admin does not see the user; a member may not.
            expect(
                &app,
                &w,
                Who::GlobexAdminKey,
                "PATCH",
                &path,
                Some(json!({"sso_exempt": true})),
                404,
            )
            .await;
            expect(
                &app,
                &w,
                Who::AcmeMemberKey,
                "PATCH",
                &path,
                Some(json!({"sso_exempt": true})),
                403,
            )
            .await;
            assert!(!exempt(db));
            let a = expect(
                &app,
                &w,
                Who::AcmeAdminKey,
                "PATCH",
                &path,
                Some(json!({"sso_exempt": true})),
                200,
            )
            .await;
            assert_eq!(a.body["sso_exempt"], true);
            assert!(exempt(db));
            let a = expect(
                &app,
                &w,
                Who::AcmeAdminKey,
                "PATCH",
                &path,
                Some(json!({"sso_exempt": false})),
                200,
            )
            .await;
            assert_eq!(a.body["sso_exempt"], false);
            assert!(!exempt(db));
            let audited: Vec<String> = frontdesk_core::schema::audit_events::table
                .filter(frontdesk_core::schema::audit_events::action.like("user.sso_exemption.%"))
                .order(frontdesk_core::schema::audit_events::id)
                .select(frontdesk_core::schema::audit_events::action)
                .load(&mut *db.conn())
                .expect("audit");
            assert_eq!(
                audited,
                ["user.sso_exemption.grant", "user.sso_exemption.revoke"]
            );
            // Not a boolean: refused, nothing changed.
            let a = expect(
                &app,
                &w,
                Who::AcmeAdminKey,
                "PATCH",
                &path,
                Some(json!({"sso_exempt": "yes"})),
                400,
            )
            .await;
            assert_eq!(a.problem_type(), "urn:frontdesk:problem:validation");
            assert!(!exempt(db));
        });
    }
);
