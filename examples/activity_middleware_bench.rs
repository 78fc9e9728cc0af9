//! What the activity middleware adds to the server's own time for a
//! signed-in request, without a network or a load generator in the figure:
//!
//! `cargo run --release --example activity_middleware_bench -- [requests] [threads]`
//!
//! (`FRONTDESK_BENCH_POSTGRES=postgres://…/any_db` adds PostgreSQL, in a
//! scratch database). The host's handler takes `CurrentUser` (the session is
//! checked as on any signed-in page) and is mounted twice in one app: under
//! `/on/` wrapped in `activity_middleware()`, under `/off/` bare. Each of
//! `threads` threads (default 2: both cores of the bench machine busy, as
//! under load, plus the background writer) runs its own actix system and app,
//! as actix's workers do, and alternates on and off requests (`requests` of
//! each per thread, default 100,000), so that the machine's noise falls on
//! both alike. Two passes: the default dedup window (one write per user,
//! route and minute: what production does for a user reloading one page),
//! and no dedup (every request queued and written by the batch writer).
//! Prints p50 / p99 / p99.9 of each and the difference on minus off.

use std::time::{Duration, Instant};

use actix_web::cookie::Cookie;
use actix_web::test as actix_test;
use actix_web::{web, App, HttpResponse};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use frontdesk::core::activity::ActivityConfig;
use frontdesk::core::sessions::{self, ClientInfo, SessionConfig};
use frontdesk::core::users::{self as user_store, NewUser};
use frontdesk::web::CurrentUser;
use frontdesk::Frontdesk;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

async fn hello(_me: CurrentUser) -> HttpResponse {
    HttpResponse::Ok().body("hello")
}

fn main() -> Result<(), BoxError> {
    let mut args = std::env::args().skip(1);
    let requests: usize = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(100_000);
    let threads: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(2);

    let dir = tempfile::tempdir()?;
    let sqlite = format!("sqlite://{}", dir.path().join("bench.db").display());
    for dedup in [true, false] {
        run("SQLite", &sqlite, requests, threads, dedup)?;
    }

    if let Ok(admin) = std::env::var("FRONTDESK_BENCH_POSTGRES") {
        let name = format!("frontdesk_activity_mw_bench_{}", std::process::id());
        let mut c = PgConnection::establish(&admin)?;
        c.batch_execute(&format!("CREATE DATABASE {name}"))?;
        let (base, _) = admin
            .rsplit_once('/')
            .ok_or("FRONTDESK_BENCH_POSTGRES: no database name")?;
        let url = format!("{base}/{name}");
        let result = [true, false]
            .into_iter()
            .try_for_each(|dedup| run("PostgreSQL", &url, requests, threads, dedup));
        c.batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)"))?;
        result?;
    } else {
        println!("PostgreSQL: skipped (set FRONTDESK_BENCH_POSTGRES)");
    }
    Ok(())
}

