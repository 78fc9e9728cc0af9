//! `frontdesk`: the operator's command line. Migrates the database, creates the
//! first staff owner, imports or exports users as CSV, invites people and
//! looks after the mail outbox.

mod invite;
mod outbox;

use std::fs::File;
use std::io::{self, BufRead, BufWriter, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use chrono::{NaiveDate, NaiveDateTime};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use rand::distributions::Alphanumeric;
use rand::Rng;

use frontdesk_core::authz::{Actor, OrgRole, StaffRole};
use frontdesk_core::db::{self, DbConnection};
use frontdesk_core::exports::{self, ExportField, ExportRequest};
use frontdesk_core::imports::{self, ImportConfig, ImportMode, ImportOptions, WelcomeMail};
use frontdesk_core::invitations::{ImportInvitations, InvitationSettings};
use frontdesk_core::users::query::{LastLogin, SortDir, SortKey, StaffFilter, UserQuery};
use frontdesk_core::users::{self, NewUser, UserStatus};
use frontdesk_core::{organizations, passwords, tags};

#[derive(Parser)]
#[command(name = "frontdesk", version, about = "frontdesk operator commands")]
struct Cli {
    /// `postgres://…`, `sqlite://path` or a SQLite file path.
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    database_url: Option<String>,
    /// PostgreSQL schema that holds frontdesk's tables (ignored on SQLite).
    #[arg(
        long,
        env = "FRONTDESK_POSTGRES_SCHEMA",
        global = true,
        default_value = db::PgSchema::DEFAULT
    )]
    postgres_schema: String,
    /// Print each change's event (users created, imports finished, …) as one
    /// JSON line on standard error once it is committed, for scripts that
    /// keep other systems in step.
    #[arg(long, global = true)]
    events: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create or update the database schema. On PostgreSQL, tables an
    /// earlier version left in `public` are first moved into the schema
    /// (--postgres-schema); the command says which.
    Migrate,
    /// Create a staff owner. The password is read from stdin with
    /// --password-stdin, otherwise generated and printed once.
    CreateAdmin {
        #[arg(long)]
        email: String,
        #[arg(long, default_value = "")]
        first_name: String,
        #[arg(long, default_value = "")]
        last_name: String,
        /// Read the password (first line) from standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Print the CSV import template (the header line).
    Template {
        #[command(flatten)]
        fields: FieldArgs,
    },
    /// Import users from a CSV file: UTF-8 (a BOM is fine), comma-separated,
    /// header first with email, first_name, last_name and any of
    /// display_name, organization (slug), role (member|admin|owner), tags,
    /// staff_role and profile fields. Several organizations, roles or tags in
    /// one cell are separated by `|`. Rows are numbered as in a spreadsheet
    /// (header = row 1). Exit status: 0 all rows fine, 2 some rows rejected,
    /// 1 the file was refused (nothing written).
    Import(ImportArgs),
    /// Export users as CSV.
    Export(ExportArgs),
    /// Invite addresses into an organization. Exit status: 0 all invited (and,
    /// with --send, delivered), 2 some refused or undelivered, 1 the command
    /// was refused (nothing written) or the database failed.
    Invite(invite::InviteArgs),
    /// Show the mail outbox (counts, failed and stuck mail), requeue failed mail.
    Outbox(outbox::OutboxArgs),
}

#[derive(Args)]
struct FieldArgs {
    /// Host-defined profile fields, comma-separated.
    #[arg(long, env = "FRONTDESK_PROFILE_FIELDS", value_delimiter = ',')]
    profile_fields: Vec<String>,
}

#[derive(Args)]
struct ActorArgs {
    /// Act as this user (their staff role or organization roles limit what is
    /// allowed); by default the command acts as the system.
    #[arg(long = "as", value_name = "EMAIL")]
    as_user: Option<String>,
}

