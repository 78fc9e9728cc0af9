//! Invitations: an admin invites an email address into an organization with a
//! role; the invitee accepts (a new account, or their existing one) or declines
//! through a single-use link. The invitation mail is queued in the outbox in
//! the same transaction as the change that causes it.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::authz::{can, Action, Actor, OrgRole, Target};
use crate::db::DbConnection;
use crate::error::CoreError;
use crate::organizations::Organization;
use crate::outbox::{self, MailRenderer, NewMail};
use crate::schema::{import_invitations, invitations, memberships, outbox as outbox_table};
use crate::time::now;
use crate::tokens::{hash_token, SecretToken};
use crate::users::{self, User};
use crate::validate::{self, MAX_NAME};

mod accept;
mod groups;
mod import;
mod issue;
mod list;

pub use accept::*;
pub use groups::{groups_of, groups_of_many, MAX_INVITATION_GROUPS};
pub use import::*;
pub use issue::*;
pub use list::*;

crate::authz::string_enum!(
    /// Where an invitation stands.
    InvitationStatus {
        /// Sent, and neither answered nor past its expiry.
        Pending => "pending",
        /// The invitee accepted and became a member.
        Accepted => "accepted",
        /// The invitee declined.
        Declined => "declined",
        /// Not answered in time.
        Expired => "expired",
        /// An admin cancelled it.
        Cancelled => "cancelled",
    }
);

/// The longest personal message an admin may add.
pub const MAX_MESSAGE: usize = 1000;

const MAIL_KIND: &str = "invitation";

/// An invitation to join an organization, as stored. The link's token is
/// never kept, only its hash.
#[derive(Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = invitations)]
pub struct Invitation {
    /// The invitation's id.
    pub id: i64,
    /// The organization it invites to.
    pub organization_id: i64,
    /// The invitee's email, lower-cased.
    pub email: String,
    /// The role's stored name; [`Invitation::role`] parses it.
    pub role: String,
    /// The admin's personal message, if any (at most [`MAX_MESSAGE`] characters).
    pub message: Option<String>,
    /// The SHA-256 hash of the link's token; never serialized.
    #[serde(skip)]
    pub token_hash: String,
    /// The stored status's name; [`Invitation::status_at`] reads it with the
    /// expiry applied.
    pub status: String,
    /// When the link stops working (UTC).
    pub expires_at: NaiveDateTime,
    /// The user who sent it, if a user did.
    pub invited_by: Option<i64>,
    /// How many times its mail was queued (the first send counts).
    pub send_count: i32,
    /// When its mail was last queued (UTC).
    pub last_sent_at: Option<NaiveDateTime>,
    /// The user who accepted it, once accepted.
    pub accepted_user_id: Option<i64>,
    /// When it was created (UTC).
    pub created_at: NaiveDateTime,
    /// When it last changed (UTC).
    pub updated_at: NaiveDateTime,
    /// The invitee's names as the admin typed them (optional): the accept
    /// page starts with them filled in.
    pub first_name: Option<String>,
    /// The invitee's last name as the admin typed it, if any.
    pub last_name: Option<String>,
}

impl std::fmt::Debug for Invitation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Invitation")
            .field("id", &self.id)
            .field("organization_id", &self.organization_id)
            .field("email", &self.email)
            .field("role", &self.role)
            .field("status", &self.status)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl Invitation {
    /// The status as of `at`: a pending invitation past its expiry is expired,
    /// whether or not a sweep has written that down yet.
    pub fn status_at(&self, at: NaiveDateTime) -> InvitationStatus {
        match InvitationStatus::parse(&self.status) {
            Some(InvitationStatus::Pending) if self.expires_at <= at => InvitationStatus::Expired,
            Some(s) => s,
            None => InvitationStatus::Expired,
        }
    }

    /// The role the invitee gets; an unknown stored role reads as member.
    pub fn role(&self) -> OrgRole {
        OrgRole::parse(&self.role).unwrap_or(OrgRole::Member)
    }
}

