//! CSV import of users: the template, a quick scan that refuses a bad file
//! (size, rows, header, encoding, binary, delimiter) before any work, then a
//! streaming pass that validates each row and writes valid ones in batch
//! transactions. Dry run and strict mode write nothing when asked to.
//!
//! File format: UTF-8 (a BOM is allowed), comma-separated, quoted as RFC 4180
//! (commas, quotes and newlines inside quoted fields). Row numbers count CSV
//! records with the header as row 1, as a spreadsheet shows them. Several
//! organizations, roles or tags in one cell are separated by `|`.

use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;
use std::io::{Read, Seek, SeekFrom};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::audit;
use crate::authz::{can, Action, Actor, OrgRole, StaffRole, Target};
use crate::db::{BackendKind, DbConnection};
use crate::error::CoreError;
use crate::exports::{neutralize, unneutralize, LIST_SEPARATOR};
use crate::organizations::{self, Organization};
use crate::outbox::{self, NewMail};
use crate::profile::ProfileField;
use crate::schema::{audit_events, memberships, tags, user_tags, users};
use crate::time::now;
use crate::users::{search_text, unique_violation, User};
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

/// Runs the same diesel statement on the backend's own connection: multi-row
/// `INSERT … VALUES (…), (…)` is not available through the multi-connection,
/// and it is what makes large imports fast. Inside a transaction of the
/// multi-connection, the statement joins that transaction.
macro_rules! on_backend {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            DbConnection::Sqlite($c) => $body,
            DbConnection::Pg($c) => $body,
        }
    };
}

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
    /// 50 batches uses bigger ones (see [`batch_rows`]).
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
        }
    }
}

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
    pub site_name: String,
    /// Where the user chooses a password (the password-reset page).
    pub set_password_url: String,
    pub invitations: Option<crate::invitations::ImportInvitations>,
}

#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    pub mode: ImportMode,
    /// Organization (slug) for rows whose `organization` cell is empty.
    pub default_organization: Option<String>,
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
    cols.extend(["display_name", "organization", "role", "tags"].map(String::from));
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
    #[error("the file is {size} bytes, more than the limit of {max} bytes")]
    TooLarge { size: u64, max: u64 },
    #[error("the file has more than {max} data rows, the limit")]
    TooManyRows { max: u64 },
    #[error(
        "the file is empty: its first line must be the header, e.g. email,first_name,last_name"
    )]
    Empty,
    #[error("row 1 (header): missing required column(s): {}", .0.join(", "))]
    MissingColumns(Vec<String>),
    #[error("row 1 (header): unknown column(s): {} (known columns: {known})", .columns.join(", "))]
    UnknownColumns { columns: Vec<String>, known: String },
    #[error("row 1 (header): the column {0:?} appears more than once")]
    DuplicateColumn(String),
    #[error("row {row}: the file is not comma-separated (it uses {found:?}); save it as CSV with commas")]
    WrongDelimiter { row: u64, found: char },
    #[error(
        "row {row}: the text is not UTF-8 (byte 0x{byte:02X}); save the file as \"CSV UTF-8\""
    )]
    NotUtf8 { row: u64, byte: u8 },
    #[error("row {row}: binary data ({what}); this is not a CSV text file")]
    Binary { row: u64, what: &'static str },
    #[error("row {row}: unreadable CSV: {message}")]
    Malformed { row: u64, message: String },
    #[error("organization {0:?} not found")]
    UnknownOrganization(String),
    #[error("not allowed to import users here")]
    Forbidden,
    #[error("reading the file failed: {0}")]
    Io(#[from] std::io::Error),
    /// The import stopped part-way: the batches up to `committed_rows` are
    /// saved (each batch is one transaction), nothing after them.
    #[error("the import stopped after row {} ({} created and saved in earlier batches): {error}", .committed_rows + 1, users_count(.created))]
    Stopped {
        committed_rows: u64,
        created: u64,
        error: Box<ImportError>,
    },
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Created,
    /// An existing user whose names or profile fields were changed (update mode).
    Updated,
    Skipped,
    Rejected,
}

impl Outcome {
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
    pub row: u64,
    pub email: String,
    pub outcome: Outcome,
    /// Stable machine-readable reason (`invalid_email`, `duplicate_in_file`, …).
    pub code: &'static str,
    pub reason: String,
}

/// Counts and the rows that were not created. In a dry run, or a strict
/// import that failed, `created` counts the rows that would be created and
/// `applied` is false.
#[derive(Debug, Clone, Serialize)]
pub struct ImportReport {
    pub mode: ImportMode,
    pub applied: bool,
    /// Data rows in the file (the header not counted).
    pub total_rows: u64,
    /// Data rows processed so far (equal to `total_rows` when finished).
    pub rows_done: u64,
    pub created: u64,
    pub updated: u64,
    pub skipped: u64,
    pub rejected: u64,
    /// Tags that were (or would be) created for the import.
    pub tags_created: Vec<String>,
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
    pub total_rows: u64,
    pub rows_done: u64,
    pub created: u64,
    pub skipped: u64,
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
    report.warnings = header.warnings();
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

fn reader<R: Read>(source: R) -> csv::Reader<R> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .buffer_capacity(256 * 1024)
        .from_reader(source)
}

fn csv_error(row: u64, e: csv::Error) -> ImportError {
    match e.into_kind() {
        csv::ErrorKind::Io(io) => ImportError::Io(io),
        other => ImportError::Malformed {
            row,
            message: format!("{other:?}"),
        },
    }
}

/// Refuses a file that is not a CSV of users, before any work: checks the
/// header, every record's encoding, binary content and the row limit.
fn scan<R: Read>(
    source: &mut R,
    config: &ImportConfig,
    actor: &Actor,
    ignore_unknown_columns: bool,
) -> Result<(Header, u64), ImportError> {
    // A first look at the raw bytes catches binary files (images, workbooks)
    // before the CSV parser splits them into odd records.
    let mut head = vec![0u8; 8192];
    let n = read_prefix(source, &mut head)?;
    if n == 0 {
        return Err(ImportError::Empty);
    }
    if head[..n].starts_with(b"PK\x03\x04") {
        return Err(ImportError::Binary {
            row: 1,
            what: "a ZIP archive, e.g. an Excel workbook: save it as CSV",
        });
    }
    if let Some(at) = head[..n].iter().position(|b| is_binary_byte(*b)) {
        let row = 1 + head[..at].iter().filter(|b| **b == b'\n').count() as u64;
        let what = if head[at] == 0 {
            "a NUL byte"
        } else {
            "a control byte"
        };
        return Err(ImportError::Binary { row, what });
    }
    let chained = std::io::Read::chain(&head[..n], source);
    let mut rdr = reader(chained);
    let mut rec = csv::ByteRecord::new();
    let mut row = 1u64;
    if !rdr
        .read_byte_record(&mut rec)
        .map_err(|e| csv_error(row, e))?
    {
        return Err(ImportError::Empty);
    }
    check_bytes(row, &rec)?;
    let header = Header::parse(&rec, config, actor, ignore_unknown_columns)?;
    let mut rows = 0u64;
    loop {
        match rdr.read_byte_record(&mut rec) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(csv_error(row + 1, e)),
        }
        row += 1;
        rows += 1;
        if rows > config.max_rows {
            return Err(ImportError::TooManyRows {
                max: config.max_rows,
            });
        }
        check_bytes(row, &rec)?;
    }
    Ok((header, rows))
}

