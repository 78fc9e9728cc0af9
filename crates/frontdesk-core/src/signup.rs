//! Self sign-up: the host's policy (closed, open, open to some email domains,
//! invite-only), the checks a form can be told about (they never depend on
//! whether the address has an account), and the work done after the answer
//! went out: rate limits per email and per IP, then either a new unverified
//! account with its verification mail, or an "already registered" mail to the
//! existing one. One mail either way, so neither page, timing nor mail count
//! tells which addresses exist.

use chrono::{Duration, NaiveDateTime};
use diesel::dsl::count_star;
use diesel::prelude::*;

use crate::authz::Actor;
use crate::db::DbConnection;
use crate::email_verification::{self, MailFn};
use crate::error::{CoreError, CoreResult};
use crate::outbox::{self, NewMail};
use crate::schema::signup_requests;
use crate::time::now;
use crate::users::{self as user_store, NewUser, User};
use crate::validate::{self, MAX_NAME};

/// Who may create their own account.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum SignupPolicy {
    /// No sign-up page (the default): users arrive by invitation, import,
    /// the admin pages, the API or the CLI.
    #[default]
    Closed,
    /// Anyone with an email address.
    Open,
    /// Addresses in these domains only (lower-case, without `@`).
    AllowedDomains(Vec<String>),
    /// The page exists and says that accounts come by invitation only.
    InviteOnly,
}

impl SignupPolicy {
    /// How the admin dashboard names it.
    pub fn describe(&self) -> String {
        match self {
            SignupPolicy::Closed => "closed".into(),
            SignupPolicy::Open => "open".into(),
            SignupPolicy::AllowedDomains(d) => format!("open to {}", d.join(", ")),
            SignupPolicy::InviteOnly => "invite-only".into(),
        }
    }

    /// Whether the form takes sign-ups at all.
    pub fn accepts_signups(&self) -> bool {
        matches!(self, SignupPolicy::Open | SignupPolicy::AllowedDomains(_))
    }

    /// Whether this (normalized) address may sign up under the policy.
    pub fn allows_email(&self, email: &str) -> bool {
        match self {
            SignupPolicy::Open => true,
            SignupPolicy::AllowedDomains(domains) => email
                .rsplit_once('@')
                .is_some_and(|(_, d)| domains.iter().any(|a| a.eq_ignore_ascii_case(d))),
            SignupPolicy::Closed | SignupPolicy::InviteOnly => false,
        }
    }
}

/// The terms a user must accept to sign up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Terms {
    /// Where the terms can be read; the sign-up form links to it.
    pub url: String,
    /// The terms' version, stored with each user who accepts them.
    pub version: String,
}

/// Limits on sign-up requests; requests past them are answered alike and
/// do nothing.
#[derive(Debug, Clone, Copy)]
pub struct SignupLimits {
    /// How far back the limits count.
    pub window: Duration,
    /// Requests for one address within the window.
    pub per_email: i64,
    /// Requests from one IP (any address) within the window.
    pub per_ip: i64,
}

impl Default for SignupLimits {
    fn default() -> Self {
        SignupLimits {
            window: Duration::hours(1),
            per_email: 3,
            per_ip: 20,
        }
    }
}

/// A sign-up as the form gave it, checked (see [`check`]).
#[derive(Clone)]
pub struct Checked {
    /// The email, trimmed, lower-cased and checked.
    pub email: String,
    /// The first name, checked.
    pub first_name: String,
    /// The last name, checked.
    pub last_name: String,
    /// The terms version accepted, when terms are configured.
    pub terms_version: Option<String>,
}

impl std::fmt::Debug for Checked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("signup::Checked(***)")
    }
}

/// The checks a sign-up form may answer with an error: none of them reads the
/// database, so none can tell whether the address has an account.
pub fn check(
    policy: &SignupPolicy,
    terms: Option<&Terms>,
    email: &str,
    first_name: &str,
    last_name: &str,
    accepted_terms: bool,
) -> CoreResult<Checked> {
    if !policy.accepts_signups() {
        return Err(CoreError::Forbidden);
    }
    let email = validate::normalize_email(email)?;
    if !policy.allows_email(&email) {
        return Err(CoreError::DomainNotAllowed);
    }
    let first_name = validate::text("first_name", first_name, MAX_NAME)?;
    let last_name = validate::text("last_name", last_name, MAX_NAME)?;
    let terms_version = match terms {
        Some(t) if !accepted_terms => {
            return Err(CoreError::Invalid {
                field: "accept_terms",
                reason: format!("accept the terms ({}) to create an account", t.url),
            })
        }
        Some(t) => Some(t.version.clone()),
        None => None,
    };
    Ok(Checked {
        email,
        first_name,
        last_name,
        terms_version,
    })
}

