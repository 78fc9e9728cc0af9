//! Single sign-on pages: home-realm discovery (`POST {prefix}/sso/start`
//! with an email whose domain an organization's identity provider owns sends
//! the browser there) and the one callback of every provider
//! (`GET {prefix}/sso/callback`). The `state` is bound to the browser by a
//! short-lived cookie; `next` is kept server-side with the state and checked
//! by the same rules as the login form's.

use actix_web::cookie::{time::Duration as CookieDuration, Cookie, SameSite};
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use frontdesk_core::auth::SignInError;
use frontdesk_core::login_attempts::Reason;
use frontdesk_core::sso::{self, oidc, sign_in};
use serde::Deserialize;

use crate::csrf;
use crate::current_user::client_info;
use crate::error::WebError;
use crate::login::{landing, presented_session, render_login, safe_next, session_cookie};
use crate::state::FrontdeskState;

const STATE_COOKIE: &str = "frontdesk_sso_state";

/// The one message for a sign-in through a provider that did not work.
pub const SSO_FAILED: &str =
    "Single sign-on did not work. Try again, or ask your organization's administrator.";

/// For an email whose domain no identity provider owns.
pub const NO_PROVIDER: &str = "Single sign-on is not set up for that email address's domain.";

#[derive(Deserialize)]
pub struct StartForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    csrf_token: String,
    next: Option<String>,
}

#[derive(Deserialize)]
pub struct CallbackQuery {
    pub(crate) code: Option<String>,
    pub(crate) state: Option<String>,
    pub(crate) error: Option<String>,
}

pub(crate) fn state_cookie(state: &FrontdeskState, value: &str) -> Cookie<'static> {
    Cookie::build(STATE_COOKIE, value.to_owned())
        .path(format!("{}/sso", state.prefix()))
        .http_only(true)
        .secure(state.secure_cookies())
        // Lax: the provider's redirect back is a top-level GET.
        .same_site(SameSite::Lax)
        .max_age(CookieDuration::seconds(sign_in::STATE_TTL_MINUTES * 60))
        .finish()
}

pub(crate) fn state_removal(state: &FrontdeskState) -> Cookie<'static> {
    let mut c = state_cookie(state, "");
    c.make_removal();
    c
}

/// `POST {prefix}/sso/start`: the email's domain names the provider.
pub async fn start(
    req: HttpRequest,
    state: web::Data<FrontdeskState>,
    form: crate::forms::Form<StartForm>,
) -> Result<HttpResponse, WebError> {
    csrf::verify(&req, &state, &form.csrf_token)?;
    let form = form.into_inner();
    let email = form.email.trim().to_owned();
    let lookup = email.clone();
    let idp = state.db(move |conn| sso::for_email(conn, &lookup)).await?;
    let Some(idp) = idp else {
        return render_login(
            &req,
            &state,
            StatusCode::BAD_REQUEST,
            &email,
            (form.next.as_deref(), None),
            Some(NO_PROVIDER),
        )
        .await;
    };
    let next = Some(safe_next(form.next.as_deref(), "")).filter(|n| !n.is_empty());
    match begin(&state, &idp, Some(&email), next).await {
        Ok(res) => Ok(res),
        Err(e) => {
            tracing::warn!(
                "frontdesk: single sign-on through {} could not start: {e}",
                idp.provider.provider_key
            );
            render_login(
                &req,
                &state,
                StatusCode::BAD_GATEWAY,
                &email,
                (form.next.as_deref(), None),
                Some(SSO_FAILED),
            )
            .await
        }
    }
}

