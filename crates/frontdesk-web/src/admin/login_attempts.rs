//! Login attempts: every sign-in try with its result and reason, filtered by
//! result, reason, IP, user (email) and time range; scoped for org admins.

use actix_web::{HttpRequest, HttpResponse};
use frontdesk_core::login_attempts::{self, AttemptFilter, Reason};
use serde::Serialize;
use tera::Context;

use super::{render, show_time, Admin, Params, State};
use crate::error::WebError;

const PER_PAGE: i64 = 50;

#[derive(Serialize)]
struct Row {
    created_at: String,
    email: String,
    user_id: Option<i64>,
    success: bool,
    reason: String,
    ip: String,
    user_agent: String,
}

pub async fn list(req: HttpRequest, state: State, admin: Admin) -> Result<HttpResponse, WebError> {
    let p = Params::query(&req);
    let filter = AttemptFilter {
        user_id: p.int("user")?,
        email: p.get("email").map(|e| e.chars().take(254).collect()),
        ip: p.get("ip").map(|e| e.chars().take(64).collect()),
        success: match p.get("result") {
            None | Some("any") => None,
            Some("success") => Some(true),
            Some("failure") => Some(false),
            Some(_) => {
                return Err(WebError::bad_request(
                    "result must be any, success or failure",
                ))
            }
        },
        reason: match p.get("reason") {
            None => None,
            Some(r) => {
                Some(Reason::parse(r).ok_or_else(|| WebError::bad_request("unknown reason"))?)
            }
        },
        from: p.date("from")?,
        to: p.date_end("to")?,
        organizations: None,
    };
    let page = p.page()?;
    let scope = admin.scope();
    let (rows, total) = state
        .db(move |conn| {
            login_attempts::list_scoped(conn, &filter, scope.as_deref(), page, PER_PAGE)
        })
        .await?;
    let rows: Vec<Row> = rows
        .into_iter()
        .map(|a| Row {
            created_at: show_time(a.created_at),
            email: a.email,
            user_id: a.user_id,
            success: a.success,
            reason: a.reason,
            ip: a.ip.unwrap_or_default(),
            user_agent: a.user_agent.unwrap_or_default(),
        })
        .collect();
    let pages = ((total + PER_PAGE - 1) / PER_PAGE).max(1);
    let base = format!("{}/login-attempts", state.settings().admin_prefix);
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
    ctx.insert(
        "reasons",
        &Reason::ALL.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
    );
    for k in ["user", "email", "ip", "result", "reason", "from", "to"] {
        ctx.insert(format!("f_{k}"), &p.text(k));
    }
    render(
        &req,
        &state,
        &admin,
        "admin/login_attempts.html",
        "login_attempts",
        ctx,
    )
}
