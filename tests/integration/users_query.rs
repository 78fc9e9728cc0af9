use std::collections::HashMap;

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;
use frontdesk_core::schema::users as users_t;
use frontdesk_core::users::query::{LastLogin, SortDir, SortKey, StaffFilter, UserQuery};
use frontdesk_core::users::{self, NewUser, UserStatus};
use frontdesk_core::{organizations, tags, Actor, CoreError, DbConnection, OrgRole, StaffRole};

use crate::both;
use crate::support::TestDb;

struct Seed {
    acme: i64,
    globex: i64,
    vip: i64,
    beta: i64,
    t0: NaiveDateTime,
}

/// Eight users with known names, orgs, tags, dates and states.
/// (email, first, last, org, role, tags, days after t0 created, last login days, suspended, staff, company)
fn seed(c: &mut DbConnection) -> Seed {
    let sys = Actor::system();
    let acme = organizations::create(c, &sys, "acme", "Acme", "")
        .expect("acme")
        .id;
    let globex = organizations::create(c, &sys, "globex", "Globex", "")
        .expect("globex")
        .id;
    let vip = tags::create(c, &sys, "vip").expect("vip").id;
    let beta = tags::create(c, &sys, "beta").expect("beta").id;
    let t0 = chrono::NaiveDate::from_ymd_opt(2025, 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .expect("date");
    #[allow(clippy::type_complexity)]
    let rows: [(
        &str,
        &str,
        &str,
        Option<(i64, OrgRole)>,
        &[i64],
        i64,
        Option<i64>,
        bool,
        Option<StaffRole>,
        &str,
    ); 8] = [
        (
            "ann@acme.com",
            "Ann",
            "Archer",
            Some((acme, OrgRole::Owner)),
            &[vip],
            0,
            Some(10),
            false,
            None,
            "Acme",
        ),
        (
            "bob@acme.com",
            "Bob",
            "Baker",
            Some((acme, OrgRole::Admin)),
            &[vip, beta],
            1,
            Some(20),
            false,
            None,
            "Acme",
        ),
        (
            "cyd@acme.com",
            "Cyd",
            "Cole",
            Some((acme, OrgRole::Member)),
            &[beta],
            2,
            None,
            true,
            None,
            "Acme",
        ),
        (
            "dee@globex.com",
            "Dee",
            "Dunn",
            Some((globex, OrgRole::Owner)),
            &[],
            3,
            Some(5),
            false,
            None,
            "Globex",
        ),
        (
            "eve@globex.com",
            "Eve",
            "Evans",
            Some((globex, OrgRole::Member)),
            &[vip],
            4,
            None,
            false,
            None,
            "Globex",
        ),
        (
            "fay@staff.io",
            "Fay",
            "Fox",
            None,
            &[],
            5,
            Some(30),
            false,
            Some(StaffRole::Owner),
            "Staff",
        ),
        (
            "gus@staff.io",
            "Gus",
            "Grey",
            None,
            &[beta],
            6,
            Some(1),
            true,
            Some(StaffRole::Viewer),
            "Staff",
        ),
        (
            "hal_50%@free.org",
            "Hal",
            "Hunt",
            None,
            &[],
            7,
            None,
            false,
            None,
            "Initech",
        ),
    ];
    for (email, first, last, org, tag_ids, created, login, suspended, staff, company) in rows {
        let mut profile = serde_json::Map::new();
        profile.insert("company".into(), company.into());
        let u = users::create(
            c,
            &sys,
            NewUser {
                email: email.into(),
                first_name: first.into(),
                last_name: last.into(),
                organization: org,
                staff_role: staff,
                profile,
                ..Default::default()
            },
        )
        .expect("user");
        for t in tag_ids {
            tags::assign(c, &sys, u.id, *t).expect("tag");
        }
        diesel::update(users_t::table.find(u.id))
            .set((
                users_t::created_at.eq(t0 + Duration::days(created)),
                users_t::last_login_at.eq(login.map(|d| t0 + Duration::days(d))),
            ))
            .execute(c)
            .expect("dates");
        if suspended {
            users::suspend(c, &sys, u.id, "test").expect("suspend");
        }
    }
    Seed {
        acme,
        globex,
        vip,
        beta,
        t0,
    }
}

fn emails(c: &mut DbConnection, q: &UserQuery) -> Vec<String> {
    let page = q.run_scoped(c, None).expect("query");
    page.items.into_iter().map(|u| u.email).collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn first_names(c: &mut DbConnection, q: UserQuery) -> Vec<String> {
    sorted(
        emails(c, &q)
            .into_iter()
            .map(|e| e[..3].to_owned())
            .collect(),
    )
}

both!(
    search_matches_email_names_and_profile_case_insensitively,
    |db: &TestDb| {
        let c = &mut *db.conn();
        seed(c);
        let s = |term: &str| UserQuery {
            search: Some(term.into()),
            ..Default::default()
        };
        assert_eq!(first_names(c, s("GLOBEX.com")), ["dee", "eve"]);
        assert_eq!(first_names(c, s("archer")), ["ann"]);
        assert_eq!(first_names(c, s("rche")), ["ann"]);
        assert_eq!(first_names(c, s("initech")), ["hal"]);
        // Short terms take the non-indexed path and still match substrings.
        assert_eq!(first_names(c, s("ev")), ["eve"]);
        // LIKE wildcards in the term are literal.
        assert_eq!(first_names(c, s("_50%")), ["hal"]);
        assert_eq!(first_names(c, s("%")), ["hal"]);
        assert!(first_names(c, s("zzz-nothing")).is_empty());
        // Quotes cannot break out of the search expression.
        assert!(first_names(c, s("\"ann\" OR x")).is_empty());
        // A search follows an update of the searched fields.
        let ann = users::find_by_email(c, "ann@acme.com")
            .expect("find")
            .expect("ann");
        users::update(
            c,
            &Actor::system(),
            ann.id,
            frontdesk_core::users::UserUpdate {
                last_name: Some("Zimmer".into()),
                ..Default::default()
            },
        )
        .expect("update");
        assert!(first_names(c, s("archer")).is_empty());
        assert_eq!(first_names(c, s("zimmer")), ["ann"]);
    }
);

both!(filters_by_status_staff_org_role_and_tags, |db: &TestDb| {
    let c = &mut *db.conn();
    let seed = seed(c);
    let q = UserQuery::default;
    assert_eq!(
        first_names(
            c,
            UserQuery {
                status: Some(UserStatus::Suspended),
                ..q()
            }
        ),
        ["cyd", "gus"]
    );
    assert_eq!(
        emails(
            c,
            &UserQuery {
                // Made by `users::create` and never signed in: pending.
                status: Some(UserStatus::Pending),
                ..q()
            }
        )
        .len(),
        6
    );
    assert_eq!(
        first_names(
            c,
            UserQuery {
                staff: StaffFilter::Staff,
                ..q()
            }
        ),
        ["fay", "gus"]
    );
    assert_eq!(
        first_names(
            c,
            UserQuery {
                staff: StaffFilter::Is(StaffRole::Viewer),
                ..q()
            }
        ),
        ["gus"]
    );
    assert_eq!(
        emails(
            c,
            &UserQuery {
                staff: StaffFilter::NotStaff,
                ..q()
            }
        )
        .len(),
        6
    );
    assert_eq!(
        first_names(
            c,
            UserQuery {
                organization: Some(seed.acme),
                ..q()
            }
        ),
        ["ann", "bob", "cyd"]
    );
    assert_eq!(
        first_names(
            c,
            UserQuery {
                org_role: Some(OrgRole::Owner),
                ..q()
            }
        ),
        ["ann", "dee"]
    );
    assert_eq!(
        first_names(
            c,
            UserQuery {
                organization: Some(seed.globex),
                org_role: Some(OrgRole::Member),
                ..q()
            }
        ),
        ["eve"]
    );
    assert_eq!(
        first_names(
            c,
            UserQuery {
                tags_all: vec![seed.vip, seed.beta],
                ..q()
            }
        ),
        ["bob"]
    );
    assert_eq!(
        first_names(
            c,
            UserQuery {
                tags_any: vec![seed.vip, seed.beta],
                ..q()
            }
        ),
        ["ann", "bob", "cyd", "eve", "gus"]
    );
    assert_eq!(
        first_names(
            c,
            UserQuery {
                tags_none: vec![seed.vip, seed.beta],
                ..q()
            }
        ),
        ["dee", "fay", "hal"]
    );
    // Combined: Acme users (never signed in: pending) tagged vip, found by search.
    assert_eq!(
        first_names(
            c,
            UserQuery {
                status: Some(UserStatus::Pending),
                organization: Some(seed.acme),
                tags_any: vec![seed.vip],
                search: Some("acme".into()),
                ..q()
            }
        ),
        ["ann", "bob"]
    );
});

both!(filters_by_signup_and_last_sign_in, |db: &TestDb| {
    let c = &mut *db.conn();
    let seed = seed(c);
    let d = |n: i64| seed.t0 + Duration::days(n);
    let q = UserQuery::default;
    assert_eq!(
        first_names(
            c,
            UserQuery {
                created_from: Some(d(2)),
                created_to: Some(d(4)),
                ..q()
            }
        ),
        ["cyd", "dee"]
    );
    assert_eq!(
        first_names(
            c,
            UserQuery {
                last_login: LastLogin::Never,
                ..q()
            }
        ),
        ["cyd", "eve", "hal"]
    );
    assert_eq!(
        first_names(
            c,
            UserQuery {
                last_login: LastLogin::Between(Some(d(10)), None),
                ..q()
            }
        ),
        ["ann", "bob", "fay"]
    );
    assert_eq!(
        first_names(
            c,
            UserQuery {
                last_login: LastLogin::Between(None, Some(d(10))),
                ..q()
            }
        ),
        ["dee", "gus"]
    );
});

both!(sorts_both_ways_and_paginates_with_total, |db: &TestDb| {
    let c = &mut *db.conn();
    seed(c);
    let q = |sort, dir| UserQuery {
        sort,
        dir,
        limit: 100,
        ..Default::default()
    };
    let by = |c: &mut DbConnection, sort, dir| {
        emails(c, &q(sort, dir))
            .into_iter()
            .map(|e| e[..3].to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        by(c, SortKey::Created, SortDir::Asc),
        ["ann", "bob", "cyd", "dee", "eve", "fay", "gus", "hal"]
    );
    assert_eq!(
        by(c, SortKey::Created, SortDir::Desc),
        ["hal", "gus", "fay", "eve", "dee", "cyd", "bob", "ann"]
    );
    assert_eq!(
        by(c, SortKey::Email, SortDir::Asc),
        ["ann", "bob", "cyd", "dee", "eve", "fay", "gus", "hal"]
    );
    assert_eq!(
        by(c, SortKey::Name, SortDir::Desc),
        ["hal", "gus", "fay", "eve", "dee", "cyd", "bob", "ann"]
    );
    // Never-signed-in users come last in both directions, on both backends.
    assert_eq!(
        by(c, SortKey::LastLogin, SortDir::Desc),
        ["fay", "bob", "ann", "dee", "gus", "hal", "eve", "cyd"]
    );
    assert_eq!(
        by(c, SortKey::LastLogin, SortDir::Asc),
        ["gus", "dee", "ann", "bob", "fay", "cyd", "eve", "hal"]
    );

    let page = |n| UserQuery {
        sort: SortKey::Email,
        dir: SortDir::Asc,
        page: n,
        limit: 3,
        ..Default::default()
    };
    let p2 = page(2).run_scoped(c, None).expect("page 2");
    assert_eq!(p2.total, 8);
    assert_eq!(p2.pages(), 3);
    assert_eq!(
        p2.items.iter().map(|u| &u.email[..3]).collect::<Vec<_>>(),
        ["dee", "eve", "fay"]
    );
    let p4 = page(4).run_scoped(c, None).expect("page 4");
    assert!(p4.items.is_empty());
    assert_eq!(p4.total, 8);

    for (p, l) in [(0, 10), (-1, 10), (1, 0), (1, 101), (1, -5)] {
        let bad = UserQuery {
            page: p,
            limit: l,
            ..Default::default()
        };
        assert!(
            matches!(bad.run_scoped(c, None), Err(CoreError::Invalid { .. })),
            "page {p} limit {l}"
        );
    }
});

both!(org_admins_see_only_their_organization, |db: &TestDb| {
    let c = &mut *db.conn();
    let seed = seed(c);
    let bob = users::find_by_email(c, "bob@acme.com")
        .expect("find")
        .expect("bob");
    let admin = Actor::user(bob.id, None, vec![(seed.acme, OrgRole::Admin)]);
    let all = UserQuery::default().run(c, &admin).expect("run");
    assert_eq!(all.total, 3);
    assert!(all.items.iter().all(|u| u.email.ends_with("@acme.com")));
    // Asking for another organization through the filter yields nothing.
    let other = UserQuery {
        organization: Some(seed.globex),
        ..Default::default()
    }
    .run(c, &admin)
    .expect("run");
    assert_eq!(other.total, 0);
    // A plain member sees nothing; staff see everyone.
    let member = Actor::user(bob.id, None, vec![(seed.acme, OrgRole::Member)]);
    assert!(matches!(
        UserQuery::default().run(c, &member),
        Err(CoreError::Forbidden)
    ));
    let viewer = Actor::user(bob.id, Some(StaffRole::Viewer), vec![]);
    assert_eq!(UserQuery::default().run(c, &viewer).expect("run").total, 8);
});

both!(
    intersects_id_sets_and_counts_searches_exactly,
    |db: &TestDb| {
        let c = &mut *db.conn();
        let seed = seed(c);
        let q = UserQuery::default;
        let id_of = |c: &mut DbConnection, email: &str| -> i64 {
            users_t::table
                .filter(users_t::email.eq(email))
                .select(users_t::id)
                .first(c)
                .expect("user")
        };
        // Ann owns both organizations: a role in any organization lists her twice.
        let ann = id_of(c, "ann@acme.com");
        organizations::add_member(c, &Actor::system(), seed.globex, ann, OrgRole::Owner)
            .expect("second membership");
        let run = |c: &mut DbConnection, q: &UserQuery, scope: Option<&[i64]>| {
            let page = q.run_scoped(c, scope).expect("query");
            let mut names: Vec<String> =
                page.items.iter().map(|u| u.email[..3].to_owned()).collect();
            names.sort();
            (names, page.total)
        };
        let owners_tagged = UserQuery {
            org_role: Some(OrgRole::Owner),
            tags_any: vec![seed.vip, seed.beta],
            ..q()
        };
        assert_eq!(run(c, &owners_tagged, None), (vec!["ann".to_owned()], 1));
        let acme_vip_or_beta_all_vip = UserQuery {
            tags_any: vec![seed.vip, seed.beta],
            tags_all: vec![seed.vip, seed.vip],
            ..q()
        };
        assert_eq!(
            run(c, &acme_vip_or_beta_all_vip, Some(&[seed.acme])),
            (vec!["ann".to_owned(), "bob".to_owned()], 2)
        );
        let globex_scope_acme_filter = UserQuery {
            organization: Some(seed.acme),
            ..q()
        };
        assert_eq!(
            run(c, &globex_scope_acme_filter, Some(&[seed.globex])),
            (vec!["ann".to_owned()], 1)
        );
        // A search alone, a search with a set, and a search's later page.
        let acme = UserQuery {
            search: Some(" ACME ".into()),
            ..q()
        };
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(run(c, &acme, None), (names(&["ann", "bob", "cyd"]), 3));
        let acme_beta = UserQuery {
            tags_any: vec![seed.beta],
            ..acme.clone()
        };
        assert_eq!(run(c, &acme_beta, None), (names(&["bob", "cyd"]), 2));
        let second = UserQuery {
            page: 2,
            limit: 2,
            ..acme.clone()
        };
        assert_eq!(run(c, &second, None), (names(&["ann"]), 3));
        let none = UserQuery {
            search: Some("no such user".into()),
            ..q()
        };
        assert_eq!(run(c, &none, None), (Vec::new(), 0));
    }
);

both!(
    a_count_past_the_cap_is_a_lower_bound_on_postgresql_only,
    |db: &TestDb| {
        use diesel::connection::SimpleConnection;
        use frontdesk_core::users::query::COUNT_CAP;
        let c = &mut *db.conn();
        let n = COUNT_CAP + 3;
        c.batch_execute(&format!(
            "WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < {n}) \
             INSERT INTO users (email, first_name, created_at, updated_at) \
             SELECT 'bulk' || n || '@example.com', 'Bulk', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP FROM g"
        ))
        .expect("insert the users");
        let since = NaiveDateTime::parse_from_str("2000-01-01 00:00:00", "%Y-%m-%d %H:%M:%S")
            .expect("date");
        // Created since 2000: every user, through the general count.
        let all = UserQuery {
            created_from: Some(since),
            ..Default::default()
        };
        let first = all.run_scoped(c, None).expect("page 1");
        assert_eq!(first.items.len(), 50);
        let last = UserQuery {
            page: n / 50 + 1,
            ..all.clone()
        };
        let last = last.run_scoped(c, None).expect("last page");
        if db.kind == frontdesk_core::db::BackendKind::Postgres {
            // Counting stops at the cap; the page past it still loads.
            assert_eq!((first.total, first.total_is_exact), (COUNT_CAP, false));
            assert_eq!((last.total, last.total_is_exact), (COUNT_CAP, false));
        } else {
            assert_eq!((first.total, first.total_is_exact), (n, true));
        }
        assert_eq!(last.items.len(), 3, "the users past the cap are listed");
        // Under the cap the count is exact on both backends.
        c.batch_execute(
            "UPDATE users SET created_at = '1999-06-01 00:00:00' \
             WHERE email IN ('bulk1@example.com', 'bulk2@example.com', 'bulk3@example.com')",
        )
        .expect("backdate three");
        let few = UserQuery {
            created_to: Some(since),
            ..Default::default()
        };
        let few = few.run_scoped(c, None).expect("a few");
        assert_eq!((few.total, few.total_is_exact), (3, true));
    }
);

// Every page of a set filter (an organization and/or role, the organization
// scope, one tag, tags any of) in sign-up order, both ways, equals the set's
// users sorted by `(created_at, id)` from the tables themselves. Memberships
// and tags are written by every path (a new user's organization, a second
// organization, an assigned tag, an import), and the sign-up times are moved
// after the sets exist, several users sharing one: on PostgreSQL those pages
// are read from the copy of `created_at` in `memberships` and `user_tags`,
// which must follow both.
both!(set_pages_follow_the_sign_up_order, |db: &TestDb| {
    use frontdesk_core::imports::{self, ImportConfig, ImportMode, ImportOptions};
    use frontdesk_core::schema::{memberships as m_t, user_tags as t_t};
    let c = &mut *db.conn();
    let sys = Actor::system();
    let org = |c: &mut DbConnection, slug: &str| {
        organizations::create(c, &sys, slug, slug, "")
            .expect("org")
            .id
    };
    let (a, b, third) = (org(c, "a"), org(c, "b"), org(c, "c"));
    let tag = |c: &mut DbConnection, name: &str| tags::create(c, &sys, name).expect("tag").id;
    let (t1, t2, t3) = (tag(c, "t1"), tag(c, "t2"), tag(c, "t3"));
    for i in 0..30_i64 {
        let role = if i % 3 == 0 {
            OrgRole::Admin
        } else {
            OrgRole::Member
        };
        let u = users::create(
            c,
            &sys,
            NewUser {
                email: format!("u{i}@example.com"),
                organization: (i % 2 == 0).then_some((a, role)),
                ..Default::default()
            },
        )
        .expect("user");
        if i % 3 == 0 {
            let role = if i % 2 == 0 {
                OrgRole::Admin
            } else {
                OrgRole::Owner
            };
            organizations::add_member(c, &sys, b, u.id, role).expect("member");
        }
        for (t, on) in [(t1, i % 2 == 1), (t2, i % 3 == 1), (t3, i % 5 == 0)] {
            if on {
                tags::assign(c, &sys, u.id, t).expect("tag");
            }
        }
    }
    let csv = "email,first_name,last_name,organization,role,tags\n\
               i0@example.com,I,Zero,c,admin,t2\n\
               i1@example.com,I,One,c,member,t3|t1\n\
               i2@example.com,I,Two,a,admin,t3\n\
               i3@example.com,I,Three,c,member,\n";
    let report = imports::import_bytes(
        c,
        &sys,
        &ImportConfig::default(),
        &ImportOptions {
            mode: ImportMode::Apply,
            source_name: "sets.csv".into(),
            ..ImportOptions::default()
        },
        csv.as_bytes(),
        &mut |_| {},
    )
    .expect("import");
    assert_eq!(report.created, 4, "{report:?}");
    // The import gives the copy itself on PostgreSQL (no trigger call).
    assert_copies_follow_users(c);
    // Sign-up times moved after the sets were written: ten distinct days,
    // several users on each, in an order unrelated to the ids.
    let t0 = chrono::NaiveDate::from_ymd_opt(2025, 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .expect("date");
    let ids: Vec<i64> = users_t::table
        .select(users_t::id)
        .order(users_t::id)
        .load(c)
        .expect("ids");
    for (n, id) in ids.iter().enumerate() {
        let day = (n as i64 * 7) % 10;
        diesel::update(users_t::table.find(id))
            .set(users_t::created_at.eq(t0 + Duration::days(day)))
            .execute(c)
            .expect("date");
    }
    // A membership written after the move.
    organizations::add_member(c, &sys, third, ids[5], OrgRole::Admin).expect("late member");

    let created: HashMap<i64, NaiveDateTime> = users_t::table
        .select((users_t::id, users_t::created_at))
        .load(c)
        .expect("created")
        .into_iter()
        .collect();
    let members: Vec<(i64, i64, String)> = m_t::table
        .select((m_t::user_id, m_t::organization_id, m_t::role))
        .load(c)
        .expect("memberships");
    let tagged: Vec<(i64, i64)> = t_t::table
        .select((t_t::user_id, t_t::tag_id))
        .load(c)
        .expect("tags");
    let expect = |set: Vec<i64>, dir: SortDir| {
        let mut v: Vec<i64> = set;
        v.sort_unstable();
        v.dedup();
        v.sort_by_key(|id| (created[id], *id));
        if dir == SortDir::Desc {
            v.reverse();
        }
        v
    };
    let in_orgs = |orgs: &[i64], role: Option<&str>| -> Vec<i64> {
        members
            .iter()
            .filter(|(_, o, r)| orgs.contains(o) && role.is_none_or(|x| x == r))
            .map(|(u, _, _)| *u)
            .collect()
    };
    let with_role = |role: &str| -> Vec<i64> {
        members
            .iter()
            .filter(|(_, _, r)| r == role)
            .map(|(u, _, _)| *u)
            .collect()
    };
    let with_tags = |tags: &[i64]| -> Vec<i64> {
        tagged
            .iter()
            .filter(|(_, t)| tags.contains(t))
            .map(|(u, _)| *u)
            .collect()
    };
    let q = UserQuery::default;
    // (name, query, organization scope, the set's user ids)
    type Case = (&'static str, UserQuery, Option<Vec<i64>>, Vec<i64>);
    let cases: Vec<Case> = vec![
        (
            "org a",
            UserQuery {
                organization: Some(a),
                ..q()
            },
            None,
            in_orgs(&[a], None),
        ),
        (
            "org b admins",
            UserQuery {
                organization: Some(b),
                org_role: Some(OrgRole::Admin),
                ..q()
            },
            None,
            in_orgs(&[b], Some("admin")),
        ),
        (
            "admins anywhere",
            UserQuery {
                org_role: Some(OrgRole::Admin),
                ..q()
            },
            None,
            with_role("admin"),
        ),
        (
            "tag t1",
            UserQuery {
                tags_all: vec![t1, t1],
                ..q()
            },
            None,
            with_tags(&[t1]),
        ),
        (
            "tags t2 or t3",
            UserQuery {
                tags_any: vec![t3, t2],
                ..q()
            },
            None,
            with_tags(&[t2, t3]),
        ),
        ("scope a", q(), Some(vec![a]), in_orgs(&[a], None)),
        (
            "scope a, b, c",
            q(),
            Some(vec![third, a, b]),
            in_orgs(&[a, b, third], None),
        ),
    ];
    for (name, query, scope, set) in cases {
        let distinct: std::collections::HashSet<i64> = set.iter().copied().collect();
        assert!(distinct.len() > 4, "{name}: a set of several pages");
        for dir in [SortDir::Desc, SortDir::Asc] {
            let want = expect(set.clone(), dir);
            let mut got = Vec::new();
            for page in 1.. {
                let p = UserQuery {
                    sort: SortKey::Created,
                    dir,
                    limit: 4,
                    page,
                    ..query.clone()
                }
                .run_scoped(c, scope.as_deref())
                .expect("query");
                assert_eq!(p.total, want.len() as i64, "{name} {dir:?}: total");
                if p.items.is_empty() {
                    break;
                }
                got.extend(p.items.iter().map(|u| u.id));
            }
            assert_eq!(got, want, "{name} {dir:?}");
        }
    }
    assert_copies_follow_users(c);
});

/// On PostgreSQL, every `user_created_at` copy in `memberships` and
/// `user_tags` equals its user's `created_at` (SQLite has no copy).
fn assert_copies_follow_users(c: &mut DbConnection) {
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    if c.kind() != frontdesk_core::db::BackendKind::Postgres {
        return;
    }
    for table in ["memberships", "user_tags"] {
        let stale = diesel::sql_query(format!(
            "SELECT count(*) AS n FROM {table} s JOIN users u ON u.id = s.user_id \
             WHERE s.user_created_at IS DISTINCT FROM u.created_at"
        ))
        .get_result::<N>(c)
        .expect("copy")
        .n;
        assert_eq!(stale, 0, "{table}: copies of created_at that differ");
    }
}

// On PostgreSQL a deep page of a small set of matches is found by reading
// every match first and sorting them (the matches-first page), where the
// planner would walk the sort's index past most users. Every sort, both
// ways, every page: the same ids as the index walk. The walk is what the
// query takes with the real number of users; a row added to the kept count
// of users (a billion more) makes the same queries take the matches-first
// page.
#[test]
fn a_deep_page_read_matches_first_equals_the_index_walk() {
    use diesel::connection::SimpleConnection;
    let Some(db) = TestDb::postgres() else {
        return;
    };
    let c = &mut *db.conn();
    let sys = Actor::system();
    let surnames = ["Abel", "abel", "Baker", "Zed", "Åberg"];
    for i in 0..300 {
        // 60 users share "shared" in their first name; names, sign-up times,
        // sign-ins and activity tie in places; some never signed in.
        let first = if i % 5 == 0 { "Shared" } else { "Other" };
        let u = users::create(
            c,
            &sys,
            NewUser {
                email: format!("p{:03}@example.com", (i * 37) % 300),
                first_name: format!("{first}{}", i % 3),
                last_name: surnames[i % surnames.len()].to_owned(),
                ..Default::default()
            },
        )
        .expect("user");
        let day = |d: usize| format!("'2025-01-01'::timestamp + interval '{d} days'");
        c.batch_execute(&format!(
            "UPDATE users SET created_at = {}, last_login_at = {}, last_active_at = {} \
             WHERE id = {}",
            day(i % 7),
            if i % 4 == 0 {
                "NULL".into()
            } else {
                day(i % 11)
            },
            if i % 6 == 0 {
                "NULL".into()
            } else {
                day(i % 13)
            },
            u.id
        ))
        .expect("times");
    }
    let sorts = [
        SortKey::Email,
        SortKey::Name,
        SortKey::Created,
        SortKey::LastLogin,
        SortKey::LastActive,
    ];
    let pages = |c: &mut DbConnection| -> Vec<Vec<i64>> {
        let mut all = Vec::new();
        for sort in sorts {
            for dir in [SortDir::Asc, SortDir::Desc] {
                let mut ids = Vec::new();
                for page in 1..=9 {
                    let q = UserQuery {
                        search: Some("shared".into()),
                        sort,
                        dir,
                        page,
                        limit: 7,
                        ..Default::default()
                    };
                    let p = q.run_scoped(c, None).expect("page");
                    assert_eq!((p.total, p.total_is_exact), (60, true));
                    ids.extend(p.items.iter().map(|u| u.id));
                }
                assert_eq!(ids.len(), 60, "{sort:?} {dir:?}");
                all.push(ids);
            }
        }
        all
    };
    let walked = pages(c);
    c.batch_execute("INSERT INTO set_counts (counted, key, n) VALUES ('users', 0, 1000000000)")
        .expect("a billion more users, as far as the rule knows");
    let read_first = pages(c);
    assert_eq!(read_first, walked);
}
