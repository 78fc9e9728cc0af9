//! A sign-in through an identity provider: the pending state kept between
//! the redirect and the callback (single use, short-lived, only its hash
//! stored), and what the provider's answer comes to: the linked user, an
//! existing account linked by a verified email in the organization's
//! domains, or a new one (just in time) with the organization's default
//! role. Every outcome is a `login_attempts` row (method `sso`).

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;

use super::oidc::Identity;
use super::{Configured, LinkedIdentity};
use crate::auth::{AuthSettings, SignInError, SignedIn};
use crate::db::{DbConnection, LoadOne};
use crate::error::{CoreError, CoreResult};
use crate::login_attempts::{self, Method, Reason};
use crate::schema::{linked_identities, memberships, sso_states};
use crate::sessions::ClientInfo;
use crate::time::now;
use crate::tokens::hash_token;
use crate::users::{self as user_store, NewUser, User};
use crate::{validate, Actor};

/// How long a sign-in may stay at the identity provider.
pub const STATE_TTL_MINUTES: i64 = 10;

/// What the callback needs from the start of the sign-in.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = sso_states)]
pub struct Pending {
    /// The record's id.
    pub id: i64,
    #[diesel(column_name = state_hash)]
    _state_hash: String,
    /// The provider's key (`org:<slug>`, `social:github`).
    pub provider: String,
    /// The PKCE verifier for the code exchange.
    pub pkce_verifier: String,
    /// The nonce the ID token must carry.
    pub nonce: String,
    /// Where to send the user after signing in (a local path), if asked.
    pub next: Option<String>,
    /// When the sign-in started (UTC).
    pub created_at: NaiveDateTime,
    /// When the state stops being accepted (UTC), [`STATE_TTL_MINUTES`] later.
    pub expires_at: NaiveDateTime,
    /// Started from this signed-in user's "Linked accounts" page: the
    /// callback links the identity to them instead of signing in.
    pub link_user_id: Option<i64>,
}

/// Keeps a started sign-in (and forgets the expired ones). `link_user`:
/// the signed-in user who links an identity rather than signs in.
pub fn store_state(
    conn: &mut DbConnection,
    provider: &str,
    auth: &super::oidc::Authorization,
    next: Option<&str>,
    link_user: Option<i64>,
) -> CoreResult<()> {
    let t = now();
    diesel::delete(sso_states::table.filter(sso_states::expires_at.lt(t))).execute(conn)?;
    diesel::insert_into(sso_states::table)
        .values((
            sso_states::state_hash.eq(hash_token(&auth.state)),
            sso_states::provider.eq(provider),
            sso_states::pkce_verifier.eq(&auth.pkce_verifier),
            sso_states::nonce.eq(&auth.nonce),
            sso_states::next.eq(next),
            sso_states::created_at.eq(t),
            sso_states::expires_at.eq(t + Duration::minutes(STATE_TTL_MINUTES)),
            sso_states::link_user_id.eq(link_user),
        ))
        .execute(conn)?;
    Ok(())
}

/// Takes the pending sign-in `state` names: at most once (the row is
/// deleted by the same statement that finds it), and only while live.
pub fn take_state(conn: &mut DbConnection, state: &str) -> CoreResult<Option<Pending>> {
    if state.is_empty() || state.len() > 200 {
        return Ok(None);
    }
    let taken: Option<Pending> =
        diesel::delete(sso_states::table.filter(sso_states::state_hash.eq(hash_token(state))))
            .returning(sso_states::all_columns)
            .get_results(conn)?
            .into_iter()
            .next();
    Ok(taken.filter(|p| p.expires_at > now()))
}

/// Records a refused SSO attempt.
pub fn refuse(
    conn: &mut DbConnection,
    user_id: Option<i64>,
    email: &str,
    client: &ClientInfo,
    reason: Reason,
) -> Result<SignedIn, SignInError> {
    let typed = login_attempts::normalize(email);
    login_attempts::record_method(conn, user_id, &typed, client, reason, Some(Method::Sso))?;
    let failed = crate::events::Event::LoginFailed {
        email: typed,
        user_id,
        reason,
    };
    if let Err(e) = crate::events::emit(conn, failed) {
        tracing::warn!("frontdesk: a listener refused a failed sign-in's event: {e}");
    }
    Err(SignInError::Refused { reason, user_id })
}

pub(crate) fn find_link(
    conn: &mut DbConnection,
    provider: &str,
    sub: &str,
) -> CoreResult<Option<LinkedIdentity>> {
    Ok(linked_identities::table
        .filter(linked_identities::provider.eq(provider))
        .filter(linked_identities::provider_user_id.eq(sub))
        .select(LinkedIdentity::as_select())
        .load_one(conn)?)
}

pub(crate) fn link(
    conn: &mut DbConnection,
    user_id: i64,
    provider: &str,
    identity: &Identity,
) -> CoreResult<()> {
    let t = now();
    diesel::insert_into(linked_identities::table)
        .values((
            linked_identities::user_id.eq(user_id),
            linked_identities::provider.eq(provider),
            linked_identities::provider_user_id.eq(&identity.sub),
            linked_identities::email.eq(&identity.email),
            linked_identities::linked_at.eq(t),
            linked_identities::last_used_at.eq(Some(t)),
        ))
        .execute(conn)?;
    crate::audit::record(
        conn,
        &Actor::user(user_id, None, Vec::new()),
        "user.identity.link",
        &format!("user:{user_id}"),
        None,
        serde_json::json!({"provider": provider, "provider_user_id": identity.sub}),
    )?;
    Ok(())
}

