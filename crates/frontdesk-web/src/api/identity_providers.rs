//! `/organizations/{slug}/identity-provider`: the organization's OpenID
//! Connect provider for single sign-on. The client secret is write-only;
//! answers carry `redirect_uri`, the callback to register at the provider.
//! Saving fetches and checks the issuer's discovery document first.

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use frontdesk_core::sso::{self, oidc, Configured, ProviderInput};
use frontdesk_core::{CoreError, OrgRole};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::ApiActor;
use super::organizations::visible;
use super::problem::{ApiError, ApiResult};
use super::utc;
use crate::error::{FieldError, WebError};
use crate::state::FrontdeskState;

/// The newcomers' role.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NewcomerRole {
    Member,
    Admin,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IdentityProviderOut {
    /// Whether the organization has an identity provider; the other fields
    /// but `redirect_uri` are null when it has none.
    pub configured: bool,
    /// The callback to register at the provider.
    #[schema(example = "https://app.example/auth/sso/callback")]
    pub redirect_uri: String,
    /// The provider's key, as linked identities name it.
    #[schema(example = "org:acme")]
    pub provider: Option<String>,
    #[schema(example = "https://idp.example")]
    pub issuer: Option<String>,
    pub client_id: Option<String>,
    /// Email domains the provider owns.
    pub domains: Vec<String>,
    pub default_role: Option<String>,
    pub require_sso: bool,
    pub trust_idp_mfa: bool,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
}

fn out(state: &FrontdeskState, c: Option<&Configured>) -> IdentityProviderOut {
    IdentityProviderOut {
        configured: c.is_some(),
        redirect_uri: state.sso_redirect_uri(),
        provider: c.map(|c| c.provider.provider_key.clone()),
        issuer: c.map(|c| c.provider.issuer.clone()),
        client_id: c.map(|c| c.provider.client_id.clone()),
        domains: c.map(|c| c.domains.clone()).unwrap_or_default(),
        default_role: c.map(|c| c.provider.default_role.clone()),
        require_sso: c.is_some_and(|c| c.provider.require_sso),
        trust_idp_mfa: c.is_some_and(|c| c.provider.trust_idp_mfa),
        created_at: c.map(|c| utc(c.provider.created_at)),
        updated_at: c.map(|c| utc(c.provider.updated_at)),
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IdentityProviderIn {
    /// The issuer; its `/.well-known/openid-configuration` is fetched and
    /// checked on save. https (plain http only on a loopback address).
    #[schema(
        example = "https://idp.example",
        max_length = 500,
        pattern = r"^https?://[^\x00-\x20\x7F-\x9F]+$"
    )]
    pub issuer: String,
    #[schema(max_length = 255, pattern = r"^[^\x00-\x1F\x7F-\x9F]+$")]
    pub client_id: String,
    /// Write-only: never returned. Required the first time; left out later,
    /// the stored one is kept.
    #[serde(default)]
    #[schema(max_length = 1000, pattern = r"^[^\x00-\x1F\x7F-\x9F]+$", write_only)]
    pub client_secret: Option<String>,
    /// Email domains the provider owns: their users are sent there from the
    /// login page, and may get an account on first sign-in.
    #[serde(default)]
    #[schema(schema_with = super::openapi::domains_schema)]
    pub domains: Vec<String>,
    /// The role of members the provider brings (default member).
    #[serde(default)]
    pub default_role: Option<NewcomerRole>,
    /// Members may sign in only through the provider (except users an admin
    /// exempts).
    #[serde(default)]
    pub require_sso: bool,
    /// The provider's `amr` claim naming a second factor stands for ours.
    #[serde(default)]
    pub trust_idp_mfa: bool,
}

