//! Groups of an organization through the API: CRUD, members (who must be in
//! the organization), a group's role given to its members, the audit trail,
//! and leaving the organization leaving its groups.

use diesel::prelude::*;
use frontdesk_core::schema::{audit_events, group_members, memberships};
use frontdesk_core::{organizations, Actor};
use serde_json::json;

use crate::api_v1_support::*;
use crate::both;
use crate::web_app::{block_on, frontdesk};

both!(groups_through_the_api, |db| {
    block_on(async {
        let fd = frontdesk(db);
        let app = crate::host_app!(fd);
        let w = world(db, &app).await;
        let base = "/organizations/acme/groups";
        let g = expect(
            &app,
            &w,
            Who::AcmeAdminKey,
            "POST",
            base,
            Some(json!({"name": "Support", "description": "Front line", "role": "admin"})),
            201,
        )
        .await;
        let id = g.body["id"].as_i64().expect("id");
        assert_eq!(g.body["role"], "admin");
        assert_eq!(g.body["members"], json!([]));
        // Only who may grant the role may put it on a group.
        expect(
            &app,
            &w,
            Who::AcmeMemberKey,
            "POST",
            base,
            Some(json!({"name": "X"})),
            403,
        )
        .await;
        expect(
            &app,
            &w,
            Who::AcmeAdminKey,
            "POST",
            base,
            Some(json!({"name": "Owners", "role": "owner"})),
            403,
        )
        .await;
        expect(
            &app,
            &w,
            Who::AcmeAdminKey,
            "POST",
            base,
            Some(json!({"name": "support"})),
            201,
        )
        .await;
        expect(
            &app,
            &w,
            Who::AcmeAdminKey,
            "POST",
            base,
            Some(json!({"name": "Support"})),
            409,
        )
        .await;

        // Joining gives the member the group's role.
        let member = w.acme_member.id;
        let path = format!("{base}/{id}/members/{member}");
        expect(&app, &w, Who::AcmeAdminKey, "PUT", &path, None, 204).await;
        expect(&app, &w, Who::AcmeAdminKey, "PUT", &path, None, 204).await;
        let role: String = memberships::table
            .find((member, w.acme.id))
            .select(memberships::role)
            .first(&mut *db.conn())
            .expect("role");
        assert_eq!(role, "admin");
        // A user of another organization cannot join; another organization sees nothing.
        expect(
            &app,
            &w,
            Who::AcmeAdminKey,
            "PUT",
            &format!("{base}/{id}/members/{}", w.globex_member.id),
            None,
            404,
        )
        .await;
        expect(
            &app,
            &w,
            Who::GlobexAdminKey,
            "GET",
            &format!("{base}/{id}"),
            None,
            404,
        )
        .await;
        expect(
            &app,
            &w,
            Who::GlobexAdminKey,
            "GET",
            &format!("/organizations/globex/groups/{id}"),
            None,
            404,
        )
        .await;

        let d = expect(
            &app,
            &w,
            Who::AcmeMemberKey,
            "GET",
            &format!("{base}/{id}"),
            None,
            200,
        )
        .await;
        assert_eq!(d.body["members"][0]["email"], "member@acme.test");
        let l = expect(&app, &w, Who::AcmeOwnerKey, "GET", base, None, 200).await;
        assert_eq!(l.body["groups"][0]["name"], "Support");
        assert_eq!(l.body["groups"][0]["member_count"], 1);

        let p = expect(
            &app,
            &w,
            Who::AcmeAdminKey,
            "PATCH",
            &format!("{base}/{id}"),
            Some(json!({"name": "Help desk", "role": null})),
            200,
        )
        .await;
        assert_eq!(p.body["name"], "Help desk");
        assert!(p.body["role"].is_null());
        expect(&app, &w, Who::AcmeAdminKey, "DELETE", &path, None, 204).await;
        let count = |db: &crate::support::TestDb| -> i64 {
            group_members::table
                .count()
                .get_result(&mut *db.conn())
                .expect("count")
        };
        assert_eq!(count(db), 0);

        // Leaving the organization leaves its groups.
        expect(&app, &w, Who::AcmeAdminKey, "PUT", &path, None, 204).await;
        organizations::remove_member(&mut db.conn(), &Actor::system(), w.acme.id, member)
            .expect("leave");
        assert_eq!(count(db), 0);

        expect(
            &app,
            &w,
            Who::AcmeAdminKey,
            "DELETE",
            &format!("{base}/{id}"),
            None,
            204,
        )
        .await;
        expect(
            &app,
            &w,
            Who::AcmeAdminKey,
            "GET",
            &format!("{base}/{id}"),
            None,
            404,
        )
        .await;
        let actions: Vec<String> = audit_events::table
            .filter(audit_events::target.eq(format!("group:{id}")))
            .order(audit_events::id.asc())
            .select(audit_events::action)
            .load(&mut *db.conn())
            .expect("audit");
        assert_eq!(
            actions,
            [
                "group.create",
                "group.member.add",
                "group.update",
                "group.member.remove",
                "group.member.add",
                "group.delete"
            ]
        );
    });
});

