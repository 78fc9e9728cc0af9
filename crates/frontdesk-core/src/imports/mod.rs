//! CSV import of users: the template, a quick scan that refuses a bad file
//! (size, rows, header, encoding, binary, delimiter) before any work, then a
//! streaming pass that validates each row and writes valid ones in batch
//! transactions. Dry run and strict mode write nothing when asked to.
//!
//! File format: UTF-8 (a BOM is allowed), comma-separated, quoted as RFC 4180
//! (commas, quotes and newlines inside quoted fields). Row numbers count CSV
//! records with the header as row 1, as a spreadsheet shows them. Several
//! organizations, roles or tags in one cell are separated by `|`.

use std::io::{Read, Seek, SeekFrom};

use diesel::connection::SimpleConnection;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::audit;
use crate::authz::{can, Action, Actor, Target};
use crate::db::{BackendKind, DbConnection};
use crate::error::CoreError;
use crate::exports::neutralize;
use crate::organizations::{self, Organization};
use crate::profile::ProfileField;
use crate::validate::{self, MAX_NAME, MAX_TEXT};

/// Most rows in one batch (see [`ImportConfig::batch_size`]).
pub const MAX_BATCH: usize = 50_000;

/// Rows per multi-row `INSERT` into `users`: nine values per row, and SQLite
/// allows 32,766 bound values per statement.
const USERS_PER_INSERT: usize = 3_000;

/// A large file is written in about this many transactions at most (see
/// [`batch_rows`]).
const MAX_BATCHES: u64 = 50;

/// Emails per `IN (…)` lookup, within both backends' bound-value limits.
const EMAILS_PER_LOOKUP: usize = 10_000;

/// Longest tag name (as `tags::create` allows).
const MAX_TAG: usize = 64;

// Multi-row `INSERT … VALUES (…), (…)` is not available through the
// multi-connection, and it is what makes large imports fast: the passes run
// it on the backend's own connection with `db::on_backend!`. Inside a
// transaction of the multi-connection, the statement joins that transaction.

mod existing;
mod header;
mod pass;
mod scan;
mod welcome;

use existing::*;
use header::*;
use pass::*;
use scan::*;
use welcome::*;

/// What the import accepts; the host configures it once.
#[derive(Debug, Clone)]
pub struct ImportConfig {
    /// Host-defined profile fields, each accepted as a column and each cell
    /// checked by its kind (`profile::ProfileField`).
    pub profile_fields: Vec<ProfileField>,
    /// Whether a `staff_role` column is accepted at all.
    pub allow_staff_role: bool,
    /// Files larger than this are refused before any work.
    pub max_bytes: u64,
    /// Files with more data rows than this are refused before any work.
    pub max_rows: u64,
    /// Rows per transaction (at most [`MAX_BATCH`]); a file of more than
    /// 50 batches uses bigger ones (see `batch_rows`).
    pub batch_size: usize,
    /// Rejected/skipped rows listed in the report; the rest are only counted.
    pub max_listed_rows: usize,
    /// Files with more data rows than this run in the background from the
    /// admin pages and the API (see `import_jobs`).
    pub background_threshold_rows: u64,
    /// A background import that has not reported progress for this long is
    /// taken for dead and marked failed ("interrupted after N rows").
    pub heartbeat_timeout: std::time::Duration,
    /// Background imports one process runs at once; more wait, queued (and
    /// still reporting, so that no one takes them for dead), until one ends.
    /// Each running import holds a pooled connection and, on SQLite, takes
    /// the write lock for every batch.
    pub max_running: usize,
    /// Whether the `tags` column is accepted (false when the host has
    /// switched tags off: the column is then unknown, like any other).
    pub tags: bool,
}

