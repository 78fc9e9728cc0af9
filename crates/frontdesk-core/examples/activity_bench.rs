//! Activity ingestion and timeline figures, SQLite and (with
//! `FRONTDESK_BENCH_POSTGRES=postgres://…/any_db`) PostgreSQL, in a scratch
//! database each:
//!
//! `cargo run --release -p frontdesk-core --example activity_bench [events] [users]`
//!
//! - ingestion: `events` page views (default 200,000) over `users` users
//!   (default 1,000) handed to the recorder as fast as one thread can (a
//!   million at a time, then waiting for the queue to drain), timed until the
//!   background writer has written the last one (batches of 500, one
//!   multi-row insert each);
//! - timeline: first page (50 events) of the user with the most events,
//!   p50/p95 of 500 reads.

use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use frontdesk_core::activity::{self, ActivityConfig, NewActivity, Recorder, TimelineFilter};
use frontdesk_core::db::{self, BackendKind, Pool};
use frontdesk_core::schema::users;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let events: usize = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(200_000);
    let n_users: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(1_000);

    let dir = std::env::temp_dir().join(format!("frontdesk-activity-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let sqlite = format!("sqlite://{}", dir.join("bench.db").display());
    run("SQLite", &sqlite, events, n_users)?;
    std::fs::remove_dir_all(&dir)?;

    if let Ok(admin) = std::env::var("FRONTDESK_BENCH_POSTGRES") {
        let name = format!("frontdesk_activity_bench_{}", std::process::id());
        let mut c = PgConnection::establish(&admin)?;
        c.batch_execute(&format!("CREATE DATABASE {name}"))?;
        let (base, _) = admin
            .rsplit_once('/')
            .ok_or("FRONTDESK_BENCH_POSTGRES: no database name")?;
        let result = run("PostgreSQL", &format!("{base}/{name}"), events, n_users);
        c.batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)"))?;
        result?;
    } else {
        println!("PostgreSQL: skipped (set FRONTDESK_BENCH_POSTGRES)");
    }
    Ok(())
}

/// Events queued at a time (a million page views hold a few hundred MB).
const CHUNK: usize = 1_000_000;

fn run(
    label: &str,
    url: &str,
    events: usize,
    n_users: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let pool: Pool = db::connect(url, 4)?;
    let ids = seed_users(&pool, n_users)?;
    let recorder = Recorder::start(
        pool.clone(),
        ActivityConfig::default()
            .queue_capacity(events.min(CHUNK) + 1)
            .page_view_dedup(None)
            .retention(None),
        &[],
    )?;
    let t0 = frontdesk_core::time::now() - chrono::Duration::days(1);
    let start = Instant::now();
    for i in 0..events {
        if i > 0 && i % CHUNK == 0 {
            // The producer outruns the writer: the queue is held to a chunk
            // (memory), and the writer stays busy but for the moment the
            // queue runs dry at each chunk's end.
            recorder.flush();
        }
        // One user in ten gets half of all events: a heavy user for the timeline.
        let user = if i % 2 == 0 {
            ids[0]
        } else {
            ids[i % ids.len()]
        };
        recorder.record(NewActivity {
            user_id: user,
            at: t0 + chrono::Duration::milliseconds(i as i64),
            kind: activity::PAGE_VIEW.into(),
            service: Some("web".into()),
            route: Some(format!("/projects/{{id}}/page{}", i % 20)),
            method: Some("GET".into()),
            status: Some(200),
            details: "{}".into(),
            ip: None,
        });
    }
    let queued = start.elapsed();
    recorder.flush();
    let total = start.elapsed();
    let stats = recorder.stats();
    assert_eq!(stats.written as usize, events, "{stats:?}");
    println!(
        "{label}: {events} events over {n_users} users: queued in {:.0} ms, written in {:.2} s = {:.0} events/s (dropped {})",
        queued.as_secs_f64() * 1000.0,
        total.as_secs_f64(),
        events as f64 / total.as_secs_f64(),
        stats.dropped,
    );

    let mut conn = pool.get()?;
    if conn.kind() == BackendKind::Postgres {
        conn.batch_execute("ANALYZE activity_events")?;
    }
    let mut times: Vec<Duration> = Vec::with_capacity(500);
    for _ in 0..500 {
        let s = Instant::now();
        let (rows, next) = activity::timeline(&mut conn, ids[0], &TimelineFilter::default(), 50)?;
        times.push(s.elapsed());
        assert!(rows.len() == 50 && next.is_some());
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{label}: timeline first page (50 of {} events of one user, table of {events}): p50 {:.2} ms, p95 {:.2} ms",
        events / 2 + 1,
        ms(times[times.len() / 2]),
        ms(times[times.len() * 95 / 100]),
    );
    Ok(())
}

fn seed_users(pool: &Pool, n: usize) -> Result<Vec<i64>, Box<dyn std::error::Error>> {
    let mut conn = pool.get()?;
    let t = frontdesk_core::time::now();
    let mut ids = Vec::with_capacity(n);
    conn.transaction::<_, diesel::result::Error, _>(|c| {
        for i in 0..n {
            let id: i64 = diesel::insert_into(users::table)
                .values((
                    users::email.eq(format!("bench{i}@example.com")),
                    users::first_name.eq("Bench"),
                    users::last_name.eq(format!("{i}")),
                    users::profile.eq("{}"),
                    users::search_text.eq(format!("bench{i}")),
                    users::created_at.eq(t),
                    users::updated_at.eq(t),
                ))
                .returning(users::id)
                .get_result(c)?;
            ids.push(id);
        }
        Ok(())
    })?;
    Ok(ids)
}
