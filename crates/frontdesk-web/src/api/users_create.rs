//! `POST /users` and `POST /organizations/{slug}/users`: an admin or an API
//! key creates a user, who gets a mail to choose their password (saying which
//! organization they were added to, when one was given). Authorization is
//! the invitations' (`users::create`): an organization the caller cannot see
//! is not found, a role or staff role the caller may not grant is forbidden.
//! Verification from the admin side: `POST /users/{id}/verify-email` and
//! `POST /users/{id}/resend-verification` (and their organization-scoped forms).

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use frontdesk_core::users::create::{self as create_user, NewAccount};
use frontdesk_core::{email_verification, Action, CoreError, OrgRole, StaffRole};
use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::auth::ApiActor;
use super::invitations::InviteRole;
use super::problem::{check_text, ApiResult, Body};
use super::users::{detail_of, UserDetail};
use crate::admin::new_user::{created_error, welcome_mail};
use crate::error::{FieldError, WebError};
use crate::state::FrontdeskState;

#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NewStaffRole {
    Viewer,
    Admin,
    Owner,
}

/// A user to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUserBody {
    #[schema(example = "ada@example.com", max_length = 254, format = Email)]
    pub email: String,
    #[schema(
        example = "Ada",
        max_length = 100,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*$"
    )]
    #[serde(default)]
    pub first_name: String,
    #[schema(
        example = "Lovelace",
        max_length = 100,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*$"
    )]
    #[serde(default)]
    pub last_name: String,
    #[schema(max_length = 100, pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")]
    #[serde(default)]
    pub display_name: Option<String>,
    /// Host-defined profile fields (the declared ones are checked by type).
    #[schema(schema_with = super::openapi::profile_schema)]
    #[serde(default)]
    pub profile: Option<Map<String, Value>>,
    /// Slug of an organization the user joins (the organization-scoped form
    /// takes it from the path instead).
    #[schema(
        example = "acme",
        max_length = 100,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*$"
    )]
    #[serde(default)]
    pub organization: Option<String>,
    /// The role in that organization (default `member`).
    #[serde(default)]
    pub role: Option<InviteRole>,
    /// A staff role, for callers allowed to grant one.
    #[serde(default)]
    pub staff_role: Option<NewStaffRole>,
    /// Ids of groups of that organization the user joins.
    #[serde(default)]
    #[schema(max_items = 50)]
    pub groups: Vec<i64>,
}

/// The same body for `POST /organizations/{slug}/users`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMemberBody {
    #[schema(example = "ada@example.com", max_length = 254, format = Email)]
    pub email: String,
    #[schema(
        example = "Ada",
        max_length = 100,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*$"
    )]
    #[serde(default)]
    pub first_name: String,
    #[schema(
        example = "Lovelace",
        max_length = 100,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*$"
    )]
    #[serde(default)]
    pub last_name: String,
    #[schema(max_length = 100, pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")]
    #[serde(default)]
    pub display_name: Option<String>,
    #[schema(schema_with = super::openapi::profile_schema)]
    #[serde(default)]
    pub profile: Option<Map<String, Value>>,
    /// The role in the organization (default `member`).
    #[serde(default)]
    pub role: Option<InviteRole>,
    /// Ids of groups of the organization the user joins.
    #[serde(default)]
    #[schema(max_items = 50)]
    pub groups: Vec<i64>,
}

fn org_role(r: Option<InviteRole>) -> OrgRole {
    match r {
        None | Some(InviteRole::Member) => OrgRole::Member,
        Some(InviteRole::Admin) => OrgRole::Admin,
        Some(InviteRole::Owner) => OrgRole::Owner,
    }
}

fn staff_role(r: Option<NewStaffRole>) -> Option<StaffRole> {
    r.map(|r| match r {
        NewStaffRole::Viewer => StaffRole::Viewer,
        NewStaffRole::Admin => StaffRole::Admin,
        NewStaffRole::Owner => StaffRole::Owner,
    })
}

struct Request {
    slug: Option<String>,
    role: OrgRole,
    account: NewAccount,
}