impl Default for ImportConfig {
    fn default() -> Self {
        ImportConfig {
            profile_fields: Vec::new(),
            allow_staff_role: true,
            max_bytes: 100 * 1024 * 1024,
            max_rows: 1_000_000,
            batch_size: 1_000,
            max_listed_rows: 100_000,
            background_threshold_rows: 10_000,
            heartbeat_timeout: std::time::Duration::from_secs(120),
            max_running: 2,
            tags: true,
        }
    }
}

/// How an import treats the file's rows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportMode {
    /// Report what would happen; write nothing.
    DryRun,
    /// Write the valid rows, report the others.
    #[default]
    Apply,
    /// Write nothing unless every row is valid.
    Strict,
}

/// Mail for each created user (`--invite`): an invitation to their
/// organization when `invitations` is set and the row has one (accepting it
/// sets the password), otherwise a plain welcome mail pointing at the
/// password-reset page.
#[derive(Debug, Clone)]
pub struct WelcomeMail {
    /// The site's name, for the mail's greeting and subject.
    pub site_name: String,
    /// Where the user chooses a password (the password-reset page).
    pub set_password_url: String,
    /// Invite each created user to their row's organization instead; `None`
    /// sends the plain welcome mail to everyone.
    pub invitations: Option<crate::invitations::ImportInvitations>,
}

/// How one import runs. `Default` is an apply import with no default
/// organization, no mail and no report listing of created rows.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// Dry run, apply, or strict.
    pub mode: ImportMode,
    /// Organization (slug) for rows whose `organization` cell is empty.
    pub default_organization: Option<String>,
    /// Mail each created user; `None` sends nothing.
    pub welcome_mail: Option<WelcomeMail>,
    /// Name of the file, for the audit log.
    pub source_name: String,
    /// How many created rows to list in the report (a dry-run preview).
    pub list_created: usize,
    /// Update mode: for users that already exist, change the names and
    /// profile fields given in non-empty cells (memberships, tags and staff
    /// roles are left alone) instead of skipping them.
    pub update_existing: bool,
    /// Columns the import does not know are left out (each named in the
    /// report's warnings) instead of refusing the file.
    pub ignore_unknown_columns: bool,
    /// The import's record (`imports.id`), named in the audit event of each
    /// user it creates.
    pub import_id: Option<i64>,
}

/// A column the import understands.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Column {
    Email,
    FirstName,
    LastName,
    DisplayName,
    Organization,
    Role,
    Groups,
    Tags,
    StaffRole,
    Profile(String),
    /// A column the import does not know, left out on request: its cells
    /// are not read. The number is its position, from 1.
    Ignored(usize),
    /// A column without a name (trailing commas from a spreadsheet): it must
    /// stay empty. The number is its position, from 1.
    Unnamed(usize),
}

const REQUIRED: [&str; 3] = ["email", "first_name", "last_name"];

/// The header of the template: required columns, then the optional ones the
/// actor may fill (`staff_role` only when configured and the actor may grant
/// it), then the host's profile fields.
pub fn template_columns(config: &ImportConfig, actor: &Actor) -> Vec<String> {
    let mut cols: Vec<String> = REQUIRED.iter().map(|s| s.to_string()).collect();
    cols.extend(["display_name", "organization", "role", "groups"].map(String::from));
    if config.tags {
        cols.push("tags".into());
    }
    if staff_column_allowed(config, actor) {
        cols.push("staff_role".into());
    }
    cols.extend(config.profile_fields.iter().map(|p| p.key.clone()));
    cols
}

