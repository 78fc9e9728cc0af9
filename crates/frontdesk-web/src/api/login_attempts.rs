//! `/login-attempts`: every sign-in try on the accounts the caller may see.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use frontdesk_core::login_attempts::{self, AttemptFilter, LoginAttempt};
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

use super::auth::ApiActor;
use super::params::{Pagination, Params};
use super::problem::ApiResult;
use super::utc;
use crate::state::FrontdeskState;

#[derive(Debug, Serialize, ToSchema)]
pub struct LoginAttemptOut {
    pub id: i64,
    pub user_id: Option<i64>,
    /// As typed, trimmed and lower-cased.
    pub email: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub success: bool,
    /// success, unknown_email, bad_password, suspended, local_login_disabled,
    /// locked_out, email_unverified, lockout_cleared, mfa_required,
    /// mfa_failed, mfa_recovery_code_used or passkey_failed.
    #[schema(example = "bad_password")]
    pub reason: String,
    /// How the attempt proved who it was: password, totp, recovery_code or
    /// passkey (null on rows that are no sign-in, and on older rows).
    #[schema(example = "password")]
    pub method: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl From<&LoginAttempt> for LoginAttemptOut {
    fn from(a: &LoginAttempt) -> Self {
        LoginAttemptOut {
            id: a.id,
            user_id: a.user_id,
            email: a.email.clone(),
            ip: a.ip.clone(),
            user_agent: a.user_agent.clone(),
            success: a.success,
            reason: a.reason.clone(),
            method: a.method.clone(),
            created_at: utc(a.created_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LoginAttemptList {
    pub login_attempts: Vec<LoginAttemptOut>,
    pub pagination: Pagination,
}

#[allow(dead_code)]
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LoginAttemptParams {
    #[param(minimum = 1)]
    user_id: Option<i64>,
    /// Exact email (case-insensitive).
    #[param(max_length = 254, pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")]
    email: Option<String>,
    #[param(max_length = 64, pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")]
    ip: Option<String>,
    success: Option<bool>,
    #[param(minimum = 1, maximum = 1000000, default = 1)]
    page: Option<i64>,
    #[param(minimum = 1, maximum = 100, default = 50)]
    limit: Option<i64>,
}

/// `GET /login-attempts`: newest first. Organization callers see attempts on
/// their members' accounts only.
#[utoipa::path(
    get,
    path = "/login-attempts",
    operation_id = "login_attempts_list",
    tag = "login attempts",
    params(LoginAttemptParams),
    responses((status = 200, description = "A page of attempts", body = LoginAttemptList))
)]
pub async fn list(req: HttpRequest, state: web::Data<FrontdeskState>, api: ApiActor) -> ApiResult {
    let mut p = Params::parse(
        req.query_string(),
        &["user_id", "email", "ip", "success", "page", "limit"],
    );
    let paging = p.paging();
    let filter = AttemptFilter {
        user_id: p.int("user_id", 1, i64::MAX),
        email: p.text("email", 254),
        ip: p.text("ip", 64),
        success: p.boolean("success"),
        ..AttemptFilter::default()
    };
    p.finish()?;
    let (rows, total) = state
        .db(move |conn| {
            let scope = api.actor.visible_orgs();
            login_attempts::list_scoped(conn, &filter, scope.as_deref(), paging.page, paging.limit)
        })
        .await?;
    Ok(HttpResponse::Ok().json(LoginAttemptList {
        login_attempts: rows.iter().map(LoginAttemptOut::from).collect(),
        pagination: paging.out(total),
    }))
}
