//! Sign-in: checks a password (against a dummy hash when the email is unknown,
//! so timing does not tell), applies the lockout, records every attempt, and
//! opens a session. Also password changes, which end the other sessions.
//! Argon2 work here is blocking: callers run it off the async executor.

use diesel::prelude::*;
use serde_json::json;

use crate::audit;
use crate::authz::Actor;
use crate::db::{Cached, DbConnection};
use crate::error::{CoreError, CoreResult};
use crate::login_attempts::{self, LockoutPolicy, Method, Reason};
use crate::passwords;
use crate::schema::{password_resets, users};
use crate::sessions::{self, ClientInfo, Session, SessionConfig};
use crate::time::now;
use crate::tokens::SecretToken;
use crate::users::{self as user_store, User};

#[cfg(feature = "postgres")]
mod second_step_pg;

/// Everything sign-in needs to know about the site's rules.
#[derive(Debug, Clone, Copy, Default)]
pub struct AuthSettings {
    /// How long sessions live.
    pub sessions: SessionConfig,
    /// When repeated failures lock sign-in.
    pub lockout: LockoutPolicy,
    /// Refuse sign-in until the address is verified (default: allowed).
    pub require_verified_email: bool,
    /// Who must use two-step sign-in besides the organizations that ask it.
    pub mfa_policy: crate::mfa::policy::MfaPolicy,
}

/// A successful sign-in: the new session and the token for its cookie.
#[derive(Debug)]
pub struct SignedIn {
    /// The user who signed in.
    pub user: User,
    /// The new session.
    pub session: Session,
    /// The session's secret token, for the cookie; only its hash is stored.
    pub token: SecretToken,
}

/// A refused sign-in. The user is shown the same message for every reason;
/// the reason is for the log, the hooks and the admin pages.
#[derive(Debug)]
pub enum SignInError {
    /// The sign-in is refused; the reason is logged as a login attempt.
    Refused {
        /// Why.
        reason: Reason,
        /// The account the email names, if any.
        user_id: Option<i64>,
    },
    /// The password was right and the user has a second factor: no session
    /// yet; the challenge's token carries the sign-in to
    /// [`complete_second_step`].
    SecondFactor {
        /// The user who gave the right password.
        user_id: i64,
        /// The challenge's secret token, for the second step's form or cookie.
        challenge: SecretToken,
    },
    /// The password was right but a policy requires a second factor the user
    /// does not have yet: no session; the challenge carries the sign-in to
    /// [`complete_enrolment`].
    EnrolmentRequired {
        /// The user who gave the right password.
        user_id: i64,
        /// The challenge's secret token, for the enrolment pages.
        challenge: SecretToken,
    },
    /// The second step's challenge is used, expired or worn out: sign in again.
    ChallengeExpired,
    /// The database or another service failed.
    Other(CoreError),
}

/// What the user gives at the second step.
#[derive(Debug, Clone, Copy)]
pub enum SecondFactor<'a> {
    /// A code from an authenticator app.
    Totp(&'a str),
    /// One of the recovery codes.
    RecoveryCode(&'a str),
    /// A passkey's answer to the ceremony `ceremony` (from
    /// [`crate::mfa::passkeys::begin_second_step`]).
    Passkey {
        /// The site's relying party (see [`crate::mfa::passkeys::relying_party`]).
        rp: &'a webauthn_rs::Webauthn,
        /// The ceremony id the second step started.
        ceremony: &'a str,
        /// The browser's answer.
        response: &'a webauthn_rs::prelude::PublicKeyCredential,
    },
}

impl SecondFactor<'_> {
    /// The method login attempts record for it.
    pub fn method(&self) -> Method {
        match self {
            SecondFactor::Totp(_) => Method::Totp,
            SecondFactor::RecoveryCode(_) => Method::RecoveryCode,
            SecondFactor::Passkey { .. } => Method::Passkey,
        }
    }
}

impl From<CoreError> for SignInError {
    fn from(e: CoreError) -> Self {
        SignInError::Other(e)
    }
}

impl From<diesel::result::Error> for SignInError {
    fn from(e: diesel::result::Error) -> Self {
        SignInError::Other(e.into())
    }
}

