//! The API tests' world: two organizations (acme, globex), staff of each role,
//! members of each organization role, an API key for every scope, and calls
//! made the way a client makes them (bearer key, or cookie plus CSRF header).

use std::collections::BTreeMap;

use actix_http::Request;
use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::{header, StatusCode};
use actix_web::test;
use frontdesk_core::api_keys::{self, KeyRole};
use frontdesk_core::organizations::{self, Organization};
use frontdesk_core::sessions::{self, ClientInfo, SessionConfig};
use frontdesk_core::users::{self, NewUser, User};
use frontdesk_core::{passwords, Actor, OrgRole, StaffRole};
use serde_json::Value;

use crate::support::TestDb;
use crate::web_app::{Browser, PASSWORD};

pub const API: &str = "/admin/api/v1";

/// Who makes a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Who {
    Anonymous,
    StaffOwnerKey,
    StaffAdminKey,
    StaffViewerKey,
    AcmeOwnerKey,
    AcmeAdminKey,
    AcmeMemberKey,
    GlobexAdminKey,
    /// acme's admin signed in, sending the CSRF header on unsafe methods.
    AcmeAdminSession,
    /// The same session without the CSRF header.
    AcmeAdminSessionNoCsrf,
    /// The staff owner signed in (with CSRF).
    StaffOwnerSession,
    /// An acme member (an end user) signed in.
    MemberSession,
}

pub const KEYS: &[Who] = &[
    Who::StaffOwnerKey,
    Who::StaffAdminKey,
    Who::StaffViewerKey,
    Who::AcmeOwnerKey,
    Who::AcmeAdminKey,
    Who::AcmeMemberKey,
    Who::GlobexAdminKey,
];

pub struct World {
    pub acme: Organization,
    pub globex: Organization,
    pub staff_owner: User,
    pub acme_owner: User,
    pub acme_admin: User,
    pub acme_member: User,
    pub globex_member: User,
    pub keys: BTreeMap<Who, String>,
    pub browsers: BTreeMap<Who, (Browser, String)>,
}

pub fn user(
    db: &TestDb,
    email: &str,
    staff: Option<StaffRole>,
    org: Option<(i64, OrgRole)>,
    password: bool,
) -> User {
    let mut conn = db.conn();
    users::create(
        &mut conn,
        &Actor::system(),
        NewUser {
            email: email.into(),
            first_name: "Test".into(),
            last_name: email.split('@').next().unwrap_or("").into(),
            staff_role: staff,
            organization: org,
            password_hash: password.then(|| passwords::hash(PASSWORD).expect("hash")),
            ..NewUser::default()
        },
    )
    .expect("user")
}

/// Opens a live session for a user, as a sign-in would.
pub fn session_for(db: &TestDb, user_id: i64) -> i64 {
    let mut conn = db.conn();
    sessions::create(
        &mut conn,
        user_id,
        &ClientInfo::default(),
        &SessionConfig::default(),
    )
    .expect("session")
    .0
    .id
}

/// Builds the data (no app needed).
pub fn world_data(db: &TestDb) -> World {
    let sys = Actor::system();
    let (acme, globex) = {
        let mut conn = db.conn();
        (
            organizations::create(&mut conn, &sys, "acme", "Acme", "").expect("acme"),
            organizations::create(&mut conn, &sys, "globex", "Globex", "").expect("globex"),
        )
    };
    let staff_owner = user(db, "owner@staff.test", Some(StaffRole::Owner), None, true);
    user(db, "admin@staff.test", Some(StaffRole::Admin), None, false);
    user(
        db,
        "viewer@staff.test",
        Some(StaffRole::Viewer),
        None,
        false,
    );
    let acme_owner = user(
        db,
        "owner@acme.test",
        None,
        Some((acme.id, OrgRole::Owner)),
        false,
    );
    let acme_admin = user(
        db,
        "admin@acme.test",
        None,
        Some((acme.id, OrgRole::Admin)),
        true,
    );
    let acme_member = user(
        db,
        "member@acme.test",
        None,
        Some((acme.id, OrgRole::Member)),
        true,
    );
    user(
        db,
        "owner@globex.test",
        None,
        Some((globex.id, OrgRole::Owner)),
        false,
    );
    let globex_member = user(
        db,
        "member@globex.test",
        None,
        Some((globex.id, OrgRole::Member)),
        false,
    );
    let mut keys = BTreeMap::new();
    {
        let mut conn = db.conn();
        for (who, role) in [
            (Who::StaffOwnerKey, KeyRole::Staff(StaffRole::Owner)),
            (Who::StaffAdminKey, KeyRole::Staff(StaffRole::Admin)),
            (Who::StaffViewerKey, KeyRole::Staff(StaffRole::Viewer)),
            (Who::AcmeOwnerKey, KeyRole::Org(acme.id, OrgRole::Owner)),
            (Who::AcmeAdminKey, KeyRole::Org(acme.id, OrgRole::Admin)),
            (Who::AcmeMemberKey, KeyRole::Org(acme.id, OrgRole::Member)),
            (Who::GlobexAdminKey, KeyRole::Org(globex.id, OrgRole::Admin)),
        ] {
            let (_, secret) =
                api_keys::create(&mut conn, &sys, &format!("{who:?}"), role).expect("key");
            keys.insert(who, secret.expose().to_owned());
        }
    }
    World {
        acme,
        globex,
        staff_owner,
        acme_owner,
        acme_admin,
        acme_member,
        globex_member,
        keys,
        browsers: BTreeMap::new(),
    }
}

