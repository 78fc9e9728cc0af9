//! The OpenAPI document: it parses, covers every route of the scope with its
//! errors, and real answers validate against the schemas it declares.

use std::collections::BTreeSet;

use frontdesk::web::api::{OPEN_ROUTES, ROUTES};
use serde_json::{json, Value};

use crate::api_v1_support::*;
use crate::both;
use crate::web_app::{block_on, frontdesk};

/// Resolves `#/components/…` references.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let path = r.trim_start_matches("#/");
            let target = path.split('/').fold(doc, |v, k| &v[k]);
            assert!(!target.is_null(), "dangling reference {r}");
            resolve(doc, target)
        }
        None => schema,
    }
}

/// Checks `v` against `schema` (a schema of the document, with its
/// `#/components/…` references) as JSON Schema 2020-12, the dialect of
/// OpenAPI 3.1, formats included; returns every violation with its location.
fn validate(doc: &Value, schema: &Value, v: &Value) -> Result<(), String> {
    let root = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "allOf": [schema],
        "components": doc["components"],
    });
    let validator = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .should_validate_formats(true)
        .build(&root)
        .map_err(|e| format!("the schema does not compile: {e}"))?;
    let errors: Vec<String> = validator
        .iter_errors(v)
        .map(|e| format!("${}: {e}", e.instance_path()))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

/// The schema an operation declares for `status`.
fn response_schema<'a>(doc: &'a Value, method: &str, path: &str, status: u16) -> &'a Value {
    let op = &doc["paths"][path][method.to_ascii_lowercase()];
    assert!(op.is_object(), "{method} {path} is not documented");
    let res = resolve(doc, &op["responses"][status.to_string()]);
    assert!(
        res.is_object(),
        "{method} {path} does not document {status}"
    );
    let content = res["content"].as_object().expect("content");
    let (_, media) = content.iter().next().expect("a media type");
    &media["schema"]
}

