//! Passkeys on the end user's pages. Each WebAuthn ceremony is two JSON
//! calls — `begin` (the options for the browser) and `finish` (the
//! authenticator's answer) — under `{prefix}/api`, which the pages drive with
//! a small script (`{prefix}/static/passkeys.js`) and a host's own front end
//! may call directly:
//!
//! - `passkeys/register/begin|finish`: a signed-in user adds a passkey
//!   (`X-CSRF-Token` header);
//! - `login/mfa/passkey/begin|finish`: the second step of a sign-in, for the
//!   pending challenge (its cookie, or `challenge` in the body);
//! - `login/passkey/begin|finish`: sign in with a passkey alone, where the
//!   host's policy is `PasskeyPolicy::SignIn`;
//! - `login/mfa/enrol/passkey/begin|finish`: enrolment a policy requires,
//!   for the pending sign-in of a user without a factor: the passkey is
//!   added, the recovery codes made and the session opened at once.
//!
//! Renaming a factor is a plain form on the "Two-step sign-in" page.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use frontdesk_core::auth::{self, SecondFactor, SignInError, SignedIn};
use frontdesk_core::login_attempts::Reason;
use frontdesk_core::mfa::passkeys::{self, webauthn_rs::prelude as wa};
use frontdesk_core::CoreError;
use serde::Deserialize;
use serde_json::json;

use crate::csrf;
use crate::current_user::{client_info, CurrentUser};
use crate::error::WebError;
use crate::login::{safe_next, session_cookie, GENERIC_FAILURE};
use crate::mfa::{notice_mail, Notice, CHALLENGE_COOKIE};
use crate::state::FrontdeskState;

/// The script the pages load for the passkey buttons.
pub const SCRIPT: &str = include_str!("../assets/passkeys.js");

pub async fn script() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header(("Cache-Control", "public, max-age=3600"))
        .body(SCRIPT)
}

const FAILED: &str = "The passkey was not accepted. Try again, or use another way to sign in.";
const EXPIRED: &str = "Your sign-in took too long or was already used. Sign in again.";

fn problem(status: StatusCode, title: &'static str, detail: &str) -> WebError {
    WebError::new(status, title, detail).json(true)
}

fn unavailable() -> WebError {
    problem(
        StatusCode::NOT_FOUND,
        "Not Found",
        "Passkeys are not available on this site.",
    )
}

fn rp(
    state: &FrontdeskState,
) -> Result<std::sync::Arc<frontdesk_core::mfa::passkeys::webauthn_rs::Webauthn>, WebError> {
    state.passkeys().cloned().ok_or_else(unavailable)
}

fn begun(token: &frontdesk_core::tokens::SecretToken, options: serde_json::Value) -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "ceremony": token.expose(),
        "options": options,
        "expires_in": passkeys::ttl().num_seconds(),
    }))
}

fn to_value<T: serde::Serialize>(v: &T) -> Result<serde_json::Value, WebError> {
    serde_json::to_value(v).map_err(|e| WebError::internal(e).json(true))
}

// ---- adding a passkey ----

/// `POST {prefix}/api/passkeys/register/begin`.
pub async fn register_begin(
    req: HttpRequest,
    state: web::Data<FrontdeskState>,
    me: CurrentUser,
) -> Result<HttpResponse, WebError> {
    csrf::verify(&req, &state, "").map_err(|e| e.json(true))?;
    let rp = rp(&state)?;
    let user = me.user.clone();
    let (token, options) = state
        .db(move |conn| passkeys::begin_registration(conn, &rp, &user))
        .await
        .map_err(|e| e.json(true))?;
    Ok(begun(&token, options))
}

#[derive(Deserialize)]
pub struct RegisterFinish {
    ceremony: String,
    #[serde(default)]
    name: String,
    credential: wa::RegisterPublicKeyCredential,
}

