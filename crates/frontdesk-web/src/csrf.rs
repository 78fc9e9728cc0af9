//! CSRF: every state-changing form carries a token bound either to the session
//! cookie (HMAC keyed by the session token, so every instance can check it) or,
//! before sign-in, to a pre-session cookie (HMAC under the site key). Requests
//! a browser marks as cross-site (Sec-Fetch-Site, else Origin) are refused first.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::HttpRequest;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::WebError;
use crate::state::FrontdeskState;

type HmacSha256 = Hmac<Sha256>;

/// The form field that carries the token in a form post to frontdesk.
pub const FIELD: &str = "csrf_token";
/// The header that carries the token in a JSON call to frontdesk (a host's
/// script calling `/auth/api/logout`, say): the value of [`session_token`]
/// for the signed-in session.
pub const HEADER: &str = "x-csrf-token";

fn mac(key: &[u8], message: &[u8]) -> Option<HmacSha256> {
    let mut m = HmacSha256::new_from_slice(key).ok()?;
    m.update(message);
    Some(m)
}

fn sign(key: &[u8], message: &[u8]) -> String {
    mac(key, message)
        .map(|m| URL_SAFE_NO_PAD.encode(m.finalize().into_bytes()))
        .unwrap_or_default()
}

fn matches(key: &[u8], message: &[u8], presented: &str) -> bool {
    let Ok(bytes) = URL_SAFE_NO_PAD.decode(presented.trim()) else {
        return false;
    };
    mac(key, message).is_some_and(|m| m.verify_slice(&bytes).is_ok())
}

/// The token for forms shown to a signed-in session.
pub fn session_token(session_token: &str) -> String {
    sign(session_token.as_bytes(), b"frontdesk csrf v1")
}

fn presession_token(state: &FrontdeskState, nonce: &str) -> String {
    sign(state.csrf_key(), format!("pre-session {nonce}").as_bytes())
}

/// What a flash message's signature covers: the message under a purpose of
/// its own, so no other signature under the site key stands for it.
fn flash_payload(message: &str) -> Vec<u8> {
    format!("flash v1 {message}").into_bytes()
}

/// The signature of an admin page's flash message, under the site key.
pub(crate) fn sign_flash(state: &FrontdeskState, message: &str) -> String {
    sign(state.csrf_key(), &flash_payload(message))
}

/// Whether `mac` is [`sign_flash`]'s signature of `message`.
pub(crate) fn flash_signed(state: &FrontdeskState, message: &str, mac: &str) -> bool {
    matches(state.csrf_key(), &flash_payload(message), mac)
}

/// The token for a form shown before sign-in, and the cookie to set when the
/// browser has none yet.
pub(crate) fn form_token(
    req: &HttpRequest,
    state: &FrontdeskState,
) -> (String, Option<Cookie<'static>>) {
    if let Some(c) = req
        .cookie(state.csrf_cookie_name())
        .filter(|c| c.value().len() >= 32)
    {
        return (presession_token(state, c.value()), None);
    }
    let nonce = frontdesk_core::tokens::SecretToken::generate();
    let cookie = Cookie::build(
        state.csrf_cookie_name().to_owned(),
        nonce.expose().to_owned(),
    )
    .path("/")
    .http_only(true)
    .secure(state.secure_cookies())
    .same_site(SameSite::Lax)
    .finish();
    (presession_token(state, nonce.expose()), Some(cookie))
}

/// Refuses requests a browser says come from another site.
pub(crate) fn check_origin(req: &HttpRequest, state: &FrontdeskState) -> Result<(), WebError> {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = header("sec-fetch-site") {
        return match site.trim().to_ascii_lowercase().as_str() {
            "same-origin" | "none" => Ok(()),
            _ => Err(cross_site()),
        };
    }
    if let Some(origin) = header("origin") {
        if origin.trim().trim_end_matches('/') != state.origin() {
            return Err(cross_site());
        }
    }
    Ok(())
}

fn cross_site() -> WebError {
    WebError::forbidden("Cross-site request refused.")
}

/// Checks origin and token for an unsafe request. The token may be bound to
/// the session cookie the request carries or to its pre-session cookie.
pub fn verify(req: &HttpRequest, state: &FrontdeskState, presented: &str) -> Result<(), WebError> {
    check_origin(req, state)?;
    let presented = if presented.is_empty() {
        req.headers()
            .get(HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    } else {
        presented
    };
    if presented.is_empty() {
        return Err(WebError::forbidden(
            "The form has expired; reload the page and try again.",
        ));
    }
    if let Some(session) = req.cookie(state.session_cookie_name()) {
        if matches(session.value().as_bytes(), b"frontdesk csrf v1", presented) {
            return Ok(());
        }
    }
    if let Some(c) = req
        .cookie(state.csrf_cookie_name())
        .filter(|c| c.value().len() >= 32)
    {
        if matches(
            state.csrf_key(),
            format!("pre-session {}", c.value()).as_bytes(),
            presented,
        ) {
            return Ok(());
        }
    }
    Err(WebError::forbidden(
        "The form has expired; reload the page and try again.",
    ))
}