both!(document_covers_every_route_with_its_errors, |db| {
    block_on(async {
        let fd = frontdesk(db);
        let app = crate::host_app!(fd);
        let w = world_data(db);
        // The document is for the API's callers only: keys and admins.
        let a = expect(&app, &w, Who::Anonymous, "GET", "/openapi.json", None, 401).await;
        assert_eq!(a.problem_type(), "urn:frontdesk:problem:unauthorized");
        // (An end user's session gets 403: `api_v1_matrix` checks every route.)
        expect(
            &app,
            &w,
            Who::AcmeMemberKey,
            "GET",
            "/openapi.json",
            None,
            200,
        )
        .await;
        let a = expect(
            &app,
            &w,
            Who::StaffViewerKey,
            "GET",
            "/openapi.json",
            None,
            200,
        )
        .await;
        let doc = a.body;
        assert!(doc["openapi"].as_str().unwrap_or("").starts_with("3."));
        assert_eq!(doc["servers"][0]["url"], API);
        assert_eq!(
            doc["components"]["securitySchemes"]["api_key"]["scheme"],
            "bearer"
        );

        let routes: BTreeSet<(String, String)> = ROUTES
            .iter()
            .map(|(m, p)| (m.to_ascii_lowercase(), (*p).to_owned()))
            .collect();
        let mut documented = BTreeSet::new();
        let mut ids = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, op) in item.as_object().expect("path item") {
                documented.insert((method.clone(), path.clone()));
                let id = op["operationId"].as_str().expect("operationId").to_owned();
                assert!(ids.insert(id.clone()), "operationId {id} is used twice");
                let responses = op["responses"].as_object().expect("responses");
                let wanted: &[&str] = &["400", "401", "403", "500"];
                for status in wanted {
                    assert!(
                        responses.contains_key(*status),
                        "{method} {path} lacks {status}"
                    );
                }
                if path.contains('{') {
                    assert!(responses.contains_key("404"), "{method} {path} lacks 404");
                    let params: BTreeSet<&str> = op["parameters"]
                        .as_array()
                        .map(|ps| {
                            ps.iter()
                                .filter(|p| p["in"] == "path")
                                .filter_map(|p| p["name"].as_str())
                                .collect()
                        })
                        .unwrap_or_default();
                    for seg in path.split('/').filter(|s| s.starts_with('{')) {
                        assert!(
                            params.contains(seg.trim_matches(|c| c == '{' || c == '}')),
                            "{method} {path}: {seg} undocumented"
                        );
                    }
                }
                for (status, res) in responses {
                    let res = resolve(&doc, res);
                    if let Some(content) = res["content"].as_object() {
                        for media in content.values() {
                            resolve(&doc, &media["schema"]);
                        }
                    }
                    assert!(res["description"].is_string(), "{method} {path} {status}");
                }
            }
        }
        assert_eq!(
            routes, documented,
            "the document and the scope list the same routes"
        );
        assert!(routes.len() >= 30);
        // Every route answers (none is left unmounted): an anonymous call gets
        // 401, not 404; the operations the document opens to anyone (signing
        // in) answer a call without a body with 400.
        let open: BTreeSet<(String, String)> = doc["paths"]
            .as_object()
            .expect("paths")
            .iter()
            .flat_map(|(path, item)| {
                item.as_object()
                    .expect("path item")
                    .iter()
                    .filter(|(_, op)| op["security"] == serde_json::json!([{}]))
                    .map(|(method, _)| (method.clone(), path.clone()))
            })
            .collect();
        let listed: BTreeSet<(String, String)> = OPEN_ROUTES
            .iter()
            .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
            .collect();
        assert_eq!(open, listed, "the document opens exactly the open routes");
        assert_eq!(open.len(), 2);
        for (method, path) in &routes {
            let concrete = path
                .replace("{slug}", "acme")
                .replace("{user_id}", "1")
                .replace("{tag_id}", "1")
                .replace("{key}", "pro")
                .replace("{id}", "1");
            let a = call(
                &app,
                &w,
                Who::Anonymous,
                &method.to_ascii_uppercase(),
                &concrete,
                None,
            )
            .await;
            let anonymous = if open.contains(&(method.to_string(), path.to_string())) {
                400
            } else {
                401
            };
            assert_eq!(a.status.as_u16(), anonymous, "{method} {path}");
        }
        // The list parameters are documented with their bounds.
        let params = doc["paths"]["/users"]["get"]["parameters"]
            .as_array()
            .expect("params");
        let names: Vec<&str> = params.iter().filter_map(|p| p["name"].as_str()).collect();
        for n in [
            "search",
            "status",
            "staff",
            "organization",
            "org_role",
            "tags_all",
            "tags_any",
            "tags_none",
            "created_from",
            "created_to",
            "last_login",
            "last_login_from",
            "last_login_to",
            "sort",
            "dir",
            "page",
            "limit",
        ] {
            assert!(names.contains(&n), "{n} undocumented");
        }
        let limit = params.iter().find(|p| p["name"] == "limit").expect("limit");
        assert_eq!(limit["schema"]["maximum"], 100);
        assert_eq!(limit["schema"]["minimum"], 1);
    });
});

/// Caller, method, URI, documented path, body, expected status.
type Check = (Who, &'static str, String, &'static str, Option<Value>, u16);

/// Collects the string fields under `schema` that declare neither a pattern,
/// an enum nor a format: the API refuses control characters in every free-text
/// field, so a field without a pattern promises callers more than it accepts.
fn loose_strings(doc: &Value, schema: &Value, at: &str, out: &mut Vec<String>) {
    let schema = resolve(doc, schema);
    for key in ["oneOf", "anyOf", "allOf"] {
        for s in schema[key].as_array().into_iter().flatten() {
            loose_strings(doc, s, at, out);
        }
    }
    if let Some(items) = schema.get("items") {
        loose_strings(doc, items, &format!("{at}[]"), out);
    }
    for (name, p) in schema["properties"].as_object().into_iter().flatten() {
        loose_strings(doc, p, &format!("{at}.{name}"), out);
    }
    let is_string = match &schema["type"] {
        Value::String(t) => t == "string",
        Value::Array(ts) => ts.iter().any(|t| t == "string"),
        _ => false,
    };
    let constrained = ["pattern", "enum", "format", "const"]
        .iter()
        .any(|k| schema.get(*k).is_some());
    if is_string && !constrained {
        out.push(at.to_owned());
    }
}

