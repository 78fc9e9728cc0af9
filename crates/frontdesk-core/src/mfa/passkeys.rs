//! Passkeys (WebAuthn, through `webauthn-rs`): a second factor after the
//! password and, where the host allows it ([`PasskeyPolicy::SignIn`]), a way
//! to sign in on their own with a discoverable credential.
//!
//! Each ceremony (register, second step, sign-in) keeps its state on the
//! server, in `passkey_ceremonies`, under a single-use token that lives a few
//! minutes; only the token's digest is stored. A registered passkey is a row
//! of `mfa_factors` (kind `passkey`) holding its credential id, the user
//! handle the authenticator keeps, and the public credential (with its
//! signature counter) as JSON. User verification is required throughout.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::Duration;
use diesel::prelude::*;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::json;
use url::Url;
use webauthn_rs::prelude::{
    DiscoverableAuthentication, DiscoverableKey, Passkey, PasskeyAuthentication,
    PasskeyRegistration, PublicKeyCredential, RegisterPublicKeyCredential,
    RequestChallengeResponse, Uuid, Webauthn, WebauthnBuilder,
};

/// The WebAuthn types the web layer reads and writes.
pub use webauthn_rs;

use super::Kind;
use crate::audit;
use crate::authz::Actor;
use crate::db::DbConnection;
use crate::error::{CoreError, CoreResult};
use crate::schema::{mfa_factors, passkey_ceremonies};
use crate::time::now;
use crate::tokens::{hash_token, SecretToken};
use crate::users::User;

/// What passkeys may do on a site (the host's `passkeys(...)` option).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PasskeyPolicy {
    /// No passkeys: none can be added, and none is offered at sign-in.
    Off,
    /// A second factor after the password (the default).
    #[default]
    SecondFactor,
    /// A second factor, and also a sign-in on their own ("Sign in with a
    /// passkey" on the login page: the passkey is possession and, with the
    /// user verification it requires, a PIN or biometric too).
    SignIn,
}

impl PasskeyPolicy {
    /// Whether passkeys may be added and used at all.
    pub fn enabled(self) -> bool {
        self != PasskeyPolicy::Off
    }

    /// Whether a passkey alone may sign a user in.
    pub fn sign_in(self) -> bool {
        self == PasskeyPolicy::SignIn
    }
}

crate::authz::string_enum!(
    /// What a passkey ceremony is for.
    Purpose {
        /// Adding a new passkey to the user.
        Register => "register",
        /// The second step after a password.
        SecondStep => "second_step",
        /// A sign-in with the passkey alone.
        SignIn => "sign_in",
    }
);

/// How long a ceremony may take.
pub fn ttl() -> Duration {
    Duration::minutes(5)
}

/// The relying party for a site at `base_url`: its id is the host name and
/// the only origin allowed is the base URL's. `None` when the host is an IP
/// address (WebAuthn needs a domain; `localhost` is one).
pub fn relying_party(base_url: &Url, site_name: &str) -> CoreResult<Option<Webauthn>> {
    let Some(domain) = base_url.domain() else {
        return Ok(None);
    };
    let origin = Url::parse(&base_url.origin().ascii_serialization())
        .map_err(|e| CoreError::Config(format!("base_url: {e}")))?;
    let rp = WebauthnBuilder::new(domain, &origin)
        .map_err(|e| CoreError::Config(format!("passkeys for {domain}: {e}")))?
        .rp_name(site_name)
        .build()
        .map_err(|e| CoreError::Config(format!("passkeys for {domain}: {e}")))?;
    Ok(Some(rp))
}

fn invalid(reason: &str) -> CoreError {
    CoreError::Invalid {
        field: "passkey",
        reason: reason.into(),
    }
}

fn encode_id(id: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(id)
}

fn store<T: Serialize>(
    conn: &mut DbConnection,
    purpose: Purpose,
    user_id: Option<i64>,
    state: &T,
) -> CoreResult<SecretToken> {
    let token = SecretToken::generate();
    let at = now();
    let state = serde_json::to_string(state)
        .map_err(|e| CoreError::Config(format!("passkey state: {e}")))?;
    diesel::insert_into(passkey_ceremonies::table)
        .values((
            passkey_ceremonies::token_hash.eq(token.hash()),
            passkey_ceremonies::purpose.eq(purpose.as_str()),
            passkey_ceremonies::user_id.eq(user_id),
            passkey_ceremonies::state.eq(state),
            passkey_ceremonies::expires_at.eq(at + ttl()),
            passkey_ceremonies::created_at.eq(at),
        ))
        .execute(conn)?;
    diesel::delete(passkey_ceremonies::table.filter(passkey_ceremonies::expires_at.lt(at)))
        .execute(conn)?;
    Ok(token)
}

