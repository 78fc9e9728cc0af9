//! The user page's "Two-step sign-in" section: the user's factors (never
//! their secrets), recovery codes left, and "Reset MFA" (type the user's
//! email to confirm): every factor and code removed, every session ended,
//! audited, and the user told by mail.

use actix_web::{web, HttpRequest, HttpResponse};
use frontdesk_core::{mfa, outbox, Action, CoreError};
use serde_json::{json, Value};

use super::{finish, show_opt, show_time, verify, Admin, Params, State};
use crate::error::WebError;

/// The section's context.
pub async fn section(state: &State, user_id: i64) -> Result<Value, WebError> {
    let s = state.db(move |conn| mfa::summary(conn, user_id)).await?;
    Ok(json!({
        "enabled": s.enabled,
        "recovery_codes_left": s.recovery_codes_left,
        "factors": s.factors.iter().map(|f| json!({
            "kind": match f.kind.as_str() {
                "totp" => "Authenticator app",
                "passkey" => "Passkey",
                other => other,
            },
            "name": f.name,
            "created_at": show_time(f.created_at),
            "last_used_at": show_opt(f.last_used_at),
        })).collect::<Vec<_>>(),
    }))
}

/// `POST <admin>/users/{id}/mfa/reset` with `confirm` = the user's email.
pub async fn reset(
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
    let to = format!("{}/users/{id}", state.settings().admin_prefix);
    let st = state.clone();
    let result = state
        .db(move |conn| {
            frontdesk_core::db::write_transaction(conn, |conn| {
                let user = frontdesk_core::users::get_for(conn, &actor, id, Action::Edit)?;
                if typed != user.email {
                    return Err(CoreError::Invalid {
                        field: "confirmation",
                        reason: "type the user's email address to reset their second factors"
                            .into(),
                    });
                }
                let removed = mfa::reset(conn, &actor, id)?;
                let mail = crate::mfa::notice_mail(&st, &user, crate::mfa::Notice::ResetByAdmin)?;
                outbox::enqueue(conn, &mail)?;
                Ok(removed)
            })
        })
        .await;
    if result.is_ok() {
        state.wake_mailer();
    }
    finish(&state, result, &to, |n| {
        format!("Two-step sign-in reset: {n} factor(s) removed, every session ended.")
    })
}

/// `POST <admin>/organizations/{id}/require-mfa` with `require_mfa` = 1 or 0:
/// the organization's "require two-step sign-in for members" setting, for
/// those who may edit the organization (its owners and admins, staff).
pub async fn require_for_organization(
    req: HttpRequest,
    state: State,
    admin: Admin,
    path: web::Path<i64>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let id = path.into_inner();
    let form = Params::form(&body)?;
    verify(&req, &state, &form)?;
    let on = match form.text("require_mfa").as_str() {
        "1" | "true" | "on" => true,
        "0" | "false" | "off" => false,
        _ => return Err(WebError::bad_request("require_mfa must be 1 or 0")),
    };
    let actor = admin.actor.clone();
    let to = format!("{}/organizations/{id}", state.settings().admin_prefix);
    let result = state
        .db(move |conn| mfa::policy::set_for_organization(conn, &actor, id, on).map(|_| on))
        .await;
    finish(&state, result, &to, |on| {
        if on {
            "Members must now use two-step sign-in.".into()
        } else {
            "Two-step sign-in is now optional for members.".into()
        }
    })
}
