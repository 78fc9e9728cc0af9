//! Email verification links: a 256-bit token mailed to the stored address
//! (only its digest kept), valid once and for a limited time, a newer link
//! killing the older ones. Opening the link checks it; only the POST uses it,
//! through a conditional update, and sets `users.email_verified`.

use chrono::{Duration, NaiveDateTime};
use diesel::dsl::count_star;
use diesel::prelude::*;
use serde_json::json;

use crate::audit;
use crate::authz::{Action, Actor};
use crate::db::DbConnection;
use crate::error::{CoreError, CoreResult};
use crate::outbox::{self, NewMail};
use crate::schema::{email_verifications, users};
use crate::sessions::{self, ClientInfo, Session, SessionConfig};
use crate::time::now;
use crate::tokens::{hash_token, SecretToken};
use crate::users::{self as user_store, User};
use crate::validate;

/// At most this many verification mails per user per hour; further requests
/// are answered the same way but send nothing.
pub const MAX_PER_HOUR: i64 = 5;

/// Renders the verification mail for a user, a raw token and its expiry.
pub type MailFn<'a> = dyn FnOnce(&User, &SecretToken, NaiveDateTime) -> CoreResult<NewMail> + 'a;

/// Makes a new link (killing older ones) and queues its mail; false when the
/// hourly cap is reached or the address is verified already. Call inside a
/// transaction.
pub fn issue(
    conn: &mut DbConnection,
    user: &User,
    ttl: Duration,
    mail: Box<MailFn<'_>>,
) -> CoreResult<bool> {
    if user.email_verified {
        return Ok(false);
    }
    let t = now();
    let recent: i64 = email_verifications::table
        .filter(email_verifications::user_id.eq(user.id))
        .filter(email_verifications::created_at.gt(t - Duration::hours(1)))
        .select(count_star())
        .first(conn)?;
    if recent >= MAX_PER_HOUR {
        return Ok(false);
    }
    // A new link kills the older ones.
    diesel::update(email_verifications::table)
        .filter(email_verifications::user_id.eq(user.id))
        .filter(email_verifications::used_at.is_null())
        .set(email_verifications::used_at.eq(Some(t)))
        .execute(conn)?;
    let token = SecretToken::generate();
    let expires_at = t + ttl;
    diesel::insert_into(email_verifications::table)
        .values((
            email_verifications::user_id.eq(user.id),
            email_verifications::token_hash.eq(token.hash()),
            email_verifications::expires_at.eq(expires_at),
            email_verifications::created_at.eq(t),
        ))
        .execute(conn)?;
    let mut message = mail(user, &token, expires_at)?;
    // Always to the stored address, whatever the request said.
    message.recipient = user.email.clone();
    outbox::enqueue(conn, &message)?;
    Ok(true)
}

/// A new link for the account with this email, if it exists, is unverified
/// and not suspended (the public "send me a new link" form: the caller
/// answers alike either way). True when a mail was queued.
pub fn request(
    conn: &mut DbConnection,
    email: &str,
    ttl: Duration,
    mail: Box<MailFn<'_>>,
) -> CoreResult<bool> {
    let Ok(email) = validate::normalize_email(email) else {
        return Ok(false);
    };
    crate::db::write_transaction(conn, |conn| {
        let Some(user) = user_store::find_by_email(conn, &email)? else {
            return Ok(false);
        };
        if user.suspension_in_force(now()) {
            return Ok(false);
        }
        issue(conn, &user, ttl, mail)
    })
}

/// An admin sends a user a new verification link (user page, bulk bar, API).
/// Refusals are told: the admin may know them.
pub fn request_for_user(
    conn: &mut DbConnection,
    actor: &Actor,
    user_id: i64,
    ttl: Duration,
    mail: Box<MailFn<'_>>,
) -> CoreResult<()> {
    crate::db::write_transaction(conn, |conn| {
        let user = user_store::get_for(conn, actor, user_id, Action::Edit)?;
        if user.email_verified {
            return Err(CoreError::Invalid {
                field: "user",
                reason: "the email address is verified already".into(),
            });
        }
        if !issue(conn, &user, ttl, mail)? {
            return Err(CoreError::Invalid {
                field: "user",
                reason: format!(
                    "at most {MAX_PER_HOUR} verification mails an hour; try again later"
                ),
            });
        }
        audit::record(
            conn,
            actor,
            "user.email_verification.send",
            &format!("user:{user_id}"),
            None,
            json!({}),
        )?;
        Ok(())
    })
}

