//! Enrolment a policy requires (`mfa::policy`): after a right password, a
//! user who must use two-step sign-in and has no factor comes here with the
//! pending sign-in's challenge cookie — no session yet. `{prefix}/mfa/enrol`
//! explains and starts an authenticator app; `{prefix}/mfa/enrol/confirm`
//! takes its first code, and only then is the session opened (with the
//! recovery codes shown once). Where passkeys are on, the page also offers
//! "Add a passkey" (`passkeys::enrol_begin|enrol_finish`).

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use frontdesk_core::auth::{self, SignInError};
use frontdesk_core::mfa::totp;
use frontdesk_core::CoreError;
use serde::Deserialize;

use crate::csrf;
use crate::current_user::client_info;
use crate::error::WebError;
use crate::login::{safe_next, session_cookie, GENERIC_FAILURE};
use crate::mfa::{challenge_removal, qr_svg, NextQuery, CHALLENGE_COOKIE};
use crate::state::FrontdeskState;

/// What `/api/login` says to a user who must enrol first.
pub const REQUIRED_API: &str =
    "Two-step sign-in is required for this account and it has none yet: sign in on the site's sign-in page to set it up.";

const EXPIRED: &str = "Your sign-in took too long or was already used. Sign in again.";
const WRONG: &str = "That code is not right. Type the code your app shows now.";

fn back_to_login(state: &FrontdeskState) -> HttpResponse {
    HttpResponse::SeeOther()
        .cookie(challenge_removal(state))
        .insert_header((header::LOCATION, format!("{}/login", state.prefix())))
        .finish()
}

fn next_of(next: Option<&str>) -> Option<String> {
    next.map(|n| safe_next(Some(n), ""))
        .filter(|n| !n.is_empty())
}

fn page(
    req: &HttpRequest,
    state: &FrontdeskState,
    status: StatusCode,
    next: Option<&str>,
    error: Option<&str>,
) -> Result<HttpResponse, WebError> {
    let (token, new_cookie) = csrf::form_token(req, state);
    let mut ctx = state.context();
    ctx.insert("csrf_token", &token);
    ctx.insert("next", &next_of(next));
    ctx.insert("can_add_app", &state.mfa_keys().is_some());
    ctx.insert("can_add_passkey", &state.passkeys().is_some());
    ctx.insert("error", &error);
    let body = state.render("auth/mfa_required.html", &ctx)?;
    let mut res = HttpResponse::build(status);
    if let Some(c) = new_cookie {
        res.cookie(c);
    }
    Ok(res.content_type("text/html; charset=utf-8").body(body))
}

/// `GET {prefix}/mfa/enrol`.
pub async fn required_page(
    req: HttpRequest,
    state: web::Data<FrontdeskState>,
    query: web::Query<NextQuery>,
) -> Result<HttpResponse, WebError> {
    if req.cookie(CHALLENGE_COOKIE).is_none() {
        return Ok(back_to_login(&state));
    }
    page(&req, &state, StatusCode::OK, query.next(), None)
}

#[derive(Deserialize)]
pub struct BeginForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    csrf_token: String,
    next: Option<String>,
}

fn render_enrol(
    req: &HttpRequest,
    state: &FrontdeskState,
    status: StatusCode,
    enrol: &totp::Enrolment,
    next: Option<&str>,
    error: Option<&str>,
) -> Result<HttpResponse, WebError> {
    let (token, new_cookie) = csrf::form_token(req, state);
    let mut ctx = state.context();
    ctx.insert("csrf_token", &token);
    ctx.insert("factor_id", &enrol.factor_id);
    ctx.insert("secret", &enrol.secret_base32);
    ctx.insert("qr_svg", &qr_svg(&enrol.otpauth_url)?);
    ctx.insert("error", &error);
    ctx.insert("next", &next_of(next));
    ctx.insert(
        "confirm_action",
        &format!("{}/mfa/enrol/confirm", state.prefix()),
    );
    ctx.insert("cancel_link", &format!("{}/login", state.prefix()));
    let body = state.render("auth/mfa_enrol.html", &ctx)?;
    let mut res = HttpResponse::build(status);
    if let Some(c) = new_cookie {
        res.cookie(c);
    }
    Ok(res
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(body))
}

/// The pending sign-in's user, if the challenge still lives and is one of
/// enrolment (the user has no factor yet).
async fn pending_user(
    state: &FrontdeskState,
    challenge: String,
) -> Result<Option<frontdesk_core::users::User>, WebError> {
    state
        .db(move |conn| auth::enrolment_user(conn, &challenge))
        .await
}

