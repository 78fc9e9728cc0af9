//! A sweep over every route of the API (from the scope's own route list):
//! anonymous callers get 401, end users 403, session calls without CSRF 403,
//! another organization's key 404; none of them changes anything. Each
//! sweep runs in process on actix-web and over HTTP against the axum host.

use actix_http::Request;
use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use diesel::prelude::*;
use frontdesk::web::api::{OPEN_ROUTES, ROUTES};
use frontdesk_core::schema::audit_events;
use frontdesk_core::{tags, Actor};
use serde_json::{json, Value};

use crate::admin_browser::Framework;
use crate::api_v1_support::*;
use crate::both_and_axum;
use crate::support::TestDb;
use crate::web_app::{block_on, frontdesk};

/// Runs `$sweep(db, &app)` with `app` the frontdesk of `db` served by
/// `$framework`.
macro_rules! on_host {
    ($framework:expr, $db:expr, $sweep:ident) => {
        block_on(async {
            let fd = frontdesk($db);
            $sweep($db, &crate::host_on!($framework, fd)).await
        })
    };
}

fn audit_count(db: &TestDb) -> i64 {
    audit_events::table
        .count()
        .get_result(&mut *db.conn())
        .expect("count")
}

/// An import filed under acme (queued, as a background one would be).
fn acme_import(db: &TestDb, w: &World) -> i64 {
    use frontdesk_core::import_jobs::{self, JobOptions, NewJob};
    let new = NewJob {
        actor: Actor::system(),
        organization_id: Some(w.acme.id),
        file_name: "users.csv".into(),
        mode: frontdesk_core::imports::ImportMode::DryRun,
        options: JobOptions::default(),
        upload_key: None,
    };
    import_jobs::queue(&mut db.conn(), &new, 3)
        .expect("import")
        .id
}

/// A group of acme.
fn acme_group(db: &TestDb, w: &World) -> i64 {
    let fields = frontdesk_core::groups::GroupFields {
        name: Some("Team".into()),
        ..Default::default()
    };
    frontdesk_core::groups::create(&mut db.conn(), &Actor::system(), w.acme.id, fields)
        .expect("group")
        .id
}

/// The route with acme's ids filled in, and a body that would be accepted.
fn concrete(
    w: &World,
    method: &str,
    path: &str,
    ids: (i64, i64, i64, i64, i64),
) -> (String, Option<Value>) {
    let (tag, session, invitation, import, group) = ids;
    let id = if path.contains("/groups/") {
        group
    } else if path.starts_with("/sessions/") {
        session
    } else if path.starts_with("/invitations/") {
        invitation
    } else if path.starts_with("/imports/") {
        import
    } else {
        w.acme_member.id
    };
    let uri = path
        .replace("{slug}", "acme")
        .replace("{user_id}", &w.acme_member.id.to_string())
        .replace("{tag_id}", &tag.to_string())
        .replace("{key}", "pro")
        .replace("{id}", &id.to_string());
    let body = match (method, path) {
        ("patch", "/users/{id}") => Some(json!({"first_name": "Z"})),
        ("post", "/organizations") => Some(json!({"slug": "zz", "name": "Z"})),
        ("patch", "/organizations/{slug}") => Some(json!({"name": "Z"})),
        ("post", "/organizations/{slug}/members") => {
            Some(json!({"user_id": w.acme_owner.id, "role": "member"}))
        }
        ("patch", "/organizations/{slug}/members/{user_id}") => Some(json!({"role": "member"})),
        ("post", "/tags") => Some(json!({"name": "zz"})),
        ("post", "/organizations/{slug}/scim-tokens") => Some(json!({"name": "z"})),
        ("put", "/organizations/{slug}/identity-provider") => Some(json!({
            "issuer": "http://127.0.0.1:9/",
            "client_id": "z",
            "client_secret": "z",
            "domains": ["acme.test"],
        })),
        ("post", "/organizations/{slug}/groups") => Some(json!({"name": "zz"})),
        ("patch", "/organizations/{slug}/groups/{id}") => Some(json!({"name": "Z"})),
        ("post", "/organizations/{slug}/groups/{id}/members") => {
            Some(json!({"add": [w.acme_member.id]}))
        }
        ("post", "/api-keys") => Some(json!({"name": "z", "role": "viewer"})),
        ("post", "/users") => Some(json!({"email": "z@acme.test", "organization": "acme"})),
        ("post", "/organizations/{slug}/users") => Some(json!({"email": "z@acme.test"})),
        ("post", "/invitations") => {
            Some(json!({"organization": "acme", "email": "z@z.test", "role": "member"}))
        }
        _ => None,
    };
    (uri, body)
}

