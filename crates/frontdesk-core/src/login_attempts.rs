//! Login attempts: one row per sign-in try, and the lockout computed from them.
//! Failures are counted per account (email) and per IP within a window; past a
//! threshold the wait grows with every further failure. Nothing is kept in
//! memory, so every instance sharing the database sees the same lockout.

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Timestamp};
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

crate::authz::string_enum!(
    /// How a sign-in attempt ended: the `reason` column. `LockoutCleared` is
    /// not a sign-in but the marker an admin's clearing leaves: failures
    /// before it no longer count.
    Reason {
        /// The user signed in.
        Success => "success",
        /// No account has this email.
        UnknownEmail => "unknown_email",
        /// The password was wrong.
        BadPassword => "bad_password",
        /// The account is suspended.
        Suspended => "suspended",
        /// The account may not sign in with a password.
        LocalLoginDisabled => "local_login_disabled",
        /// Too many recent failures: the account is locked for a while.
        LockedOut => "locked_out",
        /// The site requires a verified email and this one is not.
        EmailUnverified => "email_unverified",
        /// An admin cleared the lockout (not a sign-in).
        LockoutCleared => "lockout_cleared",
        /// The password was right; the second step is still to come.
        MfaRequired => "mfa_required",
        /// The second step's code was wrong.
        MfaFailed => "mfa_failed",
        /// The user signed in with a recovery code as the second step.
        MfaRecoveryCodeUsed => "mfa_recovery_code_used",
        /// A passkey did not verify, or is not the user's.
        PasskeyFailed => "passkey_failed",
        /// The user must sign in through their organization's single sign-on.
        SsoRequired => "sso_required",
        /// The identity provider refused, or the user cancelled there.
        SsoDenied => "sso_denied",
        /// The provider's answer did not match the sign-in it started.
        SsoStateMismatch => "sso_state_mismatch",
        /// The provider's token did not verify.
        SsoTokenInvalid => "sso_token_invalid",
        /// No account matches the identity, and none may be created for it.
        SsoNoAccount => "sso_no_account",
        /// An account has the email but is not linked to this provider yet.
        SsoLinkRequired => "sso_link_required",
    }
);

crate::authz::string_enum!(
    /// How a sign-in attempt tried to prove who it was: the `method` column.
    Method {
        /// An email and password.
        Password => "password",
        /// A code from an authenticator app.
        Totp => "totp",
        /// A one-time recovery code.
        RecoveryCode => "recovery_code",
        /// A passkey.
        Passkey => "passkey",
        /// Single sign-on through an identity provider.
        Sso => "sso",
    }
);

impl Reason {
    /// The attempt signed the user in (with a recovery code too).
    pub fn is_success(self) -> bool {
        matches!(self, Reason::Success | Reason::MfaRecoveryCodeUsed)
    }
}

/// The attempts that count towards a lockout: `reason IN (…)` with the
/// reasons written out rather than bound, so that the partial indexes
/// `login_attempts_{email,ip}_counted` (whose predicate is this same list)
/// can be proved to hold by the planners of both backends, for every
/// execution of the prepared statement. A bound list cannot be: PostgreSQL's
/// generic plan and SQLite never see its values.
const COUNTED_SQL: &str =
    "a.reason IN ('bad_password', 'unknown_email', 'mfa_failed', 'passkey_failed')";

/// An admin's clearing of a lockout, in the resets' subquery (`r`), written
/// out for the partial index `login_attempts_ip_cleared` (as `COUNTED_SQL`).
const CLEARED_SQL: &str = "r.reason = 'lockout_cleared'";

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
    /// The longest wait, however many failures.
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

/// One sign-in attempt, as stored.
#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = login_attempts)]
pub struct LoginAttempt {
    /// The attempt's id.
    pub id: i64,
    /// The account the email names, if any.
    pub user_id: Option<i64>,
    /// The email as typed (trimmed, lower-cased, at most 254 characters).
    pub email: String,
    /// The client's IP address.
    pub ip: Option<String>,
    /// The client's user agent.
    pub user_agent: Option<String>,
    /// Whether the user signed in.
    pub success: bool,
    /// The [`Reason`]'s stored name.
    pub reason: String,
    /// When it happened (UTC).
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
    /// When sign-in is allowed again (UTC).
    pub until: NaiveDateTime,
    /// True when the IP is locked (too many failures from it), false when the
    /// account is.
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
    use diesel::sql_types::Text;
    let ip = ip.filter(|ip| !ip.is_empty());
    let sql = format!("SELECT {}", counts_sql("$2", ip.map(|_| "$3"), "$1"));
    let query = diesel::sql_query(crate::db::numbered_placeholders(conn, &sql))
        .bind::<Timestamp, _>(at - policy.window)
        .bind::<Text, _>(normalize(email));
    // Its SQL is one of two fixed texts, so its prepared form is kept.
    let counts: Counts = match ip {
        Some(ip) => crate::db::Cached(query.bind::<Text, _>(ip.to_owned())).get_result(conn)?,
        None => crate::db::Cached(query).get_result(conn)?,
    };
    Ok(counts.lockout(policy, at))
}

