//! Login attempts: every sign-in try with its result and reason, filtered by
//! result, reason, IP, user (email) and time range; scoped for org admins.

use actix_web::{HttpRequest, HttpResponse};
use frontdesk_core::login_attempts::{self, AttemptFilter, Reason};
use frontdesk_core::names::Names;
use frontdesk_core::CoreError;
use serde::Serialize;
use tera::Context;

use super::{display, render, show_time, Admin, Params, State};
use crate::error::WebError;

const PER_PAGE: i64 = 50;

#[derive(Serialize)]
struct Row {
    created_at: String,
    email: String,
    user_id: Option<i64>,
    /// The account's name when the attempt names one that still exists.
    user_name: Option<String>,
    success: bool,
    reason: String,
    /// How the attempt proved who it was (empty on older rows).
    method: String,
    ip: String,
    device: String,
    user_agent: String,
}

#[derive(Serialize)]
struct ReasonChoice {
    code: &'static str,
    label: String,
}

pub async fn list(req: HttpRequest, state: State, admin: Admin) -> Result<HttpResponse, WebError> {
    let p = Params::query(&req);
    let filter = AttemptFilter {
        // `user` (an id) still works for links made before the email filter.
        user_id: match p.int("user_id")? {
            Some(u) => Some(u),
            None => p.int("user")?,
        },
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
        two_step: match p.get("step") {
            None | Some("any") => false,
            Some("two_step") => true,
            Some(_) => return Err(WebError::bad_request("step must be any or two_step")),
        },
    };
    let f_step = if filter.two_step { "two_step" } else { "any" };
    let page = p.page()?;
    let scope = admin.scope();
    let actor = admin.actor.clone();
    let (rows, total, names, link_email) = state
        .db(move |conn| {
            let link_email = match &filter.email {
                None => display::email_for_filter(conn, &actor, filter.user_id)?,
                Some(_) => None,
            };
            let (rows, total) =
                login_attempts::list_scoped(conn, &filter, scope.as_deref(), page, PER_PAGE)?;
            let refs: Vec<String> = rows
                .iter()
                .filter_map(|a| a.user_id.map(|u| format!("user:{u}")))
                .collect();
            let names = Names::load(conn, refs.iter().map(String::as_str))?;
            Ok::<_, CoreError>((rows, total, names, link_email))
        })
        .await?;
    let rows: Vec<Row> = rows
        .into_iter()
        .map(|a| Row {
            created_at: show_time(a.created_at),
            user_name: a
                .user_id
                .and_then(|u| names.users.get(&u))
                .map(|u| u.name.clone()),
            email: a.email,
            user_id: a.user_id,
            success: a.success,
            reason: display::reason(&a.reason),
            method: a.method.as_deref().map(display::method).unwrap_or_default(),
            ip: a.ip.unwrap_or_default(),
            device: display::device(a.user_agent.as_deref()),
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
        &Reason::ALL
            .iter()
            .map(|r| ReasonChoice {
                code: r.as_str(),
                label: display::reason(r.as_str()),
            })
            .collect::<Vec<_>>(),
    );
    for k in ["ip", "result", "reason", "from", "to"] {
        ctx.insert(format!("f_{k}"), &p.text(k));
    }
    ctx.insert("f_step", f_step);
    ctx.insert("f_email", &link_email.unwrap_or_else(|| p.text("email")));
    render(
        &req,
        &state,
        &admin,
        "admin/login_attempts.html",
        "login_attempts",
        ctx,
    )
}