/// Takes a live ceremony of `purpose` (for `user_id` when given): it is
/// deleted, so exactly one caller gets it.
fn take<T: DeserializeOwned>(
    conn: &mut DbConnection,
    token: &str,
    purpose: Purpose,
    user_id: Option<i64>,
) -> CoreResult<Option<T>> {
    let found: Option<(i64, Option<i64>, String)> = passkey_ceremonies::table
        .filter(passkey_ceremonies::token_hash.eq(hash_token(token)))
        .filter(passkey_ceremonies::purpose.eq(purpose.as_str()))
        .filter(passkey_ceremonies::expires_at.gt(now()))
        .select((
            passkey_ceremonies::id,
            passkey_ceremonies::user_id,
            passkey_ceremonies::state,
        ))
        .first(conn)
        .optional()?;
    let Some((id, owner, state)) = found else {
        return Ok(None);
    };
    if user_id.is_some() && owner != user_id {
        return Ok(None);
    }
    let n = diesel::delete(passkey_ceremonies::table.filter(passkey_ceremonies::id.eq(id)))
        .execute(conn)?;
    if n != 1 {
        return Ok(None);
    }
    Ok(serde_json::from_str(&state).ok())
}

/// A user's registered passkeys: (factor id, handle, credential).
fn registered(conn: &mut DbConnection, user_id: i64) -> CoreResult<Vec<(i64, String, Passkey)>> {
    let rows: Vec<(i64, Option<String>, Option<String>)> = mfa_factors::table
        .filter(mfa_factors::user_id.eq(user_id))
        .filter(mfa_factors::kind.eq(Kind::Passkey.as_str()))
        .filter(mfa_factors::confirmed_at.is_not_null())
        .order(mfa_factors::id)
        .select((
            mfa_factors::id,
            mfa_factors::user_handle,
            mfa_factors::credential,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .filter_map(|(id, handle, cred)| {
            let pk = serde_json::from_str::<Passkey>(cred.as_deref()?).ok()?;
            Some((id, handle?, pk))
        })
        .collect())
}

/// Whether the user has a passkey.
pub fn has_passkey(conn: &mut DbConnection, user_id: i64) -> CoreResult<bool> {
    Ok(diesel::select(diesel::dsl::exists(
        mfa_factors::table
            .filter(mfa_factors::user_id.eq(user_id))
            .filter(mfa_factors::kind.eq(Kind::Passkey.as_str()))
            .filter(mfa_factors::confirmed_at.is_not_null()),
    ))
    .get_result(conn)?)
}

#[derive(Serialize, Deserialize)]
struct RegisterState {
    handle: Uuid,
    reg: PasskeyRegistration,
}

/// Starts adding a passkey for a signed-in user: the options for
/// `navigator.credentials.create()` and the ceremony's token. The credential
/// is asked to be discoverable, so it can sign in on its own.
pub fn begin_registration(
    conn: &mut DbConnection,
    rp: &Webauthn,
    user: &User,
) -> CoreResult<(SecretToken, serde_json::Value)> {
    let existing = registered(conn, user.id)?;
    let handle = existing
        .first()
        .and_then(|(_, h, _)| Uuid::parse_str(h).ok())
        .unwrap_or_else(Uuid::new_v4);
    let exclude = existing
        .iter()
        .map(|(_, _, pk)| pk.cred_id().clone())
        .collect();
    let (options, reg) = rp
        .start_passkey_registration(handle, &user.email, &user.name(), Some(exclude))
        .map_err(|e| CoreError::Config(format!("passkey registration: {e}")))?;
    let mut options = serde_json::to_value(&options)
        .map_err(|e| CoreError::Config(format!("passkey options: {e}")))?;
    // Discoverable, so that it can also sign in without an email typed.
    options["publicKey"]["authenticatorSelection"]["residentKey"] = json!("required");
    options["publicKey"]["authenticatorSelection"]["requireResidentKey"] = json!(true);
    let token = store(
        conn,
        Purpose::Register,
        Some(user.id),
        &RegisterState { handle, reg },
    )?;
    Ok((token, options))
}

/// Finishes adding a passkey: checks the authenticator's answer against the
/// ceremony and stores the credential under `name`; `then` runs in the same
/// transaction (the web layer queues the notice mail there). The ceremony is
/// used up whatever the outcome. Returns the factor's id.
pub fn finish_registration(
    conn: &mut DbConnection,
    rp: &Webauthn,
    user: &User,
    token: &str,
    name: &str,
    response: &RegisterPublicKeyCredential,
    then: impl FnOnce(&mut DbConnection) -> CoreResult<()>,
) -> CoreResult<i64> {
    let name = super::factor_name(name, "Passkey")?;
    // Used up whatever comes next (its own statement, not rolled back).
    let Some(state) = take::<RegisterState>(conn, token, Purpose::Register, Some(user.id))? else {
        return Err(invalid("the passkey request expired; add it again"));
    };
    let passkey = rp
        .finish_passkey_registration(response, &state.reg)
        .map_err(|e| invalid(&format!("the authenticator's answer was refused ({e})")))?;
    crate::db::write_transaction(conn, |conn| {
        let cred_id = encode_id(passkey.cred_id());
        let taken: bool = diesel::select(diesel::dsl::exists(
            mfa_factors::table.filter(mfa_factors::credential_id.eq(&cred_id)),
        ))
        .get_result(conn)?;
        if taken {
            return Err(invalid("this passkey is already registered"));
        }
        let credential = serde_json::to_string(&passkey)
            .map_err(|e| CoreError::Config(format!("passkey: {e}")))?;
        let at = now();
        let factor_id: i64 = diesel::insert_into(mfa_factors::table)
            .values((
                mfa_factors::user_id.eq(user.id),
                mfa_factors::kind.eq(Kind::Passkey.as_str()),
                mfa_factors::name.eq(&name),
                mfa_factors::credential_id.eq(Some(&cred_id)),
                mfa_factors::user_handle.eq(Some(state.handle.to_string())),
                mfa_factors::credential.eq(Some(&credential)),
                mfa_factors::confirmed_at.eq(Some(at)),
                mfa_factors::created_at.eq(at),
            ))
            .returning(mfa_factors::id)
            .get_result(conn)?;
        audit::record(
            conn,
            &Actor::user(user.id, None, vec![]),
            "user.mfa.add",
            &format!("user:{}", user.id),
            None,
            json!({"kind": Kind::Passkey.as_str(), "factor": factor_id, "name": name}),
        )?;
        then(conn)?;
        Ok(factor_id)
    })
}

/// Renames one of the user's own factors (a passkey or an app).
pub fn rename_own(
    conn: &mut DbConnection,
    user_id: i64,
    factor_id: i64,
    name: &str,
) -> CoreResult<()> {
    let name = super::factor_name(name, "")?;
    if name.is_empty() {
        return Err(CoreError::Invalid {
            field: "name",
            reason: "give the factor a name".into(),
        });
    }
    crate::db::write_transaction(conn, |conn| {
        let n = diesel::update(
            mfa_factors::table
                .filter(mfa_factors::id.eq(factor_id))
                .filter(mfa_factors::user_id.eq(user_id))
                .filter(mfa_factors::confirmed_at.is_not_null()),
        )
        .set(mfa_factors::name.eq(&name))
        .execute(conn)?;
        if n == 0 {
            return Err(CoreError::NotFound("factor"));
        }
        audit::record(
            conn,
            &Actor::user(user_id, None, vec![]),
            "user.mfa.rename",
            &format!("user:{user_id}"),
            None,
            json!({"factor": factor_id, "name": name}),
        )
    })
}

/// Starts a passkey second step for the user of a pending sign-in: `None`
/// when the user has no passkey.
pub fn begin_second_step(
    conn: &mut DbConnection,
    rp: &Webauthn,
    user_id: i64,
) -> CoreResult<Option<(SecretToken, RequestChallengeResponse)>> {
    let keys: Vec<Passkey> = registered(conn, user_id)?
        .into_iter()
        .map(|(_, _, pk)| pk)
        .collect();
    if keys.is_empty() {
        return Ok(None);
    }
    let (options, state) = rp
        .start_passkey_authentication(&keys)
        .map_err(|e| CoreError::Config(format!("passkey authentication: {e}")))?;
    let token = store(conn, Purpose::SecondStep, Some(user_id), &state)?;
    Ok(Some((token, options)))
}

/// Saves the credential's new counter and marks the factor used.
fn used(
    conn: &mut DbConnection,
    factor_id: i64,
    mut passkey: Passkey,
    result: &webauthn_rs::prelude::AuthenticationResult,
) -> CoreResult<()> {
    let changed = passkey.update_credential(result).unwrap_or(false);
    let at = Some(now());
    let target = mfa_factors::table.filter(mfa_factors::id.eq(factor_id));
    if changed {
        let credential = serde_json::to_string(&passkey)
            .map_err(|e| CoreError::Config(format!("passkey: {e}")))?;
        diesel::update(target)
            .set((
                mfa_factors::credential.eq(Some(credential)),
                mfa_factors::last_used_at.eq(at),
            ))
            .execute(conn)?;
    } else {
        diesel::update(target)
            .set(mfa_factors::last_used_at.eq(at))
            .execute(conn)?;
    }
    Ok(())
}

/// Checks a passkey answer for the second step of `user_id`'s sign-in. The
/// ceremony is used up whatever the outcome.
pub(crate) fn verify_second_step(
    conn: &mut DbConnection,
    rp: &Webauthn,
    user_id: i64,
    token: &str,
    response: &PublicKeyCredential,
) -> CoreResult<bool> {
    let Some(state) =
        take::<PasskeyAuthentication>(conn, token, Purpose::SecondStep, Some(user_id))?
    else {
        return Ok(false);
    };
    let Ok(result) = rp.finish_passkey_authentication(response, &state) else {
        return Ok(false);
    };
    let cred_id = encode_id(result.cred_id());
    let Some((factor_id, _, passkey)) = registered(conn, user_id)?
        .into_iter()
        .find(|(_, _, pk)| encode_id(pk.cred_id()) == cred_id)
    else {
        return Ok(false);
    };
    used(conn, factor_id, passkey, &result)?;
    Ok(true)
}

/// Starts a sign-in with a discoverable passkey: no user is named; the
/// authenticator offers the user's passkeys for this site.
pub fn begin_sign_in(
    conn: &mut DbConnection,
    rp: &Webauthn,
) -> CoreResult<(SecretToken, RequestChallengeResponse)> {
    let (mut options, state) = rp
        .start_discoverable_authentication()
        .map_err(|e| CoreError::Config(format!("passkey sign-in: {e}")))?;
    // A button press, not the autofill prompt.
    options.mediation = None;
    let token = store(conn, Purpose::SignIn, None, &state)?;
    Ok((token, options))
}

/// What a passkey sign-in's answer came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignInCheck {
    /// The ceremony is unknown, used or expired.
    Expired,
    /// The answer names no passkey registered here.
    Unknown,
    /// The passkey of this user did not verify.
    Failed(i64),
    /// The passkey of this user verified.
    Verified(i64),
}

