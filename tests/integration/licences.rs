//! Licences: the host's types, given to members directly or through groups;
//! effective licences with their sources; seat limits on every path (also
//! under concurrent requests), authorization, leaving the organization, the
//! audit trail, the API, the pages, the export and `CurrentUser`.

use diesel::prelude::*;
use frontdesk_core::groups::{self, GroupFields};
use frontdesk_core::licences::{self, Licence, Source};
use frontdesk_core::schema::{audit_events, group_licences, user_licences};
use frontdesk_core::{organizations, Actor, CoreError, OrgRole};
use serde_json::json;

use crate::api_v1_support::*;
use crate::both;
use crate::support::TestDb;
use crate::web_app::{block_on, builder};

fn declared() -> Vec<Licence> {
    vec![
        Licence::new("pro", "Pro plan").seats(2),
        Licence::new("team", "Team"),
    ]
}

fn declare(db: &TestDb) {
    licences::sync(&mut db.conn(), &declared()).expect("sync");
}

/// A group of `org` made by the system (shared with `groups_in_lists`).
pub(crate) fn group(db: &TestDb, org: i64, name: &str) -> i64 {
    groups::create(
        &mut db.conn(),
        &Actor::system(),
        org,
        GroupFields {
            name: Some(name.into()),
            ..Default::default()
        },
    )
    .expect("group")
    .id
}

fn member(db: &TestDb, org: i64, email: &str) -> i64 {
    user(db, email, None, Some((org, OrgRole::Member)), false).id
}

fn keys_and_sources(db: &TestDb, org: i64, user_id: i64) -> Vec<(String, Vec<Source>)> {
    licences::effective(&mut db.conn(), org, user_id)
        .expect("effective")
        .into_iter()
        .map(|e| (e.key, e.sources))
        .collect()
}

fn seat_limit(e: CoreError) -> (String, i64, i64, i64) {
    match e {
        CoreError::SeatLimit {
            licence,
            used,
            limit,
            needed,
            ..
        } => (licence, used, limit, needed),
        other => panic!("expected a seat limit, got {other:?}"),
    }
}

both!(direct_and_group_sources_make_the_effective_set, |db| {
    declare(db);
    let w = world_data(db);
    let sys = Actor::system();
    let (org, u) = (w.acme.id, w.acme_member.id);
    let g = group(db, org, "Support");
    groups::add_member(&mut db.conn(), &sys, org, g, u).expect("join");
    assert!(licences::assign_user(&mut db.conn(), &sys, org, u, "pro").expect("direct"));
    assert!(!licences::assign_user(&mut db.conn(), &sys, org, u, "pro").expect("again"));
    assert!(licences::assign_group(&mut db.conn(), &sys, org, g, "pro").expect("group"));
    assert!(licences::assign_group(&mut db.conn(), &sys, org, g, "team").expect("group"));
    let via = Source::Group {
        group_id: g,
        group_name: "Support".into(),
    };
    assert_eq!(
        keys_and_sources(db, org, u),
        vec![
            ("pro".into(), vec![Source::Direct, via.clone()]),
            ("team".into(), vec![via.clone()]),
        ]
    );
    // One user holding a licence twice takes one seat.
    let seats = licences::seats_unchecked(&mut db.conn(), org).expect("seats");
    assert_eq!(
        seats
            .iter()
            .map(|s| (s.licence.key.as_str(), s.used))
            .collect::<Vec<_>>(),
        vec![("pro", 1), ("team", 1)]
    );
    // Removing the direct one leaves the group's; leaving the group leaves nothing.
    assert!(licences::unassign_user(&mut db.conn(), &sys, org, u, "pro").expect("off"));
    assert_eq!(keys_and_sources(db, org, u)[0].1, vec![via]);
    groups::remove_member(&mut db.conn(), &sys, org, g, u).expect("leave group");
    assert!(keys_and_sources(db, org, u).is_empty());
    // Another organization's licences are its own.
    assert!(keys_and_sources(db, w.globex.id, u).is_empty());
    // Only declared types can be given; a user outside the organization cannot.
    assert!(matches!(
        licences::assign_user(&mut db.conn(), &sys, org, u, "gold"),
        Err(CoreError::NotFound("licence"))
    ));
    assert!(matches!(
        licences::assign_user(&mut db.conn(), &sys, org, w.globex_member.id, "pro"),
        Err(CoreError::NotFound("user"))
    ));
    // Every change is audited.
    let actions: Vec<String> = audit_events::table
        .filter(audit_events::action.like("%licence%"))
        .order(audit_events::id.asc())
        .select(audit_events::action)
        .load(&mut *db.conn())
        .expect("audit");
    assert_eq!(
        actions,
        [
            "licence.assign",
            "group.licence.add",
            "group.licence.add",
            "licence.unassign"
        ]
    );
});

