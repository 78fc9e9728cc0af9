//! Suspend, restore, delete, and ending every session of a user.

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use frontdesk_core::sessions;
use frontdesk_core::users;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::*;
use crate::api::auth::ApiActor;
use crate::api::problem::{check_text, optional_body, ApiResult};
use crate::error::{FieldError, WebError};
use crate::state::FrontdeskState;

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SuspendBody {
    /// Shown to admins; optional.
    #[schema(max_length = 2000, pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")]
    #[serde(default)]
    pub reason: String,
    /// Restore the user by themselves after this many days (1 to 3650).
    #[schema(minimum = 1, maximum = 3650)]
    #[serde(default)]
    pub days: Option<i64>,
    /// Restore the user by themselves at this time (RFC 3339, in the
    /// future); not together with `days`. Without either, the suspension
    /// lasts until an admin restores the user.
    #[serde(default)]
    pub suspended_until: Option<DateTime<Utc>>,
}

/// `POST /users/{id}/suspend`: the user can no longer sign in and every
/// session of theirs ends. The body is optional.
#[utoipa::path(
    post,
    path = "/users/{id}/suspend",
    operation_id = "users_suspend",
    tag = "users",
    params(("id" = i64, Path, description = "User id")),
    request_body(content = Option<SuspendBody>, description = "Optional reason"),
    responses((status = 200, description = "The suspended user", body = UserDetail))
)]
pub async fn suspend(
    state: web::Data<FrontdeskState>,
    api: ApiActor,
    id: web::Path<i64>,
    body: web::Bytes,
) -> ApiResult {
    let id = id.into_inner();
    let SuspendBody {
        reason,
        days,
        suspended_until,
    } = optional_body(&body)?;
    check_text(&[("reason", Some(&reason), 2000)])?;
    let until = match (days, suspended_until) {
        (Some(_), Some(_)) => {
            return Err(WebError::validation(vec![FieldError::new(
                "suspended_until",
                "give days or suspended_until, not both",
            )])
            .into())
        }
        (Some(d), None) => users::suspension_end(Some(&d.to_string()), None).map_err(|_| {
            WebError::validation(vec![FieldError::new(
                "days",
                format!("must be from 1 to {}", users::MAX_SUSPENSION_DAYS),
            )])
        })?,
        (None, u) => u.map(|u| u.naive_utc()),
    };
    let config = state.settings().auth.sessions;
    let detail = state
        .db(move |conn| {
            let user = users::suspend_until(conn, &api.actor, id, &reason, until)?;
            detail_of(conn, &api.actor, &user, &config)
        })
        .await?;
    Ok(HttpResponse::Ok().json(detail))
}

/// `POST /users/{id}/restore`: lifts a suspension.
#[utoipa::path(
    post,
    path = "/users/{id}/restore",
    operation_id = "users_restore",
    tag = "users",
    params(("id" = i64, Path, description = "User id")),
    responses((status = 200, description = "The restored user", body = UserDetail))
)]
pub async fn restore(
    state: web::Data<FrontdeskState>,
    api: ApiActor,
    id: web::Path<i64>,
) -> ApiResult {
    let id = id.into_inner();
    let config = state.settings().auth.sessions;
    let detail = state
        .db(move |conn| {
            let user = users::restore(conn, &api.actor, id)?;
            detail_of(conn, &api.actor, &user, &config)
        })
        .await?;
    Ok(HttpResponse::Ok().json(detail))
}

/// `DELETE /users/{id}`: for good, with memberships, tags and sessions.
#[utoipa::path(
    delete,
    path = "/users/{id}",
    operation_id = "users_delete",
    tag = "users",
    params(("id" = i64, Path, description = "User id")),
    responses((status = 204, description = "Deleted"))
)]
pub async fn delete(
    state: web::Data<FrontdeskState>,
    api: ApiActor,
    id: web::Path<i64>,
) -> ApiResult {
    let id = id.into_inner();
    state
        .db(move |conn| users::delete(conn, &api.actor, id))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionsRevoked {
    #[schema(example = "All sessions revoked")]
    pub message: String,
    pub sessions_revoked: i64,
}

impl SessionsRevoked {
    pub fn new(n: usize) -> Self {
        SessionsRevoked {
            message: "All sessions revoked".to_owned(),
            sessions_revoked: i64::try_from(n).unwrap_or(i64::MAX),
        }
    }
}

/// `DELETE /users/{id}/sessions`: ends every session of the user.
#[utoipa::path(
    delete,
    path = "/users/{id}/sessions",
    operation_id = "users_revoke_sessions",
    tag = "users",
    params(("id" = i64, Path, description = "User id")),
    responses((status = 200, description = "How many sessions ended", body = SessionsRevoked))
)]
pub async fn revoke_sessions(
    state: web::Data<FrontdeskState>,
    api: ApiActor,
    id: web::Path<i64>,
) -> ApiResult {
    let id = id.into_inner();
    let n = state
        .db(move |conn| sessions::revoke_all_by_admin(conn, &api.actor, id))
        .await?;
    Ok(HttpResponse::Ok().json(SessionsRevoked::new(n)))
}
