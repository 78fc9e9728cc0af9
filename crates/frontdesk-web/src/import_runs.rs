//! Running imports for the admin pages and the API: the upload is streamed to
//! a file (never whole in memory; `multipart/form-data` for the pages, the
//! raw body for the API), checked, then imported at once when small or in a
//! background thread when over the configured row count. Every run is filed
//! in the `imports` table (`frontdesk_core::import_jobs`).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest};
use frontdesk_core::import_jobs::{self, ImportJob, JobOptions, NewJob};
use frontdesk_core::imports::{
    self, ImportError, ImportMode, ImportOptions, ImportReport, WelcomeMail,
};
use frontdesk_core::invitations::ImportInvitations;
use frontdesk_core::Actor;

use crate::error::{problem_type, WebError};
use crate::state::FrontdeskState;

/// Kept dry-run uploads older than this are removed.
const KEEP_UPLOADS: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// Text fields of an upload form are small; anything bigger is refused.
const MAX_FIELD: usize = 16 * 1024;

/// How a refused file or a refused import reads on a page or in the API.
pub fn import_error(e: ImportError) -> WebError {
    match e {
        ImportError::Forbidden => WebError::forbidden("You may not import users here."),
        ImportError::UnknownOrganization(slug) => WebError::new(
            StatusCode::NOT_FOUND,
            "Not found",
            format!("organization {slug:?} not found"),
        ),
        ImportError::Core(c) => c.into(),
        e @ ImportError::TooLarge { .. } => WebError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Payload too large",
            e.to_string(),
        )
        .with_type(problem_type::PAYLOAD_TOO_LARGE),
        e if e.is_client_error() => {
            WebError::new(StatusCode::BAD_REQUEST, "Unusable file", e.to_string())
                .with_type(problem_type::VALIDATION)
        }
        // Part of the file is saved: say how much (the database's own message
        // only goes to the log).
        ImportError::Stopped {
            committed_rows,
            created,
            error,
        } => {
            tracing::error!(
                "frontdesk: import stopped after row {}: {error}",
                committed_rows + 1
            );
            let outage = matches!(&*error, ImportError::Core(c) if c.is_outage());
            let status = if outage {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::INTERNAL_SERVER_ERROR
            };
            WebError::new(
                status,
                "Import stopped",
                format!(
                    "The import stopped after row {}: {} {} created and saved in earlier \
                     batches, nothing after them. Applying the same file again creates the \
                     users that are missing.",
                    committed_rows + 1,
                    imports::plural(created, "user", "users"),
                    if created == 1 { "was" } else { "were" },
                ),
            )
        }
        e => WebError::internal(e),
    }
}

/// An uploaded file on disk. It is removed when dropped, unless kept (a dry
/// run, to be applied later without a new upload).
#[derive(Debug)]
pub struct Upload {
    pub key: String,
    pub path: PathBuf,
    /// The name the browser gave (for the list and the audit log).
    pub file_name: String,
    pub size: u64,
    keep: bool,
}

impl Upload {
    fn create(dir: &Path, file_name: &str) -> Result<(Upload, File), WebError> {
        std::fs::create_dir_all(dir).map_err(WebError::internal)?;
        sweep(dir);
        let key = new_key();
        let path = dir.join(format!("{key}.csv"));
        let file = File::create(&path).map_err(WebError::internal)?;
        let file_name = clean_name(file_name);
        Ok((
            Upload {
                key,
                path,
                file_name,
                size: 0,
                keep: false,
            },
            file,
        ))
    }

    /// A kept upload, by its key (from the `imports` row of a dry run).
    pub fn kept(dir: &Path, key: &str, file_name: &str) -> Option<Upload> {
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let path = dir.join(format!("{key}.csv"));
        let size = std::fs::metadata(&path).ok()?.len();
        Some(Upload {
            key: key.to_owned(),
            path,
            file_name: file_name.to_owned(),
            size,
            keep: false,
        })
    }

