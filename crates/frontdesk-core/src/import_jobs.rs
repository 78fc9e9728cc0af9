//! Imports as records: every import run from the admin pages or the API is a
//! row in `imports` (who, which file, which mode, the counts and the report).
//! Large files run in the background and write their progress after every
//! batch, so an admin can leave and come back; an import whose process died
//! is marked failed, saying how far it got (its batches are transactions).

use std::io::{Read, Seek};
use std::path::Path;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::authz::{can, Action, Actor, Target};
use crate::db::{DbConnection, Pool};
use crate::error::{CoreError, CoreResult};
use crate::imports::{
    ImportConfig, ImportError, ImportMode, ImportOptions, ImportReport, Progress,
};
use crate::organizations::Organization;
use crate::schema::imports;
use crate::time::now;

crate::authz::string_enum!(
    /// Where an import job stands.
    JobStatus {
        /// Waiting for a worker.
        Queued => "queued",
        /// A worker is checking or applying the file.
        Running => "running",
        /// Finished.
        Done => "done",
        /// Stopped by an error; the job's error says why.
        Failed => "failed",
    }
);

/// What the admin chose besides the mode, kept so a dry run can be applied
/// later with the same choices.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobOptions {
    /// The organization (slug) for rows without one.
    #[serde(default)]
    pub default_organization: Option<String>,
    /// Update existing users instead of skipping them (see
    /// [`crate::imports::ImportOptions::update_existing`]).
    #[serde(default)]
    pub update_existing: bool,
    /// Invite the created users (see [`crate::imports::WelcomeMail`]).
    #[serde(default)]
    pub invite: bool,
    /// Leave out columns the import does not know (named in the report's
    /// warnings) instead of refusing the file.
    #[serde(default)]
    pub ignore_unknown_columns: bool,
}

/// One import, as stored.
#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = imports)]
pub struct ImportJob {
    /// The import's id.
    pub id: i64,
    /// The audit label of who started it (`user:1`, `api_key:2`).
    pub actor: String,
    /// The user who started it, when a user did.
    pub actor_user_id: Option<i64>,
    /// The organization it belongs to (its admins see it), or none (staff only).
    pub organization_id: Option<i64>,
    /// The uploaded file's name (at most 200 characters).
    pub file_name: String,
    /// The mode's stored name: `dry_run`, `apply` or `strict`; [`ImportJob::mode`]
    /// parses it.
    pub mode: String,
    /// The [`JobOptions`] as JSON; [`ImportJob::options`] parses it.
    #[serde(skip)]
    pub options: String,
    /// The status's stored name; [`ImportJob::status`] parses it.
    pub status: String,
    /// Ran in the background (the file was over the row threshold).
    pub background: bool,
    /// A strict import's first pass: rows are checked, nothing written yet.
    pub checking: bool,
    /// Data rows in the file (the header not counted).
    pub total_rows: i64,
    /// Data rows processed so far.
    pub rows_done: i64,
    /// Users created so far (or that would be, in a dry run).
    pub created: i64,
    /// Existing users changed so far (update mode).
    pub updated: i64,
    /// Rows left alone so far.
    pub skipped: i64,
    /// Invalid rows so far.
    pub rejected: i64,
    /// Whether the import wrote anything.
    pub applied: bool,
    /// The finished import's report as JSON; [`ImportJob::report`] reads it.
    #[serde(skip)]
    pub report: Option<String>,
    /// Why the job failed, if it did.
    pub error: Option<String>,
    /// The name of the kept upload, while a dry run may still be applied.
    #[serde(skip)]
    pub upload_key: Option<String>,
    /// When the job was queued (UTC).
    pub created_at: NaiveDateTime,
    /// When the job last reported progress (UTC).
    pub updated_at: NaiveDateTime,
    /// When the job finished (UTC).
    pub finished_at: Option<NaiveDateTime>,
}

impl ImportJob {
    /// Where the job stands; an unknown stored status reads as failed.
    pub fn status(&self) -> JobStatus {
        JobStatus::parse(&self.status).unwrap_or(JobStatus::Failed)
    }

    /// The mode the job runs in.
    pub fn mode(&self) -> ImportMode {
        match self.mode.as_str() {
            "dry_run" => ImportMode::DryRun,
            "strict" => ImportMode::Strict,
            _ => ImportMode::Apply,
        }
    }

