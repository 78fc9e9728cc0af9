//! An axum host app with frontdesk mounted: a home page for signed-in users,
//! the sign-in pages under `/auth`, the admin under `/admin`, SQLite by
//! default. On first start it creates a staff owner and prints a one-time
//! password.
//!
//! `cargo run -p frontdesk-axum --example demo_axum` then open
//! <http://127.0.0.1:3000/>. `DATABASE_URL` may name another database
//! (`postgres://…`); `PORT` another port.

use std::net::SocketAddr;

use axum::response::Html;
use axum::routing::get;
use axum::Router;
use frontdesk_axum::{CurrentUser, FrontdeskAxum};
use frontdesk_core::users;
use rand::distributions::{Alphanumeric, DistString};

const OWNER_EMAIL: &str = "owner@axum.example";

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

async fn home(user: CurrentUser) -> Html<String> {
    Html(format!(
        "<!doctype html><html lang=\"en\"><title>Home</title><main>\
         <h1>Hello, {}</h1>\
         <p><a href=\"/admin/\">Admin</a> · <a href=\"/auth/sessions\">Your sessions</a></p>\
         <form method=\"post\" action=\"/auth/logout\">\
         <input type=\"hidden\" name=\"csrf_token\" value=\"{}\">\
         <button>Sign out</button></form></main></html>",
        escape(&user.user.name()),
        escape(user.csrf_token())
    ))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3000);
    let database_url = std::env::var("DATABASE_URL").unwrap_or_else(|_| {
        std::fs::create_dir_all("demo-data").ok();
        "sqlite://demo-data/axum-users.db".into()
    });
    let fd = frontdesk::Frontdesk::builder()
        .database_url(database_url)
        .base_url(format!("http://127.0.0.1:{port}"))
        .site_name("Axum demo")
        .build()?;
    {
        let mut conn = fd.pool().get()?;
        if users::find_by_email(&mut conn, OWNER_EMAIL)?.is_none() {
            let password = Alphanumeric.sample_string(&mut rand::rngs::OsRng, 20);
            users::create_admin(&mut conn, OWNER_EMAIL, &password)?;
            println!("Created the staff owner:\n  email:    {OWNER_EMAIL}\n  password: {password}   (shown once)");
        }
    }
    let frontdesk = FrontdeskAxum::new(&fd)?;
    let app = Router::new()
        .route("/", get(home))
        // The auth bench's pair (as in the actix-web demo): the same tiny
        // answer without and behind the session check.
        .route("/hello", get(|| async { "hello" }))
        .route("/me/hello", get(|_me: CurrentUser| async { "hello" }))
        .merge(frontdesk.router())
        .layer(frontdesk.layer());
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("Listening on http://127.0.0.1:{port}/");
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await?;
    Ok(())
}
