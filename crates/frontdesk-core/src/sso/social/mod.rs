//! Host-wide social providers ("Continue with GitHub"): declared by the host
//! in the builder, offered on every login page, and linked to accounts only
//! by their owners.
//!
//! Two kinds: plain OAuth2 with a userinfo endpoint (GitHub's `/user` and
//! `/user/emails`, or standard OpenID claims), and OpenID Connect through
//! discovery ([`super::oidc`]). Both use the authorization code flow with
//! PKCE (S256) and `state`; the sign-in state is kept like single sign-on's
//! ([`super::sign_in::store_state`], provider `social:<key>`).
//!
//! The linking rules (see [`complete`] and [`link_to_user`]): an identity
//! already linked signs its user in; an account is never linked by the
//! provider's email alone, verified or not (its owner signs in and links
//! from their own page); a new account is made only when the host's
//! sign-up policy takes that address and the provider verified it.

#[cfg(feature = "sso")]
mod client;
#[cfg(feature = "sso")]
pub use client::{authorize, finish};

use super::oidc::{self, Identity};
#[cfg(not(feature = "sso"))]
use super::oidc::{Authorization, OidcError};
use super::sign_in::{find_link, link, refuse, sign_in_user};
use crate::auth::{AuthSettings, SignInError, SignedIn};
use crate::db::DbConnection;
use crate::error::{CoreError, CoreResult};
use crate::login_attempts::Reason;
use crate::schema::linked_identities;
use crate::sessions::ClientInfo;
use crate::signup::SignupPolicy;
use crate::time::now;
use crate::users::{self as user_store, NewUser, User};
use crate::{validate, Actor};
use diesel::prelude::*;

/// The prefix of social providers' keys in `linked_identities` and in the
/// sign-in state (organizations' providers use `org:`).
pub const KEY_PREFIX: &str = "social:";

/// How a plain OAuth2 provider's userinfo answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// GitHub: `/user` (`id`, `login`, `name`, a public `email`) and
    /// `<userinfo>/emails` (`email`, `primary`, `verified`).
    GitHub,
    /// OpenID claims: `sub`, `email`, `email_verified`, `given_name`,
    /// `family_name`.
    Standard,
}

/// Where a provider is.
#[derive(Debug, Clone)]
pub enum Endpoints {
    /// OpenID Connect: everything from the issuer's discovery document.
    Oidc {
        /// The issuer URL.
        issuer: String,
    },
    /// Plain OAuth2: the endpoints given one by one, and a user-info answer
    /// read as `profile` says.
    OAuth2 {
        /// Where the browser is sent to sign in.
        authorize_url: String,
        /// Where the code is exchanged for a token.
        token_url: String,
        /// Where the user's profile is read with the token.
        userinfo_url: String,
        /// How the user-info answer is read.
        profile: Profile,
    },
}

/// A social provider the host declares: `.social(Provider::github(id, secret))`.
#[derive(Clone)]
pub struct Provider {
    key: String,
    name: String,
    client_id: String,
    client_secret: String,
    endpoints: Endpoints,
    scopes: Vec<String>,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider")
            .field("key", &self.key)
            .field("name", &self.name)
            .field("client_id", &self.client_id)
            .field("endpoints", &self.endpoints)
            .finish_non_exhaustive()
    }
}

impl Provider {
    /// GitHub (an OAuth App or a GitHub App's OAuth credentials), key
    /// `github`. Point it elsewhere (GitHub Enterprise, a test server) with
    /// [`Provider::endpoints`].
    pub fn github(client_id: impl Into<String>, client_secret: impl Into<String>) -> Self {
        Provider {
            key: "github".into(),
            name: "GitHub".into(),
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            endpoints: Endpoints::OAuth2 {
                authorize_url: "https://github.com/login/oauth/authorize".into(),
                token_url: "https://github.com/login/oauth/access_token".into(),
                userinfo_url: "https://api.github.com/user".into(),
                profile: Profile::GitHub,
            },
            scopes: vec!["read:user".into(), "user:email".into()],
        }
    }