    /// The options the job was started with; defaults when they cannot be read.
    pub fn options(&self) -> JobOptions {
        serde_json::from_str(&self.options).unwrap_or_default()
    }

    /// Whether the job is done or failed.
    pub fn is_finished(&self) -> bool {
        matches!(self.status(), JobStatus::Done | JobStatus::Failed)
    }

    /// The report as the import returned it (JSON), once finished.
    pub fn report_json(&self) -> Option<Value> {
        self.report
            .as_deref()
            .and_then(|r| serde_json::from_str(r).ok())
    }

    /// The report in a typed form, for pages and the CSV download.
    pub fn report(&self) -> Option<StoredReport> {
        self.report
            .as_deref()
            .and_then(|r| serde_json::from_str(r).ok())
    }

    /// A dry run whose file is still kept can be applied without a new upload.
    pub fn may_apply_again(&self) -> bool {
        self.mode() == ImportMode::DryRun
            && self.status() == JobStatus::Done
            && self.upload_key.is_some()
    }
}

/// One report line, read back from the stored report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredRow {
    /// The row in the file, from 1 (the header).
    pub row: u64,
    /// The email as in the row.
    pub email: String,
    /// The outcome's name (`created`, `updated`, `skipped`, `rejected`).
    pub outcome: String,
    /// Stable machine-readable reason (`invalid_email`, ...).
    pub code: String,
    /// The reason, for people.
    pub reason: String,
}

/// The stored report (the JSON of [`ImportReport`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredReport {
    /// The mode the import ran in.
    pub mode: ImportMode,
    /// Whether anything was written.
    pub applied: bool,
    /// Data rows in the file.
    pub total_rows: u64,
    /// Data rows processed.
    pub rows_done: u64,
    /// Rows that created a user (or would).
    pub created: u64,
    /// Existing users changed (update mode).
    pub updated: u64,
    /// Rows left alone.
    pub skipped: u64,
    /// Invalid rows.
    pub rejected: u64,
    /// Tags that were (or would be) created.
    pub tags_created: Vec<String>,
    /// Welcome or invitation mails queued.
    pub welcome_mails_queued: u64,
    /// Skipped and rejected rows in row order (then created rows, if asked).
    pub rows: Vec<StoredRow>,
    /// Rows beyond the listing limit, counted but not listed.
    pub rows_not_listed: u64,
    /// What the import left out of the file without refusing it.
    #[serde(default)]
    pub warnings: Vec<String>,
}

impl StoredReport {
    /// The report as CSV: `row,email,outcome,code,reason`, formula cells
    /// neutralised (the same columns as [`ImportReport::write_csv`]).
    pub fn write_csv<W: std::io::Write>(&self, out: W) -> std::io::Result<()> {
        use crate::exports::neutralize;
        let mut w = csv::WriterBuilder::new().from_writer(out);
        let io = |e: csv::Error| std::io::Error::other(e.to_string());
        w.write_record(["row", "email", "outcome", "code", "reason"])
            .map_err(io)?;
        for r in &self.rows {
            let row = r.row.to_string();
            w.write_record([
                row.as_str(),
                &neutralize(&r.email),
                &r.outcome,
                &r.code,
                &neutralize(&r.reason),
            ])
            .map_err(io)?;
        }
        w.flush()
    }
}

/// Resolves the default organization and checks the actor may import at all,
/// before anything is stored or queued (the import checks again itself).
pub fn check_start(
    conn: &mut DbConnection,
    actor: &Actor,
    default_organization: Option<&str>,
) -> Result<Option<Organization>, ImportError> {
    let (org, allowed) =
        crate::imports::default_org_and_permission(conn, actor, default_organization)?;
    if !allowed {
        return Err(match org {
            // Someone else's organization looks like a missing one.
            Some(o) if !can(actor, Action::View, &Target::Organization(o.id)) => {
                ImportError::UnknownOrganization(o.slug)
            }
            _ => ImportError::Forbidden,
        });
    }
    Ok(org)
}

/// The organization an import is filed under: the default organization, or
/// the one organization a non-staff actor administers.
pub fn scope_of(actor: &Actor, default_org: Option<&Organization>) -> Option<i64> {
    if let Some(o) = default_org {
        return Some(o.id);
    }
    match actor.visible_orgs() {
        Some(orgs) if orgs.len() == 1 => Some(orgs[0]),
        _ => None,
    }
}