/// Why an invitation link cannot be used. The invitee's page shows the same
/// answer for all of them; the reason is for logs and admin views.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkProblem {
    /// No invitation has this token.
    Unknown,
    /// The invitation expired.
    Expired,
    /// The invitation was accepted already.
    Accepted,
    /// The invitee declined it.
    Declined,
    /// An admin cancelled it.
    Cancelled,
}

/// Why an invitation service refused.
#[derive(Debug, thiserror::Error)]
pub enum InvitationError {
    /// A general refusal or failure (access, validation, database).
    #[error(transparent)]
    Core(#[from] CoreError),
    /// The email already has a pending invitation to this organization.
    #[error("an invitation to {email} is already pending in this organization; resend it instead")]
    AlreadyPending {
        /// The pending invitation's id; `None` when it was created at the
        /// same moment by someone else.
        invitation_id: Option<i64>,
        /// The invitee's email.
        email: String,
    },
    /// The invitation is no longer pending, so it cannot be resent, cancelled
    /// or answered.
    #[error("this invitation is {0} and can no longer be changed")]
    NotPending(InvitationStatus),
    /// The link cannot be used; the reason is for logs, not for the invitee.
    #[error("this invitation link is not valid (it may have expired or been used already)")]
    InvalidLink(LinkProblem),
    /// An account has this email: the invitee must sign in before accepting.
    #[error("an account with this email address already exists: sign in to accept the invitation")]
    SignInRequired,
    /// The signed-in account's email is not the invited one.
    #[error("this invitation was sent to another email address than the signed-in account's")]
    WrongAccount,
}

impl From<diesel::result::Error> for InvitationError {
    fn from(e: diesel::result::Error) -> Self {
        InvitationError::Core(CoreError::Database(e))
    }
}

impl InvitationError {
    /// True when the error is the caller's input, not the system's failure.
    pub fn is_client_error(&self) -> bool {
        match self {
            InvitationError::Core(e) => e.is_client_error(),
            _ => true,
        }
    }
}

/// The result of the invitation services.
pub type InvitationResult<T> = Result<T, InvitationError>;

/// Where links point and how long they live. The base URL is configuration,
/// never a request's Host header.
#[derive(Debug, Clone)]
pub struct InvitationSettings {
    base_url: String,
    auth_path: String,
    /// How long a link stays valid; 7 days unless set with
    /// [`InvitationSettings::with_ttl`].
    pub ttl: chrono::Duration,
}

impl InvitationSettings {
    /// `base_url` like `https://app.example.com` (a path prefix is allowed);
    /// links go to `{base_url}/auth/invitations/{token}`, valid for 7 days.
    pub fn new(base_url: &str) -> Result<Self, CoreError> {
        let base = base_url.trim().trim_end_matches('/');
        let rest = base
            .strip_prefix("https://")
            .or_else(|| base.strip_prefix("http://"))
            .ok_or_else(|| {
                CoreError::Config(format!(
                    "base URL {base_url:?} must start with http:// or https://"
                ))
            })?;
        if rest.is_empty()
            || rest
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '?' | '#'))
        {
            return Err(CoreError::Config(format!(
                "base URL {base_url:?} is not a valid URL"
            )));
        }
        Ok(InvitationSettings {
            base_url: base.to_owned(),
            auth_path: "/auth".to_owned(),
            ttl: chrono::Duration::days(7),
        })
    }

    /// Where the host mounted the auth scope (default `/auth`).
    pub fn with_auth_path(mut self, path: &str) -> Self {
        let p = path.trim().trim_end_matches('/');
        self.auth_path = if p.is_empty() || p.starts_with('/') {
            p.to_owned()
        } else {
            format!("/{p}")
        };
        self
    }

    /// The same settings with links valid for `ttl`.
    pub fn with_ttl(mut self, ttl: chrono::Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// The link an invitee opens.
    pub fn link(&self, token: &SecretToken) -> String {
        format!(
            "{}{}/invitations/{}",
            self.base_url,
            self.auth_path,
            token.expose()
        )
    }
}

