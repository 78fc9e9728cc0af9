//! Single sign-on with OpenID Connect, per organization: the organization's
//! identity provider (its client secret sealed under a key derived from the
//! host's `secret_key`, the email domains it owns, the role of newcomers,
//! "require SSO"), the identities users have linked, and the users an admin
//! still lets sign in with a password when SSO is required.
//! The protocol is in [`oidc`]; the sign-in itself in [`sign_in`]; the
//! host-wide social providers (GitHub, any OAuth2 or OpenID Connect one)
//! in [`social`].

pub mod oidc;
pub mod sign_in;
pub mod social;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;
use serde_json::json;

use crate::audit;
use crate::authz::{authorize, Action, Actor, OrgRole, Target};
use crate::db::{DbConnection, LoadOne};
use crate::error::{CoreError, CoreResult};
use crate::mfa::sealed::SecretBox;
use crate::schema::{
    identity_provider_domains, identity_providers, linked_identities, memberships, sso_exemptions,
};
use crate::time::now;
use crate::validate;

/// The purpose identity providers' client secrets are sealed for.
pub const PURPOSE_CLIENT_SECRET: &str = "sso-client-secret";

/// An organization's identity provider. The sealed secret never leaves
/// core except to be opened for a token request.
#[derive(Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = identity_providers)]
pub struct IdentityProvider {
    /// The provider's id.
    pub id: i64,
    /// The organization it signs in.
    pub organization_id: i64,
    /// Its key in linked identities and the sign-in state (`org:<slug>` when created).
    pub provider_key: String,
    /// The OpenID Connect issuer URL.
    pub issuer: String,
    /// The client id registered at the provider.
    pub client_id: String,
    #[serde(skip)]
    client_secret_sealed: String,
    /// The stored name of the role newcomers get; see [`IdentityProvider::newcomer_role`].
    pub default_role: String,
    /// Members must sign in through the provider (except those an admin exempts).
    pub require_sso: bool,
    /// A second step done at the provider counts: frontdesk does not ask for its own.
    pub trust_idp_mfa: bool,
    /// When it was configured (UTC).
    pub created_at: NaiveDateTime,
    /// When it last changed (UTC).
    pub updated_at: NaiveDateTime,
}

impl std::fmt::Debug for IdentityProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityProvider")
            .field("provider_key", &self.provider_key)
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

fn secret_context(provider_key: &str) -> String {
    format!("idp:{provider_key}")
}

impl IdentityProvider {
    /// The client secret, opened with the host's key.
    pub fn client_secret(&self, keys: &SecretBox) -> CoreResult<String> {
        let plain = keys.open(
            &secret_context(&self.provider_key),
            &self.client_secret_sealed,
        )?;
        String::from_utf8(plain).map_err(|_| CoreError::Config("sealed secret is not text".into()))
    }

    /// The role newcomers get.
    pub fn newcomer_role(&self) -> OrgRole {
        OrgRole::parse(&self.default_role).unwrap_or(OrgRole::Member)
    }
}

/// An identity provider with its domains.
#[derive(Debug, Clone, Serialize)]
pub struct Configured {
    /// The provider.
    pub provider: IdentityProvider,
    /// The email domains it owns, lower-cased.
    pub domains: Vec<String>,
}

/// What an admin sets.
#[derive(Clone, Default)]
pub struct ProviderInput {
    /// The OpenID Connect issuer URL; must be https (see `allow_loopback_http`).
    pub issuer: String,
    /// The client id registered at the provider.
    pub client_id: String,
    /// Required the first time; `None` later keeps the stored one.
    pub client_secret: Option<String>,
    /// The email domains the provider owns.
    pub domains: Vec<String>,
    /// The role newcomers get; `None` gives them [`OrgRole::Member`], and
    /// owner is refused.
    pub default_role: Option<OrgRole>,
    /// Members must sign in through the provider.
    pub require_sso: bool,
    /// A second step done at the provider counts: frontdesk does not ask for its own.
    pub trust_idp_mfa: bool,
    /// Set by the host, not the admin: a plain-http issuer on a loopback
    /// address is accepted (a host itself served over http: development).
    pub allow_loopback_http: bool,
}

