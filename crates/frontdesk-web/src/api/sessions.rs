//! `/sessions`: sign-in sessions of the users the caller may see, and ending one.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use frontdesk_core::authz::Action;
use frontdesk_core::sessions::{self, Session, SessionConfig, SessionFilter};
use frontdesk_core::users;
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

use super::auth::ApiActor;
use super::params::{Pagination, Paging, Params};
use super::problem::ApiResult;
use super::utc;
use crate::state::FrontdeskState;

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionOut {
    pub id: i64,
    pub user_id: i64,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_active_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub revoked_reason: Option<String>,
    /// True while the session can still be used.
    pub active: bool,
}

impl SessionOut {
    fn new(s: &Session, config: &SessionConfig, now: chrono::NaiveDateTime) -> Self {
        SessionOut {
            id: s.id,
            user_id: s.user_id,
            ip: s.ip.clone(),
            user_agent: s.user_agent.clone(),
            created_at: utc(s.created_at),
            last_active_at: utc(s.last_active_at),
            expires_at: utc(s.expires_at),
            revoked_at: s.revoked_at.map(utc),
            revoked_reason: s.revoked_reason.clone(),
            active: s.is_live(config, now),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionList {
    pub sessions: Vec<SessionOut>,
    pub pagination: Pagination,
}

#[allow(dead_code)]
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SessionListParams {
    /// Only this user's sessions.
    #[param(minimum = 1)]
    user_id: Option<i64>,
    /// `true` (default): only sessions that can still be used; `false`: all.
    active: Option<bool>,
    #[param(minimum = 1, maximum = 1000000, default = 1)]
    page: Option<i64>,
    #[param(minimum = 1, maximum = 100, default = 50)]
    limit: Option<i64>,
}

#[allow(dead_code)]
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserSessionParams {
    /// `true` (default): only sessions that can still be used; `false`: all.
    active: Option<bool>,
    #[param(minimum = 1, maximum = 1000000, default = 1)]
    page: Option<i64>,
    #[param(minimum = 1, maximum = 100, default = 50)]
    limit: Option<i64>,
}

async fn page_of(
    state: &FrontdeskState,
    api: ApiActor,
    filter: SessionFilter,
    paging: Paging,
    check_user: Option<i64>,
) -> ApiResult {
    let config = state.settings().auth.sessions;
    let (rows, total) = state
        .db(move |conn| {
            if let Some(id) = check_user {
                users::get_for(conn, &api.actor, id, Action::View)?;
            }
            let scope = api.actor.visible_orgs();
            sessions::list_for_admin(
                conn,
                &filter,
                scope.as_deref(),
                &config,
                paging.page,
                paging.limit,
            )
        })
        .await?;
    let now = frontdesk_core::time::now();
    Ok(HttpResponse::Ok().json(SessionList {
        sessions: rows
            .iter()
            .map(|s| SessionOut::new(s, &config, now))
            .collect(),
        pagination: paging.out(total),
    }))
}

/// `GET /sessions`: newest first.
#[utoipa::path(
    get,
    path = "/sessions",
    operation_id = "sessions_list",
    tag = "sessions",
    params(SessionListParams),
    responses((status = 200, description = "A page of sessions", body = SessionList))
)]
pub async fn list(req: HttpRequest, state: web::Data<FrontdeskState>, api: ApiActor) -> ApiResult {
    let mut p = Params::parse(req.query_string(), &["user_id", "active", "page", "limit"]);
    let paging = p.paging();
    let user_id = p.int("user_id", 1, i64::MAX);
    let live_only = p.boolean("active").unwrap_or(true);
    p.finish()?;
    page_of(
        &state,
        api,
        SessionFilter {
            user_id,
            live_only,
            ..SessionFilter::default()
        },
        paging,
        None,
    )
    .await
}

/// `GET /users/{id}/sessions`: one user's sessions, newest first.
#[utoipa::path(
    get,
    path = "/users/{id}/sessions",
    operation_id = "sessions_of_user",
    tag = "sessions",
    params(("id" = i64, Path, description = "User id"), UserSessionParams),
    responses((status = 200, description = "A page of sessions", body = SessionList))
)]
pub async fn of_user(
    req: HttpRequest,
    state: web::Data<FrontdeskState>,
    api: ApiActor,
    id: web::Path<i64>,
) -> ApiResult {
    let id = id.into_inner();
    let mut p = Params::parse(req.query_string(), &["active", "page", "limit"]);
    let paging = p.paging();
    let live_only = p.boolean("active").unwrap_or(true);
    p.finish()?;
    let filter = SessionFilter {
        user_id: Some(id),
        live_only,
        ..SessionFilter::default()
    };
    page_of(&state, api, filter, paging, Some(id)).await
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionRevoked {
    /// False when the session had already ended.
    pub revoked: bool,
}

/// `DELETE /sessions/{id}`: ends one session.
#[utoipa::path(
    delete,
    path = "/sessions/{id}",
    operation_id = "sessions_revoke",
    tag = "sessions",
    params(("id" = i64, Path, description = "Session id")),
    responses((status = 200, description = "Whether it was live until now", body = SessionRevoked))
)]
pub async fn revoke(
    state: web::Data<FrontdeskState>,
    api: ApiActor,
    id: web::Path<i64>,
) -> ApiResult {
    let id = id.into_inner();
    let revoked = state
        .db(move |conn| sessions::revoke_by_admin(conn, &api.actor, id))
        .await?;
    Ok(HttpResponse::Ok().json(SessionRevoked { revoked }))
}
