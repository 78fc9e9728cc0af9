//! CSV export: formula neutralisation, the users query's filters, organization
//! scope, the audit event, and the round trip export → import.

use diesel::prelude::*;
use frontdesk_core::authz::{Actor, OrgRole, StaffRole};
use frontdesk_core::db::BackendKind;
use frontdesk_core::exports::{self, ExportError, ExportField, ExportRequest};
use frontdesk_core::imports::{self, ImportMode, ImportOptions};
use frontdesk_core::schema::{audit_events, memberships, organizations as orgs_t};
use frontdesk_core::users::query::UserQuery;
use frontdesk_core::users::{self, NewUser, UserStatus};
use frontdesk_core::{organizations, tags};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

use crate::both;
use crate::imports::config;
use crate::support::TestDb;

fn profile(pairs: &[(&str, &str)]) -> Map<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect()
}

fn new_user(email: &str, first: &str, last: &str) -> NewUser {
    NewUser {
        email: email.into(),
        first_name: first.into(),
        last_name: last.into(),
        ..NewUser::default()
    }
}

fn export_as(
    db: &TestDb,
    actor: &Actor,
    fields: &str,
    query: UserQuery,
) -> Result<Vec<Vec<String>>, ExportError> {
    let fields = ExportField::parse_list(fields, &config().profile_fields)?;
    let mut out = Vec::new();
    exports::export(
        &mut db.conn(),
        actor,
        &ExportRequest::new(fields, query),
        &mut out,
        &mut |_| {},
    )?;
    Ok(parse(&out))
}

fn parse(bytes: &[u8]) -> Vec<Vec<String>> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(bytes)
        .records()
        .map(|r| {
            r.expect("exported CSV parses")
                .iter()
                .map(str::to_owned)
                .collect()
        })
        .collect()
}

fn sorted_by_email(query: UserQuery) -> UserQuery {
    UserQuery {
        sort: users::query::SortKey::Email,
        dir: users::query::SortDir::Asc,
        ..query
    }
}

both!(formula_cells_get_a_leading_quote, |db| {
    let mut c = db.conn();
    let sys = Actor::system();
    let mut u = new_user("ann@example.com", "=1+2", "+SUM(A1)");
    u.profile = profile(&[("company", "@cmd"), ("notes", "\tTab\r\nand -3")]);
    users::create(&mut c, &sys, u).expect("ann");
    let mut u = new_user("bob@example.com", "'=quoted", "Plain");
    u.profile = profile(&[("company", "-5"), ("notes", "\nlf")]);
    users::create(&mut c, &sys, u).expect("bob");
    drop(c);
    let rows = export_as(
        db,
        &sys,
        "email,first_name,last_name,company,notes",
        sorted_by_email(UserQuery::default()),
    )
    .expect("export");
    assert_eq!(
        rows,
        vec![
            vec!["email", "first_name", "last_name", "company", "notes"],
            vec![
                "ann@example.com",
                "'=1+2",
                "'+SUM(A1)",
                "'@cmd",
                "'\tTab\r\nand -3"
            ],
            vec!["bob@example.com", "''=quoted", "Plain", "'-5", "'\nlf"],
        ]
    );
});

both!(filters_and_search_of_the_users_query_apply, |db| {
    let mut c = db.conn();
    let sys = Actor::system();
    for (e, f) in [
        ("ann@example.com", "Ann"),
        ("bob@example.com", "Bob"),
        ("cleo@example.com", "Cleo"),
    ] {
        users::create(&mut c, &sys, new_user(e, f, "X")).expect("user");
    }
    let bob = users::find_by_email(&mut c, "bob@example.com")
        .expect("q")
        .expect("bob");
    users::suspend(&mut c, &sys, bob.id, "spam").expect("suspend");
    let beta = tags::create(&mut c, &sys, "beta").expect("tag");
    let cleo = users::find_by_email(&mut c, "cleo@example.com")
        .expect("q")
        .expect("cleo");
    tags::assign(&mut c, &sys, cleo.id, beta.id).expect("assign");
    drop(c);
    let emails = |q: UserQuery| -> Vec<String> {
        export_as(db, &sys, "email", sorted_by_email(q))
            .expect("export")
            .into_iter()
            .skip(1)
            .map(|r| r[0].clone())
            .collect()
    };
    assert_eq!(
        emails(UserQuery {
            status: Some(UserStatus::Suspended),
            ..UserQuery::default()
        }),
        vec!["bob@example.com"]
    );
    assert_eq!(
        emails(UserQuery {
            search: Some("CLEO".into()),
            ..UserQuery::default()
        }),
        vec!["cleo@example.com"]
    );
    assert_eq!(
        emails(UserQuery {
            tags_none: vec![beta.id],
            ..UserQuery::default()
        }),
        vec!["ann@example.com", "bob@example.com"]
    );
    let rows = export_as(
        db,
        &sys,
        "email,status,tags",
        sorted_by_email(UserQuery::default()),
    )
    .expect("export");
    assert_eq!(rows[2], vec!["bob@example.com", "suspended", ""]);
    // Never signed in: pending.
    assert_eq!(rows[3], vec!["cleo@example.com", "pending", "beta"]);
});

