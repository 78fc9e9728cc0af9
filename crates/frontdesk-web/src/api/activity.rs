//! `/users/{id}/activity` and `/organizations/{slug}/users/{id}/activity`:
//! one user's activity timeline, newest first, paged by an opaque cursor.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use frontdesk_core::activity::{self, ActivityEvent, Cursor, TimelineFilter};
use frontdesk_core::authz::Action;
use frontdesk_core::{organizations as core_orgs, users, CoreError};
use serde::Serialize;
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::auth::ApiActor;
use super::params::Params;
use super::problem::ApiResult;
use super::utc;
use crate::state::FrontdeskState;

/// Default page size of a timeline.
pub const DEFAULT_LIMIT: i64 = 50;

#[derive(Debug, Serialize, ToSchema)]
pub struct ActivityOut {
    pub at: DateTime<Utc>,
    /// `page_view` for pages the middleware recorded, or the host's own
    /// feature name (`export.created`).
    pub kind: String,
    /// The host's service the event belongs to (its slug), if known.
    pub service: Option<String>,
    /// The route pattern of a page view (`/projects/{id}`).
    pub route: Option<String>,
    /// The host's details of a feature event; a page view's method and status.
    #[schema(value_type = Object)]
    pub details: Value,
}

impl ActivityOut {
    pub fn new(e: &ActivityEvent) -> Self {
        let mut details = e.details_json();
        if let Value::Object(map) = &mut details {
            if let Some(m) = &e.method {
                map.entry("method")
                    .or_insert_with(|| Value::from(m.clone()));
            }
            if let Some(s) = e.status {
                map.entry("status").or_insert_with(|| Value::from(s));
            }
        }
        ActivityOut {
            at: utc(e.at),
            kind: e.kind.clone(),
            service: e.service.clone(),
            route: e.route.clone(),
            details,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ActivityPage {
    pub events: Vec<ActivityOut>,
    /// Pass as `cursor` for the next (older) page; null on the last page.
    pub next_cursor: Option<String>,
}

#[allow(dead_code)]
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ActivityParams {
    /// Only events of this service (its slug).
    #[param(max_length = 64, pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")]
    service: Option<String>,
    /// Only events of this kind (`page_view`, `export.created`): 1 to 64 of
    /// a-z, 0-9, `.`, `_` and `-`.
    #[param(max_length = 64, pattern = r"^[a-z0-9._-]{1,64}$")]
    kind: Option<String>,
    /// The `next_cursor` of the previous page (opaque: any other value is a 400).
    #[param(max_length = 64, pattern = r"^-?[0-9]+\.[0-9]+$")]
    cursor: Option<String>,
    #[param(minimum = 1, maximum = 200, default = 50)]
    limit: Option<i64>,
}

/// The filters and page size of a timeline request; a bad value is a 400
/// naming the parameter.
pub fn parse(query: &str) -> ApiResult<(TimelineFilter, i64)> {
    let mut p = Params::parse(query, &["service", "kind", "cursor", "limit"]);
    let service = p.text("service", activity::MAX_KIND);
    // `kind` and `cursor` have patterns in the document that an empty or
    // padded value does not match: refused, not read as absent or trimmed.
    let kind = p.strict_text("kind", activity::MAX_KIND);
    if let Some(k) = &kind {
        if activity::check_kind(k).is_err() {
            p.error("kind", "use a-z, 0-9, '.', '_' and '-'");
        }
    }
    let after = match p.strict_text("cursor", 64) {
        Some(c) => {
            let decoded = Cursor::decode(&c);
            if decoded.is_none() {
                p.error("cursor", "is not a cursor this API returned");
            }
            decoded
        }
        None => None,
    };
    let limit = p
        .int("limit", 1, activity::MAX_PAGE)
        .unwrap_or(DEFAULT_LIMIT);
    p.finish()?;
    Ok((
        TimelineFilter {
            service,
            kind,
            after,
        },
        limit,
    ))
}

fn page(rows: Vec<ActivityEvent>, next: Option<Cursor>) -> ActivityPage {
    ActivityPage {
        events: rows.iter().map(ActivityOut::new).collect(),
        next_cursor: next.map(|c| c.encode()),
    }
}

/// `GET /users/{id}/activity`.
#[utoipa::path(
    get,
    path = "/users/{id}/activity",
    operation_id = "users_activity",
    tag = "users",
    params(("id" = i64, Path, description = "User id"), ActivityParams),
    responses((status = 200, description = "A page of the user's activity, newest first", body = ActivityPage))
)]
pub async fn of_user(
    req: HttpRequest,
    state: web::Data<FrontdeskState>,
    api: ApiActor,
    id: web::Path<i64>,
) -> ApiResult {
    let id = id.into_inner();
    let (filter, limit) = parse(req.query_string())?;
    let (rows, next) = state
        .db(move |conn| {
            users::get_for(conn, &api.actor, id, Action::View)?;
            Ok::<_, CoreError>(activity::timeline(conn, id, &filter, limit)?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(page(rows, next)))
}

/// `GET /organizations/{slug}/users/{id}/activity`.
#[utoipa::path(
    get,
    path = "/organizations/{slug}/users/{id}/activity",
    operation_id = "organizations_user_activity",
    tag = "organization users",
    params(
        ("slug" = String, Path, description = "Organization slug"),
        ("id" = i64, Path, description = "User id"),
        ActivityParams,
    ),
    responses((status = 200, description = "A page of the user's activity, newest first", body = ActivityPage))
)]
pub async fn of_org_user(
    req: HttpRequest,
    state: web::Data<FrontdeskState>,
    api: ApiActor,
    path: web::Path<(String, i64)>,
) -> ApiResult {
    let (slug, id) = path.into_inner();
    let (filter, limit) = parse(req.query_string())?;
    let (rows, next) = state
        .db(move |conn| {
            let org = super::organizations::visible(conn, &api.actor, &slug)?;
            let member = core_orgs::roles_of(conn, id)?
                .iter()
                .any(|(o, _)| *o == org.id);
            if !member {
                return Err(CoreError::NotFound("user"));
            }
            users::get_for(conn, &api.actor, id, Action::View)?;
            Ok(activity::timeline(conn, id, &filter, limit)?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(page(rows, next)))
}