/// What a sign-up request came to (for the log and the tests; the requester
/// is told none of it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Past a rate limit: nothing done.
    Limited,
    /// A new account and its verification mail.
    Created {
        /// The new user's id.
        user_id: i64,
    },
    /// The address has an account: it got the "already registered" mail.
    AlreadyRegistered,
}

/// Records the request and tells whether it is within the limits. Its own
/// transaction, so a request past the limit still counts.
pub fn admit(
    conn: &mut DbConnection,
    email: &str,
    ip: Option<&str>,
    limits: &SignupLimits,
) -> CoreResult<bool> {
    crate::db::write_transaction(conn, |conn| {
        // Concurrent requests for one address count in turn, so its limit is
        // exact. Not per IP: one IP's requests would queue on the lock, each
        // holding a pooled connection (a flood from one address would starve
        // the pool); its count may run over by the requests in flight at once.
        crate::db::lock_keys(conn, &[&format!("frontdesk.signup.email:{email}")])?;
        let t = now();
        diesel::insert_into(signup_requests::table)
            .values((
                signup_requests::email.eq(email),
                signup_requests::ip.eq(ip),
                signup_requests::created_at.eq(t),
            ))
            .execute(conn)?;
        let since = t - limits.window;
        let by_email: i64 = signup_requests::table
            .filter(signup_requests::email.eq(email))
            .filter(signup_requests::created_at.gt(since))
            .select(count_star())
            .first(conn)?;
        let by_ip: i64 = match ip {
            Some(ip) => signup_requests::table
                .filter(signup_requests::ip.eq(ip))
                .filter(signup_requests::created_at.gt(since))
                .select(count_star())
                .first(conn)?,
            None => 0,
        };
        Ok(by_email <= limits.per_email && by_ip <= limits.per_ip)
    })
}

/// Whether the address has an account (read after the answer went out).
pub fn registered(conn: &mut DbConnection, email: &str) -> CoreResult<Option<User>> {
    user_store::find_by_email(conn, email)
}

/// Creates the unverified account (its password already hashed), its
/// verification link and mail, in one transaction; audited as `user.create`,
/// so the `UserCreated` event (and the `user_created` hook) follows. When the
/// address was taken meanwhile, the "already registered" mail goes instead.
pub fn create(
    conn: &mut DbConnection,
    form: &Checked,
    password_hash: String,
    verification_ttl: Duration,
    verification_mail: Box<MailFn<'_>>,
    existing_mail: impl FnOnce(&User) -> CoreResult<NewMail>,
) -> CoreResult<Outcome> {
    let created = crate::db::write_transaction(conn, |conn| {
        let new = NewUser {
            email: form.email.clone(),
            first_name: form.first_name.clone(),
            last_name: form.last_name.clone(),
            password_hash: Some(password_hash),
            // The user chose the password: active from the start.
            activated: true,
            terms_version: form.terms_version.clone(),
            ..NewUser::default()
        };
        let user = user_store::create(conn, &Actor::system(), new)?;
        email_verification::issue(conn, &user, verification_ttl, verification_mail)?;
        Ok::<_, CoreError>(user)
    });
    match created {
        Ok(user) => Ok(Outcome::Created { user_id: user.id }),
        Err(CoreError::DuplicateEmail(_)) => already_registered(conn, &form.email, existing_mail),
        Err(e) => Err(e),
    }
}

/// Queues the "you already have an account" mail to the stored address.
pub fn already_registered(
    conn: &mut DbConnection,
    email: &str,
    mail: impl FnOnce(&User) -> CoreResult<NewMail>,
) -> CoreResult<Outcome> {
    let Some(user) = user_store::find_by_email(conn, email)? else {
        return Ok(Outcome::Limited);
    };
    let mut message = mail(&user)?;
    message.recipient = user.email.clone();
    outbox::enqueue(conn, &message)?;
    Ok(Outcome::AlreadyRegistered)
}

/// When a verification link made now expires, for the mail's text.
pub fn expiry(ttl: Duration) -> NaiveDateTime {
    now() + ttl
}
