//! CSV import pages: the template, the upload form (dry run, apply or strict;
//! update existing users; a default organization; invite the created users),
//! the list of imports with their status, and one import's progress (the
//! page refreshes itself while it runs, no script needed), then its report
//! with a CSV download. A dry run can be applied without a new upload.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use frontdesk_core::authz::{can, Action, Target};
use frontdesk_core::import_jobs::{self, ImportJob, JobOptions, JobStatus};
use frontdesk_core::imports::{self, ImportMode};
use frontdesk_core::{organizations, CoreError};
use serde::Serialize;
use tera::Context;

use super::{redirect, render, show_opt, show_time, verify, Admin, Params, State};
use crate::csrf;
use crate::error::WebError;
use crate::import_runs::{self, Started};

const PER_PAGE: i64 = 50;

/// Rows of a report shown on the page; the CSV download has them all.
const SHOWN_ROWS: usize = 500;

#[derive(Serialize)]
struct Row {
    id: i64,
    file_name: String,
    mode: String,
    status: String,
    background: bool,
    total_rows: i64,
    rows_done: i64,
    created: i64,
    updated: i64,
    skipped: i64,
    rejected: i64,
    applied: bool,
    error: String,
    created_at: String,
    finished_at: String,
    percent: i64,
}

fn mode_label(m: ImportMode) -> &'static str {
    match m {
        ImportMode::DryRun => "dry run",
        ImportMode::Apply => "apply",
        ImportMode::Strict => "strict",
    }
}

fn row(j: &ImportJob) -> Row {
    Row {
        id: j.id,
        file_name: j.file_name.clone(),
        mode: mode_label(j.mode()).into(),
        status: j.status.clone(),
        background: j.background,
        total_rows: j.total_rows,
        rows_done: j.rows_done,
        created: j.created,
        updated: j.updated,
        skipped: j.skipped,
        rejected: j.rejected,
        applied: j.applied,
        error: j.error.clone().unwrap_or_default(),
        created_at: show_time(j.created_at),
        finished_at: show_opt(j.finished_at),
        percent: if j.total_rows > 0 {
            (j.rows_done * 100 / j.total_rows).clamp(0, 100)
        } else {
            0
        },
    }
}

fn base(state: &State) -> String {
    format!("{}/imports", state.settings().admin_prefix)
}

/// Whether the actor may import anywhere (the form is shown only then).
fn may_import(admin: &Admin) -> bool {
    let a = &admin.actor;
    can(a, Action::ImportExport, &Target::Site)
        || a.org_roles
            .iter()
            .any(|(o, _)| can(a, Action::ImportExport, &Target::Organization(*o)))
}

/// `GET /imports`: the upload form and the imports this admin may see.
pub async fn list(req: HttpRequest, state: State, admin: Admin) -> Result<HttpResponse, WebError> {
    let p = Params::query(&req);
    let page = p.page()?;
    let actor = admin.actor.clone();
    let stale = state.settings().import.heartbeat_timeout;
    let (jobs, total, orgs) = state
        .db(move |conn| {
            import_jobs::mark_interrupted(conn, Some(stale))?;
            let (jobs, total) = import_jobs::list(conn, &actor, page, PER_PAGE)?;
            let orgs = organizations::list(conn, &actor)?;
            Ok::<_, CoreError>((jobs, total, orgs))
        })
        .await?;
    let actor = &admin.actor;
    let importable: Vec<(String, String)> = orgs
        .iter()
        .filter(|o| can(actor, Action::ImportExport, &Target::Organization(o.id)))
        .map(|o| (o.slug.clone(), o.name.clone()))
        .collect();
    let pages = ((total + PER_PAGE - 1) / PER_PAGE).max(1);
    let link = |n: i64| format!("{}?page={n}", base(&state));
    let mut ctx = Context::new();
    ctx.insert("rows", &jobs.iter().map(row).collect::<Vec<_>>());
    ctx.insert("total", &total);
    ctx.insert("page", &page);
    ctx.insert("pages", &pages);
    ctx.insert("prev_link", &(page > 1).then(|| link(page - 1)));
    ctx.insert("next_link", &(page < pages).then(|| link(page + 1)));
    ctx.insert("may_import", &may_import(&admin));
    ctx.insert("organizations", &importable);
    // Staff may leave the organization empty; org admins must choose one
    // unless every row names its own.
    ctx.insert("org_optional", &admin.is_staff());
    let config = &state.settings().import;
    ctx.insert(
        "columns",
        &imports::template_columns(config, &admin.actor).join(", "),
    );
    ctx.insert("max_mb", &(config.max_bytes / (1024 * 1024)).max(1));
    ctx.insert("max_rows", &config.max_rows);
    ctx.insert("background_rows", &config.background_threshold_rows);
    render(&req, &state, &admin, "admin/imports.html", "imports", ctx)
}

