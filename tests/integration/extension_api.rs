//! API routes added by an extension (the demo's notes): served under
//! `/ext/<id>/` with the built-in API's authentication, permission checks
//! through the one authorization function and problem+json errors, and
//! described in `openapi.json`.

use actix_web::http::StatusCode;
use actix_web::test as actix_test;
use diesel::prelude::*;
use frontdesk_core::schema::audit_events;
use frontdesk_core::Actor;
use serde_json::{json, Value};

use crate::api_v1_support::*;
use crate::both;
use crate::extensions::admin_notes::{self, demo_notes, NotesAdmin};
use crate::support::TestDb;
use crate::web_app::{block_on, builder};

fn notes_of(db: &TestDb, user: i64) -> Vec<String> {
    demo_notes::table
        .filter(demo_notes::user_id.eq(user))
        .order(demo_notes::id)
        .select(demo_notes::body)
        .load(&mut *db.conn())
        .expect("notes")
}

fn audited(db: &TestDb, action: &str) -> Vec<(String, String)> {
    audit_events::table
        .filter(audit_events::action.eq(action))
        .order(audit_events::id)
        .select((audit_events::actor, audit_events::target))
        .load(&mut *db.conn())
        .expect("audit")
}

both!(extension_api_routes_are_authenticated_and_checked, |db| {
    block_on(async {
        admin_notes::create_table(&mut db.conn()).expect("notes table");
        let fd = builder(db)
            .extension(NotesAdmin)
            .build()
            .expect("frontdesk");
        let app = crate::host_app!(fd);
        let w = world(db, &app).await;
        let (member, other) = (w.acme_member.id, w.globex_member.id);
        admin_notes::add(&mut db.conn(), &Actor::system(), member, "first").expect("note");
        let notes = format!("/ext/notes/users/{member}/notes");

        // Served to a caller who may view the user, as JSON.
        let r = call(&app, &w, Who::AcmeAdminKey, "GET", &notes, None).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert!(
            r.content_type.starts_with("application/json"),
            "{}",
            r.content_type
        );
        assert_eq!(r.body["notes"][0]["body"], "first");
        assert_eq!(r.body["notes"].as_array().map(Vec::len), Some(1));
        // An admin's session works too.
        let r = call(&app, &w, Who::AcmeAdminSession, "GET", &notes, None).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);

        // No key, a bad key: 401, problem+json.
        let r = call(&app, &w, Who::Anonymous, "GET", &notes, None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.raw);
        assert_eq!(r.content_type, "application/problem+json");
        let res = actix_test::call_service(
            &app,
            actix_test::TestRequest::get()
                .uri(&format!("{API}{notes}"))
                .insert_header(("authorization", "Bearer fdk_not_a_key"))
                .to_request(),
        )
        .await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        // An end user's session: 403.
        let r = call(&app, &w, Who::MemberSession, "GET", &notes, None).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.raw);

        // A user the caller may not see: 404 (as on /users/{id}); an id that
        // is not a number names no user.
        let theirs = format!("/ext/notes/users/{other}/notes");
        let r = call(&app, &w, Who::AcmeAdminKey, "GET", &theirs, None).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.raw);
        assert_eq!(r.content_type, "application/problem+json");
        let r = call(
            &app,
            &w,
            Who::AcmeAdminKey,
            "POST",
            &theirs,
            Some(json!({"body": "x"})),
        )
        .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.raw);
        let r = call(
            &app,
            &w,
            Who::AcmeAdminKey,
            "GET",
            "/ext/notes/users/abc/notes",
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.raw);
        // Unknown routes and extensions: 404 before any authentication.
        for path in [
            "/ext/notes/users",
            "/ext/nobody/users/1/notes",
            "/ext/notes/",
        ] {
            let r = call(&app, &w, Who::Anonymous, "GET", path, None).await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}: {}", r.raw);
            assert_eq!(r.content_type, "application/problem+json");
        }
        // A known path with another method: 405 naming the ones it takes.
        let res = actix_test::call_service(
            &app,
            actix_test::TestRequest::delete()
                .uri(&format!("{API}{notes}"))
                .to_request(),
        )
        .await;
        assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(
            res.headers().get("allow").and_then(|v| v.to_str().ok()),
            Some("GET, POST")
        );

        // Adding needs Edit: a staff viewer may read but not write.
        let r = call(&app, &w, Who::StaffViewerKey, "GET", &notes, None).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        let r = call(
            &app,
            &w,
            Who::StaffViewerKey,
            "POST",
            &notes,
            Some(json!({"body": "no"})),
        )
        .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.raw);
        assert_eq!(r.content_type, "application/problem+json");
        // Session callers need the CSRF header on a POST.
        let r = call(
            &app,
            &w,
            Who::AcmeAdminSessionNoCsrf,
            "POST",
            &notes,
            Some(json!({"body": "no"})),
        )
        .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.raw);
        assert_eq!(notes_of(db, member), vec!["first"]);
        assert_eq!(audited(db, "notes.create").len(), 1, "the fixture's only");

        // Bodies that do not fit the schema: 400 validation problems.
        for bad in [
            json!({}),
            json!({"body": ""}),
            json!({"body": "   "}),
            json!({"body": 7}),
            json!({"body": "ok", "extra": 1}),
            json!(["body"]),
            json!({"body": "x".repeat(1001)}),
        ] {
            let r = call(
                &app,
                &w,
                Who::AcmeAdminKey,
                "POST",
                &notes,
                Some(bad.clone()),
            )
            .await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.raw);
            assert_eq!(r.content_type, "application/problem+json");
        }
        let res = actix_test::call_service(
            &app,
            actix_test::TestRequest::post()
                .uri(&format!("{API}{notes}"))
                .insert_header((
                    "authorization",
                    format!("Bearer {}", w.keys[&Who::AcmeAdminKey]),
                ))
                .set_payload("{not json")
                .to_request(),
        )
        .await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
        assert_eq!(notes_of(db, member), vec!["first"]);

        // Added: 201 with the note, its audit row by the key.
        let r = call(
            &app,
            &w,
            Who::AcmeAdminKey,
            "POST",
            &notes,
            Some(json!({"body": " second "})),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
        assert_eq!(r.body["body"], "second");
        assert_eq!(r.body["archived"], false);
        assert!(r.body["id"].as_i64().is_some());
        assert_eq!(notes_of(db, member), vec!["first", "second"]);
        let rows = audited(db, "notes.create");
        assert_eq!(rows.len(), 2);
        assert!(rows[1].0.starts_with("api_key:"), "{rows:?}");
        assert_eq!(rows[1].1, format!("user:{member}"));
    })
});

