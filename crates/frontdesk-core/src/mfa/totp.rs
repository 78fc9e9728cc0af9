//! Authenticator apps (RFC 6238: HMAC-SHA1, 6 digits, 30-second steps, one
//! step of clock skew either way). The seed is 160 random bits, sealed at
//! rest; a factor counts once a first code confirms it; each accepted code
//! moves the factor's `last_step` forward through a conditional update, so a
//! code (or an older one) is accepted once even by two requests at once.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use rand::RngCore;
use serde_json::json;
use totp_rs::{Algorithm, TOTP};

use super::sealed::SecretBox;
use super::Kind;
use crate::audit;
use crate::authz::Actor;
use crate::db::{Cached, DbConnection};
use crate::error::{CoreError, CoreResult};
use crate::schema::mfa_factors;
use crate::time::now;
use crate::users::User;

pub(crate) const DIGITS: usize = 6;
pub(crate) const STEP_SECONDS: u64 = 30;
/// Steps accepted either side of the current one.
pub const SKEW: i64 = 1;

/// What the user needs to add the factor to an app: shown once, on the
/// enrolment page only. `Debug` hides the secret.
pub struct Enrolment {
    /// The new factor's id, unconfirmed until the user enters a first code.
    pub factor_id: i64,
    /// The seed in base32, for typing into an app.
    pub secret_base32: String,
    /// `otpauth://totp/...`, for the QR code.
    pub otpauth_url: String,
}

impl std::fmt::Debug for Enrolment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enrolment")
            .field("factor_id", &self.factor_id)
            .finish_non_exhaustive()
    }
}

fn context(user_id: i64) -> String {
    format!("totp:{user_id}")
}

fn generator(seed: Vec<u8>, issuer: &str, account: &str) -> TOTP {
    // The otpauth label may not hold ':' (it separates issuer and account).
    TOTP::new_unchecked(
        Algorithm::SHA1,
        DIGITS,
        1,
        STEP_SECONDS,
        seed,
        Some(issuer.replace(':', " ")),
        account.replace(':', " "),
    )
}

/// The time step of `at`.
pub fn step_at(at: NaiveDateTime) -> i64 {
    at.and_utc().timestamp().div_euclid(STEP_SECONDS as i64)
}

