//! All sessions: live ones by default, filtered by user or organization, and
//! an admin's revocation of any one of them.

use actix_web::{web, HttpRequest, HttpResponse};
use frontdesk_core::sessions::{self, SessionFilter};
use frontdesk_core::{users as core_users, CoreError};
use serde::Serialize;
use tera::Context;

use super::{finish, render, show_time, verify, Admin, Params, State};
use crate::error::WebError;

const PER_PAGE: i64 = 50;

#[derive(Serialize)]
struct Row {
    id: i64,
    user_id: i64,
    email: String,
    user_agent: String,
    ip: String,
    created_at: String,
    last_active_at: String,
    ended: String,
}

pub async fn list(req: HttpRequest, state: State, admin: Admin) -> Result<HttpResponse, WebError> {
    let p = Params::query(&req);
    let user_id = p.int("user")?;
    let org = p.int("org")?;
    let page = p.page()?;
    let filter = SessionFilter {
        user_id,
        live_only: p.get("all") != Some("yes"),
        organizations: None,
    };
    // An organization filter narrows the admin's own scope, never widens it.
    let scope = match (admin.scope(), org) {
        (None, None) => None,
        (None, Some(o)) => Some(vec![o]),
        (Some(v), None) => Some(v),
        (Some(v), Some(o)) => Some(v.into_iter().filter(|x| *x == o).collect()),
    };
    let config = state.settings().auth.sessions;
    let actor = admin.actor.clone();
    let (rows, total, orgs) = state
        .db(move |conn| {
            let (rows, total) =
                sessions::list_for_admin(conn, &filter, scope.as_deref(), &config, page, PER_PAGE)?;
            let mut out = Vec::with_capacity(rows.len());
            for s in rows {
                let email = core_users::get(conn, s.user_id)
                    .map(|u| u.email)
                    .unwrap_or_default();
                out.push((s, email));
            }
            let orgs = frontdesk_core::organizations::list(conn, &actor)?;
            Ok::<_, CoreError>((out, total, orgs))
        })
        .await?;
    let now = frontdesk_core::time::now();
    let rows: Vec<Row> = rows
        .into_iter()
        .map(|(s, email)| Row {
            ended: if s.is_live(&config, now) {
                String::new()
            } else {
                s.revoked_reason.clone().unwrap_or_else(|| "expired".into())
            },
            id: s.id,
            user_id: s.user_id,
            email,
            user_agent: s.user_agent.unwrap_or_default(),
            ip: s.ip.unwrap_or_default(),
            created_at: show_time(s.created_at),
            last_active_at: show_time(s.last_active_at),
        })
        .collect();
    let pages = ((total + PER_PAGE - 1) / PER_PAGE).max(1);
    let base = format!("{}/sessions", state.settings().admin_prefix);
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
    ctx.insert("f_user", &p.text("user"));
    ctx.insert("f_org", &p.text("org"));
    ctx.insert("f_all", &(p.get("all") == Some("yes")));
    ctx.insert(
        "organizations",
        &orgs
            .iter()
            .map(|o| (o.id, o.name.clone()))
            .collect::<Vec<_>>(),
    );
    ctx.insert("return_query", &p.pairs_without(&[]));
    render(&req, &state, &admin, "admin/sessions.html", "sessions", ctx)
}

pub async fn revoke(
    req: HttpRequest,
    state: State,
    admin: Admin,
    path: web::Path<i64>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let id = path.into_inner();
    let form = Params::form(&body)?;
    verify(&req, &state, &form)?;
    let prefix = &state.settings().admin_prefix;
    // Back to the user's page or the sessions list, rebuilt from numbers only.
    let to = match form.int("return_user")? {
        Some(u) => format!("{prefix}/users/{u}"),
        None => {
            let q = Params::parse(form.get("return").unwrap_or("").as_bytes()).pairs_without(&[]);
            format!("{prefix}/sessions?{q}")
        }
    };
    let actor = admin.actor.clone();
    let result = state
        .db(move |conn| sessions::revoke_by_admin(conn, &actor, id))
        .await;
    finish(&state, result, &to, |ended| {
        if ended {
            "Session ended.".into()
        } else {
            "That session had already ended.".into()
        }
    })
}
