//! `/import` and `/export` through the API: dry run, apply and strict with a
//! per-row report; the export streamed as formula-safe CSV, scoped per caller.

use actix_web::test as actix_test;
use diesel::prelude::*;
use frontdesk_core::schema::users as users_t;
use serde_json::json;

use crate::api_v1_support::*;
use crate::both_and_axum;
use crate::support::TestDb;
use crate::web_app::{block_on, frontdesk};

fn user_count(db: &TestDb) -> i64 {
    users_t::table
        .count()
        .get_result(&mut *db.conn())
        .expect("count")
}

const CSV: &str = "email,first_name,last_name,organization,role\n\
                   new1@acme.test,New,One,acme,member\n\
                   not-an-email,Bad,Row,acme,member\n\
                   new2@acme.test,=HYPERLINK(\"x\"),Two,acme,member\n";

async fn upload<S, B>(
    app: &S,
    w: &World,
    who: Who,
    query: &str,
    csv: &str,
) -> (u16, serde_json::Value)
where
    S: actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse<B>,
        Error = actix_web::Error,
    >,
    B: actix_web::body::MessageBody,
{
    let mut req = actix_test::TestRequest::post()
        .uri(&format!("{API}/import{query}"))
        .insert_header(("content-type", "text/csv"))
        .set_payload(csv.to_owned());
    if let Some(key) = w.keys.get(&who) {
        req = req.insert_header(("authorization", format!("Bearer {key}")));
    }
    let res = actix_test::call_service(app, req.to_request()).await;
    let status = res.status().as_u16();
    let body = actix_test::read_body(res).await;
    (
        status,
        serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
    )
}

both_and_axum!(import_dry_run_apply_and_strict, |db, framework| {
    block_on(async {
        let fd = frontdesk(db);
        let app = crate::host_on!(framework, fd);
        let w = world_data(db);
        let a = call(&app, &w, Who::AcmeAdminKey, "GET", "/import/template", None).await;
        assert_eq!(a.status.as_u16(), 200);
        assert!(a.raw.starts_with("email,first_name,last_name"), "{}", a.raw);
        assert!(
            !a.raw.contains("staff_role"),
            "org admins may not grant staff roles"
        );

        let before = user_count(db);
        for (who, status) in [
            (Who::Anonymous, 401),
            (Who::AcmeMemberKey, 403),
            (Who::StaffViewerKey, 403),
        ] {
            let (s, body) = upload(&app, &w, who, "", CSV).await;
            assert_eq!(s, status, "{who:?}: {body}");
        }
        let (s, report) = upload(&app, &w, Who::AcmeAdminKey, "?mode=dry_run", CSV).await;
        assert_eq!(s, 200, "{report}");
        assert_eq!(
            (
                report["created"].as_u64(),
                report["rejected"].as_u64(),
                report["applied"].as_bool()
            ),
            (Some(2), Some(1), Some(false))
        );
        assert_eq!(
            report["rows"][0]["row"], 3,
            "rejected rows are named by their line: {report}"
        );
        assert_eq!(user_count(db), before, "a dry run writes nothing");
        let (s, report) = upload(&app, &w, Who::AcmeAdminKey, "?mode=strict", CSV).await;
        assert_eq!(s, 200, "{report}");
        assert_eq!(
            user_count(db),
            before,
            "strict writes nothing when a row is bad"
        );
        let (s, report) = upload(&app, &w, Who::AcmeAdminKey, "?mode=apply", CSV).await;
        assert_eq!(s, 200, "{report}");
        assert_eq!(report["created"], 2);
        assert_eq!(user_count(db), before + 2);

        // Another organization's rows, a bad file and bad parameters change nothing.
        let (s, _) = upload(
            &app,
            &w,
            Who::AcmeAdminKey,
            "",
            "email,first_name,last_name,organization\nx@globex.test,X,Y,globex\n",
        )
        .await;
        assert!(s == 403 || s == 404 || s == 200, "{s}");
        let (s, body) = upload(&app, &w, Who::AcmeAdminKey, "", "\u{0}\u{1}binary").await;
        assert_eq!(s, 400, "{body}");
        assert_eq!(body["type"], "urn:frontdesk:problem:validation");
        let (s, _) = upload(&app, &w, Who::AcmeAdminKey, "?mode=maybe", CSV).await;
        assert_eq!(s, 400);
        let n: i64 = users_t::table
            .filter(users_t::email.eq("x@globex.test"))
            .count()
            .get_result(&mut *db.conn())
            .expect("count");
        assert_eq!(n, 0);
        assert_eq!(user_count(db), before + 2);
    });
});

