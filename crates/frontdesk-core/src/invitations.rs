//! Invitations: an admin invites an email address into an organization with a
//! role; the invitee accepts (a new account, or their existing one) or declines
//! through a single-use link. The invitation mail is queued in the outbox in
//! the same transaction as the change that causes it.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::audit;
use crate::authz::{authorize, can, Action, Actor, OrgRole, Target};
use crate::db::{Backend, DbConnection};
use crate::error::CoreError;
use crate::organizations::{self, Organization};
use crate::outbox::{self, MailRenderer, NewMail};
use crate::schema::{
    import_invitations, invitations, memberships, organizations as orgs_table,
    outbox as outbox_table, users as users_table,
};
use crate::time::now;
use crate::tokens::{hash_token, SecretToken};
use crate::users::{self, unique_violation, NewUser, User};
use crate::validate::{self, MAX_NAME};

crate::authz::string_enum!(InvitationStatus {
    Pending => "pending",
    Accepted => "accepted",
    Declined => "declined",
    Expired => "expired",
    Cancelled => "cancelled",
});

/// The longest personal message an admin may add.
pub const MAX_MESSAGE: usize = 1000;

const MAIL_KIND: &str = "invitation";

#[derive(Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = invitations)]
pub struct Invitation {
    pub id: i64,
    pub organization_id: i64,
    pub email: String,
    pub role: String,
    pub message: Option<String>,
    #[serde(skip)]
    pub token_hash: String,
    pub status: String,
    pub expires_at: NaiveDateTime,
    pub invited_by: Option<i64>,
    pub send_count: i32,
    pub last_sent_at: Option<NaiveDateTime>,
    pub accepted_user_id: Option<i64>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    /// The invitee's names as the admin typed them (optional): the accept
    /// page starts with them filled in.
    pub first_name: Option<String>,
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

    pub fn role(&self) -> OrgRole {
        OrgRole::parse(&self.role).unwrap_or(OrgRole::Member)
    }
}

/// Why an invitation link cannot be used. The invitee's page shows the same
/// answer for all of them; the reason is for logs and admin views.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkProblem {
    Unknown,
    Expired,
    Accepted,
    Declined,
    Cancelled,
}