fn read_prefix<R: Read>(source: &mut R, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match source.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

fn is_binary_byte(b: u8) -> bool {
    (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r')) || b == 0x7f
}

/// Binary content (NUL and other control bytes) and invalid UTF-8 refuse the file.
fn check_bytes(row: u64, rec: &csv::ByteRecord) -> Result<(), ImportError> {
    let bytes = rec.as_slice();
    if let Some(b) = bytes.iter().find(|b| is_binary_byte(**b)) {
        let what = if *b == 0 {
            "a NUL byte"
        } else {
            "a control byte"
        };
        return Err(ImportError::Binary { row, what });
    }
    if let Err(e) = std::str::from_utf8(bytes) {
        let byte = bytes.get(e.valid_up_to()).copied().unwrap_or(0);
        return Err(ImportError::NotUtf8 { row, byte });
    }
    Ok(())
}

/// Column positions, from the header.
#[derive(Debug)]
struct Header {
    columns: Vec<Column>,
    /// The names of the columns left out (`ignore_unknown_columns`).
    ignored: Vec<String>,
}

fn normalize_column(name: &str) -> String {
    name.trim_start_matches('\u{feff}')
        .trim()
        .to_lowercase()
        .chars()
        .map(|c| if c == ' ' || c == '-' { '_' } else { c })
        .collect()
}

impl Header {
    fn parse(
        rec: &csv::ByteRecord,
        config: &ImportConfig,
        actor: &Actor,
        ignore_unknown_columns: bool,
    ) -> Result<Header, ImportError> {
        let names: Vec<String> = rec
            .iter()
            .map(|f| normalize_column(&String::from_utf8_lossy(f)))
            .collect();
        if names.len() == 1 {
            if let Some(found) = [';', '\t', '|'].into_iter().find(|c| names[0].contains(*c)) {
                return Err(ImportError::WrongDelimiter { row: 1, found });
            }
        }
        let staff_ok = staff_column_allowed(config, actor);
        let mut columns = Vec::with_capacity(names.len());
        let mut unknown = Vec::new();
        for name in &names {
            let col = match name.as_str() {
                "email" => Column::Email,
                "first_name" => Column::FirstName,
                "last_name" => Column::LastName,
                "display_name" => Column::DisplayName,
                "organization" => Column::Organization,
                "role" => Column::Role,
                "tags" => Column::Tags,
                "staff_role" if staff_ok => Column::StaffRole,
                "" => Column::Unnamed(columns.len() + 1),
                other => match config
                    .profile_fields
                    .iter()
                    .find(|p| normalize_column(&p.key) == other)
                {
                    Some(p) => Column::Profile(p.key.clone()),
                    None => {
                        unknown.push(name.clone());
                        Column::Ignored(columns.len() + 1)
                    }
                },
            };
            if columns.contains(&col) {
                return Err(ImportError::DuplicateColumn(name.clone()));
            }
            columns.push(col);
        }
        let missing: Vec<String> = REQUIRED
            .iter()
            .zip([Column::Email, Column::FirstName, Column::LastName])
            .filter(|(_, c)| !columns.contains(c))
            .map(|(n, _)| n.to_string())
            .collect();
        if !missing.is_empty() {
            if names.len() == 1 {
                if let Some(found) = [';', '\t'].into_iter().find(|c| names[0].contains(*c)) {
                    return Err(ImportError::WrongDelimiter { row: 1, found });
                }
            }
            return Err(ImportError::MissingColumns(missing));
        }
        if !unknown.is_empty() && !ignore_unknown_columns {
            let mut known: Vec<String> = template_columns(config, actor);
            known.retain(|k| !unknown.contains(k));
            return Err(ImportError::UnknownColumns {
                columns: unknown,
                known: known.join(", "),
            });
        }
        Ok(Header {
            columns,
            ignored: unknown,
        })
    }

    /// The report's warnings about the header.
    fn warnings(&self) -> Vec<String> {
        if self.ignored.is_empty() {
            return Vec::new();
        }
        let what = if self.ignored.len() == 1 {
            "unknown column"
        } else {
            "unknown columns"
        };
        vec![format!(
            "row 1 (header): {what} ignored, their cells were not imported: {}",
            self.ignored.join(", ")
        )]
    }
}

/// A valid row waiting for its batch.
struct Pending {
    row: u64,
    email: String,
    first_name: String,
    last_name: String,
    display_name: Option<String>,
    staff_role: Option<StaffRole>,
    profile: Map<String, Value>,
    memberships: Vec<(i64, OrgRole)>,
    tags: Vec<String>,
}

/// A rejected row: code and reason.
type Problem = (&'static str, String);

#[derive(Insertable)]
#[diesel(table_name = users, treat_none_as_default_value = false)]
struct UserRow<'a> {
    email: &'a str,
    first_name: &'a str,
    last_name: &'a str,
    display_name: Option<&'a str>,
    staff_role: Option<&'a str>,
    profile: String,
    search_text: String,
    created_at: chrono::NaiveDateTime,
    updated_at: chrono::NaiveDateTime,
}

#[derive(Insertable)]
#[diesel(table_name = memberships)]
struct MembershipRow {
    user_id: i64,
    organization_id: i64,
    role: &'static str,
    created_at: chrono::NaiveDateTime,
}

/// The `user.create` event of one user an import created.
#[derive(Insertable)]
#[diesel(table_name = audit_events)]
struct AuditRow<'a> {
    actor: &'a str,
    action: &'static str,
    target: String,
    organization_id: Option<i64>,
    details: String,
    ip: Option<&'a str>,
    created_at: chrono::NaiveDateTime,
}

#[derive(Insertable)]
#[diesel(table_name = user_tags)]
struct UserTagRow {
    user_id: i64,
    tag_id: i64,
    created_at: chrono::NaiveDateTime,
}

/// One pass over the rows: validating only, or validating and writing.
struct Pass<'a> {
    conn: &'a mut DbConnection,
    actor: &'a Actor,
    config: &'a ImportConfig,
    options: &'a ImportOptions,
    header: &'a Header,
    default_org: Option<Organization>,
    write: bool,
    orgs: HashMap<String, Option<Organization>>,
    tags: HashMap<String, i64>,
    new_tags: HashSet<String>,
    may_create_tags: bool,
    /// Normalized emails seen so far (as 128-bit hashes, to keep memory flat) → first row.
    seen: HashMap<[u64; 2], u32>,
    hashers: (
        std::collections::hash_map::RandomState,
        std::collections::hash_map::RandomState,
    ),
    batch: Vec<Pending>,
    report: ImportReport,
    listed_created: usize,
    /// A database failure while checking a row: it stops the import rather
    /// than being reported as the row's fault.
    failure: Option<CoreError>,
    /// Data rows up to the end of the last committed batch.
    committed_rows: u64,
}

