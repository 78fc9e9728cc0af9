//! The in-process queue between requests and the `activity_events` table.
//! `record` never blocks and never fails the caller: it checks the page-view
//! dedup window, then `try_send`s into a bounded channel; a full queue drops
//! the event, counts it and logs (at most once every ten seconds). One
//! thread per recorder drains the queue, writes up to `batch_size` events
//! per transaction, and purges rows past the retention in bounded batches
//! between writes. It ends once every handle to the recorder is gone, after
//! writing what was queued.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lru::LruCache;

use super::{insert_batch, purge_before, ActivityConfig, NewActivity, PAGE_VIEW};
use crate::db::Pool;
use crate::error::{CoreError, CoreResult};

/// How many (user, route) pairs the dedup window remembers.
const DEDUP_ENTRIES: usize = 100_000;
/// A failed batch is tried again this many times before it is given up.
const WRITE_ATTEMPTS: u32 = 5;
const LOG_EVERY: Duration = Duration::from_secs(10);

enum Message {
    Event(NewActivity),
    /// A session used on a service: its sign-in counts for that service.
    SignIn {
        user_id: i64,
        session_id: i64,
        service_id: i64,
        signed_in_at: chrono::NaiveDateTime,
    },
    /// Answered once everything queued before it is written.
    Flush(SyncSender<()>),
    /// Run the retention purge now; answered with the rows deleted.
    Purge(SyncSender<u64>),
}

/// Counters since the recorder started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ActivityStats {
    /// Accepted into the queue.
    pub queued: u64,
    /// Dropped because the queue was full.
    pub dropped: u64,
    /// Page views left out by the dedup window.
    pub deduplicated: u64,
    /// Written to the table.
    pub written: u64,
    /// Lost because the database refused them after every retry.
    pub failed: u64,
    /// Deleted by the retention.
    pub purged: u64,
}

#[derive(Default)]
struct Counters {
    queued: AtomicU64,
    dropped: AtomicU64,
    deduplicated: AtomicU64,
    written: AtomicU64,
    failed: AtomicU64,
    purged: AtomicU64,
}

struct Inner {
    tx: SyncSender<Message>,
    config: ActivityConfig,
    counters: Arc<Counters>,
    /// (user, method, route) → the dedup window it was last recorded in.
    seen: Mutex<LruCache<(i64, String), i64>>,
    last_drop_log: Mutex<Option<Instant>>,
    /// The host's services by slug.
    services: HashMap<String, i64>,
    /// (session, service) pairs already sent to the writer.
    signed_in: Mutex<LruCache<(i64, i64), ()>>,
}

/// Cheap to clone; every clone feeds the same queue and writer.
#[derive(Clone)]
pub struct Recorder(Arc<Inner>);

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("stats", &self.stats())
            .finish()
    }
}

impl Recorder {
    /// Starts the writer thread on `pool`.
    pub fn start(
        pool: Pool,
        config: ActivityConfig,
        services: &[crate::services::Service],
    ) -> CoreResult<Recorder> {
        config.check()?;
        let (tx, rx) = mpsc::sync_channel(config.queue_capacity);
        let counters = Arc::new(Counters::default());
        let writer = Writer {
            pool,
            rx,
            config: config.clone(),
            counters: counters.clone(),
        };
        std::thread::Builder::new()
            .name("frontdesk-activity".into())
            .spawn(move || writer.run())
            .map_err(|e| CoreError::Config(format!("activity writer thread: {e}")))?;
        let capacity = NonZeroUsize::new(DEDUP_ENTRIES).unwrap_or(NonZeroUsize::MIN);
        Ok(Recorder(Arc::new(Inner {
            tx,
            config,
            counters,
            seen: Mutex::new(LruCache::new(capacity)),
            last_drop_log: Mutex::new(None),
            services: services.iter().map(|s| (s.slug.clone(), s.id)).collect(),
            signed_in: Mutex::new(LruCache::new(capacity)),
        })))
    }

    /// The configuration the recorder runs with.
    pub fn config(&self) -> &ActivityConfig {
        &self.0.config
    }