#[derive(Debug, thiserror::Error)]
pub enum InvitationError {
    #[error(transparent)]
    Core(#[from] CoreError),
    #[error("an invitation to {email} is already pending in this organization; resend it instead")]
    AlreadyPending {
        invitation_id: Option<i64>,
        email: String,
    },
    #[error("this invitation is {0} and can no longer be changed")]
    NotPending(InvitationStatus),
    #[error("this invitation link is not valid (it may have expired or been used already)")]
    InvalidLink(LinkProblem),
    #[error("an account with this email address already exists: sign in to accept the invitation")]
    SignInRequired,
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

pub type InvitationResult<T> = Result<T, InvitationError>;

/// Where links point and how long they live. The base URL is configuration,
/// never a request's Host header.
#[derive(Debug, Clone)]
pub struct InvitationSettings {
    base_url: String,
    auth_path: String,
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
    pub organization_id: i64,
    pub email: String,
    pub role: OrgRole,
    pub message: Option<String>,
    /// The invitee's names, when the admin knows them (empty: none).
    pub first_name: Option<String>,
    pub last_name: Option<String>,
}

/// A created or resent invitation. `token` is the secret of the link just
/// queued; it exists nowhere else (only its digest is stored).
#[derive(Debug, Clone)]
pub struct IssuedInvitation {
    pub invitation: Invitation,
    pub token: SecretToken,
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

/// Invites `new.email` into an organization and queues the mail. An org admin
/// invites only into their own organization, with a role below owner, and only
/// addresses of the organization's allowed domains (when it has any).
pub fn create(
    conn: &mut DbConnection,
    actor: &Actor,
    settings: &InvitationSettings,
    renderer: &dyn MailRenderer,
    new: &NewInvitation,
) -> InvitationResult<IssuedInvitation> {
    authorize(
        actor,
        Action::GrantOrgRole(new.role),
        &Target::Organization(new.organization_id),
    )?;
    let email = validate::normalize_email(&new.email)?;
    let message = clean_message(new.message.as_deref())?;
    let first_name = clean_name("first_name", new.first_name.as_deref())?;
    let last_name = clean_name("last_name", new.last_name.as_deref())?;
    crate::db::write_transaction(conn, |conn| {
        let t = now();
        // A pending invitation past its expiry no longer blocks a new one. This
        // write comes first so that SQLite takes its write lock at the start of
        // the transaction (waiting its turn) instead of failing to upgrade later.
        diesel::update(invitations::table)
            .filter(invitations::organization_id.eq(new.organization_id))
            .filter(invitations::email.eq(&email))
            .filter(invitations::status.eq(InvitationStatus::Pending.as_str()))
            .filter(invitations::expires_at.le(t))
            .set((
                invitations::status.eq(InvitationStatus::Expired.as_str()),
                invitations::updated_at.eq(t),
            ))
            .execute(conn)?;
        let org = organizations::get(conn, new.organization_id)?;
        if !org.allows_email(&email) {
            return Err(CoreError::DomainNotAllowed.into());
        }
        if is_member(conn, &email, org.id)? {
            return Err(CoreError::AlreadyMember.into());
        }
        if let Some(id) = pending_id(conn, org.id, &email)? {
            return Err(InvitationError::AlreadyPending {
                invitation_id: Some(id),
                email: email.clone(),
            });
        }
        let token = SecretToken::generate();
        let inserted = diesel::insert_into(invitations::table)
            .values((
                invitations::organization_id.eq(org.id),
                invitations::email.eq(&email),
                invitations::role.eq(new.role.as_str()),
                invitations::message.eq(&message),
                invitations::first_name.eq(&first_name),
                invitations::last_name.eq(&last_name),
                invitations::token_hash.eq(token.hash()),
                invitations::status.eq(InvitationStatus::Pending.as_str()),
                invitations::expires_at.eq(t + settings.ttl),
                invitations::invited_by.eq(actor.user_id()),
                invitations::send_count.eq(1),
                invitations::last_sent_at.eq(Some(t)),
                invitations::created_at.eq(t),
                invitations::updated_at.eq(t),
            ))
            .returning(invitations::all_columns)
            .get_result::<Invitation>(conn);
        let inv = match inserted {
            // Another admin invited the same address a moment ago.
            Err(e) if unique_violation(&e) => {
                return Err(InvitationError::AlreadyPending {
                    invitation_id: None,
                    email: email.clone(),
                })
            }
            other => other?,
        };
        let outbox_id = queue_mail(conn, actor, settings, renderer, &org, &inv, &token)?;
        audit::record(
            conn,
            actor,
            "invitation.create",
            &format!("invitation:{}", inv.id),
            Some(org.id),
            json!({"email": email, "role": new.role, "organization": org.slug}),
        )?;
        Ok(IssuedInvitation {
            invitation: inv,
            token,
            outbox_id,
        })
    })
}

/// Sends the invitation again with a new link; the old link stops working.
/// Works on pending and expired invitations (an expired one gets a new expiry).
pub fn resend(
    conn: &mut DbConnection,
    actor: &Actor,
    settings: &InvitationSettings,
    renderer: &dyn MailRenderer,
    id: i64,
) -> InvitationResult<IssuedInvitation> {
    crate::db::write_transaction(conn, |conn| {
        lock_row(conn, id)?;
        let old = get_for(conn, actor, id)?;
        authorize(
            actor,
            Action::GrantOrgRole(old.role()),
            &Target::Organization(old.organization_id),
        )?;
        let t = now();
        match old.status_at(t) {
            InvitationStatus::Pending | InvitationStatus::Expired => {}
            other => return Err(InvitationError::NotPending(other)),
        }
        // An import's invitation goes to a member whose account awaits its password.
        if is_member(conn, &old.email, old.organization_id)?
            && account_to_activate(conn, &old)?.is_none()
        {
            return Err(CoreError::AlreadyMember.into());
        }
        let org = organizations::get(conn, old.organization_id)?;
        let token = SecretToken::generate();
        let updated = diesel::update(invitations::table.find(id))
            .filter(invitations::status.eq_any([
                InvitationStatus::Pending.as_str(),
                InvitationStatus::Expired.as_str(),
            ]))
            .set((
                invitations::token_hash.eq(token.hash()),
                invitations::status.eq(InvitationStatus::Pending.as_str()),
                invitations::expires_at.eq(t + settings.ttl),
                invitations::send_count.eq(invitations::send_count + 1),
                invitations::last_sent_at.eq(Some(t)),
                invitations::updated_at.eq(t),
            ))
            .returning(invitations::all_columns)
            .get_result::<Invitation>(conn)
            .optional();
        let inv = match updated {
            Err(e) if unique_violation(&e) => {
                return Err(InvitationError::AlreadyPending {
                    invitation_id: None,
                    email: old.email.clone(),
                })
            }
            Ok(None) => return Err(InvitationError::NotPending(by_id(conn, id)?.status_at(t))),
            Ok(Some(inv)) => inv,
            Err(e) => return Err(e.into()),
        };
        supersede_queued_mail(conn, id, "the invitation was sent again")?;
        let outbox_id = queue_mail(conn, actor, settings, renderer, &org, &inv, &token)?;
        audit::record(
            conn,
            actor,
            "invitation.resend",
            &format!("invitation:{id}"),
            Some(inv.organization_id),
            json!({"email": inv.email, "send_count": inv.send_count}),
        )?;
        Ok(IssuedInvitation {
            invitation: inv,
            token,
            outbox_id,
        })
    })
}

/// Withdraws a pending invitation; its link stops working and unsent mail is dropped.
pub fn cancel(conn: &mut DbConnection, actor: &Actor, id: i64) -> InvitationResult<Invitation> {
    crate::db::write_transaction(conn, |conn| {
        lock_row(conn, id)?;
        let old = get_for(conn, actor, id)?;
        authorize(
            actor,
            Action::GrantOrgRole(old.role()),
            &Target::Organization(old.organization_id),
        )?;
        let t = now();
        let inv = diesel::update(invitations::table.find(id))
            .filter(invitations::status.eq(InvitationStatus::Pending.as_str()))
            .set((
                invitations::status.eq(InvitationStatus::Cancelled.as_str()),
                invitations::updated_at.eq(t),
            ))
            .returning(invitations::all_columns)
            .get_result::<Invitation>(conn)
            .optional()?
            .ok_or(InvitationError::NotPending(old.status_at(t)))?;
        supersede_queued_mail(conn, id, "the invitation was cancelled")?;
        audit::record(
            conn,
            actor,
            "invitation.cancel",
            &format!("invitation:{id}"),
            Some(inv.organization_id),
            json!({"email": inv.email}),
        )?;
        Ok(inv)
    })
}

/// What the invitee's page shows before they decide. Reading never consumes
/// the token: mail scanners open links too.
#[derive(Debug, Clone, Serialize)]
pub struct InvitationPreview {
    pub invitation_id: i64,
    pub email: String,
    pub organization_id: i64,
    pub organization_name: String,
    pub role: OrgRole,
    pub inviter_name: Option<String>,
    pub message: Option<String>,
    /// The names the admin gave, to fill the form in with.
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub expires_at: NaiveDateTime,
    /// An account with the invited address exists: the invitee signs in to accept.
    pub account_exists: bool,
}

/// Looks a link up without changing anything.
pub fn preview(conn: &mut DbConnection, token: &str) -> InvitationResult<InvitationPreview> {
    let t = now();
    let inv = by_token(conn, token)?;
    let inv = match inv {
        Some(i) if i.status_at(t) == InvitationStatus::Pending => i,
        other => return Err(InvitationError::InvalidLink(problem_of(other.as_ref(), t))),
    };
    let org = organizations::get(conn, inv.organization_id)?;
    let inviter_name = match inv.invited_by {
        Some(uid) => users::get(conn, uid).ok().map(|u| u.name()),
        None => None,
    };
    let account_exists = users::find_by_email(conn, &inv.email)?.is_some()
        && account_to_activate(conn, &inv)?.is_none();
    Ok(InvitationPreview {
        invitation_id: inv.id,
        email: inv.email.clone(),
        organization_id: org.id,
        organization_name: org.name,
        role: inv.role(),
        inviter_name,
        message: inv.message.clone(),
        first_name: inv.first_name.clone(),
        last_name: inv.last_name.clone(),
        expires_at: inv.expires_at,
        account_exists,
    })
}

/// How the invitee accepts.
#[derive(Clone)]
pub enum Acceptance {
    /// No account yet: create one with these names and an already computed
    /// password hash (hash outside the transaction, off the async executor).
    NewAccount {
        first_name: String,
        last_name: String,
        password_hash: String,
    },
    /// Signed in already: add the membership to this account, whose email
    /// must be the invited one.
    ExistingUser { user_id: i64 },
}

impl std::fmt::Debug for Acceptance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Acceptance::NewAccount { .. } => f.write_str("Acceptance::NewAccount(***)"),
            Acceptance::ExistingUser { user_id } => {
                write!(f, "Acceptance::ExistingUser({user_id})")
            }
        }
    }
}

