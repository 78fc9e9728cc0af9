//! Users: create, read, edit, suspend, restore, delete, local login and staff
//! roles. Every change is authorized by `authz` and recorded by `audit`.

pub mod bulk;
pub mod condition;
pub mod counts;
pub mod create;
pub mod query;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::audit;
use crate::authz::{authorize, Action, Actor, OrgRole, StaffRole, Target};
use crate::db::{DbConnection, LoadOne};
use crate::error::{CoreError, CoreResult};
use crate::organizations;
use crate::schema::{memberships, users};
use crate::sessions;
use crate::time::now;
use crate::validate::{self, MAX_NAME, MAX_TEXT};

crate::authz::string_enum!(
    /// The account status as admins read it. Only `active` and `suspended`
    /// are stored (`users.status`); `pending` is derived: an active user who
    /// has not yet acted themselves (no `activated_at`: never signed in nor
    /// set their own password). A partial index covers the pending slice. A
    /// suspended user cannot sign in; a pending one can, and becomes active
    /// by doing so.
    UserStatus {
        /// Active, but has never signed in nor set their own password.
        Pending => "pending",
        /// May sign in.
        Active => "active",
        /// May not sign in until restored.
        Suspended => "suspended",
    }
);

/// A user row, as stored. Sensitive columns (`password_hash`,
/// `search_text`) are never serialized.
#[derive(Clone, Queryable, QueryableByName, Selectable, Serialize)]
#[diesel(table_name = users)]
pub struct User {
    /// The user's id.
    pub id: i64,
    /// The email address, lower-cased and unique.
    pub email: String,
    /// Whether the email address counts as verified.
    pub email_verified: bool,
    /// The first name; may be empty.
    pub first_name: String,
    /// The last name; may be empty.
    pub last_name: String,
    /// The name to show instead of first and last name, if set.
    pub display_name: Option<String>,
    /// The Argon2 hash of the password (PHC string); `None` for users without one.
    #[serde(skip)]
    pub password_hash: Option<String>,
    /// Whether the user may sign in with a password.
    pub local_login_enabled: bool,
    /// The staff role's stored name; [`User::staff_role`] parses it.
    pub staff_role: Option<String>,
    /// The stored status: `active` or `suspended` (see [`UserStatus`]).
    pub status: String,
    /// The reason an admin gave for the suspension.
    pub suspended_reason: Option<String>,
    /// When the user was suspended.
    pub suspended_at: Option<NaiveDateTime>,
    /// Host-defined profile fields, as a JSON object in text;
    /// [`User::profile_map`] parses it.
    pub profile: String,
    /// The lower-cased text free-text search runs over (see [`search_text`]).
    #[serde(skip)]
    pub search_text: String,
    /// When the user was created (UTC).
    pub created_at: NaiveDateTime,
    /// When the row last changed (UTC).
    pub updated_at: NaiveDateTime,
    /// When the user last signed in (UTC), if ever.
    pub last_login_at: Option<NaiveDateTime>,
    /// When the user was last seen active (UTC), if ever.
    pub last_active_at: Option<NaiveDateTime>,
    /// When a suspension ends by itself (none: until an admin restores).
    pub suspended_until: Option<NaiveDateTime>,
    /// When the user first acted themselves (signed in, or set their own
    /// password); none while the account is pending.
    pub activated_at: Option<NaiveDateTime>,
    /// The version of the host's terms the user accepted at sign-up, and when.
    pub terms_version: Option<String>,
    /// When the user accepted the terms (UTC).
    pub terms_accepted_at: Option<NaiveDateTime>,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("email", &self.email)
            .field("status", &self.status)
            .field("staff_role", &self.staff_role)
            .finish_non_exhaustive()
    }
}

impl User {
    /// The user's staff role, or `None` when they are not staff.
    pub fn staff_role(&self) -> Option<StaffRole> {
        self.staff_role.as_deref().and_then(StaffRole::parse)
    }

    /// Pending, active or suspended, as the admin pages and the API show it.
    pub fn account_status(&self) -> UserStatus {
        if self.is_suspended() {
            UserStatus::Suspended
        } else if self.activated_at.is_none() {
            UserStatus::Pending
        } else {
            UserStatus::Active
        }
    }