both!(seat_limits_are_refused_on_every_path, |db| {
    declare(db);
    let w = world_data(db);
    let sys = Actor::system();
    let org = w.acme.id;
    let (a, b, c) = (
        member(db, org, "a@acme.test"),
        member(db, org, "b@acme.test"),
        member(db, org, "c@acme.test"),
    );
    licences::assign_user(&mut db.conn(), &sys, org, a, "pro").expect("a");
    licences::assign_user(&mut db.conn(), &sys, org, b, "pro").expect("b");
    // Direct: the third user is refused, naming the licence and its seats.
    let e = licences::assign_user(&mut db.conn(), &sys, org, c, "pro").expect_err("full");
    assert!(e.to_string().contains("Pro plan"), "{e}");
    assert!(e.to_string().contains("2 of 2 seats"), "{e}");
    assert_eq!(seat_limit(e), ("pro".into(), 2, 2, 1));
    // A licence without a limit is not counted against anything.
    licences::assign_user(&mut db.conn(), &sys, org, c, "team").expect("team");
    // Another organization has its own seats.
    licences::assign_user(&mut db.conn(), &sys, w.globex.id, w.globex_member.id, "pro")
        .expect("globex");

    // Group assignment: members without the licence need seats.
    let g = group(db, org, "Night");
    groups::add_member(&mut db.conn(), &sys, org, g, a).expect("a joins");
    groups::add_member(&mut db.conn(), &sys, org, g, c).expect("c joins");
    let e = licences::assign_group(&mut db.conn(), &sys, org, g, "pro").expect_err("full");
    assert_eq!(seat_limit(e), ("pro".into(), 2, 2, 1));
    groups::remove_member(&mut db.conn(), &sys, org, g, c).expect("c leaves");
    // Only a, who holds it already: no new seat.
    licences::assign_group(&mut db.conn(), &sys, org, g, "pro").expect("fits");

    // Group membership: joining a group that carries a full licence.
    let e = groups::add_member(&mut db.conn(), &sys, org, g, c).expect_err("full");
    assert_eq!(seat_limit(e), ("pro".into(), 2, 2, 1));
    // b holds it directly already: joining takes no seat.
    groups::add_member(&mut db.conn(), &sys, org, g, b).expect("b joins");
    // A directory's replace of the members goes the same way, and changes nothing.
    let e = groups::set_members(&mut db.conn(), &sys, org, g, &[a, b, c]).expect_err("scim");
    assert_eq!(seat_limit(e), ("pro".into(), 2, 2, 1));
    assert_eq!(
        groups::members(&mut db.conn(), g)
            .expect("members")
            .into_iter()
            .map(|m| m.user_id)
            .collect::<Vec<_>>()
            .len(),
        2
    );
    assert_eq!(licences::used(&mut db.conn(), org, "pro").expect("used"), 2);
});

both!(concurrent_assignments_never_pass_the_limit, |db| {
    // Four seats; sixteen members asked for at once, half directly, half by
    // joining a group that carries the licence.
    licences::sync(&mut db.conn(), &[Licence::new("pro", "Pro plan").seats(4)]).expect("sync");
    let w = world_data(db);
    let sys = Actor::system();
    let org = w.acme.id;
    let g = group(db, org, "Everyone");
    licences::assign_group(&mut db.conn(), &sys, org, g, "pro").expect("group");
    let users: Vec<i64> = (0..16)
        .map(|i| member(db, org, &format!("u{i}@acme.test")))
        .collect();
    let pool = frontdesk_core::db::connect(&db.url, 16).expect("pool");
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(users.len()));
    let handles: Vec<_> = users
        .iter()
        .enumerate()
        .map(|(i, &u)| {
            let pool = pool.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let mut conn = pool.get().expect("connection");
                barrier.wait();
                let sys = Actor::system();
                if i % 2 == 0 {
                    licences::assign_user(&mut conn, &sys, org, u, "pro").map(|_| ())
                } else {
                    groups::add_member(&mut conn, &sys, org, g, u).map(|_| ())
                }
            })
        })
        .collect();
    let mut ok = 0;
    for h in handles {
        match h.join().expect("thread") {
            Ok(()) => ok += 1,
            Err(CoreError::SeatLimit { .. }) => {}
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    assert_eq!(ok, 4, "exactly the seats were given");
    // Counted from the rows themselves.
    let direct: Vec<i64> = user_licences::table
        .filter(user_licences::organization_id.eq(org))
        .select(user_licences::user_id)
        .load(&mut *db.conn())
        .expect("direct");
    let joined: Vec<i64> = frontdesk_core::schema::group_members::table
        .filter(frontdesk_core::schema::group_members::group_id.eq(g))
        .select(frontdesk_core::schema::group_members::user_id)
        .load(&mut *db.conn())
        .expect("joined");
    let holders: std::collections::BTreeSet<i64> = direct.into_iter().chain(joined).collect();
    assert_eq!(holders.len(), 4);
    assert_eq!(licences::used(&mut db.conn(), org, "pro").expect("used"), 4);
});

both!(only_the_organizations_admins_and_staff_may_assign, |db| {
    declare(db);
    let w = world_data(db);
    let org = w.acme.id;
    let u = w.acme_member.id;
    let g = group(db, org, "Support");
    let as_org = |id: i64, role: OrgRole| Actor::user(id, None, vec![(org, role)]);
    let member_actor = as_org(w.acme_member.id, OrgRole::Member);
    assert!(matches!(
        licences::assign_user(&mut db.conn(), &member_actor, org, u, "team"),
        Err(CoreError::Forbidden)
    ));
    assert!(matches!(
        licences::assign_group(&mut db.conn(), &member_actor, org, g, "team"),
        Err(CoreError::Forbidden)
    ));
    // A member's read-only API key may look.
    let member_key = Actor {
        members_may_read: true,
        ..member_actor.clone()
    };
    licences::seats(&mut db.conn(), &member_key, org).expect("view");
    // An admin of another organization may not.
    let globex_admin = Actor::user(999, None, vec![(w.globex.id, OrgRole::Admin)]);
    assert!(matches!(
        licences::assign_user(&mut db.conn(), &globex_admin, org, u, "team"),
        Err(CoreError::Forbidden)
    ));
    assert!(matches!(
        licences::seats(&mut db.conn(), &globex_admin, org),
        Err(CoreError::Forbidden)
    ));
    let admin = as_org(w.acme_admin.id, OrgRole::Admin);
    licences::assign_user(&mut db.conn(), &admin, org, u, "team").expect("admin");
    licences::assign_group(&mut db.conn(), &admin, org, g, "team").expect("admin");
    let rows: i64 = user_licences::table
        .count()
        .get_result(&mut *db.conn())
        .expect("count");
    assert_eq!(rows, 1);
});

both!(leaving_the_organization_removes_direct_licences, |db| {
    declare(db);
    let w = world_data(db);
    let sys = Actor::system();
    let org = w.acme.id;
    let u = w.acme_member.id;
    let g = group(db, org, "Support");
    licences::assign_group(&mut db.conn(), &sys, org, g, "team").expect("group");
    groups::add_member(&mut db.conn(), &sys, org, g, u).expect("join");
    licences::assign_user(&mut db.conn(), &sys, org, u, "pro").expect("direct");
    organizations::remove_member(&mut db.conn(), &sys, org, u).expect("leave");
    let direct: i64 = user_licences::table
        .count()
        .get_result(&mut *db.conn())
        .expect("count");
    assert_eq!(direct, 0);
    assert!(keys_and_sources(db, org, u).is_empty());
    // The group keeps its licence; the seat is free again.
    let carried: i64 = group_licences::table
        .count()
        .get_result(&mut *db.conn())
        .expect("count");
    assert_eq!(carried, 1);
    assert_eq!(licences::used(&mut db.conn(), org, "pro").expect("used"), 0);
    // Coming back brings nothing back.
    organizations::add_member(&mut db.conn(), &sys, org, u, OrgRole::Member).expect("back");
    assert!(keys_and_sources(db, org, u).is_empty());
});

