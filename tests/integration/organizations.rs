use diesel::prelude::*;
use frontdesk_core::schema::{audit_events, memberships, organizations as orgs_t};
use frontdesk_core::users::{self, NewUser};
use frontdesk_core::{organizations, Actor, CoreError, OrgRole};

use crate::admin_browser::Framework;
use crate::admin_fixture as fx;
use crate::both;
use crate::both_and_axum;
use crate::users::new_user;

both!(create_rename_domains_delete, |db| {
    let c = &mut *db.conn();
    let sys = Actor::system();
    let org =
        organizations::create(c, &sys, " Acme ", "Acme Inc", "@Acme.com, acme.io").expect("create");
    assert_eq!(org.slug, "acme");
    assert_eq!(org.domains(), vec!["acme.com", "acme.io"]);
    assert!(org.allows_email("a@acme.io") && !org.allows_email("a@evil.com"));
    let renamed = organizations::rename(c, &sys, org.id, "Acme Corp").expect("rename");
    assert_eq!(renamed.name, "Acme Corp");
    let open = organizations::set_allowed_domains(c, &sys, org.id, "").expect("domains");
    assert!(open.allows_email("a@anything.org"));
    assert!(matches!(organizations::get_by_slug(c, "ACME"), Ok(o) if o.id == org.id));
    organizations::delete(c, &sys, org.id).expect("delete");
    assert!(matches!(
        organizations::get(c, org.id),
        Err(CoreError::NotFound(_))
    ));
    let actions: Vec<String> = audit_events::table
        .order(audit_events::id.asc())
        .select(audit_events::action)
        .load(c)
        .expect("audit");
    assert_eq!(
        actions,
        [
            "organization.create",
            "organization.rename",
            "organization.domains",
            "organization.delete"
        ]
    );
});

both!(bad_organization_input_is_refused_and_writes_nothing, |db| {
    let c = &mut *db.conn();
    let sys = Actor::system();
    organizations::create(c, &sys, "acme", "Acme", "").expect("create");
    assert!(matches!(
        organizations::create(c, &sys, "ACME", "Other", ""),
        Err(CoreError::DuplicateSlug(_))
    ));
    assert!(matches!(
        organizations::create(c, &sys, "bad slug!", "X", ""),
        Err(CoreError::Invalid { field: "slug", .. })
    ));
    assert!(matches!(
        organizations::create(c, &sys, "x", "", ""),
        Err(CoreError::Invalid { field: "name", .. })
    ));
    assert!(matches!(
        organizations::create(c, &sys, "y", "Y", "not a domain"),
        Err(CoreError::Invalid { .. })
    ));
    assert!(matches!(
        organizations::create(c, &sys, "z", &"n".repeat(101), ""),
        Err(CoreError::TooLong { .. })
    ));
    let n: i64 = orgs_t::table.count().get_result(c).expect("count");
    assert_eq!(n, 1);
    let audits: i64 = audit_events::table.count().get_result(c).expect("count");
    assert_eq!(audits, 1);
});

both!(memberships_keep_the_last_owner, |db| {
    let c = &mut *db.conn();
    let sys = Actor::system();
    let org = organizations::create(c, &sys, "acme", "Acme", "").expect("org");
    let a = users::create(
        c,
        &sys,
        NewUser {
            organization: Some((org.id, OrgRole::Owner)),
            ..new_user("a@example.com")
        },
    )
    .expect("a");
    let b = users::create(c, &sys, new_user("b@example.com")).expect("b");
    organizations::add_member(c, &sys, org.id, b.id, OrgRole::Member).expect("add");
    assert!(matches!(
        organizations::add_member(c, &sys, org.id, b.id, OrgRole::Admin),
        Err(CoreError::AlreadyMember)
    ));

    // The only owner can be neither demoted nor removed.
    assert!(matches!(
        organizations::change_role(c, &sys, org.id, a.id, OrgRole::Admin),
        Err(CoreError::LastOwner)
    ));
    assert!(matches!(
        organizations::remove_member(c, &sys, org.id, a.id),
        Err(CoreError::LastOwner)
    ));
    assert_eq!(
        organizations::roles_of(c, a.id).expect("roles"),
        vec![(org.id, OrgRole::Owner)]
    );

    // With a second owner, the first may step down.
    organizations::change_role(c, &sys, org.id, b.id, OrgRole::Owner).expect("promote");
    organizations::change_role(c, &sys, org.id, a.id, OrgRole::Member).expect("demote");
    organizations::remove_member(c, &sys, org.id, a.id).expect("remove");
    let left: Vec<(i64, String)> = memberships::table
        .filter(memberships::organization_id.eq(org.id))
        .select((memberships::user_id, memberships::role))
        .load(c)
        .expect("members");
    assert_eq!(left, vec![(b.id, "owner".to_owned())]);
    assert!(matches!(
        organizations::remove_member(c, &sys, org.id, a.id),
        Err(CoreError::NotFound("membership"))
    ));
});

