//! `/organizations/{slug}/scim-tokens`: the bearer tokens a directory uses
//! on the SCIM service. The token is in the creation answer only, with the
//! full URL to paste into the directory.

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use frontdesk_core::scim_tokens::{self, ScimToken};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::ApiActor;
use super::organizations::visible;
use super::problem::ApiResult;
use super::utc;
use crate::state::FrontdeskState;

#[derive(Debug, Serialize, ToSchema)]
pub struct ScimTokenOut {
    pub id: i64,
    pub name: String,
    /// The first characters of the token, to recognise it.
    #[schema(example = "fdscim_AbCdEf")]
    pub prefix: String,
    pub created_by: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<&ScimToken> for ScimTokenOut {
    fn from(t: &ScimToken) -> Self {
        ScimTokenOut {
            id: t.id,
            name: t.name.clone(),
            prefix: t.prefix.clone(),
            created_by: t.created_by,
            created_at: utc(t.created_at),
            last_used_at: t.last_used_at.map(utc),
            revoked_at: t.revoked_at.map(utc),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ScimTokenList {
    pub scim_tokens: Vec<ScimTokenOut>,
    /// The SCIM service's base URL, for the directory.
    #[schema(example = "https://app.example/scim/v2")]
    pub scim_base_url: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewScimToken {
    /// What the token is for (default "Directory").
    #[serde(default)]
    #[schema(
        example = "Entra ID",
        max_length = 100,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*$"
    )]
    pub name: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedScimToken {
    pub scim_token: ScimTokenOut,
    /// The token itself, shown this once: the directory sends it as
    /// `Authorization: Bearer …`.
    #[schema(example = "fdscim_…")]
    pub token: String,
    /// The SCIM service's base URL to paste into the directory.
    #[schema(example = "https://app.example/scim/v2")]
    pub scim_base_url: String,
}

fn base(state: &FrontdeskState) -> String {
    crate::scim::base_url(state, crate::scim::DEFAULT_PREFIX)
}

/// `GET /organizations/{slug}/scim-tokens`: newest first, revoked ones too.
#[utoipa::path(
    get,
    path = "/organizations/{slug}/scim-tokens",
    operation_id = "organizations_scim_tokens_list",
    tag = "organizations",
    params(("slug" = String, Path, description = "Organization slug")),
    responses((status = 200, description = "Tokens (never their secrets)", body = ScimTokenList))
)]
pub async fn list(
    state: web::Data<FrontdeskState>,
    api: ApiActor,
    slug: web::Path<String>,
) -> ApiResult {
    let slug = slug.into_inner();
    let tokens = state
        .db(move |conn| {
            let org = visible(conn, &api.actor, &slug)?;
            scim_tokens::list(conn, &api.actor, org.id)
        })
        .await?;
    Ok(HttpResponse::Ok().json(ScimTokenList {
        scim_tokens: tokens.iter().map(ScimTokenOut::from).collect(),
        scim_base_url: base(&state),
    }))
}

/// `POST /organizations/{slug}/scim-tokens`: the directory will act as an
/// admin of this organization, so only who may grant that makes one.
#[utoipa::path(
    post,
    path = "/organizations/{slug}/scim-tokens",
    operation_id = "organizations_scim_tokens_create",
    tag = "organizations",
    params(("slug" = String, Path, description = "Organization slug")),
    request_body = NewScimToken,
    responses((status = 201, description = "Created; the token is shown once", body = CreatedScimToken))
)]
pub async fn create(
    state: web::Data<FrontdeskState>,
    api: ApiActor,
    slug: web::Path<String>,
    body: super::problem::Body,
) -> ApiResult {
    let body: NewScimToken = super::problem::object(body)?;
    super::problem::check_text(&[("name", body.name.as_deref(), 100)])?;
    let slug = slug.into_inner();
    let (token, secret) = state
        .db(move |conn| {
            let org = visible(conn, &api.actor, &slug)?;
            scim_tokens::create(conn, &api.actor, org.id, body.name.as_deref().unwrap_or(""))
        })
        .await?;
    Ok(HttpResponse::Created().json(CreatedScimToken {
        scim_token: ScimTokenOut::from(&token),
        token: secret.expose().to_owned(),
        scim_base_url: base(&state),
    }))
}

/// `DELETE /organizations/{slug}/scim-tokens/{id}`: the directory is shut out at once.
#[utoipa::path(
    delete,
    path = "/organizations/{slug}/scim-tokens/{id}",
    operation_id = "organizations_scim_tokens_revoke",
    tag = "organizations",
    params(
        ("slug" = String, Path, description = "Organization slug"),
        ("id" = i64, Path, description = "SCIM token id"),
    ),
    responses((status = 204, description = "Revoked"))
)]
pub async fn revoke(
    state: web::Data<FrontdeskState>,
    api: ApiActor,
    path: web::Path<(String, i64)>,
) -> ApiResult {
    let (slug, id) = path.into_inner();
    state
        .db(move |conn| {
            let org = visible(conn, &api.actor, &slug)?;
            scim_tokens::revoke(conn, &api.actor, org.id, id)
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
