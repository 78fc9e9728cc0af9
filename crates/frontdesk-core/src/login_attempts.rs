//! Login attempts: one row per sign-in try, and the lockout computed from them.
//! Failures are counted per account (email) and per IP within a window; past a
//! threshold the wait grows with every further failure. Nothing is kept in
//! memory, so every instance sharing the database sees the same lockout.

use chrono::{Duration, NaiveDateTime};
use diesel::dsl::{count_star, max};
use diesel::prelude::*;
use diesel::sql_types::Bool;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::audit;
use crate::authz::{authorize, Action, Actor};
use crate::db::{Backend, DbConnection};
use crate::error::CoreResult;
use crate::schema::{login_attempts, memberships};
use crate::sessions::ClientInfo;
use crate::time::now;
use crate::users;

// The `reason` column. `LockoutCleared` is not a sign-in but the marker an
// admin's clearing leaves: failures before it no longer count.
crate::authz::string_enum!(Reason {
    Success => "success",
    UnknownEmail => "unknown_email",
    BadPassword => "bad_password",
    Suspended => "suspended",
    LocalLoginDisabled => "local_login_disabled",
    LockedOut => "locked_out",
    EmailUnverified => "email_unverified",
    LockoutCleared => "lockout_cleared",
    MfaRequired => "mfa_required",
    MfaFailed => "mfa_failed",
    MfaRecoveryCodeUsed => "mfa_recovery_code_used",
    PasskeyFailed => "passkey_failed",
    SsoRequired => "sso_required",
    SsoDenied => "sso_denied",
    SsoStateMismatch => "sso_state_mismatch",
    SsoTokenInvalid => "sso_token_invalid",
    SsoNoAccount => "sso_no_account",
    SsoLinkRequired => "sso_link_required",
});

// The `method` column: how the attempt tried to prove who it was.
crate::authz::string_enum!(Method {
    Password => "password",
    Totp => "totp",
    RecoveryCode => "recovery_code",
    Passkey => "passkey",
    Sso => "sso",
});

impl Reason {
    /// The attempt signed the user in (with a recovery code too).
    pub fn is_success(self) -> bool {
        matches!(self, Reason::Success | Reason::MfaRecoveryCodeUsed)
    }
}

/// Reasons that count towards a lockout.
const COUNTED: [&str; 4] = [
    "bad_password",
    "unknown_email",
    "mfa_failed",
    "passkey_failed",
];

/// When sign-in gets locked, and for how long.
#[derive(Debug, Clone, Copy)]
pub struct LockoutPolicy {
    /// Failures older than this are forgotten.
    pub window: Duration,
    /// Failures for one email within the window before it locks.
    pub account_threshold: u32,
    /// Failures from one IP (any email) within the window before it locks.
    pub ip_threshold: u32,
    /// The first wait; it doubles with each failure past the threshold.
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        LockoutPolicy {
            window: Duration::minutes(15),
            account_threshold: 5,
            ip_threshold: 50,
            base_delay: Duration::seconds(30),
            max_delay: Duration::minutes(15),
        }
    }
}

impl LockoutPolicy {
    /// The wait after `failures` failures, or `None` below the threshold.
    pub fn delay_for(&self, failures: i64, threshold: u32) -> Option<Duration> {
        if threshold == 0 || failures < i64::from(threshold) {
            return None;
        }
        let doublings = (failures - i64::from(threshold)).min(20) as u32;
        let delay = self
            .base_delay
            .checked_mul(1 << doublings)
            .unwrap_or(self.max_delay);
        Some(delay.min(self.max_delay))
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = login_attempts)]
pub struct LoginAttempt {
    pub id: i64,
    pub user_id: Option<i64>,
    pub email: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub success: bool,
    pub reason: String,
    pub created_at: NaiveDateTime,
    /// `password`, `totp`, `recovery_code` or `passkey` (none on rows that
    /// are no sign-in, and on rows older than the column).
    pub method: Option<String>,
}

/// Writes one attempt. `email` is stored as typed (trimmed, lower-cased, cut to 254).
pub fn record(
    conn: &mut DbConnection,
    user_id: Option<i64>,
    email: &str,
    client: &ClientInfo,
    reason: Reason,
) -> CoreResult<LoginAttempt> {
    record_method(conn, user_id, email, client, reason, None)
}

/// [`record`] with the method the attempt used.
pub fn record_method(
    conn: &mut DbConnection,
    user_id: Option<i64>,
    email: &str,
    client: &ClientInfo,
    reason: Reason,
    method: Option<Method>,
) -> CoreResult<LoginAttempt> {
    let client = client.sanitized();
    Ok(diesel::insert_into(login_attempts::table)
        .values((
            login_attempts::user_id.eq(user_id),
            login_attempts::email.eq(normalize(email)),
            login_attempts::ip.eq(client.ip),
            login_attempts::user_agent.eq(client.user_agent),
            login_attempts::success.eq(reason.is_success()),
            login_attempts::reason.eq(reason.as_str()),
            login_attempts::created_at.eq(now()),
            login_attempts::method.eq(method.map(Method::as_str)),
        ))
        .returning(login_attempts::all_columns)
        .get_result(conn)?)
}

