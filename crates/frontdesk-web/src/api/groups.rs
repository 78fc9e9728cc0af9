//! `/organizations/{slug}/groups`: an organization's groups and their
//! members (the same groups a directory manages over SCIM).

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use frontdesk_core::groups::{self, Group, GroupFields};
use frontdesk_core::{CoreError, OrgRole};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::ApiActor;
use super::organizations::{visible, Role};
use super::problem::ApiResult;
use super::utc;
use crate::state::FrontdeskState;

#[derive(Debug, Serialize, ToSchema)]
pub struct GroupOut {
    pub id: i64,
    pub name: String,
    pub description: String,
    /// The organization role every member holds at least.
    pub role: Option<String>,
    /// The group's id in the directory that manages it.
    pub external_id: Option<String>,
    pub member_count: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

fn out(g: &Group, member_count: i64) -> GroupOut {
    GroupOut {
        id: g.id,
        name: g.name.clone(),
        description: g.description.clone(),
        role: g.role.clone(),
        external_id: g.external_id.clone(),
        member_count,
        created_at: utc(g.created_at),
        updated_at: utc(g.updated_at),
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GroupList {
    pub groups: Vec<GroupOut>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GroupMemberOut {
    pub user_id: i64,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GroupDetail {
    #[serde(flatten)]
    pub group: GroupOut,
    pub members: Vec<GroupMemberOut>,
    /// The licences the group carries: each member holds them.
    pub licences: Vec<super::licences::LicenceRef>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewGroup {
    #[schema(
        example = "Engineering",
        max_length = 100,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$"
    )]
    pub name: String,
    #[serde(default)]
    #[schema(max_length = 2000, pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")]
    pub description: Option<String>,
    #[serde(default)]
    pub role: Option<Role>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupChange {
    #[serde(default)]
    #[schema(
        max_length = 100,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$"
    )]
    pub name: Option<String>,
    #[serde(default)]
    #[schema(max_length = 2000, pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")]
    pub description: Option<String>,
    /// A role, or `null` to clear it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Role>, nullable)]
    pub role: Option<Option<Role>>,
}

/// An absent field is `None` (by `default`), a `null` one `Some(None)`.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<Role>>, D::Error> {
    Option::<Role>::deserialize(d).map(Some)
}

fn role_of(r: Option<Role>) -> Option<OrgRole> {
    r.map(OrgRole::from)
}

/// `GET /organizations/{slug}/groups`: by name, with member counts.
#[utoipa::path(
    get,
    path = "/organizations/{slug}/groups",
    operation_id = "organizations_groups_list",
    tag = "groups",
    params(("slug" = String, Path, description = "Organization slug")),
    responses((status = 200, description = "The organization's groups", body = GroupList))
)]
pub async fn list(
    state: web::Data<FrontdeskState>,
    api: ApiActor,
    slug: web::Path<String>,
) -> ApiResult {
    let slug = slug.into_inner();
    let (list, counts) = state
        .db(move |conn| {
            let org = visible(conn, &api.actor, &slug)?;
            let list = groups::list(conn, &api.actor, org.id)?;
            let counts = groups::member_counts(conn, org.id)?;
            Ok::<_, CoreError>((list, counts))
        })
        .await?;
    Ok(HttpResponse::Ok().json(GroupList {
        groups: list
            .iter()
            .map(|g| out(g, counts.get(&g.id).copied().unwrap_or(0)))
            .collect(),
    }))
}

async fn detail(
    state: &FrontdeskState,
    api: ApiActor,
    slug: String,
    id: i64,
) -> ApiResult<GroupDetail> {
    let (g, members, licences) = state
        .db(move |conn| {
            let org = visible(conn, &api.actor, &slug)?;
            let g = groups::get_for(conn, &api.actor, org.id, id)?;
            let members = groups::members(conn, g.id)?;
            let licences = frontdesk_core::licences::of_group(conn, g.id)?;
            Ok::<_, CoreError>((g, members, licences))
        })
        .await?;
    Ok(GroupDetail {
        group: out(&g, members.len() as i64),
        members: members
            .into_iter()
            .map(|m| GroupMemberOut {
                user_id: m.user_id,
                email: m.email,
                first_name: m.first_name,
                last_name: m.last_name,
            })
            .collect(),
        licences: licences
            .into_iter()
            .map(|l| super::licences::LicenceRef {
                key: l.key,
                name: l.name,
            })
            .collect(),
    })
}