    /// Queues `event` without waiting; false when it was left out (a page
    /// view inside the dedup window) or dropped (queue full).
    pub fn record(&self, event: NewActivity) -> bool {
        if event.kind == PAGE_VIEW && self.duplicate(&event) {
            self.0.counters.deduplicated.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        match self.0.tx.try_send(Message::Event(event)) {
            Ok(()) => {
                self.0.counters.queued.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(TrySendError::Full(_)) => {
                let dropped = self.0.counters.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                self.log_drop(dropped);
                false
            }
            Err(TrySendError::Disconnected(_)) => {
                self.0.counters.failed.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// The id of a declared service.
    pub fn service_id(&self, slug: &str) -> Option<i64> {
        self.0.services.get(slug).copied()
    }

    /// Notes (without waiting) that a session signed in at `signed_in_at`
    /// was used on `service`; sent to the writer once per session and
    /// service. An undeclared service is ignored.
    pub fn signed_in(
        &self,
        user_id: i64,
        session_id: i64,
        service: &str,
        signed_in_at: chrono::NaiveDateTime,
    ) {
        let Some(service_id) = self.service_id(service) else {
            return;
        };
        {
            let Ok(mut seen) = self.0.signed_in.lock() else {
                return;
            };
            if seen.put((session_id, service_id), ()).is_some() {
                return;
            }
        }
        let m = Message::SignIn {
            user_id,
            session_id,
            service_id,
            signed_in_at,
        };
        if let Err(TrySendError::Full(_)) = self.0.tx.try_send(m) {
            // Sent again by the session's next request.
            if let Ok(mut seen) = self.0.signed_in.lock() {
                seen.pop(&(session_id, service_id));
            }
            let dropped = self.0.counters.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            self.log_drop(dropped);
        }
    }

    fn duplicate(&self, e: &NewActivity) -> bool {
        let Some(window) = self.0.config.page_view_dedup else {
            return false;
        };
        let slot = e.at.and_utc().timestamp() / window.as_secs().max(1) as i64;
        let key = (
            e.user_id,
            format!(
                "{} {}",
                e.method.as_deref().unwrap_or(""),
                e.route.as_deref().unwrap_or("")
            ),
        );
        let Ok(mut seen) = self.0.seen.lock() else {
            return false;
        };
        match seen.get(&key) {
            Some(&s) if s == slot => true,
            _ => {
                seen.put(key, slot);
                false
            }
        }
    }

    fn log_drop(&self, total: u64) {
        let Ok(mut last) = self.0.last_drop_log.lock() else {
            return;
        };
        if last.is_none_or(|t| t.elapsed() >= LOG_EVERY) {
            *last = Some(Instant::now());
            tracing::warn!(
                "frontdesk: activity queue full ({} events); {total} events dropped so far",
                self.0.config.queue_capacity
            );
        }
    }

    /// The recorder's counters so far: events queued, dropped, deduplicated,
    /// written, failed and purged.
    pub fn stats(&self) -> ActivityStats {
        let c = &self.0.counters;
        ActivityStats {
            queued: c.queued.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            deduplicated: c.deduplicated.load(Ordering::Relaxed),
            written: c.written.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
            purged: c.purged.load(Ordering::Relaxed),
        }
    }

    /// Waits (blocking) until every event queued before the call is written:
    /// for a graceful shutdown, and for tests that read the table.
    pub fn flush(&self) {
        let (tx, rx) = mpsc::sync_channel(1);
        if self.0.tx.send(Message::Flush(tx)).is_ok() {
            let _ = rx.recv();
        }
    }

    /// Runs the retention purge now (blocking) and returns the rows deleted.
    pub fn purge_now(&self) -> u64 {
        let (tx, rx) = mpsc::sync_channel(1);
        if self.0.tx.send(Message::Purge(tx)).is_ok() {
            rx.recv().unwrap_or(0)
        } else {
            0
        }
    }
}

/// (user, session, service, signed in at)
type SignIn = (i64, i64, i64, chrono::NaiveDateTime);

struct Writer {
    pool: Pool,
    rx: Receiver<Message>,
    config: ActivityConfig,
    counters: Arc<Counters>,
}

impl Writer {
    fn run(self) {
        let mut next_purge = Instant::now();
        let mut purging = false;
        let mut batch: Vec<NewActivity> = Vec::with_capacity(self.config.batch_size);
        let mut sign_ins: Vec<SignIn> = Vec::new();
        loop {
            // While a purge is under way, wait for nothing: one bounded
            // delete batch runs between writes until it is done.
            let wait = if purging {
                Duration::ZERO
            } else {
                next_purge.saturating_duration_since(Instant::now())
            };
            let mut replies = Vec::new();
            let mut purge_replies = Vec::new();
            let mut closed = false;
            match self.rx.recv_timeout(wait) {
                Ok(m) => self.take(
                    m,
                    &mut batch,
                    &mut sign_ins,
                    &mut replies,
                    &mut purge_replies,
                ),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => closed = true,
            }
            while !closed && batch.len() < self.config.batch_size && replies.is_empty() {
                match self.rx.try_recv() {
                    Ok(m) => self.take(
                        m,
                        &mut batch,
                        &mut sign_ins,
                        &mut replies,
                        &mut purge_replies,
                    ),
                    Err(mpsc::TryRecvError::Empty) => break,
                    Err(mpsc::TryRecvError::Disconnected) => closed = true,
                }
            }
            self.write(&mut batch);
            self.write_sign_ins(&mut sign_ins);
            for r in replies {
                let _ = r.send(());
            }
            if !purge_replies.is_empty() {
                let mut total = 0;
                while let Some(n) = self.purge_batch() {
                    total += n;
                    if n < self.config.retention_batch as u64 {
                        break;
                    }
                }
                for r in purge_replies {
                    let _ = r.send(total);
                }
            } else if purging || Instant::now() >= next_purge {
                purging = matches!(self.purge_batch(), Some(n) if n == self.config.retention_batch as u64);
                if !purging {
                    next_purge = Instant::now() + self.config.retention_interval;
                }
            }
            if closed {
                return;
            }
        }
    }

    fn take(
        &self,
        m: Message,
        batch: &mut Vec<NewActivity>,
        sign_ins: &mut Vec<SignIn>,
        replies: &mut Vec<SyncSender<()>>,
        purges: &mut Vec<SyncSender<u64>>,
    ) {
        match m {
            Message::Event(e) => batch.push(e),
            Message::SignIn {
                user_id,
                session_id,
                service_id,
                signed_in_at,
            } => sign_ins.push((user_id, session_id, service_id, signed_in_at)),
            Message::Flush(r) => replies.push(r),
            Message::Purge(r) => purges.push(r),
        }
    }

    fn write(&self, batch: &mut Vec<NewActivity>) {
        if batch.is_empty() {
            return;
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = self
                .pool
                .get()
                .map_err(|e| e.to_string())
                .and_then(|mut c| insert_batch(&mut c, batch).map_err(|e| e.to_string()));
            match result {
                Ok(n) => {
                    self.counters.written.fetch_add(n as u64, Ordering::Relaxed);
                    break;
                }
                Err(e) if attempt < WRITE_ATTEMPTS => {
                    tracing::warn!("frontdesk: activity batch not written yet ({e}); retrying");
                    std::thread::sleep(Duration::from_millis(200 * u64::from(attempt)));
                }
                Err(e) => {
                    tracing::error!(
                        "frontdesk: {} activity events lost, the database refused them: {e}",
                        batch.len()
                    );
                    self.counters
                        .failed
                        .fetch_add(batch.len() as u64, Ordering::Relaxed);
                    break;
                }
            }
        }
        batch.clear();
    }

    fn write_sign_ins(&self, sign_ins: &mut Vec<SignIn>) {
        if sign_ins.is_empty() {
            return;
        }
        match self.pool.get() {
            Ok(mut conn) => {
                for (user_id, session_id, service_id, at) in sign_ins.iter() {
                    if let Err(e) = crate::services::record_sign_in(
                        &mut conn,
                        *user_id,
                        *session_id,
                        *service_id,
                        *at,
                    ) {
                        // A session or user deleted since: nothing to record.
                        tracing::debug!("frontdesk: service sign-in not recorded: {e}");
                    }
                }
            }
            Err(e) => tracing::warn!("frontdesk: service sign-ins not recorded: {e}"),
        }
        sign_ins.clear();
    }

    /// One bounded delete; `None` when retention is off or the database failed.
    fn purge_batch(&self) -> Option<u64> {
        let keep = self.config.retention?;
        let cutoff = crate::time::now() - keep;
        let mut conn = self.pool.get().ok()?;
        match purge_before(&mut conn, cutoff, self.config.retention_batch) {
            Ok(n) => {
                self.counters.purged.fetch_add(n as u64, Ordering::Relaxed);
                Some(n as u64)
            }
            Err(e) => {
                tracing::warn!("frontdesk: activity retention: {e}");
                None
            }
        }
    }
}