    /// Whether the stored status is suspended, even if the suspension's end
    /// date has passed (see [`User::suspension_in_force`]).
    pub fn is_suspended(&self) -> bool {
        self.status == UserStatus::Suspended.as_str()
    }

    /// Suspended, and not past the suspension's end date: what keeps a user
    /// from signing in or resetting their password.
    pub fn suspension_in_force(&self, at: NaiveDateTime) -> bool {
        self.is_suspended() && !self.suspension_ended(at)
    }

    /// A suspension whose end date has passed: the user is restored at their
    /// next sign-in or by the next sweep ([`restore_ended_suspensions`]).
    pub fn suspension_ended(&self, at: NaiveDateTime) -> bool {
        self.is_suspended() && self.suspended_until.is_some_and(|u| u <= at)
    }

    /// Host-defined profile fields.
    pub fn profile_map(&self) -> Map<String, Value> {
        serde_json::from_str(&self.profile).unwrap_or_default()
    }

    /// The name to show: display name, else first and last name, else the email.
    pub fn name(&self) -> String {
        if let Some(d) = self.display_name.as_deref().filter(|d| !d.is_empty()) {
            return d.to_owned();
        }
        let full = format!("{} {}", self.first_name, self.last_name)
            .trim()
            .to_owned();
        if full.is_empty() {
            self.email.clone()
        } else {
            full
        }
    }
}

/// A user to create.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct NewUser {
    /// The email address; it is trimmed, lower-cased and checked.
    pub email: String,
    /// The first name; may be empty.
    #[serde(default)]
    pub first_name: String,
    /// The last name; may be empty.
    #[serde(default)]
    pub last_name: String,
    /// The name to show instead of first and last name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// An Argon2 hash made with [`crate::passwords::hash`]; `None` leaves the
    /// user without a password.
    #[serde(skip)]
    pub password_hash: Option<String>,
    /// Whether the address counts as verified from the start.
    #[serde(default)]
    pub email_verified: bool,
    /// A staff role to give; the actor must be allowed to give staff roles.
    #[serde(default)]
    pub staff_role: Option<StaffRole>,
    /// Host-defined profile fields.
    #[serde(default)]
    pub profile: Map<String, Value>,
    /// Membership to create with the user.
    #[serde(default)]
    pub organization: Option<(i64, OrgRole)>,
    /// The user chose their own password (sign-up, invitation acceptance):
    /// the account starts active rather than pending.
    #[serde(skip)]
    pub activated: bool,
    /// Consent given at sign-up: the terms' version (the time is now).
    #[serde(skip)]
    pub terms_version: Option<String>,
}

/// Fields an admin may change; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct UserUpdate {
    /// The new first name.
    pub first_name: Option<String>,
    /// The new last name.
    pub last_name: Option<String>,
    /// The new display name; `Some(None)` removes it.
    pub display_name: Option<Option<String>>,
    /// Whether the address counts as verified.
    pub email_verified: Option<bool>,
    /// The new profile fields, replacing the old ones.
    pub profile: Option<Map<String, Value>>,
}

/// The lower-cased text that free-text search runs over.
pub fn search_text(
    email: &str,
    first: &str,
    last: &str,
    display: Option<&str>,
    profile: &Map<String, Value>,
) -> String {
    let mut s = format!("{email} {first} {last}");
    if let Some(d) = display {
        s.push(' ');
        s.push_str(d);
    }
    for v in profile.values() {
        s.push(' ');
        match v {
            Value::String(t) => s.push_str(t),
            Value::Null => {}
            other => s.push_str(&other.to_string()),
        }
    }
    s.to_lowercase()
}

/// The undeclared-key part of [`crate::profile::validate`]: callers that know
/// the host's declared fields have already run the whole check.
fn check_profile(profile: &Map<String, Value>) -> CoreResult<()> {
    crate::profile::validate(&[], profile).map(|_| ())
}

fn optional_name(field: &'static str, v: Option<&str>) -> CoreResult<Option<String>> {
    Ok(match v {
        Some(v) => Some(validate::text(field, v, MAX_NAME)?).filter(|s| !s.is_empty()),
        None => None,
    })
}

pub(crate) fn unique_violation(e: &DieselError) -> bool {
    matches!(
        e,
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)
    )
}