/// Checks the credentials and opens a session. `replaces` is the session token
/// the browser held before, ended on success so every login gets a new token.
pub fn sign_in(
    conn: &mut DbConnection,
    email: &str,
    password: &str,
    client: &ClientInfo,
    settings: &AuthSettings,
    replaces: Option<&str>,
) -> Result<SignedIn, SignInError> {
    let typed = login_attempts::normalize(email);
    let user = match crate::validate::normalize_email(email) {
        Ok(e) => user_store::find_by_email(conn, &e)?,
        Err(_) => None,
    };
    let locked = login_attempts::lockout(conn, &typed, client.ip.as_deref(), &settings.lockout)?;

    // The password is always checked (or the dummy hash is), so every path
    // costs one argon2 verification.
    let stored = user
        .as_ref()
        .filter(|u| u.local_login_enabled && locked.is_none())
        .and_then(|u| u.password_hash.as_deref());
    let password_ok = passwords::verify(password, stored);
    // Told only after a right password, like an unverified address.
    let sso_required = match &user {
        Some(u) if password_ok => crate::sso::password_blocked(conn, u.id)?,
        _ => false,
    };

    let reason = match &user {
        _ if locked.is_some() => Reason::LockedOut,
        None => Reason::UnknownEmail,
        Some(u) if !u.local_login_enabled => Reason::LocalLoginDisabled,
        Some(_) if !password_ok => Reason::BadPassword,
        Some(u) if u.suspension_in_force(now()) => Reason::Suspended,
        Some(_) if sso_required => Reason::SsoRequired,
        Some(u) if settings.require_verified_email && !u.email_verified => Reason::EmailUnverified,
        Some(_) => Reason::Success,
    };
    let user_id = user.as_ref().map(|u| u.id);
    if reason != Reason::Success {
        login_attempts::record_method(
            conn,
            user_id,
            &typed,
            client,
            reason,
            Some(Method::Password),
        )?;
        let failed = crate::events::Event::LoginFailed {
            email: typed.clone(),
            user_id,
            reason,
        };
        // Outside a transaction: delivered as it is; nothing to veto.
        if let Err(e) = crate::events::emit(conn, failed) {
            tracing::warn!("frontdesk: a listener refused a failed sign-in's event: {e}");
        }
        return Err(SignInError::Refused { reason, user_id });
    }
    let Some(user) = user else {
        return Err(SignInError::Other(CoreError::NotFound("user")));
    };

    let rehash = match user.password_hash.as_deref() {
        Some(h) if passwords::needs_rehash(h) => passwords::hash(password).ok(),
        _ => None,
    };
    if let Some(h) = &rehash {
        diesel::update(users::table.find(user.id))
            .set(users::password_hash.eq(Some(h)))
            .execute(conn)?;
    }
    if crate::mfa::enabled(conn, user.id)? {
        // No session before the second factor: a challenge instead.
        let challenge = second_step_challenge(conn, &user, &typed, client, Method::Password)?;
        return Err(SignInError::SecondFactor {
            user_id: user.id,
            challenge,
        });
    }
    if crate::mfa::policy::requires(conn, &user, &settings.mfa_policy)? {
        // Required and missing: enrolment first, still no session.
        let challenge = second_step_challenge(conn, &user, &typed, client, Method::Password)?;
        return Err(SignInError::EnrolmentRequired {
            user_id: user.id,
            challenge,
        });
    }
    let signed_in = crate::db::write_transaction::<_, CoreError, _>(conn, |conn| {
        open_session(
            conn,
            &user,
            client,
            settings,
            replaces,
            (Reason::Success, Method::Password),
        )
    })?;
    Ok(signed_in)
}

/// What [`pending`] answers.
type Pending = (
    crate::mfa::challenges::Challenge,
    User,
    Vec<crate::mfa::challenges::SealedApp>,
);

/// The live challenge of a pending sign-in, its user and their confirmed
/// authenticator apps (read in the same statement as the lockout's counts),
/// unless the account is locked out or suspended now (refused and recorded
/// with `method`).
fn pending(
    conn: &mut DbConnection,
    challenge: &str,
    client: &ClientInfo,
    settings: &AuthSettings,
    method: Method,
) -> Result<Pending, SignInError> {
    let at = now();
    let ip = client.ip.as_deref();
    let Some(found) =
        crate::mfa::challenges::find_pending(conn, challenge, ip, settings.lockout.window, at)?
    else {
        return Err(SignInError::ChallengeExpired);
    };
    let crate::mfa::challenges::Pending {
        challenge: found,
        user,
        apps,
        counts,
    } = found;
    // The counts were read for the stored email; the password step counted
    // the typed one, normalized. The two are the same for every address
    // stored through `normalize_email`; any other is counted on its own.
    let typed = login_attempts::normalize(&user.email);
    let locked = if typed == user.email {
        counts.lockout(&settings.lockout, at)
    } else {
        login_attempts::lockout_at(conn, &typed, ip, &settings.lockout, at)?
    };
    if locked.is_some() {
        refuse(conn, &user, client, Reason::LockedOut, method)?;
    }
    if user.suspension_in_force(at) {
        refuse(conn, &user, client, Reason::Suspended, method)?;
    }
    Ok((found, user, apps))
}

