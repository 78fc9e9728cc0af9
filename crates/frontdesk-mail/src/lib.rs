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

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("mail configuration: {0}")]
    Config(String),
    #[error("mail template: {0}")]
    Template(String),
    #[error("outbox worker: {0}")]
    Worker(String),
    #[error(transparent)]
    Core(#[from] frontdesk_core::CoreError),
}