/// `GET /imports/template.csv`: the header the import takes.
pub async fn template(state: State, admin: Admin) -> Result<HttpResponse, WebError> {
    let csv = imports::template_csv(&state.settings().import, &admin.actor);
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            header::CONTENT_DISPOSITION,
            "attachment; filename=\"users-template.csv\"",
        ))
        .body(csv))
}

fn parse_mode(s: Option<&str>) -> Result<ImportMode, WebError> {
    match s {
        None | Some("dry_run") => Ok(ImportMode::DryRun),
        Some("apply") => Ok(ImportMode::Apply),
        Some("strict") => Ok(ImportMode::Strict),
        Some(_) => Err(WebError::bad_request(
            "mode must be dry_run, apply or strict",
        )),
    }
}

/// The outcome of a started import: its page, with a line about it.
fn after_start(state: &State, started: Started) -> HttpResponse {
    match started {
        Started::Finished(job, report) => redirect(
            state,
            &format!("{}/{}", base(state), job.id),
            "ok",
            &report.summary(),
        ),
        Started::Queued(job) => redirect(
            state,
            &format!("{}/{}", base(state), job.id),
            "ok",
            &format!(
                "{}: the import runs in the background. You may leave this page and come back.",
                frontdesk_core::imports::rows(job.total_rows.max(0) as u64)
            ),
        ),
    }
}

/// A refused upload goes back to the form with the reason; access errors stay errors.
fn refused(state: &State, to: &str, e: WebError) -> Result<HttpResponse, WebError> {
    if matches!(
        e.status,
        StatusCode::BAD_REQUEST | StatusCode::CONFLICT | StatusCode::PAYLOAD_TOO_LARGE
    ) {
        Ok(redirect(state, to, "error", &e.detail))
    } else {
        Err(e)
    }
}

/// `POST /imports` (multipart): the file and the choices.
pub async fn upload(
    req: HttpRequest,
    state: State,
    admin: Admin,
    payload: web::Payload,
) -> Result<HttpResponse, WebError> {
    // Cross-site posts are refused before the body is read; the token is
    // inside the body, so it is checked once the form is parsed.
    csrf::check_origin(&req, &state)?;
    let form = import_runs::read_multipart(&req, &state, payload, "file").await;
    let to = base(&state);
    let form = match form {
        Ok(f) => f,
        Err(e) => return refused(&state, &to, e),
    };
    let fields = Params(form.fields);
    verify(&req, &state, &fields)?;
    let Some(upload) = form.upload else {
        return Ok(redirect(
            &state,
            &to,
            "error",
            "Choose a CSV file to upload.",
        ));
    };
    let mode = match parse_mode(fields.get("mode")) {
        Ok(m) => m,
        Err(e) => return refused(&state, &to, e),
    };
    let choices = JobOptions {
        default_organization: fields.get("organization").map(str::to_owned),
        update_existing: fields.get("update_existing").is_some(),
        invite: fields.get("invite").is_some(),
        ignore_unknown_columns: fields.get("ignore_unknown_columns").is_some(),
    };
    match import_runs::start(&state, admin.actor.clone(), upload, mode, choices).await {
        Ok(started) => Ok(after_start(&state, started)),
        Err(e) => refused(&state, &to, e),
    }
}

/// `POST /imports/{id}/apply`: applies a dry run's kept file.
pub async fn apply(
    req: HttpRequest,
    state: State,
    admin: Admin,
    path: web::Path<i64>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let id = path.into_inner();
    let form = Params::form(&body)?;
    verify(&req, &state, &form)?;
    let to = format!("{}/{id}", base(&state));
    let mode = match form.get("mode") {
        Some("strict") => ImportMode::Strict,
        Some("apply") | None => ImportMode::Apply,
        Some(_) => {
            return Ok(redirect(
                &state,
                &to,
                "error",
                "mode must be apply or strict",
            ))
        }
    };
    match import_runs::apply_kept(&state, admin.actor.clone(), id, mode).await {
        Ok(started) => Ok(after_start(&state, started)),
        Err(e) => refused(&state, &to, e),
    }
}

