//! `/users`: the users query as query parameters, detail, update, suspend,
//! restore, delete, and revoking every session of a user.

mod lifecycle;
mod out;
mod query;
mod update;

pub use lifecycle::*;
pub use out::*;
pub use query::*;
pub use update::*;

use actix_web::{web, HttpRequest, HttpResponse};
use frontdesk_core::authz::Action;
use frontdesk_core::users;
use frontdesk_core::users::query::Page;
use frontdesk_core::CoreError;

use crate::api::auth::ApiActor;
use crate::api::problem::ApiResult;
use crate::error::WebError;
use crate::state::FrontdeskState;

/// `GET /users`: the users the caller may see, filtered, sorted, paged.
#[utoipa::path(
    get,
    path = "/users",
    operation_id = "users_list",
    tag = "users",
    params(UserListParams),
    responses((status = 200, description = "A page of users", body = UserList))
)]
pub async fn list(req: HttpRequest, state: web::Data<FrontdeskState>, api: ApiActor) -> ApiResult {
    let requested = parse_list(req.query_string(), state.settings())?;
    let actor = api.actor;
    let page = state
        .db(move |conn| -> Result<UserList, WebError> {
            let mut query = requested.query;
            query.service = query::service_filter(conn, requested.service.as_deref())?;
            let nobody = UserList::from_page(
                &Page {
                    items: Vec::new(),
                    page: query.page,
                    limit: query.limit,
                    total: 0,
                    total_is_exact: true,
                },
                &Default::default(),
            );
            if requested.empty || actor.visible_orgs().is_some_and(|o| o.is_empty()) {
                return Ok(nobody);
            }
            if let Some(slug) = requested.organization {
                // An organization the caller cannot see has no users for them,
                // exactly like one that does not exist.
                match crate::api::organizations::visible(conn, &actor, &slug) {
                    Ok(org) => query.organization = Some(org.id),
                    Err(CoreError::NotFound(_)) => return Ok(nobody),
                    Err(e) => return Err(e.into()),
                }
            }
            let page = query.run(conn, &actor)?;
            let ids: Vec<i64> = page.items.iter().map(|u| u.id).collect();
            let mfa = frontdesk_core::mfa::enabled_among(conn, &ids)?;
            let services = frontdesk_core::services::slugs_among(conn, &ids)?;
            Ok(UserList::from_page(&page, &mfa).with_services(services))
        })
        .await?;
    Ok(HttpResponse::Ok().json(page))
}

/// `GET /users/{id}`.
#[utoipa::path(
    get,
    path = "/users/{id}",
    operation_id = "users_get",
    tag = "users",
    params(("id" = i64, Path, description = "User id")),
    responses((status = 200, description = "The user", body = UserDetail))
)]
pub async fn get(state: web::Data<FrontdeskState>, api: ApiActor, id: web::Path<i64>) -> ApiResult {
    let id = id.into_inner();
    let config = state.settings().auth.sessions;
    let detail = state
        .db(move |conn| {
            let user = users::get_for(conn, &api.actor, id, Action::View)?;
            detail_of(conn, &api.actor, &user, &config)
        })
        .await?;
    Ok(HttpResponse::Ok().json(detail))
}