both_and_axum!(export_streams_scoped_formula_safe_csv, |db, framework| {
    block_on(async {
        let fd = frontdesk(db);
        let app = crate::host_on!(framework, fd);
        let w = world_data(db);
        expect(
            &app,
            &w,
            Who::StaffOwnerKey,
            "PATCH",
            &format!("/users/{}", w.acme_member.id),
            Some(json!({"first_name": "=cmd|' /C calc'!A0"})),
            200,
        )
        .await;
        let a = call(
            &app,
            &w,
            Who::StaffAdminKey,
            "GET",
            "/export?sort=email&dir=asc",
            None,
        )
        .await;
        assert_eq!(a.status.as_u16(), 200);
        assert!(a.content_type.starts_with("text/csv"));
        let lines: Vec<&str> = a.raw.lines().collect();
        assert!(lines[0].starts_with("email,"), "{}", lines[0]);
        assert_eq!(lines.len(), 1 + 8, "{}", a.raw);
        assert!(
            a.raw.contains("'=cmd"),
            "formulas are neutralised: {}",
            a.raw
        );
        let a = call(
            &app,
            &w,
            Who::AcmeAdminKey,
            "GET",
            "/export?fields=email",
            None,
        )
        .await;
        assert_eq!(a.status.as_u16(), 200);
        let mut emails: Vec<&str> = a.raw.lines().skip(1).collect();
        emails.sort_unstable();
        assert_eq!(
            emails,
            ["admin@acme.test", "member@acme.test", "owner@acme.test"]
        );
        // `fields` as repeated keys (how generated clients send arrays)
        // reads like the comma-separated list.
        let repeated = call(
            &app,
            &w,
            Who::AcmeAdminKey,
            "GET",
            "/export?fields=email&fields=first_name&sort=email",
            None,
        )
        .await;
        let listed = call(
            &app,
            &w,
            Who::AcmeAdminKey,
            "GET",
            "/export?fields=email,first_name&sort=email",
            None,
        )
        .await;
        assert_eq!(repeated.status.as_u16(), 200, "{}", repeated.raw);
        assert!(
            repeated.raw.starts_with("email,first_name"),
            "{}",
            repeated.raw
        );
        assert_eq!(repeated.raw, listed.raw);
        let a = call(
            &app,
            &w,
            Who::AcmeAdminKey,
            "GET",
            "/export?fields=email&organization=globex",
            None,
        )
        .await;
        assert_eq!(
            a.raw.lines().count(),
            1,
            "another organization exports nothing: {}",
            a.raw
        );
        expect(
            &app,
            &w,
            Who::AcmeAdminKey,
            "GET",
            "/export?fields=password_hash",
            None,
            400,
        )
        .await;
        expect(
            &app,
            &w,
            Who::AcmeAdminKey,
            "GET",
            "/export?limit=0",
            None,
            400,
        )
        .await;
        let a = expect(
            &app,
            &w,
            Who::AcmeAdminKey,
            "GET",
            "/export?organization=%0D",
            None,
            400,
        )
        .await;
        assert_eq!(a.body["errors"][0]["field"], "organization", "{}", a.raw);
        expect(&app, &w, Who::AcmeMemberKey, "GET", "/export", None, 403).await;
        expect(&app, &w, Who::Anonymous, "GET", "/export", None, 401).await;
    });
});

both_and_axum!(
    an_import_the_database_stops_says_how_much_was_saved,
    |db, framework| {
        use frontdesk_core::imports::ImportConfig;
        // The database refuses one user of the second batch.
        db.refuse_user("stop15@acme.test");
        block_on(async {
            let fd = crate::web_app::builder(db)
                .import_config(ImportConfig {
                    batch_size: 10,
                    ..ImportConfig::default()
                })
                .build()
                .expect("frontdesk");
            let app = crate::host_on!(framework, fd);
            let w = world_data(db);
            let before = user_count(db);
            let mut csv = String::from("email,first_name,last_name,organization\n");
            for i in 0..25 {
                csv.push_str(&format!("stop{i}@acme.test,Stop,{i},acme\n"));
            }
            let (s, body) = upload(&app, &w, Who::AcmeAdminKey, "?mode=apply", &csv).await;
            assert_eq!(s, 500, "{body}");
            assert_eq!(
                body["detail"],
                "The import stopped after row 11: 10 users were created and saved in earlier \
             batches, nothing after them. Applying the same file again creates the users \
             that are missing.",
                "{body}"
            );
            assert!(
                !body.to_string().contains("refused by the database"),
                "{body}"
            );
            assert_eq!(user_count(db), before + 10);
        });
    }
);

both_and_axum!(import_may_ignore_unknown_columns, |db, framework| {
    use frontdesk_core::schema::audit_events;
    block_on(async {
        let fd = frontdesk(db);
        let app = crate::host_on!(framework, fd);
        let w = world_data(db);
        let csv = "email,first_name,last_name,organization,shoe_size,hat\n\
                   shoes@acme.test,Shoe,Size,acme,44,L\n";
        let before = user_count(db);
        let (status, body) = upload(&app, &w, Who::AcmeAdminKey, "", csv).await;
        assert_eq!(status, 400, "{body}");
        assert!(
            body["detail"]
                .as_str()
                .unwrap_or("")
                .contains("unknown column(s): shoe_size, hat"),
            "{body}"
        );
        for bad in [
            "?ignore_unknown_columns=maybe",
            "?ignore_unknown_column=true",
        ] {
            let (status, body) = upload(&app, &w, Who::AcmeAdminKey, bad, csv).await;
            assert_eq!(status, 400, "{bad}: {body}");
        }
        assert_eq!(user_count(db), before);

        let (status, body) = upload(
            &app,
            &w,
            Who::AcmeAdminKey,
            "?ignore_unknown_columns=true",
            csv,
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["created"], 1);
        assert_eq!(
            body["warnings"],
            json!(["row 1 (header): unknown columns ignored, their cells were not imported: shoe_size, hat"])
        );
        assert_eq!(user_count(db), before + 1);
        // The user's own audit event names the import the answer reports.
        let details: String = audit_events::table
            .filter(audit_events::action.eq("user.create"))
            .order(audit_events::id.desc())
            .select(audit_events::details)
            .first(&mut *db.conn())
            .expect("event");
        let details: serde_json::Value = serde_json::from_str(&details).expect("json");
        assert_eq!(details["email"], "shoes@acme.test");
        assert_eq!(details["import"], body["import_id"]);
        // The stored report keeps the warning.
        let id = body["import_id"].as_i64().expect("id");
        let got = call(
            &app,
            &w,
            Who::AcmeAdminKey,
            "GET",
            &format!("/imports/{id}"),
            None,
        )
        .await;
        assert_eq!(got.status.as_u16(), 200);
        assert!(got.raw.contains("unknown columns ignored"), "{}", got.raw);
    });
});