#[derive(Serialize)]
struct ReportRow {
    row: u64,
    email: String,
    outcome: String,
    code: String,
    reason: String,
}

/// `GET /imports/{id}`: progress while it runs, then the report.
pub async fn page(
    req: HttpRequest,
    state: State,
    admin: Admin,
    path: web::Path<i64>,
) -> Result<HttpResponse, WebError> {
    let id = path.into_inner();
    let actor = admin.actor.clone();
    let stale = state.settings().import.heartbeat_timeout;
    let (job, org) = state
        .db(move |conn| {
            import_jobs::mark_interrupted(conn, Some(stale))?;
            let job = import_jobs::get_for(conn, &actor, id)?;
            let org = match job.organization_id {
                Some(o) => organizations::get(conn, o).ok().map(|o| o.name),
                None => None,
            };
            Ok::<_, CoreError>((job, org))
        })
        .await?;
    let report = job.report();
    let options = job.options();
    let mut ctx = Context::new();
    ctx.insert("job", &row(&job));
    ctx.insert("running", &!job.is_finished());
    ctx.insert("queued", &(job.status() == JobStatus::Queued));
    ctx.insert("checking", &job.checking);
    ctx.insert("organization", &org);
    ctx.insert("default_organization", &options.default_organization);
    ctx.insert("update_existing", &options.update_existing);
    ctx.insert("invite", &options.invite);
    ctx.insert("ignore_unknown_columns", &options.ignore_unknown_columns);
    ctx.insert("may_apply", &(job.may_apply_again() && may_import(&admin)));
    if let Some(r) = &report {
        let problems: Vec<ReportRow> = r
            .rows
            .iter()
            .filter(|x| x.outcome != "created")
            .take(SHOWN_ROWS)
            .map(|x| ReportRow {
                row: x.row,
                email: x.email.clone(),
                outcome: x.outcome.clone(),
                code: x.code.clone(),
                reason: x.reason.clone(),
            })
            .collect();
        let listed = r.rows.iter().filter(|x| x.outcome != "created").count();
        let created: Vec<ReportRow> = r
            .rows
            .iter()
            .filter(|x| x.outcome == "created")
            .take(SHOWN_ROWS)
            .map(|x| ReportRow {
                row: x.row,
                email: x.email.clone(),
                outcome: x.outcome.clone(),
                code: x.code.clone(),
                reason: String::new(),
            })
            .collect();
        ctx.insert("problems", &problems);
        ctx.insert(
            "more_problems",
            &(listed.saturating_sub(SHOWN_ROWS) as u64 + r.rows_not_listed),
        );
        ctx.insert("preview", &created);
        ctx.insert("tags_created", &r.tags_created);
        ctx.insert("mails", &r.welcome_mails_queued);
        ctx.insert("warnings", &r.warnings);
        ctx.insert("has_report", &true);
    } else {
        ctx.insert("has_report", &false);
    }
    let running = !job.is_finished();
    let mut res = render(&req, &state, &admin, "admin/import.html", "imports", ctx)?;
    if running {
        // Browsers reload the page by themselves while the import runs.
        res.headers_mut().insert(
            header::HeaderName::from_static("refresh"),
            header::HeaderValue::from_static("2"),
        );
    }
    Ok(res)
}

/// `GET /imports/{id}/report.csv`: every listed row of the report.
pub async fn report_csv(
    state: State,
    admin: Admin,
    path: web::Path<i64>,
) -> Result<HttpResponse, WebError> {
    let id = path.into_inner();
    let actor = admin.actor.clone();
    let job = state
        .db(move |conn| import_jobs::get_for(conn, &actor, id))
        .await?;
    let Some(report) = job.report() else {
        return Err(WebError::new(
            StatusCode::CONFLICT,
            "Conflict",
            "This import has no report (it is still running, or it failed).",
        ));
    };
    let mut out = Vec::new();
    report.write_csv(&mut out).map_err(WebError::internal)?;
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"import-{id}-report.csv\""),
        ))
        .body(out))
}