impl<'a> Pass<'a> {
    #[allow(clippy::too_many_arguments)]
    fn new(
        conn: &'a mut DbConnection,
        actor: &'a Actor,
        config: &'a ImportConfig,
        options: &'a ImportOptions,
        header: &'a Header,
        default_org: Option<Organization>,
        write: bool,
        total_rows: u64,
    ) -> Self {
        Pass {
            conn,
            actor,
            config,
            options,
            header,
            default_org,
            write,
            orgs: HashMap::new(),
            tags: HashMap::new(),
            new_tags: HashSet::new(),
            may_create_tags: can(actor, Action::ManageSite, &Target::Site),
            // Sized once from the scan's row count: no doubling peak on large files.
            seen: HashMap::with_capacity(total_rows.min(config.max_rows) as usize),
            hashers: Default::default(),
            batch: Vec::new(),
            report: ImportReport::new(options.mode, total_rows),
            listed_created: 0,
            failure: None,
            committed_rows: 0,
        }
    }

    /// Runs the pass; a failure after some batches were committed says how
    /// far the import got.
    fn run<R: Read>(
        &mut self,
        source: &mut R,
        progress: &mut dyn FnMut(&Progress),
    ) -> Result<(), ImportError> {
        self.run_rows(source, progress).map_err(|e| {
            if self.write && self.committed_rows > 0 {
                ImportError::Stopped {
                    committed_rows: self.committed_rows,
                    created: self.report.created,
                    error: Box::new(e),
                }
            } else {
                e
            }
        })
    }

