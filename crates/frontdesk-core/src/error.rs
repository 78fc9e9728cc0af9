//! Domain errors: what went wrong, in terms of users and organizations, never HTTP.

/// Why a service refused or failed. The message names the field or record
/// and never carries a secret.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// The email address is not valid (it is the address as given).
    #[error("invalid email address: {0:?}")]
    InvalidEmail(String),
    /// Another user already has this email.
    #[error("a user with the email {0} already exists")]
    DuplicateEmail(String),
    /// Another organization already has this slug.
    #[error("the organization slug {0:?} is already taken")]
    DuplicateSlug(String),
    /// A tag with this name already exists.
    #[error("the tag {0:?} already exists")]
    DuplicateTag(String),
    /// A group with this name already exists in the organization.
    #[error("a group named {0:?} already exists in this organization")]
    DuplicateGroup(String),
    /// A licence change would give more users of the organization the
    /// licence than it has seats.
    #[error(
        "no seat left for licence {name:?} ({licence}): {used} of {limit} seats used, this change needs {needed} more"
    )]
    SeatLimit {
        /// The licence's key.
        licence: String,
        /// The licence's name.
        name: String,
        /// Seats in use before the change.
        used: i64,
        /// Seats the organization has for the licence.
        limit: i64,
        /// Seats the change needs beyond those left.
        needed: i64,
    },
    /// A directory's (SCIM) value that must be unique is taken.
    #[error("{0}")]
    Conflict(String),
    /// A field's value is refused.
    #[error("{field} is invalid: {reason}")]
    Invalid {
        /// The field, as the form or API names it.
        field: &'static str,
        /// What is wrong with it, for the user.
        reason: String,
    },
    /// A declared profile field's value is refused (see `profile`).
    #[error("profile field {key} is invalid: {reason}")]
    InvalidProfileField {
        /// The field's key.
        key: String,
        /// What is wrong with the value, for the user.
        reason: String,
    },
    /// A field's value is longer than allowed.
    #[error("{field} is too long (at most {max} characters)")]
    TooLong {
        /// The field, as the form or API names it.
        field: &'static str,
        /// The most characters it takes.
        max: usize,
    },
    /// The record does not exist, or the actor may not see it; names the kind of
    /// record (`user`, `organization`).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The user is already a member of the organization.
    #[error("the user is already a member of this organization")]
    AlreadyMember,
    /// The change would leave the organization without an owner.
    #[error("an organization must keep at least one owner")]
    LastOwner,
    /// The change would leave the site without a staff owner.
    #[error("the last staff owner cannot be removed or demoted")]
    LastStaffOwner,
    /// The organization accepts only some email domains, and this address is not
    /// in one of them.
    #[error("the email domain is not allowed in this organization")]
    DomainNotAllowed,
    /// The actor may not do this.
    #[error("not allowed")]
    Forbidden,
    /// A mail template failed to render.
    #[error("the {name} mail could not be rendered: {reason}")]
    MailTemplate {
        /// The mail template's name.
        name: String,
        /// The template engine's message.
        reason: String,
    },
    /// The configuration is wrong (a bad URL, a missing setting).
    #[error("configuration: {0}")]
    Config(String),
    /// The embedded migrations could not be applied.
    #[error("database migration failed: {0}")]
    Migration(String),
    /// No connection could be had from the pool in time.
    #[error("database unavailable: {0}")]
    Pool(String),
    /// Any other database error.
    #[error("database error: {0}")]
    Database(#[from] diesel::result::Error),
    /// An event listener refused the change (its message); nothing was saved.
    #[error("{0}")]
    Vetoed(String),
}

impl CoreError {
    /// The database could not be reached: the pool found no connection, or
    /// the server ended the one in use (a restart, a failover). Worth
    /// retrying: the pool replaces an ended connection.
    pub fn is_outage(&self) -> bool {
        use diesel::result::{DatabaseErrorKind, Error};
        match self {
            CoreError::Pool(_) => true,
            CoreError::Database(Error::DatabaseError(kind, _)) => matches!(
                kind,
                DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand
            ),
            _ => false,
        }
    }

    /// True when the error is the caller's input, not the system's failure:
    /// false for configuration, mail template, migration, pool and database
    /// errors.
    pub fn is_client_error(&self) -> bool {
        !matches!(
            self,
            CoreError::Config(_)
                | CoreError::MailTemplate { .. }
                | CoreError::Migration(_)
                | CoreError::Pool(_)
                | CoreError::Database(_)
        )
    }
}

/// The result of every service.
pub type CoreResult<T> = Result<T, CoreError>;
