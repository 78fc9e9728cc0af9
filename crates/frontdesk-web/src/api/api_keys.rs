//! `/api-keys`: keys are made, listed and revoked by a signed-in admin (never
//! with a key). The secret is in the creation answer only.

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use frontdesk_core::api_keys::{self, ApiKey, KeyRole};
use frontdesk_core::{CoreError, OrgRole, StaffRole};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::ApiActor;
use super::problem::ApiResult;
use super::utc;
use crate::error::{FieldError, WebError};
use crate::state::FrontdeskState;

#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyOut {
    pub id: i64,
    pub name: String,
    /// The first characters of the key, to recognise it.
    #[schema(example = "fdk_AbCdEf")]
    pub prefix: String,
    /// Set for keys scoped to one organization.
    pub organization_id: Option<i64>,
    /// A staff role (viewer, admin, owner) for site-wide keys; an organization
    /// role (member, admin, owner) for scoped ones.
    pub role: String,
    pub created_by: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<&ApiKey> for ApiKeyOut {
    fn from(k: &ApiKey) -> Self {
        ApiKeyOut {
            id: k.id,
            name: k.name.clone(),
            prefix: k.prefix.clone(),
            organization_id: k.organization_id,
            role: k.role.clone(),
            created_by: k.created_by,
            created_at: utc(k.created_at),
            last_used_at: k.last_used_at.map(utc),
            revoked_at: k.revoked_at.map(utc),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyList {
    pub api_keys: Vec<ApiKeyOut>,
}

/// `GET /api-keys`: the keys the admin may manage, newest first.
#[utoipa::path(
    get,
    path = "/api-keys",
    operation_id = "api_keys_list",
    security(("session" = [], "csrf" = [])),
    tag = "api keys",
    responses((status = 200, description = "Keys (never their secrets)", body = ApiKeyList))
)]
pub async fn list(state: web::Data<FrontdeskState>, api: ApiActor) -> ApiResult {
    api.require_session()?;
    let keys = state
        .db(move |conn| api_keys::list(conn, &api.actor))
        .await?;
    Ok(HttpResponse::Ok().json(ApiKeyList {
        api_keys: keys.iter().map(ApiKeyOut::from).collect(),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApiKey {
    #[schema(
        example = "CI sync",
        max_length = 100,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$"
    )]
    pub name: String,
    /// Without `organization`: viewer, admin or owner (staff owners only).
    /// With it: member, admin or owner in that organization.
    #[schema(example = "admin", pattern = r"^(viewer|member|admin|owner)$")]
    pub role: String,
    /// Slug of the organization the key is limited to.
    #[serde(default)]
    #[schema(max_length = 64, pattern = r"^[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?$")]
    pub organization: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedApiKey {
    pub api_key: ApiKeyOut,
    /// The key itself, shown this once: send it as `Authorization: Bearer …`.
    #[schema(example = "fdk_…")]
    pub secret: String,
}

/// `POST /api-keys`: nobody makes a key stronger than themselves.
#[utoipa::path(
    post,
    path = "/api-keys",
    operation_id = "api_keys_create",
    security(("session" = [], "csrf" = [])),
    tag = "api keys",
    request_body = NewApiKey,
    responses((status = 201, description = "Created; the secret is shown once", body = CreatedApiKey))
)]
pub async fn create(
    state: web::Data<FrontdeskState>,
    api: ApiActor,
    body: super::problem::Body,
) -> ApiResult {
    api.require_session()?;
    let body: NewApiKey = super::problem::object(body)?;
    super::problem::check_text(&[("name", Some(&body.name), 100)])?;
    let (key, secret) = state
        .db(move |conn| {
            let actor = &api.actor;
            let role = match body.organization.as_deref() {
                None => StaffRole::parse(&body.role).map(KeyRole::Staff),
                Some(slug) => {
                    let org =
                        super::organizations::visible(conn, actor, slug).map_err(|e| match e {
                            CoreError::NotFound(_) => WebError::validation(vec![FieldError::new(
                                "organization",
                                "no such organization",
                            )]),
                            e => e.into(),
                        })?;
                    OrgRole::parse(&body.role).map(|r| KeyRole::Org(org.id, r))
                }
            };
            let role = role.ok_or_else(|| {
                let allowed = if body.organization.is_some() {
                    "member, admin or owner"
                } else {
                    "viewer, admin or owner"
                };
                WebError::validation(vec![FieldError::new(
                    "role",
                    format!("must be one of {allowed}"),
                )])
            })?;
            api_keys::create(conn, actor, &body.name, role).map_err(WebError::from)
        })
        .await?;
    Ok(HttpResponse::Created().json(CreatedApiKey {
        api_key: ApiKeyOut::from(&key),
        secret: secret.expose().to_owned(),
    }))
}

/// `DELETE /api-keys/{id}`: the key stops working at once.
#[utoipa::path(
    delete,
    path = "/api-keys/{id}",
    operation_id = "api_keys_revoke",
    security(("session" = [], "csrf" = [])),
    tag = "api keys",
    params(("id" = i64, Path, description = "API key id")),
    responses((status = 204, description = "Revoked"))
)]
pub async fn revoke(
    state: web::Data<FrontdeskState>,
    api: ApiActor,
    id: web::Path<i64>,
) -> ApiResult {
    api.require_session()?;
    let id = id.into_inner();
    state
        .db(move |conn| api_keys::revoke(conn, &api.actor, id))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