async fn run(state: web::Data<FrontdeskState>, api: ApiActor, req: Request) -> ApiResult {
    check_text(&[
        ("email", Some(&req.account.email), 254),
        ("first_name", Some(&req.account.first_name), 100),
        ("last_name", Some(&req.account.last_name), 100),
        ("display_name", req.account.display_name.as_deref(), 100),
    ])?;
    if req.account.profile.len() > super::openapi::MAX_PROFILE_FIELDS {
        return Err(WebError::validation(vec![FieldError::new(
            "profile",
            format!("at most {} fields", super::openapi::MAX_PROFILE_FIELDS),
        )])
        .into());
    }
    let st = state.get_ref().clone();
    let config = state.settings().auth.sessions;
    let detail = state
        .db(move |conn| -> Result<UserDetail, WebError> {
            let actor = &api.actor;
            let mut account = req.account;
            if let Some(slug) = &req.slug {
                // An organization the caller cannot see is not found, like a missing one.
                let org = super::organizations::visible(conn, actor, slug)?;
                account.organization = Some((org.id, req.role));
            }
            let created = create_user::create(
                conn,
                actor,
                &st.settings().import.profile_fields,
                &account,
                st.settings().invitation_ttl,
                |w| welcome_mail(&st, w),
            )
            .map_err(created_error)?;
            Ok(detail_of(conn, actor, &created.user, &config)?)
        })
        .await?;
    state.wake_mailer();
    Ok(HttpResponse::Created().json(detail))
}