fn run(
    label: &str,
    url: &str,
    requests: usize,
    threads: usize,
    dedup: bool,
) -> Result<(), BoxError> {
    let mut config = ActivityConfig::default();
    if !dedup {
        config = config.page_view_dedup(None);
    }
    let fd = Frontdesk::builder()
        .database_url(url)
        .base_url("http://127.0.0.1:8080")
        .secret_key(vec![7u8; 32])
        .activity(config)
        .build()?;
    // One signed-in user per thread, as if each worker served its own visitor.
    let mut tokens = Vec::with_capacity(threads);
    {
        let mut conn = fd.pool().get()?;
        for i in 0..threads {
            let user = user_store::create(
                &mut conn,
                &frontdesk::Actor::system(),
                NewUser {
                    email: format!("bench{i}-{}@bench.test", u8::from(dedup)),
                    ..NewUser::default()
                },
            )?;
            let (_, token) = sessions::create(
                &mut conn,
                user.id,
                &ClientInfo {
                    ip: Some("127.0.0.1".into()),
                    user_agent: Some("activity-middleware-bench".into()),
                },
                &SessionConfig::default(),
            )?;
            tokens.push(token.expose().to_owned());
        }
    }
    let before = fd.activity().stats();
    let started = Instant::now();
    let handles: Vec<_> = tokens
        .into_iter()
        .map(|token| {
            let fd = fd.clone();
            std::thread::spawn(move || {
                actix_web::rt::System::new().block_on(one_thread(fd, token, requests))
            })
        })
        .collect();
    let mut on = Vec::with_capacity(requests * threads);
    let mut off = Vec::with_capacity(requests * threads);
    for h in handles {
        let (a, b) = h.join().map_err(|_| "a bench thread panicked")??;
        on.extend(a);
        off.extend(b);
    }
    let wall = started.elapsed();
    actix_web::rt::System::new().block_on(fd.activity().flushed());
    let after = fd.activity().stats();

    let on = Dist::of(on);
    let off = Dist::of(off);
    let total = 2 * requests * threads;
    println!(
        "{label}, dedup {}: {threads} threads × {requests} requests each way, {:.0} req/s in all",
        if dedup { "per minute (default)" } else { "off" },
        total as f64 / wall.as_secs_f64()
    );
    println!(
        "  on : p50 {:7.1} µs  p99 {:7.1} µs  p99.9 {:7.1} µs",
        on.p50, on.p99, on.p999
    );
    println!(
        "  off: p50 {:7.1} µs  p99 {:7.1} µs  p99.9 {:7.1} µs",
        off.p50, off.p99, off.p999
    );
    println!(
        "  added by the middleware: p50 {:+.1} µs  p99 {:+.1} µs  p99.9 {:+.1} µs",
        on.p50 - off.p50,
        on.p99 - off.p99,
        on.p999 - off.p999
    );
    println!(
        "  recorder: {} queued, {} deduplicated, {} dropped (queue full), {} written, {} failed",
        after.queued - before.queued,
        after.deduplicated - before.deduplicated,
        after.dropped - before.dropped,
        after.written - before.written,
        after.failed - before.failed,
    );
    if after.failed > before.failed {
        return Err("the batch writer failed to write events".into());
    }
    Ok(())
}

type Durations = (Vec<Duration>, Vec<Duration>);

async fn one_thread(fd: Frontdesk, token: String, requests: usize) -> Result<Durations, BoxError> {
    let app = actix_test::init_service(
        App::new()
            .configure(fd.configure())
            .service(
                web::scope("/on")
                    .wrap(fd.activity_middleware().service("app"))
                    .route("/projects/{id}", web::get().to(hello)),
            )
            .service(web::scope("/off").route("/projects/{id}", web::get().to(hello))),
    )
    .await;
    let cookie = fd.state().session_cookie_name().to_owned();
    let mut on = Vec::with_capacity(requests);
    let mut off = Vec::with_capacity(requests);
    for i in 0..requests + requests / 10 {
        // The first tenth warms both up (statement caches, the dedup map).
        let warm = i < requests / 10;
        // Alternate which goes first, so neither always follows the other.
        let mut pair = [("/on", &mut on), ("/off", &mut off)];
        if i % 2 == 1 {
            pair.reverse();
        }
        for (prefix, into) in pair {
            let req = actix_test::TestRequest::get()
                .uri(&format!("{prefix}/projects/{}", i % 50))
                .cookie(Cookie::new(cookie.clone(), token.clone()))
                .to_request();
            let start = Instant::now();
            let res = actix_test::call_service(&app, req).await;
            let elapsed = start.elapsed();
            if !res.status().is_success() {
                return Err(format!("{prefix}: {}", res.status()).into());
            }
            if !warm {
                into.push(elapsed);
            }
        }
    }
    Ok((on, off))
}

struct Dist {
    p50: f64,
    p99: f64,
    p999: f64,
}

impl Dist {
    fn of(mut d: Vec<Duration>) -> Dist {
        d.sort();
        let at = |q: f64| {
            let i = ((d.len() as f64 - 1.0) * q).round() as usize;
            d[i].as_secs_f64() * 1e6
        };
        Dist {
            p50: at(0.5),
            p99: at(0.99),
            p999: at(0.999),
        }
    }
}