    pub fn keep(&mut self, yes: bool) {
        self.keep = yes;
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn new_key() -> String {
    let mut b = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A file name fit for a list: no path, no control characters, not too long.
fn clean_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("");
    let clean: String = base.chars().filter(|c| !c.is_control()).take(120).collect();
    if clean.trim().is_empty() {
        "upload.csv".into()
    } else {
        clean
    }
}

/// Removes kept uploads older than a day.
fn sweep(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > KEEP_UPLOADS);
        if old && e.file_name().to_string_lossy().ends_with(".csv") {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

fn too_large(max: u64) -> WebError {
    WebError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "Payload too large",
        format!("The file may be at most {max} bytes."),
    )
    .with_type(problem_type::PAYLOAD_TOO_LARGE)
}

/// Writes `stream` into `upload`'s file, at most `max` bytes in all.
async fn write_capped<S, E>(
    stream: &mut S,
    upload: &mut Upload,
    file: File,
    max: u64,
    bad: impl Fn(E) -> WebError,
) -> Result<(), WebError>
where
    S: futures_core::Stream<Item = Result<web::Bytes, E>> + Unpin,
{
    let mut out = BufWriter::new(file);
    while let Some(chunk) = next(stream).await {
        let chunk = chunk.map_err(&bad)?;
        upload.size += chunk.len() as u64;
        if upload.size > max {
            return Err(too_large(max));
        }
        out.write_all(&chunk).map_err(WebError::internal)?;
    }
    out.flush().map_err(WebError::internal)
}

/// The raw request body (the API's `text/csv` upload) into a file.
pub async fn spool_body(
    state: &FrontdeskState,
    mut payload: web::Payload,
    file_name: &str,
) -> Result<Upload, WebError> {
    let max = state.settings().import.max_bytes;
    let (mut upload, file) = Upload::create(&state.settings().import_dir, file_name)?;
    write_capped(&mut payload, &mut upload, file, max, |e| {
        WebError::bad_request(format!("reading the upload: {e}"))
    })
    .await?;
    Ok(upload)
}

/// A `multipart/form-data` form: its text fields and at most one file.
pub struct MultipartForm {
    pub fields: Vec<(String, String)>,
    pub upload: Option<Upload>,
}

/// The next item of a stream.
pub(crate) async fn next<S: futures_core::Stream + Unpin>(stream: &mut S) -> Option<S::Item> {
    std::future::poll_fn(|cx| std::pin::Pin::new(&mut *stream).poll_next(cx)).await
}

/// Whether the request says it is `multipart/form-data` with a boundary.
fn is_form_data(req: &HttpRequest) -> bool {
    use actix_web::{mime, HttpMessage};
    matches!(
        req.mime_type(),
        Ok(Some(m)) if m.type_() == mime::MULTIPART
            && m.subtype() == mime::FORM_DATA
            && m.get_param(mime::BOUNDARY).is_some_and(|b| !b.as_str().is_empty())
    )
}

/// Reads a multipart form as it arrives (parsed by `actix-multipart`); the
/// file part (`file_field`) goes to disk, at most `max_bytes` of it; text
/// fields are kept, at most 16 KiB each; other files are read past.
pub async fn read_multipart(
    req: &HttpRequest,
    state: &FrontdeskState,
    payload: web::Payload,
    file_field: &str,
) -> Result<MultipartForm, WebError> {
    if !is_form_data(req) {
        return Err(WebError::bad_request(
            "The form must be sent as multipart/form-data (with the file).",
        ));
    }
    let max = state.settings().import.max_bytes;
    let malformed =
        || WebError::bad_request("The upload form could not be read (bad multipart body).");
    let mut form = MultipartForm {
        fields: Vec::new(),
        upload: None,
    };
    let mut parts = actix_multipart::Multipart::new(req.headers(), payload);
    while let Some(part) = next(&mut parts).await {
        let mut part = part.map_err(|_| malformed())?;
        let (name, file_name) = match part.content_disposition() {
            Some(d) => (
                d.get_name().map(str::to_owned),
                d.get_filename().map(str::to_owned),
            ),
            None => (None, None),
        };
        let name = name.ok_or_else(malformed)?;
        match file_name {
            Some(f) if name == file_field => {
                if form.upload.is_some() {
                    return Err(WebError::bad_request("Upload one file at a time."));
                }
                let (upload, file) = Upload::create(&state.settings().import_dir, &f)?;
                let upload = form.upload.insert(upload);
                write_capped(&mut part, upload, file, max, |_| malformed()).await?;
            }
            Some(_) => {
                while let Some(chunk) = next(&mut part).await {
                    chunk.map_err(|_| malformed())?;
                }
            }
            None => {
                let mut value = Vec::new();
                while let Some(chunk) = next(&mut part).await {
                    let chunk = chunk.map_err(|_| malformed())?;
                    if value.len() + chunk.len() > MAX_FIELD {
                        return Err(WebError::bad_request("A form field is too long."));
                    }
                    value.extend_from_slice(&chunk);
                }
                let value = String::from_utf8(value).map_err(|_| {
                    WebError::bad_request(format!("The field {name} is not UTF-8."))
                })?;
                form.fields.push((name, value));
            }
        }
    }
    // An empty file input sends a part with an empty name and no bytes.
    if form
        .upload
        .as_ref()
        .is_some_and(|u| u.size == 0 && u.file_name == "upload.csv")
    {
        form.upload = None;
    }
    Ok(form)
}

/// Renders mail with the state's templates (the host's overrides included).
struct StateRenderer(FrontdeskState);

impl frontdesk_core::outbox::MailRenderer for StateRenderer {
    fn render(
        &self,
        mail: &str,
        context: &serde_json::Value,
    ) -> Result<frontdesk_core::outbox::RenderedMail, String> {
        frontdesk_core::outbox::MailRenderer::render(self.0.mail_templates(), mail, context)
    }
}

/// The core's options for a run with these choices.
pub fn import_options(
    state: &FrontdeskState,
    mode: ImportMode,
    choices: &JobOptions,
    source_name: &str,
) -> ImportOptions {
    let welcome_mail = choices.invite.then(|| WelcomeMail {
        site_name: state.settings().site_name.clone(),
        set_password_url: state.absolute_url(&format!("{}/password-reset", state.prefix())),
        invitations: Some(ImportInvitations {
            settings: state.invitation_settings().clone(),
            renderer: Arc::new(StateRenderer(state.clone())),
        }),
    });
    ImportOptions {
        mode,
        default_organization: choices.default_organization.clone(),
        welcome_mail,
        source_name: source_name.to_owned(),
        // A dry run previews the rows that would be created too.
        list_created: if mode == ImportMode::DryRun { 1_000 } else { 0 },
        update_existing: choices.update_existing,
        ignore_unknown_columns: choices.ignore_unknown_columns,
        import_id: None,
    }
}

/// What became of a started import.
pub enum Started {
    /// A small file: imported during the request.
    Finished(Box<ImportJob>, Box<ImportReport>),
    /// A large file: queued and running in the background.
    Queued(Box<ImportJob>),
}

/// Checks the actor and the file, then imports it now or in the background.
/// A dry run keeps its file so that it can be applied later.
pub async fn start(
    state: &FrontdeskState,
    actor: Actor,
    mut upload: Upload,
    mode: ImportMode,
    choices: JobOptions,
) -> Result<Started, WebError> {
    let st = state.clone();
    let result = state
        .db(move |conn| -> Result<Started, WebError> {
            let config = &st.settings().import;
            let org =
                import_jobs::check_start(conn, &actor, choices.default_organization.as_deref())
                    .map_err(import_error)?;
            let file = File::open(&upload.path).map_err(WebError::internal)?;
            let total = imports::check_file(
                config,
                &actor,
                choices.ignore_unknown_columns,
                std::io::BufReader::new(file),
            )
            .map_err(import_error)?;
            let dry = mode == ImportMode::DryRun;
            let new = NewJob {
                organization_id: import_jobs::scope_of(&actor, org.as_ref()),
                actor: actor.clone(),
                file_name: upload.file_name.clone(),
                mode,
                options: choices.clone(),
                upload_key: dry.then(|| upload.key.clone()),
            };
            let mut options = import_options(&st, mode, &choices, &upload.file_name);
            if total > config.background_threshold_rows {
                let job = import_jobs::queue(conn, &new, total)?;
                options.import_id = Some(job.id);
                upload.keep(dry);
                spawn(&st, job.id, actor, options, upload);
                return Ok(Started::Queued(Box::new(job)));
            }
            let file = File::open(&upload.path).map_err(WebError::internal)?;
            // Filed first, so that the users it creates name it in their audit events.
            let job = import_jobs::begin(conn, &new, total)?;
            options.import_id = Some(job.id);
            let result = imports::import(
                conn,
                &actor,
                config,
                &options,
                std::io::BufReader::new(file),
                &mut |_| {},
            );
            // The import's connection may be what failed: the outcome then
            // goes through another one, and the caller hears the import's error.
            if let Err(e) = import_jobs::finish(conn, job.id, result.as_ref()) {
                if !e.is_outage() {
                    return Err(e.into());
                }
                if let Err(e) = frontdesk_core::db::retry_on_outage(st.pool(), |c| {
                    import_jobs::finish(c, job.id, result.as_ref())
                }) {
                    tracing::warn!("frontdesk: import {}: outcome not saved: {e}", job.id);
                }
            }
            let report = result.map_err(import_error)?;
            let job =
                frontdesk_core::db::retry_on_outage(st.pool(), |c| import_jobs::get(c, job.id))?;
            upload.keep(dry);
            Ok(Started::Finished(Box::new(job), Box::new(report)))
        })
        .await?;
    if matches!(&result, Started::Finished(_, r) if r.welcome_mails_queued > 0) {
        state.wake_mailer();
    }
    Ok(result)
}

/// Runs a queued import on a thread of its own (it may take minutes), with a
/// connection from the pool; progress goes to its row after every batch.
fn spawn(state: &FrontdeskState, id: i64, actor: Actor, options: ImportOptions, upload: Upload) {
    let st = state.clone();
    let run = move || {
        let pool = st.pool().clone();
        let config = st.settings().import.clone();
        // Waits, queued, while `max_running` imports run; the heartbeat goes
        // goes on meanwhile, every third of the timeout.
        let every = (config.heartbeat_timeout / 3).max(std::time::Duration::from_millis(10));
        let slot = st
            .import_slots()
            .acquire(config.max_running, every, &mut || {
                match pool
                    .get()
                    .map(|mut c| import_jobs::still_queued(&mut c, id))
                {
                    Ok(Ok(queued)) => queued,
                    // The database is away for now: keep waiting.
                    _ => true,
                }
            });
        let Some(_slot) = slot else {
            tracing::warn!("frontdesk: background import {id} was marked failed while it waited");
            return;
        };
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            import_jobs::run_file(
                &pool,
                id,
                &actor,
                &config,
                &options,
                &upload.path,
                &mut |_| {},
            )
        }));
        match outcome {
            Ok(Ok(report)) => {
                if report.welcome_mails_queued > 0 {
                    st.wake_mailer();
                }
            }
            Ok(Err(e)) => tracing::warn!("frontdesk: background import {id} failed: {e}"),
            Err(_) => {
                tracing::error!("frontdesk: background import {id} panicked");
                let e = ImportError::Io(std::io::Error::other("the import stopped unexpectedly"));
                if let Ok(mut c) = pool.get() {
                    let _ = import_jobs::finish(&mut c, id, Err(&e));
                }
            }
        }
        drop(upload);
    };
    if let Err(e) = std::thread::Builder::new()
        .name(format!("frontdesk-import-{id}"))
        // In the span of the request that filed it, and one of its own.
        .spawn(crate::request_id::carried(move || {
            let _import = tracing::info_span!("import", import_id = id).entered();
            run()
        }))
    {
        tracing::error!("frontdesk: background import {id} could not start: {e}");
        let e = ImportError::Io(e);
        if let Ok(mut c) = state.pool().get() {
            let _ = import_jobs::finish(&mut c, id, Err(&e));
        }
    }
}