/// `POST {prefix}/api/passkeys/register/finish` with `{"ceremony", "name",
/// "credential"}`: the passkey counts from now on; the user is mailed.
pub async fn register_finish(
    req: HttpRequest,
    state: web::Data<FrontdeskState>,
    me: CurrentUser,
    body: web::Json<RegisterFinish>,
) -> Result<HttpResponse, WebError> {
    csrf::verify(&req, &state, "").map_err(|e| e.json(true))?;
    let rp = rp(&state)?;
    let body = body.into_inner();
    let user = me.user.clone();
    let st = state.get_ref().clone();
    let factor_id = state
        .db(move |conn| {
            let mail = notice_mail(&st, &user, Notice::Added)?;
            passkeys::finish_registration(
                conn,
                &rp,
                &user,
                &body.ceremony,
                &body.name,
                &body.credential,
                |conn| frontdesk_core::outbox::enqueue(conn, &mail).map(|_| ()),
            )
        })
        .await
        .map_err(|e| e.json(true))?;
    state.wake_mailer();
    Ok(HttpResponse::Ok().json(json!({
        "factor_id": factor_id,
        "redirect": format!("{}/mfa/setup?added=passkey", state.prefix()),
    })))
}

#[derive(Deserialize)]
pub struct RenameForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    csrf_token: String,
}

/// `POST {prefix}/mfa/factors/{id}/rename`: a new name for one's own factor.
pub async fn rename(
    req: HttpRequest,
    state: web::Data<FrontdeskState>,
    me: CurrentUser,
    path: web::Path<i64>,
    form: crate::forms::Form<RenameForm>,
) -> Result<HttpResponse, WebError> {
    csrf::verify(&req, &state, &form.csrf_token)?;
    let user_id = me.id();
    let factor_id = path.into_inner();
    let name = form.into_inner().name;
    let result = state
        .db(
            move |conn| match passkeys::rename_own(conn, user_id, factor_id, &name) {
                Ok(()) => Ok(Ok(())),
                Err(e @ CoreError::Invalid { .. }) => Ok(Err(e.to_string())),
                Err(e) => Err(e),
            },
        )
        .await?;
    let (status, notice, error) = match &result {
        Ok(()) => (StatusCode::OK, Some("The factor was renamed."), None),
        Err(message) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
            Some(message.as_str()),
        ),
    };
    crate::mfa::setup_response(&state, &me, status, notice, error).await
}

// ---- the second step ----

#[derive(Deserialize, Default)]
pub struct StepBegin {
    #[serde(default)]
    challenge: Option<String>,
}

/// The pending sign-in's challenge (from the body, else its cookie), or the
/// 401 that sends the user back to sign in.
fn pending_challenge(req: &HttpRequest, from_body: Option<String>) -> Result<String, WebError> {
    from_body
        .filter(|c| !c.is_empty())
        .or_else(|| req.cookie(CHALLENGE_COOKIE).map(|c| c.value().to_owned()))
        .ok_or_else(|| problem(StatusCode::UNAUTHORIZED, "Unauthorized", EXPIRED))
}

/// `POST {prefix}/api/login/mfa/passkey/begin` (optionally `{"challenge"}`):
/// the options for the pending sign-in's user's passkeys.
pub async fn step_begin(
    req: HttpRequest,
    state: web::Data<FrontdeskState>,
    body: Option<web::Json<StepBegin>>,
) -> Result<HttpResponse, WebError> {
    csrf::check_origin(&req, &state).map_err(|e| e.json(true))?;
    let rp = rp(&state)?;
    let from_body = body.map(|b| b.into_inner().challenge).unwrap_or_default();
    let challenge = pending_challenge(&req, from_body)?;
    let begun_step = state
        .db(move |conn| {
            let Some(found) = frontdesk_core::mfa::challenges::find(conn, &challenge)? else {
                return Ok::<_, CoreError>(Err(EXPIRED));
            };
            match passkeys::begin_second_step(conn, &rp, found.user_id)? {
                Some(b) => Ok(Ok(b)),
                None => Ok(Err("This account has no passkey.")),
            }
        })
        .await
        .map_err(|e| e.json(true))?;
    match begun_step {
        Ok((token, options)) => Ok(begun(&token, to_value(&options)?)),
        Err(message) => Err(problem(StatusCode::UNAUTHORIZED, "Unauthorized", message)),
    }
}

#[derive(Deserialize)]
pub struct StepFinish {
    ceremony: String,
    credential: wa::PublicKeyCredential,
    #[serde(default)]
    challenge: Option<String>,
    #[serde(default)]
    next: Option<String>,
}