/// The four columns [`counts_sql`] selects: the failures that count for the
/// account and for the IP within the window, and the latest of each.
#[derive(Debug, Clone, Copy, diesel::QueryableByName)]
pub(crate) struct Counts {
    #[diesel(sql_type = BigInt)]
    account_failures: i64,
    #[diesel(sql_type = Nullable<Timestamp>)]
    account_last: Option<NaiveDateTime>,
    #[diesel(sql_type = BigInt)]
    ip_failures: i64,
    #[diesel(sql_type = Nullable<Timestamp>)]
    ip_last: Option<NaiveDateTime>,
}

impl Counts {
    /// The lockout these counts put in force at `at`: the later of the
    /// account's and the IP's when both hold, the account's on a tie.
    pub(crate) fn lockout(&self, policy: &LockoutPolicy, at: NaiveDateTime) -> Option<Lockout> {
        let account = locked(
            policy,
            self.account_failures,
            self.account_last,
            policy.account_threshold,
            at,
        )
        .map(|until| Lockout {
            until,
            by_ip: false,
        });
        let by_ip = locked(
            policy,
            self.ip_failures,
            self.ip_last,
            policy.ip_threshold,
            at,
        )
        .map(|until| Lockout { until, by_ip: true });
        match (account, by_ip) {
            (Some(a), Some(i)) if i.until > a.until => Some(i),
            (Some(a), _) => Some(a),
            (None, i) => i,
        }
    }
}

/// The lockout's counts as the four columns of [`Counts`], for a statement
/// of its own or as part of another one (the second step reads them with
/// its challenge, keyed by the user's email column). `email`, `ip` and
/// `since` are SQL: placeholders or columns of the enclosing statement;
/// without an IP its count is 0.
///
/// A success or an admin's clearing starts the account count afresh: the
/// failures after the latest of them (within the window) are counted; an
/// admin's clearing of an IP (a row with an empty email) does the same for
/// the IP. Each count reads only counted rows, through the partial indexes
/// whose predicates are [`COUNTED_SQL`] and [`CLEARED_SQL`]. Four scalar
/// subqueries rather than a `UNION`: they fit in the select list of any
/// statement, and each is an index probe.
pub(crate) fn counts_sql(email: &str, ip: Option<&str>, since: &str) -> String {
    let counted = |what: &str, scope: &str, resets: &str| {
        format!(
            "(SELECT {what} FROM login_attempts a WHERE {scope} \
             AND a.created_at > COALESCE((SELECT MAX(r.created_at) FROM login_attempts r \
             WHERE {resets} AND r.created_at > {since}), {since}) AND {COUNTED_SQL})"
        )
    };
    let account_scope = format!("a.email = {email}");
    let account_resets = format!("r.email = {email} AND (r.success OR {CLEARED_SQL})");
    let account = format!(
        "{} AS account_failures, {} AS account_last",
        counted("COUNT(*)", &account_scope, &account_resets),
        counted("MAX(a.created_at)", &account_scope, &account_resets),
    );
    let ip = match ip {
        None => "CAST(0 AS BIGINT) AS ip_failures, CAST(NULL AS TIMESTAMP) AS ip_last".to_owned(),
        Some(ip) => {
            let scope = format!("a.ip = {ip}");
            let resets = format!("r.ip = {ip} AND r.email = '' AND {CLEARED_SQL}");
            format!(
                "{} AS ip_failures, {} AS ip_last",
                counted("COUNT(*)", &scope, &resets),
                counted("MAX(a.created_at)", &scope, &resets),
            )
        }
    };
    format!("{account}, {ip}")
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

/// The lockout in force now for this email or IP, if any.
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
    /// Only attempts on this account.
    pub user_id: Option<i64>,
    /// Only attempts with this email.
    pub email: Option<String>,
    /// Only attempts from this IP address.
    pub ip: Option<String>,
    /// Only successful (`true`) or failed (`false`) attempts.
    pub success: Option<bool>,
    /// Only attempts with this reason.
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The list inside `reason IN (…)` / after `reason =`, as written.
    fn predicate(sql: &str) -> &str {
        let at = sql.find("reason").expect("a reason predicate");
        sql[at + "reason".len()..]
            .trim_start_matches('"')
            .trim()
            .trim_end_matches(';')
    }

    #[test]
    fn the_counted_reasons_are_the_failures_and_the_indexes_say_the_same() {
        let failures = [
            Reason::BadPassword,
            Reason::UnknownEmail,
            Reason::MfaFailed,
            Reason::PasskeyFailed,
        ];
        let list = predicate(COUNTED_SQL);
        let quoted: Vec<String> = failures
            .iter()
            .map(|r| format!("'{}'", r.as_str()))
            .collect();
        assert_eq!(list, format!("IN ({})", quoted.join(", ")));
        assert_eq!(
            predicate(CLEARED_SQL),
            format!("= '{}'", Reason::LockoutCleared.as_str())
        );
        for up in [
            include_str!("../migrations/postgres/2026-12-10-000100_login_attempts_counted/up.sql"),
            include_str!("../migrations/sqlite/2026-12-10-000100_login_attempts_counted/up.sql"),
        ] {
            let wheres: Vec<&str> = up
                .split("CREATE INDEX")
                .skip(1)
                .map(|index| predicate(&index[index.find("WHERE").expect("a partial index")..]))
                .collect();
            assert_eq!(wheres, [list, list, predicate(CLEARED_SQL)]);
        }
    }
}
