//! `/import`: upload a CSV of users (dry run, apply the valid rows, or strict
//! all-or-nothing) and get the per-row report; `/import/template` is the header.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use frontdesk_core::imports::{self, ImportConfig, ImportError, ImportMode, ImportOptions};
use futures_core::Stream;
use utoipa::IntoParams;

use super::auth::ApiActor;
use super::params::Params;
use super::problem::{ApiError, ApiResult};
use crate::error::{problem_type, WebError};
use crate::state::FrontdeskState;

/// Largest file the API takes in one request.
pub const MAX_UPLOAD: usize = 32 * 1024 * 1024;

impl From<ImportError> for ApiError {
    fn from(e: ImportError) -> Self {
        match e {
            ImportError::Forbidden => {
                ApiError::from(WebError::forbidden("You may not import users here."))
            }
            ImportError::UnknownOrganization(_) => ApiError::from(WebError::not_found()),
            ImportError::Core(c) => ApiError::from(c),
            e if e.is_client_error() => ApiError::from(
                WebError::new(StatusCode::BAD_REQUEST, "Unusable file", e.to_string())
                    .with_type(problem_type::VALIDATION),
            ),
            e => ApiError::from(WebError::internal(e)),
        }
    }
}

#[derive(Debug, Clone, Copy, serde::Serialize, utoipa::ToSchema)]
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
}

async fn read_body(mut payload: web::Payload) -> ApiResult<Vec<u8>> {
    use std::future::poll_fn;
    use std::pin::Pin;
    let mut body = Vec::new();
    while let Some(chunk) = poll_fn(|cx| Pin::new(&mut payload).poll_next(cx)).await {
        let chunk = chunk.map_err(|e| WebError::bad_request(format!("reading the upload: {e}")))?;
        if body.len() + chunk.len() > MAX_UPLOAD {
            return Err(WebError::new(
                StatusCode::BAD_REQUEST,
                "Payload too large",
                format!("The file may be at most {MAX_UPLOAD} bytes."),
            )
            .with_type(problem_type::PAYLOAD_TOO_LARGE)
            .into());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// `POST /import`: the body is the CSV file (UTF-8, a header row first).
#[utoipa::path(
    post,
    path = "/import",
    operation_id = "import_users",
    tag = "import and export",
    params(ImportParams),
    request_body(content = String, content_type = "text/csv", description = "The CSV file"),
    responses((status = 200, description = "The import report: counts and each rejected or skipped row by number", body = serde_json::Value))
)]
pub async fn import(
    req: HttpRequest,
    state: web::Data<FrontdeskState>,
    api: ApiActor,
    payload: web::Payload,
) -> ApiResult {
    let mut p = Params::parse(
        req.query_string(),
        &["mode", "default_organization", "update_existing"],
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
    let default_organization = p.text("default_organization", 100);
    let update_existing = p.boolean("update_existing").unwrap_or(false);
    p.finish()?;
    let body = read_body(payload).await?;
    let report = state
        .db(move |conn| -> Result<imports::ImportReport, WebError> {
            let options = ImportOptions {
                mode,
                default_organization,
                source_name: "api upload".into(),
                update_existing,
                ..ImportOptions::default()
            };
            imports::import_bytes(
                conn,
                &api.actor,
                &ImportConfig::default(),
                &options,
                &body,
                &mut |_| {},
            )
            .map_err(|e| ApiError::from(e).0)
        })
        .await?;
    Ok(HttpResponse::Ok().json(report))
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
pub async fn template(api: ApiActor) -> ApiResult {
    let csv = imports::template_csv(&ImportConfig::default(), &api.actor);
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            actix_web::http::header::CONTENT_DISPOSITION,
            "attachment; filename=\"users-template.csv\"",
        ))
        .body(csv))
}
