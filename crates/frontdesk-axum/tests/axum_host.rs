//! The same host scenario run against both frameworks, over real HTTP, on
//! SQLite and (when `FRONTDESK_TEST_POSTGRES` is set) PostgreSQL: a host on
//! axum (through this crate) and a host on actix-web (frontdesk's own
//! `configure`) each mount frontdesk next to two handlers of their own, and
//! [`host_scenario`] drives both the same way — the sign-in page, the host's
//! handlers behind `CurrentUser`/`OptionalUser`, the admin pages, the JSON
//! API's errors, the API's own sign-in with its CSRF token, a user suspended
//! without a body, an import dry run from a CSV body (sent with a length and
//! chunked), an upload past the import's limit (frontdesk's own 413 problem
//! either way), a streamed export, and the client address recorded from the
//! connection.

// ureq's error carries the whole response; fine in a test.
#![allow(clippy::result_large_err)]

use std::net::SocketAddr;

use axum::routing::get;
use axum::Router;
use diesel::{Connection, RunQueryDsl};
use frontdesk_axum::{CurrentUser, FrontdeskAxum, OptionalUser};
use frontdesk_core::imports::ImportConfig;
use frontdesk_core::users::{self, NewUser};
use frontdesk_core::{passwords, Actor, StaffRole};

const PASSWORD: &str = "correct horse battery staple";

/// The import's size limit in the scenario's frontdesk.
const IMPORT_MAX_BYTES: u64 = 64 * 1024;

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

/// A frontdesk over `db` with one owner who signs in with [`PASSWORD`].
fn frontdesk_with_owner(db: &Db) -> frontdesk::Frontdesk {
    let fd = frontdesk::Frontdesk::builder()
        .database_url(&db.url)
        .base_url("http://127.0.0.1")
        // Small, so that the scenario can send an upload past it.
        .import_config(ImportConfig {
            max_bytes: IMPORT_MAX_BYTES,
            ..ImportConfig::default()
        })
        .build()
        .expect("frontdesk");
    let mut conn = fd.pool().get().expect("conn");
    users::create(
        &mut conn,
        &Actor::system(),
        NewUser {
            email: "owner@host.test".into(),
            first_name: "Ada".into(),
            last_name: "Owner".into(),
            staff_role: Some(StaffRole::Owner),
            password_hash: Some(passwords::hash(PASSWORD).expect("hash")),
            ..NewUser::default()
        },
    )
    .expect("owner");
    users::create(
        &mut conn,
        &Actor::system(),
        NewUser {
            email: "member@host.test".into(),
            first_name: "Grace".into(),
            last_name: "Member".into(),
            ..NewUser::default()
        },
    )
    .expect("member");
    drop(conn);
    fd
}

/// An axum host: frontdesk's router merged beside the host's `/` and `/maybe`.
async fn axum_host(fd: &frontdesk::Frontdesk) -> (String, FrontdeskAxum) {
    let frontdesk = FrontdeskAxum::new(fd).expect("frontdesk thread");
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
    (format!("http://{addr}"), frontdesk)
}

/// An actix-web host: `configure` beside the host's `/` and `/maybe`, on a
/// thread with its own actix system; stopped when the handle is dropped.
struct ActixHost {
    base: String,
    server: actix_web::dev::ServerHandle,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for ActixHost {
    fn drop(&mut self) {
        // Stopped from a thread of its own: the test's runtime may be
        // driving this very thread.
        let server = self.server.clone();
        let _ = std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(server.stop(true));
        })
        .join();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn actix_host(fd: &frontdesk::Frontdesk) -> ActixHost {
    use actix_web::{web, App, HttpServer};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let fd = fd.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let server = HttpServer::new(move || {
                App::new()
                    .configure(fd.configure())
                    .route(
                        "/",
                        web::get().to(|me: frontdesk::CurrentUser| async move {
                            format!("Hello, {}", me.user.email)
                        }),
                    )
                    .route(
                        "/maybe",
                        web::get().to(|me: frontdesk::OptionalUser| async move {
                            me.0.map(|u| u.user.email)
                                .unwrap_or_else(|| "nobody".into())
                        }),
                    )
            })
            .workers(1)
            .listen(listener)
            .expect("listen")
            .run();
            tx.send(server.handle()).expect("handle");
            server.await.expect("actix host");
        })
    });
    let server = rx.recv().expect("the actix host started");
    ActixHost {
        base,
        server,
        thread: Some(thread),
    }
}