/// Loads a user by id, without an access check; [`CoreError::NotFound`]
/// when there is none.
pub fn get(conn: &mut DbConnection, id: i64) -> CoreResult<User> {
    users::table
        .find(id)
        .select(User::as_select())
        .load_one(conn)?
        .ok_or(CoreError::NotFound("user"))
}

/// The user with this email (trimmed and lower-cased first), if any. No
/// access check.
pub fn find_by_email(conn: &mut DbConnection, email: &str) -> CoreResult<Option<User>> {
    let email = email.trim().to_lowercase();
    Ok(users::table
        .filter(users::email.eq(email))
        .select(User::as_select())
        .load_one(conn)?)
}

/// The authorization target for a user: their staff role and memberships.
pub fn target(conn: &mut DbConnection, user: &User) -> CoreResult<Target> {
    Ok(Target::User {
        id: user.id,
        staff_role: user.staff_role(),
        orgs: organizations::roles_of(conn, user.id)?,
    })
}

/// Loads a user the actor may do `action` to. A user the actor may not even
/// see is reported as not found, so ids cannot be probed.
pub fn get_for(
    conn: &mut DbConnection,
    actor: &Actor,
    id: i64,
    action: Action,
) -> CoreResult<User> {
    let user = get(conn, id)?;
    let t = target(conn, &user)?;
    if !crate::authz::can(actor, Action::View, &t) {
        return Err(CoreError::NotFound("user"));
    }
    authorize(actor, action, &t)?;
    Ok(user)
}

/// Creates a user, with the membership `new.organization` names. The actor
/// must be allowed to grant that role there (or to manage the site, without
/// one), and to give staff roles when `new.staff_role` is set. Refuses an
/// invalid or taken email, too-long names, and an address outside the
/// organization's allowed domains.
pub fn create(conn: &mut DbConnection, actor: &Actor, new: NewUser) -> CoreResult<User> {
    match new.organization {
        Some((org, role)) => authorize(
            actor,
            Action::GrantOrgRole(role),
            &Target::Organization(org),
        )?,
        None => authorize(actor, Action::ManageSite, &Target::Site)?,
    }
    if new.staff_role.is_some() {
        authorize(actor, Action::GrantStaffRole, &Target::Site)?;
    }
    let email = validate::normalize_email(&new.email)?;
    let first = validate::text("first_name", &new.first_name, MAX_NAME)?;
    let last = validate::text("last_name", &new.last_name, MAX_NAME)?;
    let display = optional_name("display_name", new.display_name.as_deref())?;
    check_profile(&new.profile)?;
    crate::db::write_transaction(conn, |conn| {
        let t = now();
        let search = search_text(&email, &first, &last, display.as_deref(), &new.profile);
        let inserted = diesel::insert_into(users::table)
            .values((
                users::email.eq(&email),
                users::email_verified.eq(new.email_verified),
                users::first_name.eq(&first),
                users::last_name.eq(&last),
                users::display_name.eq(&display),
                users::password_hash.eq(&new.password_hash),
                users::staff_role.eq(new.staff_role.map(|r| r.as_str())),
                users::profile.eq(Value::Object(new.profile.clone()).to_string()),
                users::search_text.eq(search),
                users::created_at.eq(t),
                users::updated_at.eq(t),
                users::activated_at.eq(new.activated.then_some(t)),
                users::terms_version.eq(&new.terms_version),
                users::terms_accepted_at.eq(new.terms_version.as_ref().map(|_| t)),
            ))
            .returning(users::all_columns)
            .get_result(conn);
        let user: User = match inserted {
            Err(e) if unique_violation(&e) => return Err(CoreError::DuplicateEmail(email.clone())),
            other => other?,
        };
        let org = match new.organization {
            Some((org, role)) => {
                let o = organizations::get(conn, org)?;
                if !o.allows_email(&email) {
                    return Err(CoreError::DomainNotAllowed);
                }
                organizations::insert_membership(conn, user.id, org, role)?;
                Some(org)
            }
            None => None,
        };
        audit::record(
            conn,
            actor,
            "user.create",
            &format!("user:{}", user.id),
            org,
            json!({"email": email, "staff_role": new.staff_role, "organization": new.organization}),
        )?;
        Ok(user)
    })
}