/// The attempt (`mfa_required`) and the challenge of a right password that a
/// second step (or enrolment) follows.
fn second_step_challenge(
    conn: &mut DbConnection,
    user: &User,
    typed: &str,
    client: &ClientInfo,
    method: Method,
) -> CoreResult<SecretToken> {
    crate::mfa::challenges::issue_after_attempt(conn, user.id, typed, client, method)
}

/// [`second_step_challenge`] for a sign-in through an identity provider.
pub(crate) fn sso_second_step(
    conn: &mut DbConnection,
    user: &User,
    client: &ClientInfo,
) -> CoreResult<SecretToken> {
    let typed = login_attempts::normalize(&user.email);
    second_step_challenge(conn, user, &typed, client, Method::Sso)
}

/// [`open_session`] for a sign-in through an identity provider.
pub(crate) fn open_sso_session(
    conn: &mut DbConnection,
    user: &User,
    client: &ClientInfo,
    settings: &AuthSettings,
    replaces: Option<&str>,
) -> CoreResult<SignedIn> {
    open_session(
        conn,
        user,
        client,
        settings,
        replaces,
        (Reason::Success, Method::Sso),
    )
}

/// The sign-in's last step: the user is in. Inside the caller's transaction.
fn open_session(
    conn: &mut DbConnection,
    user: &User,
    client: &ClientInfo,
    settings: &AuthSettings,
    replaces: Option<&str>,
    (reason, method): (Reason, Method),
) -> CoreResult<SignedIn> {
    let t = now();
    if user.is_suspended() {
        // Past its end date (checked by the caller): restored as it signs in.
        user_store::end_suspension_if_due(conn, user.id)?;
    }
    // The first sign-in also ends the pending state (`activated_at`).
    let user: User = Cached(
        diesel::update(users::table.find(user.id))
            .set((
                users::last_login_at.eq(Some(t)),
                users::last_active_at.eq(Some(t)),
                users::activated_at.eq(login_attempts::coalesce(users::activated_at, t).nullable()),
            ))
            .returning(users::all_columns),
    )
    .get_result(conn)?;
    if let Some(old) = replaces {
        sessions::revoke_by_token(conn, old, sessions::reason::REPLACED)?;
    }
    let (session, token) = sessions::create(conn, user.id, client, &settings.sessions)?;
    let typed = login_attempts::normalize(&user.email);
    login_attempts::record_method(conn, Some(user.id), &typed, client, reason, Some(method))?;
    crate::events::emit(
        conn,
        crate::events::Event::UserSignedIn { user_id: user.id },
    )?;
    Ok(SignedIn {
        user,
        session,
        token,
    })
}

fn refuse(
    conn: &mut DbConnection,
    user: &User,
    client: &ClientInfo,
    reason: Reason,
    method: Method,
) -> Result<SignedIn, SignInError> {
    let typed = login_attempts::normalize(&user.email);
    login_attempts::record_method(conn, Some(user.id), &typed, client, reason, Some(method))?;
    let failed = crate::events::Event::LoginFailed {
        email: typed,
        user_id: Some(user.id),
        reason,
    };
    if let Err(e) = crate::events::emit(conn, failed) {
        tracing::warn!("frontdesk: a listener refused a failed sign-in's event: {e}");
    }
    Err(SignInError::Refused {
        reason,
        user_id: Some(user.id),
    })
}