impl std::fmt::Debug for ProviderInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderInput")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("domains", &self.domains)
            .finish_non_exhaustive()
    }
}

/// Who may configure an organization's identity provider: its owners and
/// staff admins (it decides who becomes a member).
fn authorize_configure(actor: &Actor, org: i64) -> CoreResult<()> {
    authorize(
        actor,
        Action::GrantOrgRole(OrgRole::Owner),
        &Target::Organization(org),
    )
}

/// Checks an admin's input without saving (before discovery is fetched).
pub fn check_input(actor: &Actor, org: i64, input: &ProviderInput) -> CoreResult<ProviderInput> {
    authorize_configure(actor, org)?;
    let issuer = oidc::issuer_url(&input.issuer, input.allow_loopback_http).map_err(|e| {
        CoreError::Invalid {
            field: "issuer",
            reason: e.to_string(),
        }
    })?;
    if issuer.len() > 500 {
        return Err(CoreError::TooLong {
            field: "issuer",
            max: 500,
        });
    }
    let client_id = validate::text("client_id", &input.client_id, 255)?;
    if client_id.is_empty() {
        return Err(CoreError::Invalid {
            field: "client_id",
            reason: "is required".into(),
        });
    }
    let client_secret = match input.client_secret.as_deref() {
        Some(s) => {
            let s = validate::text("client_secret", s, 1000)?;
            if s.is_empty() {
                return Err(CoreError::Invalid {
                    field: "client_secret",
                    reason: "is required".into(),
                });
            }
            Some(s)
        }
        None => None,
    };
    let domains = validate::domains(&input.domains.join(",")).map_err(|e| match e {
        CoreError::Invalid { reason, .. } => CoreError::Invalid {
            field: "domains",
            reason,
        },
        other => other,
    })?;
    if domains.len() > 50 {
        return Err(CoreError::Invalid {
            field: "domains",
            reason: "at most 50".into(),
        });
    }
    if input.default_role == Some(OrgRole::Owner) {
        return Err(CoreError::Invalid {
            field: "default_role",
            reason: "newcomers may be admin or member, never owner".into(),
        });
    }
    Ok(ProviderInput {
        issuer,
        client_id,
        client_secret,
        domains,
        default_role: input.default_role,
        require_sso: input.require_sso,
        trust_idp_mfa: input.trust_idp_mfa,
        allow_loopback_http: input.allow_loopback_http,
    })
}

/// The organization's identity provider, if any.
pub fn for_organization(conn: &mut DbConnection, org: i64) -> CoreResult<Option<Configured>> {
    let provider: Option<IdentityProvider> = identity_providers::table
        .filter(identity_providers::organization_id.eq(org))
        .select(IdentityProvider::as_select())
        .load_one(conn)?;
    with_domains(conn, provider)
}

fn with_domains(
    conn: &mut DbConnection,
    provider: Option<IdentityProvider>,
) -> CoreResult<Option<Configured>> {
    let Some(provider) = provider else {
        return Ok(None);
    };
    let domains = identity_provider_domains::table
        .filter(identity_provider_domains::identity_provider_id.eq(provider.id))
        .order(identity_provider_domains::domain)
        .select(identity_provider_domains::domain)
        .load(conn)?;
    Ok(Some(Configured { provider, domains }))
}

/// [`for_organization`] for who may read the organization.
pub fn get(conn: &mut DbConnection, actor: &Actor, org: i64) -> CoreResult<Option<Configured>> {
    authorize(actor, Action::View, &Target::Organization(org))?;
    for_organization(conn, org)
}

