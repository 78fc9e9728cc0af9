//! Password hashing: argon2id with the OWASP parameters (m = 19456 KiB, t = 2,
//! p = 1) as PHC strings. These calls are CPU-heavy and blocking: callers run
//! them off the async executor, with a cap on how many run at once.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::error::{CoreError, CoreResult};

/// The fewest characters a password may have.
pub const MIN_LEN: usize = 8;
/// The most characters a password may have; a longer one is refused, never
/// truncated.
pub const MAX_LEN: usize = 128;

/// The parameters new hashes are made with.
pub fn params() -> Params {
    Params::new(19_456, 2, 1, None).unwrap_or_default()
}

fn hasher(params: Params) -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Refuses passwords outside 8..=128 characters; a long one is never truncated.
pub fn check_policy(password: &str) -> CoreResult<()> {
    let n = password.chars().count();
    if n < MIN_LEN {
        return Err(CoreError::Invalid {
            field: "password",
            reason: format!("must be at least {MIN_LEN} characters"),
        });
    }
    if n > MAX_LEN {
        return Err(CoreError::TooLong {
            field: "password",
            max: MAX_LEN,
        });
    }
    Ok(())
}

/// Checks the password against [`check_policy`] and hashes it with
/// [`params`]; returns the PHC string to store. CPU-heavy: run it off the
/// async executor.
pub fn hash(password: &str) -> CoreResult<String> {
    check_policy(password)?;
    hash_with(password, params())
}

/// Hashes the password with `params`, without the length check (for tests,
/// benchmarks, and hashes made with other costs). Returns the PHC string.
pub fn hash_with(password: &str, params: Params) -> CoreResult<String> {
    let salt = SaltString::generate(&mut OsRng);
    hasher(params)
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| CoreError::Invalid {
            field: "password",
            reason: e.to_string(),
        })
}

/// Checks a password against a stored PHC string. A missing or malformed hash
/// is verified against a dummy hash, so the time taken does not tell.
pub fn verify(password: &str, stored: Option<&str>) -> bool {
    if password.chars().count() > MAX_LEN {
        // Still spend the time, so an over-long password is no shortcut.
        let _ = verify_phc(password.get(..MAX_LEN).unwrap_or(""), dummy_hash());
        return false;
    }
    match stored.filter(|s| PasswordHash::new(s).is_ok()) {
        Some(phc) => verify_phc(password, phc),
        None => {
            let _ = verify_phc(password, dummy_hash());
            false
        }
    }
}

thread_local! {
    static ARGON2_RUNS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    static ARGON2_TIME: std::cell::Cell<std::time::Duration> =
        const { std::cell::Cell::new(std::time::Duration::ZERO) };
}

/// How many argon2 verifications have run on the calling thread. Verification
/// is synchronous, so a caller can read this before and after a call and see
/// whether the expensive path was taken (the timing-safety tests do).
pub fn argon2_runs_on_this_thread() -> u64 {
    ARGON2_RUNS.with(|c| c.get())
}

/// How long the argon2 verifications on the calling thread have taken in all.
/// A bench reads it before and after a sign-in to time the rest of the
/// sign-in without the hash's cost and its noise.
pub fn argon2_time_on_this_thread() -> std::time::Duration {
    ARGON2_TIME.with(|c| c.get())
}

fn verify_phc(password: &str, phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    ARGON2_RUNS.with(|c| c.set(c.get() + 1));
    let start = std::time::Instant::now();
    // The parameters come from the PHC string itself.
    let ok = Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok();
    let took = start.elapsed();
    ARGON2_TIME.with(|c| c.set(c.get() + took));
    ok
}

/// True when a stored hash was made with other parameters (or another algorithm)
/// and should be replaced after a successful sign-in.
pub fn needs_rehash(stored: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(stored) else {
        return true;
    };
    if parsed.algorithm.as_str() != "argon2id" {
        return true;
    }
    match Params::try_from(&parsed) {
        Ok(p) => {
            let want = params();
            p.m_cost() != want.m_cost()
                || p.t_cost() != want.t_cost()
                || p.p_cost() != want.p_cost()
        }
        Err(_) => true,
    }
}

/// A fixed hash with the current parameters, for unknown accounts.
pub fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash_with("frontdesk-dummy-password", params()).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_with_owasp_parameters() {
        let h = hash("correct horse").expect("hash");
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify("correct horse", Some(&h)));
        assert!(!verify("wrong horse", Some(&h)));
        assert!(!verify("correct horse", None));
        assert!(!needs_rehash(&h));
    }

    #[test]
    fn old_parameters_ask_for_a_rehash() {
        let weak = Params::new(8_192, 1, 1, None).expect("params");
        let h = hash_with("correct horse", weak).expect("hash");
        assert!(verify("correct horse", Some(&h)));
        assert!(needs_rehash(&h));
    }

    #[test]
    fn length_is_8_to_128_and_never_truncated() {
        assert!(check_policy("short").is_err());
        assert!(check_policy(&"x".repeat(128)).is_ok());
        assert!(matches!(
            check_policy(&"x".repeat(129)),
            Err(CoreError::TooLong { .. })
        ));
        let h = hash(&"y".repeat(128)).expect("hash");
        assert!(!verify(&"y".repeat(129), Some(&h)));
    }
}