/// `POST {prefix}/api/login/mfa/passkey/finish` with `{"ceremony",
/// "credential"}`: signs in (session cookie) like `/api/login`, plus
/// `redirect` for the page. A refused passkey counts like a wrong code.
pub async fn step_finish(
    req: HttpRequest,
    state: web::Data<FrontdeskState>,
    body: web::Json<StepFinish>,
) -> Result<HttpResponse, WebError> {
    csrf::check_origin(&req, &state).map_err(|e| e.json(true))?;
    let rp = rp(&state)?;
    let body = body.into_inner();
    let challenge = pending_challenge(&req, body.challenge.clone())?;
    let client = client_info(&req, &state);
    let settings = state.settings().auth;
    let replaces = crate::login::presented_session(&req, &state);
    let outcome = state
        .db(move |conn| {
            let factor = SecondFactor::Passkey {
                rp: &rp,
                ceremony: &body.ceremony,
                response: &body.credential,
            };
            Ok::<_, CoreError>(auth::complete_second_step(
                conn,
                None,
                &challenge,
                factor,
                &client,
                &settings,
                replaces.as_deref(),
            ))
        })
        .await
        .map_err(|e| e.json(true))?;
    signed_in_or_refused(&state, outcome, body.next.as_deref(), true, None).await
}

async fn signed_in_or_refused(
    state: &FrontdeskState,
    outcome: Result<SignedIn, SignInError>,
    next: Option<&str>,
    second_step: bool,
    recovery_codes: Option<Vec<String>>,
) -> Result<HttpResponse, WebError> {
    match outcome {
        Ok(signed) => {
            let to = match safe_next(next, "") {
                n if !n.is_empty() => n,
                _ => crate::login::landing(state, signed.user.id).await?,
            };
            let mut res = HttpResponse::Ok();
            res.cookie(session_cookie(state, signed.token.expose()));
            if second_step {
                res.cookie(crate::mfa::challenge_removal(state));
            }
            // As `/api/login`, and `redirect` for the page's script.
            let mut answer = json!({
                "user": {
                    "id": signed.user.id,
                    "email": signed.user.email,
                    "name": signed.user.name(),
                    "staff_role": signed.user.staff_role,
                },
                "csrf_token": csrf::session_token(signed.token.expose()),
                "expires_at": signed.session.expires_at,
                "redirect": to,
            });
            if let Some(codes) = recovery_codes {
                // Shown once: never kept by a cache.
                answer["recovery_codes"] = json!(codes);
                res.insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"));
            }
            Ok(res.json(answer))
        }
        Err(SignInError::Refused {
            reason: Reason::MfaFailed | Reason::PasskeyFailed,
            ..
        }) => Err(problem(StatusCode::UNAUTHORIZED, "Unauthorized", FAILED)),
        Err(SignInError::Refused { .. }) => Err(problem(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            GENERIC_FAILURE,
        )),
        Err(SignInError::ChallengeExpired)
        | Err(SignInError::SecondFactor { .. })
        | Err(SignInError::EnrolmentRequired { .. }) => {
            Err(problem(StatusCode::UNAUTHORIZED, "Unauthorized", EXPIRED))
        }
        Err(SignInError::Other(e)) => Err(WebError::from(e).json(true)),
    }
}

// ---- enrolment a policy requires ----

/// `POST {prefix}/api/login/mfa/enrol/passkey/begin` (optionally
/// `{"challenge"}`): registration options for the pending sign-in's user,
/// who must have no factor yet (else the challenge is for the second step).
pub async fn enrol_begin(
    req: HttpRequest,
    state: web::Data<FrontdeskState>,
    body: Option<web::Json<StepBegin>>,
) -> Result<HttpResponse, WebError> {
    csrf::check_origin(&req, &state).map_err(|e| e.json(true))?;
    let rp = rp(&state)?;
    let from_body = body.map(|b| b.into_inner().challenge).unwrap_or_default();
    let challenge = pending_challenge(&req, from_body)?;
    let begun_enrolment = state
        .db(move |conn| match auth::enrolment_user(conn, &challenge)? {
            Some(user) => passkeys::begin_registration(conn, &rp, &user).map(Some),
            None => Ok(None),
        })
        .await
        .map_err(|e| e.json(true))?;
    match begun_enrolment {
        Some((token, options)) => Ok(begun(&token, options)),
        None => Err(problem(StatusCode::UNAUTHORIZED, "Unauthorized", EXPIRED)),
    }
}