/// A profile edit and, when `local_login` is given, the password sign-in
/// switch, in one transaction (the API's `PATCH /users/{id}`).
pub fn update_with_login(
    conn: &mut DbConnection,
    actor: &Actor,
    id: i64,
    change: UserUpdate,
    local_login: Option<bool>,
) -> CoreResult<User> {
    crate::db::write_transaction(conn, |conn| {
        let user = update(conn, actor, id, change)?;
        match local_login {
            Some(enabled) => set_local_login(conn, actor, id, enabled),
            None => Ok(user),
        }
    })
}

/// Changes the fields `change` sets, after checking the actor may edit the
/// user. Refuses too-long names and invalid profile fields.
pub fn update(
    conn: &mut DbConnection,
    actor: &Actor,
    id: i64,
    change: UserUpdate,
) -> CoreResult<User> {
    crate::db::write_transaction(conn, |conn| {
        let user = get_for(conn, actor, id, Action::Edit)?;
        let first = match &change.first_name {
            Some(v) => validate::text("first_name", v, MAX_NAME)?,
            None => user.first_name.clone(),
        };
        let last = match &change.last_name {
            Some(v) => validate::text("last_name", v, MAX_NAME)?,
            None => user.last_name.clone(),
        };
        let display = match &change.display_name {
            Some(v) => optional_name("display_name", v.as_deref())?,
            None => user.display_name.clone(),
        };
        let profile = match &change.profile {
            Some(p) => {
                check_profile(p)?;
                p.clone()
            }
            None => user.profile_map(),
        };
        let verified = change.email_verified.unwrap_or(user.email_verified);
        let updated = diesel::update(users::table.find(id))
            .set((
                users::first_name.eq(&first),
                users::last_name.eq(&last),
                users::display_name.eq(&display),
                users::email_verified.eq(verified),
                users::profile.eq(Value::Object(profile.clone()).to_string()),
                users::search_text.eq(search_text(
                    &user.email,
                    &first,
                    &last,
                    display.as_deref(),
                    &profile,
                )),
                users::updated_at.eq(now()),
            ))
            .returning(users::all_columns)
            .get_result(conn)?;
        crate::sessions::sessions_changed(conn, crate::session_cache::Invalidation::User(id))?;
        audit::record(
            conn,
            actor,
            "user.update",
            &format!("user:{id}"),
            None,
            json!({
                "first_name": change.first_name, "last_name": change.last_name,
                "display_name": change.display_name, "email_verified": change.email_verified,
                "profile": change.profile,
            }),
        )?;
        Ok(updated)
    })
}

/// Changes a user's email address (a directory's update): the address is
/// taken as verified by the directory that owns it.
pub fn change_email(
    conn: &mut DbConnection,
    actor: &Actor,
    id: i64,
    email: &str,
) -> CoreResult<User> {
    let email = validate::normalize_email(email)?;
    crate::db::write_transaction(conn, |conn| {
        let user = get_for(conn, actor, id, Action::Edit)?;
        let updated = diesel::update(users::table.find(id))
            .set((
                users::email.eq(&email),
                users::search_text.eq(search_text(
                    &email,
                    &user.first_name,
                    &user.last_name,
                    user.display_name.as_deref(),
                    &user.profile_map(),
                )),
                users::updated_at.eq(now()),
            ))
            .returning(users::all_columns)
            .get_result(conn);
        let updated: User = match updated {
            Err(e) if unique_violation(&e) => return Err(CoreError::DuplicateEmail(email.clone())),
            other => other?,
        };
        crate::sessions::sessions_changed(conn, crate::session_cache::Invalidation::User(id))?;
        audit::record(
            conn,
            actor,
            "user.update",
            &format!("user:{id}"),
            None,
            json!({"email": {"from": user.email, "to": email}}),
        )?;
        Ok(updated)
    })
}

/// Suspends a user until an admin restores them, and ends all their sessions
/// in the same transaction.
pub fn suspend(conn: &mut DbConnection, actor: &Actor, id: i64, reason: &str) -> CoreResult<User> {
    suspend_until(conn, actor, id, reason, None)
}