/// `POST /organizations/{slug}/groups`.
#[utoipa::path(
    post,
    path = "/organizations/{slug}/groups",
    operation_id = "organizations_groups_create",
    tag = "groups",
    params(("slug" = String, Path, description = "Organization slug")),
    request_body = NewGroup,
    responses(
        (status = 201, description = "Created", body = GroupDetail),
        (status = 409, description = "A group of that name exists", body = super::problem::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create(
    state: web::Data<FrontdeskState>,
    api: ApiActor,
    slug: web::Path<String>,
    body: super::problem::Body,
) -> ApiResult {
    let body: NewGroup = super::problem::object(body)?;
    super::problem::check_text(&[
        ("name", Some(&body.name), 100),
        ("description", body.description.as_deref(), 2000),
    ])?;
    let slug = slug.into_inner();
    let actor = api.clone();
    let s2 = slug.clone();
    let g = state
        .db(move |conn| {
            let org = visible(conn, &actor.actor, &s2)?;
            groups::create(
                conn,
                &actor.actor,
                org.id,
                GroupFields {
                    name: Some(body.name),
                    description: body.description,
                    role: Some(role_of(body.role)),
                    external_id: None,
                },
            )
        })
        .await?;
    Ok(HttpResponse::Created().json(detail(&state, api, slug, g.id).await?))
}

/// `GET /organizations/{slug}/groups/{id}`: with its members.
#[utoipa::path(
    get,
    path = "/organizations/{slug}/groups/{id}",
    operation_id = "organizations_groups_get",
    tag = "groups",
    params(
        ("slug" = String, Path, description = "Organization slug"),
        ("id" = i64, Path, description = "Group id"),
    ),
    responses((status = 200, description = "The group", body = GroupDetail))
)]
pub async fn get(
    state: web::Data<FrontdeskState>,
    api: ApiActor,
    path: web::Path<(String, i64)>,
) -> ApiResult {
    let (slug, id) = path.into_inner();
    Ok(HttpResponse::Ok().json(detail(&state, api, slug, id).await?))
}

/// `PATCH /organizations/{slug}/groups/{id}`: the fields given change.
#[utoipa::path(
    patch,
    path = "/organizations/{slug}/groups/{id}",
    operation_id = "organizations_groups_update",
    tag = "groups",
    params(
        ("slug" = String, Path, description = "Organization slug"),
        ("id" = i64, Path, description = "Group id"),
    ),
    request_body = GroupChange,
    responses((status = 200, description = "Saved", body = GroupDetail))
)]
pub async fn update(
    state: web::Data<FrontdeskState>,
    api: ApiActor,
    path: web::Path<(String, i64)>,
    body: super::problem::Body,
) -> ApiResult {
    let body: GroupChange = super::problem::object(body)?;
    super::problem::check_text(&[
        ("name", body.name.as_deref(), 100),
        ("description", body.description.as_deref(), 2000),
    ])?;
    let (slug, id) = path.into_inner();
    let actor = api.clone();
    let s2 = slug.clone();
    state
        .db(move |conn| {
            let org = visible(conn, &actor.actor, &s2)?;
            groups::update(
                conn,
                &actor.actor,
                org.id,
                id,
                GroupFields {
                    name: body.name,
                    description: body.description,
                    role: body.role.map(role_of),
                    external_id: None,
                },
            )
        })
        .await?;
    Ok(HttpResponse::Ok().json(detail(&state, api, slug, id).await?))
}