both!(export_streams_in_batches_and_is_audited, |db| {
    let mut c = db.conn();
    let sys = Actor::system();
    for i in 0..25 {
        users::create(
            &mut c,
            &sys,
            new_user(&format!("u{i:02}@example.com"), "U", "S"),
        )
        .expect("user");
    }
    let fields = ExportField::parse_list("email", &[]).expect("fields");
    let req = ExportRequest {
        batch_size: 10,
        ..ExportRequest::new(fields, sorted_by_email(UserQuery::default()))
    };
    let mut out = Vec::new();
    let mut batches = Vec::new();
    let s =
        exports::export(&mut c, &sys, &req, &mut out, &mut |n| batches.push(n)).expect("export");
    assert_eq!(s.rows, 25);
    assert_eq!(batches, vec![10, 20, 25]);
    let rows = parse(&out);
    assert_eq!(rows.len(), 26);
    assert_eq!(rows[1], vec!["u00@example.com"]);
    assert_eq!(rows[25], vec!["u24@example.com"]);
    let details: Vec<String> = audit_events::table
        .filter(audit_events::action.eq("users.export"))
        .select(audit_events::details)
        .load(&mut c)
        .expect("audit");
    assert_eq!(details.len(), 1);
    let d: Value = serde_json::from_str(&details[0]).expect("json");
    assert_eq!(
        (d["rows"].clone(), d["fields"].clone()),
        (json!(25), json!(["email"]))
    );
    assert!(ExportField::parse_list("email,nope", &[]).is_err());
    assert_eq!(
        exports::filename(
            chrono::NaiveDate::from_ymd_opt(2026, 11, 25)
                .and_then(|d| d.and_hms_opt(9, 0, 0))
                .expect("date")
        ),
        "users-2026-11-25.csv"
    );
});

both!(organization_admins_export_only_their_organization, |db| {
    let mut c = db.conn();
    let sys = Actor::system();
    let acme = organizations::create(&mut c, &sys, "acme", "Acme", "").expect("acme");
    let beta = organizations::create(&mut c, &sys, "beta", "Beta", "").expect("beta");
    let mut a = new_user("a@example.com", "A", "A");
    a.organization = Some((acme.id, OrgRole::Member));
    let a = users::create(&mut c, &sys, a).expect("a");
    organizations::add_member(&mut c, &sys, beta.id, a.id, OrgRole::Admin).expect("a in beta");
    let mut b = new_user("b@example.com", "B", "B");
    b.organization = Some((beta.id, OrgRole::Member));
    users::create(&mut c, &sys, b).expect("b");
    users::create(&mut c, &sys, new_user("nobody@example.com", "N", "N")).expect("n");
    drop(c);

    let all = export_as(
        db,
        &sys,
        "email,organization,role",
        sorted_by_email(UserQuery::default()),
    )
    .expect("staff export");
    assert_eq!(all[1], vec!["a@example.com", "acme|beta", "member|admin"]);
    assert_eq!(all.len(), 4);

    let admin = Actor::user(1000, None, vec![(acme.id, OrgRole::Admin)]);
    let rows = export_as(
        db,
        &admin,
        "email,organization,role",
        sorted_by_email(UserQuery::default()),
    )
    .expect("org export");
    // Only acme's users, and only their acme membership.
    assert_eq!(
        rows,
        vec![
            vec!["email", "organization", "role"],
            vec!["a@example.com", "acme", "member"]
        ]
    );
    let org_of: Vec<Option<i64>> = audit_events::table
        .filter(audit_events::action.eq("users.export"))
        .order(audit_events::id.asc())
        .select(audit_events::organization_id)
        .load(&mut db.conn())
        .expect("audit");
    assert_eq!(org_of, vec![None, Some(acme.id)]);

    let member = Actor::user(1001, None, vec![(acme.id, OrgRole::Member)]);
    let viewer = Actor::user(1002, Some(StaffRole::Viewer), vec![]);
    for who in [member, viewer] {
        let e = export_as(db, &who, "email", UserQuery::default()).expect_err("export allowed");
        assert!(matches!(e, ExportError::Forbidden), "{e:?}");
    }
});

