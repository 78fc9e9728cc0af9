//! `/audit-events`: the audit log; organization callers see the events about
//! their organizations and their members.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use frontdesk_core::audit::{self, AuditEvent, AuditFilter};
use serde::Serialize;
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::auth::ApiActor;
use super::params::{Pagination, Params};
use super::problem::ApiResult;
use super::utc;
use crate::state::FrontdeskState;

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEventOut {
    pub id: i64,
    /// `user:{id}`, `api_key:{id}` or `system`.
    #[schema(example = "user:1")]
    pub actor: String,
    #[schema(example = "user.suspend")]
    pub action: String,
    #[schema(example = "user:42")]
    pub target: String,
    pub organization_id: Option<i64>,
    /// What changed, as recorded.
    #[schema(value_type = Object)]
    pub details: Value,
    pub ip: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl From<&AuditEvent> for AuditEventOut {
    fn from(e: &AuditEvent) -> Self {
        AuditEventOut {
            id: e.id,
            actor: e.actor.clone(),
            action: e.action.clone(),
            target: e.target.clone(),
            organization_id: e.organization_id,
            details: serde_json::from_str(&e.details)
                .unwrap_or_else(|_| Value::String(e.details.clone())),
            ip: e.ip.clone(),
            created_at: utc(e.created_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEventList {
    pub audit_events: Vec<AuditEventOut>,
    pub pagination: Pagination,
}

#[allow(dead_code)]
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// Exact actor, e.g. `user:1` or `api_key:3`.
    #[param(max_length = 100, pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")]
    actor: Option<String>,
    /// Exact action, e.g. `user.suspend`.
    #[param(max_length = 100, pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")]
    action: Option<String>,
    /// Exact target, e.g. `user:42`.
    #[param(max_length = 100, pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")]
    target: Option<String>,
    #[param(minimum = 1, maximum = 1000000, default = 1)]
    page: Option<i64>,
    #[param(minimum = 1, maximum = 100, default = 50)]
    limit: Option<i64>,
}

/// `GET /audit-events`: newest first.
#[utoipa::path(
    get,
    path = "/audit-events",
    operation_id = "audit_list",
    tag = "audit",
    params(AuditParams),
    responses((status = 200, description = "A page of events", body = AuditEventList))
)]
pub async fn list(req: HttpRequest, state: web::Data<FrontdeskState>, api: ApiActor) -> ApiResult {
    let mut p = Params::parse(
        req.query_string(),
        &["actor", "action", "target", "page", "limit"],
    );
    let paging = p.paging();
    let filter = AuditFilter {
        actor: p.text("actor", 100),
        action: p.text("action", 100),
        target: p.text("target", 100),
        organizations: api.actor.visible_orgs(),
    };
    p.finish()?;
    let (rows, total) = state
        .db(move |conn| audit::list(conn, &filter, paging.page, paging.limit))
        .await?;
    Ok(HttpResponse::Ok().json(AuditEventList {
        audit_events: rows.iter().map(AuditEventOut::from).collect(),
        pagination: paging.out(total),
    }))
}