/// The template file: the header line only.
pub fn template_csv(config: &ImportConfig, actor: &Actor) -> String {
    let mut w = csv::WriterBuilder::new().from_writer(Vec::new());
    // Writing to a Vec cannot fail; fall back to a plain join if it ever did.
    let cols = template_columns(config, actor);
    match w.write_record(&cols).ok().and_then(|_| w.into_inner().ok()) {
        Some(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        None => format!("{}\n", cols.join(",")),
    }
}

fn staff_column_allowed(config: &ImportConfig, actor: &Actor) -> bool {
    config.allow_staff_role && can(actor, Action::GrantStaffRole, &Target::Site)
}

/// Why a file is refused as a whole. Nothing has been written when one is returned.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file is larger than the configured limit.
    #[error("the file is {size} bytes, more than the limit of {max} bytes")]
    TooLarge {
        /// The file's size in bytes.
        size: u64,
        /// The limit in bytes.
        max: u64,
    },
    /// The file has more data rows than the configured limit.
    #[error("the file has more than {max} data rows, the limit")]
    TooManyRows {
        /// The limit in data rows.
        max: u64,
    },
    /// The file has no header line.
    #[error(
        "the file is empty: its first line must be the header, e.g. email,first_name,last_name"
    )]
    Empty,
    /// The header lacks required columns (named).
    #[error("row 1 (header): missing required column(s): {}", .0.join(", "))]
    MissingColumns(Vec<String>),
    /// The header names columns the import does not know.
    #[error("row 1 (header): unknown column(s): {} (known columns: {known})", .columns.join(", "))]
    UnknownColumns {
        /// The unknown columns.
        columns: Vec<String>,
        /// The known columns, comma-separated, for the message.
        known: String,
    },
    /// The header names a column twice.
    #[error("row 1 (header): the column {0:?} appears more than once")]
    DuplicateColumn(String),
    /// The file is separated by another character than a comma.
    #[error("row {row}: the file is not comma-separated (it uses {found:?}); save it as CSV with commas")]
    WrongDelimiter {
        /// The row, from 1 (the header).
        row: u64,
        /// The separator found.
        found: char,
    },
    /// The text is not UTF-8.
    #[error(
        "row {row}: the text is not UTF-8 (byte 0x{byte:02X}); save the file as \"CSV UTF-8\""
    )]
    NotUtf8 {
        /// The row, from 1 (the header).
        row: u64,
        /// The first byte that is not UTF-8.
        byte: u8,
    },
    /// The file holds binary data, not text.
    #[error("row {row}: binary data ({what}); this is not a CSV text file")]
    Binary {
        /// The row, from 1 (the header).
        row: u64,
        /// What was found (a NUL byte, a ZIP archive such as an Excel workbook).
        what: &'static str,
    },
    /// The CSV cannot be read (an unclosed quote, ...).
    #[error("row {row}: unreadable CSV: {message}")]
    Malformed {
        /// The row, from 1 (the header).
        row: u64,
        /// The CSV reader's message.
        message: String,
    },
    /// The default organization (slug) does not exist, or the actor may not
    /// see it.
    #[error("organization {0:?} not found")]
    UnknownOrganization(String),
    /// The actor may not import users here.
    #[error("not allowed to import users here")]
    Forbidden,
    /// Reading the file failed.
    #[error("reading the file failed: {0}")]
    Io(#[from] std::io::Error),
    /// The import stopped part-way: the batches up to `committed_rows` are
    /// saved (each batch is one transaction), nothing after them.
    #[error("the import stopped after row {} ({} created and saved in earlier batches): {error}", .committed_rows + 1, users_count(.created))]
    Stopped {
        /// The data rows saved before the error.
        committed_rows: u64,
        /// Users created and saved before the error.
        created: u64,
        /// What stopped it.
        error: Box<ImportError>,
    },
    /// A service refused or failed.
    #[error(transparent)]
    Core(#[from] CoreError),
}

impl ImportError {
    /// True when the file or the request is at fault (not the system).
    pub fn is_client_error(&self) -> bool {
        match self {
            ImportError::Io(_) => false,
            ImportError::Stopped { error, .. } => error.is_client_error(),
            ImportError::Core(e) => e.is_client_error(),
            _ => true,
        }
    }
}

impl From<diesel::result::Error> for ImportError {
    fn from(e: diesel::result::Error) -> Self {
        ImportError::Core(CoreError::Database(e))
    }
}

/// What the import did with one row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A new user was created (or would be, in a dry run).
    Created,
    /// An existing user whose names or profile fields were changed (update mode).
    Updated,
    /// The row was left alone (an existing user, outside update mode).
    Skipped,
    /// The row is invalid; `code` and `reason` say why.
    Rejected,
}