    fn run_rows<R: Read>(
        &mut self,
        source: &mut R,
        progress: &mut dyn FnMut(&Progress),
    ) -> Result<(), ImportError> {
        let mut rdr = reader(source);
        let mut rec = csv::ByteRecord::new();
        let mut row = 1u64;
        // The header was checked by the scan.
        if !rdr
            .read_byte_record(&mut rec)
            .map_err(|e| csv_error(row, e))?
        {
            return Err(ImportError::Empty);
        }
        let width = self.header.columns.len();
        loop {
            match rdr.read_byte_record(&mut rec) {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => return Err(csv_error(row + 1, e)),
            }
            row += 1;
            let mut cells: Vec<&str> = Vec::with_capacity(width);
            let mut utf8_ok = true;
            for f in rec.iter() {
                match std::str::from_utf8(f) {
                    Ok(s) => cells.push(s),
                    Err(_) => utf8_ok = false,
                }
            }
            let email_cell = self
                .cell(&cells, &Column::Email)
                .unwrap_or("")
                .trim()
                .to_owned();
            let checked = if !utf8_ok {
                // The file changed since the scan.
                Err(("encoding", "the text is not UTF-8".to_owned()))
            } else {
                self.check_row(row, &cells)
            };
            if let Some(e) = self.failure.take() {
                return Err(e.into());
            }
            match checked {
                Ok(p) => self.batch.push(p),
                Err((code, reason)) => self.note(row, email_cell, Outcome::Rejected, code, reason),
            }
            self.report.rows_done += 1;
            if self.batch.len() >= batch_rows(self.config, self.report.total_rows) {
                self.flush()?;
                progress(&self.progress());
            }
        }
        self.flush()?;
        progress(&self.progress());
        self.report
            .rows
            .sort_by_key(|r| (r.outcome == Outcome::Created, r.row));
        self.report.tags_created = {
            let mut t: Vec<String> = self.new_tags.iter().cloned().collect();
            t.sort();
            t
        };
        self.report.applied = self.write;
        Ok(())
    }

    fn progress(&self) -> Progress {
        Progress {
            total_rows: self.report.total_rows,
            rows_done: self.report.rows_done,
            created: self.report.created,
            skipped: self.report.skipped,
            rejected: self.report.rejected,
            validating: false,
        }
    }

