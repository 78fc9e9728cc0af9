#![warn(missing_docs)]

//! frontdesk-mail: lettre transports (SMTP, `.eml` folder, memory), the outbox
//! worker that delivers queued mail with retries, and the email templates.
//!
//! Mail is never sent from a request: services write it to the `outbox` table
//! in their own transaction (see `frontdesk_core::outbox`), and a [`Mailer`]
//! started with the app delivers it.

mod templates;
#[cfg(feature = "test-smtp")]
pub mod test_smtp;
mod transport;
mod worker;

pub use templates::Templates;
pub use transport::{MemoryTransport, SendError, SmtpConfig, SmtpSecurity, StoredMail, Transport};
pub use worker::{DeliveryReport, MailConfig, MailWaker, Mailer, MailerHandle};

/// Why setting up or running the mailer failed. A mail that cannot be sent
/// is not an error here: it stays in the outbox (see [`SendError`]).
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// A bad setting: the mail URL, an address, the mail folder, TLS, or a
    /// worker started outside a tokio runtime. Passwords are never repeated.
    #[error("mail configuration: {0}")]
    Config(String),
    /// A template that does not parse or render, or an override folder
    /// that cannot be read.
    #[error("mail template: {0}")]
    Template(String),
    /// A worker task panicked or was cancelled.
    #[error("outbox worker: {0}")]
    Worker(String),
    /// A database error: the outbox (or the users whose suspension ended)
    /// could not be read or updated.
    #[error(transparent)]
    Core(#[from] frontdesk_core::CoreError),
}
