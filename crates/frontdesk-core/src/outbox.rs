//! The outbox: every mail is first a row here, written in the same transaction
//! as the change that caused it. Delivery belongs to the mail crate's worker.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;

use crate::db::DbConnection;
use crate::error::CoreResult;
use crate::schema::outbox;
use crate::time::now;

/// The states a mail goes through: queued, being sent, sent, or given up.
pub const STATUSES: [&str; 4] = ["queued", "sending", "sent", "failed"];

/// How `last_error` starts on mail dropped because its link died before it was
/// sent (the invitation was resent, cancelled or declined).
pub const SUPERSEDED: &str = "superseded";

/// A mail ready to queue: recipient, subject and bodies already rendered.
#[derive(Debug, Clone)]
pub struct NewMail {
    /// The mail's name (`invitation`, `import_welcome`, ...), for lists and logs.
    pub kind: String,
    /// The address it goes to.
    pub recipient: String,
    /// The subject line.
    pub subject: String,
    /// The plain-text body.
    pub text_body: String,
    /// The HTML body, if the mail has one.
    pub html_body: Option<String>,
    /// The invitation the mail carries a link for, if any; resending or
    /// cancelling the invitation drops the unsent mail.
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

/// A mail rendered from its templates: what [`enqueue`] needs besides the recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedMail {
    /// The subject line.
    pub subject: String,
    /// The plain-text body.
    pub text: String,
    /// The HTML body, if the template has one.
    pub html: Option<String>,
}

/// Renders a named mail (`"invitation"`, …) from a JSON context. Services that
/// queue mail take one, so core needs no template engine; the mail crate's
/// `Templates` is the implementation.
pub trait MailRenderer: Send + Sync {
    /// Renders the mail named `mail` with `context`; the error is the template
    /// engine's message.
    fn render(&self, mail: &str, context: &serde_json::Value) -> Result<RenderedMail, String>;
}

/// One outbox row, as the worker and the operator's lists see it.
#[derive(Debug, Clone, Queryable, QueryableByName, Selectable, Serialize)]
#[diesel(table_name = outbox)]
pub struct OutboxMail {
    /// The mail's outbox id.
    pub id: i64,
    /// The mail's name (`invitation`, `import_welcome`, ...).
    pub kind: String,
    /// The address it goes to.
    pub recipient: String,
    /// The subject line.
    pub subject: String,
    /// The plain-text body.
    pub text_body: String,
    /// The HTML body, if any.
    pub html_body: Option<String>,
    /// The invitation the mail carries a link for, if any.
    pub invitation_id: Option<i64>,
    /// One of [`STATUSES`]: `queued`, `sending`, `sent` or `failed`.
    pub status: String,
    /// Delivery attempts so far.
    pub attempts: i32,
    /// When the next attempt is due (UTC).
    pub next_attempt_at: NaiveDateTime,
    /// While `sending`, when the worker's claim runs out (UTC).
    pub locked_until: Option<NaiveDateTime>,
    /// Why the last attempt failed, if it did.
    pub last_error: Option<String>,
    /// When the mail was sent (UTC).
    pub sent_at: Option<NaiveDateTime>,
    /// When it was queued (UTC).
    pub created_at: NaiveDateTime,
    /// When the row last changed (UTC).
    pub updated_at: NaiveDateTime,
}

const CLAIM_COLUMNS: &str =
    "id, kind, recipient, subject, text_body, html_body, invitation_id, status, \
     attempts, next_attempt_at, locked_until, last_error, sent_at, created_at, updated_at";

