//! The "Last access" tab of a user's page: their activity grouped by day,
//! newest first, paged by cursor, filtered by service and kind; and the same
//! events as a CSV download.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use frontdesk_core::activity::{self, ActivityEvent, Cursor, TimelineFilter};
use frontdesk_core::authz::Action;
use frontdesk_core::exports::neutralize;
use frontdesk_core::{users as core_users, CoreError};
use serde::Serialize;
use tera::Context;

use super::{render, Admin, Params, State};
use crate::error::WebError;

/// Events per page of the tab.
const PAGE: i64 = 50;
/// Rows of the CSV download at most.
const CSV_ROWS: i64 = 100_000;

#[derive(Serialize)]
struct Row {
    time: String,
    kind: String,
    service: String,
    route: String,
    method: String,
    status: String,
    details: String,
    ip: String,
}

#[derive(Serialize)]
struct Day {
    day: String,
    rows: Vec<Row>,
}

fn filter_of(q: &Params) -> Result<TimelineFilter, WebError> {
    let service = q.get("service").map(str::to_owned);
    if service
        .as_ref()
        .is_some_and(|s| s.len() > activity::MAX_KIND)
    {
        return Err(WebError::bad_request("service is too long"));
    }
    let kind = q.get("kind").map(str::to_owned);
    if let Some(k) = &kind {
        activity::check_kind(k)
            .map_err(|_| WebError::bad_request("kind: use a-z, 0-9, '.', '_' and '-'"))?;
    }
    let after = match q.get("cursor") {
        Some(c) => Some(
            Cursor::decode(c)
                .ok_or_else(|| WebError::bad_request("cursor is not one this page made"))?,
        ),
        None => None,
    };
    Ok(TimelineFilter {
        service,
        kind,
        after,
    })
}

fn days(rows: &[ActivityEvent]) -> Vec<Day> {
    let mut out: Vec<Day> = Vec::new();
    for e in rows {
        let day = e.at.format("%Y-%m-%d (%A)").to_string();
        let row = Row {
            time: e.at.format("%H:%M:%S").to_string(),
            kind: e.kind.clone(),
            service: e.service.clone().unwrap_or_default(),
            route: e.route.clone().unwrap_or_default(),
            method: e.method.clone().unwrap_or_default(),
            status: e.status.map(|s| s.to_string()).unwrap_or_default(),
            details: if e.details == "{}" {
                String::new()
            } else {
                e.details.clone()
            },
            ip: e.ip.clone().unwrap_or_default(),
        };
        match out.last_mut() {
            Some(d) if d.day == day => d.rows.push(row),
            _ => out.push(Day {
                day,
                rows: vec![row],
            }),
        }
    }
    out
}

/// `GET /users/{id}/activity`.
pub async fn page(
    req: HttpRequest,
    state: State,
    admin: Admin,
    path: web::Path<i64>,
) -> Result<HttpResponse, WebError> {
    let id = path.into_inner();
    let q = Params::query(&req);
    let filter = filter_of(&q)?;
    let actor = admin.actor.clone();
    let f = filter.clone();
    let (user, (rows, next), (services, kinds)) = state
        .db(move |conn| {
            let user = core_users::get_for(conn, &actor, id, Action::View)?;
            let page = activity::timeline(conn, id, &f, PAGE)?;
            let facets = activity::facets(conn, id)?;
            Ok::<_, CoreError>((user, page, facets))
        })
        .await?;
    let base = format!("{}/users/{id}/activity", state.settings().admin_prefix);
    let kept = q.pairs_without(&["cursor"]);
    let next_link = next.map(|c| {
        let sep = if kept.is_empty() { "" } else { "&" };
        format!("{base}?{kept}{sep}cursor={}", c.encode())
    });
    let csv_link = if kept.is_empty() {
        format!("{base}.csv")
    } else {
        format!("{base}.csv?{kept}")
    };
    let mut ctx = Context::new();
    ctx.insert("user_id", &id);
    ctx.insert("name", &user.name());
    ctx.insert("days", &days(&rows));
    ctx.insert("services", &services);
    ctx.insert("kinds", &kinds);
    ctx.insert("f_service", &filter.service.unwrap_or_default());
    ctx.insert("f_kind", &filter.kind.unwrap_or_default());
    ctx.insert("paged", &filter.after.is_some());
    ctx.insert(
        "first_link",
        &if kept.is_empty() {
            base.clone()
        } else {
            format!("{base}?{kept}")
        },
    );
    ctx.insert("next_link", &next_link);
    ctx.insert("csv_link", &csv_link);
    ctx.insert("recording", &state.recorder().is_some());
    render(
        &req,
        &state,
        &admin,
        "admin/user_activity.html",
        "/users",
        ctx,
    )
}

/// `GET /users/{id}/activity.csv`: the filtered events, newest first.
pub async fn csv(
    req: HttpRequest,
    state: State,
    admin: Admin,
    path: web::Path<i64>,
) -> Result<HttpResponse, WebError> {
    let id = path.into_inner();
    let q = Params::query(&req);
    let mut filter = filter_of(&q)?;
    filter.after = None;
    let actor = admin.actor.clone();
    let rows = state
        .db(move |conn| {
            core_users::get_for(conn, &actor, id, Action::View)?;
            let mut all = Vec::new();
            loop {
                let (rows, next) = activity::timeline(conn, id, &filter, activity::MAX_PAGE)?;
                all.extend(rows);
                match next {
                    Some(c) if (all.len() as i64) < CSV_ROWS => filter.after = Some(c),
                    _ => break,
                }
            }
            Ok::<_, CoreError>(all)
        })
        .await?;
    let mut w = csv::Writer::from_writer(Vec::new());
    let io = |e: csv::Error| WebError::internal(e.to_string());
    w.write_record([
        "at", "kind", "service", "route", "method", "status", "details", "ip",
    ])
    .map_err(io)?;
    for e in &rows {
        let at = e.at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string();
        let status = e.status.map(|s| s.to_string()).unwrap_or_default();
        let cells = [
            at.as_str(),
            e.kind.as_str(),
            e.service.as_deref().unwrap_or(""),
            e.route.as_deref().unwrap_or(""),
            e.method.as_deref().unwrap_or(""),
            status.as_str(),
            e.details.as_str(),
            e.ip.as_deref().unwrap_or(""),
        ];
        w.write_record(cells.iter().map(|c| neutralize(c).into_owned()))
            .map_err(io)?;
    }
    let body = w
        .into_inner()
        .map_err(|e| WebError::internal(e.to_string()))?;
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"user-{id}-activity.csv\""),
        ))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(body))
}
