//! Generates the benchmark data set (deterministic for a given size) and bulk
//! loads it: multi-row INSERTs on SQLite, COPY on PostgreSQL. Secondary
//! indexes are dropped for the load and rebuilt from their own definitions,
//! so the schema afterwards is exactly the migrated one.

use std::collections::HashSet;
use std::fmt::Write as _;

use chrono::{Duration, NaiveDate, NaiveDateTime};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::Text;
use diesel::{PgConnection, SqliteConnection};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Map, Value};

use frontdesk_core::schema::{memberships, organizations, tags, user_tags, users};

use crate::names::{
    COUNTRIES, FIRST_NAMES, LAST_NAMES, MAIL_PROVIDERS, ORG_FIRST, ORG_SECOND, PLANS, TAGS,
};

pub const ORGS: usize = 1_000;
const SEED: u64 = 0x00f0_de5c;
const STAFF: usize = 600;

/// The moment the data set ends: every timestamp lies in the three years before it.
pub fn end() -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2026, 11, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .expect("valid date")
}

pub struct Org {
    pub id: i64,
    pub slug: String,
    pub name: String,
    pub created_at: NaiveDateTime,
}

pub struct UserRow {
    pub id: i64,
    pub email: String,
    pub email_verified: bool,
    pub first_name: &'static str,
    pub last_name: &'static str,
    pub display_name: Option<&'static str>,
    pub password_hash: Option<String>,
    pub local_login_enabled: bool,
    pub staff_role: Option<&'static str>,
    pub suspended: Option<(&'static str, NaiveDateTime)>,
    pub profile: String,
    pub search_text: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub last_login_at: Option<NaiveDateTime>,
    pub last_active_at: Option<NaiveDateTime>,
    /// First sign-in or own password: without it the user is pending.
    pub activated_at: Option<NaiveDateTime>,
}

pub struct Data {
    pub orgs: Vec<Org>,
    pub users: Vec<UserRow>,
    /// (user_id, organization_id, role, created_at)
    pub memberships: Vec<(i64, i64, &'static str, NaiveDateTime)>,
    /// (user_id, tag_id, created_at)
    pub user_tags: Vec<(i64, i64, NaiveDateTime)>,
}

fn ascii_slug(s: &str) -> String {
    s.chars()
        .filter_map(|c| match c {
            'ü' => Some('u'),
            'ś' => Some('s'),
            ' ' | '\'' => None,
            c => Some(c.to_ascii_lowercase()),
        })
        .collect()
}

fn weighted<T: Copy>(rng: &mut StdRng, items: &[(T, u32)]) -> T {
    let total: u32 = items.iter().map(|(_, w)| w).sum();
    let mut x = rng.gen_range(0..total);
    for (item, w) in items {
        if x < *w {
            return *item;
        }
        x -= w;
    }
    items[items.len() - 1].0
}

fn fake_hash(rng: &mut StdRng) -> String {
    const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(100);
    s.push_str("$argon2id$v=19$m=19456,t=2,p=1$");
    for i in 0..66 {
        if i == 22 {
            s.push('$');
        } else {
            s.push(B64[rng.gen_range(0..64)] as char);
        }
    }
    s
}

pub fn generate(n: usize) -> Data {
    let mut rng = StdRng::seed_from_u64(SEED);
    let end = end();
    let start = end - Duration::days(3 * 365);
    let span = (end - start).num_seconds() as f64;

    let mut org_names: Vec<(usize, usize)> = (0..ORG_FIRST.len())
        .flat_map(|a| (0..ORG_SECOND.len()).map(move |b| (a, b)))
        .collect();
    // Fisher-Yates with our own RNG keeps the order stable across rand versions' helpers.
    for i in (1..org_names.len()).rev() {
        let j = rng.gen_range(0..=i);
        org_names.swap(i, j);
    }
    let orgs: Vec<Org> = (0..ORGS)
        .map(|i| {
            let (a, b) = org_names[i % org_names.len()];
            let name = if i < org_names.len() {
                format!("{} {}", ORG_FIRST[a], ORG_SECOND[b])
            } else {
                format!("{} {} {}", ORG_FIRST[a], ORG_SECOND[b], i)
            };
            let created_at = start + Duration::seconds((rng.gen::<f64>() * span * 0.6) as i64);
            Org {
                id: i as i64 + 1,
                slug: ascii_slug(&name.replace(' ', "-")),
                name,
                created_at,
            }
        })
        .collect();

    // Organization sizes follow a Zipf-like law: org 1 is the biggest customer.
    let cumulative: Vec<f64> = (1..=ORGS)
        .scan(0.0, |acc, k| {
            *acc += 1.0 / (k as f64).powf(0.8);
            Some(*acc)
        })
        .collect();
    let total_weight = cumulative[ORGS - 1];
    let pick_org = |rng: &mut StdRng| -> usize {
        let x = rng.gen::<f64>() * total_weight;
        cumulative.partition_point(|c| *c < x).min(ORGS - 1)
    };

    let mut staff: HashSet<usize> = HashSet::new();
    while staff.len() < STAFF.min(n) {
        staff.insert(rng.gen_range(0..n));
    }

    let mut emails: HashSet<String> = HashSet::with_capacity(n);
    let mut has_owner = vec![false; ORGS];
    let mut users = Vec::with_capacity(n);
    let mut memberships = Vec::with_capacity(n + n / 20);
    let mut user_tags = Vec::with_capacity(n);

    for i in 0..n {
        let id = i as i64 + 1;
        let first = FIRST_NAMES[rng.gen_range(0..FIRST_NAMES.len())];
        let last = LAST_NAMES[rng.gen_range(0..LAST_NAMES.len())];
        // Sign-ups grow over time: ids follow created_at, denser towards the end.
        let pos = ((i as f64 + rng.gen::<f64>()) / n as f64).sqrt();
        let created_at = start + Duration::seconds((pos * span) as i64);

        let mut orgs_of = Vec::new();
        let r = rng.gen_range(0..100);
        if r < 94 {
            orgs_of.push(pick_org(&mut rng));
            if r < 4 {
                let other = pick_org(&mut rng);
                if other != orgs_of[0] {
                    orgs_of.push(other);
                }
            }
        }
        for &o in &orgs_of {
            let role = if !has_owner[o] {
                has_owner[o] = true;
                "owner"
            } else if rng.gen_range(0..100) < 4 {
                "admin"
            } else {
                "member"
            };
            memberships.push((id, o as i64 + 1, role, created_at));
        }

        let (f, l) = (ascii_slug(first), ascii_slug(last));
        let local = match rng.gen_range(0..4) {
            0 => format!("{f}.{l}"),
            1 => format!("{}{l}", &f[..1]),
            2 => format!("{f}_{l}"),
            _ => format!("{f}{}", &l[..1]),
        };
        let domain = match orgs_of.first() {
            Some(&o) if rng.gen_bool(0.6) => format!("{}.com", orgs[o].slug),
            _ => MAIL_PROVIDERS[rng.gen_range(0..MAIL_PROVIDERS.len())].to_owned(),
        };
        let mut email = format!("{local}@{domain}");
        while emails.contains(&email) {
            email = format!("{local}{}@{domain}", rng.gen_range(1..10_000));
        }
        emails.insert(email.clone());

        let company = match orgs_of.first() {
            Some(&o) => orgs[o].name.clone(),
            None => format!(
                "{} {}",
                ORG_FIRST[rng.gen_range(0..ORG_FIRST.len())],
                ORG_SECOND[rng.gen_range(0..ORG_SECOND.len())]
            ),
        };
        let mut profile = Map::new();
        profile.insert("company".into(), Value::String(company));
        profile.insert(
            "plan".into(),
            Value::String(weighted(&mut rng, PLANS).into()),
        );
        profile.insert(
            "country".into(),
            Value::String(COUNTRIES[rng.gen_range(0..COUNTRIES.len())].into()),
        );
        let display_name = rng.gen_bool(0.05).then_some(first);
        let search_text =
            frontdesk_core::users::search_text(&email, first, last, display_name, &profile);

        let since = (end - created_at).num_seconds().max(1) as f64;
        let last_login_at = (!rng.gen_bool(0.2))
            .then(|| end - Duration::seconds((since * rng.gen::<f64>().powi(3)) as i64));
        let last_active_at =
            last_login_at.map(|t| (t + Duration::seconds(rng.gen_range(0..7200))).min(end));
        let suspended = rng.gen_bool(0.1).then(|| {
            let reason = [
                "billing",
                "abuse report",
                "left the company",
                "security review",
            ][rng.gen_range(0..4)];
            (
                reason,
                end - Duration::seconds((since * rng.gen::<f64>()) as i64),
            )
        });
        let updated_at = created_at + Duration::seconds((since * rng.gen::<f64>()) as i64);
        let password_hash = rng.gen_bool(0.85).then(|| fake_hash(&mut rng));
        // Everyone who signed in is active; of the rest, those with a password
        // set it themselves half the time; the others are pending.
        let activated_at = (last_login_at.is_some()
            || (password_hash.is_some() && rng.gen_bool(0.5)))
        .then(|| {
            let first = created_at + Duration::seconds(rng.gen_range(0..3 * 86_400));
            last_login_at.map_or(first.min(end), |l| first.min(l))
        });
        let staff_role = staff.contains(&i).then(|| match rng.gen_range(0..100) {
            0 => "owner",
            1..=8 => "admin",
            _ => "viewer",
        });
        for (t, (_, per_mille)) in TAGS.iter().enumerate() {
            if rng.gen_range(0..1000) < *per_mille {
                user_tags.push((id, t as i64 + 1, created_at));
            }
        }
        users.push(UserRow {
            id,
            email,
            email_verified: rng.gen_bool(0.85),
            first_name: first,
            last_name: last,
            display_name,
            password_hash,
            local_login_enabled: rng.gen_bool(0.97),
            staff_role,
            suspended,
            profile: Value::Object(profile).to_string(),
            search_text,
            created_at,
            updated_at,
            last_login_at,
            last_active_at,
            activated_at,
        });
    }
    Data {
        orgs,
        users,
        memberships,
        user_tags,
    }
}

fn ts(t: &NaiveDateTime) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

// ---------- SQLite ----------

fn q(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn q_opt(s: Option<&str>) -> String {
    s.map_or_else(|| "NULL".to_owned(), q)
}

fn ts_opt(t: Option<&NaiveDateTime>) -> String {
    t.map_or_else(|| "NULL".to_owned(), |t| q(&ts(t)))
}

#[derive(QueryableByName)]
struct SchemaSql {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    sql: String,
}

/// Runs `rows` as multi-row INSERTs of `per_stmt` rows, in one transaction.
fn sqlite_insert<T>(
    conn: &mut SqliteConnection,
    head: &str,
    rows: &[T],
    row: impl Fn(&T, &mut String),
) -> QueryResult<()> {
    conn.batch_execute("BEGIN")?;
    for chunk in rows.chunks(500) {
        let mut sql = String::with_capacity(chunk.len() * 400);
        sql.push_str(head);
        for (k, r) in chunk.iter().enumerate() {
            sql.push_str(if k == 0 { " VALUES (" } else { ", (" });
            row(r, &mut sql);
            sql.push(')');
        }
        conn.batch_execute(&sql)?;
    }
    conn.batch_execute("COMMIT")
}

pub fn load_sqlite(conn: &mut SqliteConnection, data: &Data) -> QueryResult<()> {
    conn.batch_execute(
        "PRAGMA synchronous = OFF; PRAGMA cache_size = -1048576; PRAGMA temp_store = MEMORY;",
    )?;
    let indexes: Vec<SchemaSql> = diesel::sql_query(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL \
         AND tbl_name IN ('users', 'memberships', 'user_tags')",
    )
    .load(conn)?;
    for ix in &indexes {
        conn.batch_execute(&format!("DROP INDEX \"{}\"", ix.name))?;
    }
    sqlite_insert(
        conn,
        "INSERT INTO organizations (id, slug, name, allowed_email_domains, created_at, updated_at)",
        &data.orgs,
        |o, s| {
            let _ = write!(
                s,
                "{}, {}, {}, '', {}, {}",
                o.id,
                q(&o.slug),
                q(&o.name),
                q(&ts(&o.created_at)),
                q(&ts(&o.created_at))
            );
        },
    )?;
    sqlite_insert(
        conn,
        "INSERT INTO tags (id, name, created_at)",
        TAGS,
        |t, s| {
            let id = TAGS.iter().position(|x| x.0 == t.0).unwrap_or(0) + 1;
            let _ = write!(s, "{id}, {}, '2023-11-01 00:00:00'", q(t.0));
        },
    )?;
    for chunk in data.users.chunks(100_000) {
        sqlite_insert(
            conn,
            "INSERT INTO users (id, email, email_verified, first_name, last_name, display_name, password_hash, \
             local_login_enabled, staff_role, status, suspended_reason, suspended_at, profile, search_text, \
             created_at, updated_at, last_login_at, last_active_at, activated_at)",
            chunk,
            |u, s| {
                let _ = write!(
                    s,
                    "{}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}",
                    u.id,
                    q(&u.email),
                    u.email_verified as u8,
                    q(u.first_name),
                    q(u.last_name),
                    q_opt(u.display_name),
                    q_opt(u.password_hash.as_deref()),
                    u.local_login_enabled as u8,
                    q_opt(u.staff_role),
                    if u.suspended.is_some() { "'suspended'" } else { "'active'" },
                    q_opt(u.suspended.map(|s| s.0)),
                    ts_opt(u.suspended.as_ref().map(|s| &s.1)),
                    q(&u.profile),
                    q(&u.search_text),
                    q(&ts(&u.created_at)),
                    q(&ts(&u.updated_at)),
                    ts_opt(u.last_login_at.as_ref()),
                    ts_opt(u.last_active_at.as_ref()),
                    ts_opt(u.activated_at.as_ref()),
                );
            },
        )?;
    }
    sqlite_insert(
        conn,
        "INSERT INTO memberships (user_id, organization_id, role, created_at)",
        &data.memberships,
        |m, s| {
            let _ = write!(s, "{}, {}, '{}', {}", m.0, m.1, m.2, q(&ts(&m.3)));
        },
    )?;
    sqlite_insert(
        conn,
        "INSERT INTO user_tags (user_id, tag_id, created_at)",
        &data.user_tags,
        |t, s| {
            let _ = write!(s, "{}, {}, {}", t.0, t.1, q(&ts(&t.2)));
        },
    )?;
    for ix in &indexes {
        conn.batch_execute(&ix.sql)?;
    }
    conn.batch_execute("INSERT INTO users_search (users_search) VALUES ('optimize'); ANALYZE; PRAGMA synchronous = NORMAL;")
}

// ---------- PostgreSQL ----------

fn pg_opt(s: Option<&str>) -> &str {
    s.unwrap_or("\\N")
}

fn pg_ts_opt(t: Option<&NaiveDateTime>) -> String {
    t.map_or_else(|| "\\N".to_owned(), ts)
}

/// COPY text format: tab-separated, `\N` for NULL; the seeded text holds no
/// tabs, newlines or backslashes.
macro_rules! copy_text {
    ($conn:expr, $table:expr, $columns:expr, $rows:expr, $row:expr) => {{
        for chunk in $rows.chunks(100_000) {
            let mut buf = String::with_capacity(chunk.len() * 400);
            for r in chunk {
                $row(r, &mut buf);
                buf.push('\n');
            }
            diesel::copy_from($table)
                .from_raw_data($columns, |w: &mut dyn std::io::Write| {
                    w.write_all(buf.as_bytes())
                        .map_err(|e| diesel::result::Error::SerializationError(Box::new(e)))
                })
                .with_format(diesel::pg::CopyFormat::Text)
                .execute($conn)?;
        }
    }};
}

pub fn load_postgres(conn: &mut PgConnection, data: &Data) -> QueryResult<()> {
    // Indexes that back no constraint are rebuilt after the load from their own definitions.
    let indexes: Vec<SchemaSql> = diesel::sql_query(
        "SELECT i.indexname::text AS name, i.indexdef AS sql FROM pg_indexes i \
         WHERE i.schemaname = current_schema() AND i.tablename IN ('users', 'memberships', 'user_tags') \
         AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)",
    )
    .load(conn)?;
    for ix in &indexes {
        conn.batch_execute(&format!("DROP INDEX \"{}\"", ix.name))?;
    }
    copy_text!(
        conn,
        organizations::table,
        (
            organizations::id,
            organizations::slug,
            organizations::name,
            organizations::allowed_email_domains,
            organizations::created_at,
            organizations::updated_at,
        ),
        &data.orgs,
        |o: &Org, s: &mut String| {
            let _ = write!(
                s,
                "{}\t{}\t{}\t\t{}\t{}",
                o.id,
                o.slug,
                o.name,
                ts(&o.created_at),
                ts(&o.created_at)
            );
        }
    );
    copy_text!(
        conn,
        tags::table,
        (tags::id, tags::name, tags::created_at),
        TAGS,
        |t: &(&str, u32), s: &mut String| {
            let id = TAGS.iter().position(|x| x.0 == t.0).unwrap_or(0) + 1;
            let _ = write!(s, "{id}\t{}\t2023-11-01 00:00:00", t.0);
        }
    );
    copy_text!(
        conn,
        users::table,
        (
            users::id,
            users::email,
            users::email_verified,
            users::first_name,
            users::last_name,
            users::display_name,
            users::password_hash,
            users::local_login_enabled,
            users::staff_role,
            users::status,
            users::suspended_reason,
            users::suspended_at,
            users::profile,
            users::search_text,
            users::created_at,
            users::updated_at,
            users::last_login_at,
            users::last_active_at,
            users::activated_at,
        ),
        &data.users,
        |u: &UserRow, s: &mut String| {
            let _ = write!(
                s,
                "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                u.id,
                u.email,
                if u.email_verified { "t" } else { "f" },
                u.first_name,
                u.last_name,
                pg_opt(u.display_name),
                pg_opt(u.password_hash.as_deref()),
                if u.local_login_enabled { "t" } else { "f" },
                pg_opt(u.staff_role),
                if u.suspended.is_some() {
                    "suspended"
                } else {
                    "active"
                },
                pg_opt(u.suspended.map(|s| s.0)),
                pg_ts_opt(u.suspended.as_ref().map(|s| &s.1)),
                u.profile,
                u.search_text,
                ts(&u.created_at),
                ts(&u.updated_at),
                pg_ts_opt(u.last_login_at.as_ref()),
                pg_ts_opt(u.last_active_at.as_ref()),
                pg_ts_opt(u.activated_at.as_ref()),
            );
        }
    );
    copy_text!(
        conn,
        memberships::table,
        (
            memberships::user_id,
            memberships::organization_id,
            memberships::role,
            memberships::created_at,
        ),
        &data.memberships,
        |m: &(i64, i64, &str, NaiveDateTime), s: &mut String| {
            let _ = write!(s, "{}\t{}\t{}\t{}", m.0, m.1, m.2, ts(&m.3));
        }
    );
    copy_text!(
        conn,
        user_tags::table,
        (user_tags::user_id, user_tags::tag_id, user_tags::created_at),
        &data.user_tags,
        |t: &(i64, i64, NaiveDateTime), s: &mut String| {
            let _ = write!(s, "{}\t{}\t{}", t.0, t.1, ts(&t.2));
        }
    );
    conn.batch_execute("SET maintenance_work_mem = '512MB'")?;
    for ix in &indexes {
        conn.batch_execute(&ix.sql)?;
    }
    conn.batch_execute(
        "SELECT setval('organizations_id_seq', (SELECT max(id) FROM organizations)); \
         SELECT setval('tags_id_seq', (SELECT max(id) FROM tags)); \
         SELECT setval('users_id_seq', (SELECT max(id) FROM users));",
    )?;
    // VACUUM sets the visibility map (index-only scans), as autovacuum would in steady state.
    conn.batch_execute("VACUUM ANALYZE")
}
