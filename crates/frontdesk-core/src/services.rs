//! The host's services (`main-app`, `mobile-api`): declared in the builder,
//! synced into `services` at start, and per user the first and latest
//! sign-in on each (`user_services`). A sign-in counts for a service when its
//! session is used on that service's routes (the activity middleware's
//! service), once per session and service.

use std::collections::HashMap;

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConnection;
use crate::error::{CoreError, CoreResult};
use crate::schema::{services, session_services, user_services};

/// The service of a host that declares none.
pub const DEFAULT_SLUG: &str = "app";

/// A service of the host (an app, a site) users sign in to; sign-ins are
/// counted per service.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = services)]
pub struct Service {
    /// The service's id.
    pub id: i64,
    /// Its slug: 1 to 64 of `a-z 0-9 -` (see [`check_slug`]).
    pub slug: String,
    /// The name to show.
    pub name: String,
    /// When it was first declared (UTC).
    pub created_at: NaiveDateTime,
}

/// A user's sign-ins on one service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserService {
    /// The service.
    pub service: Service,
    /// The user's first sign-in on it (UTC).
    pub first_login_at: NaiveDateTime,
    /// The user's last sign-in on it (UTC).
    pub last_login_at: NaiveDateTime,
}

/// A slug is 1 to 64 of `a-z 0-9 -`, starting with a letter or digit.
pub fn check_slug(slug: &str) -> CoreResult<()> {
    let ok = !slug.is_empty()
        && slug.len() <= 64
        && !slug.starts_with('-')
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(CoreError::Config(format!(
            "service slug {slug:?}: use 1 to 64 of a-z, 0-9 and '-'"
        )))
    }
}

/// Makes the table hold `declared` (slug, name): new ones added, names
/// updated. Services no longer declared stay, with their history.
pub fn sync(conn: &mut DbConnection, declared: &[(String, String)]) -> CoreResult<Vec<Service>> {
    for (slug, name) in declared {
        check_slug(slug)?;
        if name.trim().is_empty() || name.chars().count() > 200 {
            return Err(CoreError::Config(format!(
                "service {slug}: the name must have 1 to 200 characters"
            )));
        }
    }
    crate::db::write_transaction(conn, |conn| {
        let t = crate::time::now();
        for (slug, name) in declared {
            let updated = diesel::update(services::table.filter(services::slug.eq(slug)))
                .set(services::name.eq(name))
                .execute(conn)?;
            if updated == 0 {
                diesel::insert_into(services::table)
                    .values((
                        services::slug.eq(slug),
                        services::name.eq(name),
                        services::created_at.eq(t),
                    ))
                    .execute(conn)?;
            }
        }
        Ok::<_, CoreError>(())
    })?;
    Ok(list(conn)?)
}

/// Every declared service, by slug.
pub fn list(conn: &mut DbConnection) -> QueryResult<Vec<Service>> {
    services::table
        .select(Service::as_select())
        .order(services::slug.asc())
        .load(conn)
}

/// The service a request names, by slug or by id.
pub fn find(conn: &mut DbConnection, slug_or_id: &str) -> QueryResult<Option<Service>> {
    let mut q = services::table
        .select(Service::as_select())
        .filter(services::slug.eq(slug_or_id))
        .into_boxed();
    if let Ok(id) = slug_or_id.parse::<i64>() {
        q = q.or_filter(services::id.eq(id));
    }
    Ok(q.load(conn)?.into_iter().next())
}

/// Records that `session` (a sign-in of `user_id` at `signed_in_at`) was used
/// on `service`: once per session and service, moving the user's first and
/// latest sign-in on it.
pub fn record_sign_in(
    conn: &mut DbConnection,
    user_id: i64,
    session_id: i64,
    service_id: i64,
    signed_in_at: NaiveDateTime,
) -> QueryResult<bool> {
    crate::db::write_transaction(conn, |conn| {
        let seen: i64 = session_services::table
            .filter(session_services::session_id.eq(session_id))
            .filter(session_services::service_id.eq(service_id))
            .count()
            .get_result(conn)?;
        if seen > 0 {
            return Ok(false);
        }
        diesel::insert_into(session_services::table)
            .values((
                session_services::session_id.eq(session_id),
                session_services::service_id.eq(service_id),
                session_services::created_at.eq(crate::time::now()),
            ))
            .execute(conn)?;
        let row = user_services::table
            .filter(user_services::user_id.eq(user_id))
            .filter(user_services::service_id.eq(service_id));
        let existing: Option<(NaiveDateTime, NaiveDateTime)> = row
            .select((user_services::first_login_at, user_services::last_login_at))
            .first(conn)
            .optional()?;
        match existing {
            None => {
                diesel::insert_into(user_services::table)
                    .values((
                        user_services::user_id.eq(user_id),
                        user_services::service_id.eq(service_id),
                        user_services::first_login_at.eq(signed_in_at),
                        user_services::last_login_at.eq(signed_in_at),
                    ))
                    .execute(conn)?;
            }
            Some((first, last)) => {
                diesel::update(row)
                    .set((
                        user_services::first_login_at.eq(first.min(signed_in_at)),
                        user_services::last_login_at.eq(last.max(signed_in_at)),
                    ))
                    .execute(conn)?;
            }
        }
        Ok(true)
    })
}

/// One user's services, by slug.
pub fn of_user(conn: &mut DbConnection, user_id: i64) -> QueryResult<Vec<UserService>> {
    let rows: Vec<(Service, NaiveDateTime, NaiveDateTime)> = user_services::table
        .inner_join(services::table)
        .filter(user_services::user_id.eq(user_id))
        .select((
            Service::as_select(),
            user_services::first_login_at,
            user_services::last_login_at,
        ))
        .order(services::slug.asc())
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(service, first_login_at, last_login_at)| UserService {
            service,
            first_login_at,
            last_login_at,
        })
        .collect())
}

/// The service slugs of each of `users` (one query), sorted.
pub fn slugs_among(
    conn: &mut DbConnection,
    users: &[i64],
) -> CoreResult<HashMap<i64, Vec<String>>> {
    let rows: Vec<(i64, String)> = user_services::table
        .inner_join(services::table)
        .filter(user_services::user_id.eq_any(users))
        .select((user_services::user_id, services::slug))
        .order((user_services::user_id.asc(), services::slug.asc()))
        .load(conn)?;
    let mut out: HashMap<i64, Vec<String>> = HashMap::new();
    for (u, s) in rows {
        out.entry(u).or_default().push(s);
    }
    Ok(out)
}