type Snapshot = Vec<(
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Map<String, Value>,
    Vec<(String, String)>,
    Vec<String>,
)>;

fn snapshot(db: &TestDb) -> Snapshot {
    let mut c = db.conn();
    let page = UserQuery {
        limit: 100,
        ..sorted_by_email(UserQuery::default())
    }
    .run(&mut c, &Actor::system())
    .expect("users");
    page.items
        .into_iter()
        .map(|u| {
            let roles: Vec<(String, String)> = memberships::table
                .inner_join(orgs_t::table)
                .filter(memberships::user_id.eq(u.id))
                .order(orgs_t::slug.asc())
                .select((orgs_t::slug, memberships::role))
                .load(&mut c)
                .expect("roles");
            let tag_names = tags::tags_of(&mut c, u.id)
                .expect("tags")
                .into_iter()
                .map(|t| t.name)
                .collect();
            let p = u.profile_map();
            (
                u.email,
                u.first_name,
                u.last_name,
                u.display_name,
                u.staff_role,
                p,
                roles,
                tag_names,
            )
        })
        .collect()
}

fn seed_orgs(db: &TestDb) -> (i64, i64) {
    let mut c = db.conn();
    let sys = Actor::system();
    let acme = organizations::create(&mut c, &sys, "acme", "Acme", "acme.com").expect("acme");
    let open = organizations::create(&mut c, &sys, "open", "Open", "").expect("open");
    (acme.id, open.id)
}

both!(round_trip_export_then_import_into_an_empty_database, |db| {
    let (acme, open) = seed_orgs(db);
    let mut c = db.conn();
    let sys = Actor::system();
    let beta = tags::create(&mut c, &sys, "beta").expect("tag");
    let vip = tags::create(&mut c, &sys, "vip").expect("tag");
    let mut ann = new_user("ann@acme.com", "Ann", "Lee");
    ann.display_name = Some("Annie".into());
    ann.organization = Some((acme, OrgRole::Admin));
    ann.profile = profile(&[("company", "=Acme, \"Inc\""), ("notes", "multi\nline")]);
    let ann = users::create(&mut c, &sys, ann).expect("ann");
    tags::assign(&mut c, &sys, ann.id, beta.id).expect("tag");
    tags::assign(&mut c, &sys, ann.id, vip.id).expect("tag");
    let mut bob = new_user("bob@example.com", "Bob", "O'Brien");
    bob.staff_role = Some(StaffRole::Viewer);
    bob.organization = Some((open, OrgRole::Member));
    users::create(&mut c, &sys, bob).expect("bob");
    let mut g = new_user("g@acme.com", "-5", "@home");
    g.organization = Some((acme, OrgRole::Member));
    let g = users::create(&mut c, &sys, g).expect("g");
    organizations::add_member(&mut c, &sys, open, g.id, OrgRole::Owner).expect("g open");
    users::create(&mut c, &sys, new_user("plain@example.com", "'=x", "")).expect("plain");
    drop(c);
    let before = snapshot(db);

    let fields = exports::import_fields(&config().profile_fields);
    let mut out = Vec::new();
    exports::export(
        &mut db.conn(),
        &sys,
        &ExportRequest::new(fields, UserQuery::default()),
        &mut out,
        &mut |_| {},
    )
    .expect("export");

    let fresh = match db.kind {
        BackendKind::Sqlite => TestDb::sqlite(),
        BackendKind::Postgres => TestDb::postgres().expect("postgres"),
    };
    seed_orgs(&fresh);
    let opts = ImportOptions {
        mode: ImportMode::Strict,
        ..ImportOptions::default()
    };
    let r = imports::import_bytes(&mut fresh.conn(), &sys, &config(), &opts, &out, &mut |_| {})
        .expect("import");
    assert_eq!(
        (r.created, r.rejected, r.applied),
        (4, 0, true),
        "{:?}",
        r.rows
    );
    assert_eq!(snapshot(&fresh), before);
});

