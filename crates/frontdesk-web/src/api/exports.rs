//! `/export`: the users the caller may export, filtered like the users list,
//! streamed as CSV (formula-safe cells) while the query walks in batches.

use std::io::Write;
use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{web, HttpRequest, HttpResponse};
use frontdesk_core::exports::{self, ExportError, ExportField, ExportRequest};
use frontdesk_core::{Actor, CoreError};
use tokio::sync::mpsc;
use utoipa::IntoParams;

use super::auth::ApiActor;
use super::problem::{ApiError, ApiResult};
use crate::error::WebError;
use crate::state::FrontdeskState;

impl From<ExportError> for ApiError {
    fn from(e: ExportError) -> Self {
        match e {
            ExportError::Forbidden => {
                ApiError::from(WebError::forbidden("You may not export these users."))
            }
            ExportError::Core(c) => ApiError::from(c),
            ExportError::Io(io) => ApiError::from(WebError::internal(io)),
        }
    }
}

/// Sends what the export writes to the response, 64 KiB at a time.
struct ChannelWriter {
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::take(&mut self.buf));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= 64 * 1024 {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

struct Chunks(mpsc::Receiver<Result<Bytes, std::io::Error>>);

impl futures_core::Stream for Chunks {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_recv(cx)
    }
}

#[allow(dead_code)]
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportParams {
    /// Columns, comma-separated (default: the columns the import takes).
    #[param(style = Form, explode = false, max_items = 50, inline)]
    fields: Option<Vec<FieldParam>>,
}

const FIELD_NAMES: &[&str] = &[
    "id",
    "email",
    "first_name",
    "last_name",
    "display_name",
    "organization",
    "role",
    "tags",
    "staff_role",
    "status",
    "email_verified",
    "local_login_enabled",
    "suspended_reason",
    "created_at",
    "last_login_at",
    "mfa_enabled",
    "licences",
    "groups",
];

/// The columns an export may have. Only describes the `fields` parameter in
/// the OpenAPI document; the export reads the names as text.
#[allow(dead_code)]
#[derive(Debug, Clone, Copy, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FieldParam {
    Id,
    Email,
    FirstName,
    LastName,
    DisplayName,
    Organization,
    Role,
    Tags,
    StaffRole,
    Status,
    EmailVerified,
    LocalLoginEnabled,
    SuspendedReason,
    CreatedAt,
    LastLoginAt,
    MfaEnabled,
    /// The licence keys the user holds (directly or through a group), `|`-separated.
    Licences,
    /// The names of the user's groups, `|`-separated.
    Groups,
}

/// `GET /export`: a CSV attachment of the matching users. Takes the users
/// list's filters (`search`, `status`, `staff`, `organization`, `org_role`,
/// `tags_*`, `created_*`, `last_login*`, `mfa`, `service_id`,
/// `active_days`, `inactive_days`, `sort`, `dir`; paging is ignored). An
/// unknown `service_id` is a 400 naming it, before the first byte.
#[utoipa::path(
    get,
    path = "/export",
    operation_id = "export_users",
    tag = "import and export",
    params(ExportParams, super::users::UserListParams),
    responses((status = 200, description = "The CSV, streamed", content_type = "text/csv", body = String))
)]
pub async fn export(
    req: HttpRequest,
    state: web::Data<FrontdeskState>,
    api: ApiActor,
) -> ApiResult {
    let (requested, extras) = super::users::parse_query(
        req.query_string(),
        &["fields", "service_id"],
        state.settings(),
    )?;
    let mut extras = extras.into_iter();
    let (fields_asked, service) = (extras.next().flatten(), extras.next().flatten());
    let profile = state.settings().import.profile_fields.clone();
    let fields = match fields_asked {
        Some(list) => {
            // Exactly the documented names and the host's profile fields
            // (the service also folds case).
            let parts: Vec<&str> = list.split(',').collect();
            if parts.len() > 50
                || parts
                    .iter()
                    .any(|p| !FIELD_NAMES.contains(p) && !profile.iter().any(|f| f.key == *p))
            {
                let mut known: Vec<&str> = FIELD_NAMES.to_vec();
                known.extend(profile.iter().map(|f| f.key.as_str()));
                return Err(WebError::validation(vec![crate::error::FieldError::new(
                    "fields",
                    format!("a comma-separated list of: {}", known.join(", ")),
                )])
                .into());
            }
            let fields = ExportField::parse_list(&list, &profile)?;
            crate::parts::check_export_fields(&state.settings().disabled_parts, &fields)?;
            fields
        }
        None => crate::parts::export_fields(
            &state.settings().disabled_parts,
            exports::default_fields(&profile),
        ),
    };
    exports::export_scope(&api.actor)?;
    let export_actor = api.actor.clone();
    let actor = api.actor;
    // Resolve the organization filter before the first byte, so that errors
    // are still problem documents.
    let query = state
        .db(
            move |conn| -> Result<Option<frontdesk_core::users::query::UserQuery>, WebError> {
                let mut query = requested.query;
                query.service = super::users::service_filter(conn, service.as_deref())?;
                if requested.empty {
                    return Ok(None);
                }
                if let Some(slug) = requested.organization {
                    match super::organizations::visible(conn, &actor, &slug) {
                        Ok(org) => query.organization = Some(org.id),
                        Err(CoreError::NotFound(_)) => return Ok(None),
                        Err(e) => return Err(e.into()),
                    }
                }
                Ok(Some(query))
            },
        )
        .await?;
    let query = match query {
        Some(q) => q,
        // Filters that match nobody: the header only (no tag has id 0).
        None => frontdesk_core::users::query::UserQuery {
            tags_all: vec![0],
            ..Default::default()
        },
    };
    Ok(stream(
        &state,
        export_actor,
        ExportRequest::new(fields, query),
    ))
}

/// Streams an export as a dated `text/csv` attachment: the query walks in
/// batches on a blocking thread while the response is sent (constant
/// memory). Used by the API and the admin export page.
pub(crate) fn stream(state: &FrontdeskState, actor: Actor, request: ExportRequest) -> HttpResponse {
    let pool = state.pool().clone();
    let (tx, rx) = mpsc::channel(8);
    tokio::task::spawn_blocking(crate::request_id::carried(move || {
        let mut out = ChannelWriter {
            tx: tx.clone(),
            buf: Vec::new(),
        };
        let result = match frontdesk_core::events::checkout(&pool) {
            Ok(mut conn) => exports::export(&mut conn, &actor, &request, &mut out, &mut |_| {})
                .map(|_| ())
                .and_then(|()| out.flush().map_err(ExportError::Io)),
            Err(e) => Err(ExportError::Io(std::io::Error::other(e.to_string()))),
        };
        if let Err(e) = result {
            tracing::error!("frontdesk: export stopped: {e}");
            let _ = tx.blocking_send(Err(std::io::Error::other("export stopped")));
        }
    }));
    HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!(
                "attachment; filename=\"{}\"",
                exports::filename(frontdesk_core::time::now())
            ),
        ))
        .streaming(Chunks(rx))
}