/// The provider named `key` (from a sign-in's state).
pub fn by_key(conn: &mut DbConnection, key: &str) -> CoreResult<Option<Configured>> {
    let provider: Option<IdentityProvider> = identity_providers::table
        .filter(identity_providers::provider_key.eq(key))
        .select(IdentityProvider::as_select())
        .load_one(conn)?;
    with_domains(conn, provider)
}

/// The provider owning the domain of `email` (home-realm discovery).
pub fn for_email(conn: &mut DbConnection, email: &str) -> CoreResult<Option<Configured>> {
    let Ok(email) = validate::normalize_email(email) else {
        return Ok(None);
    };
    let domain = validate::domain_of(&email).to_owned();
    let provider: Option<IdentityProvider> = identity_providers::table
        .inner_join(identity_provider_domains::table)
        .filter(identity_provider_domains::domain.eq(domain))
        .select(IdentityProvider::as_select())
        .load_one(conn)?;
    with_domains(conn, provider)
}

/// Whether any organization has an identity provider (the login page then
/// offers single sign-on).
pub fn any_configured(conn: &mut DbConnection) -> CoreResult<bool> {
    let n: i64 = identity_providers::table.count().get_result(conn)?;
    Ok(n > 0)
}

/// Creates or replaces the organization's identity provider, after
/// [`check_input`] and a successful discovery. Audited without the secret.
pub fn save(
    conn: &mut DbConnection,
    actor: &Actor,
    keys: &SecretBox,
    org: i64,
    input: &ProviderInput,
) -> CoreResult<Configured> {
    let input = check_input(actor, org, input)?;
    let role = input.default_role.unwrap_or(OrgRole::Member);
    crate::db::write_transaction(conn, |conn| {
        let organization = crate::organizations::get(conn, org)?;
        let t = now();
        let existing = for_organization(conn, org)?;
        for d in &input.domains {
            let owner: Option<i64> = identity_provider_domains::table
                .find(d)
                .select(identity_provider_domains::identity_provider_id)
                .load_one(conn)?;
            if owner.is_some_and(|o| Some(o) != existing.as_ref().map(|e| e.provider.id)) {
                return Err(CoreError::Conflict(format!(
                    "the domain {d} belongs to another organization's identity provider"
                )));
            }
        }
        let provider: IdentityProvider = match &existing {
            Some(e) => {
                let sealed = match &input.client_secret {
                    Some(s) => keys.seal(&secret_context(&e.provider.provider_key), s.as_bytes()),
                    None => e.provider.client_secret_sealed.clone(),
                };
                diesel::update(identity_providers::table.find(e.provider.id))
                    .set((
                        identity_providers::issuer.eq(&input.issuer),
                        identity_providers::client_id.eq(&input.client_id),
                        identity_providers::client_secret_sealed.eq(sealed),
                        identity_providers::default_role.eq(role.as_str()),
                        identity_providers::require_sso.eq(input.require_sso),
                        identity_providers::trust_idp_mfa.eq(input.trust_idp_mfa),
                        identity_providers::updated_at.eq(t),
                    ))
                    .returning(identity_providers::all_columns)
                    .get_result(conn)?
            }
            None => {
                let Some(secret) = &input.client_secret else {
                    return Err(CoreError::Invalid {
                        field: "client_secret",
                        reason: "is required".into(),
                    });
                };
                let key = format!("org:{}", organization.slug);
                diesel::insert_into(identity_providers::table)
                    .values((
                        identity_providers::organization_id.eq(org),
                        identity_providers::provider_key.eq(&key),
                        identity_providers::issuer.eq(&input.issuer),
                        identity_providers::client_id.eq(&input.client_id),
                        identity_providers::client_secret_sealed
                            .eq(keys.seal(&secret_context(&key), secret.as_bytes())),
                        identity_providers::default_role.eq(role.as_str()),
                        identity_providers::require_sso.eq(input.require_sso),
                        identity_providers::trust_idp_mfa.eq(input.trust_idp_mfa),
                        identity_providers::created_at.eq(t),
                        identity_providers::updated_at.eq(t),
                    ))
                    .returning(identity_providers::all_columns)
                    .get_result(conn)?
            }
        };
        diesel::delete(
            identity_provider_domains::table
                .filter(identity_provider_domains::identity_provider_id.eq(provider.id)),
        )
        .execute(conn)?;
        for d in &input.domains {
            diesel::insert_into(identity_provider_domains::table)
                .values((
                    identity_provider_domains::domain.eq(d),
                    identity_provider_domains::identity_provider_id.eq(provider.id),
                ))
                .execute(conn)?;
        }
        audit::record(
            conn,
            actor,
            "identity_provider.save",
            &format!("organization:{org}"),
            Some(org),
            json!({
                "issuer": input.issuer,
                "client_id": input.client_id,
                "client_secret_changed": input.client_secret.is_some(),
                "domains": input.domains,
                "default_role": role.as_str(),
                "require_sso": input.require_sso,
                "trust_idp_mfa": input.trust_idp_mfa,
            }),
        )?;
        let mut domains = input.domains.clone();
        domains.sort();
        Ok(Configured { provider, domains })
    })
}