/// A tag, a session of acme's member, an import, a group and an invitation
/// of acme: the ids `concrete` fills in.
async fn acme_ids<S, B>(db: &TestDb, app: &S, w: &World) -> (i64, i64, i64, i64, i64)
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let tag = tags::create(&mut db.conn(), &Actor::system(), "t")
        .expect("tag")
        .id;
    let session = session_for(db, w.acme_member.id);
    let import = acme_import(db, w);
    let group = acme_group(db, w);
    let invitation = expect(
        app,
        w,
        Who::StaffOwnerKey,
        "POST",
        "/invitations",
        Some(json!({"organization": "acme", "email": "inv@acme.test", "role": "member"})),
        201,
    )
    .await
    .body["id"]
        .as_i64()
        .expect("invitation");
    (tag, session, invitation, import, group)
}

async fn refusals<S, B>(db: &TestDb, app: &S)
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let w = world(db, app).await;
    let ids = acme_ids(db, app, &w).await;
    let before = audit_count(db);
    let mut checked = 0;
    // Signing in is open to anyone (`api_v1_auth` tests it).
    for (method, path) in ROUTES.iter().filter(|r| !OPEN_ROUTES.contains(r)) {
        let (uri, body) = concrete(&w, method, path, ids);
        let m = method.to_ascii_uppercase();
        let a = expect(app, &w, Who::Anonymous, &m, &uri, body.clone(), 401).await;
        assert_eq!(a.problem_type(), "urn:frontdesk:problem:unauthorized");
        let a = expect(app, &w, Who::MemberSession, &m, &uri, body.clone(), 403).await;
        assert_eq!(a.problem_type(), "urn:frontdesk:problem:forbidden");
        if m != "GET" {
            let a = expect(
                app,
                &w,
                Who::AcmeAdminSessionNoCsrf,
                &m,
                &uri,
                body.clone(),
                403,
            )
            .await;
            assert_eq!(a.problem_type(), "urn:frontdesk:problem:csrf", "{m} {path}");
        }
        // Whatever names something of acme is, for globex's key, not there.
        if path.contains('{') && !path.starts_with("/api-keys") {
            expect(app, &w, Who::GlobexAdminKey, &m, &uri, body.clone(), 404).await;
        }
        checked += 1;
    }
    assert!(checked >= 30, "{checked} routes");
    assert_eq!(audit_count(db), before, "no refused call changed anything");
}

fn refusals_on(db: &TestDb, framework: Framework) {
    on_host!(framework, db, refusals)
}

both_and_axum!(
    every_route_refuses_the_wrong_callers_and_changes_nothing,
    refusals_on
);

async fn reads<S, B>(db: &TestDb, app: &S)
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let w = world_data(db);
    let ids = acme_ids(db, app, &w).await;
    for (method, path) in ROUTES.iter().filter(|(m, _)| *m == "get") {
        let (uri, _) = concrete(&w, method, path, ids);
        for who in KEYS.iter().filter(|k| **k != Who::GlobexAdminKey) {
            // Keys never manage keys, viewers and members do not export;
            // everything else is readable by every role.
            let no_export =
                *path == "/export" && matches!(who, Who::StaffViewerKey | Who::AcmeMemberKey);
            let want = if path.starts_with("/api-keys") || no_export {
                403
            } else {
                200
            };
            expect(app, &w, *who, "GET", &uri, None, want).await;
        }
    }
}

fn reads_on(db: &TestDb, framework: Framework) {
    on_host!(framework, db, reads)
}

both_and_axum!(
    every_read_route_answers_every_key_of_the_organization,
    reads_on
);