/// Sends the browser to the provider, with the state kept for the callback.
async fn begin(
    state: &FrontdeskState,
    idp: &sso::Configured,
    login_hint: Option<&str>,
    next: Option<String>,
) -> Result<HttpResponse, String> {
    let keys = state
        .sso_keys()
        .ok_or("no secret_key is configured")?
        .clone();
    let secret = idp
        .provider
        .client_secret(&keys)
        .map_err(|e| e.to_string())?;
    let issuer = idp.provider.issuer.clone();
    let client_id = idp.provider.client_id.clone();
    let redirect = state.sso_redirect_uri();
    let hint = login_hint.map(str::to_owned);
    let auth = crate::request_id::block(move || {
        oidc::authorize(
            &oidc::ClientConfig {
                issuer: &issuer,
                client_id: &client_id,
                client_secret: &secret,
                redirect_uri: &redirect,
            },
            hint.as_deref(),
        )
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| e.to_string())?;
    let key = idp.provider.provider_key.clone();
    let url = auth.url.clone();
    let cookie = state_cookie(state, &auth.state);
    state
        .db(move |conn| sign_in::store_state(conn, &key, &auth, next.as_deref(), None))
        .await
        .map_err(|e| e.to_string())?;
    Ok(to_provider(&url, cookie))
}

/// The answer that sends the browser on to a provider after a sign-in
/// form's POST. Not a redirect: the sign-in pages' Content-Security-Policy
/// says `form-action 'self'`, and browsers (Chromium) refuse a form
/// submission that redirects to another origin — the sign-in would stop on
/// the login page. A page of our own that moves on at once (the `Refresh`
/// header, its meta twin, and a link for a browser that does neither) is not
/// a form submission, so the policy stays strict.
pub(crate) fn to_provider(url: &str, cookie: actix_web::cookie::Cookie<'static>) -> HttpResponse {
    let href = url
        .replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    HttpResponse::Ok()
        .cookie(cookie)
        .insert_header((
            header::HeaderName::from_static("refresh"),
            format!("0;url={url}"),
        ))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .content_type("text/html; charset=utf-8")
        .body(format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta http-equiv=\"refresh\" content=\"0;url={href}\">\
             <title>Signing in…</title></head><body><main>\
             <p>Taking you to your sign-in provider… <a href=\"{href}\">Continue</a></p>\
             </main></body></html>"
        ))
}

async fn refused(
    req: &HttpRequest,
    state: &FrontdeskState,
    reason: Option<(Reason, Option<i64>, String)>,
) -> Result<HttpResponse, WebError> {
    refused_with(req, state, reason, SSO_FAILED).await
}

/// Records `reason` (when the sign-in did not already) and shows the login
/// page with `message`.
pub(crate) async fn refused_with(
    req: &HttpRequest,
    state: &FrontdeskState,
    reason: Option<(Reason, Option<i64>, String)>,
    message: &str,
) -> Result<HttpResponse, WebError> {
    if let Some((reason, user_id, email)) = reason {
        let client = client_info(req, state);
        state
            .db(
                move |conn| match sign_in::refuse(conn, user_id, &email, &client, reason) {
                    Err(SignInError::Other(e)) => Err(e),
                    _ => Ok(()),
                },
            )
            .await?;
    }
    let mut res = render_login(
        req,
        state,
        StatusCode::UNAUTHORIZED,
        "",
        (None, None),
        Some(message),
    )
    .await?;
    res.add_cookie(&state_removal(state))
        .map_err(WebError::internal)?;
    Ok(res)
}