/// Removes the organization's identity provider and the identities linked
/// through it (another provider's `sub` values mean other people).
pub fn remove(conn: &mut DbConnection, actor: &Actor, org: i64) -> CoreResult<()> {
    authorize_configure(actor, org)?;
    crate::db::write_transaction(conn, |conn| {
        let Some(existing) = for_organization(conn, org)? else {
            return Err(CoreError::NotFound("identity provider"));
        };
        let unlinked = diesel::delete(
            linked_identities::table
                .filter(linked_identities::provider.eq(&existing.provider.provider_key)),
        )
        .execute(conn)?;
        diesel::delete(identity_providers::table.find(existing.provider.id)).execute(conn)?;
        audit::record(
            conn,
            actor,
            "identity_provider.delete",
            &format!("organization:{org}"),
            Some(org),
            json!({"issuer": existing.provider.issuer, "identities_unlinked": unlinked}),
        )?;
        Ok(())
    })
}

/// An identity a user linked at a provider.
#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = linked_identities)]
pub struct LinkedIdentity {
    /// The link's id.
    pub id: i64,
    /// The user it belongs to.
    pub user_id: i64,
    /// The provider's key (`org:<slug>`, `social:github`).
    pub provider: String,
    /// The user's id at the provider (the `sub` claim).
    pub provider_user_id: String,
    /// The email the provider gave, if any.
    pub email: Option<String>,
    /// When the user linked it (UTC).
    pub linked_at: NaiveDateTime,
    /// When it last signed the user in (UTC).
    pub last_used_at: Option<NaiveDateTime>,
}

/// The user's linked identities, oldest first.
pub fn identities(conn: &mut DbConnection, user_id: i64) -> CoreResult<Vec<LinkedIdentity>> {
    Ok(linked_identities::table
        .filter(linked_identities::user_id.eq(user_id))
        .order(linked_identities::id)
        .select(LinkedIdentity::as_select())
        .load(conn)?)
}

/// Unlinks an identity. The user themself cannot unlink their last way in
/// (no usable password and no other identity); an admin who may edit the
/// user can, and it is audited either way.
pub fn unlink(
    conn: &mut DbConnection,
    actor: &Actor,
    user_id: i64,
    identity_id: i64,
) -> CoreResult<()> {
    unlink_with(conn, actor, user_id, identity_id, false)
}