impl Outcome {
    /// The outcome's name in reports and CSV (`created`, `updated`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Created => "created",
            Outcome::Updated => "updated",
            Outcome::Skipped => "skipped",
            Outcome::Rejected => "rejected",
        }
    }
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowResult {
    /// The row in the file, from 1 (the header); the first data row is 2.
    pub row: u64,
    /// The email as in the row.
    pub email: String,
    /// What happened to the row.
    pub outcome: Outcome,
    /// Stable machine-readable reason (`invalid_email`, `duplicate_in_file`, …).
    pub code: &'static str,
    /// The reason, for people.
    pub reason: String,
}

/// Counts and the rows that were not created. In a dry run, or a strict
/// import that failed, `created` counts the rows that would be created and
/// `applied` is false.
#[derive(Debug, Clone, Serialize)]
pub struct ImportReport {
    /// The mode the import ran in.
    pub mode: ImportMode,
    /// Whether anything was written.
    pub applied: bool,
    /// Data rows in the file (the header not counted).
    pub total_rows: u64,
    /// Data rows processed so far (equal to `total_rows` when finished).
    pub rows_done: u64,
    /// Rows that created a user (or would).
    pub created: u64,
    /// Existing users changed (update mode).
    pub updated: u64,
    /// Rows left alone.
    pub skipped: u64,
    /// Invalid rows.
    pub rejected: u64,
    /// Tags that were (or would be) created for the import.
    pub tags_created: Vec<String>,
    /// Welcome or invitation mails queued for created users.
    pub welcome_mails_queued: u64,
    /// Skipped and rejected rows in row order (then created rows, if asked).
    pub rows: Vec<RowResult>,
    /// Skipped/rejected rows beyond `max_listed_rows`, counted but not listed.
    pub rows_not_listed: u64,
    /// What the import left out of the file without refusing it (columns it
    /// does not know, with `ignore_unknown_columns`).
    pub warnings: Vec<String>,
}

impl ImportReport {
    fn new(mode: ImportMode, total_rows: u64) -> Self {
        ImportReport {
            mode,
            applied: false,
            total_rows,
            rows_done: 0,
            created: 0,
            updated: 0,
            skipped: 0,
            rejected: 0,
            tags_created: Vec::new(),
            welcome_mails_queued: 0,
            rows: Vec::new(),
            rows_not_listed: 0,
            warnings: Vec::new(),
        }
    }

    /// One line: what happened overall.
    pub fn summary(&self) -> String {
        let verb = if self.applied {
            "created"
        } else {
            "would create"
        };
        let mut s = format!("{}: {verb} {}", rows(self.total_rows), self.created);
        if self.updated > 0 {
            let verb = if self.applied {
                "updated"
            } else {
                "would update"
            };
            s.push_str(&format!(", {verb} {}", self.updated));
        }
        s.push_str(&format!(
            ", skipped {}, rejected {}",
            self.skipped, self.rejected
        ));
        match self.mode {
            ImportMode::DryRun => s.push_str(" (dry run: nothing written)"),
            ImportMode::Strict if !self.applied => {
                s.push_str(" (strict: nothing written because rows were rejected)")
            }
            _ => {}
        }
        s
    }

    /// The report as CSV: `row,email,outcome,code,reason`, cells neutralised.
    pub fn write_csv<W: std::io::Write>(&self, out: W) -> std::io::Result<()> {
        let mut w = csv::WriterBuilder::new().from_writer(out);
        let io = |e: csv::Error| std::io::Error::other(e.to_string());
        w.write_record(["row", "email", "outcome", "code", "reason"])
            .map_err(io)?;
        for r in &self.rows {
            let row = r.row.to_string();
            w.write_record([
                row.as_str(),
                &neutralize(&r.email),
                r.outcome.as_str(),
                r.code,
                &neutralize(&r.reason),
            ])
            .map_err(io)?;
        }
        w.flush()
    }
}

