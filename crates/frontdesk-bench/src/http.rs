//! `http`: the users list as the admin page (`/admin/users`) and as the JSON
//! API (`GET /admin/api/v1/users`) serve it, on the seeded database. The real
//! app (`Frontdesk::builder()`, `App::new().configure(…)`) runs in process and
//! is called through `actix_web::test::call_service`, so a timing is the
//! server's own work — extractors, session or key check, the queries, the
//! rendering or JSON — with no network or client in it.

use std::fmt::Write as _;
use std::time::Instant;

use actix_web::cookie::Cookie;
use actix_web::http::StatusCode;
use actix_web::test as actix_test;
use actix_web::App;
use chrono::{Duration, NaiveDateTime, Timelike};
use diesel::prelude::*;
use frontdesk::Frontdesk;
use frontdesk_core::api_keys::{self, KeyRole};
use frontdesk_core::schema::{organizations, users};
use frontdesk_core::sessions::{self, ClientInfo, SessionConfig};
use frontdesk_core::users::query::{LastLogin, SortDir, SortKey, StaffFilter, UserQuery};
use frontdesk_core::StaffRole;

use crate::cases::{percentile, PAGES};
use crate::{BoxError, Options};

/// Goals: the users list page (issue 4) and the list endpoint (issue 7).
pub const PAGE_TARGET_MS: f64 = 100.0;
pub const API_TARGET_MS: f64 = 30.0;

/// p50 / p95 / p99 in ms.
#[derive(Clone, Copy)]
pub struct Dist {
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
}

impl Dist {
    fn of(mut ms: Vec<f64>) -> Dist {
        ms.sort_by(f64::total_cmp);
        Dist {
            p50: percentile(&ms, 0.5),
            p95: percentile(&ms, 0.95),
            p99: percentile(&ms, 0.99),
        }
    }
}

pub struct HttpStat {
    pub case: String,
    pub page: i64,
    pub total: i64,
    /// The bare `UserQuery::run_scoped`, timed in the same loop, for comparison.
    pub query: Dist,
    pub admin_page: Option<Dist>,
    pub api: Option<Dist>,
}

fn day(t: NaiveDateTime, what: &str) -> Result<String, BoxError> {
    if t.num_seconds_from_midnight() != 0 {
        return Err(format!("{what} {t} is not a whole day; the page takes dates").into());
    }
    Ok(t.format("%Y-%m-%d").to_string())
}

/// The page's "to" dates include their day: the day before an exclusive end.
fn day_before(t: NaiveDateTime, what: &str) -> Result<String, BoxError> {
    day(t - Duration::days(1), what)
}

fn rfc3339(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn staff_value(s: StaffFilter) -> Option<&'static str> {
    match s {
        StaffFilter::All => None,
        StaffFilter::Staff => Some("staff"),
        StaffFilter::NotStaff => Some("not_staff"),
        StaffFilter::Is(r) => Some(r.as_str()),
    }
}

fn sort_value(q: &UserQuery) -> (&'static str, &'static str) {
    let sort = match q.sort {
        SortKey::Email => "email",
        SortKey::Name => "name",
        SortKey::Created => "created",
        SortKey::LastLogin => "last_login",
        SortKey::LastActive => "last_active",
    };
    let dir = match q.dir {
        SortDir::Asc => "asc",
        SortDir::Desc => "desc",
    };
    (sort, dir)
}

/// The admin page's query string for `q` (the parameters of its filter form).
pub fn page_query(q: &UserQuery) -> Result<String, BoxError> {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    if let Some(t) = &q.search {
        s.append_pair("q", t);
    }
    if let Some(st) = q.status {
        s.append_pair("status", st.as_str());
    }
    if let Some(v) = staff_value(q.staff) {
        s.append_pair("staff", v);
    }
    if let Some(org) = q.organization {
        s.append_pair("org", &org.to_string());
    }
    if let Some(r) = q.org_role {
        s.append_pair("org_role", r.as_str());
    }
    for (key, ids) in [
        ("tags_all", &q.tags_all),
        ("tags_any", &q.tags_any),
        ("tags_none", &q.tags_none),
    ] {
        for id in ids {
            s.append_pair(key, &id.to_string());
        }
    }
    if let Some(t) = q.created_from {
        s.append_pair("created_from", &day(t, "created_from")?);
    }
    if let Some(t) = q.created_to {
        s.append_pair("created_to", &day_before(t, "created_to")?);
    }
    match q.last_login {
        LastLogin::Any => {}
        LastLogin::Never => {
            s.append_pair("last_login", "never");
        }
        LastLogin::Between(from, to) => {
            s.append_pair("last_login", "range");
            if let Some(t) = from {
                s.append_pair("last_from", &day(t, "last sign-in from")?);
            }
            if let Some(t) = to {
                s.append_pair("last_to", &day_before(t, "last sign-in to")?);
            }
        }
    }
    let (sort, dir) = sort_value(q);
    s.append_pair("sort", sort);
    s.append_pair("dir", dir);
    s.append_pair("page", &q.page.to_string());
    Ok(s.finish())
}

