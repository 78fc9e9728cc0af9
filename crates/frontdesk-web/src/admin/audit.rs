//! The audit log, newest first, filtered by actor, action and target. Staff
//! read all of it; organization admins the events about their organizations.

use actix_web::{HttpRequest, HttpResponse};
use frontdesk_core::audit::{self, AuditEvent, AuditFilter};
use frontdesk_core::names::Names;
use serde::Serialize;
use tera::Context;

use super::display::{self, Detail, Named};
use super::{render, show_time, Admin, Params, State};
use crate::error::WebError;

const PER_PAGE: i64 = 50;

#[derive(Serialize)]
pub(super) struct Row {
    created_at: String,
    actor: Named,
    action: String,
    target: Named,
    details: Vec<Detail>,
    ip: String,
}

/// Loads the names every event of the page refers to (one query per kind).
pub(super) fn load_names(
    conn: &mut frontdesk_core::DbConnection,
    events: &[AuditEvent],
) -> frontdesk_core::CoreResult<Names> {
    let mut refs: Vec<String> = Vec::with_capacity(events.len() * 2);
    for e in events {
        refs.push(e.actor.clone());
        refs.push(e.target.clone());
        refs.extend(display::detail_refs(&e.details));
    }
    Names::load(conn, refs.iter().map(String::as_str))
}

/// An event as the audit pages show it.
pub(super) fn row(e: AuditEvent, names: &Names) -> Row {
    Row {
        created_at: show_time(e.created_at),
        actor: display::named(&e.actor, names),
        target: display::named(&e.target, names),
        details: display::details(&e.details, names),
        action: e.action,
        ip: e.ip.unwrap_or_default(),
    }
}

pub async fn list(req: HttpRequest, state: State, admin: Admin) -> Result<HttpResponse, WebError> {
    let p = Params::query(&req);
    let filter = AuditFilter {
        actor: p.get("actor").map(str::to_owned),
        action: p.get("action").map(str::to_owned),
        target: p.get("target").map(str::to_owned),
        organizations: admin.scope(),
    };
    let page = p.page()?;
    let (rows, total, names) = state
        .db(move |conn| {
            let (rows, total) = audit::list(conn, &filter, page, PER_PAGE)?;
            let names = load_names(conn, &rows)?;
            Ok::<_, frontdesk_core::CoreError>((rows, total, names))
        })
        .await?;
    let rows: Vec<Row> = rows.into_iter().map(|e| row(e, &names)).collect();
    let pages = ((total + PER_PAGE - 1) / PER_PAGE).max(1);
    let base = format!("{}/audit", state.settings().admin_prefix);
    let keep = p.pairs_without(&["page"]);
    let link = |n: i64| {
        format!(
            "{base}?{keep}{}page={n}",
            if keep.is_empty() { "" } else { "&" }
        )
    };
    let mut ctx = Context::new();
    ctx.insert("rows", &rows);
    ctx.insert("total", &total);
    ctx.insert("page", &page);
    ctx.insert("pages", &pages);
    ctx.insert("prev_link", &(page > 1).then(|| link(page - 1)));
    ctx.insert("next_link", &(page < pages).then(|| link(page + 1)));
    for k in ["actor", "action", "target"] {
        ctx.insert(format!("f_{k}"), &p.text(k));
    }
    render(&req, &state, &admin, "admin/audit.html", "audit", ctx)
}