/// An invitation to create.
#[derive(Debug, Clone)]
pub struct NewInvitation {
    /// The organization to invite to.
    pub organization_id: i64,
    /// The invitee's email; it is trimmed, lower-cased and checked.
    pub email: String,
    /// The role the invitee gets on accepting.
    pub role: OrgRole,
    /// A personal message for the mail (at most [`MAX_MESSAGE`] characters).
    pub message: Option<String>,
    /// The invitee's names, when the admin knows them (empty: none).
    pub first_name: Option<String>,
    /// The invitee's last name, when the admin knows it (empty: none).
    pub last_name: Option<String>,
    /// Groups of the organization the invitee joins on accepting (ids).
    pub groups: Vec<i64>,
}

/// A created or resent invitation. `token` is the secret of the link just
/// queued; it exists nowhere else (only its digest is stored).
#[derive(Debug, Clone)]
pub struct IssuedInvitation {
    /// The invitation as stored now.
    pub invitation: Invitation,
    /// The link's secret token; hand it on in the link only.
    pub token: SecretToken,
    /// The outbox id of the queued mail.
    pub outbox_id: i64,
}

/// An optional name: trimmed, at most [`MAX_NAME`] characters, no control
/// characters; empty is none.
fn clean_name(field: &'static str, name: Option<&str>) -> Result<Option<String>, CoreError> {
    match name {
        None => Ok(None),
        Some(n) => Ok(Some(validate::text(field, n, MAX_NAME)?).filter(|n| !n.is_empty())),
    }
}

/// The personal message: trimmed, at most [`MAX_MESSAGE`] characters, line
/// breaks kept (as `\n`), no other control characters.
fn clean_message(message: Option<&str>) -> Result<Option<String>, CoreError> {
    let Some(m) = message else { return Ok(None) };
    let m = m.replace("\r\n", "\n");
    let m = m.trim();
    if m.is_empty() {
        return Ok(None);
    }
    if m.chars().count() > MAX_MESSAGE {
        return Err(CoreError::TooLong {
            field: "message",
            max: MAX_MESSAGE,
        });
    }
    if m.chars().any(|c| c.is_control() && c != '\n') {
        return Err(CoreError::Invalid {
            field: "message",
            reason: "contains control characters".into(),
        });
    }
    Ok(Some(m.to_owned()))
}

fn by_id(conn: &mut DbConnection, id: i64) -> InvitationResult<Invitation> {
    invitations::table
        .find(id)
        .select(Invitation::as_select())
        .first(conn)
        .optional()?
        .ok_or(InvitationError::Core(CoreError::NotFound("invitation")))
}

fn by_token(conn: &mut DbConnection, token: &str) -> InvitationResult<Option<Invitation>> {
    Ok(invitations::table
        .filter(invitations::token_hash.eq(hash_token(token.trim())))
        .select(Invitation::as_select())
        .first(conn)
        .optional()?)
}

fn problem_of(inv: Option<&Invitation>, at: NaiveDateTime) -> LinkProblem {
    match inv.map(|i| i.status_at(at)) {
        None => LinkProblem::Unknown,
        Some(InvitationStatus::Accepted) => LinkProblem::Accepted,
        Some(InvitationStatus::Declined) => LinkProblem::Declined,
        Some(InvitationStatus::Cancelled) => LinkProblem::Cancelled,
        Some(InvitationStatus::Expired | InvitationStatus::Pending) => LinkProblem::Expired,
    }
}

/// Loads an invitation the actor may see; others are reported as not found.
pub fn get_for(conn: &mut DbConnection, actor: &Actor, id: i64) -> InvitationResult<Invitation> {
    let inv = by_id(conn, id)?;
    if !can(
        actor,
        Action::View,
        &Target::Organization(inv.organization_id),
    ) {
        return Err(CoreError::NotFound("invitation").into());
    }
    Ok(inv)
}

fn inviter_name(conn: &mut DbConnection, actor: &Actor) -> InvitationResult<Option<String>> {
    Ok(match actor.user_id() {
        Some(id) => Some(users::get(conn, id)?.name()),
        None => None,
    })
}

