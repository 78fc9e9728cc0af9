//! Second factors after the password: authenticator apps ([`totp`]) and
//! recovery codes ([`recovery`]), the short-lived step between the password
//! and the second factor ([`challenges`]), and what admins see and do: the
//! factors of a user (never their secrets) and "Reset MFA".
//!
//! Secrets that must be read back are sealed ([`sealed`]) under a key
//! derived from the host's `secret_key`.

pub mod challenges;
pub mod passkeys;
pub mod policy;
pub mod recovery;
pub mod sealed;
pub mod totp;

use std::collections::HashSet;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::audit;
use crate::authz::{Action, Actor};
use crate::db::DbConnection;
use crate::error::{CoreError, CoreResult};
use crate::schema::{mfa_challenges, mfa_factors, mfa_recovery_codes};
use crate::validate;

/// The purpose TOTP seeds are sealed for.
pub const PURPOSE_TOTP: &str = "mfa-totp";

crate::authz::string_enum!(
    /// The kind of a second factor.
    Kind {
        /// An authenticator app's time-based codes.
        Totp => "totp",
        /// A passkey (WebAuthn).
        Passkey => "passkey",
    }
);

/// A factor as the user and admins see it: never its secret.
#[derive(Debug, Clone, Serialize, Queryable)]
pub struct Factor {
    /// The factor's id.
    pub id: i64,
    /// The [`Kind`]'s stored name: `totp` or `passkey`.
    pub kind: String,
    /// The name the user gave it.
    pub name: String,
    /// When it was added (UTC).
    pub created_at: NaiveDateTime,
    /// When it last passed a second step (UTC).
    pub last_used_at: Option<NaiveDateTime>,
}

/// A user's second factors at a glance.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Whether the user has any confirmed factor.
    pub enabled: bool,
    /// The user's factors.
    pub factors: Vec<Factor>,
    /// Unused recovery codes.
    pub recovery_codes_left: i64,
}

pub(crate) fn factor_name(name: &str, default: &str) -> CoreResult<String> {
    let name = name.trim();
    let name = if name.is_empty() { default } else { name };
    validate::text("factor name", name, 80)?;
    Ok(name.to_owned())
}

/// The user's confirmed factors, oldest first.
pub fn factors(conn: &mut DbConnection, user_id: i64) -> CoreResult<Vec<Factor>> {
    Ok(mfa_factors::table
        .filter(mfa_factors::user_id.eq(user_id))
        .filter(mfa_factors::confirmed_at.is_not_null())
        .order(mfa_factors::id)
        .select((
            mfa_factors::id,
            mfa_factors::kind,
            mfa_factors::name,
            mfa_factors::created_at,
            mfa_factors::last_used_at,
        ))
        .load(conn)?)
}

/// Factors and recovery codes left.
pub fn summary(conn: &mut DbConnection, user_id: i64) -> CoreResult<Summary> {
    let factors = factors(conn, user_id)?;
    Ok(Summary {
        enabled: !factors.is_empty(),
        recovery_codes_left: recovery::remaining(conn, user_id)?,
        factors,
    })
}

/// Whether the user has a confirmed factor (a second step at sign-in).
pub fn enabled(conn: &mut DbConnection, user_id: i64) -> CoreResult<bool> {
    Ok(diesel::select(diesel::dsl::exists(
        mfa_factors::table
            .filter(mfa_factors::user_id.eq(user_id))
            .filter(mfa_factors::confirmed_at.is_not_null()),
    ))
    .get_result(conn)?)
}

/// Which of `ids` have a confirmed factor, in one query (for lists).
pub fn enabled_among(conn: &mut DbConnection, ids: &[i64]) -> CoreResult<HashSet<i64>> {
    Ok(mfa_factors::table
        .filter(mfa_factors::user_id.eq_any(ids))
        .filter(mfa_factors::confirmed_at.is_not_null())
        .select(mfa_factors::user_id)
        .distinct()
        .load::<i64>(conn)?
        .into_iter()
        .collect())
}

fn clear(conn: &mut DbConnection, user_id: i64) -> CoreResult<usize> {
    let n = diesel::delete(mfa_factors::table.filter(mfa_factors::user_id.eq(user_id)))
        .execute(conn)?;
    diesel::delete(mfa_recovery_codes::table.filter(mfa_recovery_codes::user_id.eq(user_id)))
        .execute(conn)?;
    diesel::delete(mfa_challenges::table.filter(mfa_challenges::user_id.eq(user_id)))
        .execute(conn)?;
    Ok(n)
}

/// The user removes one of their own factors. Removing the last one also
/// drops the recovery codes (they belong to the second step, which is gone).
pub fn remove_own(conn: &mut DbConnection, user_id: i64, factor_id: i64) -> CoreResult<()> {
    crate::db::write_transaction(conn, |conn| {
        let kind: String = mfa_factors::table
            .filter(mfa_factors::id.eq(factor_id))
            .filter(mfa_factors::user_id.eq(user_id))
            .filter(mfa_factors::confirmed_at.is_not_null())
            .select(mfa_factors::kind)
            .first(conn)
            .optional()?
            .ok_or(CoreError::NotFound("factor"))?;
        diesel::delete(mfa_factors::table.filter(mfa_factors::id.eq(factor_id))).execute(conn)?;
        if !enabled(conn, user_id)? {
            clear(conn, user_id)?;
        }
        audit::record(
            conn,
            &Actor::user(user_id, None, vec![]),
            "user.mfa.remove",
            &format!("user:{user_id}"),
            None,
            json!({"kind": kind, "factor": factor_id}),
        )
    })
}

/// "Reset MFA": an admin who may edit the user removes every factor,
/// recovery code and pending second step, and ends the user's sessions.
/// An organization admin cannot reach a user outside their organizations
/// (`NotFound`, as for a missing id). Returns how many factors went.
pub fn reset(conn: &mut DbConnection, actor: &Actor, user_id: i64) -> CoreResult<usize> {
    crate::db::write_transaction(conn, |conn| {
        crate::users::get_for(conn, actor, user_id, Action::Edit)?;
        let removed = clear(conn, user_id)?;
        let ended = crate::sessions::revoke_all_for_user(conn, user_id, "mfa reset", None)?;
        audit::record(
            conn,
            actor,
            "user.mfa.reset",
            &format!("user:{user_id}"),
            None,
            json!({"factors_removed": removed, "sessions_revoked": ended}),
        )?;
        Ok(removed)
    })
}
