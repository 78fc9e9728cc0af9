use chrono::Duration;
use diesel::prelude::*;
use frontdesk_core::schema::{login_attempts, users as users_t};
use frontdesk_core::time::now;
use frontdesk_core::users::{self, NewUser};
use frontdesk_core::{dashboard, organizations, Actor, DbConnection, OrgRole};

use crate::both;
use crate::users::new_user;

fn attempt(c: &mut DbConnection, user: Option<i64>, success: bool, ago_days: i64) {
    diesel::insert_into(login_attempts::table)
        .values((
            login_attempts::user_id.eq(user),
            login_attempts::email.eq("x@example.com"),
            login_attempts::success.eq(success),
            login_attempts::reason.eq(if success { "success" } else { "bad_password" }),
            login_attempts::created_at.eq(now() - Duration::days(ago_days)),
        ))
        .execute(c)
        .expect("attempt");
}

both!(counts_and_daily_series, |db| {
    let c = &mut *db.conn();
    let sys = Actor::system();
    let acme = organizations::create(c, &sys, "acme", "Acme", "").expect("org");
    let a = users::create(
        c,
        &sys,
        NewUser {
            organization: Some((acme.id, OrgRole::Owner)),
            ..new_user("a@acme.com")
        },
    )
    .expect("a");
    let b = users::create(c, &sys, new_user("b@example.com")).expect("b");
    users::suspend(c, &sys, b.id, "x").expect("suspend");
    diesel::update(users_t::table.find(b.id))
        .set(users_t::created_at.eq(now() - Duration::days(3)))
        .execute(c)
        .expect("date");
    attempt(c, Some(a.id), true, 0);
    attempt(c, Some(a.id), false, 0);
    attempt(c, Some(b.id), false, 0);
    attempt(c, Some(b.id), false, 3);
    attempt(c, None, false, 40);

    let all = dashboard::counts(c, None).expect("counts");
    assert_eq!(
        (
            all.users_pending,
            all.users_suspended,
            all.failed_logins_24h
        ),
        (1, 1, 2)
    );
    let mine = dashboard::counts(c, Some(&[acme.id])).expect("counts");
    assert_eq!(
        (
            mine.users_pending,
            mine.users_suspended,
            mine.failed_logins_24h
        ),
        (1, 0, 1)
    );

    let days = dashboard::daily(c, None, 30).expect("daily");
    assert_eq!(days.len(), 30);
    let today = &days[29];
    assert_eq!(today.date, now().date());
    assert_eq!(
        (today.signups, today.signins, today.failed_signins),
        (1, 1, 2)
    );
    let three_ago = &days[26];
    assert_eq!(
        (
            three_ago.signups,
            three_ago.signins,
            three_ago.failed_signins
        ),
        (1, 0, 1)
    );
    let total_failed: i64 = days.iter().map(|d| d.failed_signins).sum();
    assert_eq!(
        total_failed, 3,
        "the 40-day-old attempt is outside the window"
    );
    let scoped = dashboard::daily(c, Some(&[acme.id]), 30).expect("daily");
    assert_eq!(
        scoped
            .iter()
            .map(|d| d.signups + d.signins + d.failed_signins)
            .sum::<i64>(),
        3
    );
});

both!(audit_log_filters_and_org_scope, |db| {
    use frontdesk_core::audit::{self, AuditFilter};
    let c = &mut *db.conn();
    let sys = Actor::system();
    let acme = organizations::create(c, &sys, "acme", "Acme", "").expect("acme");
    let globex = organizations::create(c, &sys, "globex", "Globex", "").expect("globex");
    let a = users::create(
        c,
        &sys,
        NewUser {
            organization: Some((acme.id, OrgRole::Member)),
            ..new_user("a@acme.com")
        },
    )
    .expect("a");
    let g = users::create(
        c,
        &sys,
        NewUser {
            organization: Some((globex.id, OrgRole::Member)),
            ..new_user("g@globex.com")
        },
    )
    .expect("g");
    users::suspend(c, &sys, a.id, "x").expect("suspend a");
    users::suspend(c, &sys, g.id, "x").expect("suspend g");

    let (all, total) = audit::list(c, &AuditFilter::default(), 1, 50).expect("all");
    assert_eq!(total, 6);
    assert_eq!(all[0].action, "user.suspend", "newest first");
    let (susp, _) = audit::list(
        c,
        &AuditFilter {
            action: Some("user.suspend".into()),
            ..Default::default()
        },
        1,
        50,
    )
    .expect("action");
    assert_eq!(susp.len(), 2);
    let (about_a, _) = audit::list(
        c,
        &AuditFilter {
            target: Some(format!("user:{}", a.id)),
            ..Default::default()
        },
        1,
        50,
    )
    .expect("target");
    assert_eq!(about_a.len(), 2);
    let scoped = AuditFilter {
        organizations: Some(vec![acme.id]),
        ..Default::default()
    };
    let (mine, n) = audit::list(c, &scoped, 1, 50).expect("scoped");
    assert_eq!(n, 3, "{mine:?}");
    assert!(mine
        .iter()
        .all(|e| e.target == format!("user:{}", a.id) || e.organization_id == Some(acme.id)));

    // `a` also joins globex: what happens to them there is globex's business.
    organizations::add_member(c, &sys, globex.id, a.id, OrgRole::Member).expect("join globex");
    organizations::change_role(c, &sys, globex.id, a.id, OrgRole::Admin).expect("role");
    users::restore(c, &sys, a.id).expect("restore a");
    let (mine, n) = audit::list(c, &scoped, 1, 50).expect("scoped again");
    assert_eq!(n, 4, "{mine:?}");
    assert_eq!(
        mine[0].action, "user.restore",
        "a user-level event stays visible"
    );
    assert!(
        mine.iter().all(|e| e.organization_id != Some(globex.id)),
        "acme's view shows none of a's globex events: {mine:?}"
    );
    let globex_view = AuditFilter {
        organizations: Some(vec![globex.id]),
        ..Default::default()
    };
    let (theirs, _) = audit::list(c, &globex_view, 1, 50).expect("globex view");
    assert!(theirs
        .iter()
        .any(|e| e.action == "membership.role" && e.target == format!("user:{}", a.id)));
});