/// The step within the allowed skew of `at` whose code `code` is, if any.
pub fn matching_step(seed: &[u8], code: &str, at: NaiveDateTime) -> Option<i64> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let totp = generator(seed.to_vec(), "", "");
    let now_step = step_at(at);
    let mut found = None;
    // Every candidate is computed and compared in constant time.
    for step in (now_step - SKEW)..=(now_step + SKEW) {
        if step < 0 {
            continue;
        }
        let expected = totp.generate(step as u64 * STEP_SECONDS);
        if constant_time_eq(expected.as_bytes(), code.as_bytes()) && found.is_none() {
            found = Some(step);
        }
    }
    found
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Starts adding an authenticator app: a new unconfirmed factor (any earlier
/// unconfirmed one of the user is dropped).
pub fn begin(
    conn: &mut DbConnection,
    keys: &SecretBox,
    user: &User,
    issuer: &str,
    name: &str,
) -> CoreResult<Enrolment> {
    let name = super::factor_name(name, "Authenticator app")?;
    let mut seed = vec![0u8; 20];
    rand::rngs::OsRng.fill_bytes(&mut seed);
    let sealed = keys.seal(&context(user.id), &seed);
    let totp = generator(seed, issuer, &user.email);
    let factor_id = crate::db::write_transaction(conn, |conn| {
        diesel::delete(
            mfa_factors::table
                .filter(mfa_factors::user_id.eq(user.id))
                .filter(mfa_factors::kind.eq(Kind::Totp.as_str()))
                .filter(mfa_factors::confirmed_at.is_null()),
        )
        .execute(conn)?;
        diesel::insert_into(mfa_factors::table)
            .values((
                mfa_factors::user_id.eq(user.id),
                mfa_factors::kind.eq(Kind::Totp.as_str()),
                mfa_factors::name.eq(&name),
                mfa_factors::secret.eq(Some(&sealed)),
                mfa_factors::created_at.eq(now()),
            ))
            .execute(conn)?;
        mfa_factors::table
            .filter(mfa_factors::user_id.eq(user.id))
            .filter(mfa_factors::confirmed_at.is_null())
            .filter(mfa_factors::kind.eq(Kind::Totp.as_str()))
            .select(mfa_factors::id)
            .order(mfa_factors::id.desc())
            .first::<i64>(conn)
            .map_err(CoreError::from)
    })?;
    Ok(Enrolment {
        factor_id,
        secret_base32: totp.get_secret_base32(),
        otpauth_url: totp.get_url(),
    })
}

/// The enrolment of a factor not yet confirmed, shown again (after a wrong
/// first code).
pub fn pending(
    conn: &mut DbConnection,
    keys: &SecretBox,
    user: &User,
    factor_id: i64,
    issuer: &str,
) -> CoreResult<Enrolment> {
    let sealed: Option<String> = mfa_factors::table
        .filter(mfa_factors::id.eq(factor_id))
        .filter(mfa_factors::user_id.eq(user.id))
        .filter(mfa_factors::kind.eq(Kind::Totp.as_str()))
        .filter(mfa_factors::confirmed_at.is_null())
        .select(mfa_factors::secret)
        .first(conn)
        .optional()?
        .ok_or(CoreError::NotFound("authenticator app"))?;
    let seed = seed_of(keys, user.id, sealed.as_deref())?;
    let totp = generator(seed, issuer, &user.email);
    Ok(Enrolment {
        factor_id,
        secret_base32: totp.get_secret_base32(),
        otpauth_url: totp.get_url(),
    })
}

fn seed_of(keys: &SecretBox, user_id: i64, sealed: Option<&str>) -> CoreResult<Vec<u8>> {
    let sealed = sealed.ok_or(CoreError::NotFound("authenticator app"))?;
    keys.open(&context(user_id), sealed)
}

/// Moves the factor to `step` unless it already accepted that step or a
/// later one; true when this call did.
fn advance(conn: &mut DbConnection, factor_id: i64, step: i64, confirm: bool) -> CoreResult<bool> {
    let at = now();
    let target = mfa_factors::table
        .filter(mfa_factors::id.eq(factor_id))
        .filter(
            mfa_factors::last_step
                .is_null()
                .or(mfa_factors::last_step.lt(step)),
        );
    let n = if confirm {
        Cached(
            diesel::update(target.filter(mfa_factors::confirmed_at.is_null()))
                .set((
                    mfa_factors::last_step.eq(Some(step)),
                    mfa_factors::last_used_at.eq(Some(at)),
                    mfa_factors::confirmed_at.eq(Some(at)),
                ))
                .returning(mfa_factors::id),
        )
        .load::<i64>(conn)?
        .len()
    } else {
        Cached(
            diesel::update(target.filter(mfa_factors::confirmed_at.is_not_null()))
                .set((
                    mfa_factors::last_step.eq(Some(step)),
                    mfa_factors::last_used_at.eq(Some(at)),
                ))
                .returning(mfa_factors::id),
        )
        .load::<i64>(conn)?
        .len()
    };
    Ok(n == 1)
}

/// Confirms an enrolment with a first code; only then does the factor count.
/// A wrong code is `Invalid` and changes nothing.
pub fn confirm(
    conn: &mut DbConnection,
    keys: &SecretBox,
    user: &User,
    factor_id: i64,
    code: &str,
) -> CoreResult<()> {
    crate::db::write_transaction(conn, |conn| {
        let (sealed, confirmed) = mfa_factors::table
            .filter(mfa_factors::id.eq(factor_id))
            .filter(mfa_factors::user_id.eq(user.id))
            .filter(mfa_factors::kind.eq(Kind::Totp.as_str()))
            .select((mfa_factors::secret, mfa_factors::confirmed_at))
            .first::<(Option<String>, Option<NaiveDateTime>)>(conn)
            .optional()?
            .ok_or(CoreError::NotFound("authenticator app"))?;
        if confirmed.is_some() {
            return Err(CoreError::Invalid {
                field: "code",
                reason: "this authenticator app is already confirmed".into(),
            });
        }
        let seed = seed_of(keys, user.id, sealed.as_deref())?;
        let wrong = || CoreError::Invalid {
            field: "code",
            reason: "the code is not right; check the app's clock and try the next code".into(),
        };
        let step = matching_step(&seed, code, now()).ok_or_else(wrong)?;
        if !advance(conn, factor_id, step, true)? {
            return Err(wrong());
        }
        audit::record(
            conn,
            &Actor::user(user.id, None, vec![]),
            "user.mfa.add",
            &format!("user:{}", user.id),
            None,
            json!({"kind": Kind::Totp.as_str(), "factor": factor_id}),
        )
    })
}

/// The apps among `apps` (sealed, as [`super::challenges::find_pending`]
/// reads them) whose seed gives `code` within the window around `at`: each
/// app's id and the step the code is for. Whether the step was taken before
/// is for the database to say (the app's `last_step`, moved in one
/// conditional update).
pub(crate) fn matching_apps(
    keys: &SecretBox,
    user_id: i64,
    code: &str,
    apps: &[super::challenges::SealedApp],
    at: NaiveDateTime,
) -> CoreResult<Vec<(i64, i64)>> {
    let mut found = Vec::new();
    for (id, sealed) in apps {
        let seed = seed_of(keys, user_id, sealed.as_deref())?;
        if let Some(step) = matching_step(&seed, code, at) {
            found.push((*id, step));
        }
    }
    Ok(found)
}

/// What a code did at the second step of a sign-in
/// ([`verify_second_step`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SecondStep {
    /// No app took it (wrong, replayed, or no app): nothing changed.
    Refused,
    /// An app took it and the challenge is now used.
    Used,
    /// An app took it, but the challenge was used or ran out meanwhile: the
    /// caller rolls back (the app's step with it).
    ChallengeGone,
}

