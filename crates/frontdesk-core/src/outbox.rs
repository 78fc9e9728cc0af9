//! The outbox: every mail is first a row here, written in the same transaction
//! as the change that caused it. Delivery belongs to the mail crate's worker.

use diesel::prelude::*;

use crate::db::DbConnection;
use crate::error::CoreResult;
use crate::schema::outbox;
use crate::time::now;

/// A mail ready to queue: recipient, subject and bodies already rendered.
#[derive(Debug, Clone)]
pub struct NewMail {
    pub kind: String,
    pub recipient: String,
    pub subject: String,
    pub text_body: String,
    pub html_body: Option<String>,
    pub invitation_id: Option<i64>,
}

/// Queues a mail; returns its outbox id. Call inside the caller's transaction.
pub fn enqueue(conn: &mut DbConnection, mail: &NewMail) -> CoreResult<i64> {
    let t = now();
    Ok(diesel::insert_into(outbox::table)
        .values((
            outbox::kind.eq(&mail.kind),
            outbox::recipient.eq(&mail.recipient),
            outbox::subject.eq(&mail.subject),
            outbox::text_body.eq(&mail.text_body),
            outbox::html_body.eq(&mail.html_body),
            outbox::invitation_id.eq(mail.invitation_id),
            outbox::status.eq("queued"),
            outbox::next_attempt_at.eq(t),
            outbox::created_at.eq(t),
            outbox::updated_at.eq(t),
        ))
        .returning(outbox::id)
        .get_result(conn)?)
}
