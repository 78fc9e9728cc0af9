//! Dashboard figures: counts by state and per-day series for the last days,
//! for the whole site or limited to some organizations.

use chrono::{Duration, NaiveDate};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text, Timestamp};
use serde::Serialize;

use crate::db::{day_of, DbConnection};
use crate::error::CoreResult;
use crate::schema::{invitations, login_attempts, memberships, sessions, users};
use crate::time::now;

/// The dashboard's counts, for the whole site or some organizations' members.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Counts {
    /// Active users who have acted themselves.
    pub users_active: i64,
    /// Never signed in nor set their own password (see `users::UserStatus`).
    pub users_pending: i64,
    /// Suspended users.
    pub users_suspended: i64,
    /// Pending invitations not yet expired.
    pub invitations_pending: i64,
    /// Sessions neither revoked nor past their end (idle ones included).
    pub sessions_active: i64,
    /// Failed sign-ins in the last 24 hours.
    pub failed_logins_24h: i64,
}

/// One day of the dashboard's series.
#[derive(Debug, Clone, Serialize)]
pub struct Day {
    /// The day (UTC).
    pub date: NaiveDate,
    /// Users created that day.
    pub signups: i64,
    /// Successful sign-ins that day.
    pub signins: i64,
    /// Failed sign-ins that day.
    pub failed_signins: i64,
}

/// The counts now, for the whole site (`scope` `None`) or the members of
/// these organizations. No access check.
pub fn counts(conn: &mut DbConnection, scope: Option<&[i64]>) -> CoreResult<Counts> {
    let t = now();
    let members = |orgs: &[i64]| {
        memberships::table
            .select(memberships::user_id)
            .filter(memberships::organization_id.eq_any(orgs.to_vec()))
    };
    let by_status = |conn: &mut DbConnection, status: &str| -> CoreResult<i64> {
        let mut q = users::table
            .filter(users::status.eq(status.to_owned()))
            .into_boxed();
        if let Some(orgs) = scope {
            q = q.filter(users::id.eq_any(members(orgs)));
        }
        Ok(q.count().get_result(conn)?)
    };
    // Pending (active without `activated_at`, see `UserStatus`) is counted apart.
    let users_pending = {
        let mut q = users::table
            .filter(users::status.eq("active"))
            .filter(users::activated_at.is_null())
            .into_boxed();
        if let Some(orgs) = scope {
            q = q.filter(users::id.eq_any(members(orgs)));
        }
        q.count().get_result::<i64>(conn)?
    };
    let users_active = by_status(conn, "active")? - users_pending;
    let users_suspended = by_status(conn, "suspended")?;

    let mut inv = invitations::table
        .filter(invitations::status.eq("pending"))
        .filter(invitations::expires_at.gt(t))
        .into_boxed();
    if let Some(orgs) = scope {
        inv = inv.filter(invitations::organization_id.eq_any(orgs.to_vec()));
    }
    let invitations_pending = inv.count().get_result(conn)?;

    let mut ses = sessions::table
        .filter(sessions::revoked_at.is_null())
        .filter(sessions::expires_at.gt(t))
        .into_boxed();
    if let Some(orgs) = scope {
        ses = ses.filter(sessions::user_id.eq_any(members(orgs)));
    }
    let sessions_active = ses.count().get_result(conn)?;

    let mut failed = login_attempts::table
        .filter(login_attempts::success.eq(false))
        .filter(login_attempts::created_at.gt(t - Duration::hours(24)))
        .into_boxed();
    if let Some(orgs) = scope {
        failed = failed.filter(
            login_attempts::user_id.eq_any(members(orgs).select(memberships::user_id.nullable())),
        );
    }
    let failed_logins_24h = failed.count().get_result(conn)?;
    Ok(Counts {
        users_active,
        users_pending,
        users_suspended,
        invitations_pending,
        sessions_active,
        failed_logins_24h,
    })
}

#[derive(QueryableByName)]
struct DayCount {
    #[diesel(sql_type = Text)]
    day: String,
    #[diesel(sql_type = Text)]
    series: String,
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Sign-ups, sign-ins and failed sign-ins per day over the last `days` days
/// (oldest first, today included, days without events as zeros).
pub fn daily(conn: &mut DbConnection, scope: Option<&[i64]>, days: i64) -> CoreResult<Vec<Day>> {
    let today = now().date();
    let first = today - Duration::days(days - 1);
    let since = first.and_hms_opt(0, 0, 0).unwrap_or_default();
    let kind = conn.kind();
    let scope_users = match scope {
        Some(orgs) => format!(
            "AND {{user}} IN (SELECT user_id FROM memberships WHERE organization_id IN ({}))",
            if orgs.is_empty() {
                "NULL".to_owned()
            } else {
                orgs.iter()
                    .map(|o| o.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            }
        ),
        None => String::new(),
    };
    let sql = format!(
        "SELECT {ud} AS day, 'signups' AS series, COUNT(*) AS n FROM users WHERE created_at >= $1 {us} GROUP BY 1 \
         UNION ALL \
         SELECT {ld} AS day, CASE WHEN success THEN 'signins' ELSE 'failed' END AS series, COUNT(*) AS n \
         FROM login_attempts WHERE created_at >= $1 {ls} GROUP BY 1, 2",
        ud = day_of(kind, "created_at"),
        ld = day_of(kind, "created_at"),
        us = scope_users.replace("{user}", "id"),
        ls = scope_users.replace("{user}", "user_id"),
    );
    let rows: Vec<DayCount> = diesel::sql_query(sql)
        .bind::<Timestamp, _>(since)
        .load(conn)?;
    let mut out: Vec<Day> = (0..days)
        .map(|i| Day {
            date: first + Duration::days(i),
            signups: 0,
            signins: 0,
            failed_signins: 0,
        })
        .collect();
    for r in rows {
        let Ok(date) = NaiveDate::parse_from_str(&r.day, "%Y-%m-%d") else {
            continue;
        };
        let Some(d) = out.get_mut((date - first).num_days() as usize) else {
            continue;
        };
        match r.series.as_str() {
            "signups" => d.signups += r.n,
            "signins" => d.signins += r.n,
            _ => d.failed_signins += r.n,
        }
    }
    Ok(out)
}