/// Who starts which import.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// Who starts it; the import runs with this actor's rights.
    pub actor: Actor,
    /// The organization it is filed under (see [`scope_of`]).
    pub organization_id: Option<i64>,
    /// The uploaded file's name, for the list and the audit log.
    pub file_name: String,
    /// Dry run, apply, or strict.
    pub mode: ImportMode,
    /// The admin's other choices.
    pub options: JobOptions,
    /// The name of the kept upload, so a dry run can be applied later.
    pub upload_key: Option<String>,
}

fn mode_str(m: ImportMode) -> &'static str {
    match m {
        ImportMode::DryRun => "dry_run",
        ImportMode::Apply => "apply",
        ImportMode::Strict => "strict",
    }
}

fn insert(
    conn: &mut DbConnection,
    new: &NewJob,
    status: JobStatus,
    background: bool,
    total_rows: u64,
) -> CoreResult<ImportJob> {
    let t = now();
    let file_name: String = new.file_name.chars().take(200).collect();
    Ok(diesel::insert_into(imports::table)
        .values((
            imports::actor.eq(new.actor.label()),
            imports::actor_user_id.eq(new.actor.user_id()),
            imports::organization_id.eq(new.organization_id),
            imports::file_name.eq(file_name),
            imports::mode.eq(mode_str(new.mode)),
            imports::options.eq(serde_json::to_string(&new.options).unwrap_or_default()),
            imports::status.eq(status.as_str()),
            imports::background.eq(background),
            imports::total_rows.eq(total_rows as i64),
            imports::upload_key.eq(&new.upload_key),
            imports::created_at.eq(t),
            imports::updated_at.eq(t),
        ))
        .returning(imports::all_columns)
        .get_result::<ImportJob>(conn)?)
}

/// Files a background import, to be run by [`run`].
pub fn queue(conn: &mut DbConnection, new: &NewJob, total_rows: u64) -> CoreResult<ImportJob> {
    insert(conn, new, JobStatus::Queued, true, total_rows)
}

/// Files an import that runs now, during the request (a small file), so that
/// its id is known to the audit events of the users it creates; [`finish`]
/// records the outcome.
pub fn begin(conn: &mut DbConnection, new: &NewJob, total_rows: u64) -> CoreResult<ImportJob> {
    insert(conn, new, JobStatus::Running, false, total_rows)
}

/// Files an import that already ran (a small file, done during the request).
pub fn record_done(
    conn: &mut DbConnection,
    new: &NewJob,
    report: &ImportReport,
) -> CoreResult<ImportJob> {
    let job = insert(conn, new, JobStatus::Running, false, report.total_rows)?;
    finish(conn, job.id, Ok(report))?;
    get(conn, job.id)
}

/// Loads an import by id, whoever may see it (see [`get_for`]).
pub fn get(conn: &mut DbConnection, id: i64) -> CoreResult<ImportJob> {
    imports::table
        .find(id)
        .select(ImportJob::as_select())
        .first(conn)
        .optional()?
        .ok_or(CoreError::NotFound("import"))
}

/// True when the actor may see the import: staff see all, others those of
/// the organizations they administer and their own.
pub fn visible(actor: &Actor, job: &ImportJob) -> bool {
    match actor.visible_orgs() {
        None => true,
        Some(orgs) => {
            job.actor == actor.label() || job.organization_id.is_some_and(|o| orgs.contains(&o))
        }
    }
}

/// An import the actor may see; others are reported as not found.
pub fn get_for(conn: &mut DbConnection, actor: &Actor, id: i64) -> CoreResult<ImportJob> {
    let job = get(conn, id)?;
    if !visible(actor, &job) {
        return Err(CoreError::NotFound("import"));
    }
    Ok(job)
}

/// The imports the actor may see, newest first.
pub fn list(
    conn: &mut DbConnection,
    actor: &Actor,
    page: i64,
    limit: i64,
) -> CoreResult<(Vec<ImportJob>, i64)> {
    let limit = limit.clamp(1, 100);
    let visible = actor.visible_orgs();
    let label = actor.label();
    let build = || {
        let mut q = imports::table.into_boxed::<crate::db::Backend>();
        if let Some(orgs) = &visible {
            q = q.filter(
                imports::organization_id
                    .eq_any(orgs.clone())
                    .or(imports::actor.eq(label.clone())),
            );
        }
        q
    };
    let total: i64 = build().count().get_result(conn)?;
    let rows = build()
        .order(imports::id.desc())
        .limit(limit)
        .offset((page.max(1) - 1) * limit)
        .select(ImportJob::as_select())
        .load(conn)?;
    Ok((rows, total))
}

