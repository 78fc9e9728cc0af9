//! Typed profile fields and users-list filters through real HTTP: each kind
//! checked on the user page form, the API update and the CSV import; the
//! declared fields as list columns, export columns and filters (page, API,
//! export), an undeclared filter refused by name; the demo's extension
//! filter narrowing the page and its count.

use actix_web::http::StatusCode;
use actix_web::test as actix_test;
use diesel::prelude::*;
use frontdesk::core::profile::ProfileField;
use frontdesk_core::imports::{self, ImportConfig, ImportMode, ImportOptions};
use frontdesk_core::schema::users;
use frontdesk_core::Actor;
use serde_json::{json, Value};

use crate::admin_fixture::{self as fx};
use crate::both;
use crate::extensions::admin_notes::{self, NotesAdmin};
use crate::host_app;
use crate::support::TestDb;
use crate::web_app::{block_on, builder};

fn fields() -> Vec<ProfileField> {
    vec![
        ProfileField::text("company", "Company").max_length(20),
        ProfileField::boolean("beta", "Beta tester").list_column(),
        ProfileField::integer("seats", "Seats").range(1, 500),
        ProfileField::date("renews", "Renews on"),
    ]
}

fn profile_of(db: &TestDb, id: i64) -> Value {
    let mut conn = db.conn();
    let raw: String = users::table
        .find(id)
        .select(users::profile)
        .first(&mut *conn)
        .expect("profile");
    serde_json::from_str(&raw).expect("json")
}

fn set_profile(db: &TestDb, id: i64, p: Value) {
    let mut conn = db.conn();
    diesel::update(users::table.find(id))
        .set(users::profile.eq(p.to_string()))
        .execute(&mut *conn)
        .expect("set profile");
}

