//! Domain errors: what went wrong, in terms of users and organizations, never HTTP.

#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error("invalid email address: {0:?}")]
    InvalidEmail(String),
    #[error("a user with the email {0} already exists")]
    DuplicateEmail(String),
    #[error("the organization slug {0:?} is already taken")]
    DuplicateSlug(String),
    #[error("the tag {0:?} already exists")]
    DuplicateTag(String),
    #[error("a group named {0:?} already exists in this organization")]
    DuplicateGroup(String),
    /// A licence change would give more users of the organization the
    /// licence than it has seats.
    #[error(
        "no seat left for licence {name:?} ({licence}): {used} of {limit} seats used, this change needs {needed} more"
    )]
    SeatLimit {
        licence: String,
        name: String,
        used: i64,
        limit: i64,
        needed: i64,
    },
    /// A directory's (SCIM) value that must be unique is taken.
    #[error("{0}")]
    Conflict(String),
    #[error("{field} is invalid: {reason}")]
    Invalid { field: &'static str, reason: String },
    /// A declared profile field's value is refused (see `profile`).
    #[error("profile field {key} is invalid: {reason}")]
    InvalidProfileField { key: String, reason: String },
    #[error("{field} is too long (at most {max} characters)")]
    TooLong { field: &'static str, max: usize },
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("the user is already a member of this organization")]
    AlreadyMember,
    #[error("an organization must keep at least one owner")]
    LastOwner,
    #[error("the last staff owner cannot be removed or demoted")]
    LastStaffOwner,
    #[error("the email domain is not allowed in this organization")]
    DomainNotAllowed,
    #[error("not allowed")]
    Forbidden,
    #[error("the {name} mail could not be rendered: {reason}")]
    MailTemplate { name: String, reason: String },
    #[error("configuration: {0}")]
    Config(String),
    #[error("database migration failed: {0}")]
    Migration(String),
    #[error("database unavailable: {0}")]
    Pool(String),
    #[error("database error: {0}")]
    Database(#[from] diesel::result::Error),
    /// An event listener refused the change (its message); nothing was saved.
    #[error("{0}")]
    Vetoed(String),
}

impl CoreError {
    /// True when the error is the caller's input, not the system's failure.
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

pub type CoreResult<T> = Result<T, CoreError>;