/// Signs in through the login form and reads the CSRF token from the JSON session endpoint.
pub async fn sign_in<S, B>(app: &S, email: &str) -> (Browser, String)
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let mut b = Browser::new();
    let page = b.login(app, email, PASSWORD).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "signed in as {email}");
    let session = b.get(app, "/auth/api/session").await;
    let v: Value = serde_json::from_str(&session.body).expect("session json");
    let csrf = v["csrf_token"].as_str().expect("csrf token").to_owned();
    (b, csrf)
}

/// The data plus signed-in browsers for the session callers.
pub async fn world<S, B>(db: &TestDb, app: &S) -> World
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let mut w = world_data(db);
    let admin = sign_in(app, "admin@acme.test").await;
    w.browsers.insert(Who::AcmeAdminSession, admin.clone());
    w.browsers.insert(Who::AcmeAdminSessionNoCsrf, admin);
    w.browsers.insert(
        Who::StaffOwnerSession,
        sign_in(app, "owner@staff.test").await,
    );
    w.browsers
        .insert(Who::MemberSession, sign_in(app, "member@acme.test").await);
    w
}

/// One API answer.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub content_type: String,
    pub body: Value,
    pub raw: String,
}

impl Answer {
    /// A problem document's `type`.
    pub fn problem_type(&self) -> &str {
        self.body["type"].as_str().unwrap_or("")
    }
}

pub async fn call<S, B>(
    app: &S,
    w: &World,
    who: Who,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Answer
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let uri = format!("{API}{path}");
    let mut req = match method {
        "GET" => test::TestRequest::get(),
        "POST" => test::TestRequest::post(),
        "PUT" => test::TestRequest::put(),
        "PATCH" => test::TestRequest::patch(),
        "DELETE" => test::TestRequest::delete(),
        other => panic!("method {other}"),
    }
    .uri(&uri);
    if let Some(b) = &body {
        req = req
            .insert_header((header::CONTENT_TYPE, "application/json"))
            .set_payload(b.to_string());
    }
    let (status, headers, bytes) = if let Some(key) = w.keys.get(&who) {
        req = req.insert_header((header::AUTHORIZATION, format!("Bearer {key}")));
        let res = test::call_service(app, req.to_request()).await;
        let status = res.status();
        let headers = res.headers().clone();
        (status, headers, test::read_body(res).await)
    } else if let Some((browser, csrf)) = w.browsers.get(&who) {
        if who != Who::AcmeAdminSessionNoCsrf && method != "GET" {
            req = req.insert_header(("x-csrf-token", csrf.as_str()));
        }
        let mut b = browser.clone();
        let page = b.send(app, req).await;
        (page.status, page.headers, page.body.into_bytes().into())
    } else {
        assert_eq!(who, Who::Anonymous, "no credentials for {who:?}");
        let res = test::call_service(app, req.to_request()).await;
        let status = res.status();
        let headers = res.headers().clone();
        (status, headers, test::read_body(res).await)
    };
    let raw = String::from_utf8_lossy(&bytes).into_owned();
    Answer {
        status,
        content_type: headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned(),
        body: serde_json::from_str(&raw).unwrap_or(Value::Null),
        raw,
    }
}

/// Calls and checks the status, naming the caller and route on failure.
pub async fn expect<S, B>(
    app: &S,
    w: &World,
    who: Who,
    method: &str,
    path: &str,
    body: Option<Value>,
    status: u16,
) -> Answer
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let a = call(app, w, who, method, path, body).await;
    assert_eq!(
        a.status.as_u16(),
        status,
        "{who:?} {method} {path}: {}",
        a.raw
    );
    if status >= 400 {
        assert_eq!(
            a.content_type, "application/problem+json",
            "{who:?} {method} {path}"
        );
        assert!(
            a.problem_type().starts_with("urn:frontdesk:problem:"),
            "{}",
            a.raw
        );
        assert_eq!(a.body["status"].as_u64(), Some(u64::from(status)));
    }
    a
}

/// The emails of a users list answer.
pub fn emails(a: &Answer) -> Vec<String> {
    a.body["users"]
        .as_array()
        .map(|us| {
            us.iter()
                .filter_map(|u| u["email"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}
