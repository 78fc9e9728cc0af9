//! The measured cases of `users-query` and the report table.

use std::fmt::Write as _;
use std::time::Instant;

use chrono::Duration;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use frontdesk_core::db::DbConnection;
use frontdesk_core::users::query::{LastLogin, SortDir, SortKey, StaffFilter, UserQuery};
use frontdesk_core::users::UserStatus;
use frontdesk_core::OrgRole;

use crate::seed::end;
use crate::Options;

pub const TARGET_MS: f64 = 50.0;
pub const PAGES: [i64; 2] = [1, 100];

pub struct Stat {
    pub case: String,
    pub page: i64,
    pub total: i64,
    pub p50: f64,
    pub p95: f64,
    pub max: f64,
}

#[derive(QueryableByName)]
struct Id {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

#[derive(QueryableByName)]
struct Version {
    #[diesel(sql_type = Text)]
    v: String,
}

pub fn version(conn: &mut DbConnection) -> QueryResult<String> {
    let sql = match conn {
        DbConnection::Sqlite(_) => "SELECT 'SQLite ' || sqlite_version() AS v",
        DbConnection::Pg(_) => "SELECT 'PostgreSQL ' || current_setting('server_version') AS v",
    };
    diesel::sql_query(sql)
        .get_result::<Version>(conn)
        .map(|v| v.v)
}

/// The cases, built from the data itself so `--reuse` measures the same thing.
pub fn cases(
    conn: &mut DbConnection,
    users: i64,
) -> Result<Vec<(String, UserQuery)>, Box<dyn std::error::Error>> {
    use frontdesk_core::schema::{memberships, organizations, tags};
    let biggest: Id = diesel::sql_query(
        "SELECT organization_id AS id FROM memberships GROUP BY organization_id ORDER BY count(*) DESC, organization_id LIMIT 1",
    )
    .get_result(conn)?;
    let org = biggest.id;
    let org_members: i64 = memberships::table
        .filter(memberships::organization_id.eq(org))
        .count()
        .get_result(conn)?;
    let slug: String = organizations::table
        .find(org)
        .select(organizations::slug)
        .first(conn)?;
    let tag_id = |conn: &mut DbConnection, name: &str| -> QueryResult<i64> {
        tags::table
            .filter(tags::name.eq(name))
            .select(tags::id)
            .first(conn)
    };
    let (vip, beta, newsletter) = (
        tag_id(conn, "vip")?,
        tag_id(conn, "beta")?,
        tag_id(conn, "newsletter")?,
    );
    let (partner, trial) = (tag_id(conn, "partner")?, tag_id(conn, "enterprise-trial")?);
    let sample = frontdesk_core::users::get(conn, users * 2 / 3)?;
    let local = sample
        .email
        .split('@')
        .next()
        .unwrap_or_default()
        .to_owned();
    let full_name = format!("{} {}", sample.first_name, sample.last_name).to_lowercase();
    let end = end();

    let base = UserQuery::default;
    let with = |f: &dyn Fn(&mut UserQuery)| {
        let mut q = base();
        f(&mut q);
        q
    };
    let mut v: Vec<(String, UserQuery)> = vec![
        ("no filter (created desc)".into(), base()),
        (
            "status = suspended".into(),
            with(&|q| q.status = Some(UserStatus::Suspended)),
        ),
        (
            "status = active".into(),
            with(&|q| q.status = Some(UserStatus::Active)),
        ),
        (
            "staff role: any".into(),
            with(&|q| q.staff = StaffFilter::Staff),
        ),
        (
            format!("organization: largest ({org_members} members)"),
            with(&|q| q.organization = Some(org)),
        ),
        (
            "org role = admin (any org)".into(),
            with(&|q| q.org_role = Some(OrgRole::Admin)),
        ),
        (
            "tags all of: beta + vip".into(),
            with(&|q| q.tags_all = vec![beta, vip]),
        ),
        (
            "tags any of: vip, partner, trial".into(),
            with(&|q| q.tags_any = vec![vip, partner, trial]),
        ),
        (
            "tags none of: newsletter".into(),
            with(&|q| q.tags_none = vec![newsletter]),
        ),
        (
            "signed up in last 90 days".into(),
            with(&|q| q.created_from = Some(end - Duration::days(90))),
        ),
        (
            "last sign-in 60..30 days ago".into(),
            with(&|q| {
                q.last_login = LastLogin::Between(
                    Some(end - Duration::days(60)),
                    Some(end - Duration::days(30)),
                )
            }),
        ),
        (
            "never signed in".into(),
            with(&|q| q.last_login = LastLogin::Never),
        ),
        (
            "active in the last 7 days".into(),
            with(&|q| q.active_since = Some(end - Duration::days(7))),
        ),
        (
            "inactive for 30 days (or never)".into(),
            with(&|q| q.inactive_since = Some(end - Duration::days(30))),
        ),
        (
            "combined: active+org+beta+1y, by last sign-in".into(),
            with(&|q| {
                q.status = Some(UserStatus::Active);
                q.organization = Some(org);
                q.tags_any = vec![beta];
                q.created_from = Some(end - Duration::days(365));
                q.sort = SortKey::LastLogin;
            }),
        ),
        (
            format!("search email \"{local}\""),
            with(&|q| q.search = Some(local.clone())),
        ),
        (
            format!("search email domain \"@{slug}\""),
            with(&|q| q.search = Some(format!("@{slug}"))),
        ),
        (
            format!("search name \"{full_name}\""),
            with(&|q| q.search = Some(full_name.clone())),
        ),
        (
            format!("search name \"{}\"", sample.last_name.to_lowercase()),
            with(&|q| q.search = Some(sample.last_name.to_lowercase())),
        ),
    ];
    for (key, label) in [
        (SortKey::Email, "email"),
        (SortKey::Name, "name"),
        (SortKey::Created, "created"),
        (SortKey::LastLogin, "last sign-in"),
    ] {
        for (dir, d) in [(SortDir::Asc, "asc"), (SortDir::Desc, "desc")] {
            if key == SortKey::Created && dir == SortDir::Desc {
                continue; // the "no filter" case
            }
            v.push((
                format!("sort {label} {d}"),
                with(&|q| {
                    q.sort = key;
                    q.dir = dir;
                }),
            ));
        }
    }
    Ok(v)
}

pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

pub fn measure(
    conn: &mut DbConnection,
    iterations: usize,
    only: Option<&str>,
) -> Result<Vec<Stat>, Box<dyn std::error::Error>> {
    let users: i64 = frontdesk_core::schema::users::table
        .count()
        .get_result(conn)?;
    let mut out = Vec::new();
    for (name, mut q) in cases(conn, users)? {
        if only.is_some_and(|o| !name.contains(o)) {
            continue;
        }
        for page in PAGES {
            q.page = page;
            // Two untimed runs warm the caches, as on a server that has been up a while.
            let mut total = 0;
            for _ in 0..2 {
                total = q.run_scoped(conn, None)?.total;
            }
            let mut ms = Vec::with_capacity(iterations);
            for _ in 0..iterations {
                let t = Instant::now();
                let page = q.run_scoped(conn, None)?;
                ms.push(t.elapsed().as_secs_f64() * 1000.0);
                std::hint::black_box(page);
            }
            ms.sort_by(f64::total_cmp);
            let stat = Stat {
                case: name.clone(),
                page,
                total,
                p50: percentile(&ms, 0.5),
                p95: percentile(&ms, 0.95),
                max: ms[ms.len() - 1],
            };
            eprintln!(
                "  {:<48} page {:>3}: p50 {:>7.1} p95 {:>7.1} max {:>7.1} ms ({} matches)",
                stat.case, page, stat.p50, stat.p95, stat.max, total
            );
            out.push(stat);
        }
    }
    Ok(out)
}

/// p50 and p95 of a bare `SELECT COUNT(*) FROM users`: the floor under every
/// case whose exact total spans (nearly) all users.
pub fn count_floor(conn: &mut DbConnection, iterations: usize) -> QueryResult<(f64, f64)> {
    let mut ms = Vec::with_capacity(iterations);
    for i in 0..iterations + 2 {
        let t = Instant::now();
        let n: i64 = frontdesk_core::schema::users::table
            .count()
            .get_result(conn)?;
        std::hint::black_box(n);
        if i >= 2 {
            ms.push(t.elapsed().as_secs_f64() * 1000.0);
        }
    }
    ms.sort_by(f64::total_cmp);
    Ok((percentile(&ms, 0.5), percentile(&ms, 0.95)))
}

pub fn machine() -> String {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .and_then(|r| r.split_once(':'))
                .map(|(_, m)| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map(|kb| format!(", {} GiB RAM", kb / 1024 / 1024))
        .unwrap_or_default();
    format!("{cores} cores ({cpu}){mem}, {}", std::env::consts::OS)
}

fn cell(s: Option<&Stat>) -> String {
    match s {
        Some(s) => format!(
            "{:.1} | {:.1} | {:.1} | {}",
            s.p50,
            s.p95,
            s.max,
            if s.p95 <= TARGET_MS { "yes" } else { "**no**" }
        ),
        None => "– | – | – | –".into(),
    }
}

pub fn report(
    o: &Options,
    versions: &[String],
    floors: &[(f64, f64)],
    results: &[(&str, Vec<Stat>)],
) -> String {
    let mut r = String::new();
    let _ = writeln!(r, "# Users query benchmark\n");
    let _ = writeln!(r, "```\n{}\n```\n", o.command);
    let _ = writeln!(
        r,
        "- Data: {} users, 1,000 organizations (Zipf-sized), 7 tags (0.1 %–50 % of users), ~10 % suspended, \
         ~20 % never signed in, sign-ups over 3 years.",
        o.users
    );
    let _ = writeln!(
        r,
        "- Machine: {}; shared with other work while measuring.",
        machine()
    );
    let _ = writeln!(r, "- Databases: {}.", versions.join(", "));
    let _ = writeln!(
        r,
        "- Each case runs `UserQuery::run_scoped` (exact COUNT + page of 50) {} times after 2 warm-up \
         runs; times in ms; \"ok\" = p95 ≤ {TARGET_MS} ms. Page 100 is offset 4,950. \
         \"matches\" is the exact total the query returned.\n",
        o.iterations
    );
    let names: Vec<&str> = results.iter().map(|(n, _)| *n).collect();
    let _ = write!(r, "| case | page | matches |");
    for n in &names {
        let _ = write!(r, " {n} p50 | p95 | max | ok |");
    }
    let _ = write!(r, "\n|---|---:|---:|");
    for _ in &names {
        let _ = write!(r, "---:|---:|---:|:-:|");
    }
    r.push('\n');
    let Some((_, first)) = results.first() else {
        return r;
    };
    for (i, s) in first.iter().enumerate() {
        let totals: Vec<String> = results
            .iter()
            .filter_map(|(_, v)| v.get(i))
            .map(|x| x.total.to_string())
            .collect();
        let mut totals_shown = totals.clone();
        totals_shown.dedup();
        let _ = write!(
            r,
            "| {} | {} | {} |",
            s.case,
            s.page,
            totals_shown.join(" / ")
        );
        for (_, v) in results {
            let _ = write!(r, " {} |", cell(v.get(i)));
        }
        r.push('\n');
    }
    for ((n, v), (p50, p95)) in results.iter().zip(floors) {
        let miss = v.iter().filter(|s| s.p95 > TARGET_MS).count();
        let _ = writeln!(
            r,
            "\n{n}: {} of {} cases meet p95 ≤ {TARGET_MS} ms.",
            v.len() - miss,
            v.len()
        );
        let _ = writeln!(
            r,
            "For reference, a bare `SELECT COUNT(*) FROM users` over all {} users takes p50 {p50:.1} ms, \
             p95 {p95:.1} ms on {n} here.",
            o.users
        );
    }
    r
}