/// `POST /users`: creates a pending user and mails them a link to choose a
/// password.
#[utoipa::path(
    post,
    path = "/users",
    operation_id = "users_create",
    tag = "users",
    request_body = NewUserBody,
    responses(
        (status = 201, description = "Created; the set-password mail is queued", body = UserDetail),
        (status = 404, description = "No such organization, or one the caller may not see", body = super::problem::Problem, content_type = "application/problem+json"),
        (status = 409, description = "A user with this email exists already", body = super::problem::Problem, content_type = "application/problem+json"),
        (status = 422, description = "The organization does not allow the email's domain", body = super::problem::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create(state: web::Data<FrontdeskState>, api: ApiActor, body: Body) -> ApiResult {
    let body: NewUserBody = super::problem::object(body)?;
    // The path's slug is only looked up (an odd one is simply not found);
    // the body's must be text.
    check_text(&[("organization", body.organization.as_deref(), 100)])?;
    if body.role.is_some() && body.organization.is_none() {
        return Err(WebError::validation(vec![FieldError::new(
            "role",
            "give an organization for the role",
        )])
        .into());
    }
    let req = Request {
        slug: body.organization,
        role: org_role(body.role),
        account: NewAccount {
            email: body.email,
            first_name: body.first_name,
            last_name: body.last_name,
            display_name: body.display_name,
            profile: body.profile.unwrap_or_default(),
            organization: None,
            staff_role: staff_role(body.staff_role),
            groups: body.groups,
        },
    };
    run(state, api, req).await
}

/// `POST /organizations/{slug}/users`: creates a pending member of the
/// organization and mails them that they were added and must choose a password.
#[utoipa::path(
    post,
    path = "/organizations/{slug}/users",
    operation_id = "organizations_users_create",
    tag = "organization users",
    params(("slug" = String, Path, description = "Organization slug")),
    request_body = NewMemberBody,
    responses(
        (status = 201, description = "Created; the mail is queued", body = UserDetail),
        (status = 409, description = "A user with this email exists already", body = super::problem::Problem, content_type = "application/problem+json"),
        (status = 422, description = "The organization does not allow the email's domain", body = super::problem::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create_in_org(
    state: web::Data<FrontdeskState>,
    api: ApiActor,
    slug: web::Path<String>,
    body: Body,
) -> ApiResult {
    let body: NewMemberBody = super::problem::object(body)?;
    let req = Request {
        slug: Some(slug.into_inner()),
        role: org_role(body.role),
        account: NewAccount {
            email: body.email,
            first_name: body.first_name,
            last_name: body.last_name,
            display_name: body.display_name,
            profile: body.profile.unwrap_or_default(),
            organization: None,
            staff_role: None,
            groups: body.groups,
        },
    };
    run(state, api, req).await
}

/// Which verification change a request asks for.
#[derive(Clone, Copy)]
enum Verification {
    Mark,
    Resend,
}

async fn verification(
    state: web::Data<FrontdeskState>,
    api: ApiActor,
    slug: Option<String>,
    id: i64,
    what: Verification,
) -> ApiResult {
    let st = state.get_ref().clone();
    let config = state.settings().auth.sessions;
    let detail = state
        .db(move |conn| -> Result<UserDetail, WebError> {
            let actor = &api.actor;
            if let Some(slug) = &slug {
                // Only a member of an organization the caller can see.
                let org = super::organizations::visible(conn, actor, slug)?;
                let member = frontdesk_core::organizations::roles_of(conn, id)?
                    .iter()
                    .any(|(o, _)| *o == org.id);
                if !member {
                    return Err(WebError::not_found());
                }
                frontdesk_core::users::get_for(conn, actor, id, Action::View)?;
            }
            let user = match what {
                Verification::Mark => email_verification::mark_verified(conn, actor, id)?,
                Verification::Resend => {
                    match crate::admin::verification::resend(conn, &st, actor, id) {
                        Ok(()) => {}
                        // Told apart for clients: verified already is a
                        // conflict with the user's state, the cap a 429.
                        Err(CoreError::Invalid {
                            field: "user",
                            reason,
                        }) => {
                            let verified = frontdesk_core::users::get(conn, id)?.email_verified;
                            return Err(if verified {
                                WebError::new(StatusCode::CONFLICT, "Conflict", reason)
                            } else {
                                WebError::new(
                                    StatusCode::TOO_MANY_REQUESTS,
                                    "Too Many Requests",
                                    reason,
                                )
                            });
                        }
                        Err(e) => return Err(e.into()),
                    }
                    frontdesk_core::users::get(conn, id)?
                }
            };
            Ok(detail_of(conn, actor, &user, &config)?)
        })
        .await?;
    if matches!(what, Verification::Resend) {
        state.wake_mailer();
    }
    Ok(HttpResponse::Ok().json(detail))
}

/// `POST /users/{id}/verify-email`: marks the address verified (links still
/// out stop working).
#[utoipa::path(
    post,
    path = "/users/{id}/verify-email",
    operation_id = "users_verify_email",
    tag = "users",
    params(("id" = i64, Path, description = "User id")),
    responses((status = 200, description = "The user, verified", body = UserDetail))
)]
pub async fn verify_email(
    state: web::Data<FrontdeskState>,
    api: ApiActor,
    id: web::Path<i64>,
) -> ApiResult {
    verification(state, api, None, id.into_inner(), Verification::Mark).await
}

/// `POST /users/{id}/resend-verification`: a new verification link by mail
/// (earlier ones stop working); 409 when the address is verified already, 429
/// past the hourly cap.
#[utoipa::path(
    post,
    path = "/users/{id}/resend-verification",
    operation_id = "users_resend_verification",
    tag = "users",
    params(("id" = i64, Path, description = "User id")),
    responses(
        (status = 200, description = "The mail is queued", body = UserDetail),
        (status = 409, description = "The address is verified already", body = super::problem::Problem, content_type = "application/problem+json"),
        (status = 429, description = "Past the hourly cap of verification mails", body = super::problem::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn resend_verification(
    state: web::Data<FrontdeskState>,
    api: ApiActor,
    id: web::Path<i64>,
) -> ApiResult {
    verification(state, api, None, id.into_inner(), Verification::Resend).await
}

/// `POST /organizations/{slug}/users/{id}/verify-email`.
#[utoipa::path(
    post,
    path = "/organizations/{slug}/users/{id}/verify-email",
    operation_id = "organizations_user_verify_email",
    tag = "organization users",
    params(
        ("slug" = String, Path, description = "Organization slug"),
        ("id" = i64, Path, description = "User id"),
    ),
    responses((status = 200, description = "The user, verified", body = UserDetail))
)]
pub async fn org_verify_email(
    state: web::Data<FrontdeskState>,
    api: ApiActor,
    path: web::Path<(String, i64)>,
) -> ApiResult {
    let (slug, id) = path.into_inner();
    verification(state, api, Some(slug), id, Verification::Mark).await
}

/// `POST /organizations/{slug}/users/{id}/resend-verification`.
#[utoipa::path(
    post,
    path = "/organizations/{slug}/users/{id}/resend-verification",
    operation_id = "organizations_user_resend_verification",
    tag = "organization users",
    params(
        ("slug" = String, Path, description = "Organization slug"),
        ("id" = i64, Path, description = "User id"),
    ),
    responses(
        (status = 200, description = "The mail is queued", body = UserDetail),
        (status = 409, description = "The address is verified already", body = super::problem::Problem, content_type = "application/problem+json"),
        (status = 429, description = "Past the hourly cap of verification mails", body = super::problem::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn org_resend_verification(
    state: web::Data<FrontdeskState>,
    api: ApiActor,
    path: web::Path<(String, i64)>,
) -> ApiResult {
    let (slug, id) = path.into_inner();
    verification(state, api, Some(slug), id, Verification::Resend).await
}