/// Every exported cell parses back as the stored value or `'` + value, and no
/// cell starts with a trigger character.
fn cells_are_safe_and_reversible(db: &TestDb) {
    let sys = Actor::system();
    let text = "[=+\\-@\t\r\n'\", a-zé0-9]{0,12}";
    let strategy = (
        text,
        text,
        proptest::string::string_regex(text).expect("regex"),
    );
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(48));
    let result = runner.run(&strategy, |(first, last, notes)| {
        let mut c = db.conn();
        diesel::delete(frontdesk_core::schema::users::table)
            .execute(&mut c)
            .expect("clear");
        let mut u = new_user("p@example.com", &first, &last);
        u.profile = profile(&[("notes", &notes), ("company", &format!("{last}{first}"))]);
        let Ok(stored) = users::create(&mut c, &sys, u) else {
            // Control characters in names are refused at creation; nothing to export.
            return Ok(());
        };
        drop(c);
        let rows = export_as(
            db,
            &sys,
            "first_name,last_name,notes,company",
            UserQuery::default(),
        )
        .expect("export");
        prop_assert_eq!(rows.len(), 2);
        let p = stored.profile_map();
        let originals = [
            stored.first_name.clone(),
            stored.last_name.clone(),
            p.get("notes")
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_owned(),
            p.get("company")
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_owned(),
        ];
        for (cell, original) in rows[1].iter().zip(originals.iter()) {
            prop_assert!(
                cell == original || *cell == format!("'{original}"),
                "{cell:?} vs {original:?}"
            );
            prop_assert!(
                !cell.starts_with(['=', '+', '-', '@', '\t', '\r', '\n', '\0']),
                "{cell:?}"
            );
            prop_assert_eq!(exports::unneutralize(cell), original.as_str());
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

both!(
    property_exported_cells_parse_back_and_never_start_with_a_trigger,
    |db| {
        cells_are_safe_and_reversible(db);
    }
);

proptest! {
    #[test]
    fn neutralize_is_reversible_and_safe(s in "\\PC{0,16}|[=+\\-@\t\r\n\0'][\\PC\t\r\n]{0,8}|'+[=+\\-@].{0,4}") {
        let n = exports::neutralize(&s);
        prop_assert!(!n.starts_with(['=', '+', '-', '@', '\t', '\r', '\n', '\0']));
        let quoted = format!("'{s}");
        prop_assert!(n == s || *n == quoted, "{:?}", n);
        prop_assert_eq!(exports::unneutralize(&n), s.as_str());
    }
}

both!(
    batches_follow_every_sort_order_without_gaps_or_repeats,
    |db| {
        use frontdesk_core::schema::users as users_t;
        use frontdesk_core::users::query::{SortDir, SortKey};
        let mut c = db.conn();
        let sys = Actor::system();
        let names = [
            ("Lee", "Ann"),
            ("Lee", "Ann"),
            ("Lee", "Bob"),
            ("Ng", "Cleo"),
            ("Abe", "Dan"),
            ("Ng", "Ann"),
            ("Zed", "Eve"),
        ];
        let same_time = chrono::NaiveDate::from_ymd_opt(2026, 1, 2)
            .and_then(|d| d.and_hms_opt(3, 4, 5))
            .expect("time");
        for (i, (last, first)) in names.iter().enumerate() {
            let u = users::create(
                &mut c,
                &sys,
                new_user(&format!("u{i}@example.com"), first, last),
            )
            .expect("user");
            // Ties on every key: equal sign-in and creation times for some users.
            let login = match i % 3 {
                0 => None,
                1 => Some(same_time),
                _ => Some(same_time + chrono::Duration::hours(i as i64)),
            };
            diesel::update(users_t::table.find(u.id))
                .set((
                    users_t::last_login_at.eq(login),
                    users_t::created_at.eq(same_time + chrono::Duration::minutes((i % 2) as i64)),
                ))
                .execute(&mut c)
                .expect("update");
        }
        for sort in [
            SortKey::Email,
            SortKey::Name,
            SortKey::Created,
            SortKey::LastLogin,
        ] {
            for dir in [SortDir::Asc, SortDir::Desc] {
                let q = UserQuery {
                    sort,
                    dir,
                    limit: 100,
                    ..UserQuery::default()
                };
                let expected: Vec<i64> = q
                    .run(&mut c, &sys)
                    .expect("page")
                    .items
                    .into_iter()
                    .map(|u| u.id)
                    .collect();
                let mut got = Vec::new();
                q.for_each_batch(
                    &mut c,
                    None,
                    2,
                    |_, batch| -> Result<(), frontdesk_core::CoreError> {
                        got.extend(batch.iter().map(|u| u.id));
                        Ok(())
                    },
                )
                .expect("batches");
                assert_eq!(got, expected, "{sort:?} {dir:?}");
            }
        }
    }
);