/// An admin marks a user's address verified (user page, bulk bar, API).
pub fn mark_verified(conn: &mut DbConnection, actor: &Actor, user_id: i64) -> CoreResult<User> {
    crate::db::write_transaction(conn, |conn| {
        user_store::get_for(conn, actor, user_id, Action::Edit)?;
        let user = set_verified(conn, user_id)?;
        audit::record(
            conn,
            actor,
            "user.email.verify",
            &format!("user:{user_id}"),
            None,
            json!({"by": "admin"}),
        )?;
        Ok(user)
    })
}

fn set_verified(conn: &mut DbConnection, user_id: i64) -> CoreResult<User> {
    let t = now();
    // Any link still out is of no use any more.
    diesel::update(email_verifications::table)
        .filter(email_verifications::user_id.eq(user_id))
        .filter(email_verifications::used_at.is_null())
        .set(email_verifications::used_at.eq(Some(t)))
        .execute(conn)?;
    let user = diesel::update(users::table.find(user_id))
        .set((users::email_verified.eq(true), users::updated_at.eq(t)))
        .returning(users::all_columns)
        .get_result(conn)?;
    // Signed-in pages (the banner, the host's `CurrentUser`) see it at once.
    crate::sessions::sessions_changed(conn, crate::session_cache::Invalidation::User(user_id))?;
    Ok(user)
}

/// The user a token is valid for, without using it up (for the GET).
pub fn check(conn: &mut DbConnection, token: &str) -> CoreResult<Option<User>> {
    let found: Option<i64> = email_verifications::table
        .filter(email_verifications::token_hash.eq(hash_token(token)))
        .filter(email_verifications::used_at.is_null())
        .filter(email_verifications::expires_at.gt(now()))
        .select(email_verifications::user_id)
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

/// A used link: the verified user, and a session when `sign_in` asked for
/// one and the user may sign in with a password.
#[derive(Debug)]
pub struct Verified {
    /// The user, now verified.
    pub user: User,
    /// The new session and its cookie token, when one was asked for and the
    /// user may sign in with a password.
    pub session: Option<(Session, SecretToken)>,
}

/// Uses a token (once: a conditional update, even when two requests race),
/// marks the address verified and, with `sign_in`, opens a session for the
/// user, all in one transaction. A used, expired, superseded or unknown token
/// changes nothing.
pub fn complete(
    conn: &mut DbConnection,
    token: &str,
    sign_in: Option<(&ClientInfo, &SessionConfig)>,
) -> CoreResult<Verified> {
    crate::db::write_transaction(conn, |conn| {
        let t = now();
        let used: Option<i64> = diesel::update(email_verifications::table)
            .filter(email_verifications::token_hash.eq(hash_token(token)))
            .filter(email_verifications::used_at.is_null())
            .filter(email_verifications::expires_at.gt(t))
            .set(email_verifications::used_at.eq(Some(t)))
            .returning(email_verifications::user_id)
            .get_result(conn)
            .optional()?;
        let user_id = used.ok_or_else(invalid_token)?;
        let user = user_store::get(conn, user_id)?;
        if user.suspension_in_force(t) {
            return Err(invalid_token());
        }
        let user = set_verified(conn, user_id)?;
        let actor = Actor::user(user_id, None, Vec::new());
        audit::record(
            conn,
            &actor,
            "user.email.verify",
            &format!("user:{user_id}"),
            None,
            json!({"by": "link"}),
        )?;
        let session = match sign_in {
            Some((client, config)) if user.local_login_enabled => {
                let opened = sessions::create(conn, user_id, client, config)?;
                user_store::activate(conn, user_id)?;
                diesel::update(users::table.find(user_id))
                    .set((
                        users::last_login_at.eq(Some(t)),
                        users::last_active_at.eq(Some(t)),
                    ))
                    .execute(conn)?;
                crate::login_attempts::record(
                    conn,
                    Some(user_id),
                    &user.email,
                    client,
                    crate::login_attempts::Reason::Success,
                )?;
                crate::events::emit(conn, crate::events::Event::UserSignedIn { user_id })?;
                Some(opened)
            }
            _ => None,
        };
        Ok(Verified { user, session })
    })
}

/// The one error for a verification link that cannot be used, whatever the cause.
pub fn invalid_token() -> CoreError {
    CoreError::Invalid {
        field: "token",
        reason: "this link is invalid, expired or already used".into(),
    }
}