/// The outcome of an accepted invitation, for the host's hooks and the sign-in.
#[derive(Debug, Clone)]
pub struct Accepted {
    pub invitation: Invitation,
    pub user: User,
    pub created_account: bool,
    /// An existing account without a password (made by an import) got its
    /// first password by this acceptance.
    pub activated_account: bool,
    pub organization_id: i64,
    pub role: OrgRole,
}

/// Claims a pending, unexpired invitation by token as the first write of the
/// transaction, so of many simultaneous attempts exactly one gets the row.
fn claim(
    conn: &mut DbConnection,
    token: &str,
    to: InvitationStatus,
    at: NaiveDateTime,
) -> InvitationResult<Invitation> {
    let claimed = diesel::update(invitations::table)
        .filter(invitations::token_hash.eq(hash_token(token.trim())))
        .filter(invitations::status.eq(InvitationStatus::Pending.as_str()))
        .filter(invitations::expires_at.gt(at))
        .set((
            invitations::status.eq(to.as_str()),
            invitations::updated_at.eq(at),
        ))
        .returning(invitations::all_columns)
        .get_result::<Invitation>(conn)
        .optional()?;
    match claimed {
        Some(inv) => Ok(inv),
        None => {
            let inv = by_token(conn, token)?;
            Err(InvitationError::InvalidLink(problem_of(inv.as_ref(), at)))
        }
    }
}

