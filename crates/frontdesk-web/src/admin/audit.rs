//! The audit log, newest first, filtered by actor, action and target. Staff
//! read all of it; organization admins the events about their organizations.

use actix_web::{HttpRequest, HttpResponse};
use frontdesk_core::audit::{self, AuditFilter};
use serde::Serialize;
use tera::Context;

use super::{render, show_time, Admin, Params, State};
use crate::error::WebError;

const PER_PAGE: i64 = 50;

#[derive(Serialize)]
struct Row {
    created_at: String,
    actor: String,
    action: String,
    target: String,
    details: String,
    ip: String,
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
    let (rows, total) = state
        .db(move |conn| audit::list(conn, &filter, page, PER_PAGE))
        .await?;
    let rows: Vec<Row> = rows
        .into_iter()
        .map(|e| Row {
            created_at: show_time(e.created_at),
            actor: e.actor,
            action: e.action,
            target: e.target,
            details: e.details,
            ip: e.ip.unwrap_or_default(),
        })
        .collect();
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
