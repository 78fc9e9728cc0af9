//! `/organizations/{slug}/licences` and the licences of members and groups:
//! the host's licence types with the seats an organization uses, given to a
//! member directly or to a group.

use actix_web::{web, HttpResponse};
use frontdesk_core::licences::{self, Effective, Source};
use frontdesk_core::{Actor, CoreError, CoreResult, DbConnection};
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::ApiActor;
use super::organizations::visible;
use super::problem::ApiResult;
use crate::state::FrontdeskState;

#[derive(Debug, Serialize, ToSchema)]
pub struct GroupRef {
    pub id: i64,
    pub name: String,
}

/// A licence type the host declared, with an organization's seats.
#[derive(Debug, Serialize, ToSchema)]
pub struct LicenceSeats {
    #[schema(example = "pro")]
    pub key: String,
    #[schema(example = "Pro plan")]
    pub name: String,
    /// The most members who may hold it; null for no limit.
    pub seats: Option<i64>,
    /// Members holding it, directly or through a group (each counted once).
    pub used: i64,
    /// The organization's groups that carry it.
    pub groups: Vec<GroupRef>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LicenceList {
    pub licences: Vec<LicenceSeats>,
}

/// A licence type, by key and name.
#[derive(Debug, Serialize, ToSchema)]
pub struct LicenceRef {
    pub key: String,
    pub name: String,
}

/// Where a member's licence comes from.
#[derive(Debug, Serialize, ToSchema)]
pub struct LicenceSource {
    /// `direct` (given to the member) or `group` (a group they belong to carries it).
    #[schema(example = "direct")]
    pub source: String,
    pub group_id: Option<i64>,
    pub group_name: Option<String>,
}

/// A licence a user holds in an organization, with every source of it.
#[derive(Debug, Serialize, ToSchema)]
pub struct HeldLicence {
    pub organization_id: i64,
    pub key: String,
    pub name: String,
    pub sources: Vec<LicenceSource>,
}

pub fn held(org: i64, e: Effective) -> HeldLicence {
    HeldLicence {
        organization_id: org,
        key: e.key,
        name: e.name,
        sources: e
            .sources
            .into_iter()
            .map(|s| match s {
                Source::Direct => LicenceSource {
                    source: "direct".into(),
                    group_id: None,
                    group_name: None,
                },
                Source::Group {
                    group_id,
                    group_name,
                } => LicenceSource {
                    source: "group".into(),
                    group_id: Some(group_id),
                    group_name: Some(group_name),
                },
            })
            .collect(),
    }
}

/// `GET /organizations/{slug}/licences`: the declared types with the seats
/// the organization uses and the groups carrying each.
#[utoipa::path(
    get,
    path = "/organizations/{slug}/licences",
    operation_id = "organizations_licences_list",
    tag = "licences",
    params(("slug" = String, Path, description = "Organization slug")),
    responses((status = 200, description = "The licence types and their seats", body = LicenceList))
)]
pub async fn list(
    state: web::Data<FrontdeskState>,
    api: ApiActor,
    slug: web::Path<String>,
) -> ApiResult {
    let slug = slug.into_inner();
    let out = state
        .db(move |conn| {
            let org = visible(conn, &api.actor, &slug)?;
            let seats = licences::seats(conn, &api.actor, org.id)?;
            let mut carrying = licences::groups_carrying(conn, org.id)?;
            Ok::<_, CoreError>(LicenceList {
                licences: seats
                    .into_iter()
                    .map(|s| LicenceSeats {
                        groups: carrying
                            .remove(&s.licence.key)
                            .unwrap_or_default()
                            .into_iter()
                            .map(|(id, name)| GroupRef { id, name })
                            .collect(),
                        key: s.licence.key,
                        name: s.licence.name,
                        seats: s.licence.seats,
                        used: s.used,
                    })
                    .collect(),
            })
        })
        .await?;
    Ok(HttpResponse::Ok().json(out))
}

