//! `/tags`: the segments users are grouped in, and tagging a user.

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use frontdesk_core::tags::{self, Tag};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::ApiActor;
use super::problem::ApiResult;
use super::utc;
use crate::state::FrontdeskState;

#[derive(Debug, Serialize, ToSchema)]
pub struct TagOut {
    pub id: i64,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

impl From<&Tag> for TagOut {
    fn from(t: &Tag) -> Self {
        TagOut {
            id: t.id,
            name: t.name.clone(),
            created_at: utc(t.created_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TagList {
    pub tags: Vec<TagOut>,
}

/// `GET /tags`: every tag, by name.
#[utoipa::path(
    get,
    path = "/tags",
    operation_id = "tags_list",
    tag = "tags",
    responses((status = 200, description = "All tags", body = TagList))
)]
pub async fn list(state: web::Data<FrontdeskState>, _api: ApiActor) -> ApiResult {
    let all = state.db(tags::list).await?;
    Ok(HttpResponse::Ok().json(TagList {
        tags: all.iter().map(TagOut::from).collect(),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTag {
    /// Stored lower-case; no `|` or `,`.
    #[schema(
        example = "beta",
        max_length = 64,
        pattern = r"^[^|,\x00-\x1F\x7F-\x9F]*[^|,\s\x00-\x1F\x7F-\x9F][^|,\x00-\x1F\x7F-\x9F]*$"
    )]
    pub name: String,
}

/// `POST /tags` (staff admins and owners).
#[utoipa::path(
    post,
    path = "/tags",
    operation_id = "tags_create",
    tag = "tags",
    request_body = NewTag,
    responses(
        (status = 201, description = "Created", body = TagOut),
        (status = 409, description = "The tag exists", body = super::problem::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create(
    state: web::Data<FrontdeskState>,
    api: ApiActor,
    body: super::problem::Body,
) -> ApiResult {
    let NewTag { name } = super::problem::object(body)?;
    super::problem::check_text(&[("name", Some(&name), 64)])?;
    let tag = state
        .db(move |conn| tags::create(conn, &api.actor, &name))
        .await?;
    Ok(HttpResponse::Created().json(TagOut::from(&tag)))
}

/// `PUT /users/{id}/tags/{tag_id}`: tags the user (tagging twice is fine).
#[utoipa::path(
    put,
    path = "/users/{id}/tags/{tag_id}",
    operation_id = "tags_assign",
    tag = "tags",
    params(
        ("id" = i64, Path, description = "User id"),
        ("tag_id" = i64, Path, description = "Tag id"),
    ),
    responses((status = 204, description = "Tagged"))
)]
pub async fn assign(
    state: web::Data<FrontdeskState>,
    api: ApiActor,
    path: web::Path<(i64, i64)>,
) -> ApiResult {
    let (id, tag) = path.into_inner();
    state
        .db(move |conn| tags::assign(conn, &api.actor, id, tag))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `DELETE /users/{id}/tags/{tag_id}`: removes the tag from the user.
#[utoipa::path(
    delete,
    path = "/users/{id}/tags/{tag_id}",
    operation_id = "tags_unassign",
    tag = "tags",
    params(
        ("id" = i64, Path, description = "User id"),
        ("tag_id" = i64, Path, description = "Tag id"),
    ),
    responses((status = 204, description = "Untagged"))
)]
pub async fn unassign(
    state: web::Data<FrontdeskState>,
    api: ApiActor,
    path: web::Path<(i64, i64)>,
) -> ApiResult {
    let (id, tag) = path.into_inner();
    state
        .db(move |conn| tags::unassign(conn, &api.actor, id, tag))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