    /// A plain OAuth2 provider whose userinfo endpoint answers OpenID claims
    /// (`sub`, `email`, `email_verified`, `given_name`, `family_name`).
    pub fn oauth2(
        key: impl Into<String>,
        name: impl Into<String>,
        authorize_url: impl Into<String>,
        token_url: impl Into<String>,
        userinfo_url: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
    ) -> Self {
        Provider {
            key: key.into(),
            name: name.into(),
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            endpoints: Endpoints::OAuth2 {
                authorize_url: authorize_url.into(),
                token_url: token_url.into(),
                userinfo_url: userinfo_url.into(),
                profile: Profile::Standard,
            },
            scopes: vec!["openid".into(), "email".into(), "profile".into()],
        }
    }

    /// An OpenID Connect provider (Google, GitLab, Microsoft, Keycloak…),
    /// found through `issuer`'s discovery document; its ID token is checked
    /// like an organization's provider's.
    pub fn oidc(
        key: impl Into<String>,
        name: impl Into<String>,
        issuer: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
    ) -> Self {
        Provider {
            key: key.into(),
            name: name.into(),
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            endpoints: Endpoints::Oidc {
                issuer: issuer.into(),
            },
            scopes: Vec::new(),
        }
    }

    /// Other endpoints for a plain OAuth2 provider (the userinfo answer keeps
    /// its shape: GitHub's reads `<userinfo_url>/emails` too). No effect on
    /// an OpenID Connect provider.
    pub fn endpoints(
        mut self,
        authorize_url: impl Into<String>,
        token_url: impl Into<String>,
        userinfo_url: impl Into<String>,
    ) -> Self {
        if let Endpoints::OAuth2 { profile, .. } = self.endpoints {
            self.endpoints = Endpoints::OAuth2 {
                authorize_url: authorize_url.into(),
                token_url: token_url.into(),
                userinfo_url: userinfo_url.into(),
                profile,
            };
        }
        self
    }

    /// Another key (`[a-z0-9_-]`, 1 to 32), e.g. for a second GitHub.
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.key = key.into();
        self
    }

    /// Another name on the button ("Continue with {name}").
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Other scopes for a plain OAuth2 provider (OpenID Connect asks for
    /// `openid email profile`).
    pub fn scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// The key the host chose (`github`).
    pub fn key_str(&self) -> &str {
        &self.key
    }

    /// What the button calls it (`GitHub`).
    pub fn display_name(&self) -> &str {
        &self.name
    }

    /// The key in `linked_identities` and in the sign-in state (`social:github`).
    pub fn stored_key(&self) -> String {
        format!("{KEY_PREFIX}{}", self.key)
    }

    /// Where the provider is, as configured.
    pub fn endpoints_config(&self) -> &Endpoints {
        &self.endpoints
    }
}

fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 32
        && key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-'))
}

/// Checks the builder's declarations: keys well formed and unique, names 1
/// to 60 characters, client id and secret given, endpoints https (or, when
/// `loopback_http`, a host served over http, plain http on a loopback
/// address).
/// Without the `sso` feature any declaration is refused (the provider could
/// not be used).
pub fn check_declarations(declared: &[Provider], loopback_http: bool) -> CoreResult<()> {
    #[cfg(not(feature = "sso"))]
    if let Some(p) = declared.first() {
        return Err(CoreError::Config(format!(
            "social provider {:?}: {}",
            p.key,
            OidcError::NotBuilt
        )));
    }
    let mut seen = std::collections::BTreeSet::new();
    for p in declared {
        let bad = |what: String| CoreError::Config(format!("social provider {:?}: {what}", p.key));
        if !valid_key(&p.key) {
            return Err(bad(
                "use 1 to 32 of a-z, 0-9, '_' and '-' for its key".into()
            ));
        }
        if !seen.insert(p.key.as_str()) {
            return Err(bad("declared twice".into()));
        }
        let n = p.name.trim().chars().count();
        if n == 0 || n > 60 || p.name.chars().any(char::is_control) {
            return Err(bad(
                "its name must be 1 to 60 characters, without control characters".into(),
            ));
        }
        if p.client_id.trim().is_empty() || p.client_secret.is_empty() {
            return Err(bad("client id and client secret are required".into()));
        }
        let urls: Vec<(&str, &str)> = match &p.endpoints {
            Endpoints::Oidc { issuer } => vec![("issuer", issuer)],
            Endpoints::OAuth2 {
                authorize_url,
                token_url,
                userinfo_url,
                ..
            } => vec![
                ("authorize_url", authorize_url),
                ("token_url", token_url),
                ("userinfo_url", userinfo_url),
            ],
        };
        for (what, url) in urls {
            oidc::issuer_url(url, loopback_http).map_err(|e| bad(format!("{what}: {e}")))?;
        }
    }
    Ok(())
}