/// Marks a queued import as running (its heartbeat starts now).
pub fn start(conn: &mut DbConnection, id: i64) -> CoreResult<()> {
    diesel::update(imports::table.find(id))
        .set((
            imports::status.eq(JobStatus::Running.as_str()),
            imports::updated_at.eq(now()),
        ))
        .execute(conn)?;
    Ok(())
}

/// Keeps a queued import's heartbeat while it waits for a free slot, so that
/// other instances do not take it for dead. Returns false once it is no
/// longer queued (marked failed meanwhile).
pub fn still_queued(conn: &mut DbConnection, id: i64) -> CoreResult<bool> {
    let n = diesel::update(imports::table.find(id))
        .filter(imports::status.eq(JobStatus::Queued.as_str()))
        .set(imports::updated_at.eq(now()))
        .execute(conn)?;
    Ok(n == 1)
}

/// Caps how many background imports run at once in this process
/// ([`ImportConfig::max_running`](crate::imports::ImportConfig)). Cheap to
/// clone; clones share the count.
#[derive(Clone, Default)]
pub struct Slots(std::sync::Arc<(std::sync::Mutex<usize>, std::sync::Condvar)>);

/// A running import's slot; dropping it lets the next waiting import start.
pub struct Slot(Slots);

impl Slots {
    /// Waits until fewer than `max` imports hold a slot (at least one always
    /// may run), calling `waiting` every `every` meanwhile; `waiting`
    /// returning false gives up (None).
    pub fn acquire(
        &self,
        max: usize,
        every: std::time::Duration,
        waiting: &mut dyn FnMut() -> bool,
    ) -> Option<Slot> {
        let (count, freed) = &*self.0;
        let mut n = count.lock().unwrap_or_else(|e| e.into_inner());
        while *n >= max.max(1) {
            let (guard, timeout) = freed
                .wait_timeout(n, every)
                .unwrap_or_else(|e| e.into_inner());
            n = guard;
            if timeout.timed_out() {
                // Not while holding the lock: `waiting` may touch the database.
                drop(n);
                if !waiting() {
                    return None;
                }
                n = count.lock().unwrap_or_else(|e| e.into_inner());
            }
        }
        *n += 1;
        Some(Slot(self.clone()))
    }

    /// Imports holding a slot now.
    pub fn running(&self) -> usize {
        *self.0 .0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let (count, freed) = &*self.0 .0;
        let mut n = count.lock().unwrap_or_else(|e| e.into_inner());
        *n = n.saturating_sub(1);
        freed.notify_one();
    }
}

/// Writes where an import is; called after every batch (also its heartbeat).
pub fn progress(conn: &mut DbConnection, id: i64, p: &Progress) -> CoreResult<()> {
    diesel::update(imports::table.find(id))
        .set((
            imports::status.eq(JobStatus::Running.as_str()),
            imports::checking.eq(p.validating),
            imports::total_rows.eq(p.total_rows as i64),
            imports::rows_done.eq(p.rows_done as i64),
            imports::created.eq(p.created as i64),
            imports::skipped.eq(p.skipped as i64),
            imports::rejected.eq(p.rejected as i64),
            imports::updated_at.eq(now()),
        ))
        .execute(conn)?;
    Ok(())
}