/// Accepts an invitation (the POST of the invitee's page): marks it accepted,
/// creates the account or adds the membership, all in one transaction. Only
/// one of any number of concurrent attempts succeeds; the rest get `InvalidLink`.
pub fn accept(
    conn: &mut DbConnection,
    token: &str,
    how: &Acceptance,
) -> InvitationResult<Accepted> {
    let names = match how {
        Acceptance::NewAccount {
            first_name,
            last_name,
            ..
        } => Some((
            validate::text("first_name", first_name, MAX_NAME)?,
            validate::text("last_name", last_name, MAX_NAME)?,
        )),
        Acceptance::ExistingUser { .. } => None,
    };
    crate::db::write_transaction(conn, |conn| {
        let t = now();
        let inv = claim(conn, token, InvitationStatus::Accepted, t)?;
        let role = inv.role();
        let mut activated_account = false;
        let (user, created_account) = match (how, names.as_ref()) {
            (Acceptance::NewAccount { password_hash, .. }, Some((first, last))) => {
                if users::find_by_email(conn, &inv.email)?.is_some() {
                    let Some(existing) = account_to_activate(conn, &inv)? else {
                        return Err(InvitationError::SignInRequired);
                    };
                    let user =
                        activate(conn, &existing, &inv, role, first, last, password_hash, t)?;
                    activated_account = true;
                    (user, false)
                } else {
                    let new = NewUser {
                        email: inv.email.clone(),
                        first_name: first.clone(),
                        last_name: last.clone(),
                        password_hash: Some(password_hash.clone()),
                        // The invitee proved they read mail sent to this address.
                        email_verified: true,
                        organization: Some((inv.organization_id, role)),
                        activated: true,
                        ..NewUser::default()
                    };
                    let user = match users::create(conn, &Actor::system(), new) {
                        Err(CoreError::DuplicateEmail(_)) => {
                            return Err(InvitationError::SignInRequired)
                        }
                        other => other?,
                    };
                    (user, true)
                }
            }
            (Acceptance::ExistingUser { user_id }, _) => {
                let user = users::get(conn, *user_id)?;
                if user.email != inv.email {
                    return Err(InvitationError::WrongAccount);
                }
                if user.is_suspended() {
                    return Err(CoreError::Forbidden.into());
                }
                let org = organizations::get(conn, inv.organization_id)?;
                if !org.allows_email(&user.email) {
                    return Err(CoreError::DomainNotAllowed.into());
                }
                organizations::insert_membership(conn, user.id, inv.organization_id, role)?;
                (user, false)
            }
            (Acceptance::NewAccount { .. }, None) => return Err(CoreError::Forbidden.into()),
        };
        let inv = diesel::update(invitations::table.find(inv.id))
            .set(invitations::accepted_user_id.eq(Some(user.id)))
            .returning(invitations::all_columns)
            .get_result::<Invitation>(conn)?;
        let invitee = Actor::user(
            user.id,
            user.staff_role(),
            vec![(inv.organization_id, role)],
        );
        audit::record(
            conn,
            &invitee,
            "invitation.accept",
            &format!("invitation:{}", inv.id),
            Some(inv.organization_id),
            json!({"email": inv.email, "role": role, "user_id": user.id, "created_account": created_account, "activated_account": activated_account}),
        )?;
        Ok(Accepted {
            organization_id: inv.organization_id,
            invitation: inv,
            user,
            created_account,
            activated_account,
            role,
        })
    })
}