/// Suspends a user, until `until` when given (then they are restored by
/// themselves once it has passed), and ends all their sessions in the same
/// transaction. The end must lie in the future.
pub fn suspend_until(
    conn: &mut DbConnection,
    actor: &Actor,
    id: i64,
    reason: &str,
    until: Option<NaiveDateTime>,
) -> CoreResult<User> {
    let reason = validate::text("reason", reason, MAX_TEXT)?;
    if until.is_some_and(|u| u <= now()) {
        return Err(CoreError::Invalid {
            field: "suspended_until",
            reason: "the end of the suspension must be in the future".into(),
        });
    }
    crate::db::write_transaction(conn, |conn| {
        get_for(conn, actor, id, Action::Suspend)?;
        if actor.user_id() == Some(id) {
            return Err(CoreError::Invalid {
                field: "user",
                reason: "you cannot suspend yourself".into(),
            });
        }
        let t = now();
        let user = diesel::update(users::table.find(id))
            .set((
                users::status.eq(UserStatus::Suspended.as_str()),
                users::suspended_reason.eq(Some(&reason)),
                users::suspended_at.eq(Some(t)),
                users::suspended_until.eq(until),
                users::updated_at.eq(t),
            ))
            .returning(users::all_columns)
            .get_result(conn)?;
        crate::sessions::sessions_changed(conn, crate::session_cache::Invalidation::User(id))?;
        let ended = sessions::revoke_all_for_user(conn, id, "suspended", None)?;
        let mut details = json!({"reason": reason, "sessions_revoked": ended});
        if let Some(u) = until {
            details["until"] = json!(u.format("%Y-%m-%d %H:%M:%S").to_string());
        }
        audit::record(
            conn,
            actor,
            "user.suspend",
            &format!("user:{id}"),
            None,
            details,
        )?;
        Ok(user)
    })
}

/// Lifts a suspension at once; the user may sign in again. The actor must
/// be allowed to suspend the user.
pub fn restore(conn: &mut DbConnection, actor: &Actor, id: i64) -> CoreResult<User> {
    crate::db::write_transaction(conn, |conn| {
        get_for(conn, actor, id, Action::Suspend)?;
        let user = diesel::update(users::table.find(id))
            .set((
                users::status.eq(UserStatus::Active.as_str()),
                users::suspended_reason.eq(None::<String>),
                users::suspended_at.eq(None::<NaiveDateTime>),
                users::suspended_until.eq(None::<NaiveDateTime>),
                users::updated_at.eq(now()),
            ))
            .returning(users::all_columns)
            .get_result(conn)?;
        crate::sessions::sessions_changed(conn, crate::session_cache::Invalidation::User(id))?;
        audit::record(
            conn,
            actor,
            "user.restore",
            &format!("user:{id}"),
            None,
            json!({}),
        )?;
        Ok(user)
    })
}

/// The longest timed suspension, in days (about ten years).
pub const MAX_SUSPENSION_DAYS: i64 = 3650;