/// `PUT /organizations/{slug}/users/{id}/licences/{key}`: gives a member the
/// licence directly (had it directly already: nothing changes).
#[utoipa::path(
    put,
    path = "/organizations/{slug}/users/{id}/licences/{key}",
    operation_id = "organizations_user_licence_assign",
    tag = "licences",
    params(
        ("slug" = String, Path, description = "Organization slug"),
        ("id" = i64, Path, description = "User id"),
        ("key" = String, Path, description = "Licence key", pattern = r"^[a-z0-9._-]{1,64}$"),
    ),
    responses(
        (status = 204, description = "The member holds the licence directly"),
        (status = 409, description = "No seat left (`urn:frontdesk:problem:seat-limit`; the detail names the licence, the seats used and the limit)", body = super::problem::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn assign_user(
    state: web::Data<FrontdeskState>,
    api: ApiActor,
    path: web::Path<(String, i64, String)>,
) -> ApiResult {
    in_organization(state, api, path, licences::assign_user).await
}

/// `DELETE /organizations/{slug}/users/{id}/licences/{key}`: takes the
/// direct licence away (one held through a group stays).
#[utoipa::path(
    delete,
    path = "/organizations/{slug}/users/{id}/licences/{key}",
    operation_id = "organizations_user_licence_remove",
    tag = "licences",
    params(
        ("slug" = String, Path, description = "Organization slug"),
        ("id" = i64, Path, description = "User id"),
        ("key" = String, Path, description = "Licence key", pattern = r"^[a-z0-9._-]{1,64}$"),
    ),
    responses((status = 204, description = "The member holds no direct licence of this type"))
)]
pub async fn remove_user(
    state: web::Data<FrontdeskState>,
    api: ApiActor,
    path: web::Path<(String, i64, String)>,
) -> ApiResult {
    in_organization(state, api, path, licences::unassign_user).await
}

/// `PUT /organizations/{slug}/groups/{id}/licences/{key}`: every member of
/// the group holds the licence.
#[utoipa::path(
    put,
    path = "/organizations/{slug}/groups/{id}/licences/{key}",
    operation_id = "organizations_group_licence_assign",
    tag = "licences",
    params(
        ("slug" = String, Path, description = "Organization slug"),
        ("id" = i64, Path, description = "Group id"),
        ("key" = String, Path, description = "Licence key", pattern = r"^[a-z0-9._-]{1,64}$"),
    ),
    responses(
        (status = 204, description = "The group carries the licence"),
        (status = 409, description = "Not enough seats for the group's members who do not hold it yet (`urn:frontdesk:problem:seat-limit`)", body = super::problem::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn assign_group(
    state: web::Data<FrontdeskState>,
    api: ApiActor,
    path: web::Path<(String, i64, String)>,
) -> ApiResult {
    in_organization(state, api, path, licences::assign_group).await
}

/// `DELETE /organizations/{slug}/groups/{id}/licences/{key}`.
#[utoipa::path(
    delete,
    path = "/organizations/{slug}/groups/{id}/licences/{key}",
    operation_id = "organizations_group_licence_remove",
    tag = "licences",
    params(
        ("slug" = String, Path, description = "Organization slug"),
        ("id" = i64, Path, description = "Group id"),
        ("key" = String, Path, description = "Licence key", pattern = r"^[a-z0-9._-]{1,64}$"),
    ),
    responses((status = 204, description = "The group does not carry the licence"))
)]
pub async fn remove_group(
    state: web::Data<FrontdeskState>,
    api: ApiActor,
    path: web::Path<(String, i64, String)>,
) -> ApiResult {
    in_organization(state, api, path, licences::unassign_group).await
}

/// One licence change to a user or a group (`id`) of the organization the
/// caller may see, answered 204.
async fn in_organization(
    state: web::Data<FrontdeskState>,
    api: ApiActor,
    path: web::Path<(String, i64, String)>,
    change: fn(&mut DbConnection, &Actor, i64, i64, &str) -> CoreResult<bool>,
) -> ApiResult {
    let (slug, id, key) = path.into_inner();
    state
        .db(move |conn| {
            let org = visible(conn, &api.actor, &slug)?;
            change(conn, &api.actor, org.id, id, &key)
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