/// [`unlink`] where, with `passkey_sign_in` (the host lets passkeys sign in
/// alone), a passkey of the user counts as a way in too.
pub fn unlink_with(
    conn: &mut DbConnection,
    actor: &Actor,
    user_id: i64,
    identity_id: i64,
    passkey_sign_in: bool,
) -> CoreResult<()> {
    let user = crate::users::get(conn, user_id)?;
    let own = actor.user_id() == Some(user_id);
    if !own {
        let target = crate::users::target(conn, &user)?;
        authorize(actor, Action::Edit, &target)?;
    }
    crate::db::write_transaction(conn, |conn| {
        let found: Option<LinkedIdentity> = linked_identities::table
            .filter(linked_identities::id.eq(identity_id))
            .filter(linked_identities::user_id.eq(user_id))
            .select(LinkedIdentity::as_select())
            .load_one(conn)?;
        let Some(found) = found else {
            return Err(CoreError::NotFound("linked identity"));
        };
        if own {
            let others: i64 = linked_identities::table
                .filter(linked_identities::user_id.eq(user_id))
                .filter(linked_identities::id.ne(identity_id))
                .count()
                .get_result(conn)?;
            let blocked = password_blocked(conn, user_id)?;
            let password = user.password_hash.is_some() && user.local_login_enabled && !blocked;
            let passkey =
                passkey_sign_in && !blocked && crate::mfa::passkeys::has_passkey(conn, user_id)?;
            if others == 0 && !password && !passkey {
                return Err(CoreError::Invalid {
                    field: "identity",
                    reason: "it is your last way to sign in: set a password or link another \
                             identity first"
                        .into(),
                });
            }
        }
        diesel::delete(linked_identities::table.find(found.id)).execute(conn)?;
        audit::record(
            conn,
            actor,
            "user.identity.unlink",
            &format!("user:{user_id}"),
            None,
            json!({"provider": found.provider, "provider_user_id": found.provider_user_id}),
        )?;
        Ok(())
    })
}

/// Whether password (and passkey-alone) sign-in is closed to the user: a
/// member of an organization that requires SSO, without an exemption.
pub fn password_blocked(conn: &mut DbConnection, user_id: i64) -> CoreResult<bool> {
    let required: i64 = memberships::table
        .inner_join(
            identity_providers::table
                .on(identity_providers::organization_id.eq(memberships::organization_id)),
        )
        .filter(memberships::user_id.eq(user_id))
        .filter(identity_providers::require_sso.eq(true))
        .count()
        .get_result(conn)?;
    if required == 0 {
        return Ok(false);
    }
    Ok(!is_exempt(conn, user_id)?)
}

/// Whether an admin lets the user sign in with a password despite
/// "require SSO".
pub fn is_exempt(conn: &mut DbConnection, user_id: i64) -> CoreResult<bool> {
    let n: i64 = sso_exemptions::table
        .filter(sso_exemptions::user_id.eq(user_id))
        .count()
        .get_result(conn)?;
    Ok(n > 0)
}

/// Grants or withdraws the exemption (who may edit the user may); audited.
pub fn set_exempt(
    conn: &mut DbConnection,
    actor: &Actor,
    user_id: i64,
    exempt: bool,
) -> CoreResult<()> {
    let user = crate::users::get(conn, user_id)?;
    let target = crate::users::target(conn, &user)?;
    authorize(actor, Action::Edit, &target)?;
    crate::db::write_transaction(conn, |conn| {
        diesel::delete(sso_exemptions::table.find(user_id)).execute(conn)?;
        if exempt {
            diesel::insert_into(sso_exemptions::table)
                .values((
                    sso_exemptions::user_id.eq(user_id),
                    sso_exemptions::granted_by.eq(actor.user_id()),
                    sso_exemptions::created_at.eq(now()),
                ))
                .execute(conn)?;
        }
        audit::record(
            conn,
            actor,
            if exempt {
                "user.sso_exemption.grant"
            } else {
                "user.sso_exemption.revoke"
            },
            &format!("user:{user_id}"),
            None,
            json!({}),
        )?;
        Ok(())
    })
}

/// Users of the given ids that hold an exemption.
pub fn exempt_among(conn: &mut DbConnection, ids: &[i64]) -> CoreResult<Vec<i64>> {
    Ok(sso_exemptions::table
        .filter(sso_exemptions::user_id.eq_any(ids))
        .select(sso_exemptions::user_id)
        .load(conn)?)
}
