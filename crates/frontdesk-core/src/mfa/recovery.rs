//! Recovery codes: ten single-use codes of 50 random bits each, shown once;
//! only their SHA-256 is kept. Making a new set ends the old one.

use diesel::dsl::count_star;
use diesel::prelude::*;
use rand::Rng;
use serde_json::json;

use crate::audit;
use crate::authz::Actor;
use crate::db::DbConnection;
use crate::error::CoreResult;
use crate::schema::mfa_recovery_codes;
use crate::time::now;
use crate::tokens::hash_token;

/// How many recovery codes a user gets at a time; a new set replaces the old.
pub const COUNT: usize = 10;
/// Lower-case letters and digits without the look-alikes 0/o, 1/l/i.
const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";

/// Codes as the user types them: case, spaces and dashes do not matter.
fn normalize(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

fn fresh_code() -> String {
    let mut rng = rand::rngs::OsRng;
    let chars: String = (0..10)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect();
    format!("{}-{}", &chars[..5], &chars[5..])
}

/// A new set for the user (the old one stops working); the codes are
/// returned to show once and never stored.
pub fn regenerate(conn: &mut DbConnection, user_id: i64) -> CoreResult<Vec<String>> {
    let codes: Vec<String> = (0..COUNT).map(|_| fresh_code()).collect();
    crate::db::write_transaction(conn, |conn| {
        diesel::delete(mfa_recovery_codes::table.filter(mfa_recovery_codes::user_id.eq(user_id)))
            .execute(conn)?;
        let at = now();
        for code in &codes {
            diesel::insert_into(mfa_recovery_codes::table)
                .values((
                    mfa_recovery_codes::user_id.eq(user_id),
                    mfa_recovery_codes::code_hash.eq(hash_token(&normalize(code))),
                    mfa_recovery_codes::created_at.eq(at),
                ))
                .execute(conn)?;
        }
        audit::record(
            conn,
            &Actor::user(user_id, None, vec![]),
            "user.mfa.recovery_codes",
            &format!("user:{user_id}"),
            None,
            json!({"count": COUNT}),
        )?;
        Ok(codes)
    })
}

/// Uses a code: true once per code (a conditional update, so two requests
/// with one code cannot both succeed).
pub fn redeem(conn: &mut DbConnection, user_id: i64, code: &str) -> CoreResult<bool> {
    let code = normalize(code);
    if code.is_empty() {
        return Ok(false);
    }
    let n = diesel::update(
        mfa_recovery_codes::table
            .filter(mfa_recovery_codes::user_id.eq(user_id))
            .filter(mfa_recovery_codes::code_hash.eq(hash_token(&code)))
            .filter(mfa_recovery_codes::used_at.is_null()),
    )
    .set(mfa_recovery_codes::used_at.eq(Some(now())))
    .execute(conn)?;
    Ok(n == 1)
}

/// How many unused codes the user has.
pub fn remaining(conn: &mut DbConnection, user_id: i64) -> CoreResult<i64> {
    Ok(mfa_recovery_codes::table
        .filter(mfa_recovery_codes::user_id.eq(user_id))
        .filter(mfa_recovery_codes::used_at.is_null())
        .select(count_star())
        .first(conn)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_have_fifty_bits_and_forgiving_input() {
        let a = fresh_code();
        assert_eq!(a.len(), 11);
        assert_eq!(&a[5..6], "-");
        assert!(normalize(&a).bytes().all(|b| ALPHABET.contains(&b)));
        // 31^10 > 2^49: the alphabet and length carry the bits claimed.
        assert!(31f64.powi(10) > 2f64.powi(49));
        assert_eq!(normalize(" ABCDE-fghjk "), "abcdefghjk");
        let many: std::collections::HashSet<String> = (0..1000).map(|_| fresh_code()).collect();
        assert_eq!(many.len(), 1000);
    }
}
