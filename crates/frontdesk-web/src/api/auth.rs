//! Who is calling the API: a bearer API key (`Authorization: Bearer fdk_…`),
//! or an admin's own session cookie, in which case unsafe methods need the
//! CSRF token in `X-CSRF-Token`. No key or a bad one is 401; a signed-in user
//! without admin access is 403.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::{header, Method, StatusCode};
use actix_web::{FromRequest, HttpRequest};
use frontdesk_core::{api_keys, users, Actor};

use super::problem::ApiError;
use crate::csrf;
use crate::current_user::{client_info, resolve, state_of};
use crate::error::{problem_type, WebError};

/// How the caller proved who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    ApiKey(i64),
    Session(i64),
}

/// The actor an API request acts as.
#[derive(Debug, Clone)]
pub struct ApiActor {
    pub actor: Actor,
    pub via: Via,
}

fn unauthorized(detail: &str) -> ApiError {
    ApiError::from(WebError::new(
        StatusCode::UNAUTHORIZED,
        "Unauthorized",
        detail,
    ))
}

const BAD_KEY: &str = "The API key is missing, malformed, unknown or revoked.";

async fn authenticate(req: HttpRequest) -> Result<ApiActor, ApiError> {
    let state = state_of(&req)?;
    let ip = client_info(&req, &state).ip;
    if let Some(value) = req.headers().get(header::AUTHORIZATION) {
        let value = value.to_str().map_err(|_| unauthorized(BAD_KEY))?.trim();
        let token = match value.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
            _ => return Err(unauthorized(BAD_KEY)),
        }
        .to_owned();
        let key = state
            .db(move |conn| api_keys::authenticate(conn, &token))
            .await?
            .ok_or_else(|| unauthorized(BAD_KEY))?;
        let actor = key.actor().ok_or_else(|| unauthorized(BAD_KEY))?;
        return Ok(ApiActor {
            actor: actor.with_ip(ip),
            via: Via::ApiKey(key.id),
        });
    }
    let user = resolve(&req).await?.ok_or_else(|| {
        unauthorized("Send an API key as `Authorization: Bearer fdk_…`, or sign in as an admin.")
    })?;
    let user_id = user.id();
    let actor = state
        .db(move |conn| users::actor_for(conn, user_id, ip))
        .await?;
    if !actor.is_admin_user() {
        return Err(ApiError::from(WebError::forbidden(
            "This account has no admin access.",
        )));
    }
    if !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        csrf::verify(&req, &state, "")
            .map_err(|e| ApiError::from(e.with_type(problem_type::CSRF)))?;
    }
    Ok(ApiActor {
        actor,
        via: Via::Session(user_id),
    })
}

impl FromRequest for ApiActor {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        Box::pin(authenticate(req.clone()))
    }
}

impl ApiActor {
    /// Managing API keys needs a person: a key cannot mint or revoke keys.
    pub fn require_session(&self) -> Result<i64, ApiError> {
        match self.via {
            Via::Session(id) => Ok(id),
            Via::ApiKey(_) => Err(ApiError::from(WebError::forbidden(
                "API keys are managed by a signed-in admin, not with an API key.",
            ))),
        }
    }
}