/// The invitee of an imported account sets its first password: names and
/// password from the form, the address counts as verified, and the
/// membership is added unless the import made it already.
#[allow(clippy::too_many_arguments)]
fn activate(
    conn: &mut DbConnection,
    user: &User,
    inv: &Invitation,
    role: OrgRole,
    first: &str,
    last: &str,
    password_hash: &str,
    t: NaiveDateTime,
) -> InvitationResult<User> {
    let n: i64 = memberships::table
        .find((user.id, inv.organization_id))
        .count()
        .get_result(conn)?;
    if n == 0 {
        let org = organizations::get(conn, inv.organization_id)?;
        if !org.allows_email(&user.email) {
            return Err(CoreError::DomainNotAllowed.into());
        }
        organizations::insert_membership(conn, user.id, inv.organization_id, role)?;
    }
    let profile = user.profile_map();
    let display = user.display_name.clone();
    diesel::update(users_table::table.find(user.id))
        // Only while it still has no password: two links used at once set one.
        .filter(users_table::password_hash.is_null())
        .set((
            users_table::first_name.eq(first),
            users_table::last_name.eq(last),
            users_table::password_hash.eq(Some(password_hash)),
            users_table::email_verified.eq(true),
            users_table::activated_at.eq(Some(t)),
            users_table::search_text.eq(users::search_text(
                &user.email,
                first,
                last,
                display.as_deref(),
                &profile,
            )),
            users_table::updated_at.eq(t),
        ))
        .execute(conn)
        .map_err(InvitationError::from)
        .and_then(|n| {
            if n == 1 {
                Ok(())
            } else {
                Err(InvitationError::SignInRequired)
            }
        })?;
    Ok(users::get(conn, user.id)?)
}

/// Invitations for the users an import creates (`WelcomeMail::invitations`):
/// the link settings and the mail templates.
#[derive(Clone)]
pub struct ImportInvitations {
    pub settings: InvitationSettings,
    pub renderer: std::sync::Arc<dyn MailRenderer>,
}