/// The second step of a sign-in: `challenge` from [`SignInError::SecondFactor`]
/// and a code. A wrong code counts against the challenge and, like a wrong
/// password, towards the lockout (`mfa_failed`); a right one uses the
/// challenge and opens the session, all in one transaction (a recovery code
/// is spent only if the session opens). `keys` opens the authenticator apps'
/// seeds (none: the host has no `secret_key`, and only recovery codes work).
pub fn complete_second_step(
    conn: &mut DbConnection,
    keys: Option<&crate::mfa::sealed::SecretBox>,
    challenge: &str,
    factor: SecondFactor<'_>,
    client: &ClientInfo,
    settings: &AuthSettings,
    replaces: Option<&str>,
) -> Result<SignedIn, SignInError> {
    use crate::mfa::{challenges, passkeys, recovery, totp};
    let method = factor.method();
    // An app's code is checked against the apps read with the challenge (one
    // statement less on the path every such sign-in takes).
    let (found, user, apps) = pending(conn, challenge, client, settings, method)?;
    // On PostgreSQL an app's code takes one statement for all of it, when
    // there is nothing more to do than that statement does.
    #[cfg(feature = "postgres")]
    if let (DbConnection::Pg(_), SecondFactor::Totp(code), Some(keys), None) =
        (&*conn, factor, keys, replaces)
    {
        if !user.is_suspended() {
            let done = second_step_pg::with_app_code(
                conn, keys, code, &user, &apps, found.id, client, settings,
            )?;
            return settle(conn, done, found.id, &user, client, method);
        }
    }
    let done = crate::db::write_transaction::<_, SignInError, _>(conn, |conn| {
        // `used`: the app's code and the challenge went in one statement.
        let (ok, used, reason) = match factor {
            SecondFactor::Totp(code) => match keys {
                Some(k) => match totp::verify_second_step(conn, k, user.id, code, &apps, found.id)?
                {
                    totp::SecondStep::Refused => (false, false, Reason::Success),
                    totp::SecondStep::Used => (true, true, Reason::Success),
                    totp::SecondStep::ChallengeGone => return Err(SignInError::ChallengeExpired),
                },
                None => (false, false, Reason::Success),
            },
            SecondFactor::RecoveryCode(code) => (
                recovery::redeem(conn, user.id, code)?,
                false,
                Reason::MfaRecoveryCodeUsed,
            ),
            SecondFactor::Passkey {
                rp,
                ceremony,
                response,
            } => (
                passkeys::verify_second_step(conn, rp, user.id, ceremony, response)?,
                false,
                Reason::Success,
            ),
        };
        if !ok {
            return Ok(None);
        }
        if !used && !challenges::consume(conn, found.id)? {
            return Err(SignInError::ChallengeExpired);
        }
        Ok(Some(open_session(
            conn,
            &user,
            client,
            settings,
            replaces,
            (reason, method),
        )?))
    })?;
    settle(conn, done, found.id, &user, client, method)
}

/// A second step's end: signed in, or a wrong answer counted against the
/// challenge and towards the lockout.
fn settle(
    conn: &mut DbConnection,
    done: Option<SignedIn>,
    challenge_id: i64,
    user: &User,
    client: &ClientInfo,
    method: Method,
) -> Result<SignedIn, SignInError> {
    match done {
        Some(signed_in) => Ok(signed_in),
        None => {
            crate::mfa::challenges::fail(conn, challenge_id)?;
            refuse(conn, user, client, Reason::MfaFailed, method)
        }
    }
}