/// The shared scenario: what a host on either framework must get, the same
/// answers to the same requests. Blocking (ureq): run it off the runtime.
fn host_scenario(base: &str, label: &str) {
    let agent = ureq::AgentBuilder::new().redirects(0).build();
    let get = |path: &str| agent.get(&format!("{base}{path}")).call();
    let status = |r: Result<ureq::Response, ureq::Error>| match r {
        Ok(r) => (r.status(), r),
        Err(ureq::Error::Status(s, r)) => (s, r),
        Err(e) => panic!("{label}: {e}"),
    };

    // Anonymous: the host's page sends to frontdesk's sign-in page.
    let (s, r) = status(get("/"));
    assert_eq!(s, 303, "{label}");
    assert_eq!(
        r.header("location"),
        Some("/auth/login?next=%2F"),
        "{label}"
    );
    let (s, r) = status(get("/maybe"));
    assert_eq!(
        (s, r.into_string().expect("body")),
        (200, "nobody".into()),
        "{label}"
    );

    // Signing in through frontdesk's own page.
    let (s, r) = status(get("/auth/login"));
    assert_eq!(s, 200, "{label}");
    let html = r.into_string().expect("html");
    let csrf = csrf_of(&html);
    let (s, r) = status(agent.post(&format!("{base}/auth/login")).send_form(&[
        ("csrf_token", &csrf),
        ("email", "owner@host.test"),
        ("password", PASSWORD),
        ("next", "/"),
    ]));
    assert_eq!(s, 303, "{label}: {}", r.into_string().unwrap_or_default());

    // The host's handlers see the user.
    let (s, r) = status(get("/"));
    assert_eq!(
        (s, r.into_string().expect("body")),
        (200, "Hello, owner@host.test".into()),
        "{label}"
    );
    let (_, r) = status(get("/maybe"));
    assert_eq!(r.into_string().expect("body"), "owner@host.test", "{label}");

    // The admin pages and the API's errors.
    let (s, r) = status(get("/admin/users"));
    assert_eq!(s, 200, "{label}");
    assert!(
        r.into_string().expect("html").contains("member@host.test"),
        "{label}"
    );
    let (s, r) = status(
        ureq::AgentBuilder::new()
            .build()
            .get(&format!("{base}/admin/api/v1/users"))
            .call(),
    );
    assert_eq!(s, 401, "{label}");
    assert_eq!(r.content_type(), "application/problem+json", "{label}");

    // The API's own sign-in: a session cookie and the CSRF token its unsafe
    // methods need, on a client of its own.
    let api = ureq::AgentBuilder::new().redirects(0).build();
    let (s, r) = status(
        api.post(&format!("{base}/admin/api/v1/sign-in"))
            .send_json(serde_json::json!({"email": "owner@host.test", "password": PASSWORD})),
    );
    assert_eq!(s, 200, "{label}");
    let signed_in: serde_json::Value = r.into_json().expect("json");
    let token = signed_in["csrf_token"]
        .as_str()
        .expect("csrf_token")
        .to_owned();
    let (s, r) = status(
        api.get(&format!(
            "{base}/admin/api/v1/users?search=member@host.test"
        ))
        .call(),
    );
    assert_eq!(s, 200, "{label}");
    let list: serde_json::Value = r.into_json().expect("json");
    let member = list["users"][0]["id"].as_i64().expect("the member's id");

    // Unsafe methods without the token are refused; with it, a suspension
    // without a body.
    let suspend = format!("{base}/admin/api/v1/users/{member}/suspend");
    let (s, _) = status(api.post(&suspend).call());
    assert_eq!(s, 403, "{label}: no CSRF token");
    let (s, r) = status(api.post(&suspend).set("X-CSRF-Token", &token).call());
    assert_eq!(s, 200, "{label}");
    let suspended: serde_json::Value = r.into_json().expect("json");
    assert_eq!(suspended["status"], "suspended", "{label}: {suspended}");

    // An import dry run from a CSV body (the axum adapter reads uploads
    // before handing them on): one row new, one refused, nothing written.
    let (s, r) = status(
        api.post(&format!("{base}/admin/api/v1/import?mode=dry_run"))
            .set("X-CSRF-Token", &token)
            .set("Content-Type", "text/csv")
            .send_string(
                "email,first_name,last_name\nnew@host.test,New,User\nnot-an-address,Bad,Row\n",
            ),
    );
    let report: serde_json::Value = r.into_json().expect("json");
    assert_eq!(s, 200, "{label}: {report}");
    assert_eq!(
        (&report["created"], &report["rejected"], &report["applied"]),
        (
            &serde_json::json!(1),
            &serde_json::json!(1),
            &serde_json::json!(false)
        ),
        "{label}: {report}"
    );
    let (_, r) = status(
        api.get(&format!("{base}/admin/api/v1/users?search=new@host.test"))
            .call(),
    );
    let after: serde_json::Value = r.into_json().expect("json");
    assert_eq!(after["pagination"]["total"], 0, "{label}: a dry run wrote");

    // The same file sent chunked (no Content-Length): the same report.
    let csv = "email,first_name,last_name\nnew@host.test,New,User\nnot-an-address,Bad,Row\n";
    let (s, r) = status(
        api.post(&format!("{base}/admin/api/v1/import?mode=dry_run"))
            .set("X-CSRF-Token", &token)
            .set("Content-Type", "text/csv")
            .send(std::io::Cursor::new(csv.as_bytes().to_vec())),
    );
    let chunked: serde_json::Value = r.into_json().expect("json");
    assert_eq!(s, 200, "{label}: {chunked}");
    assert_eq!(
        (&chunked["created"], &chunked["rejected"]),
        (&report["created"], &report["rejected"]),
        "{label}: {chunked}"
    );

    // An upload far past the import's limit gets frontdesk's own problem,
    // whichever framework carried it, and nothing is written.
    let mut big = String::from("email,first_name,last_name\n");
    let mut i = 0;
    while big.len() as u64 <= 4 * IMPORT_MAX_BYTES {
        big.push_str(&format!("big{i}@host.test,Big,Upload\n"));
        i += 1;
    }
    for (how, sent) in [
        (
            "with a length",
            api.post(&format!("{base}/admin/api/v1/import?mode=apply"))
                .set("X-CSRF-Token", &token)
                .set("Content-Type", "text/csv")
                .send_string(&big),
        ),
        (
            "chunked",
            api.post(&format!("{base}/admin/api/v1/import?mode=apply"))
                .set("X-CSRF-Token", &token)
                .set("Content-Type", "text/csv")
                .send(std::io::Cursor::new(big.clone().into_bytes())),
        ),
    ] {
        let (s, r) = status(sent);
        assert_eq!(s, 413, "{label}: too large, {how}");
        assert_eq!(
            r.content_type(),
            "application/problem+json",
            "{label}: {how}"
        );
        let problem: serde_json::Value = r.into_json().expect("json");
        assert_eq!(
            (&problem["type"], &problem["detail"]),
            (
                &serde_json::json!("urn:frontdesk:problem:payload-too-large"),
                &serde_json::json!(format!("The file may be at most {IMPORT_MAX_BYTES} bytes."))
            ),
            "{label}: {how}: {problem}"
        );
    }
    let (_, r) = status(
        api.get(&format!("{base}/admin/api/v1/users?search=big0@host.test"))
            .call(),
    );
    let after: serde_json::Value = r.into_json().expect("json");
    assert_eq!(
        after["pagination"]["total"], 0,
        "{label}: a refused upload wrote"
    );

    // A streamed export.
    let (s, r) = status(get("/admin/api/v1/export?fields=email,status"));
    assert_eq!(s, 200, "{label}");
    assert_eq!(r.content_type(), "text/csv", "{label}");
    let csv = r.into_string().expect("csv");
    let mut lines: Vec<&str> = csv.lines().collect();
    lines.sort_unstable();
    assert_eq!(
        lines,
        [
            "email,status",
            "member@host.test,suspended",
            "owner@host.test,active"
        ],
        "{label}"
    );

    // The client's address reached frontdesk (from the connection).
    let (s, r) = status(get("/admin/api/v1/login-attempts"));
    assert_eq!(s, 200, "{label}");
    let body: serde_json::Value = r.into_json().expect("json");
    assert_eq!(
        body["login_attempts"][0]["ip"], "127.0.0.1",
        "{label}: {body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_and_actix_hosts_answer_the_same_scenario() {
    for (backend, db) in backends() {
        let fd = frontdesk_with_owner(&db);
        let (base, _frontdesk) = axum_host(&fd).await;
        let label = format!("axum on {backend}");
        run_blocking(move || host_scenario(&base, &label)).await;
        drop(fd);

        // The same scenario on a fresh database, through actix-web.
        let db = match backend {
            "sqlite" => sqlite(),
            _ => postgres().expect("postgres"),
        };
        let fd = frontdesk_with_owner(&db);
        let host = actix_host(&fd);
        let (base, label) = (host.base.clone(), format!("actix-web on {backend}"));
        run_blocking(move || host_scenario(&base, &label)).await;
        drop(host);
    }
}

async fn run_blocking(f: impl FnOnce() + Send + 'static) {
    if let Err(e) = tokio::task::spawn_blocking(f).await {
        std::panic::resume_unwind(e.into_panic());
    }
}
