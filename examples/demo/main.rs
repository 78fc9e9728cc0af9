//! A small "notes" SaaS that mounts frontdesk: SQLite under `./demo-data/`, the
//! auth pages at `/auth`, and one page of its own (`/notes`) behind
//! `CurrentUser`. On first start it creates a staff owner and prints the login
//! URL with a one-time password.
//!
//! `cargo run --example demo` (bind with `DEMO_ADDR=127.0.0.1:8080`, data
//! folder with `DEMO_DATA=./demo-data`, public URL with `DEMO_BASE_URL`,
//! another database with `DEMO_DATABASE_URL=postgres://…`, the cap on
//! concurrent argon2 runs with `DEMO_MAX_HASHES`, the PostgreSQL session
//! cache off with `DEMO_SESSION_CACHE=0`, activity recording off with
//! `DEMO_ACTIVITY=0`, a sample social OpenID Connect provider with
//! `DEMO_OIDC_ISSUER`, `DEMO_OIDC_CLIENT_ID` and `DEMO_OIDC_CLIENT_SECRET`).
//! Signed-in users' page views (service `web`), calls to the small JSON API
//! at `/api/mobile/notes` (service `mobile-api`) and each note added are
//! recorded: see a user's "Last access" tab in the admin.
//! Mail (invitations, password resets) goes through the outbox to `.eml`
//! files in `demo-data/mail/`; the first start also creates an organization
//! to invite people into from `/admin/invitations`.
//! For scripts (see `automation.rs`): `DEMO_API_KEY_FILE` writes a staff-owner
//! API key to that file at start-up, `DEMO_SAMPLE_DATA=1` adds sample users.

mod admin_notes;
mod automation;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use actix_web::http::header;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use frontdesk::core::{organizations, users, Actor};
use frontdesk::mail::Transport;
use frontdesk::web::csrf;
use frontdesk::{CurrentUser, Frontdesk, OptionalUser};
use rand::distributions::{Alphanumeric, DistString};
use serde::Deserialize;

const OWNER_EMAIL: &str = "owner@notes.example";

/// The host's own data: notes per user, kept in a JSON file beside the database.
struct Notes {
    file: PathBuf,
    by_user: Mutex<BTreeMap<i64, Vec<String>>>,
}

impl Notes {
    fn open(file: PathBuf) -> Notes {
        let by_user = std::fs::read_to_string(&file)
            .ok()
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_default();
        Notes {
            file,
            by_user: Mutex::new(by_user),
        }
    }

    fn list(&self, user: i64) -> Vec<String> {
        self.by_user
            .lock()
            .map(|m| m.get(&user).cloned().unwrap_or_default())
            .unwrap_or_default()
    }

    fn add(&self, user: i64, text: String) -> std::io::Result<()> {
        let snapshot = {
            let mut map = self
                .by_user
                .lock()
                .map_err(|_| std::io::Error::other("notes lock poisoned"))?;
            map.entry(user).or_default().push(text);
            serde_json::to_string(&*map).map_err(std::io::Error::other)?
        };
        std::fs::write(&self.file, snapshot)
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn page(title: &str, body: &str) -> HttpResponse {
    HttpResponse::Ok().content_type("text/html; charset=utf-8").body(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\
         <link rel=\"stylesheet\" href=\"/auth/static/frontdesk.css\"></head>\
         <body class=\"fd\"><main class=\"fd-card\"><p class=\"fd-site\">Notes</p>{body}</main></body></html>"
    ))
}

async fn home(user: OptionalUser) -> HttpResponse {
    match user.0 {
        Some(me) => page(
            "Notes",
            &format!(
                "<h1>Welcome back, {}</h1><p><a href=\"/notes\">Your notes</a></p>",
                escape(&me.user.name())
            ),
        ),
        None => page(
            "Notes",
            "<h1>Notes</h1><p>A tiny notes app.</p><p><a href=\"/auth/login\">Sign in</a></p>",
        ),
    }
}

async fn notes(
    me: CurrentUser,
    notes: web::Data<Notes>,
    state: web::Data<frontdesk::FrontdeskState>,
) -> HttpResponse {
    // A feature gated by a licence: "Notes Pro" held in any of the user's
    // organizations (given directly, or through one of its groups).
    let user_id = me.id();
    let orgs = state
        .db(move |conn| frontdesk::core::organizations::roles_of(conn, user_id))
        .await
        .unwrap_or_default();
    let mut pro = false;
    for (org, _) in orgs {
        if me.has_licence(org, "pro").await.unwrap_or(false) {
            pro = true;
            break;
        }
    }
    let plan = if pro {
        "Notes Pro: on (a licence from your organization)."
    } else {
        "Notes Pro: off (an organization admin can assign the licence to you or your group)."
    };
    let items: String = notes
        .list(me.id())
        .iter()
        .map(|n| format!("<li>{}</li>", escape(n)))
        .collect::<Vec<_>>()
        .join("");
    let csrf = escape(me.csrf_token());
    page(
        "Your notes",
        &format!(
            "<h1>Your notes</h1><p>Signed in as {email}.</p><p class=\"fd-aside\">{plan}</p><ul>{items}</ul>\
             <form method=\"post\" action=\"/notes\" class=\"fd-form\">\
             <input type=\"hidden\" name=\"csrf_token\" value=\"{csrf}\">\
             <label>New note <input name=\"text\" required maxlength=\"500\"></label>\
             <button type=\"submit\">Add</button></form>\
             <p class=\"fd-aside\"><a href=\"/auth/sessions\">Your sessions</a></p>\
             <form method=\"post\" action=\"/auth/logout\"><input type=\"hidden\" name=\"csrf_token\" value=\"{csrf}\">\
             <button type=\"submit\">Sign out</button></form>",
            email = escape(&me.user.email),
        ),
    )
}

#[derive(Deserialize)]
struct NewNote {
    #[serde(default)]
    text: String,
    #[serde(default)]
    csrf_token: String,
}

async fn add_note(
    req: HttpRequest,
    me: CurrentUser,
    activity: frontdesk::web::activity::Activity,
    notes: web::Data<Notes>,
    state: web::Data<frontdesk::FrontdeskState>,
    form: web::Form<NewNote>,
) -> Result<HttpResponse, frontdesk::WebError> {
    // The host's own forms use frontdesk's CSRF check too.
    csrf::verify(&req, &state, &form.csrf_token)?;
    let text = form.text.trim();
    if text.is_empty() || text.chars().count() > 500 {
        return Err(frontdesk::WebError::bad_request(
            "A note has 1 to 500 characters.",
        ));
    }
    notes
        .add(me.id(), text.to_owned())
        .map_err(frontdesk::WebError::internal)?;
    // A feature event: what was done, never the note itself.
    activity.for_service("web").record(
        &me,
        "note.created",
        serde_json::json!({ "length": text.chars().count() }),
    );
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/notes"))
        .finish())
}