both!(request_strings_declare_the_characters_they_refuse, |db| {
    block_on(async {
        let fd = frontdesk(db);
        let app = crate::host_app!(fd);
        let w = world_data(db);
        let doc = expect(
            &app,
            &w,
            Who::StaffViewerKey,
            "GET",
            "/openapi.json",
            None,
            200,
        )
        .await
        .body;
        let mut loose = Vec::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, op) in item.as_object().expect("path item") {
                let at = format!("{} {path}", method.to_ascii_uppercase());
                let body = &op["requestBody"]["content"]["application/json"]["schema"];
                if !body.is_null() {
                    loose_strings(&doc, body, &format!("{at} body"), &mut loose);
                }
                for p in op["parameters"].as_array().into_iter().flatten() {
                    let p = resolve(&doc, p);
                    if p["in"] == "query" {
                        let name = p["name"].as_str().unwrap_or("?");
                        loose_strings(&doc, &p["schema"], &format!("{at} ?{name}"), &mut loose);
                    }
                }
            }
        }
        assert!(
            loose.is_empty(),
            "string fields without a pattern, enum or format: {loose:#?}"
        );
    });
});

both!(answers_match_their_schemas, |db| {
    block_on(async {
        let fd = frontdesk(db);
        let app = crate::host_app!(fd);
        let w = world(db, &app).await;
        session_for(db, w.acme_member.id);
        let doc = call(&app, &w, Who::StaffViewerKey, "GET", "/openapi.json", None)
            .await
            .body;
        let m = w.acme_member.id;
        let checks: Vec<Check> = vec![
            (
                Who::StaffOwnerKey,
                "GET",
                "/users?limit=3".into(),
                "/users",
                None,
                200,
            ),
            (
                Who::StaffOwnerKey,
                "GET",
                format!("/users/{m}"),
                "/users/{id}",
                None,
                200,
            ),
            (
                Who::AcmeAdminKey,
                "PATCH",
                format!("/users/{m}"),
                "/users/{id}",
                Some(json!({"profile": {"plan": "pro", "seats": 3}})),
                200,
            ),
            (
                Who::AcmeAdminKey,
                "GET",
                "/organizations/acme/users".into(),
                "/organizations/{slug}/users",
                None,
                200,
            ),
            (
                Who::AcmeAdminKey,
                "GET",
                format!("/organizations/acme/users/{m}"),
                "/organizations/{slug}/users/{id}",
                None,
                200,
            ),
            (
                Who::AcmeAdminKey,
                "DELETE",
                format!("/organizations/acme/users/{m}/sessions"),
                "/organizations/{slug}/users/{id}/sessions",
                None,
                200,
            ),
            (
                Who::StaffViewerKey,
                "GET",
                "/organizations".into(),
                "/organizations",
                None,
                200,
            ),
            (
                Who::StaffViewerKey,
                "GET",
                "/organizations/acme/members".into(),
                "/organizations/{slug}/members",
                None,
                200,
            ),
            (
                Who::StaffViewerKey,
                "GET",
                "/sessions?active=false".into(),
                "/sessions",
                None,
                200,
            ),
            (
                Who::StaffViewerKey,
                "GET",
                "/login-attempts".into(),
                "/login-attempts",
                None,
                200,
            ),
            (
                Who::StaffViewerKey,
                "GET",
                "/audit-events".into(),
                "/audit-events",
                None,
                200,
            ),
            (
                Who::StaffViewerKey,
                "GET",
                "/tags".into(),
                "/tags",
                None,
                200,
            ),
            (
                Who::StaffOwnerSession,
                "GET",
                "/api-keys".into(),
                "/api-keys",
                None,
                200,
            ),
            (
                Who::StaffOwnerSession,
                "POST",
                "/api-keys".into(),
                "/api-keys",
                Some(json!({"name": "n", "role": "viewer"})),
                201,
            ),
            (
                Who::StaffOwnerKey,
                "GET",
                "/users?limit=0".into(),
                "/users",
                None,
                400,
            ),
            (Who::Anonymous, "GET", "/users".into(), "/users", None, 401),
            (
                Who::StaffViewerKey,
                "POST",
                "/tags".into(),
                "/tags",
                Some(json!({"name": "x"})),
                403,
            ),
            (
                Who::AcmeAdminKey,
                "GET",
                format!("/users/{}", w.globex_member.id),
                "/users/{id}",
                None,
                404,
            ),
            (
                Who::StaffOwnerKey,
                "POST",
                "/organizations".into(),
                "/organizations",
                Some(json!({"slug": "acme", "name": "Again"})),
                409,
            ),
        ];
        for (who, method, uri, path, body, status) in checks {
            let a = expect(&app, &w, who, method, &uri, body, status).await;
            let schema = response_schema(&doc, method, path, status);
            if let Err(e) = validate(&doc, schema, &a.body) {
                panic!(
                    "{method} {uri} ({status}) does not match its schema: {e}\n{}",
                    a.raw
                );
            }
        }
        // An import's report, uploaded as bytes (the content type generated
        // clients send for the file), and the same import read back.
        let req = actix_web::test::TestRequest::post()
            .uri(&format!("{API}/import?mode=dry_run"))
            .insert_header(("content-type", "application/octet-stream"))
            .insert_header((
                "authorization",
                format!("Bearer {}", w.keys[&Who::StaffOwnerKey]),
            ))
            .set_payload(
                "email,first_name,last_name\nnew@acme.test,New,Row\nnot-an-email,Bad,Row\n",
            )
            .to_request();
        let res = actix_web::test::call_service(&app, req).await;
        assert_eq!(res.status().as_u16(), 200);
        let report: Value =
            serde_json::from_slice(&actix_web::test::read_body(res).await).expect("json");
        let schema = response_schema(&doc, "POST", "/import", 200);
        if let Err(e) = validate(&doc, schema, &report) {
            panic!("POST /import does not match its schema: {e}\n{report}");
        }
        assert_eq!(
            (report["created"].clone(), report["rejected"].clone()),
            (json!(1), json!(1))
        );
        let id = report["import_id"].as_i64().expect("import_id");
        let a = expect(
            &app,
            &w,
            Who::StaffOwnerKey,
            "GET",
            &format!("/imports/{id}"),
            None,
            200,
        )
        .await;
        if let Err(e) = validate(
            &doc,
            response_schema(&doc, "GET", "/imports/{id}", 200),
            &a.body,
        ) {
            panic!(
                "GET /imports/{{id}} does not match its schema: {e}\n{}",
                a.raw
            );
        }
        assert!(a.body["report"].is_object(), "{}", a.raw);
        // The validator does catch a wrong answer.
        let schema = response_schema(&doc, "GET", "/users", 200);
        assert!(validate(
            &doc,
            schema,
            &json!({"users": [{"id": "1"}], "pagination": {}})
        )
        .is_err());
        // Closed sets are enums taken from the core's own lists: a user's
        // status outside them does not validate.
        let first = expect(
            &app,
            &w,
            Who::StaffOwnerKey,
            "GET",
            "/users?limit=1",
            None,
            200,
        )
        .await
        .body["users"][0]
            .clone();
        let mut wrong = first.clone();
        wrong["status"] = json!("gone");
        let one = json!({"users": [first], "pagination": {"page": 1, "limit": 1, "total": 1, "total_is_exact": true}});
        let bad = json!({"users": [wrong], "pagination": {"page": 1, "limit": 1, "total": 1, "total_is_exact": true}});
        assert!(validate(&doc, schema, &one).is_ok());
        assert!(validate(&doc, schema, &bad).is_err());
        let reasons = resolve(&doc, &doc["components"]["schemas"]["LoginReason"]);
        let listed: Vec<&str> = reasons["enum"]
            .as_array()
            .expect("enum")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let all: Vec<&str> = frontdesk_core::login_attempts::Reason::ALL
            .iter()
            .map(|r| r.as_str())
            .collect();
        assert_eq!(listed, all);
    });
});