#[derive(Deserialize)]
pub struct EnrolFinish {
    ceremony: String,
    #[serde(default)]
    name: String,
    credential: wa::RegisterPublicKeyCredential,
    #[serde(default)]
    challenge: Option<String>,
    #[serde(default)]
    next: Option<String>,
}

/// `POST {prefix}/api/login/mfa/enrol/passkey/finish` with `{"ceremony",
/// "name", "credential"}`: as `/api/login` once it succeeds, plus the ten
/// `recovery_codes` (shown once) and `redirect`. A refused answer counts
/// like a wrong second step.
pub async fn enrol_finish(
    req: HttpRequest,
    state: web::Data<FrontdeskState>,
    body: web::Json<EnrolFinish>,
) -> Result<HttpResponse, WebError> {
    csrf::check_origin(&req, &state).map_err(|e| e.json(true))?;
    let rp = rp(&state)?;
    let body = body.into_inner();
    let challenge = pending_challenge(&req, body.challenge.clone())?;
    let client = client_info(&req, &state);
    let settings = state.settings().auth;
    let replaces = crate::login::presented_session(&req, &state);
    let st = state.get_ref().clone();
    let (ceremony, name, credential) = (body.ceremony, body.name, body.credential);
    let outcome = state
        .db(move |conn| {
            Ok::<_, CoreError>(auth::complete_passkey_enrolment(
                conn,
                &rp,
                &challenge,
                &ceremony,
                &name,
                &credential,
                &client,
                &settings,
                replaces.as_deref(),
                |conn, user| {
                    let mail = notice_mail(&st, user, Notice::Added)?;
                    frontdesk_core::outbox::enqueue(conn, &mail).map(|_| ())
                },
            ))
        })
        .await
        .map_err(|e| e.json(true))?;
    let (outcome, codes) = match outcome {
        Ok((signed, codes)) => {
            state.wake_mailer();
            (Ok(signed), Some(codes))
        }
        Err(e) => (Err(e), None),
    };
    signed_in_or_refused(&state, outcome, body.next.as_deref(), true, codes).await
}

// ---- signing in with a passkey alone ----

fn sign_in_allowed(
    state: &FrontdeskState,
) -> Result<std::sync::Arc<frontdesk_core::mfa::passkeys::webauthn_rs::Webauthn>, WebError> {
    if !state.passkey_sign_in() {
        return Err(unavailable());
    }
    rp(state)
}

/// `POST {prefix}/api/login/passkey/begin`: options for a discoverable
/// passkey (no email asked).
pub async fn sign_in_begin(
    req: HttpRequest,
    state: web::Data<FrontdeskState>,
) -> Result<HttpResponse, WebError> {
    csrf::check_origin(&req, &state).map_err(|e| e.json(true))?;
    let rp = sign_in_allowed(&state)?;
    let (token, options) = state
        .db(move |conn| passkeys::begin_sign_in(conn, &rp))
        .await
        .map_err(|e| e.json(true))?;
    Ok(begun(&token, to_value(&options)?))
}

#[derive(Deserialize)]
pub struct SignInFinish {
    ceremony: String,
    credential: wa::PublicKeyCredential,
    #[serde(default)]
    next: Option<String>,
}

/// `POST {prefix}/api/login/passkey/finish` with `{"ceremony",
/// "credential"}`: as `/api/login` once it succeeds.
pub async fn sign_in_finish(
    req: HttpRequest,
    state: web::Data<FrontdeskState>,
    body: web::Json<SignInFinish>,
) -> Result<HttpResponse, WebError> {
    csrf::check_origin(&req, &state).map_err(|e| e.json(true))?;
    let rp = sign_in_allowed(&state)?;
    let body = body.into_inner();
    let client = client_info(&req, &state);
    let settings = state.settings().auth;
    let replaces = crate::login::presented_session(&req, &state);
    let ceremony = body.ceremony;
    let credential = body.credential;
    let outcome = state
        .db(move |conn| {
            Ok::<_, CoreError>(auth::sign_in_with_passkey(
                conn,
                &rp,
                &ceremony,
                &credential,
                &client,
                &settings,
                replaces.as_deref(),
            ))
        })
        .await
        .map_err(|e| e.json(true))?;
    signed_in_or_refused(&state, outcome, body.next.as_deref(), false, None).await
}
