//! "My sessions": a signed-in user lists their own live sessions and ends one
//! of them, or all but the current one.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::NaiveDateTime;
use frontdesk_core::sessions;
use serde::Serialize;

use crate::csrf;
use crate::current_user::CurrentUser;
use crate::error::WebError;
use crate::login::csrf_form::CsrfForm;
use crate::state::FrontdeskState;

#[derive(Serialize)]
struct SessionRow {
    id: i64,
    current: bool,
    ip: String,
    user_agent: String,
    created_at: String,
    last_active_at: String,
    expires_at: String,
}

fn show(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

pub async fn list(
    state: web::Data<FrontdeskState>,
    me: CurrentUser,
) -> Result<HttpResponse, WebError> {
    let config = state.settings().auth.sessions;
    let user_id = me.id();
    let rows = state
        .db(move |conn| sessions::list_live_for_user(conn, user_id, &config))
        .await?;
    let rows: Vec<SessionRow> = rows
        .into_iter()
        .map(|s| SessionRow {
            id: s.id,
            current: s.id == me.session.id,
            ip: s.ip.unwrap_or_default(),
            user_agent: s.user_agent.unwrap_or_default(),
            created_at: show(s.created_at),
            last_active_at: show(s.last_active_at),
            expires_at: show(s.expires_at),
        })
        .collect();
    let mut ctx = state.context();
    ctx.insert("sessions", &rows);
    ctx.insert("csrf_token", me.csrf_token());
    ctx.insert("user_email", &me.user.email);
    ctx.insert("user_name", &me.user.name());
    crate::email_verification::banner(&mut ctx, &me);
    let body = state.render("auth/sessions.html", &ctx)?;
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(body))
}

pub async fn revoke(
    req: HttpRequest,
    state: web::Data<FrontdeskState>,
    me: CurrentUser,
    path: web::Path<i64>,
    form: crate::forms::Form<CsrfForm>,
) -> Result<HttpResponse, WebError> {
    csrf::verify(&req, &state, &form.csrf_token)?;
    let id = path.into_inner();
    let user_id = me.id();
    let ended = state
        .db(move |conn| sessions::end_own(conn, user_id, id))
        .await?;
    if !ended {
        return Err(WebError::not_found().for_request(&req));
    }
    let to = if id == me.session.id {
        format!("{}/login", state.prefix())
    } else {
        format!("{}/sessions", state.prefix())
    };
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to))
        .finish())
}

pub async fn revoke_others(
    req: HttpRequest,
    state: web::Data<FrontdeskState>,
    me: CurrentUser,
    form: crate::forms::Form<CsrfForm>,
) -> Result<HttpResponse, WebError> {
    csrf::verify(&req, &state, &form.csrf_token)?;
    let (user_id, keep) = (me.id(), me.session.id);
    state
        .db(move |conn| sessions::end_own_others(conn, user_id, keep))
        .await?;
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, format!("{}/sessions", state.prefix())))
        .finish())
}