fn emails(v: &Value) -> Vec<String> {
    let mut e: Vec<String> = v["users"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|u| u["email"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    e.sort();
    e
}

both!(
    typed_fields_are_checked_on_every_path_and_filter_in_sql,
    |db| {
        let cast = fx::cast(db);
        admin_notes::create_table(&mut db.conn()).expect("notes table");
        let mut b = builder(db).extension(NotesAdmin);
        for f in fields() {
            b = b.profile_field(f);
        }
        let fd = b.build().expect("frontdesk");
        let (alice, bob) = (cast.alice.id, cast.bob.id);
        set_profile(
            db,
            alice,
            json!({"plan": "pro", "beta": true, "legacy": "kept"}),
        );
        set_profile(db, bob, json!({"plan": "free"}));
        admin_notes::add(&mut db.conn(), &Actor::system(), bob, "a note").expect("note");
        let alice_email = cast.alice.email.clone();
        let bob_email = cast.bob.email.clone();
        block_on(async move {
            let app = host_app!(fd);
            let (mut b, csrf) = fx::signed_in(db, cast.get("staff_admin"));

            // The user page renders each declared field by its kind.
            let page = b.get(&app, &format!("/admin/users/{alice}")).await;
            assert_eq!(page.status, StatusCode::OK);
            assert!(
                page.body.contains(r#"<select name="profile.plan""#),
                "choice as a select"
            );
            assert!(page
                .body
                .contains(r#"<option value="pro" selected>pro</option>"#));
            assert!(page
                .body
                .contains(r#"type="checkbox" name="profile.beta" value="yes" checked"#));
            assert!(page
                .body
                .contains(r#"name="profile.seats" value="" type="number""#));
            assert!(page.body.contains(r#"type="date""#));
            assert!(
                page.body.contains("The user&#x27;s subscription plan."),
                "help text"
            );

            // Edit form: each kind's bad value is refused by name, nothing saved.
            let base = |plan: &'static str,
                        seats: &'static str,
                        renews: &'static str,
                        company: &'static str| {
                vec![
                    ("first_name", "Alice"),
                    ("last_name", "A"),
                    ("profile.plan", plan),
                    ("profile.seats", seats),
                    ("profile.renews", renews),
                    ("profile.company", company),
                    ("profile.legacy", "kept"),
                ]
            };
            let before = profile_of(db, alice);
            for (form, says) in [
                (
                    base("gold", "", "", ""),
                    "profile field plan is invalid: must be one of: free, pro",
                ),
                (
                    base("pro", "0", "", ""),
                    "profile field seats is invalid: must be between 1 and 500",
                ),
                (
                    base("pro", "x", "", ""),
                    "profile field seats is invalid: must be a whole number",
                ),
                (
                    base("pro", "", "31/12/2027", ""),
                    "profile field renews is invalid: must be a date",
                ),
                (
                    base("pro", "", "", "a company name far too long"),
                    "profile field company is invalid: must be at most 20",
                ),
            ] {
                let mut form = form;
                form.push(("csrf_token", &csrf));
                let r = b
                    .post(&app, &format!("/admin/users/{alice}/edit"), &form)
                    .await;
                assert_eq!(r.status, StatusCode::SEE_OTHER, "{form:?}");
                let shown = b.get(&app, r.location()).await;
                assert!(shown.body.contains(says), "{says}: {}", shown.body.len());
                assert_eq!(profile_of(db, alice), before, "nothing saved for {form:?}");
            }
            // A good edit: typed values stored; the unticked box is false.
            let mut form = base("free", "12", "2027-12-31", "Acme");
            form.push(("csrf_token", &csrf));
            let r = b
                .post(&app, &format!("/admin/users/{alice}/edit"), &form)
                .await;
            assert_eq!(r.status, StatusCode::SEE_OTHER);
            assert_eq!(
                profile_of(db, alice),
                json!({"plan": "free", "beta": false, "seats": 12, "renews": "2027-12-31",
                "company": "Acme", "legacy": "kept"})
            );

            // API update: the same check, the error names profile.<key>.
            let patch = |body: Value| {
                actix_test::TestRequest::patch()
                    .uri(&format!("/admin/api/v1/users/{alice}"))
                    .insert_header(("x-csrf-token", csrf.as_str()))
                    .insert_header(("content-type", "application/json"))
                    .set_payload(body.to_string())
            };
            let bad = b
                .send(
                    &app,
                    patch(json!({"profile": {"plan": "pro", "beta": "maybe"}})),
                )
                .await;
            assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.body);
            let v: Value = serde_json::from_str(&bad.body).expect("problem");
            assert_eq!(v["errors"][0]["field"], "profile.beta", "{v}");
            let range = b
                .send(
                    &app,
                    patch(json!({"profile": {"plan": "pro", "seats": 501}})),
                )
                .await;
            assert_eq!(range.status, StatusCode::BAD_REQUEST);
            assert!(range.body.contains("between 1 and 500"), "{}", range.body);
            assert_eq!(profile_of(db, alice)["plan"], "free", "nothing saved");
            let ok = b
                .send(
                    &app,
                    patch(json!({"profile": {"plan": "pro", "beta": true, "seats": 3}})),
                )
                .await;
            assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
            assert_eq!(
                profile_of(db, alice),
                json!({"plan": "pro", "beta": true, "seats": 3})
            );

            // The OpenAPI document describes the declared fields' types.
            let doc = b.get(&app, "/admin/api/v1/openapi.json").await;
            assert_eq!(doc.status, StatusCode::OK);
            let doc: Value = serde_json::from_str(&doc.body).expect("json");
            let profile = &doc["components"]["schemas"]["UserPatch"]["properties"]["profile"];
            // An optional field also takes null or "" (which clear it).
            let declared = |k: &str| {
                let p = &profile["properties"][k];
                match p.get("anyOf") {
                    Some(any) => {
                        assert_eq!(any[1], json!({"type": "null"}), "{k}");
                        any[0].clone()
                    }
                    None => p.clone(),
                }
            };
            assert_eq!(
                declared("plan")["enum"],
                json!(["free", "pro"]),
                "{profile}"
            );
            assert_eq!(declared("beta")["type"], "boolean");
            assert_eq!(declared("seats")["maximum"], 500);
            assert_eq!(declared("renews")["format"], "date");
            assert!(profile["properties"]["beta"].get("anyOf").is_some());
            // The filterable fields are query parameters of the list and export.
            for path in ["/users", "/export"] {
                let params = doc["paths"][path]["get"]["parameters"]
                    .as_array()
                    .expect("parameters");
                let param = |n: &str| params.iter().find(|p| p["name"] == n).cloned();
                assert_eq!(
                    param("profile.plan").expect("profile.plan")["schema"]["enum"],
                    json!(["free", "pro"]),
                    "{path}"
                );
                assert_eq!(
                    param("profile.beta").expect("profile.beta")["schema"]["type"],
                    "boolean"
                );
                assert!(param("profile.seats").is_none(), "integers are not filters");
                assert!(
                    param("ext.notes.has_notes").expect("extension filter")["schema"]["enum"]
                        .as_array()
                        .is_some_and(|v| v.contains(&json!("yes"))),
                    "{path}"
                );
            }

            // Filters: admin page, API and export, in SQL on both backends.
            let list = b.get(&app, "/admin/users?profile.plan=pro").await;
            assert_eq!(list.status, StatusCode::OK);
            assert!(list.body.contains(&alice_email) && !list.body.contains(&bob_email));
            assert!(
                list.body.contains(r#"<select name="profile.plan">"#),
                "filter select"
            );
            assert!(list
                .body
                .contains(r#"<option value="pro" selected>pro</option>"#));
            assert!(
                list.body.contains(r#"<th scope="col">Plan</th>"#),
                "list column"
            );
            assert!(list.body.contains(r#"<td data-label="Plan">pro</td>"#));
            assert!(list
                .body
                .contains(r#"<td data-label="Beta tester">yes</td>"#));
            let api = b
                .get(&app, "/admin/api/v1/users?profile.plan=free&limit=100")
                .await;
            assert_eq!(api.status, StatusCode::OK, "{}", api.body);
            let v: Value = serde_json::from_str(&api.body).expect("json");
            assert!(emails(&v).contains(&bob_email) && !emails(&v).contains(&alice_email));
            let api = b.get(&app, "/admin/api/v1/users?profile.beta=yes").await;
            let v: Value = serde_json::from_str(&api.body).expect("json");
            assert_eq!(emails(&v), vec![alice_email.clone()]);
            assert_eq!(v["pagination"]["total"].as_i64(), Some(1), "{v}");
            let csv = b
                .get(
                    &app,
                    "/admin/api/v1/export?profile.plan=pro&fields=email,plan,beta,seats",
                )
                .await;
            assert_eq!(csv.status, StatusCode::OK, "{}", csv.body);
            assert_eq!(
                csv.body.replace("\r\n", "\n").trim(),
                format!("email,plan,beta,seats\n{alice_email},pro,true,3")
            );

            // Undeclared or not filterable keys and bad values: a 400 naming them.
            for uri in [
                "/admin/api/v1/users?profile.nope=1",
                "/admin/api/v1/users?profile.company=Acme",
                "/admin/api/v1/users?profile.plan=gold",
                // Empty is none of the choices on the API (a page reads it as "any").
                "/admin/api/v1/users?profile.plan=",
                "/admin/api/v1/export?ext.notes.has_notes=",
                "/admin/api/v1/users?ext.notes.has_notes=maybe",
                "/admin/api/v1/export?profile.x%27)%20OR%201=1--=1",
                "/admin/users?profile.nope=1",
                "/admin/users?profile.plan=gold",
                "/admin/users?ext.other.x=yes",
            ] {
                let r = b.get(&app, uri).await;
                assert_eq!(r.status, StatusCode::BAD_REQUEST, "{uri}: {}", r.body);
                assert!(
                    r.body.contains("profile.") || r.body.contains("ext."),
                    "{uri}: {}",
                    r.body
                );
            }

            // The extension filter narrows the page and its count.
            let with = b.get(&app, "/admin/users?ext.notes.has_notes=yes").await;
            assert_eq!(with.status, StatusCode::OK);
            assert!(with.body.contains(&bob_email) && !with.body.contains(&alice_email));
            assert!(with.body.contains(r#"<select name="ext.notes.has_notes">"#));
            let api = b
                .get(&app, "/admin/api/v1/users?ext.notes.has_notes=yes")
                .await;
            let v: Value = serde_json::from_str(&api.body).expect("json");
            assert_eq!(emails(&v), vec![bob_email.clone()], "{v}");
            let all = b.get(&app, "/admin/api/v1/users?limit=1").await;
            let without = b
                .get(&app, "/admin/api/v1/users?ext.notes.has_notes=no&limit=1")
                .await;
            let total = |s: &str| {
                let v: Value = serde_json::from_str(s).expect("json");
                v["pagination"]["total"].as_i64().expect("total")
            };
            assert_eq!(total(&without.body), total(&all.body) - 1);
        });
    }
);

both!(import_checks_each_typed_cell_as_a_row_error, |db| {
    let cfg = ImportConfig {
        profile_fields: vec![
            ProfileField::choice("plan", "Plan", ["free", "pro"]).required(),
            ProfileField::boolean("beta", "Beta"),
            ProfileField::integer("seats", "Seats"),
            ProfileField::date("renews", "Renews"),
        ],
        ..ImportConfig::default()
    };
    let csv = "email,first_name,last_name,plan,beta,seats,renews\n\
               good@example.com,Good,One,pro,yes,4,2027-01-31\n\
               badplan@example.com,Bad,Plan,gold,,,\n\
               noplan@example.com,No,Plan,,,,\n\
               badbool@example.com,Bad,Bool,free,maybe,,\n\
               badint@example.com,Bad,Int,free,,4.5,\n\
               baddate@example.com,Bad,Date,free,,,tomorrow\n";
    let opts = ImportOptions {
        mode: ImportMode::Apply,
        source_name: "typed.csv".into(),
        ..ImportOptions::default()
    };
    let report = imports::import_bytes(
        &mut db.conn(),
        &Actor::system(),
        &cfg,
        &opts,
        csv.as_bytes(),
        &mut |_| {},
    )
    .expect("import");
    assert_eq!((report.created, report.rejected), (1, 5));
    let reasons: Vec<(u64, String, String)> = report
        .rows
        .iter()
        .filter(|r| r.code == "invalid_profile_field")
        .map(|r| (r.row, r.email.clone(), r.reason.clone()))
        .collect();
    assert_eq!(reasons.len(), 5, "{reasons:?}");
    assert!(
        reasons[0].0 == 3
            && reasons[0].2.contains("plan")
            && reasons[0].2.contains("one of: free, pro"),
        "{reasons:?}"
    );
    assert!(
        reasons[1].2.contains("plan is invalid: is required"),
        "{reasons:?}"
    );
    assert!(reasons[2].2.contains("beta"), "{reasons:?}");
    assert!(reasons[3].2.contains("seats"), "{reasons:?}");
    assert!(
        reasons[4].0 == 7 && reasons[4].2.contains("renews"),
        "{reasons:?}"
    );
    let mut conn = db.conn();
    let stored: String = users::table
        .filter(users::email.eq("good@example.com"))
        .select(users::profile)
        .first(&mut *conn)
        .expect("good row");
    assert_eq!(
        serde_json::from_str::<Value>(&stored).expect("json"),
        json!({"plan": "pro", "beta": true, "seats": 4, "renews": "2027-01-31"})
    );
    let template = imports::template_columns(&cfg, &Actor::system());
    assert!(template.ends_with(&[
        "plan".into(),
        "beta".into(),
        "seats".into(),
        "renews".into()
    ]));
});