/// `GET /organizations/{slug}/identity-provider`.
#[utoipa::path(
    get,
    path = "/organizations/{slug}/identity-provider",
    operation_id = "organizations_identity_provider_get",
    tag = "organizations",
    params(("slug" = String, Path, description = "Organization slug")),
    responses((status = 200, description = "The identity provider (never its secret)", body = IdentityProviderOut))
)]
pub async fn get(
    state: web::Data<FrontdeskState>,
    api: ApiActor,
    slug: web::Path<String>,
) -> ApiResult {
    let slug = slug.into_inner();
    let found = state
        .db(move |conn| {
            let org = visible(conn, &api.actor, &slug)?;
            sso::get(conn, &api.actor, org.id)
        })
        .await?;
    Ok(HttpResponse::Ok().json(out(&state, found.as_ref())))
}

/// `PUT /organizations/{slug}/identity-provider`: organization owners and
/// staff admins. The issuer's discovery document is fetched first: when it
/// cannot be (or this build has no `sso` feature) the answer is the 400
/// validation problem naming `issuer`, and nothing is saved.
#[utoipa::path(
    put,
    path = "/organizations/{slug}/identity-provider",
    operation_id = "organizations_identity_provider_put",
    tag = "organizations",
    params(("slug" = String, Path, description = "Organization slug")),
    request_body = IdentityProviderIn,
    responses(
        (status = 200, description = "Saved", body = IdentityProviderOut),
    )
)]
pub async fn put(
    state: web::Data<FrontdeskState>,
    api: ApiActor,
    slug: web::Path<String>,
    body: super::problem::Body,
) -> ApiResult {
    let body: IdentityProviderIn = super::problem::object(body)?;
    let slug = slug.into_inner();
    let input = ProviderInput {
        issuer: body.issuer,
        client_id: body.client_id,
        client_secret: body.client_secret,
        domains: body.domains,
        default_role: body.default_role.map(|r| match r {
            NewcomerRole::Member => OrgRole::Member,
            NewcomerRole::Admin => OrgRole::Admin,
        }),
        require_sso: body.require_sso,
        trust_idp_mfa: body.trust_idp_mfa,
        allow_loopback_http: !state.secure_cookies(),
    };
    // Who may, and what, before the issuer is fetched.
    let actor = api.actor.clone();
    let check = input.clone();
    let (org, input) = state
        .db(move |conn| {
            let org = visible(conn, &actor, &slug)?;
            let checked = sso::check_input(&actor, org.id, &check)?;
            let has_secret =
                check.client_secret.is_some() || sso::for_organization(conn, org.id)?.is_some();
            if !has_secret {
                return Err(CoreError::Invalid {
                    field: "client_secret",
                    reason: "is required".into(),
                });
            }
            Ok::<_, CoreError>((org, checked))
        })
        .await?;
    let Some(keys) = state.sso_keys().cloned() else {
        return Err(ApiError::from(WebError::validation(vec![FieldError::new(
            "client_secret",
            "cannot be stored: the host has no secret_key configured",
        )])));
    };
    let issuer = input.issuer.clone();
    let discovered = crate::request_id::block(move || oidc::discover(&issuer))
        .await
        .map_err(WebError::internal)?;
    if let Err(e) = discovered {
        return Err(ApiError::from(WebError::validation(vec![FieldError::new(
            "issuer",
            e.to_string(),
        )])));
    }
    let actor = api.actor;
    let saved = state
        .db(move |conn| sso::save(conn, &actor, &keys, org.id, &input))
        .await?;
    Ok(HttpResponse::Ok().json(out(&state, Some(&saved))))
}

/// `DELETE /organizations/{slug}/identity-provider`: the identities linked
/// through it are unlinked.
#[utoipa::path(
    delete,
    path = "/organizations/{slug}/identity-provider",
    operation_id = "organizations_identity_provider_delete",
    tag = "organizations",
    params(("slug" = String, Path, description = "Organization slug")),
    responses((status = 204, description = "Removed"))
)]
pub async fn delete(
    state: web::Data<FrontdeskState>,
    api: ApiActor,
    slug: web::Path<String>,
) -> ApiResult {
    let slug = slug.into_inner();
    state
        .db(move |conn| {
            let org = visible(conn, &api.actor, &slug)?;
            sso::remove(conn, &api.actor, org.id)
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
