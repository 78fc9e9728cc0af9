//! `/organizations`: organizations and memberships, and the organization-scoped
//! user endpoints (`/organizations/{slug}/users…`). An organization the caller
//! may not see answers exactly like one that does not exist.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use frontdesk_core::authz::{can, Action, Target};
use frontdesk_core::organizations::{self, Organization};
use frontdesk_core::users::query::UserQuery;
use frontdesk_core::{sessions, users, Actor, CoreError, DbConnection, OrgRole};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::ApiActor;
use super::params::{Pagination, Params};
use super::problem::{check_text, ApiResult};
use super::users::{detail_of, SessionsRevoked, UserDetail, UserList};
use super::utc;
use crate::error::{FieldError, WebError};
use crate::state::FrontdeskState;

/// Email domains as the API takes them: lower-case ASCII labels.
pub const DOMAIN_PATTERN: &str =
    r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$";

fn domain_ok(d: &str) -> bool {
    let labels: Vec<&str> = d.split('.').collect();
    d.len() <= 252
        && labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

/// The API is stricter than the services (which also normalize): it takes
/// exactly what its OpenAPI document describes.
fn check_domains(domains: Option<&[String]>) -> Result<(), WebError> {
    let Some(domains) = domains else {
        return Ok(());
    };
    if domains.len() > 100 {
        return Err(WebError::validation(vec![FieldError::new(
            "allowed_email_domains",
            "at most 100 domains",
        )]));
    }
    match domains.iter().find(|d| !domain_ok(d)) {
        Some(bad) => Err(WebError::validation(vec![FieldError::new(
            "allowed_email_domains",
            format!(
                "{:?} is not a lower-case domain name",
                bad.chars().take(80).collect::<String>()
            ),
        )])),
        None => Ok(()),
    }
}

/// The organization named by `slug`, if the actor may see it; otherwise not found.
pub fn visible(
    conn: &mut DbConnection,
    actor: &Actor,
    slug: &str,
) -> Result<Organization, CoreError> {
    if slug.len() > 100 {
        return Err(CoreError::NotFound("organization"));
    }
    let org = organizations::get_by_slug(conn, slug)?;
    if !can(actor, Action::View, &Target::Organization(org.id)) {
        return Err(CoreError::NotFound("organization"));
    }
    Ok(org)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrganizationOut {
    pub id: i64,
    pub slug: String,
    pub name: String,
    /// Email domains members must have; empty allows any.
    pub allowed_email_domains: Vec<String>,
    /// Members must use two-step sign-in.
    pub require_mfa: bool,
    /// What a directory's SCIM `DELETE /Users/{id}` does here: `membership`
    /// (the user leaves the organization) or `user` (the account is deleted).
    #[schema(example = "membership")]
    pub scim_delete: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<&Organization> for OrganizationOut {
    fn from(o: &Organization) -> Self {
        OrganizationOut {
            id: o.id,
            slug: o.slug.clone(),
            name: o.name.clone(),
            allowed_email_domains: o.domains().into_iter().map(str::to_owned).collect(),
            require_mfa: o.require_mfa,
            scim_delete: o.scim_delete.clone(),
            created_at: utc(o.created_at),
            updated_at: utc(o.updated_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrganizationList {
    pub organizations: Vec<OrganizationOut>,
    pub pagination: Pagination,
}

#[allow(dead_code)]
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    #[param(minimum = 1, maximum = 1000000, default = 1)]
    page: Option<i64>,
    #[param(minimum = 1, maximum = 100, default = 50)]
    limit: Option<i64>,
}

/// `GET /organizations`: those the caller may see, by name.
#[utoipa::path(
    get,
    path = "/organizations",
    operation_id = "organizations_list",
    tag = "organizations",
    params(PageParams),
    responses((status = 200, description = "A page of organizations", body = OrganizationList))
)]
pub async fn list(req: HttpRequest, state: web::Data<FrontdeskState>, api: ApiActor) -> ApiResult {
    let mut p = Params::parse(req.query_string(), &["page", "limit"]);
    let paging = p.paging();
    p.finish()?;
    let all = state
        .db(move |conn| organizations::list(conn, &api.actor))
        .await?;
    let total = all.len() as i64;
    let organizations = paging
        .slice(all)
        .iter()
        .map(OrganizationOut::from)
        .collect();
    Ok(HttpResponse::Ok().json(OrganizationList {
        organizations,
        pagination: paging.out(total),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOrganization {
    /// Lower-case letters, digits and hyphens, not starting or ending with one.
    #[schema(
        example = "acme",
        max_length = 64,
        pattern = r"^[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?$"
    )]
    pub slug: String,
    #[schema(
        example = "Acme Inc.",
        max_length = 100,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$"
    )]
    pub name: String,
    /// Lower-case domains; empty allows any.
    #[serde(default)]
    #[schema(schema_with = super::openapi::domains_schema)]
    pub allowed_email_domains: Vec<String>,
}

/// `POST /organizations` (staff admins and owners).
#[utoipa::path(
    post,
    path = "/organizations",
    operation_id = "organizations_create",
    tag = "organizations",
    request_body = NewOrganization,
    responses(
        (status = 201, description = "Created", body = OrganizationOut),
        (status = 409, description = "The slug is taken", body = super::problem::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create(
    state: web::Data<FrontdeskState>,
    api: ApiActor,
    body: super::problem::Body,
) -> ApiResult {
    let body: NewOrganization = super::problem::object(body)?;
    check_domains(Some(&body.allowed_email_domains))?;
    check_text(&[("name", Some(&body.name), 100)])?;
    if frontdesk_core::validate::slug(&body.slug).ok().as_deref() != Some(body.slug.as_str()) {
        return Err(WebError::validation(vec![FieldError::new(
            "slug",
            "use 1 to 64 lower-case letters, digits and hyphens, not starting or ending with a hyphen",
        )])
        .into());
    }
    let org = state
        .db(move |conn| {
            organizations::create(
                conn,
                &api.actor,
                &body.slug,
                &body.name,
                &body.allowed_email_domains.join(","),
            )
        })
        .await?;
    Ok(HttpResponse::Created().json(OrganizationOut::from(&org)))
}

/// `GET /organizations/{slug}`.
#[utoipa::path(
    get,
    path = "/organizations/{slug}",
    operation_id = "organizations_get",
    tag = "organizations",
    params(("slug" = String, Path, description = "Organization slug")),
    responses((status = 200, description = "The organization", body = OrganizationOut))
)]
pub async fn get(
    state: web::Data<FrontdeskState>,
    api: ApiActor,
    slug: web::Path<String>,
) -> ApiResult {
    let slug = slug.into_inner();
    let org = state
        .db(move |conn| visible(conn, &api.actor, &slug))
        .await?;
    Ok(HttpResponse::Ok().json(OrganizationOut::from(&org)))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrganizationPatch {
    #[schema(
        max_length = 100,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$"
    )]
    pub name: Option<String>,
    /// Replaces the list of lower-case domains; empty allows any domain.
    #[schema(schema_with = super::openapi::domains_or_null_schema)]
    pub allowed_email_domains: Option<Vec<String>>,
    /// Require two-step sign-in of the members (audited as
    /// `organization.require_mfa`).
    pub require_mfa: Option<bool>,
    /// What a directory's SCIM `DELETE /Users/{id}` does (audited as
    /// `organization.scim_delete`; needs the right to grant the admin role).
    pub scim_delete: Option<ScimDelete>,
}

/// What a directory's delete of a user does in the organization.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ScimDelete {
    /// The user leaves the organization; the account stays.
    Membership,
    /// The account is deleted.
    User,
}

/// `PATCH /organizations/{slug}`: the changes apply together or none does.
#[utoipa::path(
    patch,
    path = "/organizations/{slug}",
    operation_id = "organizations_update",
    tag = "organizations",
    params(("slug" = String, Path, description = "Organization slug")),
    request_body = OrganizationPatch,
    responses((status = 200, description = "The updated organization", body = OrganizationOut))
)]
pub async fn update(
    state: web::Data<FrontdeskState>,
    api: ApiActor,
    slug: web::Path<String>,
    body: super::problem::Body,
) -> ApiResult {
    let slug = slug.into_inner();
    let patch: OrganizationPatch = super::problem::object(body)?;
    check_domains(patch.allowed_email_domains.as_deref())?;
    check_text(&[("name", patch.name.as_deref(), 100)])?;
    let org = state
        .db(move |conn| {
            let org = visible(conn, &api.actor, &slug)?;
            let domains = patch.allowed_email_domains.as_ref().map(|d| d.join(","));
            frontdesk_core::db::write_transaction(conn, |conn| {
                let updated = organizations::update(
                    conn,
                    &api.actor,
                    org.id,
                    patch.name.as_deref(),
                    domains.as_deref(),
                )?;
                if let Some(mode) = patch.scim_delete {
                    let mode = match mode {
                        ScimDelete::Membership => "membership",
                        ScimDelete::User => "user",
                    };
                    frontdesk_core::scim_tokens::set_delete_mode(conn, &api.actor, org.id, mode)?;
                }
                match patch.require_mfa {
                    Some(on) => frontdesk_core::mfa::policy::set_for_organization(
                        conn, &api.actor, org.id, on,
                    ),
                    None if patch.scim_delete.is_some() => organizations::get(conn, org.id),
                    None => Ok(updated),
                }
            })
        })
        .await?;
    Ok(HttpResponse::Ok().json(OrganizationOut::from(&org)))
}