    fn cell<'c>(&self, cells: &[&'c str], col: &Column) -> Option<&'c str> {
        let i = self.header.columns.iter().position(|c| c == col)?;
        cells.get(i).copied()
    }

    fn note(
        &mut self,
        row: u64,
        email: String,
        outcome: Outcome,
        code: &'static str,
        reason: String,
    ) {
        match outcome {
            Outcome::Created => self.report.created += 1,
            Outcome::Updated => self.report.updated += 1,
            Outcome::Skipped => self.report.skipped += 1,
            Outcome::Rejected => self.report.rejected += 1,
        }
        if outcome == Outcome::Created {
            if self.listed_created >= self.options.list_created {
                return;
            }
            self.listed_created += 1;
        } else if self.report.rows.len() - self.listed_created >= self.config.max_listed_rows {
            self.report.rows_not_listed += 1;
            return;
        }
        let email: String = email.chars().take(MAX_NAME * 3).collect();
        self.report.rows.push(RowResult {
            row,
            email,
            outcome,
            code,
            reason,
        });
    }

    fn fatal(&mut self, e: CoreError) -> Problem {
        let p = ("database", e.to_string());
        self.failure = Some(e);
        p
    }

    fn email_key(&self, email: &str) -> [u64; 2] {
        [
            self.hashers.0.hash_one(email),
            self.hashers.1.hash_one(email),
        ]
    }

    /// Validates one record; a valid row comes back ready to insert.
    fn check_row(&mut self, row: u64, cells: &[&str]) -> Result<Pending, Problem> {
        let header: &'a Header = self.header;
        let width = header.columns.len();
        if cells.len() != width && !(cells.len() == 1 && cells[0].trim().is_empty()) {
            return Err((
                "field_count",
                format!(
                    "{} fields, but the header has {width} (an unquoted comma, or a missing one?)",
                    cells.len()
                ),
            ));
        }
        let get = |col: &Column| -> &str {
            let i = header.columns.iter().position(|c| c == col);
            unneutralize(i.and_then(|i| cells.get(i).copied()).unwrap_or("").trim())
        };
        for (i, col) in header.columns.iter().enumerate() {
            if let Column::Unnamed(n) = col {
                if cells.get(i).is_some_and(|c| !c.trim().is_empty()) {
                    return Err((
                        "unnamed_column",
                        format!("column {n} has a value but no name in the header"),
                    ));
                }
            }
        }
        let raw_email = get(&Column::Email);
        if raw_email.is_empty() {
            return Err(("missing_email", "email is empty".into()));
        }
        let email =
            validate::normalize_email(raw_email).map_err(|e| problem("invalid_email", e))?;
        let key = self.email_key(&email);
        if let Some(first) = self.seen.get(&key) {
            return Err((
                "duplicate_in_file",
                format!("duplicate of row {first} (emails match ignoring case)"),
            ));
        }
        self.seen
            .insert(key, u32::try_from(row).unwrap_or(u32::MAX));

        let first_name = validate::text("first_name", get(&Column::FirstName), MAX_NAME)
            .map_err(|e| problem("invalid_field", e))?;
        let last_name = validate::text("last_name", get(&Column::LastName), MAX_NAME)
            .map_err(|e| problem("invalid_field", e))?;
        let display_name = validate::text("display_name", get(&Column::DisplayName), MAX_NAME)
            .map_err(|e| problem("invalid_field", e))?;
        let display_name = Some(display_name).filter(|d| !d.is_empty());

        let memberships =
            self.check_orgs(&email, get(&Column::Organization), get(&Column::Role))?;
        if memberships.is_empty() && !can(self.actor, Action::ManageSite, &Target::Site) {
            return Err((
                "organization_required",
                "organization is empty (you may import only into your organizations)".into(),
            ));
        }

        let staff_role = match get(&Column::StaffRole) {
            "" => None,
            s => {
                let r = StaffRole::parse(s).ok_or_else(|| {
                    (
                        "invalid_staff_role",
                        format!("staff_role {s:?} is not one of viewer, admin, owner"),
                    )
                })?;
                if !can(self.actor, Action::GrantStaffRole, &Target::Site) {
                    return Err((
                        "staff_role_not_allowed",
                        "you may not grant staff roles".into(),
                    ));
                }
                Some(r)
            }
        };

        let mut tags = Vec::new();
        for t in get(&Column::Tags)
            .split(LIST_SEPARATOR)
            .map(|t| t.trim().to_lowercase())
            .filter(|t| !t.is_empty())
        {
            if t.chars().count() > MAX_TAG || t.contains(',') || t.chars().any(char::is_control) {
                return Err(("invalid_tag", format!("tag {t:?} must be at most {MAX_TAG} characters, without ',' or control characters")));
            }
            if !self.tags.contains_key(&t) && !self.new_tags.contains(&t) {
                let found = match tags_by_name(self.conn, &t) {
                    Ok(found) => found,
                    Err(e) => return Err(self.fatal(e)),
                };
                match found {
                    Some(id) => {
                        self.tags.insert(t.clone(), id);
                    }
                    None if self.may_create_tags => {
                        self.new_tags.insert(t.clone());
                    }
                    None => return Err(("unknown_tag", format!("unknown tag {t:?}"))),
                }
            }
            if !tags.contains(&t) {
                tags.push(t);
            }
        }

        let mut profile = Map::new();
        for col in &header.columns {
            if let Column::Profile(name) = col {
                let v = get(col);
                if v.chars().count() > MAX_TEXT {
                    return Err((
                        "too_long",
                        format!("{name} is too long (at most {MAX_TEXT} characters)"),
                    ));
                }
                if !v.is_empty() {
                    profile.insert(name.clone(), Value::String(v.to_owned()));
                }
            }
        }
        // The declared fields' one check: each cell by its kind, required
        // fields present (also in update mode: a row may create the user).
        let profile = crate::profile::validate(&self.config.profile_fields, &profile)
            .map_err(|e| problem("invalid_profile_field", e))?;
        Ok(Pending {
            row,
            email,
            first_name,
            last_name,
            display_name,
            staff_role,
            profile,
            memberships,
            tags,
        })
    }

    fn check_orgs(
        &mut self,
        email: &str,
        orgs_cell: &str,
        roles_cell: &str,
    ) -> Result<Vec<(i64, OrgRole)>, Problem> {
        let mut slugs: Vec<String> = orgs_cell
            .split(LIST_SEPARATOR)
            .map(|s| s.trim().to_ascii_lowercase())
            .filter(|s| !s.is_empty())
            .collect();
        if slugs.is_empty() {
            if let Some(o) = &self.default_org {
                slugs.push(o.slug.clone());
            }
        }
        let roles: Vec<&str> = roles_cell
            .split(LIST_SEPARATOR)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        if slugs.is_empty() {
            if !roles.is_empty() {
                return Err((
                    "role_without_organization",
                    "role is set but organization is empty".into(),
                ));
            }
            return Ok(Vec::new());
        }
        if roles.len() > 1 && roles.len() != slugs.len() {
            return Err((
                "role_count",
                format!(
                    "{} roles for {} organizations: give one role, or one per organization",
                    roles.len(),
                    slugs.len()
                ),
            ));
        }
        let staff = self.actor.staff_role.is_some();
        let mut out = Vec::with_capacity(slugs.len());
        for (i, slug) in slugs.iter().enumerate() {
            let role_text = roles.get(i).or(roles.first()).copied().unwrap_or("member");
            let role = OrgRole::parse(role_text).ok_or_else(|| {
                (
                    "invalid_role",
                    format!("role {role_text:?} is not one of member, admin, owner"),
                )
            })?;
            if !self.orgs.contains_key(slug) {
                let found = match organizations::get_by_slug(self.conn, slug) {
                    Ok(o) => Some(o),
                    Err(CoreError::NotFound(_)) => None,
                    Err(e) => return Err(self.fatal(e)),
                };
                self.orgs.insert(slug.clone(), found);
            }
            let org = match self.orgs.get(slug).and_then(Option::as_ref) {
                // Organization admins cannot tell an unknown organization from someone else's.
                Some(o)
                    if staff
                        || can(
                            self.actor,
                            Action::ImportExport,
                            &Target::Organization(o.id),
                        ) =>
                {
                    o
                }
                _ => {
                    return Err((
                        "unknown_organization",
                        format!("unknown organization {slug:?}"),
                    ))
                }
            };
            if !org.allows_email(email) {
                return Err((
                    "domain_not_allowed",
                    format!(
                        "the email domain {} is not allowed in organization {:?} (allowed: {})",
                        validate::domain_of(email),
                        org.slug,
                        org.domains().join(", ")
                    ),
                ));
            }
            if !can(
                self.actor,
                Action::GrantOrgRole(role),
                &Target::Organization(org.id),
            ) {
                return Err((
                    "role_not_allowed",
                    format!(
                        "you may not grant the role {role} in organization {:?}",
                        org.slug
                    ),
                ));
            }
            if out.iter().any(|(o, _)| *o == org.id) {
                return Err((
                    "duplicate_organization",
                    format!("organization {:?} is listed twice", org.slug),
                ));
            }
            out.push((org.id, role));
        }
        Ok(out)
    }

    /// Sorts the batch into existing users (skipped) and new ones, and writes
    /// the new ones in one transaction when this pass writes.
    fn flush(&mut self) -> Result<(), ImportError> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.batch);
        // A user created meanwhile by someone else makes the insert fail; the
        // retry sees it as existing.
        let mut attempt = 0;
        let (created, existing, mails) = loop {
            attempt += 1;
            match self.write_batch(&batch) {
                Err(ImportError::Core(CoreError::Database(e)))
                    if attempt < 3 && unique_violation(&e) =>
                {
                    continue
                }
                other => break other?,
            }
        };
        for (i, outcome, code, reason) in existing {
            let p = &batch[i];
            self.note(p.row, p.email.clone(), outcome, code, reason);
        }
        for i in created {
            let p = &batch[i];
            self.note(
                p.row,
                p.email.clone(),
                Outcome::Created,
                "created",
                String::new(),
            );
        }
        self.report.welcome_mails_queued += mails;
        self.committed_rows = self.report.rows_done;
        Ok(())
    }

    /// Returns the indexes created and skipped, and the mails queued.
    fn write_batch(
        &mut self,
        batch: &[Pending],
    ) -> Result<(Vec<usize>, Vec<Existing>, u64), ImportError> {
        let write = self.write;
        let update = self.options.update_existing;
        let new_tags: Vec<String> = {
            let mut t: Vec<String> = batch
                .iter()
                .flat_map(|p| p.tags.iter())
                .filter(|t| !self.tags.contains_key(*t))
                .cloned()
                .collect();
            t.sort();
            t.dedup();
            t
        };
        let actor = self.actor;
        let actor_label = actor.label();
        let import_id = self.options.import_id;
        let source_name = self.options.source_name.as_str();
        let mail = self.options.welcome_mail.clone();
        let (created, skipped, mails, tag_ids) = {
            let body = |conn: &mut DbConnection| -> Result<_, ImportError> {
                let emails: Vec<&str> = batch.iter().map(|p| p.email.as_str()).collect();
                let mut existing: HashSet<String> = HashSet::new();
                for chunk in emails.chunks(EMAILS_PER_LOOKUP) {
                    existing.extend(
                        users::table
                            .filter(users::email.eq_any(chunk))
                            .select(users::email)
                            .load::<String>(conn)?,
                    );
                }
                let (skipped, created): (Vec<usize>, Vec<usize>) =
                    (0..batch.len()).partition(|i| existing.contains(&batch[*i].email));
                let skipped = if update && !skipped.is_empty() {
                    let mut out = Vec::with_capacity(skipped.len());
                    for chunk in skipped.chunks(EMAILS_PER_LOOKUP) {
                        out.extend(update_existing(conn, actor, batch, chunk, write)?);
                    }
                    out
                } else {
                    skipped
                        .into_iter()
                        .map(|i| {
                            let reason = "a user with this email already exists".to_owned();
                            (i, Outcome::Skipped, "exists", reason)
                        })
                        .collect()
                };
                if !write || created.is_empty() {
                    return Ok((created, skipped, 0u64, Vec::new()));
                }
                let t = now();
                let mut tag_ids: Vec<(String, i64)> = Vec::new();
                for name in &new_tags {
                    let id: i64 = diesel::insert_into(tags::table)
                        .values((tags::name.eq(name), tags::created_at.eq(t)))
                        .returning(tags::id)
                        .get_result(conn)?;
                    audit::record(
                        conn,
                        actor,
                        "tag.create",
                        &format!("tag:{id}"),
                        None,
                        json!({"name": name, "via": "import"}),
                    )?;
                    tag_ids.push((name.clone(), id));
                }
                // Inserted in email order: the email index (and, partly, the
                // name index) is then written page by page instead of at
                // random, which cut PostgreSQL's CPU for `users` by a fifth
                // in 20,000-row batches. Within a batch, ids follow the email
                // order rather than the file's.
                let mut order = created.clone();
                order.sort_unstable_by(|a, b| batch[*a].email.cmp(&batch[*b].email));
                let rows: Vec<UserRow> = order
                    .iter()
                    .map(|i| {
                        let p = &batch[*i];
                        UserRow {
                            email: &p.email,
                            first_name: &p.first_name,
                            last_name: &p.last_name,
                            display_name: p.display_name.as_deref(),
                            staff_role: p.staff_role.map(|r| r.as_str()),
                            profile: Value::Object(p.profile.clone()).to_string(),
                            search_text: search_text(
                                &p.email,
                                &p.first_name,
                                &p.last_name,
                                p.display_name.as_deref(),
                                &p.profile,
                            ),
                            created_at: t,
                            updated_at: t,
                        }
                    })
                    .collect();
                let mut ids: Vec<(i64, String)> = Vec::with_capacity(rows.len());
                for chunk in rows.chunks(USERS_PER_INSERT) {
                    ids.extend(on_backend!(conn, |c| diesel::insert_into(users::table)
                        .values(chunk)
                        .returning((users::id, users::email))
                        .get_results::<(i64, String)>(c))?);
                }
                let id_of: HashMap<&str, i64> =
                    ids.iter().map(|(id, e)| (e.as_str(), *id)).collect();
                let mut member_rows = Vec::new();
                let mut tag_rows = Vec::new();
                for i in &created {
                    let p = &batch[*i];
                    let Some(&user_id) = id_of.get(p.email.as_str()) else {
                        continue;
                    };
                    for (org, role) in &p.memberships {
                        member_rows.push(MembershipRow {
                            user_id,
                            organization_id: *org,
                            role: role.as_str(),
                            created_at: t,
                        });
                    }
                    for name in &p.tags {
                        let tag_id = self_tag(&self.tags, &tag_ids, name);
                        if let Some(tag_id) = tag_id {
                            tag_rows.push(UserTagRow {
                                user_id,
                                tag_id,
                                created_at: t,
                            });
                        }
                    }
                }
                // In user-id order (the email order above), not the file's:
                // each membership and tag index then grows at its end, or at
                // one point per organization or tag, instead of taking rows
                // all over the batch's range (about a sixth less time for
                // memberships on SQLite at 1,000,000 rows).
                member_rows.sort_unstable_by_key(|m| (m.user_id, m.organization_id));
                tag_rows.sort_unstable_by_key(|t| (t.user_id, t.tag_id));
                for chunk in member_rows.chunks(5_000) {
                    on_backend!(conn, |c| diesel::insert_into(memberships::table)
                        .values(chunk)
                        .execute(c))?;
                }
                for chunk in tag_rows.chunks(5_000) {
                    on_backend!(conn, |c| diesel::insert_into(user_tags::table)
                        .values(chunk)
                        .execute(c))?;
                }
                // One `user.create` event per created user, as if each had been
                // created by hand, naming the import that made it.
                let events: Vec<AuditRow> = created
                    .iter()
                    .filter_map(|i| {
                        let p = &batch[*i];
                        let user_id = *id_of.get(p.email.as_str())?;
                        Some(AuditRow {
                            actor: &actor_label,
                            action: "user.create",
                            target: format!("user:{user_id}"),
                            organization_id: p.memberships.first().map(|(o, _)| *o),
                            details: json!({
                                "email": p.email, "staff_role": p.staff_role, "via": "import",
                                "import": import_id, "source": source_name, "row": p.row,
                            })
                            .to_string(),
                            ip: actor.ip.as_deref(),
                            created_at: t,
                        })
                    })
                    .collect();
                for chunk in events.chunks(2_000) {
                    on_backend!(conn, |c| diesel::insert_into(audit_events::table)
                        .values(chunk)
                        .execute(c))?;
                }
                // And the typed event of each (see `events`), like `audit::record`'s.
                for row in &events {
                    crate::events::emit(
                        conn,
                        crate::events::Event::from_audit(
                            row.actor,
                            row.action,
                            &row.target,
                            row.organization_id,
                            &Value::Null,
                        ),
                    )?;
                }
                let mut mails = 0u64;
                if let Some(m) = &mail {
                    for i in &created {
                        let p = &batch[*i];
                        welcome_or_invite(conn, actor, m, p)?;
                        mails += 1;
                    }
                }
                Ok((created, skipped, mails, tag_ids))
            };
            // Writing batches take SQLite's write lock before their first read.
            if write {
                crate::db::write_transaction(self.conn, body)?
            } else {
                self.conn.transaction(body)?
            }
        };
        self.tags.extend(tag_ids);
        Ok((created, skipped, mails))
    }
}