/// Writes the outcome: the report, or why the import stopped.
pub fn finish(
    conn: &mut DbConnection,
    id: i64,
    outcome: Result<&ImportReport, &ImportError>,
) -> CoreResult<()> {
    let t = now();
    match outcome {
        Ok(r) => {
            diesel::update(imports::table.find(id))
                .set((
                    imports::status.eq(JobStatus::Done.as_str()),
                    imports::checking.eq(false),
                    imports::total_rows.eq(r.total_rows as i64),
                    imports::rows_done.eq(r.rows_done as i64),
                    imports::created.eq(r.created as i64),
                    imports::updated.eq(r.updated as i64),
                    imports::skipped.eq(r.skipped as i64),
                    imports::rejected.eq(r.rejected as i64),
                    imports::applied.eq(r.applied),
                    imports::report.eq(serde_json::to_string(r).ok()),
                    imports::error.eq(None::<String>),
                    imports::updated_at.eq(t),
                    imports::finished_at.eq(Some(t)),
                ))
                .execute(conn)?;
        }
        Err(e) => {
            let (rows_done, created) = match e {
                ImportError::Stopped {
                    committed_rows,
                    created,
                    ..
                } => (Some(*committed_rows as i64), Some(*created as i64)),
                _ => (None, None),
            };
            let job = get(conn, id)?;
            diesel::update(imports::table.find(id))
                .set((
                    imports::status.eq(JobStatus::Failed.as_str()),
                    imports::checking.eq(false),
                    imports::rows_done.eq(rows_done.unwrap_or(job.rows_done)),
                    imports::created.eq(created.unwrap_or(job.created)),
                    imports::error.eq(Some(e.to_string())),
                    imports::upload_key.eq(None::<String>),
                    imports::updated_at.eq(t),
                    imports::finished_at.eq(Some(t)),
                ))
                .execute(conn)?;
        }
    }
    Ok(())
}

/// Takes the kept upload of a dry run for applying it: only one caller gets
/// it (the key is cleared in the same statement).
pub fn take_upload(conn: &mut DbConnection, job: &ImportJob) -> CoreResult<Option<String>> {
    let Some(key) = &job.upload_key else {
        return Ok(None);
    };
    let n = diesel::update(imports::table.find(job.id))
        .filter(imports::upload_key.eq(key))
        .set(imports::upload_key.eq(None::<String>))
        .execute(conn)?;
    Ok((n == 1).then(|| key.clone()))
}

/// Forgets the kept upload of an import (the file was removed).
pub fn clear_upload(conn: &mut DbConnection, id: i64) -> CoreResult<()> {
    diesel::update(imports::table.find(id))
        .set(imports::upload_key.eq(None::<String>))
        .execute(conn)?;
    Ok(())
}

/// The sentence a dead import gets.
fn interrupted(job: &ImportJob) -> String {
    let wrote = match job.mode() {
        ImportMode::DryRun => false,
        ImportMode::Apply => true,
        ImportMode::Strict => !job.checking,
    };
    if wrote {
        format!(
            "interrupted after {}: the process stopped; the batches up to there \
             were saved ({} created), nothing after them",
            crate::imports::rows(job.rows_done.max(0) as u64),
            crate::imports::plural(job.created.max(0) as u64, "user", "users")
        )
    } else {
        format!(
            "interrupted after {}: the process stopped; nothing was written",
            crate::imports::rows(job.rows_done.max(0) as u64)
        )
    }
}

/// Marks queued and running imports whose runner has not reported for
/// `stale_after` as failed ("interrupted after N rows"); with `None`, every
/// one of them (at start-up, when no other process runs imports on this
/// database). Returns how many.
pub fn mark_interrupted(
    conn: &mut DbConnection,
    stale_after: Option<std::time::Duration>,
) -> CoreResult<usize> {
    let mut q = imports::table
        .filter(imports::status.eq_any([JobStatus::Queued.as_str(), JobStatus::Running.as_str()]))
        .into_boxed::<crate::db::Backend>();
    if let Some(d) = stale_after {
        let d = chrono::Duration::from_std(d).unwrap_or(chrono::Duration::days(1));
        q = q.filter(imports::updated_at.lt(now() - d));
    }
    let dead: Vec<ImportJob> = q.select(ImportJob::as_select()).load(conn)?;
    let t = now();
    let mut n = 0;
    for job in dead {
        // Only if it has not moved on meanwhile.
        n += diesel::update(imports::table.find(job.id))
            .filter(imports::updated_at.eq(job.updated_at))
            .filter(imports::status.eq(&job.status))
            .set((
                imports::status.eq(JobStatus::Failed.as_str()),
                imports::error.eq(Some(interrupted(&job))),
                imports::checking.eq(false),
                imports::upload_key.eq(None::<String>),
                imports::updated_at.eq(t),
                imports::finished_at.eq(Some(t)),
            ))
            .execute(conn)?;
    }
    Ok(n)
}