fn users_count(n: &u64) -> String {
    plural(*n, "user", "users")
}

/// `1 row`, `2 rows`: a count of data rows for messages.
pub fn rows(n: u64) -> String {
    plural(n, "row", "rows")
}

/// `n` and the noun in the number `n` takes.
pub fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Where an import is, passed to the progress callback after each batch.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Progress {
    /// Data rows in the file (the header not counted).
    pub total_rows: u64,
    /// Data rows processed so far.
    pub rows_done: u64,
    /// Rows that created a user so far (or would).
    pub created: u64,
    /// Rows left alone so far.
    pub skipped: u64,
    /// Invalid rows so far.
    pub rejected: u64,
    /// True during the validation pass of a strict import.
    pub validating: bool,
}

/// The default organization an import names (by slug) and whether the actor
/// may import at all: into that organization, site-wide for staff, or into
/// one of their own organizations. Callers choose how a refusal reads.
pub(crate) fn default_org_and_permission(
    conn: &mut DbConnection,
    actor: &Actor,
    default_organization: Option<&str>,
) -> Result<(Option<Organization>, bool), ImportError> {
    let org = match default_organization
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        Some(slug) => match organizations::get_by_slug(conn, slug) {
            Ok(o) => Some(o),
            Err(CoreError::NotFound(_)) => {
                return Err(ImportError::UnknownOrganization(slug.to_owned()))
            }
            Err(e) => return Err(e.into()),
        },
        None => None,
    };
    let allowed = match (&org, actor.staff_role) {
        (Some(o), _) => can(actor, Action::ImportExport, &Target::Organization(o.id)),
        (None, Some(_)) => can(actor, Action::ImportExport, &Target::Site),
        (None, None) => actor
            .org_roles
            .iter()
            .any(|(o, _)| can(actor, Action::ImportExport, &Target::Organization(*o))),
    };
    Ok((org, allowed))
}

/// Imports users from a CSV file. The source is read twice (a scan, then the
/// import), so it must be seekable: a file, or the upload spooled to a
/// temporary file. `progress` is called after each batch.
#[tracing::instrument(level = "debug", name = "import", skip_all, fields(
    actor = %actor.label(), mode = ?options.mode, import_id = ?options.import_id,
))]
pub fn import<R: Read + Seek>(
    conn: &mut DbConnection,
    actor: &Actor,
    config: &ImportConfig,
    options: &ImportOptions,
    mut source: R,
    progress: &mut dyn FnMut(&Progress),
) -> Result<ImportReport, ImportError> {
    let (default_org, allowed) =
        default_org_and_permission(conn, actor, options.default_organization.as_deref())?;
    if !allowed {
        return Err(ImportError::Forbidden);
    }

    let size = source.seek(SeekFrom::End(0))?;
    if size > config.max_bytes {
        return Err(ImportError::TooLarge {
            size,
            max: config.max_bytes,
        });
    }
    source.seek(SeekFrom::Start(0))?;
    let (header, total_rows) = scan(&mut source, config, actor, options.ignore_unknown_columns)?;

    // A large import walks indexes much bigger than SQLite's default 2 MB page
    // cache; a bigger cache for this connection, while it imports, saves
    // rereading pages. PostgreSQL sizes its buffers server-side.
    let sqlite = conn.kind() == BackendKind::Sqlite;
    if sqlite {
        conn.batch_execute("PRAGMA cache_size = -32768")?;
    }
    let result = run_modes(
        conn,
        actor,
        config,
        options,
        &mut source,
        &header,
        default_org.as_ref(),
        total_rows,
        progress,
    );
    if sqlite {
        conn.batch_execute("PRAGMA cache_size = -2000")?;
    }
    let mut report = result?;
    // The header's warnings first, then the rows' (a group join refused).
    let rows_warnings = std::mem::take(&mut report.warnings);
    report.warnings = header.warnings();
    report.warnings.extend(rows_warnings);
    if report.applied {
        audit::record(
            conn,
            actor,
            "users.import",
            "users",
            default_org.as_ref().map(|o| o.id),
            json!({
                "source": options.source_name, "mode": options.mode, "organization": default_org.as_ref().map(|o| &o.slug),
                "total_rows": report.total_rows, "created": report.created, "updated": report.updated, "skipped": report.skipped,
                "rejected": report.rejected, "tags_created": report.tags_created,
                "welcome_mails_queued": report.welcome_mails_queued, "import": options.import_id,
                "ignored_columns": header.ignored,
            }),
        )?;
    }
    Ok(report)
}

