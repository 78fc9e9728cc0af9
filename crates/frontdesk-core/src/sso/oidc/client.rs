//! The protocol side, with the `openidconnect` crate (the `sso` feature).

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreProviderMetadata, CoreUserInfoClaims,
};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};

use super::{error_chain, Authorization, ClientConfig, Identity, OidcError, TIMEOUT};

/// `amr` values (RFC 8176) that name more than a password.
const MFA_AMR: [&str; 10] = [
    "mfa", "otp", "hwk", "swk", "sc", "fpt", "face", "iris", "retina", "vbm",
];

pub(crate) fn agent() -> openidconnect::ureq::Agent {
    // No redirects: a discovery or token endpoint that redirects is refused
    // rather than followed somewhere else.
    openidconnect::ureq::AgentBuilder::new()
        .timeout(TIMEOUT)
        .redirects(0)
        .build()
}

/// Fetches and checks the issuer's discovery document and its keys.
pub fn discover(issuer: &str) -> Result<(), OidcError> {
    metadata(issuer).map(|_| ())
}

fn metadata(issuer: &str) -> Result<CoreProviderMetadata, OidcError> {
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
    let meta = metadata(cfg.issuer)?;
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
    let meta = metadata(cfg.issuer)?;
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