/// Rows per transaction: the configured batch size, raised for a large file
/// so that it is written in about [`MAX_BATCHES`] transactions (at most
/// [`MAX_BATCH`] rows each). Each commit has a fixed cost, and on SQLite each
/// one adds a segment to the search index that later has to be merged; a
/// bigger batch holds the write lock longer (up to about a second for 20,000
/// rows on the 2-core machine of the README figures).
pub fn batch_rows(config: &ImportConfig, total_rows: u64) -> usize {
    let spread = usize::try_from(total_rows.div_ceil(MAX_BATCHES)).unwrap_or(MAX_BATCH);
    config.batch_size.max(spread).clamp(1, MAX_BATCH)
}

/// What became of a batch row whose user exists: index, outcome, code, reason.
type Existing = (usize, Outcome, &'static str, String);

/// Update mode: changes existing users' names and profile fields from the
/// non-empty cells, when the actor may edit them.
fn update_existing(
    conn: &mut DbConnection,
    actor: &Actor,
    batch: &[Pending],
    rows: &[usize],
    write: bool,
) -> Result<Vec<Existing>, ImportError> {
    let emails: Vec<&str> = rows.iter().map(|i| batch[*i].email.as_str()).collect();
    let found: Vec<User> = users::table
        .filter(users::email.eq_any(&emails))
        .select(User::as_select())
        .load(conn)?;
    let ids: Vec<i64> = found.iter().map(|u| u.id).collect();
    let roles = crate::users::roles_of_many(conn, &ids)?;
    let by_email: HashMap<&str, &User> = found.iter().map(|u| (u.email.as_str(), u)).collect();
    let t = now();
    let mut out = Vec::with_capacity(rows.len());
    for &i in rows {
        let p = &batch[i];
        let Some(u) = by_email.get(p.email.as_str()) else {
            out.push((
                i,
                Outcome::Skipped,
                "exists",
                "a user with this email already exists".into(),
            ));
            continue;
        };
        let orgs = roles
            .iter()
            .filter(|r| r.0 == u.id)
            .map(|r| (r.1, r.2))
            .collect();
        let target = Target::User {
            id: u.id,
            staff_role: u.staff_role(),
            orgs,
        };
        if !can(actor, Action::Edit, &target) {
            out.push((
                i,
                Outcome::Rejected,
                "update_not_allowed",
                "you may not change this existing user".into(),
            ));
            continue;
        }
        let pick = |new: &str, old: &str| {
            if new.is_empty() {
                old.to_owned()
            } else {
                new.to_owned()
            }
        };
        let first = pick(&p.first_name, &u.first_name);
        let last = pick(&p.last_name, &u.last_name);
        let display = p.display_name.clone().or_else(|| u.display_name.clone());
        let old_profile = u.profile_map();
        let mut profile = old_profile.clone();
        profile.extend(p.profile.iter().map(|(k, v)| (k.clone(), v.clone())));
        if first == u.first_name
            && last == u.last_name
            && display == u.display_name
            && profile == old_profile
        {
            out.push((
                i,
                Outcome::Skipped,
                "unchanged",
                "already exists with the same values".into(),
            ));
            continue;
        }
        if write {
            diesel::update(users::table.find(u.id))
                .set((
                    users::first_name.eq(&first),
                    users::last_name.eq(&last),
                    users::display_name.eq(&display),
                    users::profile.eq(Value::Object(profile.clone()).to_string()),
                    users::search_text.eq(search_text(
                        &u.email,
                        &first,
                        &last,
                        display.as_deref(),
                        &profile,
                    )),
                    users::updated_at.eq(t),
                ))
                .execute(conn)?;
            crate::sessions::sessions_changed(
                conn,
                crate::session_cache::Invalidation::User(u.id),
            )?;
            // As an edit by hand: its audit row and `UserUpdated` event.
            audit::record(
                conn,
                actor,
                "user.update",
                &format!("user:{}", u.id),
                None,
                json!({
                    "first_name": first, "last_name": last, "display_name": display,
                    "profile": p.profile, "via": "import", "row": p.row,
                }),
            )?;
        }
        out.push((i, Outcome::Updated, "updated", String::new()));
    }
    Ok(out)
}

fn self_tag(known: &HashMap<String, i64>, fresh: &[(String, i64)], name: &str) -> Option<i64> {
    known
        .get(name)
        .copied()
        .or_else(|| fresh.iter().find(|(n, _)| n == name).map(|(_, id)| *id))
}

fn tags_by_name(conn: &mut DbConnection, name: &str) -> Result<Option<i64>, CoreError> {
    Ok(tags::table
        .filter(tags::name.eq(name))
        .select(tags::id)
        .first(conn)
        .optional()?)
}

fn problem(code: &'static str, e: CoreError) -> Problem {
    (code, e.to_string())
}

/// Queues the mail of a created user: an invitation into the row's first
/// organization when invitations are configured, else the welcome mail.
fn welcome_or_invite(
    conn: &mut DbConnection,
    actor: &Actor,
    m: &WelcomeMail,
    p: &Pending,
) -> Result<(), ImportError> {
    match (&m.invitations, p.memberships.first()) {
        (Some(inv), Some((org, role))) => {
            inv.invite_created(conn, actor, *org, &p.email, *role)
                .map_err(|e| match e {
                    crate::invitations::InvitationError::Core(c) => ImportError::Core(c),
                    other => ImportError::Core(CoreError::Invalid {
                        field: "invitation",
                        reason: other.to_string(),
                    }),
                })?;
        }
        _ => {
            outbox::enqueue(conn, &welcome(m, p))?;
        }
    }
    Ok(())
}

fn welcome(m: &WelcomeMail, p: &Pending) -> NewMail {
    let name = if p.first_name.is_empty() {
        p.email.as_str()
    } else {
        p.first_name.as_str()
    };
    NewMail {
        kind: "import_welcome".into(),
        recipient: p.email.clone(),
        subject: format!("Your {} account", m.site_name),
        text_body: format!(
            "Hello {name},\n\nAn account was created for you on {site}.\n\
             To choose your password, open {url} and enter this email address ({email}).\n",
            site = m.site_name,
            url = m.set_password_url,
            email = p.email,
        ),
        html_body: None,
        invitation_id: None,
    }
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