/// The end of a sign-in that a policy sent through enrolment: the challenge
/// from [`SignInError::EnrolmentRequired`], the authenticator app begun for
/// that user (`totp::begin`) and its first code. A right code confirms the
/// app, uses the challenge, makes the recovery codes (returned, to show once)
/// and opens the session, in one transaction; a wrong one counts like a
/// wrong second step (`mfa_failed`, towards the lockout).
#[allow(clippy::too_many_arguments)]
pub fn complete_enrolment(
    conn: &mut DbConnection,
    keys: &crate::mfa::sealed::SecretBox,
    challenge: &str,
    factor_id: i64,
    code: &str,
    client: &ClientInfo,
    settings: &AuthSettings,
    replaces: Option<&str>,
) -> Result<(SignedIn, Vec<String>), SignInError> {
    use crate::mfa::{challenges, recovery, totp};
    let method = Method::Totp;
    let (found, user, _) = pending(conn, challenge, client, settings, method)?;
    let done = crate::db::write_transaction::<_, SignInError, _>(conn, |conn| {
        // A user who has a factor is at the second step, not at enrolment:
        // adding another factor there would skip the one they have.
        if crate::mfa::enabled(conn, user.id)? {
            return Err(SignInError::ChallengeExpired);
        }
        match totp::confirm(conn, keys, &user, factor_id, code) {
            Ok(()) => {}
            Err(CoreError::Invalid { .. }) | Err(CoreError::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
        if !challenges::consume(conn, found.id)? {
            return Err(SignInError::ChallengeExpired);
        }
        let codes = recovery::regenerate(conn, user.id)?;
        let signed_in = open_session(
            conn,
            &user,
            client,
            settings,
            replaces,
            (Reason::Success, method),
        )?;
        Ok(Some((signed_in, codes)))
    })?;
    match done {
        Some(done) => Ok(done),
        None => {
            challenges::fail(conn, found.id)?;
            refuse(conn, &user, client, Reason::MfaFailed, method)?;
            Err(SignInError::Refused {
                reason: Reason::MfaFailed,
                user_id: Some(user.id),
            })
        }
    }
}

/// The user a live challenge may take through enrolment: `None` when the
/// challenge is used, expired or worn out, and when the user already has a
/// confirmed factor (their challenge is for the second step; enrolling
/// another factor with it would skip the one they have).
pub fn enrolment_user(conn: &mut DbConnection, challenge: &str) -> CoreResult<Option<User>> {
    let Some(found) = crate::mfa::challenges::find(conn, challenge)? else {
        return Ok(None);
    };
    if crate::mfa::enabled(conn, found.user_id)? {
        return Ok(None);
    }
    user_store::get(conn, found.user_id).map(Some)
}

/// Enrolment with a passkey: the challenge from
/// [`SignInError::EnrolmentRequired`], a registration ceremony begun for that
/// user ([`crate::mfa::passkeys::begin_registration`]) and the
/// authenticator's answer. A good answer stores the passkey, uses the
/// challenge, makes the recovery codes (returned, to show once) and opens
/// the session, in one transaction with `then` (the notice mail); a refused
/// one counts like a wrong second step (`mfa_failed`, method passkey).
#[allow(clippy::too_many_arguments)]
pub fn complete_passkey_enrolment(
    conn: &mut DbConnection,
    rp: &webauthn_rs::Webauthn,
    challenge: &str,
    ceremony: &str,
    name: &str,
    response: &webauthn_rs::prelude::RegisterPublicKeyCredential,
    client: &ClientInfo,
    settings: &AuthSettings,
    replaces: Option<&str>,
    then: impl FnOnce(&mut DbConnection, &User) -> CoreResult<()>,
) -> Result<(SignedIn, Vec<String>), SignInError> {
    use crate::mfa::{challenges, passkeys, recovery};
    let method = Method::Passkey;
    let (found, user, _) = pending(conn, challenge, client, settings, method)?;
    if crate::mfa::enabled(conn, user.id)? {
        return Err(SignInError::ChallengeExpired);
    }
    let mut opened: Option<Result<(SignedIn, Vec<String>), SignInError>> = None;
    let stored = passkeys::finish_registration(conn, rp, &user, ceremony, name, response, |conn| {
        // Only this passkey: nothing was added since the check above.
        let confirmed: i64 = crate::schema::mfa_factors::table
            .filter(crate::schema::mfa_factors::user_id.eq(user.id))
            .filter(crate::schema::mfa_factors::confirmed_at.is_not_null())
            .count()
            .get_result(conn)?;
        if confirmed != 1 || !challenges::consume(conn, found.id)? {
            opened = Some(Err(SignInError::ChallengeExpired));
            return Err(CoreError::NotFound("pending sign-in"));
        }
        let codes = recovery::regenerate(conn, user.id)?;
        let signed_in = open_session(
            conn,
            &user,
            client,
            settings,
            replaces,
            (Reason::Success, method),
        )?;
        then(conn, &signed_in.user)?;
        opened = Some(Ok((signed_in, codes)));
        Ok(())
    });
    match (stored, opened) {
        (Ok(_), Some(done)) => done,
        (Err(_), Some(Err(e))) => Err(e),
        (Err(CoreError::Invalid { .. }), _) => {
            challenges::fail(conn, found.id)?;
            refuse(conn, &user, client, Reason::MfaFailed, method)?;
            Err(SignInError::Refused {
                reason: Reason::MfaFailed,
                user_id: Some(user.id),
            })
        }
        (Err(e), _) => Err(SignInError::Other(e)),
        (Ok(_), None) => Err(SignInError::Other(CoreError::Config(
            "passkey enrolment finished without a session".into(),
        ))),
    }
}

/// Signs in with a passkey alone (where the host's policy allows it): the
/// answer to a ceremony from [`crate::mfa::passkeys::begin_sign_in`]. The
/// same rules as a password apply (lockout, suspension, verified address);
/// a failed passkey counts towards the lockout (`passkey_failed`). No second
/// step follows: the passkey is itself two factors (the device, and the PIN
/// or biometric its user verification requires).
pub fn sign_in_with_passkey(
    conn: &mut DbConnection,
    rp: &webauthn_rs::Webauthn,
    ceremony: &str,
    response: &webauthn_rs::prelude::PublicKeyCredential,
    client: &ClientInfo,
    settings: &AuthSettings,
    replaces: Option<&str>,
) -> Result<SignedIn, SignInError> {
    use crate::mfa::passkeys::{self, SignInCheck};
    let method = Method::Passkey;
    let checked = crate::db::write_transaction::<_, CoreError, _>(conn, |conn| {
        passkeys::check_sign_in(conn, rp, ceremony, response)
    })?;
    let user_id = match checked {
        SignInCheck::Expired => return Err(SignInError::ChallengeExpired),
        SignInCheck::Unknown => {
            login_attempts::record_method(
                conn,
                None,
                "",
                client,
                Reason::PasskeyFailed,
                Some(method),
            )?;
            return Err(SignInError::Refused {
                reason: Reason::PasskeyFailed,
                user_id: None,
            });
        }
        SignInCheck::Failed(id) | SignInCheck::Verified(id) => id,
    };
    let user = user_store::get(conn, user_id)?;
    let typed = login_attempts::normalize(&user.email);
    let reason = if login_attempts::lockout(conn, &typed, client.ip.as_deref(), &settings.lockout)?
        .is_some()
    {
        Reason::LockedOut
    } else if matches!(checked, SignInCheck::Failed(_)) {
        Reason::PasskeyFailed
    } else if !user.local_login_enabled {
        Reason::LocalLoginDisabled
    } else if user.suspension_in_force(now()) {
        Reason::Suspended
    } else if crate::sso::password_blocked(conn, user.id)? {
        Reason::SsoRequired
    } else if settings.require_verified_email && !user.email_verified {
        Reason::EmailUnverified
    } else {
        Reason::Success
    };
    if reason != Reason::Success {
        return refuse(conn, &user, client, reason, method);
    }
    let signed_in = crate::db::write_transaction::<_, CoreError, _>(conn, |conn| {
        open_session(
            conn,
            &user,
            client,
            settings,
            replaces,
            (Reason::Success, method),
        )
    })?;
    Ok(signed_in)
}

/// Checks a signed-in user's current password (blocking: one argon2 run).
pub fn verify_password(user: &User, password: &str) -> bool {
    passwords::verify(password, user.password_hash.as_deref())
}

/// Sets a new password (already hashed with [`passwords::hash`]) and ends every
/// other session of the user, and any pending reset link.
pub fn change_password(
    conn: &mut DbConnection,
    user_id: i64,
    new_hash: &str,
    keep_session: Option<i64>,
) -> CoreResult<usize> {
    set_password(
        conn,
        user_id,
        new_hash,
        keep_session,
        "user.password.change",
    )
}

/// [`change_password`] for a reset through the emailed link: every session
/// ends, and the audit row says `user.password.reset`.
pub fn reset_password(conn: &mut DbConnection, user_id: i64, new_hash: &str) -> CoreResult<usize> {
    set_password(conn, user_id, new_hash, None, "user.password.reset")
}

fn set_password(
    conn: &mut DbConnection,
    user_id: i64,
    new_hash: &str,
    keep_session: Option<i64>,
    action: &str,
) -> CoreResult<usize> {
    if passwords::needs_rehash(new_hash) {
        return Err(CoreError::Invalid {
            field: "password",
            reason: "not a current password hash".into(),
        });
    }
    crate::db::write_transaction(conn, |conn| {
        let t = now();
        let n = diesel::update(users::table.find(user_id))
            .set((
                users::password_hash.eq(Some(new_hash)),
                users::updated_at.eq(t),
            ))
            .execute(conn)?;
        if n == 0 {
            return Err(CoreError::NotFound("user"));
        }
        // Setting one's own password ends the pending state.
        user_store::activate(conn, user_id)?;
        let why = if keep_session.is_some() {
            sessions::reason::PASSWORD_CHANGED
        } else {
            sessions::reason::PASSWORD_RESET
        };
        let ended = sessions::revoke_all_for_user(conn, user_id, why, keep_session)?;
        diesel::update(password_resets::table)
            .filter(password_resets::user_id.eq(user_id))
            .filter(password_resets::used_at.is_null())
            .set(password_resets::used_at.eq(Some(t)))
            .execute(conn)?;
        let actor = Actor::user(user_id, None, Vec::new());
        audit::record(
            conn,
            &actor,
            action,
            &format!("user:{user_id}"),
            None,
            json!({"sessions_revoked": ended}),
        )?;
        Ok(ended)
    })
}
