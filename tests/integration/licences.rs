//! Licences: the host's types, given to members directly or through groups;
//! effective licences with their sources; seat limits on every path (also
//! under concurrent requests), authorization, leaving the organization, the
//! audit trail, the API, the pages, the export and `CurrentUser`.

use diesel::prelude::*;
use frontdesk_core::groups::{self, GroupFields};
use frontdesk_core::licences::{self, Licence, Source};
use frontdesk_core::schema::{audit_events, group_licences, user_licences};
use frontdesk_core::{organizations, Actor, CoreError, OrgRole};

use crate::api_v1_support::*;
use crate::both;
use crate::support::TestDb;

fn declared() -> Vec<Licence> {
    vec![
        Licence::new("pro", "Pro plan").seats(2),
        Licence::new("team", "Team"),
    ]
}

fn declare(db: &TestDb) {
    licences::sync(&mut db.conn(), &declared()).expect("sync");
}

fn group(db: &TestDb, org: i64, name: &str) -> i64 {
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