/// Who the identity is: the linked user; else, for a verified email in the
/// organization's domains, the account with that email (linked now, and made
/// a member with the default role if it was not) or a new account. `None`:
/// no account may be used (refused as `sso_no_account`).
fn resolve(
    conn: &mut DbConnection,
    idp: &Configured,
    identity: &Identity,
) -> CoreResult<Option<User>> {
    let key = &idp.provider.provider_key;
    if let Some(linked) = find_link(conn, key, &identity.sub)? {
        diesel::update(linked_identities::table.find(linked.id))
            .set((
                linked_identities::last_used_at.eq(Some(now())),
                linked_identities::email.eq(&identity.email),
            ))
            .execute(conn)?;
        return Ok(Some(user_store::get(conn, linked.user_id)?));
    }
    // An unverified email claim never links nor creates anything.
    if !identity.email_verified {
        return Ok(None);
    }
    let Some(email) = identity
        .email
        .as_deref()
        .and_then(|e| validate::normalize_email(e).ok())
    else {
        return Ok(None);
    };
    if !idp.domains.iter().any(|d| d == validate::domain_of(&email)) {
        return Ok(None);
    }
    let org = idp.provider.organization_id;
    let role = idp.provider.newcomer_role();
    let user = match user_store::find_by_email(conn, &email)? {
        Some(user) => {
            let member: i64 = memberships::table
                .filter(memberships::user_id.eq(user.id))
                .filter(memberships::organization_id.eq(org))
                .count()
                .get_result(conn)?;
            if member == 0 {
                crate::organizations::insert_membership(conn, user.id, org, role)?;
            }
            user
        }
        None => {
            let new = NewUser {
                email: email.clone(),
                first_name: identity.given_name.clone().unwrap_or_default(),
                last_name: identity.family_name.clone().unwrap_or_default(),
                email_verified: true,
                organization: Some((org, role)),
                ..Default::default()
            };
            match user_store::create(conn, &Actor::system(), new) {
                Ok(u) => u,
                // Names the provider sent that we refuse: the account without them.
                Err(CoreError::TooLong { .. }) | Err(CoreError::Invalid { .. }) => {
                    user_store::create(
                        conn,
                        &Actor::system(),
                        NewUser {
                            email: email.clone(),
                            email_verified: true,
                            organization: Some((org, role)),
                            ..Default::default()
                        },
                    )?
                }
                Err(CoreError::DomainNotAllowed) => return Ok(None),
                Err(e) => return Err(e),
            }
        }
    };
    link(conn, user.id, key, identity)?;
    Ok(Some(user))
}

/// Signs in the user the provider vouched for. `identity` comes from
/// [`super::oidc::finish`]. The second factor applies unless the provider
/// is trusted for it and its `amr` names one.
pub fn complete(
    conn: &mut DbConnection,
    idp: &Configured,
    identity: &Identity,
    client: &ClientInfo,
    settings: &AuthSettings,
    replaces: Option<&str>,
) -> Result<SignedIn, SignInError> {
    let shown_email = identity.email.clone().unwrap_or_default();
    let user =
        crate::db::write_transaction::<_, CoreError, _>(conn, |conn| resolve(conn, idp, identity))?;
    let Some(user) = user else {
        return refuse(conn, None, &shown_email, client, Reason::SsoNoAccount);
    };
    let trusted = idp.provider.trust_idp_mfa && identity.mfa_done;
    sign_in_user(conn, &user, trusted, client, settings, replaces)
}

/// Signs in `user`, whom a provider vouched for: refused when suspended;
/// the second factor (or its enrolment) comes next unless `trusted_mfa`.
pub(crate) fn sign_in_user(
    conn: &mut DbConnection,
    user: &User,
    trusted_mfa: bool,
    client: &ClientInfo,
    settings: &AuthSettings,
    replaces: Option<&str>,
) -> Result<SignedIn, SignInError> {
    if user.suspension_in_force(now()) {
        return refuse(conn, Some(user.id), &user.email, client, Reason::Suspended);
    }
    if !trusted_mfa {
        if crate::mfa::enabled(conn, user.id)? {
            let challenge = crate::auth::sso_second_step(conn, user, client)?;
            return Err(SignInError::SecondFactor {
                user_id: user.id,
                challenge,
            });
        }
        if crate::mfa::policy::requires(conn, user, &settings.mfa_policy)? {
            let challenge = crate::auth::sso_second_step(conn, user, client)?;
            return Err(SignInError::EnrolmentRequired {
                user_id: user.id,
                challenge,
            });
        }
    }
    let signed_in = crate::db::write_transaction::<_, CoreError, _>(conn, |conn| {
        crate::auth::open_sso_session(conn, user, client, settings, replaces)
    })?;
    Ok(signed_in)
}