fn licensed(db: &TestDb) -> frontdesk::Frontdesk {
    let mut b = builder(db);
    for l in declared() {
        b = b.licence(l);
    }
    b.build().expect("frontdesk")
}

both!(licences_through_the_api, |db| {
    block_on(async {
        let fd = licensed(db);
        let app = crate::host_app!(fd);
        let w = world(db, &app).await;
        let m = w.acme_member.id;
        let a = w.acme_admin.id;
        let o = w.acme_owner.id;
        let user_path = |u: i64, key: &str| format!("/organizations/acme/users/{u}/licences/{key}");
        expect(
            &app,
            &w,
            Who::AcmeAdminKey,
            "PUT",
            &user_path(m, "pro"),
            None,
            204,
        )
        .await;
        expect(
            &app,
            &w,
            Who::AcmeAdminSession,
            "PUT",
            &user_path(a, "pro"),
            None,
            204,
        )
        .await;
        // The third seat is refused with the limit named.
        let full = expect(
            &app,
            &w,
            Who::AcmeAdminKey,
            "PUT",
            &user_path(o, "pro"),
            None,
            409,
        )
        .await;
        assert_eq!(full.problem_type(), "urn:frontdesk:problem:seat-limit");
        let detail = full.body["detail"].as_str().unwrap_or("");
        assert!(
            detail.contains("Pro plan") && detail.contains("2 of 2 seats"),
            "{detail}"
        );
        // Who may not: a member's key, another organization's admin; unknown keys.
        expect(
            &app,
            &w,
            Who::AcmeMemberKey,
            "PUT",
            &user_path(m, "team"),
            None,
            403,
        )
        .await;
        expect(
            &app,
            &w,
            Who::GlobexAdminKey,
            "PUT",
            &user_path(m, "team"),
            None,
            404,
        )
        .await;
        expect(
            &app,
            &w,
            Who::AcmeAdminKey,
            "PUT",
            &user_path(m, "gold"),
            None,
            404,
        )
        .await;
        expect(
            &app,
            &w,
            Who::AcmeAdminKey,
            "PUT",
            &user_path(m, "NOT%20A%20KEY"),
            None,
            404,
        )
        .await;
        expect(
            &app,
            &w,
            Who::AcmeAdminKey,
            "PUT",
            &user_path(w.globex_member.id, "team"),
            None,
            404,
        )
        .await;

        // A group carrying a licence.
        let g = expect(
            &app,
            &w,
            Who::AcmeAdminKey,
            "POST",
            "/organizations/acme/groups",
            Some(json!({"name": "Support"})),
            201,
        )
        .await
        .body["id"]
            .as_i64()
            .expect("group");
        let group_path = format!("/organizations/acme/groups/{g}/licences/team");
        expect(&app, &w, Who::AcmeAdminKey, "PUT", &group_path, None, 204).await;
        expect(
            &app,
            &w,
            Who::AcmeMemberKey,
            "DELETE",
            &group_path,
            None,
            403,
        )
        .await;
        expect(
            &app,
            &w,
            Who::AcmeAdminKey,
            "PUT",
            &format!("/organizations/acme/groups/{g}/members/{m}"),
            None,
            204,
        )
        .await;
        let d = expect(
            &app,
            &w,
            Who::AcmeMemberKey,
            "GET",
            &format!("/organizations/acme/groups/{g}"),
            None,
            200,
        )
        .await;
        assert_eq!(d.body["licences"], json!([{"key": "team", "name": "Team"}]));
        // Joining a group that carries a full licence is refused.
        expect(
            &app,
            &w,
            Who::AcmeAdminKey,
            "PUT",
            &format!("/organizations/acme/groups/{g}/licences/pro"),
            None,
            204,
        )
        .await;
        let full = expect(
            &app,
            &w,
            Who::AcmeAdminKey,
            "PUT",
            &format!("/organizations/acme/groups/{g}/members/{o}"),
            None,
            409,
        )
        .await;
        assert_eq!(full.problem_type(), "urn:frontdesk:problem:seat-limit");

        // The organization's licences: seats used and limits, groups carrying each.
        let l = expect(
            &app,
            &w,
            Who::AcmeMemberKey,
            "GET",
            "/organizations/acme/licences",
            None,
            200,
        )
        .await;
        assert_eq!(
            l.body,
            json!({"licences": [
                {"key": "pro", "name": "Pro plan", "seats": 2, "used": 2,
                 "groups": [{"id": g, "name": "Support"}]},
                {"key": "team", "name": "Team", "seats": null, "used": 1,
                 "groups": [{"id": g, "name": "Support"}]},
            ]})
        );
        expect(
            &app,
            &w,
            Who::GlobexAdminKey,
            "GET",
            "/organizations/acme/licences",
            None,
            404,
        )
        .await;

        // The user's detail: every licence with its sources.
        let u = expect(
            &app,
            &w,
            Who::AcmeAdminKey,
            "GET",
            &format!("/organizations/acme/users/{m}"),
            None,
            200,
        )
        .await;
        assert_eq!(
            u.body["licences"],
            json!([
                {"organization_id": w.acme.id, "key": "pro", "name": "Pro plan", "sources": [
                    {"source": "direct", "group_id": null, "group_name": null},
                    {"source": "group", "group_id": g, "group_name": "Support"},
                ]},
                {"organization_id": w.acme.id, "key": "team", "name": "Team", "sources": [
                    {"source": "group", "group_id": g, "group_name": "Support"},
                ]},
            ])
        );
        let u = expect(
            &app,
            &w,
            Who::StaffViewerKey,
            "GET",
            &format!("/users/{m}"),
            None,
            200,
        )
        .await;
        assert_eq!(u.body["licences"].as_array().map(Vec::len), Some(2));
        // The organization's users list names each user's licence keys.
        let list = expect(
            &app,
            &w,
            Who::AcmeAdminKey,
            "GET",
            "/organizations/acme/users?search=member",
            None,
            200,
        )
        .await;
        assert_eq!(list.body["users"][0]["licences"], json!(["pro", "team"]));

        // Removing the direct one leaves the group's.
        expect(
            &app,
            &w,
            Who::AcmeAdminKey,
            "DELETE",
            &user_path(m, "pro"),
            None,
            204,
        )
        .await;
        expect(
            &app,
            &w,
            Who::AcmeAdminKey,
            "DELETE",
            &group_path,
            None,
            204,
        )
        .await;
        let u = expect(
            &app,
            &w,
            Who::AcmeAdminKey,
            "GET",
            &format!("/organizations/acme/users/{m}"),
            None,
            200,
        )
        .await;
        assert_eq!(
            u.body["licences"][0]["sources"],
            json!([{"source": "group", "group_id": g, "group_name": "Support"}])
        );
        assert_eq!(u.body["licences"].as_array().map(Vec::len), Some(1));
    });
});