/// `DELETE /organizations/{slug}`: with its memberships (users stay).
#[utoipa::path(
    delete,
    path = "/organizations/{slug}",
    operation_id = "organizations_delete",
    tag = "organizations",
    params(("slug" = String, Path, description = "Organization slug")),
    responses((status = 204, description = "Deleted"))
)]
pub async fn delete(
    state: web::Data<FrontdeskState>,
    api: ApiActor,
    slug: web::Path<String>,
) -> ApiResult {
    let slug = slug.into_inner();
    state
        .db(move |conn| {
            let org = visible(conn, &api.actor, &slug)?;
            organizations::delete(conn, &api.actor, org.id)
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MemberOut {
    pub user_id: i64,
    pub email: String,
    #[schema(example = "member")]
    pub role: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MemberList {
    pub members: Vec<MemberOut>,
    pub pagination: Pagination,
}

/// `GET /organizations/{slug}/members`: by email.
#[utoipa::path(
    get,
    path = "/organizations/{slug}/members",
    operation_id = "organizations_members",
    tag = "organizations",
    params(("slug" = String, Path, description = "Organization slug"), PageParams),
    responses((status = 200, description = "A page of members", body = MemberList))
)]
pub async fn members(
    req: HttpRequest,
    state: web::Data<FrontdeskState>,
    api: ApiActor,
    slug: web::Path<String>,
) -> ApiResult {
    let mut p = Params::parse(req.query_string(), &["page", "limit"]);
    let paging = p.paging();
    p.finish()?;
    let slug = slug.into_inner();
    let all = state
        .db(move |conn| {
            let org = visible(conn, &api.actor, &slug)?;
            organizations::members(conn, org.id)
        })
        .await?;
    let total = all.len() as i64;
    let members = paging
        .slice(all)
        .into_iter()
        .map(|(m, email)| MemberOut {
            user_id: m.user_id,
            email,
            role: m.role,
            created_at: utc(m.created_at),
        })
        .collect();
    Ok(HttpResponse::Ok().json(MemberList {
        members,
        pagination: paging.out(total),
    }))
}

#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Member,
    Admin,
    Owner,
}

impl From<Role> for OrgRole {
    fn from(r: Role) -> Self {
        match r {
            Role::Member => OrgRole::Member,
            Role::Admin => OrgRole::Admin,
            Role::Owner => OrgRole::Owner,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMember {
    #[serde(deserialize_with = "super::problem::integral")]
    pub user_id: i64,
    pub role: Role,
}

/// `POST /organizations/{slug}/members`: adds an existing user.
#[utoipa::path(
    post,
    path = "/organizations/{slug}/members",
    operation_id = "organizations_add_member",
    tag = "organizations",
    params(("slug" = String, Path, description = "Organization slug")),
    request_body = NewMember,
    responses(
        (status = 201, description = "Added", body = MemberOut),
        (status = 409, description = "Already a member", body = super::problem::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn add_member(
    state: web::Data<FrontdeskState>,
    api: ApiActor,
    slug: web::Path<String>,
    body: super::problem::Body,
) -> ApiResult {
    let slug = slug.into_inner();
    let NewMember { user_id, role } = super::problem::object(body)?;
    let member = state
        .db(move |conn| {
            let actor = &api.actor;
            let org = visible(conn, actor, &slug)?;
            organizations::add_member(conn, actor, org.id, user_id, role.into())?;
            member_of(conn, org.id, user_id).map_err(WebError::from)
        })
        .await?;
    Ok(HttpResponse::Created().json(member))
}

fn member_of(conn: &mut DbConnection, org: i64, user_id: i64) -> Result<MemberOut, CoreError> {
    organizations::members(conn, org)?
        .into_iter()
        .find(|(m, _)| m.user_id == user_id)
        .map(|(m, email)| MemberOut {
            user_id: m.user_id,
            email,
            role: m.role,
            created_at: utc(m.created_at),
        })
        .ok_or(CoreError::NotFound("membership"))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberPatch {
    pub role: Role,
}

/// `PATCH /organizations/{slug}/members/{user_id}`: changes the role.
#[utoipa::path(
    patch,
    path = "/organizations/{slug}/members/{user_id}",
    operation_id = "organizations_change_member",
    tag = "organizations",
    params(
        ("slug" = String, Path, description = "Organization slug"),
        ("user_id" = i64, Path, description = "User id"),
    ),
    request_body = MemberPatch,
    responses(
        (status = 200, description = "The membership", body = MemberOut),
        (status = 409, description = "The last owner cannot be demoted", body = super::problem::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn change_member(
    state: web::Data<FrontdeskState>,
    api: ApiActor,
    path: web::Path<(String, i64)>,
    body: super::problem::Body,
) -> ApiResult {
    let (slug, user_id) = path.into_inner();
    let MemberPatch { role } = super::problem::object(body)?;
    let member = state
        .db(move |conn| {
            let org = visible(conn, &api.actor, &slug)?;
            organizations::change_role(conn, &api.actor, org.id, user_id, role.into())?;
            member_of(conn, org.id, user_id)
        })
        .await?;
    Ok(HttpResponse::Ok().json(member))
}

/// `DELETE /organizations/{slug}/members/{user_id}`: the user stays.
#[utoipa::path(
    delete,
    path = "/organizations/{slug}/members/{user_id}",
    operation_id = "organizations_remove_member",
    tag = "organizations",
    params(
        ("slug" = String, Path, description = "Organization slug"),
        ("user_id" = i64, Path, description = "User id"),
    ),
    responses(
        (status = 204, description = "Removed"),
        (status = 409, description = "The last owner cannot be removed", body = super::problem::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn remove_member(
    state: web::Data<FrontdeskState>,
    api: ApiActor,
    path: web::Path<(String, i64)>,
) -> ApiResult {
    let (slug, user_id) = path.into_inner();
    state
        .db(move |conn| {
            let org = visible(conn, &api.actor, &slug)?;
            organizations::remove_member(conn, &api.actor, org.id, user_id)
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[allow(dead_code)]
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OrgUsersParams {
    /// Words matched against email, names and profile fields.
    #[param(max_length = 200, pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")]
    search: Option<String>,
    /// Only users who signed in on this service (its slug or id).
    #[param(max_length = 100, pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")]
    service_id: Option<String>,
    /// Only users holding this licence here (directly or through a group):
    /// one of the host's declared licence keys.
    #[param(max_length = 64, pattern = r"^[a-z0-9._-]{1,64}$")]
    licence: Option<String>,
    /// Only members of this group of the organization (its id; none for a
    /// group of another organization).
    #[param(minimum = 1)]
    group: Option<i64>,
    #[param(minimum = 1, maximum = 1000000, default = 1)]
    page: Option<i64>,
    #[param(minimum = 1, maximum = 100, default = 50)]
    limit: Option<i64>,
}

/// `GET /organizations/{slug}/users`: the organization's members as users.
#[utoipa::path(
    get,
    path = "/organizations/{slug}/users",
    operation_id = "organizations_users_list",
    tag = "organization users",
    params(("slug" = String, Path, description = "Organization slug"), OrgUsersParams),
    responses((status = 200, description = "A page of users", body = UserList))
)]
pub async fn users_list(
    req: HttpRequest,
    state: web::Data<FrontdeskState>,
    api: ApiActor,
    slug: web::Path<String>,
) -> ApiResult {
    let mut p = Params::parse(
        req.query_string(),
        &["search", "service_id", "licence", "group", "page", "limit"],
    );
    let paging = p.paging();
    let search = p.text("search", 200);
    let service = p.text("service_id", 100);
    // One of the declared keys, like every choice of the API: an empty value
    // is none of them (as on `/users`), not "any".
    let keys: Vec<&str> = state
        .settings()
        .licences
        .iter()
        .map(|l| l.key.as_str())
        .collect();
    let licence = p.choice(
        "licence",
        |v| keys.iter().find(|k| **k == v).map(|k| (*k).to_owned()),
        &keys,
    );
    let group = p.int("group", 1, i64::MAX);
    p.finish()?;
    let slug = slug.into_inner();
    let page = state
        .db(move |conn| {
            let org = visible(conn, &api.actor, &slug)?;
            let service = super::users::service_filter(conn, service.as_deref())?;
            let page = UserQuery {
                search,
                service,
                licence,
                group,
                organization: Some(org.id),
                page: paging.page,
                limit: paging.limit,
                ..UserQuery::default()
            }
            .run(conn, &api.actor)?;
            let ids: Vec<i64> = page.items.iter().map(|u| u.id).collect();
            let mfa = frontdesk_core::mfa::enabled_among(conn, &ids)?;
            let services = frontdesk_core::services::slugs_among(conn, &ids)?;
            let licences = frontdesk_core::licences::effective_of_users(conn, Some(org.id), &ids)?;
            let groups = frontdesk_core::groups::of_users(conn, Some(org.id), &ids)?;
            Ok::<_, WebError>(
                UserList::from_page(&page, &mfa)
                    .with_services(services)
                    .with_licences(licences)
                    .with_groups(groups),
            )
        })
        .await?;
    Ok(HttpResponse::Ok().json(page))
}

/// A member of the organization the actor may do `action` to; anyone else
/// (another organization's user included) is not found.
fn member_for(
    conn: &mut DbConnection,
    actor: &Actor,
    slug: &str,
    user_id: i64,
    action: Action,
) -> Result<users::User, CoreError> {
    let org = visible(conn, actor, slug)?;
    let is_member = organizations::roles_of(conn, user_id)?
        .iter()
        .any(|(o, _)| *o == org.id);
    if !is_member {
        return Err(CoreError::NotFound("user"));
    }
    users::get_for(conn, actor, user_id, action)
}

/// `GET /organizations/{slug}/users/{id}`.
#[utoipa::path(
    get,
    path = "/organizations/{slug}/users/{id}",
    operation_id = "organizations_user_get",
    tag = "organization users",
    params(
        ("slug" = String, Path, description = "Organization slug"),
        ("id" = i64, Path, description = "User id"),
    ),
    responses((status = 200, description = "The user", body = UserDetail))
)]
pub async fn user_get(
    state: web::Data<FrontdeskState>,
    api: ApiActor,
    path: web::Path<(String, i64)>,
) -> ApiResult {
    let (slug, id) = path.into_inner();
    let config = state.settings().auth.sessions;
    let detail = state
        .db(move |conn| {
            let user = member_for(conn, &api.actor, &slug, id, Action::View)?;
            detail_of(conn, &api.actor, &user, &config)
        })
        .await?;
    Ok(HttpResponse::Ok().json(detail))
}

/// `DELETE /organizations/{slug}/users/{id}/sessions`: ends all their sessions.
#[utoipa::path(
    delete,
    path = "/organizations/{slug}/users/{id}/sessions",
    operation_id = "organizations_user_revoke_sessions",
    tag = "organization users",
    params(
        ("slug" = String, Path, description = "Organization slug"),
        ("id" = i64, Path, description = "User id"),
    ),
    responses((status = 200, description = "How many sessions ended", body = SessionsRevoked))
)]
pub async fn user_revoke_sessions(
    state: web::Data<FrontdeskState>,
    api: ApiActor,
    path: web::Path<(String, i64)>,
) -> ApiResult {
    let (slug, id) = path.into_inner();
    let n = state
        .db(move |conn| {
            member_for(conn, &api.actor, &slug, id, Action::View)?;
            sessions::revoke_all_by_admin(conn, &api.actor, id)
        })
        .await?;
    Ok(HttpResponse::Ok().json(SessionsRevoked::new(n)))
}