/// The form lockouts are counted on: what the user typed, trimmed and lower-cased.
pub fn normalize(email: &str) -> String {
    email
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| !c.is_control())
        .take(254)
        .collect()
}

/// Why sign-in is refused right now, if it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lockout {
    pub until: NaiveDateTime,
    pub by_ip: bool,
}

/// The lockout in force at `at` for this email or IP, if any.
pub fn lockout_at(
    conn: &mut DbConnection,
    email: &str,
    ip: Option<&str>,
    policy: &LockoutPolicy,
    at: NaiveDateTime,
) -> CoreResult<Option<Lockout>> {
    let email = normalize(email);
    let window_start = at - policy.window;

    // A success or an admin's clearing starts the account count afresh: the
    // failures after the latest of them (within the window) are counted. The
    // account's count and the IP's are one statement (a round trip costs
    // more than either count on PostgreSQL), each row tagged with its scope.
    let resets = diesel::alias!(login_attempts as resets);
    let account_reset = resets
        .filter(resets.field(login_attempts::email).eq(email.clone()))
        .filter(resets.field(login_attempts::created_at).gt(window_start))
        .filter(
            resets.field(login_attempts::success).eq(true).or(resets
                .field(login_attempts::reason)
                .eq(Reason::LockoutCleared.as_str())),
        )
        .select(max(resets.field(login_attempts::created_at)))
        .single_value();
    let by_account = login_attempts::table
        .filter(login_attempts::email.eq(email.clone()))
        .filter(login_attempts::created_at.gt(coalesce(account_reset, window_start)))
        .filter(login_attempts::reason.eq_any(COUNTED))
        .select((
            false.into_sql::<Bool>(),
            count_star(),
            max(login_attempts::created_at),
        ));
    let counts: Vec<(bool, i64, Option<NaiveDateTime>)> = match ip.filter(|ip| !ip.is_empty()) {
        None => by_account.load(conn)?,
        Some(ip) => {
            let ip_reset = resets
                .filter(resets.field(login_attempts::ip).eq(ip.to_owned()))
                .filter(resets.field(login_attempts::email).eq(""))
                .filter(
                    resets
                        .field(login_attempts::reason)
                        .eq(Reason::LockoutCleared.as_str()),
                )
                .filter(resets.field(login_attempts::created_at).gt(window_start))
                .select(max(resets.field(login_attempts::created_at)))
                .single_value();
            let by_ip = login_attempts::table
                .filter(login_attempts::ip.eq(ip.to_owned()))
                .filter(login_attempts::created_at.gt(coalesce(ip_reset, window_start)))
                .filter(login_attempts::reason.eq_any(COUNTED))
                .select((
                    true.into_sql::<Bool>(),
                    count_star(),
                    max(login_attempts::created_at),
                ));
            // Diesel's connection over both backends has no UNION: each
            // backend's own connection runs it. Its SQL is fixed (the `IN`
            // list is the constant `COUNTED`), so its prepared form is kept.
            let both = crate::db::Cached(by_account.union_all(by_ip));
            match conn {
                DbConnection::Pg(c) => both.load(c)?,
                DbConnection::Sqlite(c) => both.load(c)?,
            }
        }
    };
    let mut found: Option<Lockout> = None;
    for (by_ip, n, last) in counts {
        let threshold = if by_ip {
            policy.ip_threshold
        } else {
            policy.account_threshold
        };
        if let Some(until) = locked(policy, n, last, threshold, at) {
            // The later of the two when both hold; the account's on a tie.
            if found.is_none_or(|f| until > f.until || (until == f.until && !by_ip)) {
                found = Some(Lockout { until, by_ip });
            }
        }
    }
    Ok(found)
}

diesel::define_sql_function! {
    /// The first time when there is one, else the second (the lockout's
    /// reset or the window's start; a user's first activation).
    fn coalesce(
        reset: diesel::sql_types::Nullable<diesel::sql_types::Timestamp>,
        otherwise: diesel::sql_types::Timestamp,
    ) -> diesel::sql_types::Timestamp;
}

fn locked(
    policy: &LockoutPolicy,
    n: i64,
    last: Option<NaiveDateTime>,
    threshold: u32,
    at: NaiveDateTime,
) -> Option<NaiveDateTime> {
    let until = last? + policy.delay_for(n, threshold)?;
    (until > at).then_some(until)
}

pub fn lockout(
    conn: &mut DbConnection,
    email: &str,
    ip: Option<&str>,
    policy: &LockoutPolicy,
) -> CoreResult<Option<Lockout>> {
    lockout_at(conn, email, ip, policy, now())
}