/// `POST {prefix}/mfa/enrol`: starts the authenticator app.
pub async fn begin(
    req: HttpRequest,
    state: web::Data<FrontdeskState>,
    form: crate::forms::Form<BeginForm>,
) -> Result<HttpResponse, WebError> {
    csrf::verify(&req, &state, &form.csrf_token)?;
    let form = form.into_inner();
    let Some(challenge) = req.cookie(CHALLENGE_COOKIE).map(|c| c.value().to_owned()) else {
        return Ok(back_to_login(&state));
    };
    let Some(keys) = state.mfa_keys().cloned() else {
        return page(
            &req,
            &state,
            StatusCode::CONFLICT,
            form.next.as_deref(),
            None,
        );
    };
    let Some(user) = pending_user(&state, challenge).await? else {
        return page(
            &req,
            &state,
            StatusCode::UNAUTHORIZED,
            form.next.as_deref(),
            Some(EXPIRED),
        );
    };
    let issuer = state.settings().site_name.clone();
    let name = form.name;
    let enrol = state
        .db(move |conn| totp::begin(conn, &keys, &user, &issuer, &name))
        .await;
    match enrol {
        Ok(e) => render_enrol(&req, &state, StatusCode::OK, &e, form.next.as_deref(), None),
        Err(e) if e.status.is_client_error() => page(
            &req,
            &state,
            StatusCode::UNPROCESSABLE_ENTITY,
            form.next.as_deref(),
            Some(&e.detail),
        ),
        Err(e) => Err(e),
    }
}

#[derive(Deserialize)]
pub struct ConfirmForm {
    #[serde(default)]
    factor_id: i64,
    #[serde(default)]
    code: String,
    #[serde(default)]
    csrf_token: String,
    next: Option<String>,
}

/// `POST {prefix}/mfa/enrol/confirm`: the first code; the session opens here.
pub async fn confirm(
    req: HttpRequest,
    state: web::Data<FrontdeskState>,
    form: crate::forms::Form<ConfirmForm>,
) -> Result<HttpResponse, WebError> {
    csrf::verify(&req, &state, &form.csrf_token)?;
    let form = form.into_inner();
    let Some(challenge) = req.cookie(CHALLENGE_COOKIE).map(|c| c.value().to_owned()) else {
        return Ok(back_to_login(&state));
    };
    let Some(keys) = state.mfa_keys().cloned() else {
        return Ok(back_to_login(&state));
    };
    let client = client_info(&req, &state);
    let settings = state.settings().auth;
    let replaces = crate::login::presented_session(&req, &state);
    let (k2, ch2, code, factor_id) = (keys.clone(), challenge.clone(), form.code, form.factor_id);
    let st = state.get_ref().clone();
    let outcome = state
        .db(move |conn| {
            let r = auth::complete_enrolment(
                conn,
                &k2,
                &ch2,
                factor_id,
                &code,
                &client,
                &settings,
                replaces.as_deref(),
            );
            if let Ok((signed, _)) = &r {
                let mail = crate::mfa::notice_mail(&st, &signed.user, crate::mfa::Notice::Added)?;
                frontdesk_core::outbox::enqueue(conn, &mail)?;
            }
            Ok::<_, CoreError>(r)
        })
        .await?;
    match outcome {
        Ok((signed, codes)) => {
            state.wake_mailer();
            let to = match safe_next(form.next.as_deref(), "") {
                n if !n.is_empty() => n,
                _ => crate::login::landing(&state, signed.user.id).await?,
            };
            let mut ctx = state.context();
            ctx.insert("codes", &codes);
            ctx.insert("first", &true);
            ctx.insert("done_link", &to);
            let body = state.render("auth/mfa_codes.html", &ctx)?;
            Ok(HttpResponse::Ok()
                .cookie(challenge_removal(&state))
                .cookie(session_cookie(&state, signed.token.expose()))
                .content_type("text/html; charset=utf-8")
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .body(body))
        }
        Err(SignInError::Refused {
            reason: frontdesk_core::login_attempts::Reason::MfaFailed,
            ..
        }) => {
            let Some(user) = pending_user(&state, challenge).await? else {
                return page(
                    &req,
                    &state,
                    StatusCode::UNAUTHORIZED,
                    form.next.as_deref(),
                    Some(EXPIRED),
                );
            };
            let issuer = state.settings().site_name.clone();
            let again = state
                .db(move |conn| totp::pending(conn, &keys, &user, factor_id, &issuer))
                .await;
            match again {
                Ok(e) => render_enrol(
                    &req,
                    &state,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    &e,
                    form.next.as_deref(),
                    Some(WRONG),
                ),
                Err(_) => page(
                    &req,
                    &state,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    form.next.as_deref(),
                    Some(WRONG),
                ),
            }
        }
        Err(SignInError::Refused { .. }) => page(
            &req,
            &state,
            StatusCode::UNAUTHORIZED,
            form.next.as_deref(),
            Some(GENERIC_FAILURE),
        ),
        Err(SignInError::Other(e)) => Err(e.into()),
        Err(_) => {
            let mut res = page(
                &req,
                &state,
                StatusCode::UNAUTHORIZED,
                form.next.as_deref(),
                Some(EXPIRED),
            )?;
            res.add_cookie(&challenge_removal(&state))
                .map_err(|e| WebError::internal(e.to_string()))?;
            Ok(res)
        }
    }
}