/// Runs a queued import from `source`: marks it running, writes progress
/// after every batch (on a second connection, between the batch
/// transactions), and stores the report or the reason it stopped. `observer`
/// sees each progress after it is stored.
#[allow(clippy::too_many_arguments)]
pub fn run<R: Read + Seek>(
    pool: &Pool,
    id: i64,
    actor: &Actor,
    config: &ImportConfig,
    options: &ImportOptions,
    source: R,
    observer: &mut dyn FnMut(&Progress),
) -> Result<ImportReport, ImportError> {
    // Delivers the import's events (one per user, then the summary's) when dropped.
    let mut conn = crate::events::checkout(pool)?;
    start(&mut conn, id)?;
    let mut on_progress = |p: &Progress| {
        match pool.get() {
            Ok(mut c) => {
                if let Err(e) = progress(&mut c, id, p) {
                    tracing::warn!("frontdesk: import {id}: progress not saved: {e}");
                }
            }
            Err(e) => tracing::warn!("frontdesk: import {id}: progress not saved: {e}"),
        }
        observer(p);
    };
    let result =
        crate::imports::import(&mut conn, actor, config, options, source, &mut on_progress);
    // The import's own connection may be what failed (the server ended it):
    // then the outcome goes through another one, and the caller gets the
    // import's error rather than this one's.
    if let Err(e) = finish(&mut conn, id, result.as_ref()) {
        if !e.is_outage() {
            return Err(e.into());
        }
        drop(conn);
        crate::db::retry_on_outage(pool, |c| finish(c, id, result.as_ref()))?;
    }
    result
}

/// [`run`] on a file.
pub fn run_file(
    pool: &Pool,
    id: i64,
    actor: &Actor,
    config: &ImportConfig,
    options: &ImportOptions,
    path: &Path,
    observer: &mut dyn FnMut(&Progress),
) -> Result<ImportReport, ImportError> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) => {
            let e = ImportError::Io(e);
            if let Ok(mut c) = pool.get() {
                finish(&mut c, id, Err(&e))?;
            }
            return Err(e);
        }
    };
    run(
        pool,
        id,
        actor,
        config,
        options,
        std::io::BufReader::new(file),
        observer,
    )
}

#[cfg(test)]
mod tests {
    use super::Slots;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    fn wait_until(what: &str, f: impl Fn() -> bool) {
        let end = Instant::now() + Duration::from_secs(10);
        while !f() {
            assert!(Instant::now() < end, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    #[test]
    fn a_second_import_waits_for_the_slot_and_keeps_reporting() {
        let slots = Slots::default();
        let first = slots
            .acquire(1, Duration::from_millis(5), &mut || true)
            .expect("free slot");
        let reports = Arc::new(AtomicUsize::new(0));
        let started = Arc::new(AtomicBool::new(false));
        let waiter = {
            let (slots, reports, started) = (slots.clone(), reports.clone(), started.clone());
            std::thread::spawn(move || {
                let slot = slots.acquire(1, Duration::from_millis(5), &mut || {
                    reports.fetch_add(1, Ordering::SeqCst);
                    true
                });
                started.store(true, Ordering::SeqCst);
                slot.is_some()
            })
        };
        wait_until("two heartbeats", || reports.load(Ordering::SeqCst) >= 2);
        assert!(
            !started.load(Ordering::SeqCst),
            "it started while the slot was taken"
        );
        assert_eq!(slots.running(), 1);
        drop(first);
        assert!(waiter.join().expect("waiter"), "it got the freed slot");
        // The waiter's slot was dropped with its thread.
        assert_eq!(slots.running(), 0);
    }

    #[test]
    fn a_waiting_import_gives_up_when_told_and_takes_no_slot() {
        let slots = Slots::default();
        let _first = slots
            .acquire(1, Duration::from_millis(5), &mut || true)
            .expect("free slot");
        let mut asked = 0;
        let second = slots.acquire(1, Duration::from_millis(1), &mut || {
            asked += 1;
            asked < 3
        });
        assert!(second.is_none());
        assert_eq!(asked, 3);
        assert_eq!(slots.running(), 1);
        // Two may run when the cap says two; zero still lets one run.
        assert!(slots
            .acquire(2, Duration::from_millis(1), &mut || false)
            .is_some());
        let zero = Slots::default();
        assert!(zero
            .acquire(0, Duration::from_millis(1), &mut || false)
            .is_some());
    }
}