async fn openapi<S, B>(app: &S, w: &World) -> Value
where
    S: actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse<B>,
        Error = actix_web::Error,
    >,
    B: actix_web::body::MessageBody,
{
    let r = call(app, w, Who::StaffOwnerKey, "GET", "/openapi.json", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    r.body
}

both!(extension_api_routes_are_in_the_openapi_document, |db| {
    block_on(async {
        admin_notes::create_table(&mut db.conn()).expect("notes table");
        let fd = builder(db)
            .extension(NotesAdmin)
            .build()
            .expect("frontdesk");
        let app = crate::host_app!(fd);
        let w = world_data(db);
        let doc = openapi(&app, &w).await;
        let item = &doc["paths"]["/ext/notes/users/{id}/notes"];
        let get = &item["get"];
        assert_eq!(get["summary"], "The notes about a user, newest first");
        assert_eq!(get["parameters"][0]["name"], "id");
        assert_eq!(get["parameters"][0]["schema"]["type"], "integer");
        assert_eq!(
            get["responses"]["200"]["content"]["application/json"]["schema"]["required"],
            json!(["notes"])
        );
        assert_eq!(
            get["responses"]["404"]["$ref"],
            "#/components/responses/NotFound"
        );
        assert!(get.get("requestBody").is_none());
        let post = &item["post"];
        assert_eq!(
            post["requestBody"]["content"]["application/json"]["schema"]["required"],
            json!(["body"])
        );
        assert!(post["responses"]["201"].is_object(), "{post}");
        assert_eq!(
            post["responses"]["409"]["$ref"],
            "#/components/responses/Conflict"
        );
        assert_ne!(get["operationId"], post["operationId"]);

        // Without the extension, no such path (and the route is a 404).
        let plain = builder(db).build().expect("frontdesk");
        let app = crate::host_app!(plain);
        let doc = openapi(&app, &w).await;
        let paths = doc["paths"].as_object().expect("paths");
        assert!(!paths.keys().any(|p| p.starts_with("/ext/")), "{paths:?}");
        let r = call(
            &app,
            &w,
            Who::StaffOwnerKey,
            "GET",
            &format!("/ext/notes/users/{}/notes", w.acme_member.id),
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.raw);
    })
});