async fn pro_feature(
    me: frontdesk::CurrentUser,
    org: actix_web::web::Path<i64>,
) -> actix_web::HttpResponse {
    let org = org.into_inner();
    match me.has_licence(org, "pro").await {
        Ok(true) => actix_web::HttpResponse::Ok().body("pro"),
        Ok(false) => actix_web::HttpResponse::PaymentRequired().body("no pro"),
        Err(e) => actix_web::ResponseError::error_response(&e),
    }
}

both!(
    current_user_tells_the_host_which_licences_its_user_holds,
    |db| {
        block_on(async {
            let fd = licensed(db);
            let app = actix_web::test::init_service(
                actix_web::App::new()
                    .configure(fd.configure())
                    .route("/pro/{org}", actix_web::web::get().to(pro_feature)),
            )
            .await;
            let w = world_data(db);
            let mut b = crate::web_app::Browser::new();
            b.login(&app, "member@acme.test", crate::web_app::PASSWORD)
                .await;
            let url = format!("/pro/{}", w.acme.id);
            assert_eq!(b.get(&app, &url).await.status.as_u16(), 402);
            let sys = Actor::system();
            let g = group(db, w.acme.id, "Pros");
            licences::assign_group(&mut db.conn(), &sys, w.acme.id, g, "pro").expect("group");
            groups::add_member(&mut db.conn(), &sys, w.acme.id, g, w.acme_member.id).expect("join");
            let page = b.get(&app, &url).await;
            assert_eq!(page.status.as_u16(), 200);
            assert_eq!(page.body, "pro");
            // Only in that organization.
            assert_eq!(
                b.get(&app, &format!("/pro/{}", w.globex.id))
                    .await
                    .status
                    .as_u16(),
                402
            );
        });
    }
);