/// The second step's code check against the user's confirmed authenticator
/// `apps` (read with the challenge,
/// [`super::challenges::find_pending`]), each code taken once; a
/// code an app takes also uses the challenge. On PostgreSQL the app's step and the
/// challenge are one statement (a data-modifying `WITH`); the challenge is
/// used only if the app took the code, so a refused code leaves it live (the
/// caller counts the failure). Inside the caller's transaction.
pub(crate) fn verify_second_step(
    conn: &mut DbConnection,
    keys: &SecretBox,
    user_id: i64,
    code: &str,
    apps: &[super::challenges::SealedApp],
    challenge_id: i64,
) -> CoreResult<SecondStep> {
    let at = now();
    for (id, step) in matching_apps(keys, user_id, code, apps, at)? {
        let (advanced, used) = match conn {
            #[cfg(feature = "postgres")]
            DbConnection::Pg(pg) => {
                use diesel::sql_types::{BigInt, Integer, Timestamp};
                #[derive(QueryableByName)]
                struct Done {
                    #[diesel(sql_type = BigInt)]
                    advanced: i64,
                    #[diesel(sql_type = BigInt)]
                    used: i64,
                }
                let done: Vec<Done> = Cached(
                    diesel::sql_query(
                        "WITH app AS (\
                           UPDATE mfa_factors SET last_step = $1, last_used_at = $2 \
                           WHERE id = $3 AND confirmed_at IS NOT NULL \
                             AND (last_step IS NULL OR last_step < $1) \
                           RETURNING id), \
                         used AS (\
                           UPDATE mfa_challenges SET used_at = $2 \
                           WHERE id = $4 AND used_at IS NULL AND expires_at > $2 \
                             AND failures < $5 AND EXISTS (SELECT 1 FROM app) \
                           RETURNING id) \
                         SELECT (SELECT COUNT(*) FROM app) AS advanced, \
                                (SELECT COUNT(*) FROM used) AS used",
                    )
                    .bind::<BigInt, _>(step)
                    .bind::<Timestamp, _>(at)
                    .bind::<BigInt, _>(id)
                    .bind::<BigInt, _>(challenge_id)
                    .bind::<Integer, _>(super::challenges::MAX_FAILURES),
                )
                .load(pg)?;
                let done = done.first().ok_or(CoreError::NotFound("second step"))?;
                (done.advanced == 1, done.used == 1)
            }
            #[cfg(feature = "sqlite")]
            DbConnection::Sqlite(_) => {
                if !advance(conn, id, step, false)? {
                    (false, false)
                } else {
                    (true, super::challenges::consume(conn, challenge_id)?)
                }
            }
        };
        match (advanced, used) {
            (false, _) => continue,
            (true, true) => return Ok(SecondStep::Used),
            (true, false) => return Ok(SecondStep::ChallengeGone),
        }
    }
    Ok(SecondStep::Refused)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;

    fn at(secs: i64) -> NaiveDateTime {
        DateTime::from_timestamp(secs, 0).expect("ok").naive_utc()
    }

    /// RFC 6238 appendix B, SHA-1 rows (seed "12345678901234567890"), cut to
    /// six digits: an independent check of the generator and of the steps.
    #[test]
    fn rfc6238_test_vectors() {
        let seed = b"12345678901234567890";
        let rows: [(i64, &str); 6] = [
            (59, "94287082"),
            (1111111109, "07081804"),
            (1111111111, "14050471"),
            (1234567890, "89005924"),
            (2000000000, "69279037"),
            (20000000000, "65353130"),
        ];
        for (secs, eight) in rows {
            let six = &eight[2..];
            assert_eq!(
                matching_step(seed, six, at(secs)),
                Some(secs / 30),
                "time {secs}"
            );
        }
    }

    #[test]
    fn window_edges_and_malformed_codes() {
        let seed = b"12345678901234567890";
        // The code of step 1111111111/30 = 37037037.
        let code = "050471";
        let step = 1111111111 / 30;
        // One step before and after still match the same step; two do not.
        assert_eq!(matching_step(seed, code, at((step - 1) * 30)), Some(step));
        assert_eq!(
            matching_step(seed, code, at((step + 1) * 30 + 29)),
            Some(step)
        );
        assert_eq!(matching_step(seed, code, at((step + 2) * 30)), None);
        assert_eq!(matching_step(seed, code, at((step - 2) * 30 + 29)), None);
        assert_eq!(matching_step(seed, "050 471", at(step * 30)), Some(step));
        for bad in ["", "05047", "0504711", "05047a", "-50471"] {
            assert_eq!(matching_step(seed, bad, at(step * 30)), None, "{bad:?}");
        }
    }
}
