use diesel::prelude::*;
use frontdesk_core::schema::{audit_events, memberships, sessions, users as users_t};
use frontdesk_core::users::{self, NewUser, UserUpdate};
use frontdesk_core::{organizations, Actor, CoreError, OrgRole, StaffRole};

use crate::both;

pub fn new_user(email: &str) -> NewUser {
    NewUser {
        email: email.into(),
        first_name: "Ann".into(),
        last_name: "Lee".into(),
        ..Default::default()
    }
}

fn count_users(c: &mut frontdesk_core::DbConnection) -> i64 {
    users_t::table.count().get_result(c).expect("count")
}

fn count_audit(c: &mut frontdesk_core::DbConnection, action: &str) -> i64 {
    audit_events::table
        .filter(audit_events::action.eq(action))
        .count()
        .get_result(c)
        .expect("count")
}

both!(create_normalizes_email_and_audits, |db| {
    let c = &mut *db.conn();
    let u = users::create(c, &Actor::system(), new_user("  Ann.Lee@Example.COM ")).expect("create");
    assert_eq!(u.email, "ann.lee@example.com");
    assert_eq!(u.status, "active");
    assert!(u.local_login_enabled);
    let found = users::find_by_email(c, "ANN.LEE@example.com")
        .expect("find")
        .expect("some");
    assert_eq!(found.id, u.id);
    assert_eq!(count_audit(c, "user.create"), 1);
});

both!(
    duplicate_email_in_any_case_is_refused_and_writes_nothing,
    |db| {
        let c = &mut *db.conn();
        users::create(c, &Actor::system(), new_user("dup@example.com")).expect("create");
        for variant in ["dup@example.com", "DUP@EXAMPLE.COM", " Dup@Example.com "] {
            let err = users::create(c, &Actor::system(), new_user(variant)).expect_err("duplicate");
            assert!(matches!(err, CoreError::DuplicateEmail(_)), "{err:?}");
        }
        assert_eq!(count_users(c), 1);
        assert_eq!(count_audit(c, "user.create"), 1);
    }
);