/// The API's query string for `q`; the API names organizations by slug.
pub fn api_query(q: &UserQuery, org_slug: Option<&str>) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    if let Some(t) = &q.search {
        s.append_pair("search", t);
    }
    if let Some(st) = q.status {
        s.append_pair("status", st.as_str());
    }
    if let Some(v) = staff_value(q.staff) {
        s.append_pair("staff", v);
    }
    if let Some(slug) = org_slug {
        s.append_pair("organization", slug);
    }
    if let Some(r) = q.org_role {
        s.append_pair("org_role", r.as_str());
    }
    for (key, ids) in [
        ("tags_all", &q.tags_all),
        ("tags_any", &q.tags_any),
        ("tags_none", &q.tags_none),
    ] {
        if !ids.is_empty() {
            let list: Vec<String> = ids.iter().map(i64::to_string).collect();
            s.append_pair(key, &list.join(","));
        }
    }
    if let Some(t) = q.created_from {
        s.append_pair("created_from", &rfc3339(t));
    }
    if let Some(t) = q.created_to {
        s.append_pair("created_to", &rfc3339(t));
    }
    match q.last_login {
        LastLogin::Any => {}
        LastLogin::Never => {
            s.append_pair("last_login", "never");
        }
        LastLogin::Between(from, to) => {
            if let Some(t) = from {
                s.append_pair("last_login_from", &rfc3339(t));
            }
            if let Some(t) = to {
                s.append_pair("last_login_to", &rfc3339(t));
            }
        }
    }
    let (sort, dir) = sort_value(q);
    s.append_pair("sort", sort);
    s.append_pair("dir", dir);
    s.append_pair("page", &q.page.to_string());
    s.finish()
}

/// The total a page shows in its pager ("N in all").
/// The total the page shows and whether it is exact ("100,000+ in all" is a
/// capped count).
fn page_total(html: &str) -> Option<(i64, bool)> {
    let before = html.split(" in all").next()?;
    let shown = before.rsplit('>').next()?.trim();
    match shown.strip_suffix('+') {
        Some(n) => Some((n.replace(',', "").parse().ok()?, false)),
        None => Some((shown.parse().ok()?, true)),
    }
}

fn api_total(json: &[u8]) -> Option<i64> {
    serde_json::from_slice::<serde_json::Value>(json)
        .ok()?
        .pointer("/pagination/total")?
        .as_i64()
}

fn ms_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

/// Who the bench acts as: a staff admin's session for the page, a staff key for the API.
struct Credentials {
    session_id: i64,
    session_token: String,
    key_id: i64,
    key: String,
    owner: i64,
}

fn credentials(fd: &Frontdesk) -> Result<Credentials, BoxError> {
    let mut conn = fd.pool().get()?;
    let staff = |conn: &mut frontdesk_core::DbConnection, role: StaffRole| {
        users::table
            .filter(users::staff_role.eq(role.as_str()))
            .filter(users::status.eq("active"))
            .order(users::id)
            .select(users::id)
            .first::<i64>(conn)
    };
    let admin = staff(&mut conn, StaffRole::Admin)?;
    let owner = staff(&mut conn, StaffRole::Owner)?;
    // The session a successful sign-in would open (argon2 is not what is measured).
    let (session, token) = sessions::create(
        &mut conn,
        admin,
        &ClientInfo {
            ip: Some("127.0.0.1".into()),
            user_agent: Some("frontdesk-bench".into()),
        },
        &SessionConfig::default(),
    )?;
    let owner_actor = frontdesk_core::users::actor_for(&mut conn, owner, None)?;
    let (key, secret) = api_keys::create(
        &mut conn,
        &owner_actor,
        "frontdesk-bench",
        KeyRole::Staff(StaffRole::Admin),
    )?;
    Ok(Credentials {
        session_id: session.id,
        session_token: token.expose().to_owned(),
        key_id: key.id,
        key: secret.expose().to_owned(),
        owner,
    })
}

