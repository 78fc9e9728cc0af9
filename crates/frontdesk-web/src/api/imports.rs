//! `/import`: upload a CSV of users (dry run, apply the valid rows, or strict
//! all-or-nothing) and get the per-row report; `/import/template` is the header.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use frontdesk_core::import_jobs::{self, ImportJob, JobOptions};
use frontdesk_core::imports::{self, ImportError, ImportMode};
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

use super::auth::ApiActor;
use super::params::{Pagination, Params};
use super::problem::{ApiError, ApiResult};
use super::utc;
use crate::error::WebError;
use crate::import_runs::{self, Started};
use crate::state::FrontdeskState;

impl From<ImportError> for ApiError {
    fn from(e: ImportError) -> Self {
        ApiError::from(import_runs::import_error(e))
    }
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ModeParam {
    DryRun,
    Apply,
    Strict,
}

#[allow(dead_code)]
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImportParams {
    /// `dry_run`: report only; `apply` (default): write the valid rows;
    /// `strict`: write nothing unless every row is valid.
    #[param(inline)]
    mode: Option<ModeParam>,
    /// Organization slug for rows whose `organization` cell is empty.
    #[param(max_length = 100, pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")]
    default_organization: Option<String>,
    /// Update the names and profile fields of users that already exist.
    update_existing: Option<bool>,
    /// Invite the created users: an invitation to their organization
    /// (accepting it sets their password), or a welcome mail pointing at the
    /// password-reset page for users without one; queued in the outbox.
    invite: Option<bool>,
    /// Leave out columns the import does not know instead of refusing the
    /// file; the report's `warnings` name them.
    ignore_unknown_columns: Option<bool>,
}

/// `POST /import`: the body is the CSV file (UTF-8, a header row first).
/// A file over the configured row count runs in the background: the answer
/// is then 202 with the import's id; `GET /imports/{id}` tells how far it is.
#[utoipa::path(
    post,
    path = "/import",
    operation_id = "import_users",
    tag = "import and export",
    params(ImportParams),
    request_body(
        description = "The CSV file, as `text/csv` or as bytes",
        content(
            (String = "text/csv"),
            (Vec<u8> = "application/octet-stream"),
        ),
    ),
    responses(
        (status = 200, description = "The import report: counts and each rejected or skipped row by number, and `import_id`", body = ImportReportOut),
        (status = 202, description = "A large file: queued to run in the background", body = ImportOut),
    )
)]
pub async fn import(
    req: HttpRequest,
    state: web::Data<FrontdeskState>,
    api: ApiActor,
    payload: web::Payload,
) -> ApiResult {
    let mut p = Params::parse(
        req.query_string(),
        &[
            "mode",
            "default_organization",
            "update_existing",
            "invite",
            "ignore_unknown_columns",
        ],
    );
    let mode = p
        .choice(
            "mode",
            |v| match v {
                "dry_run" => Some(ImportMode::DryRun),
                "apply" => Some(ImportMode::Apply),
                "strict" => Some(ImportMode::Strict),
                _ => None,
            },
            &["dry_run", "apply", "strict"],
        )
        .unwrap_or_default();
    let choices = JobOptions {
        default_organization: p.text("default_organization", 100),
        update_existing: p.boolean("update_existing").unwrap_or(false),
        invite: p.boolean("invite").unwrap_or(false),
        ignore_unknown_columns: p.boolean("ignore_unknown_columns").unwrap_or(false),
    };
    p.finish()?;
    let upload = import_runs::spool_body(&state, payload, "api upload").await?;
    match import_runs::start(&state, api.actor, upload, mode, choices).await? {
        Started::Finished(job, report) => {
            let mut body = serde_json::to_value(&*report).map_err(WebError::internal)?;
            body["import_id"] = serde_json::json!(job.id);
            Ok(HttpResponse::Ok().json(body))
        }
        Started::Queued(job) => Ok(HttpResponse::Accepted()
            .insert_header((
                actix_web::http::header::LOCATION,
                format!("{}/imports/{}", prefix(&req), job.id),
            ))
            .json(ImportOut::from(&*job))),
    }
}

fn prefix(req: &HttpRequest) -> String {
    req.app_data::<web::Data<super::ApiPrefix>>()
        .map(|p| p.0.clone())
        .unwrap_or_default()
}

/// An import as the API shows it; `report` once it is done.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportOut {
    pub id: i64,
    /// `user:{id}` or `api_key:{id}`: who started it.
    pub actor: String,
    pub organization_id: Option<i64>,
    pub file_name: String,
    #[schema(inline)]
    pub mode: ModeParam,
    /// `queued`, `running`, `done` or `failed`.
    #[schema(example = "running")]
    pub status: String,
    /// Run in the background (the file was over the row threshold).
    pub background: bool,
    /// A strict import checking its rows before writing any.
    pub checking: bool,
    pub total_rows: i64,
    pub rows_done: i64,
    pub created: i64,
    pub updated: i64,
    pub skipped: i64,
    pub rejected: i64,
    pub applied: bool,
    /// Why it failed (e.g. "interrupted after 3000 rows: …").
    pub error: Option<String>,
    /// The report, as `POST /import` returns it, once done.
    #[schema(value_type = Option<ImportReportOut>)]
    pub report: Option<serde_json::Value>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl From<&ImportJob> for ImportOut {
    fn from(j: &ImportJob) -> Self {
        ImportOut {
            id: j.id,
            actor: j.actor.clone(),
            organization_id: j.organization_id,
            file_name: j.file_name.clone(),
            mode: match j.mode() {
                ImportMode::DryRun => ModeParam::DryRun,
                ImportMode::Apply => ModeParam::Apply,
                ImportMode::Strict => ModeParam::Strict,
            },
            status: j.status.clone(),
            background: j.background,
            checking: j.checking,
            total_rows: j.total_rows,
            rows_done: j.rows_done,
            created: j.created,
            updated: j.updated,
            skipped: j.skipped,
            rejected: j.rejected,
            applied: j.applied,
            error: j.error.clone(),
            report: j.report_json(),
            created_at: utc(j.created_at),
            finished_at: j.finished_at.map(utc),
        }
    }
}

