//! The OpenID Connect side of a sign-in, with the `openidconnect` crate:
//! discovery from the issuer, the authorization URL (code flow, PKCE,
//! `state`, `nonce`) and the code exchange, whose ID token is checked for
//! signature, issuer, audience, expiry and nonce. Blocking HTTP (ureq, short
//! timeouts, no redirects followed): callers run it off the async executor.
//!
//! The protocol itself is compiled with the `sso` feature (on by default);
//! without it [`discover`], [`authorize`] and [`finish`] answer
//! [`OidcError::NotBuilt`], so no provider can be saved or used, and the
//! build carries no OpenID Connect, OAuth2 or HTTP client crate.

use std::time::Duration;

#[cfg(feature = "sso")]
mod client;
#[cfg(feature = "sso")]
pub(crate) use client::agent;
#[cfg(feature = "sso")]
pub use client::{authorize, discover, finish};

/// How long one request to an identity provider may take.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// Why an identity provider could not be used; the text is for admins and
/// logs, never carries a secret.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    /// The issuer is not an https URL (or a loopback http one where allowed).
    #[error("the issuer URL is invalid: {0}")]
    Issuer(String),
    /// The discovery document could not be fetched or read.
    #[error("the issuer's discovery document could not be fetched or is invalid: {0}")]
    Discovery(String),
    /// The token endpoint refused the authorization code.
    #[error("the identity provider refused the code: {0}")]
    Exchange(String),
    /// The ID token did not verify (signature, issuer, audience, nonce, expiry).
    #[error("the ID token is invalid: {0}")]
    Token(String),
    /// This build has no single sign-on (frontdesk's `sso` feature is off).
    #[error("this build has no single sign-on support: enable frontdesk's `sso` feature")]
    NotBuilt,
}

/// Without the `sso` feature: refused ([`OidcError::NotBuilt`]).
#[cfg(not(feature = "sso"))]
pub fn discover(_issuer: &str) -> Result<(), OidcError> {
    Err(OidcError::NotBuilt)
}

/// Without the `sso` feature: refused ([`OidcError::NotBuilt`]).
#[cfg(not(feature = "sso"))]
pub fn authorize(
    _cfg: &ClientConfig<'_>,
    _login_hint: Option<&str>,
) -> Result<Authorization, OidcError> {
    Err(OidcError::NotBuilt)
}

/// Without the `sso` feature: refused ([`OidcError::NotBuilt`]).
#[cfg(not(feature = "sso"))]
pub fn finish(
    _cfg: &ClientConfig<'_>,
    _code: &str,
    _pkce_verifier: &str,
    _nonce: &str,
) -> Result<Identity, OidcError> {
    Err(OidcError::NotBuilt)
}

/// An issuer URL as stored: https, or, when `loopback_http` (a host served
/// over plain http: development and tests), http on a loopback address; no
/// query or fragment. Kept as typed (a trailing slash is part of some
/// issuers' identifiers).
pub fn issuer_url(raw: &str, loopback_http: bool) -> Result<String, OidcError> {
    let raw = raw.trim();
    let url = url::Url::parse(raw).map_err(|e| OidcError::Issuer(e.to_string()))?;
    let loopback = matches!(
        url.host(),
        Some(url::Host::Domain("localhost")) | Some(url::Host::Ipv4(_)) | Some(url::Host::Ipv6(_))
    ) && match url.host() {
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        _ => true,
    };
    match url.scheme() {
        "https" => {}
        "http" if loopback && loopback_http => {}
        _ => {
            return Err(OidcError::Issuer(
                "use https (plain http only on a loopback address)".into(),
            ))
        }
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(OidcError::Issuer(
            "no query, fragment or credentials in an issuer".into(),
        ));
    }
    Ok(raw.to_owned())
}

#[cfg(feature = "sso")]
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s.chars().take(300).collect()
}

/// What a client of one provider needs.
pub struct ClientConfig<'a> {
    /// The issuer URL.
    pub issuer: &'a str,
    /// The client id registered at the provider.
    pub client_id: &'a str,
    /// The client secret, opened.
    pub client_secret: &'a str,
    /// The callback URL registered at the provider.
    pub redirect_uri: &'a str,
}

/// The start of a sign-in: where to send the browser, and what to keep for
/// the callback.
pub struct Authorization {
    /// The provider's authorization URL to send the browser to.
    pub url: String,
    /// The `state` value the callback must bring back.
    pub state: String,
    /// The PKCE verifier the code exchange needs.
    pub pkce_verifier: String,
    /// The nonce the ID token must carry.
    pub nonce: String,
}

/// Who the identity provider says signed in.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The user's id at the provider (the `sub` claim).
    pub sub: String,
    /// The email claim, if given.
    pub email: Option<String>,
    /// Whether the provider says the email is verified.
    pub email_verified: bool,
    /// The given name claim, if given.
    pub given_name: Option<String>,
    /// The family name claim, if given.
    pub family_name: Option<String>,
    /// `amr` names a second factor.
    pub mfa_done: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuers_are_https_or_loopback_http() {
        assert_eq!(
            issuer_url("https://idp.example/realm/", false).expect("ok"),
            "https://idp.example/realm/"
        );
        assert!(issuer_url("http://127.0.0.1:4000", true).is_ok());
        assert!(issuer_url("http://localhost:4000", true).is_ok());
        // A host served over https never talks plain http to a provider.
        assert!(issuer_url("http://127.0.0.1:4000", false).is_err());
        assert!(issuer_url("http://idp.example", true).is_err());
        assert!(issuer_url("http://10.0.0.1", true).is_err());
        assert!(issuer_url("ftp://idp.example", true).is_err());
        assert!(issuer_url("https://idp.example/?x=1", true).is_err());
        assert!(issuer_url("not a url", true).is_err());
    }
}