both!(add_member_checks_domain_and_existence, |db| {
    let c = &mut *db.conn();
    let sys = Actor::system();
    let org = organizations::create(c, &sys, "acme", "Acme", "acme.com").expect("org");
    let outsider = users::create(c, &sys, new_user("x@gmail.com")).expect("user");
    assert!(matches!(
        organizations::add_member(c, &sys, org.id, outsider.id, OrgRole::Member),
        Err(CoreError::DomainNotAllowed)
    ));
    assert!(matches!(
        organizations::add_member(c, &sys, org.id, 424_242, OrgRole::Member),
        Err(CoreError::NotFound("user"))
    ));
    assert!(matches!(
        organizations::add_member(c, &sys, 424_242, outsider.id, OrgRole::Member),
        Err(CoreError::NotFound("organization"))
    ));
    let n: i64 = memberships::table.count().get_result(c).expect("count");
    assert_eq!(n, 0);
});

both!(org_admin_acts_only_inside_own_org, |db| {
    let c = &mut *db.conn();
    let sys = Actor::system();
    let acme = organizations::create(c, &sys, "acme", "Acme", "").expect("acme");
    let globex = organizations::create(c, &sys, "globex", "Globex", "").expect("globex");
    let admin = users::create(
        c,
        &sys,
        NewUser {
            organization: Some((acme.id, OrgRole::Admin)),
            ..new_user("admin@acme.com")
        },
    )
    .expect("admin");
    let mine = users::create(
        c,
        &sys,
        NewUser {
            organization: Some((acme.id, OrgRole::Member)),
            ..new_user("m@acme.com")
        },
    )
    .expect("mine");
    let theirs = users::create(
        c,
        &sys,
        NewUser {
            organization: Some((globex.id, OrgRole::Member)),
            ..new_user("t@globex.com")
        },
    )
    .expect("theirs");
    let actor = Actor::user(admin.id, None, vec![(acme.id, OrgRole::Admin)]);

    users::suspend(c, &actor, mine.id, "spam").expect("own org");
    // Another org's user looks like no user at all.
    assert!(matches!(
        users::suspend(c, &actor, theirs.id, "x"),
        Err(CoreError::NotFound("user"))
    ));
    assert!(!users::get(c, theirs.id).expect("get").is_suspended());
    // Admins cannot make owners, nor touch another organization.
    assert!(matches!(
        organizations::change_role(c, &actor, acme.id, mine.id, OrgRole::Owner),
        Err(CoreError::Forbidden)
    ));
    assert!(matches!(
        organizations::rename(c, &actor, globex.id, "Mine now"),
        Err(CoreError::Forbidden)
    ));
    assert!(matches!(
        organizations::create(c, &actor, "new", "New", ""),
        Err(CoreError::Forbidden)
    ));
    organizations::change_role(c, &actor, acme.id, mine.id, OrgRole::Admin).expect("grant admin");
    assert_eq!(
        organizations::get(c, globex.id).expect("globex").name,
        "Globex"
    );
});