fn revoke(fd: &Frontdesk, c: &Credentials) -> Result<(), BoxError> {
    let mut conn = fd.pool().get()?;
    sessions::revoke(&mut conn, c.session_id, "benchmark finished")?;
    let owner_actor = frontdesk_core::users::actor_for(&mut conn, c.owner, None)?;
    api_keys::revoke(&mut conn, &owner_actor, c.key_id)?;
    Ok(())
}

/// Measures every case (filtered by `--only`) at pages 1 and 100 on the
/// database `url`, interleaving the bare query, the page and the API in each
/// iteration so that a noisy moment hits all three alike.
pub fn measure(url: &str, o: &Options) -> Result<Vec<HttpStat>, BoxError> {
    let fd = Frontdesk::builder()
        .database_url(url)
        .base_url("http://127.0.0.1:8080")
        .secret_key(vec![7u8; 32])
        .build()?;
    let creds = credentials(&fd)?;
    let result = actix_web::rt::System::new().block_on(run_cases(&fd, &creds, o));
    revoke(&fd, &creds)?;
    result
}

async fn run_cases(
    fd: &Frontdesk,
    creds: &Credentials,
    o: &Options,
) -> Result<Vec<HttpStat>, BoxError> {
    let app = actix_test::init_service(App::new().configure(fd.configure())).await;
    let cookie_name = fd.state().session_cookie_name().to_owned();
    let admin_prefix = fd.state().settings().admin_prefix.clone();
    let mut out = Vec::new();
    let cases = {
        let mut conn = fd.pool().get()?;
        let users: i64 = users::table.count().get_result(&mut *conn)?;
        crate::cases::cases(&mut conn, users)?
    };
    for (name, mut q) in cases {
        if o.only.as_deref().is_some_and(|only| !name.contains(only)) {
            continue;
        }
        if q.active_since.is_some() || q.inactive_since.is_some() {
            // The page and the API take activity as days before now; the
            // seed's times are fixed, so the same set cannot be asked for.
            println!("  {name}: skipped (activity filters are relative to now over HTTP)");
            continue;
        }
        let slug: Option<String> = match q.organization {
            None => None,
            Some(id) => {
                let mut conn = fd.pool().get()?;
                Some(
                    organizations::table
                        .find(id)
                        .select(organizations::slug)
                        .first(&mut *conn)?,
                )
            }
        };
        for page in PAGES {
            q.page = page;
            let page_uri = format!("{admin_prefix}/users?{}", page_query(&q)?);
            let api_uri = format!(
                "{admin_prefix}/api/v1/users?{}",
                api_query(&q, slug.as_deref())
            );
            let mut times = (
                Vec::with_capacity(o.iterations),
                Vec::with_capacity(o.iterations),
                Vec::with_capacity(o.iterations),
            );
            let mut total = 0;
            // Two untimed rounds warm the caches, as on a server that has been up a while.
            for i in 0..o.iterations + 2 {
                let timed = i >= 2;
                let t = Instant::now();
                let result = {
                    let mut conn = fd.pool().get()?;
                    q.run_scoped(&mut conn, None)?
                };
                let ms = ms_since(t);
                total = result.total;
                let shown = (result.total, result.total_is_exact);
                if timed {
                    times.0.push(ms);
                }

                if o.page {
                    let req = actix_test::TestRequest::get()
                        .uri(&page_uri)
                        .cookie(Cookie::new(
                            cookie_name.clone(),
                            creds.session_token.clone(),
                        ))
                        .to_request();
                    let t = Instant::now();
                    let res = actix_test::call_service(&app, req).await;
                    let status = res.status();
                    let body = actix_test::read_body(res).await;
                    let ms = ms_since(t);
                    let html = String::from_utf8_lossy(&body);
                    if status != StatusCode::OK {
                        return Err(format!("{page_uri}: {status}: {html}").into());
                    }
                    if page_total(&html) != Some(shown) {
                        return Err(format!(
                            "{page_uri}: the page shows {:?} users (count, exact), the query \
                             found {shown:?}",
                            page_total(&html)
                        )
                        .into());
                    }
                    if timed {
                        times.1.push(ms);
                    }
                }

                if o.api {
                    let req = actix_test::TestRequest::get()
                        .uri(&api_uri)
                        .insert_header(("authorization", format!("Bearer {}", creds.key)))
                        .to_request();
                    let t = Instant::now();
                    let res = actix_test::call_service(&app, req).await;
                    let status = res.status();
                    let body = actix_test::read_body(res).await;
                    let ms = ms_since(t);
                    if status != StatusCode::OK {
                        return Err(format!(
                            "{api_uri}: {status}: {}",
                            String::from_utf8_lossy(&body)
                        )
                        .into());
                    }
                    if api_total(&body) != Some(total) {
                        return Err(format!(
                            "{api_uri}: the API reports {:?} users, the query found {total}",
                            api_total(&body)
                        )
                        .into());
                    }
                    if timed {
                        times.2.push(ms);
                    }
                }
            }
            let stat = HttpStat {
                case: name.clone(),
                page,
                total,
                query: Dist::of(times.0),
                admin_page: o.page.then(|| Dist::of(times.1)),
                api: o.api.then(|| Dist::of(times.2)),
            };
            let show = |d: Option<Dist>| {
                d.map_or_else(
                    || "–".to_owned(),
                    |d| format!("{:.1}/{:.1}/{:.1}", d.p50, d.p95, d.p99),
                )
            };
            eprintln!(
                "  {:<48} page {:>3}: query p50 {:>6.1} | page {:>17} | api {:>17} ms ({} matches)",
                stat.case,
                page,
                stat.query.p50,
                show(stat.admin_page),
                show(stat.api),
                total
            );
            out.push(stat);
        }
    }
    Ok(out)
}

