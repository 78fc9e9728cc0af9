//! `PATCH /users/{id}`.

use actix_web::{web, HttpResponse};
use frontdesk_core::users::{self, UserUpdate};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::*;
use crate::api::auth::ApiActor;
use crate::api::problem::{check_text, ApiResult};
use crate::error::WebError;
use crate::state::FrontdeskState;

fn double_option<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// Fields to change; those left out stay as they are.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    #[schema(max_length = 100, pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")]
    pub first_name: Option<String>,
    #[schema(max_length = 100, pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")]
    pub last_name: Option<String>,
    /// null or "" clears it.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>, max_length = 100, pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")]
    pub display_name: Option<Option<String>>,
    pub email_verified: Option<bool>,
    /// Replaces the host-defined profile fields.
    #[schema(schema_with = crate::api::openapi::profile_schema)]
    pub profile: Option<Map<String, Value>>,
    pub local_login_enabled: Option<bool>,
    /// Keep password (and passkey) sign-in for this user even in
    /// organizations that require single sign-on — the escape hatch that
    /// keeps an administrator able to sign in while the identity provider is
    /// down (audited as `user.sso_exemption.grant` / `.revoke`).
    pub sso_exempt: Option<bool>,
}

/// `PATCH /users/{id}`: all changes apply together or none does.
#[utoipa::path(
    patch,
    path = "/users/{id}",
    operation_id = "users_update",
    tag = "users",
    params(("id" = i64, Path, description = "User id")),
    request_body = UserPatch,
    responses((status = 200, description = "The updated user", body = UserDetail))
)]
pub async fn update(
    state: web::Data<FrontdeskState>,
    api: ApiActor,
    id: web::Path<i64>,
    body: crate::api::problem::Body,
) -> ApiResult {
    let id = id.into_inner();
    let patch: UserPatch = crate::api::problem::object(body)?;
    check_text(&[
        ("first_name", patch.first_name.as_deref(), 100),
        ("last_name", patch.last_name.as_deref(), 100),
        (
            "display_name",
            patch.display_name.as_ref().and_then(|d| d.as_deref()),
            100,
        ),
    ])?;
    if patch
        .profile
        .as_ref()
        .is_some_and(|p| p.len() > crate::api::openapi::MAX_PROFILE_FIELDS)
    {
        return Err(WebError::validation(vec![crate::error::FieldError::new(
            "profile",
            format!("at most {} fields", crate::api::openapi::MAX_PROFILE_FIELDS),
        )])
        .into());
    }
    // The declared fields' one check, before anything is saved.
    let mut patch = patch;
    if let Some(p) = &patch.profile {
        patch.profile = Some(frontdesk_core::profile::validate(
            &state.settings().import.profile_fields,
            p,
        )?);
    }
    let config = state.settings().auth.sessions;
    let detail = state
        .db(move |conn| {
            let actor = &api.actor;
            frontdesk_core::db::write_transaction(conn, |conn| {
                let user = users::update_with_login(
                    conn,
                    actor,
                    id,
                    UserUpdate {
                        first_name: patch.first_name,
                        last_name: patch.last_name,
                        display_name: patch.display_name,
                        email_verified: patch.email_verified,
                        profile: patch.profile,
                    },
                    patch.local_login_enabled,
                )?;
                if let Some(exempt) = patch.sso_exempt {
                    frontdesk_core::sso::set_exempt(conn, actor, id, exempt)?;
                }
                detail_of(conn, actor, &user, &config)
            })
        })
        .await?;
    Ok(HttpResponse::Ok().json(detail))
}