both!(
    the_organization_page_lists_creates_and_deletes_groups,
    |db| {
        block_on(async {
            let w = world_data(db);
            let app = crate::host_app!(frontdesk(db));
            let url = format!("/admin/organizations/{}", w.acme.id);
            let mut b = crate::web_app::Browser::new();
            b.login(&app, "admin@acme.test", crate::web_app::PASSWORD)
                .await;
            let page = b.get(&app, &url).await;
            assert!(page.body.contains("No groups."), "{}", page.body);
            let csrf = page.csrf();
            let made = b
                .post(
                    &app,
                    &format!("{url}/groups"),
                    &[
                        ("name", "Sales"),
                        ("description", "EMEA"),
                        ("role", ""),
                        ("csrf_token", &csrf),
                    ],
                )
                .await;
            assert!(made.status.is_redirection(), "{}", made.status);
            let page = b.get(&app, &url).await;
            assert!(
                page.body.contains("Sales") && page.body.contains("EMEA"),
                "{}",
                page.body
            );
            let id: i64 = frontdesk_core::schema::groups::table
                .select(frontdesk_core::schema::groups::id)
                .first(&mut *db.conn())
                .expect("group");
            let gone = b
                .post(
                    &app,
                    &format!("{url}/groups/{id}/delete"),
                    &[("csrf_token", &csrf)],
                )
                .await;
            assert!(gone.status.is_redirection());
            let left: i64 = frontdesk_core::schema::groups::table
                .count()
                .get_result(&mut *db.conn())
                .expect("count");
            assert_eq!(left, 0);
            // Globex's organization page is not acme's admin's to see.
            let other = b
                .get(&app, &format!("/admin/organizations/{}", w.globex.id))
                .await;
            assert_eq!(other.status.as_u16(), 404);
        });
    }
);

both!(the_user_page_shows_the_groups_of_each_organization, |db| {
    block_on(async {
        let w = world_data(db);
        let app = crate::host_app!(frontdesk(db));
        let sys = Actor::system();
        let fields = |name: &str| frontdesk_core::groups::GroupFields {
            name: Some(name.into()),
            ..Default::default()
        };
        let g =
            frontdesk_core::groups::create(&mut db.conn(), &sys, w.acme.id, fields("Night shift"))
                .expect("group");
        frontdesk_core::groups::create(&mut db.conn(), &sys, w.acme.id, fields("Day shift"))
            .expect("group");
        frontdesk_core::groups::add_member(&mut db.conn(), &sys, w.acme.id, g.id, w.acme_member.id)
            .expect("join");
        let mut b = crate::web_app::Browser::new();
        b.login(&app, "admin@acme.test", crate::web_app::PASSWORD)
            .await;
        let page = b
            .get(&app, &format!("/admin/users/{}", w.acme_member.id))
            .await;
        assert_eq!(page.status.as_u16(), 200);
        assert!(page.body.contains("Night shift"), "{}", page.body);
        assert!(!page.body.contains("Day shift"));
    });
});