fn cell(d: Option<Dist>, target: f64) -> String {
    match d {
        Some(d) => format!(
            "{:.1} | {:.1} | {:.1} | {}",
            d.p50,
            d.p95,
            d.p99,
            if d.p95 <= target { "yes" } else { "**no**" }
        ),
        None => "– | – | – | –".into(),
    }
}

/// The markdown page: how it was measured, then one table per backend.
pub fn report(
    o: &Options,
    load: &str,
    versions: &[String],
    results: &[(&str, Vec<HttpStat>)],
) -> String {
    let mut r = String::new();
    let _ = writeln!(r, "# Admin users page and users API benchmark\n");
    let _ = writeln!(r, "```\n{}\n```\n", o.command);
    let _ = writeln!(
        r,
        "- Data: the users-query seed ([bench-users-query.md](bench-users-query.md)): {} users, \
         1,000 organizations, 7 tags; the same cases, each at page 1 and page 100 (offset 4,950).",
        o.users
    );
    let _ = writeln!(
        r,
        "- Machine: {}; load average at the start {load}.",
        crate::cases::machine()
    );
    let _ = writeln!(r, "- Databases: {}.", versions.join(", "));
    let _ = writeln!(
        r,
        "- The real app (`Frontdesk::builder()` … `App::new().configure(frontdesk.configure())`, \
         pool of 8) runs in this process and each request goes through \
         `actix_web::test::call_service`, the body read to its end: the time is the server's own \
         (session or key check, the queries on the pool's blocking threads, Tera rendering or JSON), \
         without network or client. The page is requested with a staff admin's session cookie \
         (`GET /admin/users?…`, the filter form's parameters), the API with a staff API key \
         (`GET /admin/api/v1/users?…`, `Authorization: Bearer`). Each response is checked: \
         status 200 and the same total as the bare query."
    );
    let _ = writeln!(
        r,
        "- {} timed iterations per case after 2 warm-up rounds; each iteration runs the bare query \
         (`UserQuery::run_scoped`, exact COUNT + 50 rows), then the page, then the API, so noise \
         hits all three alike. Times in ms. Goals: page p95 ≤ {PAGE_TARGET_MS} ms, \
         API p95 ≤ {API_TARGET_MS} ms.\n",
        o.iterations
    );
    for (backend, stats) in results {
        let _ = writeln!(r, "## {backend}\n");
        let _ = writeln!(
            r,
            "| case | page | matches | query p50 | page p50 | p95 | p99 | ≤ {PAGE_TARGET_MS} | API p50 | p95 | p99 | ≤ {API_TARGET_MS} |"
        );
        let _ = writeln!(
            r,
            "|---|---:|---:|---:|---:|---:|---:|:-:|---:|---:|---:|:-:|"
        );
        for s in stats {
            let _ = writeln!(
                r,
                "| {} | {} | {} | {:.1} | {} | {} |",
                s.case,
                s.page,
                s.total,
                s.query.p50,
                cell(s.admin_page, PAGE_TARGET_MS),
                cell(s.api, API_TARGET_MS)
            );
        }
        let count = |f: &dyn Fn(&HttpStat) -> Option<Dist>, target: f64| {
            let measured: Vec<Dist> = stats.iter().filter_map(f).collect();
            (
                measured.iter().filter(|d| d.p95 <= target).count(),
                measured.len(),
            )
        };
        let (page_ok, page_n) = count(&|s| s.admin_page, PAGE_TARGET_MS);
        let (api_ok, api_n) = count(&|s| s.api, API_TARGET_MS);
        r.push('\n');
        // What the page and the API add to the bare query: handler, auth, rendering.
        let overhead = |f: &dyn Fn(&HttpStat) -> Option<Dist>| {
            let mut d: Vec<f64> = stats
                .iter()
                .filter_map(|s| f(s).map(|x| x.p50 - s.query.p50))
                .collect();
            d.sort_by(f64::total_cmp);
            (!d.is_empty()).then(|| percentile(&d, 0.5))
        };
        for (what, added) in [
            ("page", overhead(&|s| s.admin_page)),
            ("API", overhead(&|s| s.api)),
        ] {
            if let Some(ms) = added {
                let _ = writeln!(
                    r,
                    "{backend}: the {what} adds {ms:.1} ms to the bare query (median over the cases \
                     of its p50 minus the query's p50)."
                );
            }
        }
        if page_n > 0 {
            let _ = writeln!(
                r,
                "{backend}: the page meets p95 ≤ {PAGE_TARGET_MS} ms in {page_ok} of {page_n} cases."
            );
        }
        if api_n > 0 {
            let _ = writeln!(
                r,
                "{backend}: the API meets p95 ≤ {API_TARGET_MS} ms in {api_ok} of {api_n} cases."
            );
        }
        r.push('\n');
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;
    use frontdesk_core::users::UserStatus;

    fn at(y: i32, m: u32, d: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, m, d)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .expect("date")
    }

    #[test]
    fn query_strings_carry_every_filter() {
        let q = UserQuery {
            search: Some("john diaz".into()),
            status: Some(UserStatus::Active),
            organization: Some(7),
            tags_any: vec![3, 4],
            created_from: Some(at(2025, 11, 1)),
            last_login: LastLogin::Between(Some(at(2026, 9, 2)), Some(at(2026, 10, 2))),
            sort: SortKey::LastLogin,
            page: 100,
            ..UserQuery::default()
        };
        assert_eq!(
            page_query(&q).expect("whole days"),
            "q=john+diaz&status=active&org=7&tags_any=3&tags_any=4&created_from=2025-11-01\
             &last_login=range&last_from=2026-09-02&last_to=2026-10-01&sort=last_login&dir=desc&page=100"
        );
        assert_eq!(
            api_query(&q, Some("west-capital")),
            "search=john+diaz&status=active&organization=west-capital&tags_any=3%2C4\
             &created_from=2025-11-01T00%3A00%3A00Z&last_login_from=2026-09-02T00%3A00%3A00Z\
             &last_login_to=2026-10-02T00%3A00%3A00Z&sort=last_login&dir=desc&page=100"
        );
    }

    #[test]
    fn the_page_takes_whole_days_only() {
        let q = UserQuery {
            created_from: Some(at(2025, 11, 1) + Duration::hours(3)),
            ..UserQuery::default()
        };
        assert!(page_query(&q).is_err());
    }

    #[test]
    fn totals_are_read_from_the_responses() {
        assert_eq!(
            page_total("<nav><span>9509 in all · page 1 of 191</span>"),
            Some((9509, true))
        );
        assert_eq!(
            page_total("<nav><span>100,000+ in all · page 3</span>"),
            Some((100000, false))
        );
        assert_eq!(
            api_total(br#"{"users":[],"pagination":{"page":1,"limit":50,"total":12}}"#),
            Some(12)
        );
    }
}
