//! Password reset links: a 256-bit token mailed to the stored address (only its
//! digest kept), valid once and for a limited time. Opening the link checks it;
//! only completing the form uses it, through a conditional update.

use chrono::{Duration, NaiveDateTime};
use diesel::dsl::count_star;
use diesel::prelude::*;

use serde_json::json;

use crate::audit;
use crate::auth;
use crate::authz::{Action, Actor};
use crate::db::DbConnection;
use crate::error::{CoreError, CoreResult};
use crate::outbox::{self, NewMail};
use crate::schema::{password_resets, users};
use crate::time::now;
use crate::tokens::{hash_token, SecretToken};
use crate::users::{self as user_store, User};
use crate::validate;

/// At most this many reset mails per user per hour; further requests are
/// answered the same way but send nothing.
pub const MAX_PER_HOUR: i64 = 5;

/// Queues a reset mail for the account with this email, if there is one that
/// may sign in with a password. Answers `Ok(false)` when nothing was sent, so
/// the caller can answer alike either way. `mail` renders the message for
/// the user and the raw token; it runs inside the transaction.
pub fn request(
    conn: &mut DbConnection,
    email: &str,
    ttl: Duration,
    mail: impl FnOnce(&User, &SecretToken, NaiveDateTime) -> CoreResult<NewMail>,
) -> CoreResult<bool> {
    let Ok(email) = validate::normalize_email(email) else {
        return Ok(false);
    };
    crate::db::write_transaction(conn, |conn| {
        let Some(user) = user_store::find_by_email(conn, &email)? else {
            return Ok(false);
        };
        if user.suspension_in_force(now()) || !user.local_login_enabled {
            return Ok(false);
        }
        issue(conn, &user, ttl, mail)
    })
}

/// An admin sends a user the reset mail (the "reset password email" action).
/// Unlike the public form, refusals are told: the admin may know them.
pub fn request_for_user(
    conn: &mut DbConnection,
    actor: &Actor,
    user_id: i64,
    ttl: Duration,
    mail: impl FnOnce(&User, &SecretToken, NaiveDateTime) -> CoreResult<NewMail>,
) -> CoreResult<()> {
    crate::db::write_transaction(conn, |conn| {
        let user = user_store::get_for(conn, actor, user_id, Action::Edit)?;
        if user.suspension_in_force(now()) {
            return Err(CoreError::Invalid {
                field: "user",
                reason: "the user is suspended".into(),
            });
        }
        if !user.local_login_enabled {
            return Err(CoreError::Invalid {
                field: "user",
                reason: "local login is disabled for this user".into(),
            });
        }
        if !issue(conn, &user, ttl, mail)? {
            return Err(CoreError::Invalid {
                field: "user",
                reason: format!("at most {MAX_PER_HOUR} reset mails an hour; try again later"),
            });
        }
        audit::record(
            conn,
            actor,
            "user.password_reset.send",
            &format!("user:{user_id}"),
            None,
            json!({}),
        )?;
        Ok(())
    })
}

/// Makes a new link (killing older ones) and queues its mail; false when the
/// hourly cap is reached. Call inside a transaction. Admin-created accounts
/// get their first "set your password" link this way too.
pub fn issue(
    conn: &mut DbConnection,
    user: &User,
    ttl: Duration,
    mail: impl FnOnce(&User, &SecretToken, NaiveDateTime) -> CoreResult<NewMail>,
) -> CoreResult<bool> {
    let t = now();
    let recent: i64 = password_resets::table
        .filter(password_resets::user_id.eq(user.id))
        .filter(password_resets::created_at.gt(t - Duration::hours(1)))
        .select(count_star())
        .first(conn)?;
    if recent >= MAX_PER_HOUR {
        return Ok(false);
    }
    // A new link kills the older ones.
    diesel::update(password_resets::table)
        .filter(password_resets::user_id.eq(user.id))
        .filter(password_resets::used_at.is_null())
        .set(password_resets::used_at.eq(Some(t)))
        .execute(conn)?;
    let token = SecretToken::generate();
    let expires_at = t + ttl;
    diesel::insert_into(password_resets::table)
        .values((
            password_resets::user_id.eq(user.id),
            password_resets::token_hash.eq(token.hash()),
            password_resets::expires_at.eq(expires_at),
            password_resets::created_at.eq(t),
        ))
        .execute(conn)?;
    let mut message = mail(user, &token, expires_at)?;
    // Always to the stored address, whatever the request said.
    message.recipient = user.email.clone();
    outbox::enqueue(conn, &message)?;
    Ok(true)
}

/// The user a reset token is valid for, without using it up (for the GET).
pub fn check(conn: &mut DbConnection, token: &str) -> CoreResult<Option<User>> {
    let found: Option<i64> = password_resets::table
        .filter(password_resets::token_hash.eq(hash_token(token)))
        .filter(password_resets::used_at.is_null())
        .filter(password_resets::expires_at.gt(now()))
        .select(password_resets::user_id)
        .first(conn)
        .optional()?;
    match found {
        Some(id) => {
            let user = user_store::get(conn, id)?;
            Ok((!user.suspension_in_force(now())).then_some(user))
        }
        None => Ok(None),
    }
}

/// Uses a token and sets the new password (already hashed) in one transaction;
/// every session of the user ends and an account lockout is lifted. A used, expired or unknown token changes nothing.
pub fn complete(conn: &mut DbConnection, token: &str, new_hash: &str) -> CoreResult<User> {
    crate::db::write_transaction(conn, |conn| {
        let t = now();
        // The conditional update is what makes the token single-use, even
        // when two requests race.
        let used: Option<i64> = diesel::update(password_resets::table)
            .filter(password_resets::token_hash.eq(hash_token(token)))
            .filter(password_resets::used_at.is_null())
            .filter(password_resets::expires_at.gt(t))
            .set(password_resets::used_at.eq(Some(t)))
            .returning(password_resets::user_id)
            .get_result(conn)
            .optional()?;
        let user_id = used.ok_or_else(invalid_token)?;
        let user = user_store::get(conn, user_id)?;
        if user.suspension_in_force(t) {
            return Err(invalid_token());
        }
        // A suspension past its end date ends here, as at sign-in.
        user_store::end_suspension_if_due(conn, user_id)?;
        auth::reset_password(conn, user_id, new_hash)?;
        // The link proves control of the mailbox: earlier failures no longer
        // lock the account (its IP lockout, if any, stays).
        crate::login_attempts::record(
            conn,
            Some(user_id),
            &user.email,
            &crate::sessions::ClientInfo::default(),
            crate::login_attempts::Reason::LockoutCleared,
        )?;
        // Proof of owning the mailbox.
        diesel::update(users::table.find(user_id))
            .set(users::email_verified.eq(true))
            .execute(conn)?;
        user_store::get(conn, user_id)
    })
}

/// The one error for a reset link that cannot be used, whatever the cause.
pub fn invalid_token() -> CoreError {
    CoreError::Invalid {
        field: "token",
        reason: "this link is invalid, expired or already used".into(),
    }
}