/// Lifts the account lockout of a user (the admin pages call this): failures
/// before now no longer count. Writes the marker row and an audit event.
pub fn clear_lockout(conn: &mut DbConnection, actor: &Actor, user_id: i64) -> CoreResult<()> {
    crate::db::write_transaction(conn, |conn| {
        let user = users::get_for(conn, actor, user_id, Action::Suspend)?;
        record(
            conn,
            Some(user.id),
            &user.email,
            &ClientInfo::default(),
            Reason::LockoutCleared,
        )?;
        audit::record(
            conn,
            actor,
            "user.lockout.clear",
            &format!("user:{user_id}"),
            None,
            json!({}),
        )?;
        Ok(())
    })
}

/// Lifts the lockout of one IP address (staff only).
pub fn clear_ip_lockout(conn: &mut DbConnection, actor: &Actor, ip: &str) -> CoreResult<()> {
    authorize(actor, Action::ManageSite, &crate::authz::Target::Site)?;
    let ip = crate::validate::text("ip", ip, 64)?;
    crate::db::write_transaction(conn, |conn| {
        let client = ClientInfo {
            ip: Some(ip.clone()),
            user_agent: None,
        };
        record(conn, None, "", &client, Reason::LockoutCleared)?;
        audit::record(
            conn,
            actor,
            "ip.lockout.clear",
            &format!("ip:{ip}"),
            None,
            json!({}),
        )?;
        Ok(())
    })
}

/// Filters for the attempts list.
#[derive(Debug, Clone, Default)]
pub struct AttemptFilter {
    pub user_id: Option<i64>,
    pub email: Option<String>,
    pub ip: Option<String>,
    pub success: Option<bool>,
    pub reason: Option<Reason>,
    /// Attempts at or after this time.
    pub from: Option<NaiveDateTime>,
    /// Attempts before this time.
    pub to: Option<NaiveDateTime>,
    /// Limit to users of these organizations (an org admin's view); `None` for all.
    pub organizations: Option<Vec<i64>>,
    /// Only the attempts of two-step sign-in: a second step asked for,
    /// refused or passed, a recovery code, a passkey.
    pub two_step: bool,
}

/// The reasons of the second step (and of passkeys on their own).
const TWO_STEP_REASONS: [&str; 4] = [
    "mfa_required",
    "mfa_failed",
    "mfa_recovery_code_used",
    "passkey_failed",
];

/// The methods that are a second factor or a passkey.
const TWO_STEP_METHODS: [&str; 3] = ["totp", "recovery_code", "passkey"];

/// [`list`] limited to the users of `scope` organizations when given.
pub fn list_scoped(
    conn: &mut DbConnection,
    filter: &AttemptFilter,
    scope: Option<&[i64]>,
    page: i64,
    limit: i64,
) -> CoreResult<(Vec<LoginAttempt>, i64)> {
    let filter = AttemptFilter {
        organizations: scope
            .map(<[i64]>::to_vec)
            .or_else(|| filter.organizations.clone()),
        ..filter.clone()
    };
    list(conn, &filter, page, limit)
}

/// Attempts, newest first, with the total count.
pub fn list(
    conn: &mut DbConnection,
    filter: &AttemptFilter,
    page: i64,
    limit: i64,
) -> CoreResult<(Vec<LoginAttempt>, i64)> {
    let build = || {
        let mut q = login_attempts::table.into_boxed::<Backend>();
        if let Some(u) = filter.user_id {
            q = q.filter(login_attempts::user_id.eq(u));
        }
        if let Some(e) = &filter.email {
            q = q.filter(login_attempts::email.eq(normalize(e)));
        }
        if let Some(ip) = &filter.ip {
            q = q.filter(login_attempts::ip.eq(ip.clone()));
        }
        if let Some(s) = filter.success {
            q = q.filter(login_attempts::success.eq(s));
        }
        if let Some(r) = filter.reason {
            q = q.filter(login_attempts::reason.eq(r.as_str()));
        }
        if let Some(from) = filter.from {
            q = q.filter(login_attempts::created_at.ge(from));
        }
        if let Some(to) = filter.to {
            q = q.filter(login_attempts::created_at.lt(to));
        }
        if filter.two_step {
            q = q.filter(
                login_attempts::reason
                    .eq_any(TWO_STEP_REASONS)
                    .or(login_attempts::method
                        .assume_not_null()
                        .eq_any(TWO_STEP_METHODS)),
            );
        }
        if let Some(orgs) = &filter.organizations {
            // Attempts on unknown emails belong to no organization.
            q = q.filter(
                login_attempts::user_id.assume_not_null().eq_any(
                    memberships::table
                        .select(memberships::user_id)
                        .filter(memberships::organization_id.eq_any(orgs.clone())),
                ),
            );
        }
        q
    };
    let total = build().count().get_result(conn)?;
    let rows = build()
        .order((login_attempts::created_at.desc(), login_attempts::id.desc()))
        .limit(limit.clamp(1, 100))
        .offset((page.max(1) - 1) * limit.clamp(1, 100))
        .select(LoginAttempt::as_select())
        .load(conn)?;
    Ok((rows, total))
}