/// The mobile app's view of the notes (JSON; the session cookie signs it in
/// here, a real app would use its own tokens).
async fn mobile_notes(me: CurrentUser, notes: web::Data<Notes>) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "notes": notes.list(me.id()) }))
}

/// The same tiny handler with and without authentication, for the load bench.
async fn hello_public() -> HttpResponse {
    HttpResponse::Ok().body("hello")
}

async fn hello_private(_me: CurrentUser) -> HttpResponse {
    HttpResponse::Ok().body("hello")
}

/// Creates the staff owner on first start; returns the one-time password.
fn first_start(fd: &Frontdesk) -> Result<Option<String>, Box<dyn std::error::Error>> {
    let mut conn = fd.pool().get()?;
    if users::find_by_email(&mut conn, OWNER_EMAIL)?.is_some() {
        return Ok(None);
    }
    let password = Alphanumeric.sample_string(&mut rand::rngs::OsRng, 20);
    users::create_admin(&mut conn, OWNER_EMAIL, &password)?;
    organizations::create(&mut conn, &Actor::system(), "notes-team", "Notes team", "")?;
    Ok(Some(password))
}

fn data_dir() -> std::io::Result<PathBuf> {
    let dir = PathBuf::from(std::env::var("DEMO_DATA").unwrap_or_else(|_| "./demo-data".into()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// `DEMO_OIDC_ISSUER` with `DEMO_OIDC_CLIENT_ID` and `DEMO_OIDC_CLIENT_SECRET`
/// (and optionally `DEMO_OIDC_NAME`, default "Sample OIDC"): a host-wide
/// social OpenID Connect provider, "Continue with …" on the login page.
/// Register `{DEMO_BASE_URL}/auth/sso/callback` as its redirect URI.
fn sample_social_provider() -> Result<Option<frontdesk::Provider>, Box<dyn std::error::Error>> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    let Some(issuer) = var("DEMO_OIDC_ISSUER") else {
        return Ok(None);
    };
    let (Some(id), Some(secret)) = (var("DEMO_OIDC_CLIENT_ID"), var("DEMO_OIDC_CLIENT_SECRET"))
    else {
        return Err(
            "DEMO_OIDC_ISSUER needs DEMO_OIDC_CLIENT_ID and DEMO_OIDC_CLIENT_SECRET".into(),
        );
    };
    let name = var("DEMO_OIDC_NAME").unwrap_or_else(|| "Sample OIDC".into());
    Ok(Some(frontdesk::Provider::oidc(
        "demo-oidc",
        name,
        issuer,
        id,
        secret,
    )))
}

fn secret_key(dir: &Path) -> std::io::Result<Vec<u8>> {
    let file = dir.join("secret.key");
    match std::fs::read(&file) {
        Ok(k) if k.len() >= 32 => Ok(k),
        _ => {
            let key = Alphanumeric
                .sample_string(&mut rand::rngs::OsRng, 48)
                .into_bytes();
            std::fs::write(&file, &key)?;
            Ok(key)
        }
    }
}

#[actix_web::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Log lines on stderr, each inside its request's span (`request{request_id=…
    // method=…}`; the span is at debug level, turned on here for frontdesk's
    // request spans only); `RUST_LOG` (e.g. `debug`) replaces the filter.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new("info,frontdesk_web::request_id=debug")
            }),
        )
        .with_writer(std::io::stderr)
        .init();
    let addr = std::env::var("DEMO_ADDR").unwrap_or_else(|_| "127.0.0.1:8080".into());
    let base_url = std::env::var("DEMO_BASE_URL").unwrap_or_else(|_| format!("http://{addr}"));
    let dir = data_dir()?;
    // SQLite in the data folder unless DEMO_DATABASE_URL names another database.
    let database_url = std::env::var("DEMO_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| format!("sqlite://{}", dir.join("notes.db").display()));
    let mut builder = Frontdesk::builder();
    if let Some(n) = std::env::var("DEMO_MAX_HASHES")
        .ok()
        .and_then(|n| n.parse().ok())
    {
        builder = builder.max_concurrent_hashes(n);
    }
    // DEMO_SESSION_CACHE=0 turns the PostgreSQL session cache off (to compare).
    if std::env::var("DEMO_SESSION_CACHE").is_ok_and(|v| v == "0") {
        builder = builder.session_cache(0, std::time::Duration::ZERO);
    }
    // DEMO_SIGNUP_LIMITS=off lifts the sign-up limits per address and per IP
    // (the load bench signs up many addresses from one IP).
    if std::env::var("DEMO_SIGNUP_LIMITS").is_ok_and(|v| v == "off") {
        builder = builder.signup_limits(frontdesk::core::signup::SignupLimits {
            per_email: i64::MAX,
            per_ip: i64::MAX,
            ..Default::default()
        });
    }
    // Mail (invitations, password resets) leaves the outbox as .eml files.
    let mail_dir = dir.join("mail");
    let builder = builder
        .mail_transport(Transport::file(&mail_dir)?)
        .mail_from("Notes <no-reply@notes.example>")
        .database_url(database_url.clone())
        .base_url(&base_url)
        .site_name("Notes")
        .after_login("/notes")
        // Anyone may sign up on the demo (verification mail in the mail folder).
        .signup_policy(frontdesk::core::signup::SignupPolicy::Open)
        .secret_key(secret_key(&dir)?)
        // Notes about users, in the admin (menu, page, column, bulk action, section).
        .extension(admin_notes::NotesAdmin)
        // The two services sign-ins and activity are counted for.
        .service("web", "Notes web app")
        .service("mobile-api", "Notes mobile API")
        // Licences organization admins give to members, directly or
        // through groups (organization page, user page, API).
        .licence(frontdesk::Licence::new("pro", "Notes Pro").seats(25))
        .licence(frontdesk::Licence::new("sharing", "Shared notebooks"));
    let builder = match sample_social_provider()? {
        Some(p) => builder.social(p),
        None => builder,
    };
    // Activity recording (DEMO_ACTIVITY=0 turns it off, to compare).
    let builder = if std::env::var("DEMO_ACTIVITY").is_ok_and(|v| v == "0") {
        builder
    } else {
        builder.activity(frontdesk::core::activity::ActivityConfig::default())
    };
    let frontdesk = builder.build()?;
    admin_notes::create_table(&mut *frontdesk.pool().get()?)?;

    match first_start(&frontdesk)? {
        Some(password) => {
            println!("First start: created the staff owner.");
            println!("  Sign in at {base_url}/auth/login");
            println!("  email:    {OWNER_EMAIL}");
            println!(
                "  password: {password}   (shown once; use \"Forgot your password?\" to change it)"
            );
        }
        None => println!("Sign in at {base_url}/auth/login"),
    }
    if std::env::var("DEMO_SAMPLE_DATA").is_ok_and(|v| v == "1") {
        automation::sample_data(&frontdesk)?;
    }
    if let Some(file) = std::env::var_os("DEMO_API_KEY_FILE").filter(|f| !f.is_empty()) {
        automation::write_key(&frontdesk, OWNER_EMAIL, Path::new(&file))?;
        println!(
            "Wrote a staff-owner API key to {}",
            Path::new(&file).display()
        );
    }
    let worker = frontdesk.start_mailer()?;
    println!(
        "Invite people at {base_url}/admin/invitations; mail is written as .eml files to {}",
        std::fs::canonicalize(&mail_dir)
            .unwrap_or(mail_dir)
            .display()
    );

    let store = web::Data::new(Notes::open(dir.join("notes.json")));
    HttpServer::new(move || {
        App::new()
            .configure(frontdesk.configure())
            .app_data(store.clone())
            .service(
                web::scope("/api/mobile")
                    .wrap(frontdesk.activity_middleware().service("mobile-api"))
                    .route("/notes", web::get().to(mobile_notes)),
            )
            .service(
                web::scope("")
                    .wrap(frontdesk.activity_middleware().service("web"))
                    .wrap(frontdesk::security_headers())
                    .route("/", web::get().to(home))
                    .route("/notes", web::get().to(notes))
                    .route("/notes", web::post().to(add_note))
                    .route("/hello", web::get().to(hello_public))
                    .route("/me/hello", web::get().to(hello_private)),
            )
    })
    .bind(&addr)?
    .run()
    .await?;
    worker.shutdown().await;
    Ok(())
}
