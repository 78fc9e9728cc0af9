//! An axum host mounting frontdesk: the sign-in page, a host handler behind
//! `CurrentUser`, the admin pages, the JSON API's errors, a streamed export,
//! and the client address recorded from axum's connection info — over real
//! HTTP, on SQLite and (when `FRONTDESK_TEST_POSTGRES` is set) PostgreSQL.

// ureq's error carries the whole response; fine in a test.
#![allow(clippy::result_large_err)]

use std::net::SocketAddr;

use axum::routing::get;
use axum::Router;
use diesel::{Connection, RunQueryDsl};
use frontdesk_axum::{CurrentUser, FrontdeskAxum, OptionalUser};
use frontdesk_core::users::{self, NewUser};
use frontdesk_core::{passwords, Actor, StaffRole};

const PASSWORD: &str = "correct horse battery staple";

struct Db {
    url: String,
    _dir: Option<tempfile::TempDir>,
    drop_pg: Option<(String, String)>,
}

impl Drop for Db {
    fn drop(&mut self) {
        if let Some((admin, name)) = &self.drop_pg {
            if let Ok(mut c) = diesel::PgConnection::establish(admin) {
                let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut c);
            }
        }
    }
}

fn sqlite() -> Db {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("users.db").display());
    Db {
        url,
        _dir: Some(dir),
        drop_pg: None,
    }
}

fn postgres() -> Option<Db> {
    let admin = std::env::var("FRONTDESK_TEST_POSTGRES").ok()?;
    let name = format!("fd_axum_{}", rand::random::<u32>());
    let mut c = diesel::PgConnection::establish(&admin).expect("postgres");
    diesel::sql_query(format!("CREATE DATABASE {name}"))
        .execute(&mut c)
        .expect("create database");
    let (base, _) = admin.rsplit_once('/').expect("database url");
    Some(Db {
        url: format!("{base}/{name}"),
        _dir: None,
        drop_pg: Some((admin, name)),
    })
}

fn backends() -> Vec<(&'static str, Db)> {
    let mut v = vec![("sqlite", sqlite())];
    match postgres() {
        Some(db) => v.push(("postgres", db)),
        None if std::env::var("FRONTDESK_REQUIRE_POSTGRES").as_deref() == Ok("1") => {
            panic!("FRONTDESK_REQUIRE_POSTGRES=1 but FRONTDESK_TEST_POSTGRES is not set")
        }
        None => println!("SKIPPED: axum host on PostgreSQL (FRONTDESK_TEST_POSTGRES not set)"),
    }
    v
}

/// The hidden CSRF field of a page.
fn csrf_of(html: &str) -> String {
    let at = html
        .find("name=\"csrf_token\" value=\"")
        .expect("csrf field")
        + 25;
    html[at..].split('"').next().unwrap_or("").to_owned()
}

async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .expect("serve");
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_axum_host_serves_frontdesk_and_its_extractors() {
    for (backend, db) in backends() {
        let fd = frontdesk::Frontdesk::builder()
            .database_url(&db.url)
            .base_url("http://127.0.0.1")
            .build()
            .expect("frontdesk");
        {
            let mut conn = fd.pool().get().expect("conn");
            users::create(
                &mut conn,
                &Actor::system(),
                NewUser {
                    email: "owner@axum.test".into(),
                    first_name: "Ada".into(),
                    last_name: "Owner".into(),
                    staff_role: Some(StaffRole::Owner),
                    password_hash: Some(passwords::hash(PASSWORD).expect("hash")),
                    ..NewUser::default()
                },
            )
            .expect("owner");
        }
        let frontdesk = FrontdeskAxum::new(&fd).expect("frontdesk thread");
        let app = Router::new()
            .route(
                "/",
                get(|user: CurrentUser| async move { format!("Hello, {}", user.user.email) }),
            )
            .route(
                "/maybe",
                get(|user: OptionalUser| async move {
                    user.0
                        .map(|u| u.user.email)
                        .unwrap_or_else(|| "nobody".into())
                }),
            )
            .merge(frontdesk.router())
            .layer(frontdesk.layer());
        let addr = serve(app).await;
        let base = format!("http://{addr}");

        let result = tokio::task::spawn_blocking(move || {
            let agent = ureq::AgentBuilder::new().redirects(0).build();
            let get = |path: &str| agent.get(&format!("{base}{path}")).call();
            let status = |r: Result<ureq::Response, ureq::Error>| match r {
                Ok(r) => (r.status(), r),
                Err(ureq::Error::Status(s, r)) => (s, r),
                Err(e) => panic!("{e}"),
            };

            // Anonymous: the host's page sends to frontdesk's sign-in page.
            let (s, r) = status(get("/"));
            assert_eq!(s, 303, "{backend}");
            assert_eq!(r.header("location"), Some("/auth/login?next=%2F"));
            let (s, r) = status(get("/maybe"));
            assert_eq!((s, r.into_string().expect("body")), (200, "nobody".into()));

            // Signing in through frontdesk's own page.
            let (s, r) = status(get("/auth/login"));
            assert_eq!(s, 200, "{backend}");
            let html = r.into_string().expect("html");
            let csrf = csrf_of(&html);
            let (s, r) = status(agent.post(&format!("{base}/auth/login")).send_form(&[
                ("csrf_token", &csrf),
                ("email", "owner@axum.test"),
                ("password", PASSWORD),
                ("next", "/"),
            ]));
            assert_eq!(s, 303, "{backend}: {}", r.into_string().unwrap_or_default());

            // The host's handlers see the user.
            let (s, r) = status(get("/"));
            assert_eq!(
                (s, r.into_string().expect("body")),
                (200, "Hello, owner@axum.test".into()),
                "{backend}"
            );
            let (_, r) = status(get("/maybe"));
            assert_eq!(r.into_string().expect("body"), "owner@axum.test");

            // The admin pages and the API, as on actix-web.
            let (s, r) = status(get("/admin/users"));
            assert_eq!(s, 200, "{backend}");
            assert!(r.into_string().expect("html").contains("owner@axum.test"));
            let (s, r) = status(
                ureq::AgentBuilder::new()
                    .build()
                    .get(&format!("{base}/admin/api/v1/users"))
                    .call(),
            );
            assert_eq!(s, 401, "{backend}");
            assert_eq!(r.content_type(), "application/problem+json");

            // A streamed export.
            let (s, r) = status(get("/admin/api/v1/export?fields=email,staff_role"));
            assert_eq!(s, 200, "{backend}");
            assert_eq!(r.content_type(), "text/csv");
            let csv = r.into_string().expect("csv");
            assert_eq!(
                csv.replace("\r\n", "\n").trim(),
                "email,staff_role\nowner@axum.test,owner"
            );

            // The client's address reached frontdesk (from axum's ConnectInfo).
            let (s, r) = status(get("/admin/api/v1/login-attempts"));
            assert_eq!(s, 200, "{backend}");
            let body: serde_json::Value =
                serde_json::from_str(&r.into_string().expect("json")).expect("json");
            let ip = body["login_attempts"][0]["ip"]
                .as_str()
                .unwrap_or("")
                .to_owned();
            assert_eq!(ip, "127.0.0.1", "{backend}: {body}");
        })
        .await;
        if let Err(e) = result {
            std::panic::resume_unwind(e.into_panic());
        }
    }
}