/// `DELETE /organizations/{slug}/groups/{id}`: members stay in the organization.
#[utoipa::path(
    delete,
    path = "/organizations/{slug}/groups/{id}",
    operation_id = "organizations_groups_delete",
    tag = "groups",
    params(
        ("slug" = String, Path, description = "Organization slug"),
        ("id" = i64, Path, description = "Group id"),
    ),
    responses((status = 204, description = "Deleted"))
)]
pub async fn delete(
    state: web::Data<FrontdeskState>,
    api: ApiActor,
    path: web::Path<(String, i64)>,
) -> ApiResult {
    let (slug, id) = path.into_inner();
    state
        .db(move |conn| {
            let org = visible(conn, &api.actor, &slug)?;
            groups::delete(conn, &api.actor, org.id, id)
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Many members in and out of a group at once.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MembersChange {
    /// Users to add (each a member of the organization).
    #[serde(default)]
    #[schema(max_items = 1000)]
    pub add: Vec<i64>,
    /// Users to take out (those not in the group are left alone).
    #[serde(default)]
    #[schema(max_items = 1000)]
    pub remove: Vec<i64>,
}

/// How many users joined and left.
#[derive(Debug, Serialize, ToSchema)]
pub struct MembersChanged {
    pub added: usize,
    pub removed: usize,
}

/// `POST /organizations/{slug}/groups/{id}/members`: adds and removes many
/// members in one change, all or nothing (bulk assignment after an import).
#[utoipa::path(
    post,
    path = "/organizations/{slug}/groups/{id}/members",
    operation_id = "organizations_groups_change_members",
    tag = "groups",
    params(
        ("slug" = String, Path, description = "Organization slug"),
        ("id" = i64, Path, description = "Group id"),
    ),
    request_body = MembersChange,
    responses(
        (status = 200, description = "Done; how many joined and left", body = MembersChanged),
        (status = 409, description = "A licence the group carries has no seat left", body = super::problem::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn change_members(
    state: web::Data<FrontdeskState>,
    api: ApiActor,
    path: web::Path<(String, i64)>,
    body: super::problem::Body,
) -> ApiResult {
    let body: MembersChange = super::problem::object(body)?;
    let (slug, id) = path.into_inner();
    let (added, removed) = state
        .db(move |conn| {
            let org = visible(conn, &api.actor, &slug)?;
            groups::get_for(conn, &api.actor, org.id, id)?;
            groups::change_members(conn, &api.actor, org.id, id, &body.add, &body.remove)
        })
        .await?;
    Ok(HttpResponse::Ok().json(MembersChanged { added, removed }))
}

/// `PUT /organizations/{slug}/groups/{id}/members/{user_id}`: adds a member
/// of the organization (already in: nothing changes).
#[utoipa::path(
    put,
    path = "/organizations/{slug}/groups/{id}/members/{user_id}",
    operation_id = "organizations_groups_add_member",
    tag = "groups",
    params(
        ("slug" = String, Path, description = "Organization slug"),
        ("id" = i64, Path, description = "Group id"),
        ("user_id" = i64, Path, description = "User id"),
    ),
    responses((status = 204, description = "In the group"))
)]
pub async fn add_member(
    state: web::Data<FrontdeskState>,
    api: ApiActor,
    path: web::Path<(String, i64, i64)>,
) -> ApiResult {
    let (slug, id, user) = path.into_inner();
    state
        .db(move |conn| {
            let org = visible(conn, &api.actor, &slug)?;
            groups::add_member(conn, &api.actor, org.id, id, user)
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `DELETE /organizations/{slug}/groups/{id}/members/{user_id}`.
#[utoipa::path(
    delete,
    path = "/organizations/{slug}/groups/{id}/members/{user_id}",
    operation_id = "organizations_groups_remove_member",
    tag = "groups",
    params(
        ("slug" = String, Path, description = "Organization slug"),
        ("id" = i64, Path, description = "Group id"),
        ("user_id" = i64, Path, description = "User id"),
    ),
    responses((status = 204, description = "Not in the group"))
)]
pub async fn remove_member(
    state: web::Data<FrontdeskState>,
    api: ApiActor,
    path: web::Path<(String, i64, i64)>,
) -> ApiResult {
    let (slug, id, user) = path.into_inner();
    state
        .db(move |conn| {
            let org = visible(conn, &api.actor, &slug)?;
            groups::get_for(conn, &api.actor, org.id, id)?;
            groups::remove_member(conn, &api.actor, org.id, id, user)
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