// An organization admin adds only users they can already see. Anyone else —
// a member of another organization, a staff owner, a user of no organization
// — is "not found", exactly like an id nobody has: adding them would open
// their profile, sessions and sign-in history to this admin.
both!(organization_admins_add_only_users_they_can_see, |db| {
    let cast = fx::cast(db);
    let sys = Actor::system();
    let admin_user = cast.get("org_admin").expect("org admin").clone();
    let initech = {
        let c = &mut *db.conn();
        let o = organizations::create(c, &sys, "initech", "Initech", "").expect("org");
        organizations::add_member(c, &sys, o.id, admin_user.id, OrgRole::Admin).expect("admin");
        o
    };
    let admin = fx::actor(db, &admin_user);
    let staff_owner = cast.get("staff_owner").expect("staff owner").id;
    let loner = cast.get("end_user").expect("end user").id;
    let c = &mut *db.conn();
    for outsider in [cast.bob.id, staff_owner, loner, 424_242] {
        for org in [cast.org_a.id, initech.id] {
            assert!(
                matches!(
                    organizations::add_member(c, &admin, org, outsider, OrgRole::Member),
                    Err(CoreError::NotFound("user"))
                ),
                "user {outsider} into org {org}"
            );
        }
    }
    assert_eq!(
        organizations::roles_of(c, cast.bob.id).expect("roles"),
        vec![(cast.org_b.id, OrgRole::Member)]
    );
    assert!(organizations::roles_of(c, staff_owner)
        .expect("roles")
        .is_empty());
    assert!(organizations::roles_of(c, loner).expect("roles").is_empty());
    // A member of one of their organizations may join another of theirs.
    organizations::add_member(c, &admin, initech.id, cast.alice.id, OrgRole::Member)
        .expect("alice is visible to this admin");
    assert_eq!(
        organizations::roles_of(c, cast.alice.id)
            .expect("roles")
            .len(),
        2
    );
    // Staff still add anyone.
    organizations::add_member(c, &sys, initech.id, cast.bob.id, OrgRole::Member).expect("staff");
});

// The same over the wire, on a real server: the members form answers an
// existing outsider exactly as it answers an address nobody has, and
// nothing changes.
both_and_axum!(
    members_form_answers_outsiders_like_unknown_addresses,
    members_form_answers_outsiders_like_unknown_addresses_on
);

fn members_form_answers_outsiders_like_unknown_addresses_on(
    db: &crate::support::TestDb,
    framework: Framework,
) {
    let cast = fx::cast(db);
    let (base, server) = crate::admin_browser::serve_on(framework, db, "127.0.0.1", |b| b);
    let (browser, csrf) = fx::signed_in(db, cast.get("org_admin"));
    let session = browser.jar.get("frontdesk_session").cloned();
    let path = format!("/admin/organizations/{}/members", cast.org_a.id);
    let add = |email: &str| {
        let body = format!(
            "csrf_token={csrf}&role=member&email={}",
            email.replace('@', "%40")
        );
        let res = crate::raw_http::post_form(&base, &path, session.as_deref(), body.as_bytes());
        assert_eq!(res.status, 303, "{email}: {}", res.body);
        (
            res.header("location").map(str::to_owned),
            res.set_cookie("frontdesk_flash"),
        )
    };
    let unknown = add("nobody@nowhere.test");
    assert!(
        unknown.1.as_deref().is_some_and(|f| f.contains("invite")),
        "{unknown:?}"
    );
    for outsider in ["bob@globex.test", "owner@staff.test", "someone@else.test"] {
        assert_eq!(add(outsider), unknown, "{outsider}");
    }
    let c = &mut *db.conn();
    assert_eq!(
        organizations::roles_of(c, cast.bob.id).expect("roles"),
        vec![(cast.org_b.id, OrgRole::Member)]
    );
    let in_acme: i64 = memberships::table
        .filter(memberships::organization_id.eq(cast.org_a.id))
        .count()
        .get_result(c)
        .expect("count");
    assert_eq!(in_acme, 4, "the org's owner, admin, member and alice only");
    server.stop();
}
