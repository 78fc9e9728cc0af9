//! The account: suspend, restore, local sign-in, password reset by mail,
//! ending every session, clearing a lockout, and deleting for good.

use actix_web::{web, HttpRequest, HttpResponse};
use frontdesk_core::authz::Action;
use frontdesk_core::login_attempts::{self};
use frontdesk_core::users::{self as core_users};
use frontdesk_core::{password_resets, sessions, CoreError};

use super::{back, change, user_url};
use crate::admin::{finish, show_time, verify, Admin, Params, State};
use crate::error::WebError;

pub async fn suspend(
    req: HttpRequest,
    state: State,
    admin: Admin,
    path: web::Path<i64>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let id = path.into_inner();
    change(
        &req,
        &state,
        &admin,
        id,
        &body,
        move |conn, actor, f| {
            let reason = f.text("reason");
            if reason.is_empty() {
                return Err(CoreError::Invalid {
                    field: "reason",
                    reason: "give a reason for the suspension".into(),
                });
            }
            let until = core_users::suspension_end(f.get("days"), f.get("until"))?;
            core_users::suspend_until(conn, actor, id, &reason, until)
        },
        |u| match u.suspended_until {
            Some(t) => format!(
                "User suspended until {}; their sessions have ended.",
                show_time(t)
            ),
            None => "User suspended; their sessions have ended.".into(),
        },
    )
    .await
}

pub async fn restore(
    req: HttpRequest,
    state: State,
    admin: Admin,
    path: web::Path<i64>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let id = path.into_inner();
    change(
        &req,
        &state,
        &admin,
        id,
        &body,
        move |conn, actor, _| core_users::restore(conn, actor, id),
        |_| "User restored.".into(),
    )
    .await
}

pub async fn local_login(
    req: HttpRequest,
    state: State,
    admin: Admin,
    path: web::Path<i64>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let id = path.into_inner();
    change(
        &req,
        &state,
        &admin,
        id,
        &body,
        move |conn, actor, f| {
            let enabled = match f.get("enabled") {
                Some("yes") => true,
                Some("no") => false,
                _ => {
                    return Err(CoreError::Invalid {
                        field: "enabled",
                        reason: "must be yes or no".into(),
                    })
                }
            };
            core_users::set_local_login(conn, actor, id, enabled)
        },
        |u| {
            if u.local_login_enabled {
                "Password sign-in allowed.".into()
            } else {
                "Password sign-in disabled.".into()
            }
        },
    )
    .await
}

pub async fn password_reset(
    req: HttpRequest,
    state: State,
    admin: Admin,
    path: web::Path<i64>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let id = path.into_inner();
    let form = Params::form(&body)?;
    verify(&req, &state, &form)?;
    let st = state.get_ref().clone();
    let ttl = st.settings().password_reset_ttl;
    let actor = admin.actor.clone();
    let result = state
        .db(move |conn| {
            password_resets::request_for_user(conn, &actor, id, ttl, |user, token, expires_at| {
                crate::password_resets::reset_mail(&st, user, token, expires_at)
            })
        })
        .await;
    if result.is_ok() {
        // Committed: the mail goes out now, not at the worker's next poll.
        state.wake_mailer();
    }
    finish(&state, result, &back(&state, id, &form), |_| {
        "A password reset link was sent to the user's address.".into()
    })
}

pub async fn revoke_all_sessions(
    req: HttpRequest,
    state: State,
    admin: Admin,
    path: web::Path<i64>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let id = path.into_inner();
    change(
        &req,
        &state,
        &admin,
        id,
        &body,
        move |conn, actor, _| sessions::revoke_all_by_admin(conn, actor, id),
        |n| format!("{n} session(s) ended."),
    )
    .await
}

pub async fn clear_lockout(
    req: HttpRequest,
    state: State,
    admin: Admin,
    path: web::Path<i64>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let id = path.into_inner();
    change(
        &req,
        &state,
        &admin,
        id,
        &body,
        move |conn, actor, _| login_attempts::clear_lockout(conn, actor, id),
        |_| "Lockout cleared.".into(),
    )
    .await
}

/// Deletes for good once the admin has typed the user's email address.
pub async fn delete(
    req: HttpRequest,
    state: State,
    admin: Admin,
    path: web::Path<i64>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let id = path.into_inner();
    let form = Params::form(&body)?;
    verify(&req, &state, &form)?;
    let actor = admin.actor.clone();
    let typed = form.text("confirm").to_lowercase();
    let result = state
        .db(move |conn| {
            let user = core_users::get_for(conn, &actor, id, Action::Delete)?;
            if typed != user.email {
                return Err(CoreError::Invalid {
                    field: "confirmation",
                    reason: "type the user's email address to delete them".into(),
                });
            }
            core_users::delete(conn, &actor, id)?;
            Ok(user.email)
        })
        .await;
    match result {
        Ok(email) => Ok(crate::admin::redirect(
            &state,
            &format!("{}/users", state.settings().admin_prefix),
            "ok",
            &format!("{email} was deleted."),
        )),
        Err(e) => finish(&state, Err::<(), _>(e), &user_url(&state, id), |_| {
            String::new()
        }),
    }
}
