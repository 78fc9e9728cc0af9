//! All sessions: live ones by default, filtered by user or organization, and
//! an admin's revocation of any one of them.

use actix_web::{web, HttpRequest, HttpResponse};
use frontdesk_core::names::Names;
use frontdesk_core::sessions::{self, SessionFilter};
use frontdesk_core::{users as core_users, CoreError};
use serde::Serialize;
use tera::Context;

use super::{display, finish, render, show_time, verify, Admin, Params, State};
use crate::error::WebError;

const PER_PAGE: i64 = 50;

#[derive(Serialize)]
struct Row {
    id: i64,
    user_id: i64,
    user_name: String,
    email: String,
    device: String,
    user_agent: String,
    ip: String,
    created_at: String,
    last_active_at: String,
    ended: String,
}

pub async fn list(req: HttpRequest, state: State, admin: Admin) -> Result<HttpResponse, WebError> {
    let p = Params::query(&req);
    // `user` (an id) still works for links made before the email filter.
    let user_id = match p.int("user_id")? {
        Some(u) => Some(u),
        None => p.int("user")?,
    };
    let email: Option<String> = p.get("email").map(|e| e.chars().take(254).collect());
    let org = p.int("org")?;
    let page = p.page()?;
    let live_only = p.get("all") != Some("yes");
    // An organization filter narrows the admin's own scope, never widens it.
    let scope = match (admin.scope(), org) {
        (None, None) => None,
        (None, Some(o)) => Some(vec![o]),
        (Some(v), None) => Some(v),
        (Some(v), Some(o)) => Some(v.into_iter().filter(|x| *x == o).collect()),
    };
    let config = state.settings().auth.sessions;
    let actor = admin.actor.clone();
    let (rows, total, names, orgs, link_email) = state
        .db(move |conn| {
            let orgs = frontdesk_core::organizations::list(conn, &actor)?;
            let link_email = match email {
                None => display::email_for_filter(conn, &actor, user_id)?,
                Some(_) => None,
            };
            let by_email = match &email {
                None => None,
                Some(e) => Some(core_users::find_by_email(conn, e)?.map(|u| u.id)),
            };
            // An email no one has (or another user than `user`): no sessions,
            // rather than everyone's.
            let wanted = match (by_email, user_id) {
                (None, u) => Some(u),
                (Some(Some(e)), Some(u)) if e != u => None,
                (Some(Some(e)), _) => Some(Some(e)),
                (Some(None), _) => None,
            };
            let (rows, total) = match wanted {
                None => (Vec::new(), 0),
                Some(user_id) => {
                    let filter = SessionFilter {
                        user_id,
                        live_only,
                        organizations: None,
                    };
                    sessions::list_for_admin(
                        conn,
                        &filter,
                        scope.as_deref(),
                        &config,
                        page,
                        PER_PAGE,
                    )?
                }
            };
            let refs: Vec<String> = rows.iter().map(|s| format!("user:{}", s.user_id)).collect();
            let names = Names::load(conn, refs.iter().map(String::as_str))?;
            Ok::<_, CoreError>((rows, total, names, orgs, link_email))
        })
        .await?;
    let now = frontdesk_core::time::now();
    let rows: Vec<Row> = rows
        .into_iter()
        .map(|s| {
            let user = names.users.get(&s.user_id);
            Row {
                ended: if s.is_live(&config, now) {
                    String::new()
                } else {
                    s.revoked_reason.clone().unwrap_or_else(|| "expired".into())
                },
                id: s.id,
                user_id: s.user_id,
                user_name: user.map(|u| u.name.clone()).unwrap_or_default(),
                email: user.map(|u| u.email.clone()).unwrap_or_default(),
                device: display::device(s.user_agent.as_deref()),
                user_agent: s.user_agent.unwrap_or_default(),
                ip: s.ip.unwrap_or_default(),
                created_at: show_time(s.created_at),
                last_active_at: show_time(s.last_active_at),
            }
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
    ctx.insert("f_email", &link_email.unwrap_or_else(|| p.text("email")));
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
