//! The outbox worker: claims due mail, sends it, and records the outcome —
//! sent, queued again after an exponential backoff with jitter, or failed for
//! good with the last error. A claim is a lease: mail held by a worker that
//! died is taken up again once the lease has run out.

use std::sync::Arc;
use std::time::Duration;

use diesel::Connection;
use frontdesk_core::db::{self, Pool};
use frontdesk_core::outbox::{self, OutboxMail};
use frontdesk_core::{CoreError, DbConnection};
use lettre::message::header::ContentType;
use lettre::message::{Mailbox, MultiPart};
use lettre::Message;
use rand::Rng;
use tokio::sync::{watch, Notify, Semaphore};
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::templates::one_line;
use crate::transport::{parse_mailbox, SendError, Transport};
use crate::MailError;

/// How the worker delivers.
#[derive(Debug, Clone)]
pub struct MailConfig {
    /// The sender of every mail.
    pub from: Mailbox,
    /// Mails claimed per round.
    pub batch_size: i64,
    /// Mails in flight at once (match the SMTP pool size, 16 by default).
    pub concurrency: usize,
    /// Attempts before a mail is marked `failed`.
    pub max_attempts: i32,
    /// Wait before the second attempt; doubles for each further one.
    pub base_backoff: Duration,
    /// The longest wait between two attempts, however many failed before.
    pub max_backoff: Duration,
    /// How long a claim holds a mail; a worker that dies releases its mail after
    /// this. Sends start only in its first half, so keep it above twice the
    /// longest single send (the SMTP timeout times a few commands).
    pub lease: Duration,
    /// Pause between rounds when nothing was due.
    pub poll_interval: Duration,
    /// How often the worker also restores users whose timed suspension has
    /// ended (`users::restore_ended_suspensions`); default every minute.
    pub sweep_interval: Duration,
}

impl MailConfig {
    /// Defaults: batches of 50, 16 in flight, 8 attempts from 30 s up to 1 h
    /// apart, 10-minute lease, polling every 2 s.
    pub fn new(from: &str) -> Result<Self, MailError> {
        Ok(MailConfig {
            from: parse_mailbox(from)?,
            batch_size: 50,
            concurrency: 16,
            max_attempts: 8,
            base_backoff: Duration::from_secs(30),
            max_backoff: Duration::from_secs(3600),
            lease: Duration::from_secs(600),
            poll_interval: Duration::from_secs(2),
            sweep_interval: Duration::from_secs(60),
        })
    }

    /// The wait after failed attempt number `attempts` (1-based): the doubled
    /// base, capped, then a random point in its upper half so that mail failing
    /// together does not retry together.
    pub(crate) fn backoff(&self, attempts: i32) -> Duration {
        let exp = u32::try_from(attempts.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
        let full = self
            .base_backoff
            .saturating_mul(2u32.saturating_pow(exp))
            .min(self.max_backoff);
        let half = full / 2;
        let jitter_ms = u64::try_from(half.as_millis()).unwrap_or(u64::MAX);
        half + Duration::from_millis(rand::thread_rng().gen_range(0..=jitter_ms))
    }
}

/// What one round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    /// Mails taken from the outbox for this round.
    pub claimed: usize,
    /// Mails the transport accepted, now marked sent.
    pub sent: usize,
    /// Failed this time, queued again.
    pub retried: usize,
    /// Failed for good (permanent error or out of attempts).
    pub failed: usize,
    /// Not tried (too late in the lease to start safely), queued again as they were.
    pub released: usize,
    /// Outcomes not recorded because the lease had run out and another worker
    /// took the mail over.
    pub lost_claims: usize,
}

/// Delivers the outbox. Cheap to clone.
#[derive(Clone)]
pub struct Mailer {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    transport: Transport,
    config: MailConfig,
}

enum Outcome {
    Sent,
    Failed(SendError),
    /// Not sent: too late in the lease to start safely.
    NotTried,
}

enum Record {
    Sent,
    Unsent {
        error: String,
        retry_at: Option<chrono::NaiveDateTime>,
    },
    Release,
}

