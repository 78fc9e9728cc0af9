//! The OpenID Connect side of a sign-in, with the `openidconnect` crate:
//! discovery from the issuer, the authorization URL (code flow, PKCE,
//! `state`, `nonce`) and the code exchange, whose ID token is checked for
//! signature, issuer, audience, expiry and nonce. Blocking HTTP (ureq, short
//! timeouts, no redirects followed): callers run it off the async executor.

use std::time::Duration;

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreProviderMetadata, CoreUserInfoClaims,
};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};

/// How long one request to an identity provider may take.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// `amr` values (RFC 8176) that name more than a password.
const MFA_AMR: [&str; 10] = [
    "mfa", "otp", "hwk", "swk", "sc", "fpt", "face", "iris", "retina", "vbm",
];

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
}

pub(crate) fn agent() -> openidconnect::ureq::Agent {
    // No redirects: a discovery or token endpoint that redirects is refused
    // rather than followed somewhere else.
    openidconnect::ureq::AgentBuilder::new()
        .timeout(TIMEOUT)
        .redirects(0)
        .build()
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

/// Fetches and checks the issuer's discovery document and its keys.
pub fn discover(issuer: &str) -> Result<CoreProviderMetadata, OidcError> {
    // Checked by `issuer_url` before it was saved.
    let issuer = IssuerUrl::new(issuer.to_owned()).map_err(|e| OidcError::Issuer(e.to_string()))?;
    let meta = CoreProviderMetadata::discover(&issuer, &agent())
        .map_err(|e| OidcError::Discovery(error_chain(&e)))?;
    if meta.token_endpoint().is_none() {
        return Err(OidcError::Discovery("it names no token endpoint".into()));
    }
    if meta.jwks().keys().is_empty() {
        return Err(OidcError::Discovery("its key set is empty".into()));
    }
    Ok(meta)
}

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

fn client(
    cfg: &ClientConfig<'_>,
    meta: CoreProviderMetadata,
) -> Result<
    CoreClient<
        openidconnect::EndpointSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointMaybeSet,
        openidconnect::EndpointMaybeSet,
    >,
    OidcError,
> {
    let redirect = RedirectUrl::new(cfg.redirect_uri.to_owned())
        .map_err(|e| OidcError::Issuer(e.to_string()))?;
    Ok(CoreClient::from_provider_metadata(
        meta,
        ClientId::new(cfg.client_id.to_owned()),
        Some(ClientSecret::new(cfg.client_secret.to_owned())),
    )
    .set_redirect_uri(redirect))
}

/// Discovers the provider and builds the authorization URL with a fresh
/// `state`, PKCE verifier (S256) and `nonce`.
pub fn authorize(
    cfg: &ClientConfig<'_>,
    login_hint: Option<&str>,
) -> Result<Authorization, OidcError> {
    let meta = discover(cfg.issuer)?;
    let client = client(cfg, meta)?;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut req = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("profile".into()))
        .set_pkce_challenge(challenge);
    if let Some(hint) = login_hint {
        req = req.add_extra_param("login_hint", hint.to_owned());
    }
    let (url, state, nonce) = req.url();
    Ok(Authorization {
        url: url.to_string(),
        state: state.secret().clone(),
        pkce_verifier: verifier.secret().clone(),
        nonce: nonce.secret().clone(),
    })
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

/// Exchanges `code` (with the PKCE verifier) and checks the ID token
/// (signature against the provider's keys, issuer, audience, expiry, nonce).
/// The email and names come from the ID token, or from userinfo when the
/// token has no email.
pub fn finish(
    cfg: &ClientConfig<'_>,
    code: &str,
    pkce_verifier: &str,
    nonce: &str,
) -> Result<Identity, OidcError> {
    let meta = discover(cfg.issuer)?;
    let client = client(cfg, meta)?;
    let http = agent();
    let response = client
        .exchange_code(AuthorizationCode::new(code.to_owned()))
        .map_err(|e| OidcError::Exchange(e.to_string()))?
        .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_owned()))
        .request(&http)
        .map_err(|e| OidcError::Exchange(error_chain(&e)))?;
    let id_token = response
        .id_token()
        .ok_or_else(|| OidcError::Token("the answer has no ID token".into()))?;
    let verifier = client.id_token_verifier();
    let claims = id_token
        .claims(&verifier, &Nonce::new(nonce.to_owned()))
        .map_err(|e| OidcError::Token(error_chain(&e)))?;
    let sub = claims.subject().as_str().to_owned();
    let mfa_done = claims.auth_method_refs().is_some_and(|amr| {
        amr.iter()
            .any(|m| MFA_AMR.contains(&m.as_str().to_ascii_lowercase().as_str()))
    });
    let name = |c: Option<&openidconnect::LocalizedClaim<openidconnect::EndUserGivenName>>| {
        c.and_then(|c| c.get(None)).map(|n| n.as_str().to_owned())
    };
    let mut identity = Identity {
        sub: sub.clone(),
        email: claims.email().map(|e| e.as_str().to_owned()),
        email_verified: claims.email_verified().unwrap_or(false),
        given_name: name(claims.given_name()),
        family_name: claims
            .family_name()
            .and_then(|c| c.get(None))
            .map(|n| n.as_str().to_owned()),
        mfa_done,
    };
    if identity.email.is_none() {
        let info: Option<CoreUserInfoClaims> = client
            .user_info(
                response.access_token().clone(),
                Some(claims.subject().clone()),
            )
            .ok()
            .map(|r| r.request(&http))
            .transpose()
            .map_err(|e| OidcError::Token(format!("userinfo: {}", error_chain(&e))))?;
        if let Some(info) = info {
            identity.email = info.email().map(|e| e.as_str().to_owned());
            identity.email_verified = info.email_verified().unwrap_or(false);
            if identity.given_name.is_none() {
                identity.given_name = name(info.given_name());
            }
            if identity.family_name.is_none() {
                identity.family_name = info
                    .family_name()
                    .and_then(|c| c.get(None))
                    .map(|n| n.as_str().to_owned());
            }
        }
    }
    Ok(identity)
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