/// Claims up to `limit` due mails for one delivery round: queued rows whose
/// time has come, and `sending` rows whose lease ran out (their worker died).
/// Claimed rows become `sending` until `now + lease`, with `attempts` raised by
/// one; that count is the claim's fencing token for [`mark_sent`] and
/// [`mark_unsent`].
///
/// PostgreSQL: several instances may run workers on one database, and
/// `FOR UPDATE SKIP LOCKED` hands each row to exactly one of them. SQLite: one
/// UPDATE statement under the database write lock, so a row is never claimed twice.
pub fn claim_due(
    conn: &mut DbConnection,
    limit: i64,
    lease: chrono::Duration,
) -> CoreResult<Vec<OutboxMail>> {
    use diesel::sql_types::{BigInt, Timestamp};
    let t = now();
    let until = t + lease;
    let mut rows: Vec<OutboxMail> = match conn {
        #[cfg(feature = "postgres")]
        DbConnection::Pg(c) => diesel::sql_query(format!(
            "WITH due AS ( \
                 SELECT id FROM outbox \
                 WHERE (status = 'queued' AND next_attempt_at <= $1) \
                    OR (status = 'sending' AND locked_until < $1) \
                 ORDER BY next_attempt_at, id LIMIT $2 \
                 FOR UPDATE SKIP LOCKED) \
             UPDATE outbox SET status = 'sending', locked_until = $3, attempts = outbox.attempts + 1, updated_at = $1 \
             FROM due WHERE outbox.id = due.id \
             RETURNING {}",
            CLAIM_COLUMNS
                .split(", ")
                .map(|c| format!("outbox.{c}"))
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .bind::<Timestamp, _>(t)
        .bind::<BigInt, _>(limit)
        .bind::<Timestamp, _>(until)
        .load(c)?,
        #[cfg(feature = "sqlite")]
        DbConnection::Sqlite(c) => diesel::sql_query(format!(
            "UPDATE outbox SET status = 'sending', locked_until = ?, attempts = attempts + 1, updated_at = ? \
             WHERE id IN ( \
                 SELECT id FROM outbox \
                 WHERE (status = 'queued' AND next_attempt_at <= ?) \
                    OR (status = 'sending' AND locked_until < ?) \
                 ORDER BY next_attempt_at, id LIMIT ?) \
             RETURNING {CLAIM_COLUMNS}"
        ))
        .bind::<Timestamp, _>(until)
        .bind::<Timestamp, _>(t)
        .bind::<Timestamp, _>(t)
        .bind::<Timestamp, _>(t)
        .bind::<BigInt, _>(limit)
        .load(c)?,
    };
    rows.sort_by_key(|r| r.id);
    Ok(rows)
}

/// Records a delivery. Returns false when the claim was lost (its lease ran out
/// and another worker took the row), in which case nothing is changed.
pub fn mark_sent(conn: &mut DbConnection, id: i64, attempts: i32) -> CoreResult<bool> {
    let t = now();
    let n = diesel::update(outbox::table.find(id))
        .filter(outbox::status.eq("sending"))
        .filter(outbox::attempts.eq(attempts))
        .set((
            outbox::status.eq("sent"),
            outbox::sent_at.eq(Some(t)),
            outbox::locked_until.eq(None::<NaiveDateTime>),
            outbox::last_error.eq(None::<String>),
            outbox::updated_at.eq(t),
        ))
        .execute(conn)?;
    Ok(n == 1)
}

/// Records a failed attempt: back to `queued` until `retry_at`, or `failed`
/// for good when `retry_at` is `None`. Same fencing as [`mark_sent`].
pub fn mark_unsent(
    conn: &mut DbConnection,
    id: i64,
    attempts: i32,
    error: &str,
    retry_at: Option<NaiveDateTime>,
) -> CoreResult<bool> {
    let t = now();
    let error: String = error.chars().take(1000).collect();
    let target = diesel::update(outbox::table.find(id))
        .filter(outbox::status.eq("sending"))
        .filter(outbox::attempts.eq(attempts));
    let n = match retry_at {
        Some(at) => target
            .set((
                outbox::status.eq("queued"),
                outbox::next_attempt_at.eq(at),
                outbox::locked_until.eq(None::<NaiveDateTime>),
                outbox::last_error.eq(Some(error)),
                outbox::updated_at.eq(t),
            ))
            .execute(conn)?,
        None => target
            .set((
                outbox::status.eq("failed"),
                outbox::locked_until.eq(None::<NaiveDateTime>),
                outbox::last_error.eq(Some(error)),
                outbox::updated_at.eq(t),
            ))
            .execute(conn)?,
    };
    Ok(n == 1)
}

/// Gives a claimed mail back untried: queued again, due now, its attempt not
/// counted. Same fencing as [`mark_sent`].
pub fn release(conn: &mut DbConnection, id: i64, attempts: i32) -> CoreResult<bool> {
    let t = now();
    let n = diesel::update(outbox::table.find(id))
        .filter(outbox::status.eq("sending"))
        .filter(outbox::attempts.eq(attempts))
        .set((
            outbox::status.eq("queued"),
            outbox::attempts.eq(attempts - 1),
            outbox::next_attempt_at.eq(t),
            outbox::locked_until.eq(None::<NaiveDateTime>),
            outbox::updated_at.eq(t),
        ))
        .execute(conn)?;
    Ok(n == 1)
}

/// Mail an operator should look at: `failed` rows (but superseded ones), and `sending` rows whose
/// lease has run out (a worker died holding them), newest first.
pub fn list_problems(conn: &mut DbConnection, limit: i64) -> CoreResult<Vec<OutboxMail>> {
    let t = now();
    Ok(outbox::table
        .filter(
            outbox::status
                .eq("failed")
                .and(outbox::last_error.not_like(format!("{SUPERSEDED}%")))
                .or(outbox::status.eq("sending").and(outbox::locked_until.lt(t))),
        )
        .order(outbox::id.desc())
        .limit(limit)
        .select(OutboxMail::as_select())
        .load(conn)?)
}

/// Queued mail that has failed at least once and waits for its next attempt
/// (an SMTP outage shows up here first), the longest-waiting first.
pub fn list_retrying(conn: &mut DbConnection, limit: i64) -> CoreResult<Vec<OutboxMail>> {
    Ok(outbox::table
        .filter(outbox::status.eq("queued"))
        .filter(outbox::attempts.gt(0))
        .order((outbox::next_attempt_at.asc(), outbox::id.asc()))
        .limit(limit)
        .select(OutboxMail::as_select())
        .load(conn)?)
}

/// One outbox row by id.
pub fn get(conn: &mut DbConnection, id: i64) -> CoreResult<Option<OutboxMail>> {
    Ok(outbox::table
        .find(id)
        .select(OutboxMail::as_select())
        .first(conn)
        .optional()?)
}

/// True for a failed mail that was dropped because its link died (see
/// [`SUPERSEDED`]): sending it later would deliver a dead link.
pub fn is_superseded(mail: &OutboxMail) -> bool {
    mail.status == "failed"
        && mail
            .last_error
            .as_deref()
            .is_some_and(|e| e.starts_with(SUPERSEDED))
}

/// Puts a failed mail back in the queue with a fresh attempt count.
/// Returns false when the mail is not `failed`, or was superseded (its link
/// no longer works).
pub fn retry_failed(conn: &mut DbConnection, id: i64) -> CoreResult<bool> {
    let t = now();
    let n = diesel::update(outbox::table.find(id))
        .filter(outbox::status.eq("failed"))
        .filter(
            outbox::last_error
                .is_null()
                .or(outbox::last_error.not_like(format!("{SUPERSEDED}%"))),
        )
        .set((
            outbox::status.eq("queued"),
            outbox::attempts.eq(0),
            outbox::next_attempt_at.eq(t),
            outbox::updated_at.eq(t),
        ))
        .execute(conn)?;
    Ok(n == 1)
}

/// [`retry_failed`] for every failed mail but the superseded ones; returns
/// the ids queued again.
pub fn retry_all_failed(conn: &mut DbConnection) -> CoreResult<Vec<i64>> {
    let t = now();
    Ok(diesel::update(outbox::table)
        .filter(outbox::status.eq("failed"))
        .filter(
            outbox::last_error
                .is_null()
                .or(outbox::last_error.not_like(format!("{SUPERSEDED}%"))),
        )
        .set((
            outbox::status.eq("queued"),
            outbox::attempts.eq(0),
            outbox::next_attempt_at.eq(t),
            outbox::updated_at.eq(t),
        ))
        .returning(outbox::id)
        .get_results(conn)?)
}

/// Counts rows by status (`queued`, `sending`, `sent`, `failed`).
pub fn counts(conn: &mut DbConnection) -> CoreResult<Vec<(String, i64)>> {
    Ok(outbox::table
        .group_by(outbox::status)
        .select((outbox::status, diesel::dsl::count_star()))
        .order(outbox::status.asc())
        .load(conn)?)
}