impl Mailer {
    /// A worker over the outbox in `pool`, sending through `transport`.
    /// Nothing runs until [`Mailer::spawn`] or a call to deliver.
    pub fn new(pool: Pool, transport: Transport, config: MailConfig) -> Self {
        Mailer {
            inner: Arc::new(Inner {
                pool,
                transport,
                config,
            }),
        }
    }

    pub(crate) fn config(&self) -> &MailConfig {
        &self.inner.config
    }

    async fn db<T, F>(&self, f: F) -> Result<T, MailError>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConnection) -> Result<T, CoreError> + Send + 'static,
    {
        self.blocking(move |pool| {
            let mut conn = frontdesk_core::events::checkout(pool)?;
            f(&mut conn)
        })
        .await
    }

    /// Like [`Mailer::db`], but retried while the database is away
    /// ([`db::retry_on_outage`]). For the outcomes of mail already handed to
    /// SMTP: unrecorded, they would be sent again once their lease ran out.
    async fn db_retrying<T, F>(&self, f: F) -> Result<T, MailError>
    where
        T: Send + 'static,
        F: FnMut(&mut DbConnection) -> Result<T, CoreError> + Send + 'static,
    {
        self.blocking(move |pool| db::retry_on_outage(pool, f))
            .await
    }

    async fn blocking<T, F>(&self, f: F) -> Result<T, MailError>
    where
        T: Send + 'static,
        F: FnOnce(&Pool) -> Result<T, CoreError> + Send + 'static,
    {
        let pool = self.inner.pool.clone();
        // In the caller's span (the worker's round), on the blocking pool too.
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || span.in_scope(|| f(&pool)))
            .await
            .map_err(|e| MailError::Worker(e.to_string()))?
            .map_err(MailError::Core)
    }

    /// One round: claim what is due, send it, record each outcome.
    pub async fn deliver_due_once(&self) -> Result<DeliveryReport, MailError> {
        let cfg = &self.inner.config;
        let batch = cfg.batch_size.max(1);
        let lease =
            chrono::Duration::from_std(cfg.lease).map_err(|e| MailError::Config(e.to_string()))?;
        let claimed_at = tokio::time::Instant::now();
        let claimed = self
            .db(move |conn| outbox::claim_due(conn, batch, lease))
            .await?;
        let mut report = DeliveryReport {
            claimed: claimed.len(),
            ..DeliveryReport::default()
        };
        if claimed.is_empty() {
            return Ok(report);
        }

        // A send starts only in the first half of the lease, so it ends before
        // the lease does (as long as one send takes less than half the lease)
        // and no other worker can have taken the mail over meanwhile.
        let start_by = claimed_at + cfg.lease / 2;
        let permits = Arc::new(Semaphore::new(cfg.concurrency.max(1)));
        let mut tasks = JoinSet::new();
        for mail in claimed {
            let inner = self.inner.clone();
            let permits = permits.clone();
            tasks.spawn(async move {
                let outcome = match permits.acquire_owned().await {
                    Ok(_permit) if tokio::time::Instant::now() > start_by => Outcome::NotTried,
                    Ok(_permit) => {
                        let outcome = deliver(&inner.transport, &inner.config.from, &mail).await;
                        // lettre hands a used SMTP connection back to its pool in a
                        // task of its own; let that run before the next send takes
                        // the permit, or the next send opens a new connection.
                        tokio::task::yield_now().await;
                        outcome
                    }
                    Err(_) => Outcome::NotTried,
                };
                (mail.id, mail.attempts, outcome)
            });
        }
        let mut outcomes = Vec::with_capacity(report.claimed);
        while let Some(joined) = tasks.join_next().await {
            outcomes.push(joined.map_err(|e| MailError::Worker(e.to_string()))?);
        }

        let now = frontdesk_core::time::now();
        let records: Vec<(i64, i32, Record)> = outcomes
            .into_iter()
            .map(|(id, attempts, outcome)| {
                let record = match outcome {
                    Outcome::Sent => Record::Sent,
                    Outcome::NotTried => Record::Release,
                    Outcome::Failed(e) => {
                        let retry_at = if e.permanent || attempts >= cfg.max_attempts {
                            None
                        } else {
                            chrono::Duration::from_std(cfg.backoff(attempts))
                                .ok()
                                .map(|d| now + d)
                        };
                        let kind = if e.permanent {
                            "permanent"
                        } else {
                            "transient"
                        };
                        Record::Unsent {
                            error: format!("attempt {attempts} ({kind}): {}", e.message),
                            retry_at,
                        }
                    }
                };
                (id, attempts, record)
            })
            .collect();
        let counts = self
            .db_retrying(move |conn| {
                conn.transaction(|conn| {
                    let mut r = DeliveryReport::default();
                    for (id, attempts, record) in &records {
                        let recorded = match record {
                            Record::Sent => outbox::mark_sent(conn, *id, *attempts)?,
                            Record::Unsent { error, retry_at } => {
                                outbox::mark_unsent(conn, *id, *attempts, error, *retry_at)?
                            }
                            Record::Release => outbox::release(conn, *id, *attempts)?,
                        };
                        match (recorded, record) {
                            (false, _) => r.lost_claims += 1,
                            (true, Record::Sent) => r.sent += 1,
                            (
                                true,
                                Record::Unsent {
                                    retry_at: Some(_), ..
                                },
                            ) => r.retried += 1,
                            (true, Record::Unsent { retry_at: None, .. }) => r.failed += 1,
                            (true, Record::Release) => r.released += 1,
                        }
                    }
                    Ok::<_, CoreError>(r)
                })
            })
            .await?;
        report.sent = counts.sent;
        report.retried = counts.retried;
        report.failed = counts.failed;
        report.released = counts.released;
        report.lost_claims = counts.lost_claims;
        if report.lost_claims > 0 {
            tracing::warn!("outbox: {} claims ran past their lease", report.lost_claims);
        }
        if report.released > 0 {
            tracing::warn!(
                "outbox: {} mails not tried within half their lease; back in the queue",
                report.released
            );
        }
        Ok(report)
    }

    /// Restores the users whose timed suspension has ended (each audited as
    /// a `user.restore` by the system); returns how many.
    pub(crate) async fn restore_ended_suspensions(&self) -> Result<usize, MailError> {
        self.db(frontdesk_core::users::restore_ended_suspensions)
            .await
    }

    /// Runs rounds until nothing is due; returns the summed report. For tests,
    /// the CLI and the benchmark.
    pub async fn deliver_all_due(&self) -> Result<DeliveryReport, MailError> {
        let mut total = DeliveryReport::default();
        loop {
            let r = self.deliver_due_once().await?;
            total.claimed += r.claimed;
            total.sent += r.sent;
            total.retried += r.retried;
            total.failed += r.failed;
            total.released += r.released;
            total.lost_claims += r.lost_claims;
            if r.claimed == 0 {
                return Ok(total);
            }
        }
    }

    /// Starts the worker on the current tokio runtime (fails outside one). On
    /// PostgreSQL every app instance may run one; on SQLite run one per database.
    pub fn spawn(&self) -> Result<MailerHandle, MailError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            MailError::Config(
                "start the mailer inside a tokio runtime (e.g. in #[actix_web::main])".into(),
            )
        })?;
        let mailer = self.clone();
        let wake = Arc::new(Notify::new());
        let (stop, mut stopped) = watch::channel(false);
        let woken = wake.clone();
        let task = runtime.spawn(
            async move {
                let cfg = mailer.config().clone();
                let mut next_sweep = tokio::time::Instant::now();
                loop {
                    // The periodic work besides mail rides on the same task.
                    if tokio::time::Instant::now() >= next_sweep {
                        next_sweep = tokio::time::Instant::now() + cfg.sweep_interval;
                        match mailer.restore_ended_suspensions().await {
                            Ok(0) => {}
                            Ok(n) => tracing::info!("outbox worker: {n} suspension(s) ended"),
                            Err(e) => tracing::error!("outbox worker: ending suspensions: {e}"),
                        }
                    }
                    let round = tracing::debug_span!("outbox_round");
                    let busy = match mailer.deliver_due_once().instrument(round).await {
                        Ok(r) => r.claimed as i64 >= cfg.batch_size,
                        Err(e) => {
                            tracing::error!("outbox worker: {e}");
                            false
                        }
                    };
                    if *stopped.borrow() {
                        break;
                    }
                    if busy {
                        continue;
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(cfg.poll_interval) => {}
                        _ = woken.notified() => {}
                        _ = stopped.changed() => break,
                    }
                }
            }
            .instrument(tracing::info_span!("outbox_worker")),
        );
        Ok(MailerHandle { wake, stop, task })
    }
}