/// Without the `sso` feature: refused ([`OidcError::NotBuilt`]).
#[cfg(not(feature = "sso"))]
pub fn authorize(_p: &Provider, _redirect_uri: &str) -> Result<Authorization, OidcError> {
    Err(OidcError::NotBuilt)
}

/// Without the `sso` feature: refused ([`OidcError::NotBuilt`]).
#[cfg(not(feature = "sso"))]
pub fn finish(
    _p: &Provider,
    _redirect_uri: &str,
    _code: &str,
    _pkce_verifier: &str,
    _nonce: &str,
) -> Result<Identity, OidcError> {
    Err(OidcError::NotBuilt)
}

/// Who a social identity is.
enum Resolved {
    User(User),
    /// An account has this email but not this identity: its owner must sign
    /// in and link it from their account page.
    LinkRequired(User),
    NoAccount,
}

/// Who the identity is: the user it is linked to; else, with a verified
/// email no account has, a new account when `signup` takes the address.
/// Never the account that merely has the same email.
fn resolve(
    conn: &mut DbConnection,
    stored_key: &str,
    identity: &Identity,
    signup: &SignupPolicy,
) -> CoreResult<Resolved> {
    if let Some(linked) = find_link(conn, stored_key, &identity.sub)? {
        diesel::update(linked_identities::table.find(linked.id))
            .set((
                linked_identities::last_used_at.eq(Some(now())),
                linked_identities::email.eq(&identity.email),
            ))
            .execute(conn)?;
        return Ok(Resolved::User(user_store::get(conn, linked.user_id)?));
    }
    let Some(email) = identity
        .email
        .as_deref()
        .and_then(|e| validate::normalize_email(e).ok())
    else {
        return Ok(Resolved::NoAccount);
    };
    // An unverified email claim is nobody's: not even worth telling apart.
    if !identity.email_verified {
        return Ok(Resolved::NoAccount);
    }
    if let Some(existing) = user_store::find_by_email(conn, &email)? {
        return Ok(Resolved::LinkRequired(existing));
    }
    if !signup.accepts_signups() || !signup.allows_email(&email) {
        return Ok(Resolved::NoAccount);
    }
    let new = NewUser {
        email: email.clone(),
        first_name: identity.given_name.clone().unwrap_or_default(),
        last_name: identity.family_name.clone().unwrap_or_default(),
        email_verified: true,
        ..Default::default()
    };
    let user = match user_store::create(conn, &Actor::system(), new) {
        Ok(u) => u,
        // Names the provider sent that we refuse: the account without them.
        Err(CoreError::TooLong { .. }) | Err(CoreError::Invalid { .. }) => user_store::create(
            conn,
            &Actor::system(),
            NewUser {
                email,
                email_verified: true,
                ..Default::default()
            },
        )?,
        Err(CoreError::DomainNotAllowed) => return Ok(Resolved::NoAccount),
        Err(e) => return Err(e),
    };
    link(conn, user.id, stored_key, identity)?;
    Ok(Resolved::User(user))
}