/// Checks a passkey sign-in's answer (the ceremony is used up whatever the
/// outcome).
pub(crate) fn check_sign_in(
    conn: &mut DbConnection,
    rp: &Webauthn,
    token: &str,
    response: &PublicKeyCredential,
) -> CoreResult<SignInCheck> {
    let Some(state) = take::<DiscoverableAuthentication>(conn, token, Purpose::SignIn, None)?
    else {
        return Ok(SignInCheck::Expired);
    };
    let Ok((handle, cred_id)) = rp.identify_discoverable_authentication(response) else {
        return Ok(SignInCheck::Unknown);
    };
    let cred_id = encode_id(cred_id);
    let row: Option<(i64, i64, Option<String>, Option<String>)> = mfa_factors::table
        .filter(mfa_factors::credential_id.eq(&cred_id))
        .filter(mfa_factors::kind.eq(Kind::Passkey.as_str()))
        .filter(mfa_factors::confirmed_at.is_not_null())
        .select((
            mfa_factors::id,
            mfa_factors::user_id,
            mfa_factors::user_handle,
            mfa_factors::credential,
        ))
        .first(conn)
        .optional()?;
    let Some((factor_id, user_id, stored_handle, credential)) = row else {
        return Ok(SignInCheck::Unknown);
    };
    let Some(passkey) = credential
        .as_deref()
        .and_then(|c| serde_json::from_str::<Passkey>(c).ok())
    else {
        return Ok(SignInCheck::Failed(user_id));
    };
    if stored_handle.as_deref() != Some(handle.to_string().as_str()) {
        return Ok(SignInCheck::Failed(user_id));
    }
    let key = DiscoverableKey::from(&passkey);
    match rp.finish_discoverable_authentication(response, state, &[key]) {
        Ok(result) => {
            used(conn, factor_id, passkey, &result)?;
            Ok(SignInCheck::Verified(user_id))
        }
        Err(_) => Ok(SignInCheck::Failed(user_id)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relying_party_comes_from_the_base_url() {
        let url = Url::parse("https://app.example.com/some/path").expect("url");
        assert!(relying_party(&url, "Notes").expect("rp").is_some());
        let local = Url::parse("http://localhost:8080").expect("url");
        assert!(relying_party(&local, "Notes").expect("rp").is_some());
        // WebAuthn needs a domain: an IP address has none.
        let ip = Url::parse("http://127.0.0.1:8080").expect("url");
        assert!(relying_party(&ip, "Notes").expect("rp").is_none());
    }
}