/// Wakes a running worker so freshly queued mail goes out without waiting
/// for the next poll.
#[derive(Clone, Debug)]
pub struct MailWaker(Arc<Notify>);

impl MailWaker {
    /// Starts a round now instead of at the next poll; a no-op once the
    /// worker has stopped.
    pub fn wake(&self) {
        self.0.notify_one();
    }
}

/// A running worker.
pub struct MailerHandle {
    wake: Arc<Notify>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl MailerHandle {
    /// Starts a round now instead of at the next poll (call after queueing mail).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// A cheap, clonable way to [`wake`](Self::wake) the worker, for the web state.
    pub fn waker(&self) -> MailWaker {
        MailWaker(self.wake.clone())
    }

    /// Stops after the round in progress, so no claim is left behind.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        self.wake.notify_one();
        if let Err(e) = self.task.await {
            tracing::error!("outbox worker ended badly: {e}");
        }
    }
}

/// Builds the message of one outbox row. Header values go through lettre's
/// builder (which encodes them) after control characters are removed.
pub(crate) fn build_message(from: &Mailbox, mail: &OutboxMail) -> Result<Message, SendError> {
    let to: Mailbox = mail
        .recipient
        .trim()
        .parse()
        .map_err(|e| SendError::permanent(format!("recipient {:?}: {e}", mail.recipient)))?;
    let domain = from.email.domain().to_owned();
    let builder = Message::builder()
        .from(from.clone())
        .to(to)
        .subject(one_line(&mail.subject))
        // Stable per outbox row, so a receiver can spot a duplicate delivery.
        .message_id(Some(format!(
            "<outbox-{}.{}@{domain}>",
            mail.id,
            mail.created_at.and_utc().timestamp()
        )));
    let built = match &mail.html_body {
        Some(html) => builder.multipart(MultiPart::alternative_plain_html(
            mail.text_body.clone(),
            html.clone(),
        )),
        None => builder
            .header(ContentType::TEXT_PLAIN)
            .body(mail.text_body.clone()),
    };
    built.map_err(|e| SendError::permanent(format!("message: {e}")))
}