/// Applies a kept dry run: the same file and choices, in `mode`.
pub async fn apply_kept(
    state: &FrontdeskState,
    actor: Actor,
    id: i64,
    mode: ImportMode,
) -> Result<Started, WebError> {
    if mode == ImportMode::DryRun {
        return Err(WebError::bad_request("Choose apply or strict."));
    }
    let st = state.clone();
    let a = actor.clone();
    let (upload, choices) = state
        .db(move |conn| -> Result<(Upload, JobOptions), WebError> {
            let job = import_jobs::get_for(conn, &a, id)?;
            if !job.may_apply_again() {
                return Err(WebError::new(
                    StatusCode::CONFLICT,
                    "Conflict",
                    "This import cannot be applied again: only a finished dry run whose \
                     file is still kept can be. Upload the file again.",
                ));
            }
            let Some(key) = import_jobs::take_upload(conn, &job)? else {
                return Err(WebError::new(
                    StatusCode::CONFLICT,
                    "Conflict",
                    "This dry run is being applied already.",
                ));
            };
            let dir = &st.settings().import_dir;
            let upload = Upload::kept(dir, &key, &job.file_name).ok_or_else(|| {
                WebError::new(
                    StatusCode::CONFLICT,
                    "Conflict",
                    "The uploaded file is no longer kept here (it is removed after a day, \
                     or lives on another server). Upload it again.",
                )
            })?;
            Ok((upload, job.options()))
        })
        .await?;
    start(state, actor, upload, mode, choices).await
}
