//! Groups beyond their own pages: the users list's Groups column and filter
//! (pages and API), bulk "add to group" / "remove from group", the
//! invitation and new-user forms and bodies taking groups, the import's
//! `groups` column and the export's.

use diesel::prelude::*;
use frontdesk_core::groups;
use frontdesk_core::imports::{self, ImportConfig, ImportOptions, Outcome};
use frontdesk_core::invitations::{self, Acceptance, InvitationSettings, NewInvitation};
use frontdesk_core::schema::{audit_events, group_members, invitations as inv_t, users as users_t};
use frontdesk_core::{Actor, OrgRole};
use frontdesk_mail::Templates;
use serde_json::json;

use crate::api_v1_support::*;
use crate::both;
use crate::licences::group;
use crate::support::TestDb;
use crate::web_app::{block_on, frontdesk, Browser, PASSWORD};

fn join(db: &TestDb, org: i64, group: i64, user: i64) {
    groups::add_member(&mut db.conn(), &Actor::system(), org, group, user).expect("join");
}

fn members(db: &TestDb, group: i64) -> Vec<i64> {
    group_members::table
        .filter(group_members::group_id.eq(group))
        .order(group_members::user_id)
        .select(group_members::user_id)
        .load(&mut *db.conn())
        .expect("members")
}

fn emails(a: &Answer) -> Vec<String> {
    let mut e: Vec<String> = a.body["users"]
        .as_array()
        .expect("users")
        .iter()
        .map(|u| u["email"].as_str().unwrap_or("").to_owned())
        .collect();
    e.sort();
    e
}