#[derive(Args)]
struct ImportArgs {
    file: PathBuf,
    /// Organization (slug) for rows whose organization cell is empty.
    #[arg(long)]
    org: Option<String>,
    /// Report what would happen; write nothing.
    #[arg(long, conflicts_with = "strict")]
    dry_run: bool,
    /// Write nothing unless every row is valid.
    #[arg(long)]
    strict: bool,
    /// Update existing users' names and profile fields from non-empty cells
    /// (default: skip existing users).
    #[arg(long)]
    update: bool,
    /// Leave out columns the import does not know (named in a warning)
    /// instead of refusing the file.
    #[arg(long)]
    ignore_unknown_columns: bool,
    /// Invite each created user: an invitation to their organization (the
    /// link sets their password), or a welcome mail pointing at the
    /// password-reset page when the row has no organization. Queued in the
    /// outbox; the app's mail worker sends them.
    #[arg(long, requires = "base_url")]
    invite: bool,
    /// Public URL of the app, for the links in welcome mails.
    #[arg(long, env = "FRONTDESK_BASE_URL")]
    base_url: Option<String>,
    #[arg(long, env = "FRONTDESK_SITE_NAME", default_value = "frontdesk")]
    site_name: String,
    /// Also write the report (row, email, outcome, code, reason) as CSV here.
    #[arg(long)]
    report: Option<PathBuf>,
    #[arg(long, default_value_t = 1_000_000)]
    max_rows: u64,
    #[arg(long, default_value_t = 100 * 1024 * 1024)]
    max_bytes: u64,
    #[arg(long, default_value_t = 1_000)]
    batch_size: usize,
    /// Do not show a progress bar.
    #[arg(long)]
    quiet: bool,
    #[command(flatten)]
    fields: FieldArgs,
    #[command(flatten)]
    actor: ActorArgs,
}

#[derive(Args)]
struct ExportArgs {
    /// Columns, comma-separated (default: the import columns, status and dates).
    /// Known: id, email, first_name, last_name, display_name, organization, role,
    /// tags, staff_role, status, email_verified, local_login_enabled,
    /// suspended_reason, created_at, last_login_at, and profile fields.
    #[arg(long)]
    fields: Option<String>,
    /// Free-text search over email, names and profile fields.
    #[arg(long)]
    search: Option<String>,
    /// active or suspended.
    #[arg(long)]
    status: Option<String>,
    /// staff, not-staff, viewer, admin or owner.
    #[arg(long)]
    staff: Option<String>,
    /// Organization slug.
    #[arg(long)]
    org: Option<String>,
    /// member, admin or owner (in --org when given).
    #[arg(long)]
    org_role: Option<String>,
    #[arg(long, value_delimiter = ',')]
    tags_all: Vec<String>,
    #[arg(long, value_delimiter = ',')]
    tags_any: Vec<String>,
    #[arg(long, value_delimiter = ',')]
    tags_none: Vec<String>,
    /// Signed up on or after this date (YYYY-MM-DD).
    #[arg(long)]
    created_from: Option<NaiveDate>,
    /// Signed up before this date (YYYY-MM-DD).
    #[arg(long)]
    created_to: Option<NaiveDate>,
    /// Only users who never signed in.
    #[arg(long)]
    never_signed_in: bool,
    /// email, name, created or last-login.
    #[arg(long, default_value = "created")]
    sort: String,
    /// Sort ascending (default descending).
    #[arg(long)]
    asc: bool,
    /// Output file (default, or `-`: standard output).
    #[arg(short, long)]
    output: Option<PathBuf>,
    #[command(flatten)]
    fields_cfg: FieldArgs,
    #[command(flatten)]
    actor: ActorArgs,
}

type CliResult<T> = Result<T, String>;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // frontdesk's warnings (a database away and retried, a mail not sent) on
    // stderr; `RUST_LOG` (e.g. `info` or `debug`) shows more.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The schema named by --postgres-schema, set once by `run` before any
/// command connects.
static SCHEMA: std::sync::OnceLock<db::PgSchema> = std::sync::OnceLock::new();

/// Set by `run` from --events.
static PRINT_EVENTS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();

/// Writes each committed event as a JSON line on standard error.
struct JsonLines;

