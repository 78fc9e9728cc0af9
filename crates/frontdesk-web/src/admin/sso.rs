//! The user page's "Single sign-on" section: the user's linked identities
//! (unlink, audited) and the exemption from an organization's "require
//! SSO" (password sign-in still allowed, audited).

use actix_web::{web, HttpRequest, HttpResponse};
use frontdesk_core::sso;
use serde_json::{json, Value};

use super::{finish, show_opt, show_time, verify, Admin, Params, State};
use crate::error::WebError;

/// The section's context.
pub async fn section(state: &State, user_id: i64) -> Result<Value, WebError> {
    let (ids, exempt) = state
        .db(move |conn| {
            Ok::<_, frontdesk_core::CoreError>((
                sso::identities(conn, user_id)?,
                sso::is_exempt(conn, user_id)?,
            ))
        })
        .await?;
    Ok(json!({
        "exempt": exempt,
        "identities": ids.iter().map(|i| json!({
            "id": i.id,
            "provider": i.provider,
            "provider_user_id": i.provider_user_id,
            "email": i.email,
            "linked_at": show_time(i.linked_at),
            "last_used_at": show_opt(i.last_used_at),
        })).collect::<Vec<_>>(),
    }))
}

/// `POST <admin>/users/{id}/identities/{identity}/unlink`.
pub async fn unlink(
    req: HttpRequest,
    state: State,
    admin: Admin,
    path: web::Path<(i64, i64)>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let (id, identity) = path.into_inner();
    let form = Params::form(&body)?;
    verify(&req, &state, &form)?;
    let actor = admin.actor.clone();
    let to = format!("{}/users/{id}", state.settings().admin_prefix);
    let result = state
        .db(move |conn| sso::unlink(conn, &actor, id, identity))
        .await;
    finish(&state, result, &to, |_| "Identity unlinked.".to_owned())
}

/// `POST <admin>/users/{id}/sso-exemption` with `exempt` = 1 or 0.
pub async fn exemption(
    req: HttpRequest,
    state: State,
    admin: Admin,
    path: web::Path<i64>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let id = path.into_inner();
    let form = Params::form(&body)?;
    verify(&req, &state, &form)?;
    let exempt = form.text("exempt") == "1";
    let actor = admin.actor.clone();
    let to = format!("{}/users/{id}", state.settings().admin_prefix);
    let result = state
        .db(move |conn| sso::set_exempt(conn, &actor, id, exempt))
        .await;
    finish(&state, result, &to, |_| {
        if exempt {
            "Password sign-in allowed despite required single sign-on.".to_owned()
        } else {
            "Password sign-in follows the organization's single sign-on rule again.".to_owned()
        }
    })
}