/// Signs in through a social provider: see `resolve`. Refusals are
/// `login_attempts` rows (method `sso`): `sso_link_required` (an account has
/// the email, the identity is not linked to it), `sso_no_account`, and,
/// for a member of an organization that requires its own single sign-on,
/// `sso_required`. The second step applies as after a password.
pub fn complete(
    conn: &mut DbConnection,
    provider: &Provider,
    identity: &Identity,
    signup: &SignupPolicy,
    client: &ClientInfo,
    settings: &AuthSettings,
    replaces: Option<&str>,
) -> Result<SignedIn, SignInError> {
    let key = provider.stored_key();
    let shown_email = identity.email.clone().unwrap_or_default();
    let resolved = crate::db::write_transaction::<_, CoreError, _>(conn, |conn| {
        resolve(conn, &key, identity, signup)
    })?;
    let user = match resolved {
        Resolved::User(u) => u,
        Resolved::LinkRequired(u) => {
            return refuse(conn, Some(u.id), &u.email, client, Reason::SsoLinkRequired)
        }
        Resolved::NoAccount => {
            return refuse(conn, None, &shown_email, client, Reason::SsoNoAccount)
        }
    };
    // An organization that requires its own provider is not bypassed.
    if super::password_blocked(conn, user.id)? {
        return refuse(
            conn,
            Some(user.id),
            &user.email,
            client,
            Reason::SsoRequired,
        );
    }
    sign_in_user(conn, &user, false, client, settings, replaces)
}

/// What linking from the account page came to.
#[derive(Debug, PartialEq, Eq)]
pub enum Linked {
    /// Linked now (audited `user.identity.link`).
    New,
    /// It was linked to this user already.
    Already,
    /// It is linked to another user: nothing changed.
    OtherUser,
}

/// Links the identity to `user_id`, who is signed in and started the link
/// from their own page.
pub fn link_to_user(
    conn: &mut DbConnection,
    user_id: i64,
    provider: &Provider,
    identity: &Identity,
) -> CoreResult<Linked> {
    let key = provider.stored_key();
    crate::db::write_transaction(conn, |conn| match find_link(conn, &key, &identity.sub)? {
        Some(l) if l.user_id == user_id => {
            diesel::update(linked_identities::table.find(l.id))
                .set((
                    linked_identities::last_used_at.eq(Some(now())),
                    linked_identities::email.eq(&identity.email),
                ))
                .execute(conn)?;
            Ok(Linked::Already)
        }
        Some(_) => Ok(Linked::OtherUser),
        None => {
            link(conn, user_id, &key, identity)?;
            Ok(Linked::New)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declarations_are_checked() {
        let gh = Provider::github("id", "secret");
        assert!(check_declarations(std::slice::from_ref(&gh), false).is_ok());
        assert!(check_declarations(&[gh.clone(), gh.clone()], false).is_err());
        assert!(check_declarations(&[gh.clone().key("Git Hub")], false).is_err());
        assert!(check_declarations(&[gh.clone().name("")], false).is_err());
        assert!(check_declarations(&[Provider::github("id", "")], false).is_err());
        let local = gh.clone().endpoints(
            "http://127.0.0.1:1/authorize",
            "http://127.0.0.1:1/token",
            "http://127.0.0.1:1/user",
        );
        assert!(check_declarations(std::slice::from_ref(&local), true).is_ok());
        // A host served over https talks https to its providers.
        assert!(check_declarations(&[local], false).is_err());
        let oidc = Provider::oidc("corp", "Corp", "http://idp.example", "id", "s");
        assert!(check_declarations(&[oidc], true).is_err());
    }

    #[test]
    fn the_secret_stays_out_of_debug() {
        let p = Provider::github("the-id", "the-secret");
        let shown = format!("{p:?}");
        assert!(shown.contains("the-id"));
        assert!(!shown.contains("the-secret"));
    }
}