/// Renders and queues the invitation mail, to the stored address.
fn queue_mail(
    conn: &mut DbConnection,
    actor: &Actor,
    settings: &InvitationSettings,
    renderer: &dyn MailRenderer,
    org: &Organization,
    inv: &Invitation,
    token: &SecretToken,
) -> InvitationResult<i64> {
    let context = json!({
        "email": inv.email,
        "organization": org.name,
        "inviter": inviter_name(conn, actor)?,
        "role": inv.role,
        "message": inv.message,
        "link": settings.link(token),
        "expires_at": inv.expires_at.format("%Y-%m-%d %H:%M UTC").to_string(),
    });
    let mail = renderer
        .render(MAIL_KIND, &context)
        .map_err(|reason| CoreError::MailTemplate {
            name: MAIL_KIND.to_owned(),
            reason,
        })?;
    Ok(outbox::enqueue(
        conn,
        &NewMail {
            kind: MAIL_KIND.to_owned(),
            recipient: inv.email.clone(),
            subject: mail.subject,
            text_body: mail.text,
            html_body: mail.html,
            invitation_id: Some(inv.id),
        },
    )?)
}

/// Mail still waiting with a link that no longer works is not sent.
fn supersede_queued_mail(
    conn: &mut DbConnection,
    invitation_id: i64,
    why: &str,
) -> InvitationResult<()> {
    diesel::update(outbox_table::table)
        .filter(outbox_table::invitation_id.eq(invitation_id))
        .filter(outbox_table::status.eq("queued"))
        .set((
            outbox_table::status.eq("failed"),
            outbox_table::last_error.eq(Some(format!("{}: {why}", outbox::SUPERSEDED))),
            outbox_table::updated_at.eq(now()),
        ))
        .execute(conn)?;
    Ok(())
}

/// Writes the invitation row without changing it, as the transaction's first
/// statement: PostgreSQL locks the row (concurrent admin changes queue up) and
/// SQLite takes its write lock up front.
fn lock_row(conn: &mut DbConnection, id: i64) -> InvitationResult<()> {
    diesel::update(invitations::table.find(id))
        .set(invitations::updated_at.eq(invitations::updated_at))
        .execute(conn)?;
    Ok(())
}

/// An account that has never chosen a password nor signed in.
fn awaiting_password(user: &User) -> bool {
    user.password_hash.is_none()
        && user.last_login_at.is_none()
        && user.local_login_enabled
        && !user.is_suspended()
}

/// True when the invitation was sent by an import to the user it created:
/// accepting it sets that account's first password (the link proves the
/// mailbox, as a reset link would).
fn sets_password(conn: &mut DbConnection, invitation_id: i64) -> InvitationResult<bool> {
    let n: i64 = import_invitations::table
        .find(invitation_id)
        .count()
        .get_result(conn)?;
    Ok(n > 0)
}

/// The account an imported invitee activates by accepting, if this is one.
fn account_to_activate(
    conn: &mut DbConnection,
    inv: &Invitation,
) -> InvitationResult<Option<User>> {
    match users::find_by_email(conn, &inv.email)? {
        Some(u) if awaiting_password(&u) && sets_password(conn, inv.id)? => Ok(Some(u)),
        _ => Ok(None),
    }
}

fn is_member(conn: &mut DbConnection, email: &str, org: i64) -> InvitationResult<bool> {
    let Some(user) = users::find_by_email(conn, email)? else {
        return Ok(false);
    };
    let n: i64 = memberships::table
        .find((user.id, org))
        .count()
        .get_result(conn)?;
    Ok(n > 0)
}

fn pending_id(conn: &mut DbConnection, org: i64, email: &str) -> InvitationResult<Option<i64>> {
    Ok(invitations::table
        .filter(invitations::organization_id.eq(org))
        .filter(invitations::email.eq(email))
        .filter(invitations::status.eq(InvitationStatus::Pending.as_str()))
        .select(invitations::id)
        .first(conn)
        .optional()?)
}