/// `GET {prefix}/sso/callback`: the provider's answer.
pub async fn callback(
    req: HttpRequest,
    state: web::Data<FrontdeskState>,
    query: web::Query<CallbackQuery>,
) -> Result<HttpResponse, WebError> {
    let query = query.into_inner();
    let presented = query.state.clone().unwrap_or_default();
    let bound = req.cookie(STATE_COOKIE).map(|c| c.value().to_owned());
    // The state must be the one this browser was sent off with.
    let same_browser = !presented.is_empty()
        && bound.as_deref().is_some_and(|b| {
            frontdesk_core::tokens::hash_token(b) == frontdesk_core::tokens::hash_token(&presented)
        });
    if !same_browser {
        return refused(
            &req,
            &state,
            Some((Reason::SsoStateMismatch, None, String::new())),
        )
        .await;
    }
    let taken = presented.clone();
    let pending = state
        .db(move |conn| sign_in::take_state(conn, &taken))
        .await?;
    let Some(pending) = pending else {
        // Used already (a replay) or expired.
        return refused(
            &req,
            &state,
            Some((Reason::SsoStateMismatch, None, String::new())),
        )
        .await;
    };
    if pending.provider.starts_with(sso::social::KEY_PREFIX) {
        return crate::sso_social::callback(req, state, query, pending).await;
    }
    let key = pending.provider.clone();
    let idp = state.db(move |conn| sso::by_key(conn, &key)).await?;
    let Some(idp) = idp else {
        return refused(&req, &state, Some((Reason::SsoDenied, None, String::new()))).await;
    };
    if query.error.is_some() {
        return refused(&req, &state, Some((Reason::SsoDenied, None, String::new()))).await;
    }
    let Some(code) = query.code.filter(|c| !c.is_empty() && c.len() <= 2000) else {
        return refused(
            &req,
            &state,
            Some((Reason::SsoTokenInvalid, None, String::new())),
        )
        .await;
    };
    let Some(keys) = state.sso_keys().cloned() else {
        return refused(&req, &state, Some((Reason::SsoDenied, None, String::new()))).await;
    };
    let secret = idp.provider.client_secret(&keys)?;
    let issuer = idp.provider.issuer.clone();
    let client_id = idp.provider.client_id.clone();
    let redirect = state.sso_redirect_uri();
    let (verifier, nonce) = (pending.pkce_verifier.clone(), pending.nonce.clone());
    let identity = crate::request_id::block(move || {
        oidc::finish(
            &oidc::ClientConfig {
                issuer: &issuer,
                client_id: &client_id,
                client_secret: &secret,
                redirect_uri: &redirect,
            },
            &code,
            &verifier,
            &nonce,
        )
    })
    .await
    .map_err(WebError::internal)?;
    let identity = match identity {
        Ok(i) => i,
        Err(e) => {
            tracing::warn!(
                "frontdesk: single sign-on through {} refused: {e}",
                idp.provider.provider_key
            );
            let reason = match e {
                oidc::OidcError::Exchange(_) | oidc::OidcError::Token(_) => Reason::SsoTokenInvalid,
                _ => Reason::SsoDenied,
            };
            return refused(&req, &state, Some((reason, None, String::new()))).await;
        }
    };
    let client = client_info(&req, &state);
    let settings = state.settings().auth;
    let replaces = presented_session(&req, &state);
    let outcome = state
        .db(move |conn| {
            match sign_in::complete(
                conn,
                &idp,
                &identity,
                &client,
                &settings,
                replaces.as_deref(),
            ) {
                Err(SignInError::Other(e)) => Err(e),
                other => Ok(other),
            }
        })
        .await?;
    let next = safe_next(pending.next.as_deref(), "");
    answer(&req, &state, outcome, next, SSO_FAILED).await
}

/// The answer to a sign-in a provider vouched for: the session and `next`
/// (or the landing page), the second step, or the login page with
/// `failure` (the refusal was recorded already).
pub(crate) async fn answer(
    req: &HttpRequest,
    state: &FrontdeskState,
    outcome: Result<frontdesk_core::auth::SignedIn, SignInError>,
    next: String,
    failure: &str,
) -> Result<HttpResponse, WebError> {
    match outcome {
        Ok(signed) => {
            let to = if next.is_empty() {
                landing(state, signed.user.id).await?
            } else {
                next
            };
            Ok(HttpResponse::SeeOther()
                .cookie(session_cookie(state, signed.token.expose()))
                .cookie(state_removal(state))
                .insert_header((header::LOCATION, to))
                .finish())
        }
        Err(e @ SignInError::SecondFactor { .. })
        | Err(e @ SignInError::EnrolmentRequired { .. }) => {
            let (page, challenge) = match e {
                SignInError::EnrolmentRequired { challenge, .. } => ("mfa/enrol", challenge),
                SignInError::SecondFactor { challenge, .. } => ("mfa", challenge),
                _ => return refused_with(req, state, None, failure).await,
            };
            let mut to = format!("{}/{page}", state.prefix());
            if !next.is_empty() {
                to.push_str("?next=");
                to.extend(url::form_urlencoded::byte_serialize(next.as_bytes()));
            }
            Ok(HttpResponse::SeeOther()
                .cookie(crate::mfa::challenge_cookie(state, &challenge))
                .cookie(state_removal(state))
                .insert_header((header::LOCATION, to))
                .finish())
        }
        // Recorded by the sign-in already.
        Err(_) => refused_with(req, state, None, failure).await,
    }
}
