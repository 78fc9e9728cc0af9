//! The protocol side, with the `oauth2` crate and ureq (the `sso` feature).

use std::io::Read;

use oauth2::basic::BasicClient;
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, Scope, TokenResponse, TokenUrl,
};
use serde_json::Value;

use super::{Endpoints, Profile, Provider};
use crate::sso::oidc::{self, Authorization, Identity, OidcError};

/// The most a userinfo answer may weigh.
const MAX_USERINFO_BYTES: u64 = 64 * 1024;

fn oauth2_error(e: impl std::fmt::Display) -> OidcError {
    OidcError::Issuer(e.to_string())
}

/// Builds the authorization URL with a fresh `state` and PKCE verifier
/// (S256), and for OpenID Connect a `nonce`. Blocking (OpenID Connect
/// fetches the discovery document).
pub fn authorize(p: &Provider, redirect_uri: &str) -> Result<Authorization, OidcError> {
    match &p.endpoints {
        Endpoints::Oidc { issuer } => oidc::authorize(
            &oidc::ClientConfig {
                issuer,
                client_id: &p.client_id,
                client_secret: &p.client_secret,
                redirect_uri,
            },
            None,
        ),
        Endpoints::OAuth2 {
            authorize_url,
            token_url,
            ..
        } => {
            let client = BasicClient::new(ClientId::new(p.client_id.clone()))
                .set_auth_uri(AuthUrl::new(authorize_url.clone()).map_err(oauth2_error)?)
                .set_token_uri(TokenUrl::new(token_url.clone()).map_err(oauth2_error)?)
                .set_redirect_uri(RedirectUrl::new(redirect_uri.to_owned()).map_err(oauth2_error)?);
            let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
            let (url, state) = client
                .authorize_url(CsrfToken::new_random)
                .add_scopes(p.scopes.iter().cloned().map(Scope::new))
                .set_pkce_challenge(challenge)
                .url();
            Ok(Authorization {
                url: url.to_string(),
                state: state.secret().clone(),
                pkce_verifier: verifier.secret().clone(),
                nonce: String::new(),
            })
        }
    }
}

/// Exchanges `code` (with the PKCE verifier) and reads who signed in: the
/// checked ID token for OpenID Connect, the userinfo endpoint for plain
/// OAuth2. Blocking.
pub fn finish(
    p: &Provider,
    redirect_uri: &str,
    code: &str,
    pkce_verifier: &str,
    nonce: &str,
) -> Result<Identity, OidcError> {
    match &p.endpoints {
        Endpoints::Oidc { issuer } => oidc::finish(
            &oidc::ClientConfig {
                issuer,
                client_id: &p.client_id,
                client_secret: &p.client_secret,
                redirect_uri,
            },
            code,
            pkce_verifier,
            nonce,
        ),
        Endpoints::OAuth2 {
            authorize_url,
            token_url,
            userinfo_url,
            profile,
        } => {
            let client = BasicClient::new(ClientId::new(p.client_id.clone()))
                .set_client_secret(ClientSecret::new(p.client_secret.clone()))
                .set_auth_uri(AuthUrl::new(authorize_url.clone()).map_err(oauth2_error)?)
                .set_token_uri(TokenUrl::new(token_url.clone()).map_err(oauth2_error)?)
                .set_redirect_uri(RedirectUrl::new(redirect_uri.to_owned()).map_err(oauth2_error)?)
                // GitHub reads the client's credentials from the body.
                .set_auth_type(AuthType::RequestBody);
            let http = oidc::agent();
            let token = client
                .exchange_code(AuthorizationCode::new(code.to_owned()))
                .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_owned()))
                .request(&http)
                .map_err(|e| OidcError::Exchange(oidc::error_chain(&e)))?;
            let access = token.access_token().secret();
            match profile {
                Profile::GitHub => github_identity(&http, userinfo_url, access),
                Profile::Standard => standard_identity(&http, userinfo_url, access),
            }
        }
    }
}

fn get_json(http: &ureq::Agent, url: &str, access_token: &str) -> Result<Value, OidcError> {
    let res = http
        .get(url)
        .set("Authorization", &format!("Bearer {access_token}"))
        .set("Accept", "application/json")
        // GitHub's API refuses requests without one.
        .set("User-Agent", "frontdesk")
        .call()
        .map_err(|e| OidcError::Token(format!("userinfo: {}", oidc::error_chain(&e))))?;
    let mut body = Vec::new();
    res.into_reader()
        .take(MAX_USERINFO_BYTES)
        .read_to_end(&mut body)
        .map_err(|e| OidcError::Token(format!("userinfo: {e}")))?;
    serde_json::from_slice(&body)
        .map_err(|e| OidcError::Token(format!("userinfo is not JSON: {e}")))
}

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// GitHub's `/user` and `/user/emails`: the id is the subject; the email is
/// the primary one of the emails list with its verified flag, or, when the
/// list cannot be read (the `user:email` scope refused), the public email
/// of the profile, unverified.
fn github_identity(
    http: &ureq::Agent,
    userinfo_url: &str,
    access_token: &str,
) -> Result<Identity, OidcError> {
    let user = get_json(http, userinfo_url, access_token)?;
    let sub = match user.get("id") {
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => return Err(OidcError::Token("userinfo names no id".into())),
    };
    let emails_url = format!("{}/emails", userinfo_url.trim_end_matches('/'));
    let (email, email_verified) = match get_json(http, &emails_url, access_token) {
        Ok(Value::Array(list)) => list
            .iter()
            .find(|e| e.get("primary").and_then(Value::as_bool) == Some(true))
            .map(|e| {
                (
                    text(e, "email"),
                    e.get("verified").and_then(Value::as_bool) == Some(true),
                )
            })
            .unwrap_or((None, false)),
        _ => (text(&user, "email"), false),
    };
    let name = text(&user, "name").or_else(|| text(&user, "login"));
    let (given_name, family_name) = match name.as_deref().and_then(|n| n.split_once(' ')) {
        Some((g, f)) => (Some(g.to_owned()), Some(f.trim().to_owned())),
        None => (name, None),
    };
    Ok(Identity {
        sub,
        email,
        email_verified,
        given_name,
        family_name,
        mfa_done: false,
    })
}

/// A userinfo answer with OpenID claims.
fn standard_identity(
    http: &ureq::Agent,
    userinfo_url: &str,
    access_token: &str,
) -> Result<Identity, OidcError> {
    let info = get_json(http, userinfo_url, access_token)?;
    let sub = match info.get("sub") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => return Err(OidcError::Token("userinfo names no sub".into())),
    };
    let email_verified = match info.get("email_verified") {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s == "true",
        _ => false,
    };
    Ok(Identity {
        sub,
        email: text(&info, "email"),
        email_verified,
        given_name: text(&info, "given_name"),
        family_name: text(&info, "family_name"),
        mfa_done: false,
    })
}