/// What became of one row (the core's `Outcome`). Only describes the report
/// in the OpenAPI document; the report itself is the core's JSON.
#[allow(dead_code)]
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RowOutcome {
    Created,
    Updated,
    Skipped,
    Rejected,
}

/// One line of the import report.
#[allow(dead_code)]
#[derive(ToSchema)]
pub struct RowResultOut {
    /// The row's number in the file (the header is row 1).
    row: u64,
    email: String,
    outcome: RowOutcome,
    /// Stable machine-readable reason (`invalid_email`, `duplicate_in_file`, …).
    code: String,
    reason: String,
}

/// The import report (the core's `ImportReport`, documented here). In a dry
/// run, or a strict import that failed, `created` counts the rows that would
/// be created and `applied` is false.
#[allow(dead_code)]
#[derive(ToSchema)]
pub struct ImportReportOut {
    /// The import's id (`GET /imports/{id}`), in `POST /import`'s answer.
    import_id: Option<i64>,
    #[schema(inline)]
    mode: ModeParam,
    applied: bool,
    /// Data rows in the file (the header not counted).
    total_rows: u64,
    /// Data rows processed so far (equal to `total_rows` when finished).
    rows_done: u64,
    created: u64,
    updated: u64,
    skipped: u64,
    rejected: u64,
    /// Tags that were (or would be) created for the import.
    tags_created: Vec<String>,
    welcome_mails_queued: u64,
    /// Skipped and rejected rows in row order (then created rows, if asked).
    rows: Vec<RowResultOut>,
    /// Skipped or rejected rows beyond the listed ones, counted but not listed.
    rows_not_listed: u64,
    /// Columns the import left out without refusing the file.
    warnings: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ImportList {
    /// Newest first, without their reports (open one for it).
    pub imports: Vec<ImportOut>,
    pub pagination: Pagination,
}

#[allow(dead_code)]
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImportListParams {
    #[param(minimum = 1, maximum = 1000000, default = 1)]
    page: Option<i64>,
    #[param(minimum = 1, maximum = 100, default = 50)]
    limit: Option<i64>,
}

/// `GET /imports`: the imports the caller may see (their organizations'
/// and their own; staff see all), newest first.
#[utoipa::path(
    get,
    path = "/imports",
    operation_id = "imports_list",
    tag = "import and export",
    params(ImportListParams),
    responses((status = 200, description = "A page of imports", body = ImportList))
)]
pub async fn list(req: HttpRequest, state: web::Data<FrontdeskState>, api: ApiActor) -> ApiResult {
    let mut p = Params::parse(req.query_string(), &["page", "limit"]);
    let paging = p.paging();
    p.finish()?;
    let stale = state.settings().import.heartbeat_timeout;
    let (rows, total) = state
        .db(move |conn| {
            import_jobs::mark_interrupted(conn, Some(stale))?;
            import_jobs::list(conn, &api.actor, paging.page, paging.limit)
        })
        .await?;
    Ok(HttpResponse::Ok().json(ImportList {
        imports: rows
            .iter()
            .map(|j| ImportOut {
                report: None,
                ..ImportOut::from(j)
            })
            .collect(),
        pagination: paging.out(total),
    }))
}

/// `GET /imports/{id}`: status and progress, then the report.
#[utoipa::path(
    get,
    path = "/imports/{id}",
    operation_id = "imports_get",
    tag = "import and export",
    params(("id" = i64, Path, description = "Import id")),
    responses((status = 200, description = "The import, with its report once done", body = ImportOut))
)]
pub async fn get(state: web::Data<FrontdeskState>, api: ApiActor, id: web::Path<i64>) -> ApiResult {
    let id = id.into_inner();
    let stale = state.settings().import.heartbeat_timeout;
    let job = state
        .db(move |conn| {
            import_jobs::mark_interrupted(conn, Some(stale))?;
            import_jobs::get_for(conn, &api.actor, id)
        })
        .await?;
    Ok(HttpResponse::Ok().json(ImportOut::from(&job)))
}

/// `GET /import/template`: the CSV header the import takes (the staff role
/// column only for callers who may grant it).
#[utoipa::path(
    get,
    path = "/import/template",
    operation_id = "import_template",
    tag = "import and export",
    responses((status = 200, description = "A CSV header row", content_type = "text/csv", body = String))
)]
pub async fn template(state: web::Data<FrontdeskState>, api: ApiActor) -> ApiResult {
    let csv = imports::template_csv(&state.settings().import, &api.actor);
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            actix_web::http::header::CONTENT_DISPOSITION,
            "attachment; filename=\"users-template.csv\"",
        ))
        .body(csv))
}