both!(the_pages_show_and_change_licences, |db| {
    block_on(async {
        let w = world_data(db);
        let app = crate::host_app!(licensed(db));
        let sys = Actor::system();
        let g = group(db, w.acme.id, "Night shift");
        groups::add_member(&mut db.conn(), &sys, w.acme.id, g, w.acme_member.id).expect("join");
        let mut b = crate::web_app::Browser::new();
        b.login(&app, "admin@acme.test", crate::web_app::PASSWORD)
            .await;
        let org_url = format!("/admin/organizations/{}", w.acme.id);
        let page = b.get(&app, &org_url).await;
        assert!(page.body.contains("<h2>Licences</h2>"), "{}", page.body);
        assert!(page.body.contains("0 of 2"), "{}", page.body);
        let csrf = page.csrf();
        // Assign a licence to a group from the organization page.
        let gs = g.to_string();
        let done = b
            .post(
                &app,
                &format!("{org_url}/licences"),
                &[
                    ("group", gs.as_str()),
                    ("licence", "pro"),
                    ("action", "assign"),
                    ("csrf_token", &csrf),
                ],
            )
            .await;
        assert!(done.status.is_redirection(), "{}", done.status);
        let page = b.get(&app, &org_url).await;
        assert!(page.body.contains("1 of 2"), "{}", page.body);
        // The user page: the licence via the group; assign another directly.
        let user_url = format!("/admin/users/{}", w.acme_member.id);
        let page = b.get(&app, &user_url).await;
        assert!(page.body.contains("via group Night shift"), "{}", page.body);
        let acme = w.acme.id.to_string();
        let licence_url = format!("{user_url}/licences");
        let form = |key: &'static str, action: &'static str| {
            [
                ("organization", acme.clone()),
                ("licence", key.to_owned()),
                ("action", action.to_owned()),
                ("csrf_token", csrf.clone()),
            ]
        };
        let pairs = |f: &[(&'static str, String); 4]| -> Vec<(&'static str, String)> { f.to_vec() };
        let f = pairs(&form("team", "assign"));
        let f: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert!(b.post(&app, &licence_url, &f).await.status.is_redirection());
        let page = b.get(&app, &user_url).await;
        assert!(
            page.body.contains("Team</span> <small>(direct)"),
            "{}",
            page.body
        );
        assert_eq!(
            keys_and_sources(db, w.acme.id, w.acme_member.id)
                .into_iter()
                .map(|(k, _)| k)
                .collect::<Vec<_>>(),
            ["pro", "team"]
        );
        let f = pairs(&form("team", "remove"));
        let f: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert!(b.post(&app, &licence_url, &f).await.status.is_redirection());
        assert_eq!(keys_and_sources(db, w.acme.id, w.acme_member.id).len(), 1);
        // The seat limit on the page: the third holder is refused, nothing changes.
        licences::assign_user(&mut db.conn(), &sys, w.acme.id, w.acme_admin.id, "pro")
            .expect("2nd");
        let owner_url = format!("/admin/users/{}/licences", w.acme_owner.id);
        let refused = b
            .post(
                &app,
                &owner_url,
                &[
                    ("organization", acme.as_str()),
                    ("licence", "pro"),
                    ("action", "assign"),
                    ("csrf_token", &csrf),
                ],
            )
            .await;
        let shown = b.get(&app, refused.location()).await;
        assert!(shown.body.contains("no seat left"), "{}", shown.body);
        assert_eq!(
            licences::used(&mut db.conn(), w.acme.id, "pro").expect("used"),
            2
        );
        // A member of another organization is not acme's admin's to change.
        let globex = w.globex.id.to_string();
        b.post(
            &app,
            &format!("/admin/users/{}/licences", w.globex_member.id),
            &[
                ("organization", globex.as_str()),
                ("licence", "team"),
                ("action", "assign"),
                ("csrf_token", &csrf),
            ],
        )
        .await;
        let rows: i64 = user_licences::table
            .filter(user_licences::organization_id.eq(w.globex.id))
            .count()
            .get_result(&mut *db.conn())
            .expect("count");
        assert_eq!(rows, 0);
    });
});

both!(without_declared_licences_the_pages_show_none, |db| {
    block_on(async {
        let w = world_data(db);
        let app = crate::host_app!(crate::web_app::frontdesk(db));
        let mut b = crate::web_app::Browser::new();
        b.login(&app, "admin@acme.test", crate::web_app::PASSWORD)
            .await;
        let page = b
            .get(&app, &format!("/admin/organizations/{}", w.acme.id))
            .await;
        assert_eq!(page.status.as_u16(), 200);
        assert!(!page.body.contains("Licences"), "{}", page.body);
        let page = b
            .get(&app, &format!("/admin/users/{}", w.acme_member.id))
            .await;
        assert!(!page.body.contains("Licences"), "{}", page.body);
        // Nor does the API document offer a licence filter that every value
        // of would be refused.
        let doc = expect(
            &app,
            &w,
            Who::StaffViewerKey,
            "GET",
            "/openapi.json",
            None,
            200,
        )
        .await;
        for path in ["/users", "/organizations/{slug}/users"] {
            let params = doc.body["paths"][path]["get"]["parameters"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            assert!(
                params.iter().all(|p| p["name"] != "licence"),
                "{path}: {params:?}"
            );
        }
    });
});

fn export_licences(db: &TestDb, actor: &Actor) -> Vec<(String, String)> {
    use frontdesk_core::exports::{self, ExportField, ExportRequest};
    let fields = ExportField::parse_list("email,licences", &[]).expect("fields");
    let mut out = Vec::new();
    exports::export(
        &mut db.conn(),
        actor,
        &ExportRequest::new(fields, frontdesk_core::users::query::UserQuery::default()),
        &mut out,
        &mut |_| {},
    )
    .expect("export");
    let text = String::from_utf8(out).expect("utf-8");
    let mut rows: Vec<(String, String)> = text
        .lines()
        .map(|l| {
            let (e, k) = l.split_once(',').expect("two cells");
            (e.to_owned(), k.to_owned())
        })
        .collect();
    rows.sort();
    rows
}

both!(the_export_writes_the_effective_licences, |db| {
    declare(db);
    let w = world_data(db);
    let sys = Actor::system();
    let m = w.acme_member.id;
    let g = group(db, w.acme.id, "Support");
    licences::assign_group(&mut db.conn(), &sys, w.acme.id, g, "team").expect("group");
    groups::add_member(&mut db.conn(), &sys, w.acme.id, g, m).expect("join");
    licences::assign_user(&mut db.conn(), &sys, w.acme.id, m, "team").expect("twice");
    organizations::add_member(&mut db.conn(), &sys, w.globex.id, m, OrgRole::Member)
        .expect("globex");
    licences::assign_user(&mut db.conn(), &sys, w.globex.id, m, "pro").expect("globex pro");
    let all = export_licences(db, &sys);
    assert!(
        all.contains(&("email".into(), "licences".into())),
        "{all:?}"
    );
    assert!(
        all.contains(&("member@acme.test".into(), "pro|team".into())),
        "{all:?}"
    );
    assert!(all.contains(&("admin@acme.test".into(), String::new())));
    // An organization admin's export holds their organization's licences only.
    let acme_admin = Actor::user(w.acme_admin.id, None, vec![(w.acme.id, OrgRole::Admin)]);
    let mine = export_licences(db, &acme_admin);
    assert!(
        mine.contains(&("member@acme.test".into(), "team".into())),
        "{mine:?}"
    );
});

both!(a_directory_cannot_pass_the_seat_limit, |db| {
    block_on(async {
        let w = world_data(db);
        let app = crate::host_app!(licensed(db));
        let sys = Actor::system();
        let org = w.acme.id;
        let g = group(db, org, "Engineering");
        licences::assign_group(&mut db.conn(), &sys, org, g, "pro").expect("group");
        licences::assign_user(&mut db.conn(), &sys, org, w.acme_owner.id, "pro").expect("1");
        licences::assign_user(&mut db.conn(), &sys, org, w.acme_admin.id, "pro").expect("2");
        let (_, token) = crate::scim::token_for(db, org);
        let m = w.acme_member.id;
        let p = crate::scim::scim(
            &app,
            &token,
            "PATCH",
            &format!("/Groups/{g}"),
            Some(json!({
                "schemas": [crate::scim::PATCH],
                "Operations": [{"op": "Add", "path": "members", "value": [{"value": m.to_string()}]}],
            })),
        )
        .await;
        assert_eq!(p.status, 409, "{}", p.body);
        let detail = p.body["detail"].as_str().unwrap_or("");
        assert!(
            detail.contains("Pro plan") && detail.contains("2 of 2"),
            "{detail}"
        );
        assert!(groups::members(&mut db.conn(), g)
            .expect("members")
            .is_empty());
        // A holder of the licence may join: no new seat.
        let p = crate::scim::scim(
            &app,
            &token,
            "PATCH",
            &format!("/Groups/{g}"),
            Some(json!({
                "schemas": [crate::scim::PATCH],
                "Operations": [{"op": "Add", "path": "members", "value": [{"value": w.acme_admin.id.to_string()}]}],
            })),
        )
        .await;
        assert_eq!(p.status, 200, "{}", p.body);
    });
});

both!(
    the_users_list_of_one_organization_has_a_licences_column,
    |db| {
        block_on(async {
            let w = world_data(db);
            let app = crate::host_app!(licensed(db));
            let sys = Actor::system();
            let g = group(db, w.acme.id, "Support");
            licences::assign_group(&mut db.conn(), &sys, w.acme.id, g, "pro").expect("group");
            groups::add_member(&mut db.conn(), &sys, w.acme.id, g, w.acme_member.id).expect("join");
            licences::assign_user(&mut db.conn(), &sys, w.acme.id, w.acme_member.id, "pro")
                .expect("direct");
            let mut b = crate::web_app::Browser::new();
            b.login(&app, "admin@acme.test", crate::web_app::PASSWORD)
                .await;
            let page = b
                .get(&app, &format!("/admin/users?org={}", w.acme.id))
                .await;
            assert_eq!(page.status.as_u16(), 200);
            assert!(
                page.body.contains(r#"<th scope="col">Licences</th>"#),
                "{}",
                page.body
            );
            assert!(
                page.body.contains(
                    r#"<span class="fda-tag">Pro plan</span> <small>(direct, via Support)</small>"#
                ),
                "{}",
                page.body
            );
            // Without an organization filter there is no such column.
            let page = b.get(&app, "/admin/users").await;
            assert!(!page.body.contains(r#"<th scope="col">Licences</th>"#));
        });
    }
);

both!(the_users_list_and_the_export_filter_by_licence, |db| {
    block_on(async {
        let fd = licensed(db);
        let app = crate::host_app!(fd);
        let w = world(db, &app).await;
        let sys = Actor::system();
        let g = group(db, w.acme.id, "Support");
        licences::assign_group(&mut db.conn(), &sys, w.acme.id, g, "team").expect("group");
        groups::add_member(&mut db.conn(), &sys, w.acme.id, g, w.acme_member.id).expect("join");
        licences::assign_user(&mut db.conn(), &sys, w.acme.id, w.acme_admin.id, "team")
            .expect("direct");
        // The globex member holds it in globex only.
        licences::assign_user(
            &mut db.conn(),
            &sys,
            w.globex.id,
            w.globex_member.id,
            "team",
        )
        .expect("globex");
        let sorted = |a: &Answer| {
            let mut e = emails(a);
            e.sort();
            e
        };
        let all = expect(
            &app,
            &w,
            Who::StaffViewerKey,
            "GET",
            "/users?licence=team",
            None,
            200,
        )
        .await;
        assert_eq!(
            sorted(&all),
            ["admin@acme.test", "member@acme.test", "member@globex.test"]
        );
        let acme = expect(
            &app,
            &w,
            Who::StaffViewerKey,
            "GET",
            "/users?licence=team&organization=acme",
            None,
            200,
        )
        .await;
        assert_eq!(sorted(&acme), ["admin@acme.test", "member@acme.test"]);
        assert_eq!(acme.body["pagination"]["total"], 2);
        let none = expect(
            &app,
            &w,
            Who::StaffViewerKey,
            "GET",
            "/users?licence=pro",
            None,
            200,
        )
        .await;
        assert!(emails(&none).is_empty());
        let bad = expect(
            &app,
            &w,
            Who::StaffViewerKey,
            "GET",
            "/users?licence=gold",
            None,
            400,
        )
        .await;
        assert_eq!(bad.body["errors"][0]["field"], "licence");
        // The organization-scoped list takes it too.
        let scoped = expect(
            &app,
            &w,
            Who::AcmeAdminKey,
            "GET",
            "/organizations/acme/users?licence=team",
            None,
            200,
        )
        .await;
        assert_eq!(sorted(&scoped), ["admin@acme.test", "member@acme.test"]);
        let bad = expect(
            &app,
            &w,
            Who::AcmeAdminKey,
            "GET",
            "/organizations/acme/users?licence=gold",
            None,
            400,
        )
        .await;
        assert_eq!(bad.body["errors"][0]["field"], "licence");
        // An empty value is none of the keys either, on both lists.
        for path in ["/organizations/acme/users?licence=", "/users?licence="] {
            let bad = expect(&app, &w, Who::AcmeAdminKey, "GET", path, None, 400).await;
            assert_eq!(bad.body["errors"][0]["field"], "licence", "{path}");
        }
        // An organization admin's list counts only their organization's licences.
        let globex_owner_view = expect(
            &app,
            &w,
            Who::GlobexAdminKey,
            "GET",
            "/users?licence=team",
            None,
            200,
        )
        .await;
        assert_eq!(sorted(&globex_owner_view), ["member@globex.test"]);
        // The document names the filter with its values.
        let doc = expect(
            &app,
            &w,
            Who::StaffViewerKey,
            "GET",
            "/openapi.json",
            None,
            200,
        )
        .await;
        let params = doc.body["paths"]["/users"]["get"]["parameters"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let licence = params
            .iter()
            .find(|p| p["name"] == "licence")
            .expect("licence documented");
        assert_eq!(licence["schema"]["enum"], json!(["pro", "team"]));
        // The organization's users list documents the same values (any other
        // is a 400, so the document must not promise more).
        let org_licence = doc.body["paths"]["/organizations/{slug}/users"]["get"]["parameters"]
            .as_array()
            .and_then(|ps| ps.iter().find(|p| p["name"] == "licence").cloned())
            .expect("licence documented on the organization's list");
        assert_eq!(org_licence["schema"]["enum"], json!(["pro", "team"]));
        // The page: a Licence select; the filter applies.
        let mut b = crate::web_app::Browser::new();
        b.login(&app, "admin@acme.test", crate::web_app::PASSWORD)
            .await;
        let page = b.get(&app, "/admin/users?licence=team").await;
        assert_eq!(page.status.as_u16(), 200);
        assert!(
            page.body.contains(r#"<select name="licence">"#),
            "{}",
            page.body
        );
        assert!(page.body.contains("member@acme.test"));
        assert!(!page.body.contains("owner@acme.test"), "{}", page.body);
        // The export takes it too.
        let csv = call(
            &app,
            &w,
            Who::StaffOwnerKey,
            "GET",
            "/export?fields=email,licences&licence=team&organization=acme",
            None,
        )
        .await;
        assert_eq!(csv.status.as_u16(), 200, "{}", csv.raw);
        let mut lines: Vec<&str> = csv.raw.lines().collect();
        lines.sort();
        assert_eq!(
            lines,
            [
                "admin@acme.test,team",
                "email,licences",
                "member@acme.test,team"
            ]
        );
    });
});

#[derive(Clone, Default)]
struct Heard(std::sync::Arc<std::sync::Mutex<Vec<frontdesk::Event>>>);

impl frontdesk::EventListener for Heard {
    fn after_commit(&self, event: &frontdesk::Event) {
        if let Ok(mut v) = self.0.lock() {
            v.push(event.clone());
        }
    }
}

both!(licence_changes_are_typed_events_after_commit, |db| {
    block_on(async {
        let heard = Heard::default();
        let mut b = builder(db).listener(heard.clone());
        for l in declared() {
            b = b.licence(l);
        }
        let fd = b.build().expect("frontdesk");
        let app = crate::host_app!(fd);
        let w = world_data(db);
        let g = group(db, w.acme.id, "Support");
        let m = w.acme_member.id;
        let user_path = format!("/organizations/acme/users/{m}/licences/pro");
        let group_path = format!("/organizations/acme/groups/{g}/licences/team");
        expect(&app, &w, Who::AcmeAdminKey, "PUT", &user_path, None, 204).await;
        expect(&app, &w, Who::AcmeAdminKey, "PUT", &group_path, None, 204).await;
        expect(&app, &w, Who::AcmeAdminKey, "DELETE", &user_path, None, 204).await;
        expect(
            &app,
            &w,
            Who::AcmeAdminKey,
            "DELETE",
            &group_path,
            None,
            204,
        )
        .await;
        let events: Vec<frontdesk::Event> = heard
            .0
            .lock()
            .map(|v| v.clone())
            .unwrap_or_default()
            .into_iter()
            .filter(|e| {
                matches!(
                    e,
                    frontdesk::Event::LicenceAssigned { .. }
                        | frontdesk::Event::LicenceUnassigned { .. }
                        | frontdesk::Event::GroupLicenceAdded { .. }
                        | frontdesk::Event::GroupLicenceRemoved { .. }
                )
            })
            .collect();
        let org = w.acme.id;
        assert_eq!(
            events,
            vec![
                frontdesk::Event::LicenceAssigned {
                    user_id: m,
                    organization_id: org,
                    licence: "pro".into(),
                    actor: events_actor(&events[0]),
                },
                frontdesk::Event::GroupLicenceAdded {
                    group_id: g,
                    organization_id: org,
                    licence: "team".into(),
                    actor: events_actor(&events[0]),
                },
                frontdesk::Event::LicenceUnassigned {
                    user_id: m,
                    organization_id: org,
                    licence: "pro".into(),
                    actor: events_actor(&events[0]),
                },
                frontdesk::Event::GroupLicenceRemoved {
                    group_id: g,
                    organization_id: org,
                    licence: "team".into(),
                    actor: events_actor(&events[0]),
                },
            ]
        );
        assert!(events_actor(&events[0]).starts_with("api_key:"));
    });
});

fn events_actor(e: &frontdesk::Event) -> String {
    match e {
        frontdesk::Event::LicenceAssigned { actor, .. } => actor.clone(),
        _ => String::new(),
    }
}

both!(the_builder_checks_and_syncs_licence_types, |db| {
    for bad in [
        vec![Licence::new("Pro", "Pro plan")],
        vec![Licence::new("", "Nothing")],
        vec![Licence::new("pro", " ")],
        vec![Licence::new("pro", "A"), Licence::new("pro", "B")],
    ] {
        let mut b = builder(db);
        for l in bad {
            b = b.licence(l);
        }
        assert!(
            matches!(b.build(), Err(CoreError::Config(_))),
            "a bad declaration is refused at build"
        );
    }
    let fd = licensed(db);
    let w = world_data(db);
    let sys = Actor::system();
    licences::assign_user(&mut db.conn(), &sys, w.acme.id, w.acme_member.id, "pro").expect("pro");
    drop(fd);
    // Declared no more: gone from every view, its rows kept.
    let fd = builder(db)
        .licence(Licence::new("team", "Team (renamed)").seats(3))
        .build()
        .expect("frontdesk");
    assert!(keys_and_sources(db, w.acme.id, w.acme_member.id).is_empty());
    let types = licences::types(&mut db.conn()).expect("types");
    assert_eq!(types, vec![Licence::new("team", "Team (renamed)").seats(3)]);
    drop(fd);
    // Declared again: back.
    let _fd = licensed(db);
    assert_eq!(keys_and_sources(db, w.acme.id, w.acme_member.id).len(), 1);
});

both!(odd_input_on_the_licence_routes_is_a_client_error, |db| {
    block_on(async {
        let fd = licensed(db);
        let app = crate::host_app!(fd);
        let w = world_data(db);
        let long = "a".repeat(65);
        let keys = [
            "..",
            "-",
            "PRO",
            "%00",
            "pro%2Fteam",
            long.as_str(),
            "%C3%A9",
        ];
        let ids = ["0", "-1", "99999999999999999999", "x"];
        for method in ["PUT", "DELETE"] {
            for kind in ["users", "groups"] {
                for id in ids {
                    for key in keys {
                        let path = format!("/organizations/acme/{kind}/{id}/licences/{key}");
                        let a = call(&app, &w, Who::StaffOwnerKey, method, &path, None).await;
                        let s = a.status.as_u16();
                        assert!((400..500).contains(&s), "{method} {path}: {s}");
                    }
                }
            }
        }
        let a = call(
            &app,
            &w,
            Who::StaffOwnerKey,
            "GET",
            "/organizations/nope/licences",
            None,
        )
        .await;
        assert_eq!(a.status.as_u16(), 404);
    });
});

both!(bulk_actions_give_and_take_licences_within_the_seats, |db| {
    block_on(async {
        let w = world_data(db);
        let app = crate::host_app!(licensed(db));
        let extra = member(db, w.acme.id, "extra@acme.test");
        let mut b = crate::web_app::Browser::new();
        b.login(&app, "admin@acme.test", crate::web_app::PASSWORD)
            .await;
        let list = format!("org={}", w.acme.id);
        let page = b.get(&app, &format!("/admin/users?{list}")).await;
        assert!(
            page.body.contains(r#"<option value="assign_licence">"#),
            "{}",
            page.body
        );
        // Unfiltered, the list offers no licence actions (they need an organization).
        let unfiltered = b.get(&app, "/admin/users").await;
        assert!(!unfiltered
            .body
            .contains(r#"<option value="assign_licence">"#));
        let csrf = page.csrf();
        let bulk = |action: &'static str, licence: &'static str, ids: Vec<i64>| {
            let mut form: Vec<(&'static str, String)> = vec![
                ("action", action.into()),
                ("licence", licence.into()),
                ("return", list.clone()),
                ("csrf_token", csrf.clone()),
            ];
            form.extend(ids.into_iter().map(|i| ("ids", i.to_string())));
            form
        };
        let holders = |db: &TestDb| -> Vec<i64> {
            let mut h: Vec<i64> = [w.acme_member.id, w.acme_owner.id, extra]
                .into_iter()
                .filter(|u| !keys_and_sources(db, w.acme.id, *u).is_empty())
                .collect();
            h.sort();
            h
        };

        // "pro" has two seats: three users at once are refused whole.
        let form = bulk(
            "assign_licence",
            "pro",
            vec![w.acme_member.id, w.acme_owner.id, extra],
        );
        let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        b.post(&app, "/admin/users/bulk", &pairs).await;
        assert_eq!(holders(db), Vec::<i64>::new(), "all or nothing");
        let after = b.get(&app, &format!("/admin/users?{list}")).await;
        assert!(after.body.contains("seat"), "{}", after.body);
        // Two fit.
        let form = bulk("assign_licence", "pro", vec![w.acme_member.id, extra]);
        let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let done = b.post(&app, "/admin/users/bulk", &pairs).await;
        assert!(done.status.is_redirection());
        let mut two = vec![w.acme_member.id, extra];
        two.sort();
        assert_eq!(holders(db), two);
        // Taking the direct licence away frees its seat.
        let form = bulk("unassign_licence", "pro", vec![extra]);
        let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        b.post(&app, "/admin/users/bulk", &pairs).await;
        assert_eq!(holders(db), vec![w.acme_member.id]);
        b.get(&app, &format!("/admin/users?{list}")).await;
        // A user the admin cannot see refuses the whole action.
        let form = bulk(
            "assign_licence",
            "team",
            vec![w.acme_owner.id, w.globex_member.id],
        );
        let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let refused = b.post(&app, "/admin/users/bulk", &pairs).await;
        assert_eq!(refused.status.as_u16(), 404);
        assert_eq!(holders(db), vec![w.acme_member.id]);
        // An undeclared licence is not offered, nor taken.
        let form = bulk("assign_licence", "gold", vec![w.acme_owner.id]);
        let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        b.post(&app, "/admin/users/bulk", &pairs).await;
        let after = b.get(&app, &format!("/admin/users?{list}")).await;
        assert!(after.body.contains("Choose a licence."), "{}", after.body);
        assert_eq!(holders(db), vec![w.acme_member.id]);
    });
});

both!(
    full_seats_skip_a_group_at_invitation_and_import_but_keep_the_user,
    |db| {
        declare(db);
        let w = world_data(db);
        let sys = Actor::system();
        let org = w.acme.id;
        let (a, b) = (
            member(db, org, "a@acme.test"),
            member(db, org, "b@acme.test"),
        );
        licences::assign_user(&mut db.conn(), &sys, org, a, "pro").expect("a");
        licences::assign_user(&mut db.conn(), &sys, org, b, "pro").expect("b");
        let g = group(db, org, "Night");
        licences::assign_group(&mut db.conn(), &sys, org, g, "pro").expect("no new seat");

        // An invitation naming the group: accepted, the account made, the group skipped.
        let settings = frontdesk_core::invitations::InvitationSettings::new("http://localhost")
            .expect("settings");
        let templates = frontdesk_mail::Templates::new().expect("templates");
        let issued = frontdesk_core::invitations::create(
            &mut db.conn(),
            &sys,
            &settings,
            &templates,
            &frontdesk_core::invitations::NewInvitation {
                organization_id: org,
                email: "late@acme.test".into(),
                role: OrgRole::Member,
                message: None,
                first_name: None,
                last_name: None,
                groups: vec![g],
            },
        )
        .expect("invite");
        let accepted = frontdesk_core::invitations::accept(
            &mut db.conn(),
            issued.token.expose(),
            &frontdesk_core::invitations::Acceptance::NewAccount {
                first_name: "La".into(),
                last_name: "Te".into(),
                password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
            },
        )
        .expect("accepted despite the full group");
        let members: Vec<i64> = groups::members(&mut db.conn(), g)
            .expect("members")
            .into_iter()
            .map(|m| m.user_id)
            .collect();
        assert!(!members.contains(&accepted.user.id));
        let details: String = audit_events::table
            .filter(audit_events::action.eq("invitation.accept"))
            .select(audit_events::details)
            .first(&mut *db.conn())
            .expect("audit");
        let details: serde_json::Value = serde_json::from_str(&details).expect("json");
        assert_eq!(details["groups_skipped"], json!(["Night"]));

        // An import row naming the group: created, not in the group, and warned about.
        let report = frontdesk_core::imports::import_bytes(
            &mut db.conn(),
            &sys,
            &frontdesk_core::imports::ImportConfig::default(),
            &frontdesk_core::imports::ImportOptions {
                source_name: "late.csv".into(),
                ..Default::default()
            },
            b"email,first_name,last_name,organization,groups\nlater@acme.test,La,Ter,acme,Night\n",
            &mut |_| {},
        )
        .expect("import");
        assert_eq!(report.created, 1);
        assert!(
            report
                .warnings
                .iter()
                .any(|w| w.contains("later@acme.test") && w.contains("no seat left")),
            "{:?}",
            report.warnings
        );
        // Nobody joined the full group; the seats are still the two direct ones.
        assert!(groups::members(&mut db.conn(), g)
            .expect("members")
            .is_empty());
        assert_eq!(licences::used(&mut db.conn(), org, "pro").expect("used"), 2);
    }
);