impl std::fmt::Debug for ImportInvitations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportInvitations")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl ImportInvitations {
    /// Invites a user the import just created (already a member, without a
    /// password) into `org`, inside the import's batch transaction, and
    /// queues the mail. A pending invitation of the same address there is
    /// cancelled first: the new link is the one that works.
    pub fn invite_created(
        &self,
        conn: &mut DbConnection,
        actor: &Actor,
        org: i64,
        email: &str,
        role: OrgRole,
    ) -> InvitationResult<IssuedInvitation> {
        authorize(
            actor,
            Action::GrantOrgRole(role),
            &Target::Organization(org),
        )?;
        let t = now();
        if let Some(old) = pending_id(conn, org, email)? {
            diesel::update(invitations::table.find(old))
                .set((
                    invitations::status.eq(InvitationStatus::Cancelled.as_str()),
                    invitations::updated_at.eq(t),
                ))
                .execute(conn)?;
            supersede_queued_mail(conn, old, "a new invitation was sent by an import")?;
        }
        let organization = organizations::get(conn, org)?;
        let token = SecretToken::generate();
        let inv = diesel::insert_into(invitations::table)
            .values((
                invitations::organization_id.eq(org),
                invitations::email.eq(email),
                invitations::role.eq(role.as_str()),
                invitations::message.eq(None::<String>),
                invitations::token_hash.eq(token.hash()),
                invitations::status.eq(InvitationStatus::Pending.as_str()),
                invitations::expires_at.eq(t + self.settings.ttl),
                invitations::invited_by.eq(actor.user_id()),
                invitations::send_count.eq(1),
                invitations::last_sent_at.eq(Some(t)),
                invitations::created_at.eq(t),
                invitations::updated_at.eq(t),
            ))
            .returning(invitations::all_columns)
            .get_result::<Invitation>(conn)?;
        diesel::insert_into(import_invitations::table)
            .values(import_invitations::invitation_id.eq(inv.id))
            .execute(conn)?;
        let outbox_id = queue_mail(
            conn,
            actor,
            &self.settings,
            self.renderer.as_ref(),
            &organization,
            &inv,
            &token,
        )?;
        audit::record(
            conn,
            actor,
            "invitation.create",
            &format!("invitation:{}", inv.id),
            Some(org),
            json!({"email": email, "role": role, "organization": organization.slug, "via": "import"}),
        )?;
        Ok(IssuedInvitation {
            invitation: inv,
            token,
            outbox_id,
        })
    }
}

/// Declines an invitation (final: the link never works again).
pub fn decline(conn: &mut DbConnection, token: &str) -> InvitationResult<Invitation> {
    crate::db::write_transaction(conn, |conn| {
        let t = now();
        let inv = claim(conn, token, InvitationStatus::Declined, t)?;
        supersede_queued_mail(conn, inv.id, "the invitation was declined")?;
        audit::record(
            conn,
            &Actor::system(),
            "invitation.decline",
            &format!("invitation:{}", inv.id),
            Some(inv.organization_id),
            json!({"email": inv.email, "by": "invitee"}),
        )?;
        Ok(inv)
    })
}

/// Writes `expired` on pending invitations past their expiry; returns how many.
/// Expiry is enforced on every read and accept regardless: this only keeps the
/// stored status in step for lists and exports.
pub fn expire_due(conn: &mut DbConnection) -> InvitationResult<usize> {
    let t = now();
    Ok(diesel::update(invitations::table)
        .filter(invitations::status.eq(InvitationStatus::Pending.as_str()))
        .filter(invitations::expires_at.le(t))
        .set((
            invitations::status.eq(InvitationStatus::Expired.as_str()),
            invitations::updated_at.eq(t),
        ))
        .execute(conn)?)
}

/// Filters for the admin list.
#[derive(Debug, Clone, Default)]
pub struct InvitationFilter {
    pub organization_id: Option<i64>,
    pub status: Option<InvitationStatus>,
    /// Substring of the invited address.
    pub email: Option<String>,
}

