//! Server time of the users list page against a large seeded database (the
//! bench crate's 1M-user seed): each filter, a search and a combined filter,
//! as staff and as an organization admin. A measurement, not a test of the
//! pages' behaviour: ignored unless asked for, and only with
//! `FRONTDESK_ADMIN_BENCH_DB=<sqlite path or postgres URL>` of a copy it may
//! write to (it adds one session row per run).
//!
//! `FRONTDESK_ADMIN_BENCH_DB=… cargo test --test integration admin_users_timing -- --ignored --nocapture`

use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::test as actix_test;
use diesel::prelude::*;
use frontdesk::Frontdesk;
use frontdesk_core::schema::{memberships, tags, users};
use frontdesk_core::sessions::{self, ClientInfo, SessionConfig};

fn p95(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[((v.len() * 95).div_ceil(100))
        .saturating_sub(1)
        .min(v.len() - 1)]
}

#[test]
#[ignore = "measurement against a seeded database; see the module doc"]
fn admin_users_timing() {
    let Ok(url) = std::env::var("FRONTDESK_ADMIN_BENCH_DB") else {
        eprintln!("SKIPPED (timing): set FRONTDESK_ADMIN_BENCH_DB to a seeded database copy");
        return;
    };
    let iterations: usize = std::env::var("FRONTDESK_ADMIN_BENCH_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let fd = Frontdesk::builder()
        .database_url(&url)
        .pool_size(4)
        .base_url("http://app.test")
        .secret_key(vec![7u8; 32])
        .build()
        .expect("frontdesk");
    let mut conn = fd.pool().get().expect("connection");
    let staff: i64 = users::table
        .filter(users::staff_role.is_not_null())
        .select(users::id)
        .first(&mut *conn)
        .expect("a staff user in the seed");
    let (org_admin, org): (i64, i64) = memberships::table
        .filter(memberships::role.eq("admin"))
        .select((memberships::user_id, memberships::organization_id))
        .first(&mut *conn)
        .expect("an org admin in the seed");
    let tag_ids: Vec<i64> = tags::table
        .select(tags::id)
        .limit(3)
        .load(&mut *conn)
        .expect("tags");
    let token = |conn: &mut frontdesk_core::DbConnection, user: i64| {
        sessions::create(
            conn,
            user,
            &ClientInfo::default(),
            &SessionConfig::default(),
        )
        .expect("session")
        .1
    };
    let staff_token = token(&mut conn, staff);
    let org_token = token(&mut conn, org_admin);
    drop(conn);
    let (t1, t2, t3) = (tag_ids[0], tag_ids[1], tag_ids[2]);
    let cases: Vec<(&str, String)> = vec![
        ("first page, newest first", String::new()),
        ("search (name)", "q=smith".into()),
        ("search (email domain)", "q=gmx.de".into()),
        ("status", "status=suspended".into()),
        ("staff role", "staff=staff".into()),
        ("organization", format!("org={org}")),
        ("organization role", "org_role=owner".into()),
        ("tags all of", format!("tags_all={t1}&tags_all={t2}")),
        ("tags any of", format!("tags_any={t1}&tags_any={t2}")),
        ("tags none of", format!("tags_none={t1}")),
        ("signup range", "created_from=2025-01-01&created_to=2025-03-31".into()),
        ("never signed in", "last_login=never".into()),
        ("last sign-in range", "last_login=range&last_from=2026-01-01".into()),
        ("sort by name", "sort=name&dir=asc".into()),
        ("page 200", "page=200".into()),
        (
            "combined",
            format!("q=an&status=active&org_role=member&tags_any={t3}&tags_none={t1}&last_login=range&last_from=2025-06-01&sort=last_login"),
        ),
    ];
    actix_web::rt::System::new().block_on(async move {
        let app = actix_test::init_service(actix_web::App::new().configure(fd.configure())).await;
        println!("| case | staff p95 ms | org admin p95 ms | staff total |");
        println!("|---|---:|---:|---:|");
        for (name, query) in &cases {
            let mut row = Vec::new();
            let mut total = String::new();
            for token in [&staff_token, &org_token] {
                let mut times = Vec::with_capacity(iterations);
                for _ in 0..iterations {
                    let req = actix_test::TestRequest::get()
                        .uri(&format!("/admin/users?{query}"))
                        .cookie(actix_web::cookie::Cookie::new(
                            "frontdesk_session",
                            token.expose().to_owned(),
                        ))
                        .to_request();
                    let start = Instant::now();
                    let res = actix_test::call_service(&app, req).await;
                    let status = res.status();
                    let body = actix_test::read_body(res).await;
                    times.push(start.elapsed());
                    assert_eq!(status, StatusCode::OK, "{name}");
                    if total.is_empty() && std::ptr::eq(token, &staff_token) {
                        let text = String::from_utf8_lossy(&body);
                        total = text
                            .split(" in all")
                            .next()
                            .and_then(|s| s.rsplit('>').next())
                            .unwrap_or("?")
                            .trim()
                            .to_owned();
                    }
                }
                row.push(p95(times).as_secs_f64() * 1000.0);
            }
            println!("| {name} | {:.1} | {:.1} | {total} |", row[0], row[1]);
        }
    });
}