impl frontdesk_core::events::EventListener for JsonLines {
    fn after_commit(&self, event: &frontdesk_core::events::Event) {
        match serde_json::to_string(event) {
            Ok(line) => eprintln!("{line}"),
            Err(e) => eprintln!("error: an event could not be written: {e}"),
        }
    }
}

fn open(url: Option<&str>) -> CliResult<(db::Pool, db::Migrated)> {
    let url = url.ok_or("no database: pass --database-url or set DATABASE_URL")?;
    let schema = SCHEMA.get_or_init(db::PgSchema::default);
    let mut listeners = frontdesk_core::events::Listeners::default();
    if PRINT_EVENTS.get().copied().unwrap_or(false) {
        listeners.push(std::sync::Arc::new(JsonLines));
    }
    db::open_with(url, 2, schema, listeners).map_err(|e| e.to_string())
}

fn connect(url: Option<&str>) -> CliResult<db::Pool> {
    open(url).map(|(pool, _)| pool)
}

/// A pooled connection that delivers the events of the command's changes to
/// the listeners when dropped.
fn conn(pool: &db::Pool) -> CliResult<frontdesk_core::events::Checkout> {
    frontdesk_core::events::checkout(pool).map_err(|e| e.to_string())
}

fn run(cli: Cli) -> CliResult<ExitCode> {
    let url = cli.database_url.as_deref();
    let schema = db::PgSchema::new(&cli.postgres_schema).map_err(|e| e.to_string())?;
    let _ = SCHEMA.set(schema);
    let _ = PRINT_EVENTS.set(cli.events);
    match cli.command {
        Command::Migrate => {
            let (_, done) = open(url)?;
            if !done.moved_tables.is_empty() {
                println!(
                    "moved {} tables from public into schema {}: {}",
                    done.moved_tables.len(),
                    cli.postgres_schema,
                    done.moved_tables.join(", ")
                );
            }
            for version in &done.applied {
                println!("applied migration {version}");
            }
            println!("database schema is up to date");
            Ok(ExitCode::SUCCESS)
        }
        Command::CreateAdmin {
            email,
            first_name,
            last_name,
            password_stdin,
        } => {
            let pool = connect(url)?;
            let (password, generated) = if password_stdin {
                let mut line = String::new();
                io::stdin()
                    .lock()
                    .read_line(&mut line)
                    .map_err(|e| format!("reading the password: {e}"))?;
                (line.trim_end_matches(['\r', '\n']).to_owned(), false)
            } else {
                let p: String = rand::thread_rng()
                    .sample_iter(&Alphanumeric)
                    .take(24)
                    .map(char::from)
                    .collect();
                (p, true)
            };
            let hash = passwords::hash(&password).map_err(|e| e.to_string())?;
            let new = NewUser {
                email,
                first_name,
                last_name,
                password_hash: Some(hash),
                email_verified: true,
                staff_role: Some(StaffRole::Owner),
                ..NewUser::default()
            };
            let mut c = conn(&pool)?;
            let user = users::create(&mut c, &Actor::system(), new).map_err(|e| e.to_string())?;
            println!("created staff owner {} (id {})", user.email, user.id);
            if generated {
                println!("password (shown once): {password}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Template { fields } => {
            let config = ImportConfig {
                profile_fields: fields.profile_fields.into_iter().map(Into::into).collect(),
                ..ImportConfig::default()
            };
            print!("{}", imports::template_csv(&config, &Actor::system()));
            Ok(ExitCode::SUCCESS)
        }
        Command::Import(args) => import(url, args),
        Command::Export(args) => export(url, args),
        Command::Invite(args) => invite::run(url, args),
        Command::Outbox(args) => outbox::run(url, args),
    }
}

fn actor_for(c: &mut DbConnection, args: &ActorArgs) -> CliResult<Actor> {
    let Some(email) = &args.as_user else {
        return Ok(Actor::system());
    };
    let user = users::find_by_email(c, email)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no user with the email {email}"))?;
    users::actor_for(c, user.id, None).map_err(|e| e.to_string())
}

fn import(url: Option<&str>, args: ImportArgs) -> CliResult<ExitCode> {
    let file = File::open(&args.file).map_err(|e| format!("{}: {e}", args.file.display()))?;
    let pool = connect(url)?;
    let mut c = conn(&pool)?;
    let actor = actor_for(&mut c, &args.actor)?;
    let config = ImportConfig {
        profile_fields: args
            .fields
            .profile_fields
            .iter()
            .map(|f| f.as_str().into())
            .collect(),
        max_rows: args.max_rows,
        max_bytes: args.max_bytes,
        batch_size: args.batch_size.max(1),
        ..ImportConfig::default()
    };
    let mode = if args.dry_run {
        ImportMode::DryRun
    } else if args.strict {
        ImportMode::Strict
    } else {
        ImportMode::Apply
    };
    let welcome_mail = match (args.invite, &args.base_url) {
        (true, Some(base)) => Some(invite_mail(base, &args.site_name)?),
        _ => None,
    };
    let options = ImportOptions {
        mode,
        default_organization: args.org.clone(),
        welcome_mail,
        source_name: args
            .file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        list_created: 0,
        update_existing: args.update,
        ignore_unknown_columns: args.ignore_unknown_columns,
        import_id: None,
    };
    let bar = if args.quiet || !io::stderr().is_terminal() {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(0)
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} {msg} [{bar:30}] {pos}/{len} rows ({per_sec}, {eta} left)",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    let mut progress = |p: &imports::Progress| {
        bar.set_length(p.total_rows);
        bar.set_position(p.rows_done);
        let what = if p.validating {
            "checking"
        } else {
            "importing"
        };
        bar.set_message(format!(
            "{what}: {} new, {} skipped, {} rejected",
            p.created, p.skipped, p.rejected
        ));
    };
    let report = imports::import(
        &mut c,
        &actor,
        &config,
        &options,
        io::BufReader::new(file),
        &mut progress,
    );
    bar.finish_and_clear();
    let report = report.map_err(|e| format!("{}: {e}", args.file.display()))?;

    let stdout = io::stdout();
    let mut out = stdout.lock();
    let print =
        |out: &mut io::StdoutLock, s: String| writeln!(out, "{s}").map_err(|e| e.to_string());
    for w in &report.warnings {
        print(&mut out, format!("warning: {w}"))?;
    }
    for r in report
        .rows
        .iter()
        .filter(|r| r.outcome != imports::Outcome::Created)
    {
        print(
            &mut out,
            if r.reason.is_empty() {
                format!("row {}: {} {}", r.row, r.outcome.as_str(), r.email)
            } else {
                format!(
                    "row {}: {} {}: {}",
                    r.row,
                    r.outcome.as_str(),
                    r.email,
                    r.reason
                )
            },
        )?;
    }
    if report.rows_not_listed > 0 {
        print(
            &mut out,
            format!(
                "… and {} more not listed",
                imports::rows(report.rows_not_listed)
            ),
        )?;
    }
    if !report.tags_created.is_empty() {
        let verb = if report.applied {
            "created"
        } else {
            "would create"
        };
        print(
            &mut out,
            format!("tags {verb}: {}", report.tags_created.join(", ")),
        )?;
    }
    if report.welcome_mails_queued > 0 {
        print(
            &mut out,
            format!(
                "mails queued (invitations and welcome mails): {}",
                report.welcome_mails_queued
            ),
        )?;
    }
    print(&mut out, report.summary())?;
    if let Some(path) = &args.report {
        let f = File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
        report
            .write_csv(BufWriter::new(f))
            .map_err(|e| format!("{}: {e}", path.display()))?;
        print(&mut out, format!("report written to {}", path.display()))?;
    }
    Ok(if report.rejected > 0 {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

/// Invitations (and welcome mails) for the created users, with links under `base`.
fn invite_mail(base: &str, site_name: &str) -> CliResult<WelcomeMail> {
    let settings = InvitationSettings::new(base).map_err(|e| e.to_string())?;
    let templates = frontdesk_mail::Templates::new().map_err(|e| e.to_string())?;
    Ok(WelcomeMail {
        site_name: site_name.to_owned(),
        set_password_url: format!("{}/auth/password-reset", base.trim_end_matches('/')),
        invitations: Some(ImportInvitations {
            settings,
            renderer: std::sync::Arc::new(templates),
        }),
    })
}

fn tag_ids(c: &mut DbConnection, names: &[String]) -> CliResult<Vec<i64>> {
    names
        .iter()
        .filter(|n| !n.trim().is_empty())
        .map(|n| {
            tags::get_by_name(c, n)
                .map_err(|e| e.to_string())?
                .map(|t| t.id)
                .ok_or_else(|| format!("unknown tag {n:?}"))
        })
        .collect()
}

fn day(d: Option<NaiveDate>) -> Option<NaiveDateTime> {
    d.and_then(|d| d.and_hms_opt(0, 0, 0))
}

fn export(url: Option<&str>, args: ExportArgs) -> CliResult<ExitCode> {
    let pool = connect(url)?;
    let mut c = conn(&pool)?;
    let actor = actor_for(&mut c, &args.actor)?;
    let profile: Vec<frontdesk_core::profile::ProfileField> = args
        .fields_cfg
        .profile_fields
        .iter()
        .map(|f| f.as_str().into())
        .collect();
    let profile = &profile;
    let fields = match &args.fields {
        Some(list) => ExportField::parse_list(list, profile).map_err(|e| e.to_string())?,
        None => exports::default_fields(profile),
    };
    let mut query = UserQuery {
        search: args.search.clone(),
        ..UserQuery::default()
    };
    if let Some(s) = &args.status {
        query.status = Some(
            UserStatus::parse(s)
                .ok_or_else(|| format!("--status {s:?}: use active or suspended"))?,
        );
    }
    if let Some(s) = &args.staff {
        query.staff = match s.as_str() {
            "staff" => StaffFilter::Staff,
            "not-staff" => StaffFilter::NotStaff,
            other => StaffFilter::Is(StaffRole::parse(other).ok_or_else(|| {
                format!("--staff {other:?}: use staff, not-staff, viewer, admin or owner")
            })?),
        };
    }
    if let Some(slug) = &args.org {
        query.organization = Some(
            organizations::get_by_slug(&mut c, slug)
                .map_err(|_| format!("unknown organization {slug:?}"))?
                .id,
        );
    }
    if let Some(r) = &args.org_role {
        query.org_role = Some(
            OrgRole::parse(r)
                .ok_or_else(|| format!("--org-role {r:?}: use member, admin or owner"))?,
        );
    }
    query.tags_all = tag_ids(&mut c, &args.tags_all)?;
    query.tags_any = tag_ids(&mut c, &args.tags_any)?;
    query.tags_none = tag_ids(&mut c, &args.tags_none)?;
    query.created_from = day(args.created_from);
    query.created_to = day(args.created_to);
    if args.never_signed_in {
        query.last_login = LastLogin::Never;
    }
    query.sort = match args.sort.as_str() {
        "email" => SortKey::Email,
        "name" => SortKey::Name,
        "created" => SortKey::Created,
        "last-login" => SortKey::LastLogin,
        other => {
            return Err(format!(
                "--sort {other:?}: use email, name, created or last-login"
            ))
        }
    };
    query.dir = if args.asc {
        SortDir::Asc
    } else {
        SortDir::Desc
    };
    let req = ExportRequest::new(fields, query);
    // `-o -` means standard output, as usual for CLI tools.
    let output = args.output.as_ref().filter(|p| p.as_os_str() != "-");
    let summary = match output {
        Some(path) => {
            let f = File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
            let s = exports::export(&mut c, &actor, &req, BufWriter::new(f), &mut |_| {})
                .map_err(|e| e.to_string())?;
            eprintln!(
                "exported {} to {}",
                imports::plural(s.rows, "user", "users"),
                path.display()
            );
            s
        }
        None => {
            let stdout = io::stdout();
            exports::export(
                &mut c,
                &actor,
                &req,
                BufWriter::new(stdout.lock()),
                &mut |_| {},
            )
            .map_err(|e| e.to_string())?
        }
    };
    let _ = summary;
    Ok(ExitCode::SUCCESS)
}