/// Where the latest mail of an invitation stands.
#[derive(Debug, Clone, Serialize, Queryable, Selectable)]
#[diesel(table_name = outbox_table)]
pub struct DeliveryState {
    #[diesel(column_name = id)]
    pub outbox_id: i64,
    /// `queued`, `sending`, `sent` or `failed`.
    pub status: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub next_attempt_at: NaiveDateTime,
    pub sent_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, Serialize)]
pub struct InvitationListItem {
    pub invitation: Invitation,
    /// The status as of now (a pending invitation past expiry shows as expired).
    pub status: InvitationStatus,
    pub organization_slug: String,
    pub organization_name: String,
    pub delivery: Option<DeliveryState>,
}

/// Invitations the actor may see, newest first, with their delivery state.
pub fn list(
    conn: &mut DbConnection,
    actor: &Actor,
    filter: &InvitationFilter,
    page: i64,
    limit: i64,
) -> InvitationResult<(Vec<InvitationListItem>, i64)> {
    let t = now();
    let limit = limit.clamp(1, 100);
    let visible = actor.visible_orgs();
    let build = || {
        let mut q = invitations::table.into_boxed::<Backend>();
        if let Some(orgs) = &visible {
            q = q.filter(invitations::organization_id.eq_any(orgs.clone()));
        }
        if let Some(org) = filter.organization_id {
            q = q.filter(invitations::organization_id.eq(org));
        }
        if let Some(email) = filter
            .email
            .as_deref()
            .map(str::trim)
            .filter(|e| !e.is_empty())
        {
            q = q.filter(
                invitations::email
                    .like(crate::db::like_pattern(&email.to_lowercase()))
                    .escape('\\'),
            );
        }
        let pending = InvitationStatus::Pending.as_str();
        match filter.status {
            None => {}
            Some(InvitationStatus::Pending) => {
                q = q
                    .filter(invitations::status.eq(pending))
                    .filter(invitations::expires_at.gt(t));
            }
            Some(InvitationStatus::Expired) => {
                q = q.filter(
                    invitations::status
                        .eq(InvitationStatus::Expired.as_str())
                        .or(invitations::status
                            .eq(pending)
                            .and(invitations::expires_at.le(t))),
                );
            }
            Some(s) => q = q.filter(invitations::status.eq(s.as_str())),
        }
        q
    };
    let total: i64 = build().count().get_result(conn)?;
    let rows: Vec<Invitation> = build()
        .order((invitations::created_at.desc(), invitations::id.desc()))
        .limit(limit)
        .offset((page.max(1) - 1) * limit)
        .select(Invitation::as_select())
        .load(conn)?;
    let ids: Vec<i64> = rows.iter().map(|i| i.id).collect();
    let mut org_ids: Vec<i64> = rows.iter().map(|i| i.organization_id).collect();
    org_ids.sort_unstable();
    org_ids.dedup();
    let orgs: Vec<(i64, String, String)> = orgs_table::table
        .filter(orgs_table::id.eq_any(org_ids))
        .select((orgs_table::id, orgs_table::slug, orgs_table::name))
        .load(conn)?;
    // Every mail of these invitations, oldest first: the last one is the current state.
    let mails: Vec<(Option<i64>, DeliveryState)> = outbox_table::table
        .filter(outbox_table::invitation_id.eq_any(ids))
        .order(outbox_table::id.asc())
        .select((outbox_table::invitation_id, DeliveryState::as_select()))
        .load(conn)?;
    let items = rows
        .into_iter()
        .map(|inv| {
            let delivery = mails
                .iter()
                .rev()
                .find(|(id, _)| *id == Some(inv.id))
                .map(|(_, d)| d.clone());
            let (slug, name) = orgs
                .iter()
                .find(|o| o.0 == inv.organization_id)
                .map(|o| (o.1.clone(), o.2.clone()))
                .unwrap_or_default();
            InvitationListItem {
                status: inv.status_at(t),
                invitation: inv,
                organization_slug: slug,
                organization_name: name,
                delivery,
            }
        })
        .collect();
    Ok((items, total))
}