both!(
    invalid_and_overlong_input_is_refused_and_writes_nothing,
    |db| {
        let c = &mut *db.conn();
        let err =
            users::create(c, &Actor::system(), new_user("not-an-email")).expect_err("invalid");
        assert!(matches!(err, CoreError::InvalidEmail(_)), "{err:?}");
        let mut long = new_user("long@example.com");
        long.first_name = "x".repeat(101);
        let err = users::create(c, &Actor::system(), long).expect_err("too long");
        assert!(
            matches!(
                err,
                CoreError::TooLong {
                    field: "first_name",
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(count_users(c), 0);
        assert_eq!(count_audit(c, "user.create"), 0);
    }
);

both!(create_into_unknown_organization_rolls_back, |db| {
    let c = &mut *db.conn();
    let mut u = new_user("ghost@example.com");
    u.organization = Some((9_999, OrgRole::Member));
    let err = users::create(c, &Actor::system(), u).expect_err("unknown org");
    assert!(
        matches!(err, CoreError::NotFound("organization")),
        "{err:?}"
    );
    assert_eq!(count_users(c), 0);
});

both!(create_respects_allowed_domains, |db| {
    let c = &mut *db.conn();
    let sys = Actor::system();
    let org = organizations::create(c, &sys, "acme", "Acme", "acme.com").expect("org");
    let mut u = new_user("x@other.com");
    u.organization = Some((org.id, OrgRole::Member));
    assert!(matches!(
        users::create(c, &sys, u),
        Err(CoreError::DomainNotAllowed)
    ));
    assert_eq!(count_users(c), 0);
    let mut u = new_user("x@acme.com");
    u.organization = Some((org.id, OrgRole::Member));
    let created = users::create(c, &sys, u).expect("allowed");
    assert_eq!(
        organizations::roles_of(c, created.id).expect("roles"),
        vec![(org.id, OrgRole::Member)]
    );
});

both!(update_changes_names_profile_and_search_text, |db| {
    let c = &mut *db.conn();
    let u = users::create(c, &Actor::system(), new_user("p@example.com")).expect("create");
    let mut profile = serde_json::Map::new();
    profile.insert("company".into(), "Globex".into());
    let updated = users::update(
        c,
        &Actor::system(),
        u.id,
        UserUpdate {
            first_name: Some("Bea".into()),
            profile: Some(profile),
            ..Default::default()
        },
    )
    .expect("update");
    assert_eq!(updated.first_name, "Bea");
    assert_eq!(updated.last_name, "Lee");
    assert_eq!(
        updated
            .profile_map()
            .get("company")
            .and_then(|v| v.as_str()),
        Some("Globex")
    );
    assert!(updated.search_text.contains("globex") && updated.search_text.contains("bea"));
    assert_eq!(count_audit(c, "user.update"), 1);
    let err = users::update(
        c,
        &Actor::system(),
        u.id,
        UserUpdate {
            last_name: Some("y".repeat(500)),
            ..Default::default()
        },
    )
    .expect_err("too long");
    assert!(matches!(err, CoreError::TooLong { .. }));
    assert_eq!(users::get(c, u.id).expect("get").last_name, "Lee");
});

both!(suspend_ends_sessions_and_restore_clears_reason, |db| {
    let c = &mut *db.conn();
    let u = users::create(c, &Actor::system(), new_user("s@example.com")).expect("create");
    let t = frontdesk_core::time::now();
    for i in 0..2 {
        diesel::insert_into(sessions::table)
            .values((
                sessions::user_id.eq(u.id),
                sessions::token_hash.eq(format!("hash-{i}")),
                sessions::created_at.eq(t),
                sessions::last_active_at.eq(t),
                sessions::expires_at.eq(t + chrono::Duration::hours(1)),
            ))
            .execute(c)
            .expect("session");
    }
    let s = users::suspend(c, &Actor::system(), u.id, "chargeback").expect("suspend");
    assert!(s.is_suspended());
    assert_eq!(s.suspended_reason.as_deref(), Some("chargeback"));
    let live: i64 = sessions::table
        .filter(sessions::user_id.eq(u.id))
        .filter(sessions::revoked_at.is_null())
        .count()
        .get_result(c)
        .expect("count");
    assert_eq!(live, 0);
    let r = users::restore(c, &Actor::system(), u.id).expect("restore");
    assert_eq!(r.status, "active");
    assert!(r.suspended_reason.is_none() && r.suspended_at.is_none());
    assert_eq!(count_audit(c, "user.suspend"), 1);
    assert_eq!(count_audit(c, "user.restore"), 1);
});

both!(delete_cascades_memberships_and_sessions, |db| {
    let c = &mut *db.conn();
    let sys = Actor::system();
    let org = organizations::create(c, &sys, "acme", "Acme", "").expect("org");
    let owner = users::create(
        c,
        &sys,
        NewUser {
            organization: Some((org.id, OrgRole::Owner)),
            ..new_user("o@example.com")
        },
    )
    .expect("owner");
    let u = users::create(
        c,
        &sys,
        NewUser {
            organization: Some((org.id, OrgRole::Member)),
            ..new_user("d@example.com")
        },
    )
    .expect("user");
    let t = frontdesk_core::time::now();
    diesel::insert_into(sessions::table)
        .values((
            sessions::user_id.eq(u.id),
            sessions::token_hash.eq("h"),
            sessions::created_at.eq(t),
            sessions::last_active_at.eq(t),
            sessions::expires_at.eq(t),
        ))
        .execute(c)
        .expect("session");
    users::delete(c, &sys, u.id).expect("delete");
    assert!(matches!(
        users::get(c, u.id),
        Err(CoreError::NotFound("user"))
    ));
    let left: i64 = memberships::table
        .filter(memberships::user_id.eq(u.id))
        .count()
        .get_result(c)
        .expect("count");
    assert_eq!(left, 0);
    let sess: i64 = sessions::table.count().get_result(c).expect("count");
    assert_eq!(sess, 0);
    // The only owner of an organization cannot be deleted.
    assert!(matches!(
        users::delete(c, &sys, owner.id),
        Err(CoreError::LastOwner)
    ));
    assert!(users::get(c, owner.id).is_ok());
    assert_eq!(count_audit(c, "user.delete"), 1);
});

both!(local_login_and_staff_roles, |db| {
    let c = &mut *db.conn();
    let sys = Actor::system();
    let u = users::create(c, &sys, new_user("l@example.com")).expect("create");
    assert!(
        !users::set_local_login(c, &sys, u.id, false)
            .expect("disable")
            .local_login_enabled
    );
    assert!(
        users::set_local_login(c, &sys, u.id, true)
            .expect("allow")
            .local_login_enabled
    );
    let owner = users::set_staff_role(c, &sys, u.id, Some(StaffRole::Owner)).expect("owner");
    assert_eq!(owner.staff_role(), Some(StaffRole::Owner));
    // The last staff owner cannot be demoted.
    assert!(matches!(
        users::set_staff_role(c, &sys, u.id, Some(StaffRole::Admin)),
        Err(CoreError::LastStaffOwner)
    ));
    assert_eq!(
        users::get(c, u.id).expect("get").staff_role(),
        Some(StaffRole::Owner)
    );
    // A staff admin may not hand out staff roles.
    let admin = users::create(
        c,
        &sys,
        NewUser {
            staff_role: Some(StaffRole::Admin),
            ..new_user("a@example.com")
        },
    )
    .expect("admin");
    let as_admin = Actor::user(admin.id, Some(StaffRole::Admin), vec![]);
    let other = users::create(c, &sys, new_user("x@example.com")).expect("x");
    assert!(matches!(
        users::set_staff_role(c, &as_admin, other.id, Some(StaffRole::Viewer)),
        Err(CoreError::Forbidden)
    ));
    assert_eq!(users::get(c, other.id).expect("get").staff_role, None);
});

both!(actor_for_reads_roles_fresh, |db| {
    let c = &mut *db.conn();
    let sys = Actor::system();
    let org = organizations::create(c, &sys, "acme", "Acme", "").expect("org");
    let u = users::create(
        c,
        &sys,
        NewUser {
            organization: Some((org.id, OrgRole::Admin)),
            ..new_user("a@acme.com")
        },
    )
    .expect("u");
    let actor = users::actor_for(c, u.id, Some("10.0.0.1".into())).expect("actor");
    assert_eq!(actor.org_roles, vec![(org.id, OrgRole::Admin)]);
    assert_eq!(actor.staff_role, None);
    assert_eq!(actor.ip.as_deref(), Some("10.0.0.1"));
    assert!(actor.is_admin_user());
    users::set_staff_role(c, &sys, u.id, Some(StaffRole::Viewer)).expect("staff");
    assert_eq!(
        users::actor_for(c, u.id, None).expect("actor").staff_role,
        Some(StaffRole::Viewer)
    );
    assert!(matches!(
        users::actor_for(c, 9_999, None),
        Err(CoreError::NotFound("user"))
    ));
});

// Read-then-write changes from many connections at once must wait for each
// other, not fail with "database is locked" (SQLite) or lose an update.
both!(concurrent_changes_all_succeed, |db| {
    let ids: Vec<i64> = {
        let c = &mut *db.conn();
        (0..4)
            .map(|i| {
                users::create(c, &Actor::system(), new_user(&format!("c{i}@example.com")))
                    .expect("user")
                    .id
            })
            .collect()
    };
    let barrier = std::sync::Barrier::new(ids.len());
    std::thread::scope(|s| {
        for id in &ids {
            let (pool, barrier) = (db.pool(), &barrier);
            s.spawn(move || {
                let mut c = pool.get().expect("conn");
                barrier.wait();
                for round in 0..15 {
                    let change = UserUpdate {
                        first_name: Some(format!("n{round}")),
                        ..Default::default()
                    };
                    users::update(&mut c, &Actor::system(), *id, change)
                        .expect("update under contention");
                }
            });
        }
    });
    let c = &mut *db.conn();
    for id in ids {
        assert_eq!(users::get(c, id).expect("get").first_name, "n14");
    }
    assert_eq!(count_audit(c, "user.update"), 60);
});