/// The end of a suspension as a form gives it: `days` from now (1 to
/// [`MAX_SUSPENSION_DAYS`]), or `until` a date (`YYYY-MM-DD`: restored at
/// 00:00 UTC that day) or a time (`YYYY-MM-DDTHH:MM[:SS]`, UTC). Both empty:
/// none (suspended until an admin restores the user).
pub fn suspension_end(
    days: Option<&str>,
    until: Option<&str>,
) -> CoreResult<Option<NaiveDateTime>> {
    let invalid = |reason: String| CoreError::Invalid {
        field: "suspended_until",
        reason,
    };
    let days = days.map(str::trim).filter(|d| !d.is_empty());
    let until = until.map(str::trim).filter(|u| !u.is_empty());
    match (days, until) {
        (None, None) => Ok(None),
        (Some(_), Some(_)) => Err(invalid(
            "give a number of days or an end date, not both".into(),
        )),
        (Some(d), None) => match d.parse::<i64>() {
            Ok(n) if (1..=MAX_SUSPENSION_DAYS).contains(&n) => {
                Ok(Some(now() + chrono::Duration::days(n)))
            }
            _ => Err(invalid(format!(
                "the number of days must be a whole number from 1 to {MAX_SUSPENSION_DAYS}"
            ))),
        },
        (None, Some(u)) => {
            let at = chrono::NaiveDate::parse_from_str(u, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .or_else(|| NaiveDateTime::parse_from_str(u, "%Y-%m-%dT%H:%M").ok())
                .or_else(|| NaiveDateTime::parse_from_str(u, "%Y-%m-%dT%H:%M:%S").ok())
                .ok_or_else(|| invalid(format!("{u:?} is not a date like 2026-12-31")))?;
            if at <= now() {
                return Err(invalid(
                    "the end of the suspension must be in the future".into(),
                ));
            }
            if at > now() + chrono::Duration::days(MAX_SUSPENSION_DAYS) {
                return Err(invalid(format!(
                    "the end of the suspension must be within {MAX_SUSPENSION_DAYS} days"
                )));
            }
            Ok(Some(at))
        }
    }
}

/// Why the system restores a user whose suspension reached its end date.
pub const SUSPENSION_ENDED: &str = "suspension ended";

/// Restores one user if their suspension has reached its end date, audited as
/// a `user.restore` by the system. The update is conditional, so a sign-in
/// and the sweep racing for the same user restore (and audit) it once.
/// Returns the restored user, or none when there was nothing to restore.
pub fn end_suspension_if_due(conn: &mut DbConnection, id: i64) -> CoreResult<Option<User>> {
    let t = now();
    let restored: Option<User> = diesel::update(
        users::table
            .find(id)
            .filter(users::status.eq(UserStatus::Suspended.as_str()))
            .filter(users::suspended_until.le(t)),
    )
    .set((
        users::status.eq(UserStatus::Active.as_str()),
        users::suspended_reason.eq(None::<String>),
        users::suspended_at.eq(None::<NaiveDateTime>),
        users::suspended_until.eq(None::<NaiveDateTime>),
        users::updated_at.eq(t),
    ))
    .returning(users::all_columns)
    .get_result(conn)
    .optional()?;
    if restored.is_some() {
        audit::record(
            conn,
            &Actor::system(),
            "user.restore",
            &format!("user:{id}"),
            None,
            json!({"reason": SUSPENSION_ENDED}),
        )?;
    }
    Ok(restored)
}

/// Restores every user whose suspension has reached its end date, each in a
/// transaction of its own with its audit row. Returns how many were restored.
pub fn restore_ended_suspensions(conn: &mut DbConnection) -> CoreResult<usize> {
    let due: Vec<i64> = users::table
        .filter(users::status.eq(UserStatus::Suspended.as_str()))
        .filter(users::suspended_until.le(now()))
        .select(users::id)
        .order(users::id)
        .limit(10_000)
        .load(conn)?;
    let mut restored = 0;
    for id in due {
        if crate::db::write_transaction(conn, |c| end_suspension_if_due(c, id))?.is_some() {
            restored += 1;
        }
    }
    Ok(restored)
}

/// Deletes a user for good; memberships, tags, sessions and resets go with them
/// (foreign-key cascades), login attempts and invitations keep a null user.
pub fn delete(conn: &mut DbConnection, actor: &Actor, id: i64) -> CoreResult<()> {
    crate::db::write_transaction(conn, |conn| {
        let user = get_for(conn, actor, id, Action::Delete)?;
        if actor.user_id() == Some(id) {
            return Err(CoreError::Invalid {
                field: "user",
                reason: "you cannot delete yourself".into(),
            });
        }
        if user.staff_role() == Some(StaffRole::Owner) {
            ensure_other_staff_owner(conn, id)?;
        }
        for (org, role) in organizations::roles_of(conn, id)? {
            if role == OrgRole::Owner {
                organizations::ensure_other_owner(conn, org, id)?;
            }
        }
        diesel::delete(users::table.find(id)).execute(conn)?;
        crate::sessions::sessions_changed(conn, crate::session_cache::Invalidation::User(id))?;
        audit::record(
            conn,
            actor,
            "user.delete",
            &format!("user:{id}"),
            None,
            json!({"email": user.email}),
        )?;
        Ok(())
    })
}

/// Allows or forbids the user to sign in with a password. Their sessions
/// are checked again at the next request.
pub fn set_local_login(
    conn: &mut DbConnection,
    actor: &Actor,
    id: i64,
    enabled: bool,
) -> CoreResult<User> {
    crate::db::write_transaction(conn, |conn| {
        get_for(conn, actor, id, Action::Edit)?;
        let user = diesel::update(users::table.find(id))
            .set((
                users::local_login_enabled.eq(enabled),
                users::updated_at.eq(now()),
            ))
            .returning(users::all_columns)
            .get_result(conn)?;
        crate::sessions::sessions_changed(conn, crate::session_cache::Invalidation::User(id))?;
        let action = if enabled {
            "user.local_login.allow"
        } else {
            "user.local_login.disable"
        };
        audit::record(conn, actor, action, &format!("user:{id}"), None, json!({}))?;
        Ok(user)
    })
}

/// Gives, changes or takes away (`None`) a user's staff role. Refuses to
/// take the role from the last staff owner ([`CoreError::LastStaffOwner`]).
pub fn set_staff_role(
    conn: &mut DbConnection,
    actor: &Actor,
    id: i64,
    role: Option<StaffRole>,
) -> CoreResult<User> {
    crate::db::write_transaction(conn, |conn| {
        let user = get_for(conn, actor, id, Action::GrantStaffRole)?;
        if user.staff_role() == Some(StaffRole::Owner) && role != Some(StaffRole::Owner) {
            ensure_other_staff_owner(conn, id)?;
        }
        let updated = diesel::update(users::table.find(id))
            .set((
                users::staff_role.eq(role.map(|r| r.as_str())),
                users::updated_at.eq(now()),
            ))
            .returning(users::all_columns)
            .get_result(conn)?;
        crate::sessions::sessions_changed(conn, crate::session_cache::Invalidation::User(id))?;
        audit::record(
            conn,
            actor,
            "user.staff_role",
            &format!("user:{id}"),
            None,
            json!({"from": user.staff_role, "to": role}),
        )?;
        Ok(updated)
    })
}

fn ensure_other_staff_owner(conn: &mut DbConnection, except: i64) -> CoreResult<()> {
    // Writing first takes the write lock (SQLite) / row locks (PostgreSQL) so
    // that two concurrent demotions cannot both see another owner.
    diesel::update(users::table.filter(users::staff_role.eq("owner")))
        .set(users::staff_role.eq("owner"))
        .execute(conn)?;
    let others: i64 = users::table
        .filter(users::staff_role.eq("owner"))
        .filter(users::id.ne(except))
        .count()
        .get_result(conn)?;
    if others == 0 {
        Err(CoreError::LastStaffOwner)
    } else {
        Ok(())
    }
}

/// Marks a pending user active (they signed in or set their own password);
/// nothing when they already are. Call inside the transaction of that act.
pub fn activate(conn: &mut DbConnection, id: i64) -> CoreResult<()> {
    diesel::update(users::table.find(id).filter(users::activated_at.is_null()))
        .set(users::activated_at.eq(Some(now())))
        .execute(conn)?;
    Ok(())
}

/// Organizations and roles of many users at once (for list pages).
pub fn roles_of_many(conn: &mut DbConnection, ids: &[i64]) -> CoreResult<Vec<(i64, i64, OrgRole)>> {
    let rows: Vec<(i64, i64, String)> = memberships::table
        .filter(memberships::user_id.eq_any(ids))
        .select((
            memberships::user_id,
            memberships::organization_id,
            memberships::role,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .filter_map(|(u, o, r)| OrgRole::parse(&r).map(|r| (u, o, r)))
        .collect())
}

/// Creates a staff owner who signs in with `password` (the CLI's `create-admin`
/// and the demo's first start). Blocking: hashes the password with argon2.
pub fn create_admin(conn: &mut DbConnection, email: &str, password: &str) -> CoreResult<User> {
    let password_hash = crate::passwords::hash(password)?;
    create(
        conn,
        &Actor::system(),
        NewUser {
            email: email.to_owned(),
            password_hash: Some(password_hash),
            email_verified: true,
            staff_role: Some(StaffRole::Owner),
            ..NewUser::default()
        },
    )
}

/// The actor a signed-in user acts as: their staff role and organization roles,
/// read fresh from the database (so a demotion counts from the next request).
pub fn actor_for(conn: &mut DbConnection, user_id: i64, ip: Option<String>) -> CoreResult<Actor> {
    let user = get(conn, user_id)?;
    let orgs = organizations::roles_of(conn, user_id)?;
    Ok(Actor::user(user.id, user.staff_role(), orgs).with_ip(ip))
}
