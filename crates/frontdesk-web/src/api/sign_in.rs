//! `/sign-in`: an admin's session for the operations that take one and
//! never a key (the API keys), for clients generated from the document. The
//! same sign-in as the sign-in pages' `/api/login` (lockout, login attempts,
//! a second step for users with a factor), answered under the API's prefix
//! so a client needs one base URL.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::problem::Problem;
use crate::error::WebError;
use crate::state::FrontdeskState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    #[schema(example = "admin@example.com", max_length = 254, format = Email)]
    pub email: String,
    #[schema(format = Password)]
    pub password: String,
}

/// Who signed in.
#[derive(Debug, Serialize, ToSchema)]
pub struct SignedInUser {
    pub id: i64,
    pub email: String,
    /// Display name, else first and last name, else the email.
    pub name: String,
    /// `viewer`, `admin`, `owner`, or null for end users (who may sign in,
    /// but whom the API then refuses).
    pub staff_role: Option<String>,
}

/// A session: its cookie is set on the answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct SignedIn {
    pub user: SignedInUser,
    /// Send it as `X-CSRF-Token` on POST, PUT, PATCH and DELETE with the
    /// session cookie.
    pub csrf_token: String,
    pub expires_at: DateTime<Utc>,
}

/// The password was right and a second factor is needed.
#[derive(Debug, Serialize, ToSchema)]
pub struct SecondStepNeeded {
    /// Always true.
    pub mfa_required: bool,
    /// For `POST /sign-in/second-step`; single use.
    pub challenge: String,
    /// Seconds the challenge lives.
    pub expires_in: i64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecondStep {
    /// From the `202` answer of `POST /sign-in`.
    #[schema(pattern = "^[A-Za-z0-9_-]{43}$")]
    pub challenge: String,
    /// The authenticator app's current code (spaces are ignored); or give
    /// `recovery_code`.
    #[serde(default)]
    #[schema(example = "123456", pattern = "^[0-9 ]{6,12}$")]
    pub code: Option<String>,
    /// One of the user's recovery codes (dashes and spaces are ignored),
    /// instead of `code`.
    #[serde(default)]
    #[schema(pattern = "^[A-Za-z0-9 -]{1,64}$")]
    pub recovery_code: Option<String>,
}

/// `POST /sign-in`: a session for an admin.
#[utoipa::path(
    post,
    path = "/sign-in",
    operation_id = "sign_in",
    tag = "sign-in",
    security(()),
    request_body = SignIn,
    responses(
        (status = 200, description = "Signed in: the session cookie is set (`Set-Cookie`)", body = SignedIn),
        (status = 202, description = "A second factor is needed: `POST /sign-in/second-step` with the challenge", body = SecondStepNeeded),
        (status = 401, description = "Wrong email or password, a locked or suspended account, or one that must sign in through its organization's identity provider (one message for all)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A cross-site request, or a user who must first enrol a second factor (on the sign-in pages)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn sign_in(
    req: HttpRequest,
    state: web::Data<FrontdeskState>,
    body: web::Json<SignIn>,
) -> Result<HttpResponse, WebError> {
    let SignIn { email, password } = body.into_inner();
    crate::login::api_login(
        req,
        state,
        web::Json(crate::login::JsonLogin {
            email,
            password,
            service: None,
        }),
    )
    .await
}

/// `POST /sign-in/second-step`: the second factor of a sign-in.
#[utoipa::path(
    post,
    path = "/sign-in/second-step",
    operation_id = "sign_in_second_step",
    tag = "sign-in",
    security(()),
    request_body = SecondStep,
    responses(
        (status = 200, description = "Signed in: the session cookie is set (`Set-Cookie`)", body = SignedIn),
        (status = 401, description = "A wrong code, or a challenge that is used up or expired (sign in again)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn second_step(
    req: HttpRequest,
    state: web::Data<FrontdeskState>,
    body: web::Json<SecondStep>,
) -> Result<HttpResponse, WebError> {
    let SecondStep {
        challenge,
        code,
        recovery_code,
    } = body.into_inner();
    crate::mfa::api_step(
        req,
        state,
        web::Json(crate::mfa::JsonStep {
            challenge,
            code: code.unwrap_or_default(),
            recovery_code: recovery_code.unwrap_or_default(),
        }),
    )
    .await
}