async fn deliver(transport: &Transport, from: &Mailbox, mail: &OutboxMail) -> Outcome {
    match build_message(from, mail) {
        Ok(message) => match transport.send(message).await {
            Ok(()) => Outcome::Sent,
            Err(e) => Outcome::Failed(e),
        },
        Err(e) => Outcome::Failed(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() -> Result<(), MailError> {
        let mut cfg = MailConfig::new("Acme <no-reply@acme.example>")?;
        cfg.base_backoff = Duration::from_secs(10);
        cfg.max_backoff = Duration::from_secs(100);
        for _ in 0..50 {
            let d1 = cfg.backoff(1);
            assert!(
                d1 >= Duration::from_secs(5) && d1 <= Duration::from_secs(10),
                "{d1:?}"
            );
            let d3 = cfg.backoff(3);
            assert!(
                d3 >= Duration::from_secs(20) && d3 <= Duration::from_secs(40),
                "{d3:?}"
            );
            let d20 = cfg.backoff(20);
            assert!(
                d20 >= Duration::from_secs(50) && d20 <= Duration::from_secs(100),
                "{d20:?}"
            );
        }
        assert!(MailConfig::new("not an address").is_err());
        Ok(())
    }

    #[test]
    fn spawning_outside_a_runtime_is_an_error_not_a_panic() -> Result<(), MailError> {
        let dir = tempfile::tempdir().map_err(|e| MailError::Config(e.to_string()))?;
        let url = format!("sqlite://{}", dir.path().join("m.db").display());
        let pool = frontdesk_core::db::connect(&url, 1)?;
        let mailer = Mailer::new(pool, Transport::memory().0, MailConfig::new("a@b.example")?);
        assert!(matches!(mailer.spawn(), Err(MailError::Config(_))));
        Ok(())
    }
}