both!(the_users_lists_filter_by_group_and_show_groups, |db| {
    block_on(async {
        let fd = frontdesk(db);
        let app = crate::host_app!(fd);
        let w = world(db, &app).await;
        let support = group(db, w.acme.id, "Support");
        group(db, w.acme.id, "Empty");
        let night = group(db, w.globex.id, "Night");
        join(db, w.acme.id, support, w.acme_member.id);
        join(db, w.globex.id, night, w.globex_member.id);
        // acme's member also belongs to globex, and to its group: what acme's
        // admin may see of them stops at acme's groups.
        frontdesk_core::organizations::add_member(
            &mut db.conn(),
            &Actor::system(),
            w.globex.id,
            w.acme_member.id,
            OrgRole::Member,
        )
        .expect("globex membership");
        join(db, w.globex.id, night, w.acme_member.id);

        // The API's users list: members of the group; another organization's
        // group is nobody to acme's admin (as an unknown one), not to staff.
        let a = expect(
            &app,
            &w,
            Who::AcmeAdminKey,
            "GET",
            &format!("/users?group={support}"),
            None,
            200,
        )
        .await;
        assert_eq!(emails(&a), ["member@acme.test"]);
        let a = expect(
            &app,
            &w,
            Who::AcmeAdminKey,
            "GET",
            &format!("/users?group={night}"),
            None,
            200,
        )
        .await;
        assert_eq!(emails(&a), Vec::<String>::new());
        assert_eq!(a.body["pagination"]["total"], 0);
        let a = expect(
            &app,
            &w,
            Who::StaffOwnerKey,
            "GET",
            &format!("/users?group={night}"),
            None,
            200,
        )
        .await;
        assert_eq!(emails(&a), ["member@acme.test", "member@globex.test"]);
        // With an organization, a group of another one matches nobody.
        let a = expect(
            &app,
            &w,
            Who::StaffOwnerKey,
            "GET",
            &format!("/users?organization=acme&group={night}"),
            None,
            200,
        )
        .await;
        assert_eq!(emails(&a), Vec::<String>::new());
        expect(
            &app,
            &w,
            Who::StaffOwnerKey,
            "GET",
            "/users?group=abc",
            None,
            400,
        )
        .await;

        // The organization's list: each user's groups there, and the filter.
        let a = expect(
            &app,
            &w,
            Who::AcmeAdminKey,
            "GET",
            "/organizations/acme/users",
            None,
            200,
        )
        .await;
        for u in a.body["users"].as_array().expect("users") {
            let expected = if u["email"] == "member@acme.test" {
                json!([{"id": support, "name": "Support"}])
            } else {
                json!([])
            };
            assert_eq!(u["groups"], expected, "{u}");
        }
        let a = expect(
            &app,
            &w,
            Who::AcmeAdminKey,
            "GET",
            &format!("/organizations/acme/users?group={support}"),
            None,
            200,
        )
        .await;
        assert_eq!(emails(&a), ["member@acme.test"]);
        let a = expect(
            &app,
            &w,
            Who::StaffOwnerKey,
            "GET",
            &format!("/organizations/acme/users?group={night}"),
            None,
            200,
        )
        .await;
        assert_eq!(emails(&a), Vec::<String>::new());

        // The export writes the names, within the caller's organizations.
        let a = expect(
            &app,
            &w,
            Who::AcmeAdminKey,
            "GET",
            &format!("/export?fields=email,groups&group={support}"),
            None,
            200,
        )
        .await;
        assert_eq!(
            a.raw, "email,groups\nmember@acme.test,Support\n",
            "{}",
            a.raw
        );

        // The admin page: filtered to acme, a Groups column and filter.
        let mut b = Browser::new();
        b.login(&app, "admin@acme.test", PASSWORD).await;
        let page = b
            .get(&app, &format!("/admin/users?org={}", w.acme.id))
            .await;
        assert_eq!(page.status.as_u16(), 200);
        assert!(
            page.body.contains(r#"<th scope="col">Groups</th>"#),
            "{}",
            page.body
        );
        assert!(
            page.body
                .contains(r#"<td data-label="Groups"><span class="fda-tag">Support</span>"#),
            "{}",
            page.body
        );
        assert!(page
            .body
            .contains(&format!(r#"<option value="{support}">Support</option>"#)));
        // Unfiltered: no column (groups belong to one organization).
        let page = b.get(&app, "/admin/users").await;
        assert!(!page.body.contains(r#"<th scope="col">Groups</th>"#));
        let page = b
            .get(
                &app,
                &format!("/admin/users?org={}&group={support}", w.acme.id),
            )
            .await;
        assert!(page.body.contains("member@acme.test"), "{}", page.body);
        assert!(!page.body.contains("owner@acme.test"), "{}", page.body);
        let page = b
            .get(
                &app,
                &format!("/admin/users?org={}&group={night}", w.acme.id),
            )
            .await;
        assert!(!page.body.contains("member@globex.test"));
        assert!(!page.body.contains("member@acme.test"), "{}", page.body);
    });
});

both!(bulk_actions_add_to_and_remove_from_a_group, |db| {
    block_on(async {
        let fd = frontdesk(db);
        let app = crate::host_app!(fd);
        let w = world_data(db);
        let support = group(db, w.acme.id, "Support");
        let night = group(db, w.globex.id, "Night");
        let mut b = Browser::new();
        b.login(&app, "admin@acme.test", PASSWORD).await;
        let page = b
            .get(&app, &format!("/admin/users?org={}", w.acme.id))
            .await;
        assert!(
            page.body.contains(r#"<option value="add_to_group">"#),
            "{}",
            page.body
        );
        let csrf = page.csrf();
        let ids = |us: &[i64]| us.iter().map(i64::to_string).collect::<Vec<_>>();
        let post = |action: &'static str, group: i64, users: Vec<String>| {
            let csrf = csrf.clone();
            let g = group.to_string();
            async move {
                let mut form: Vec<(&str, String)> = vec![
                    ("action", action.into()),
                    ("group", g),
                    ("csrf_token", csrf),
                ];
                form.extend(users.into_iter().map(|u| ("ids", u)));
                form
            }
        };

        let form = post(
            "add_to_group",
            support,
            ids(&[w.acme_member.id, w.acme_owner.id]),
        )
        .await;
        let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let done = b.post(&app, "/admin/users/bulk", &pairs).await;
        assert!(done.status.is_redirection(), "{}", done.status);
        let mut expected = vec![w.acme_member.id, w.acme_owner.id];
        expected.sort();
        assert_eq!(members(db, support), expected);
        let joins: i64 = audit_events::table
            .filter(audit_events::action.eq("group.member.add"))
            .count()
            .get_result(&mut *db.conn())
            .expect("audit");
        assert_eq!(joins, 2);

        // One user outside the group's organization refuses the whole action.
        let form = post(
            "add_to_group",
            support,
            ids(&[w.acme_admin.id, w.globex_member.id]),
        )
        .await;
        let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        b.post(&app, "/admin/users/bulk", &pairs).await;
        assert_eq!(members(db, support), expected, "all or nothing");
        // Another organization's group is not acme's admin's to fill.
        let form = post("add_to_group", night, ids(&[w.acme_admin.id])).await;
        let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        b.post(&app, "/admin/users/bulk", &pairs).await;
        assert_eq!(members(db, night), Vec::<i64>::new());
        // Without a group: a message, nothing done.
        let done = b
            .post(
                &app,
                "/admin/users/bulk",
                &[
                    ("action", "add_to_group"),
                    ("ids", &w.acme_admin.id.to_string()),
                    ("csrf_token", &csrf),
                ],
            )
            .await;
        assert!(done.status.is_redirection());
        let after = b.get(&app, "/admin/users").await;
        assert!(after.body.contains("Choose a group."), "{}", after.body);

        let form = post("remove_from_group", support, ids(&[w.acme_member.id])).await;
        let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        b.post(&app, "/admin/users/bulk", &pairs).await;
        assert_eq!(members(db, support), vec![w.acme_owner.id]);
    });
});

both!(the_api_changes_many_members_at_once, |db| {
    block_on(async {
        let fd = frontdesk(db);
        let app = crate::host_app!(fd);
        let w = world(db, &app).await;
        let support = group(db, w.acme.id, "Support");
        join(db, w.acme.id, support, w.acme_member.id);
        let path = format!("/organizations/acme/groups/{support}/members");
        let a = expect(
            &app,
            &w,
            Who::AcmeAdminKey,
            "POST",
            &path,
            Some(json!({"add": [w.acme_admin.id, w.acme_owner.id, w.acme_owner.id], "remove": [w.acme_member.id]})),
            200,
        )
        .await;
        assert_eq!(a.body, json!({"added": 2, "removed": 1}));
        let mut expected = vec![w.acme_admin.id, w.acme_owner.id];
        expected.sort();
        assert_eq!(members(db, support), expected);
        // A user outside the organization: 400 naming `add`, nothing changed.
        let a = expect(
            &app,
            &w,
            Who::AcmeAdminKey,
            "POST",
            &path,
            Some(
                json!({"add": [w.acme_member.id, w.globex_member.id], "remove": [w.acme_admin.id]}),
            ),
            400,
        )
        .await;
        assert!(a.raw.contains("add"), "{}", a.raw);
        assert_eq!(members(db, support), expected);
        // The same user in both lists.
        expect(
            &app,
            &w,
            Who::AcmeAdminKey,
            "POST",
            &path,
            Some(json!({"add": [w.acme_member.id], "remove": [w.acme_member.id]})),
            400,
        )
        .await;
        // Another organization's admin does not see the group.
        expect(
            &app,
            &w,
            Who::GlobexAdminKey,
            "POST",
            &path,
            Some(json!({"add": []})),
            404,
        )
        .await;
        expect(
            &app,
            &w,
            Who::GlobexAdminKey,
            "POST",
            &format!("/organizations/globex/groups/{support}/members"),
            Some(json!({"add": []})),
            404,
        )
        .await;
        // A member may not change groups.
        expect(
            &app,
            &w,
            Who::AcmeMemberKey,
            "POST",
            &path,
            Some(json!({"remove": [w.acme_admin.id]})),
            403,
        )
        .await;
        assert_eq!(members(db, support), expected);
    });
});

both!(invitations_put_the_invitee_into_their_groups, |db| {
    block_on(async {
        let fd = frontdesk(db);
        let app = crate::host_app!(fd);
        let w = world(db, &app).await;
        let support = group(db, w.acme.id, "Support");
        let night = group(db, w.globex.id, "Night");

        // Through the API: the answer names the groups.
        let a = expect(
            &app,
            &w,
            Who::AcmeAdminKey,
            "POST",
            "/invitations",
            Some(json!({"organization": "acme", "email": "new@acme.test", "role": "member", "groups": [support]})),
            201,
        )
        .await;
        assert_eq!(
            a.body["groups"],
            json!([{"id": support, "name": "Support"}])
        );
        let id = a.body["id"].as_i64().expect("id");
        let got = expect(
            &app,
            &w,
            Who::AcmeAdminKey,
            "GET",
            &format!("/invitations/{id}"),
            None,
            200,
        )
        .await;
        assert_eq!(got.body["groups"], a.body["groups"]);
        // Another organization's group: 400 naming `groups`, no invitation.
        let before: i64 = inv_t::table
            .count()
            .get_result(&mut *db.conn())
            .expect("count");
        let a = expect(
            &app,
            &w,
            Who::AcmeAdminKey,
            "POST",
            "/invitations",
            Some(json!({"organization": "acme", "email": "other@acme.test", "role": "member", "groups": [night]})),
            400,
        )
        .await;
        assert!(a.raw.contains("groups"), "{}", a.raw);
        let after: i64 = inv_t::table
            .count()
            .get_result(&mut *db.conn())
            .expect("count");
        assert_eq!(before, after);

        // Accepting joins the groups.
        let settings = InvitationSettings::new("http://localhost").expect("settings");
        let templates = Templates::new().expect("templates");
        let issued = invitations::create(
            &mut db.conn(),
            &Actor::user(w.acme_admin.id, None, vec![(w.acme.id, OrgRole::Admin)]),
            &settings,
            &templates,
            &NewInvitation {
                organization_id: w.acme.id,
                email: "joiner@acme.test".into(),
                role: OrgRole::Member,
                message: None,
                first_name: None,
                last_name: None,
                groups: vec![support],
            },
        )
        .expect("invite");
        let accepted = invitations::accept(
            &mut db.conn(),
            issued.token.expose(),
            &Acceptance::NewAccount {
                first_name: "Jo".into(),
                last_name: "Iner".into(),
                password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
            },
        )
        .expect("accept");
        assert_eq!(members(db, support), vec![accepted.user.id]);

        // The page's form offers the admin's organizations' groups only.
        let mut b = Browser::new();
        b.login(&app, "admin@acme.test", PASSWORD).await;
        let page = b.get(&app, "/admin/invitations").await;
        assert!(page.body.contains("Acme — Support"), "{}", page.body);
        assert!(!page.body.contains("Night"));
        let csrf = page.csrf();
        let made = b
            .post(
                &app,
                "/admin/invitations",
                &[
                    ("email", "paged@acme.test"),
                    ("organization", &w.acme.id.to_string()),
                    ("role", "member"),
                    ("groups", &support.to_string()),
                    ("csrf_token", &csrf),
                ],
            )
            .await;
        assert!(made.status.is_redirection(), "{}", made.status);
        let inv: i64 = inv_t::table
            .filter(inv_t::email.eq("paged@acme.test"))
            .select(inv_t::id)
            .first(&mut *db.conn())
            .expect("invitation");
        let on_it = invitations::groups_of(&mut db.conn(), inv).expect("groups");
        assert_eq!(on_it, vec![(support, "Support".to_owned())]);
    });
});

both!(new_users_join_the_groups_chosen, |db| {
    block_on(async {
        let fd = frontdesk(db);
        let app = crate::host_app!(fd);
        let w = world(db, &app).await;
        let support = group(db, w.acme.id, "Support");
        let night = group(db, w.globex.id, "Night");
        let a = expect(
            &app,
            &w,
            Who::AcmeAdminKey,
            "POST",
            "/organizations/acme/users",
            Some(json!({"email": "made@acme.test", "groups": [support]})),
            201,
        )
        .await;
        let id = a.body["id"].as_i64().expect("id");
        assert_eq!(members(db, support), vec![id]);
        // A group of another organization: 400 naming it, and no user.
        let a = expect(
            &app,
            &w,
            Who::StaffOwnerKey,
            "POST",
            "/users",
            Some(json!({"email": "nope@acme.test", "organization": "acme", "groups": [night]})),
            400,
        )
        .await;
        assert!(a.raw.contains("groups"), "{}", a.raw);
        // Groups without an organization.
        expect(
            &app,
            &w,
            Who::StaffOwnerKey,
            "POST",
            "/users",
            Some(json!({"email": "nope@acme.test", "groups": [support]})),
            400,
        )
        .await;
        let nope: i64 = users_t::table
            .filter(users_t::email.eq("nope@acme.test"))
            .count()
            .get_result(&mut *db.conn())
            .expect("count");
        assert_eq!(nope, 0);

        // The page.
        let mut b = Browser::new();
        b.login(&app, "admin@acme.test", PASSWORD).await;
        let page = b.get(&app, "/admin/users/new").await;
        assert!(page.body.contains("Acme — Support"), "{}", page.body);
        let csrf = page.csrf();
        let made = b
            .post(
                &app,
                "/admin/users/new",
                &[
                    ("email", "paged@acme.test"),
                    ("first_name", "Pa"),
                    ("last_name", "Ged"),
                    ("organization", &w.acme.id.to_string()),
                    ("role", "member"),
                    ("groups", &support.to_string()),
                    ("csrf_token", &csrf),
                ],
            )
            .await;
        assert!(
            made.status.is_redirection(),
            "{} {}",
            made.status,
            made.body
        );
        let paged: i64 = users_t::table
            .filter(users_t::email.eq("paged@acme.test"))
            .select(users_t::id)
            .first(&mut *db.conn())
            .expect("user");
        assert!(members(db, support).contains(&paged));
        // A foreign group on the form: the form again, with the error.
        let again = b
            .post(
                &app,
                "/admin/users/new",
                &[
                    ("email", "foreign@acme.test"),
                    ("organization", &w.acme.id.to_string()),
                    ("role", "member"),
                    ("groups", &night.to_string()),
                    ("csrf_token", &csrf),
                ],
            )
            .await;
        assert_eq!(again.status.as_u16(), 400, "{}", again.body);
        assert!(
            again.body.contains("not a group of the organization"),
            "{}",
            again.body
        );
    });
});

both!(the_import_takes_and_the_export_writes_groups, |db| {
    let w = world_data(db);
    let support = group(db, w.acme.id, "Support");
    let night = group(db, w.globex.id, "Night");
    let admin = Actor::user(w.acme_admin.id, None, vec![(w.acme.id, OrgRole::Admin)]);
    let csv = "email,first_name,last_name,organization,groups\n\
               one@acme.test,One,A,acme,Support\n\
               two@acme.test,Two,A,acme,Night\n\
               three@acme.test,Three,A,,Support\n\
               four@acme.test,Four,A,acme,\n";
    let opts = ImportOptions {
        source_name: "groups.csv".into(),
        ..ImportOptions::default()
    };
    let report = imports::import_bytes(
        &mut db.conn(),
        &Actor::system(),
        &ImportConfig::default(),
        &opts,
        csv.as_bytes(),
        &mut |_| {},
    )
    .expect("import");
    let rows: Vec<(u64, Outcome, &str)> = report
        .rows
        .iter()
        .map(|l| (l.row, l.outcome, l.code))
        .collect();
    assert_eq!(
        rows,
        [
            (3, Outcome::Rejected, "unknown_group"),
            (4, Outcome::Rejected, "group_without_organization"),
        ]
    );
    assert_eq!(report.created, 2);
    let one: i64 = users_t::table
        .filter(users_t::email.eq("one@acme.test"))
        .select(users_t::id)
        .first(&mut *db.conn())
        .expect("one");
    assert_eq!(members(db, support), vec![one]);
    assert_eq!(members(db, night), Vec::<i64>::new());
    let joined: i64 = audit_events::table
        .filter(audit_events::action.eq("group.member.add"))
        .count()
        .get_result(&mut *db.conn())
        .expect("audit");
    assert_eq!(joined, 1);
    // An organization admin names only their organizations' groups.
    let report = imports::import_bytes(
        &mut db.conn(),
        &admin,
        &ImportConfig::default(),
        &opts,
        b"email,first_name,last_name,organization,groups\nfive@globex.test,F,A,globex,Night\n",
        &mut |_| {},
    )
    .expect("import");
    assert_eq!(report.rows[0].code, "unknown_organization");

    // The export: the names, `|`-separated, within the exporter's scope.
    join(db, w.acme.id, support, w.acme_member.id);
    let second = group(db, w.acme.id, "Alpha");
    join(db, w.acme.id, second, w.acme_member.id);
    let req = frontdesk_core::exports::ExportRequest::new(
        frontdesk_core::exports::ExportField::parse_list("email,groups", &[]).expect("fields"),
        frontdesk_core::users::query::UserQuery {
            search: Some("acme.test".into()),
            sort: frontdesk_core::users::query::SortKey::Email,
            dir: frontdesk_core::users::query::SortDir::Asc,
            ..Default::default()
        },
    );
    let mut out = Vec::new();
    frontdesk_core::exports::export(&mut db.conn(), &admin, &req, &mut out, &mut |_| {})
        .expect("export");
    assert_eq!(
        String::from_utf8(out).expect("utf-8"),
        "email,groups\nadmin@acme.test,\nfour@acme.test,\nmember@acme.test,Alpha|Support\n\
         one@acme.test,Support\nowner@acme.test,\n"
    );
});

both!(the_export_page_keeps_every_filter_of_the_list, |db| {
    block_on(async {
        let w = world_data(db);
        let app = crate::host_app!(frontdesk(db));
        let support = group(db, w.acme.id, "Support");
        join(db, w.acme.id, support, w.acme_member.id);
        let mut b = Browser::new();
        b.login(&app, "admin@acme.test", PASSWORD).await;
        let list = format!("org={}&group={support}&mfa=off&inactive_days=30", w.acme.id);
        let page = b.get(&app, &format!("/admin/exports?{list}")).await;
        assert_eq!(page.status.as_u16(), 200);
        let csrf = page.csrf();
        // The form sends back the filters it was given (HTML-escaped).
        let filters = format!("org={}&group={support}&mfa=off&inactive_days=30", w.acme.id);
        assert!(
            page.body.contains(&filters.replace('&', "&amp;")),
            "{}",
            page.body
        );
        let csv = b
            .post(
                &app,
                "/admin/exports",
                &[
                    ("filters", &filters),
                    ("fields", "email"),
                    ("csrf_token", &csrf),
                ],
            )
            .await;
        assert_eq!(csv.status.as_u16(), 200, "{}", csv.body);
        assert_eq!(csv.body, "email\nmember@acme.test\n");
    });
});
