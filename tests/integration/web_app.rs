//! Drives frontdesk mounted in a real `actix_web::App` like a browser would:
//! a cookie jar, CSRF tokens read from the pages, and the database read back.

use std::collections::BTreeMap;

use actix_http::Request;
use actix_web::body::MessageBody;
use actix_web::cookie::Cookie;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::{header, StatusCode};
use actix_web::{test, HttpResponse};
use frontdesk::{CurrentUser, Frontdesk};
use frontdesk_core::users::{self, NewUser, User};
use frontdesk_core::{passwords, Actor};

use crate::support::TestDb;

pub const PASSWORD: &str = "correct horse battery";

/// Runs an async test body on an actix system (the `both!` bodies are sync).
pub fn block_on<F: std::future::Future<Output = ()>>(f: F) {
    actix_web::rt::System::new().block_on(f);
}

pub fn frontdesk(db: &TestDb) -> Frontdesk {
    builder(db).build().expect("frontdesk")
}

pub fn builder(db: &TestDb) -> frontdesk::FrontdeskBuilder {
    Frontdesk::builder()
        .database_url(&db.url)
        .pool_size(4)
        .base_url("http://app.test")
        .secret_key(vec![7u8; 32])
        .site_name("Notes")
}

/// The host's own page behind `CurrentUser`.
pub async fn notes(me: CurrentUser) -> HttpResponse {
    HttpResponse::Ok().body(format!("notes of {}", me.user.email))
}

/// Builds the host app: frontdesk mounted, plus `/notes`.
#[macro_export]
macro_rules! host_app {
    ($fd:expr) => {
        actix_web::test::init_service(
            actix_web::App::new()
                .configure($fd.configure())
                .route("/notes", actix_web::web::get().to($crate::web_app::notes)),
        )
        .await
    };
}

pub fn user_with_password(db: &TestDb, email: &str) -> User {
    let mut conn = db.conn();
    users::create(
        &mut conn,
        &Actor::system(),
        NewUser {
            email: email.into(),
            first_name: "Ada".into(),
            password_hash: Some(passwords::hash(PASSWORD).expect("hash")),
            ..NewUser::default()
        },
    )
    .expect("user")
}

/// One response, read in full.
pub struct Page {
    pub status: StatusCode,
    pub headers: header::HeaderMap,
    pub cookies: Vec<Cookie<'static>>,
    pub body: String,
}

impl Page {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Where the answer sends the browser: its `Location`, or the URL of a
    /// `Refresh` header (the page that moves on to a sign-in provider).
    pub fn location(&self) -> &str {
        self.header("location")
            .or_else(|| {
                self.header("refresh")
                    .and_then(|r| r.split_once("url=").map(|(_, u)| u))
            })
            .unwrap_or("")
    }

    pub fn cookie(&self, name: &str) -> Option<&Cookie<'static>> {
        self.cookies.iter().find(|c| c.name() == name)
    }

    /// The CSRF token of the first form on the page.
    pub fn csrf(&self) -> String {
        let marker = "name=\"csrf_token\" value=\"";
        let start = self
            .body
            .find(marker)
            .map(|i| i + marker.len())
            .expect("a form with a CSRF token");
        let end = self.body[start..].find('"').expect("end of token") + start;
        self.body[start..end].to_owned()
    }
}

/// A browser: keeps cookies between requests.
#[derive(Default, Clone)]
pub struct Browser {
    pub jar: BTreeMap<String, String>,
    pub headers: Vec<(String, String)>,
}

impl Browser {
    pub fn new() -> Self {
        Browser::default()
    }

    pub async fn send<S, B>(&mut self, app: &S, req: test::TestRequest) -> Page
    where
        S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
        B: MessageBody,
    {
        let mut req = req;
        for (k, v) in &self.jar {
            req = req.cookie(Cookie::new(k.clone(), v.clone()));
        }
        for (k, v) in &self.headers {
            req = req.insert_header((k.as_str(), v.as_str()));
        }
        let res = test::call_service(app, req.to_request()).await;
        let status = res.status();
        let headers = res.headers().clone();
        let cookies: Vec<Cookie<'static>> =
            res.response().cookies().map(|c| c.into_owned()).collect();
        for c in &cookies {
            let expired =
                c.max_age().is_some_and(|a| a.is_zero() || a.is_negative()) || c.value().is_empty();
            if expired {
                self.jar.remove(c.name());
            } else {
                self.jar.insert(c.name().to_owned(), c.value().to_owned());
            }
        }
        let bytes = test::read_body(res).await;
        Page {
            status,
            headers,
            cookies,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    pub async fn get<S, B>(&mut self, app: &S, uri: &str) -> Page
    where
        S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
        B: MessageBody,
    {
        self.send(app, test::TestRequest::get().uri(uri)).await
    }

    pub async fn post<S, B>(&mut self, app: &S, uri: &str, form: &[(&str, &str)]) -> Page
    where
        S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
        B: MessageBody,
    {
        let body: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let req = test::TestRequest::post()
            .uri(uri)
            .insert_header((header::CONTENT_TYPE, "application/x-www-form-urlencoded"))
            .set_payload(body);
        self.send(app, req).await
    }

    /// Opens the login page and signs in; returns the login response.
    pub async fn login<S, B>(&mut self, app: &S, email: &str, password: &str) -> Page
    where
        S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
        B: MessageBody,
    {
        let page = self.get(app, "/auth/login").await;
        let csrf = page.csrf();
        self.post(
            app,
            "/auth/login",
            &[
                ("email", email),
                ("password", password),
                ("csrf_token", &csrf),
            ],
        )
        .await
    }

    pub fn session(&self) -> Option<&str> {
        self.jar.get("frontdesk_session").map(String::as_str)
    }
}

pub fn count(db: &TestDb, table: &str) -> i64 {
    use diesel::prelude::*;
    use frontdesk_core::schema::{login_attempts, outbox, password_resets, sessions};
    let mut conn = db.conn();
    let c = &mut *conn;
    match table {
        "sessions" => sessions::table.count().get_result(c),
        "login_attempts" => login_attempts::table.count().get_result(c),
        "outbox" => outbox::table.count().get_result(c),
        "password_resets" => password_resets::table.count().get_result(c),
        other => panic!("no counter for {other}"),
    }
    .expect("count")
}