#[allow(clippy::too_many_arguments)]
fn run_modes<R: Read + Seek>(
    conn: &mut DbConnection,
    actor: &Actor,
    config: &ImportConfig,
    options: &ImportOptions,
    source: &mut R,
    header: &Header,
    default_org: Option<&Organization>,
    total_rows: u64,
    progress: &mut dyn FnMut(&Progress),
) -> Result<ImportReport, ImportError> {
    let mut run =
        |write: bool, validating: bool, source: &mut R| -> Result<ImportReport, ImportError> {
            source.seek(SeekFrom::Start(0))?;
            let mut pass = Pass::new(
                conn,
                actor,
                config,
                options,
                header,
                default_org.cloned(),
                write,
                total_rows,
            );
            pass.run(source, &mut |p: &Progress| {
                progress(&Progress { validating, ..*p })
            })?;
            Ok(pass.report)
        };
    Ok(match options.mode {
        ImportMode::DryRun => run(false, false, source)?,
        ImportMode::Apply => run(true, false, source)?,
        ImportMode::Strict => {
            let checked = run(false, true, source)?;
            if checked.rejected > 0 {
                return Ok(checked);
            }
            run(true, false, source)?
        }
    })
}

/// The import's first pass alone: refuses a file that is too large, has too
/// many rows, a bad header, bad encoding or binary content, writing nothing.
/// Returns the number of data rows (the header not counted).
pub fn check_file<R: Read + Seek>(
    config: &ImportConfig,
    actor: &Actor,
    ignore_unknown_columns: bool,
    mut source: R,
) -> Result<u64, ImportError> {
    let size = source.seek(SeekFrom::End(0))?;
    if size > config.max_bytes {
        return Err(ImportError::TooLarge {
            size,
            max: config.max_bytes,
        });
    }
    source.seek(SeekFrom::Start(0))?;
    let (_, rows) = scan(&mut source, config, actor, ignore_unknown_columns)?;
    Ok(rows)
}

/// [`import`] of an in-memory file.
pub fn import_bytes(
    conn: &mut DbConnection,
    actor: &Actor,
    config: &ImportConfig,
    options: &ImportOptions,
    bytes: &[u8],
    progress: &mut dyn FnMut(&Progress),
) -> Result<ImportReport, ImportError> {
    import(
        conn,
        actor,
        config,
        options,
        std::io::Cursor::new(bytes),
        progress,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_files_get_bigger_batches() {
        let config = ImportConfig::default();
        assert_eq!(batch_rows(&config, 0), 1_000);
        assert_eq!(batch_rows(&config, 30_000), 1_000);
        assert_eq!(batch_rows(&config, 1_000_000), 20_000);
        assert_eq!(batch_rows(&config, 10_000_000), MAX_BATCH);
        let big = ImportConfig {
            batch_size: 30_000,
            ..ImportConfig::default()
        };
        assert_eq!(batch_rows(&big, 100), 30_000);
        let zero = ImportConfig {
            batch_size: 0,
            ..ImportConfig::default()
        };
        assert_eq!(batch_rows(&zero, 10), 1);
    }
}
