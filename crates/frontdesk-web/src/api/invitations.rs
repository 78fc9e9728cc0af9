//! `/invitations`: invite an address into an organization (the mail goes
//! through the outbox), list with delivery state, resend with a new link,
//! cancel. The link's secret is never in an answer: it goes by mail only.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use frontdesk_core::invitations::{
    self, DeliveryState, Invitation, InvitationError, InvitationFilter, InvitationStatus,
    NewInvitation,
};
use frontdesk_core::{organizations, CoreError, DbConnection, OrgRole};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::ApiActor;
use super::params::{Pagination, Params};
use super::problem::{check_text, ApiError, ApiResult, Body};
use super::utc;
use crate::error::{FieldError, WebError};
use crate::state::FrontdeskState;

impl From<InvitationError> for ApiError {
    fn from(e: InvitationError) -> Self {
        match e {
            InvitationError::Core(c) => ApiError::from(c),
            InvitationError::AlreadyPending { .. } | InvitationError::NotPending(_) => {
                ApiError::from(WebError::new(
                    StatusCode::CONFLICT,
                    "Conflict",
                    e.to_string(),
                ))
            }
            InvitationError::InvalidLink(_) => ApiError::from(WebError::not_found()),
            InvitationError::SignInRequired | InvitationError::WrongAccount => ApiError::from(
                WebError::new(StatusCode::CONFLICT, "Conflict", e.to_string()),
            ),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryOut {
    /// `queued`, `sending`, `sent` or `failed`.
    pub status: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub next_attempt_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

impl From<&DeliveryState> for DeliveryOut {
    fn from(d: &DeliveryState) -> Self {
        DeliveryOut {
            status: d.status.clone(),
            attempts: d.attempts,
            last_error: d.last_error.clone(),
            next_attempt_at: utc(d.next_attempt_at),
            sent_at: d.sent_at.map(utc),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InvitationOut {
    pub id: i64,
    pub organization_id: i64,
    pub organization_slug: String,
    pub organization_name: String,
    pub email: String,
    #[schema(example = "member")]
    pub role: String,
    pub message: Option<String>,
    /// The invitee's names as given when inviting (null when none was).
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    /// As of now: a pending invitation past its expiry is `expired`.
    #[schema(example = "pending")]
    pub status: String,
    pub expires_at: DateTime<Utc>,
    pub invited_by: Option<i64>,
    pub send_count: i32,
    pub last_sent_at: Option<DateTime<Utc>>,
    pub accepted_user_id: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The latest mail of this invitation (in lists).
    pub delivery: Option<DeliveryOut>,
    /// Groups of the organization the invitee joins on accepting.
    pub groups: Vec<super::users::GroupRef>,
}

fn out(
    inv: &Invitation,
    slug: &str,
    name: &str,
    delivery: Option<&DeliveryState>,
    groups: Vec<(i64, String)>,
) -> InvitationOut {
    InvitationOut {
        id: inv.id,
        organization_id: inv.organization_id,
        organization_slug: slug.to_owned(),
        organization_name: name.to_owned(),
        email: inv.email.clone(),
        role: inv.role.clone(),
        message: inv.message.clone(),
        first_name: inv.first_name.clone(),
        last_name: inv.last_name.clone(),
        status: inv
            .status_at(frontdesk_core::time::now())
            .as_str()
            .to_owned(),
        expires_at: utc(inv.expires_at),
        invited_by: inv.invited_by,
        send_count: inv.send_count,
        last_sent_at: inv.last_sent_at.map(utc),
        accepted_user_id: inv.accepted_user_id,
        created_at: utc(inv.created_at),
        updated_at: utc(inv.updated_at),
        delivery: delivery.map(DeliveryOut::from),
        groups: groups
            .into_iter()
            .map(|(id, name)| super::users::GroupRef { id, name })
            .collect(),
    }
}

fn with_org(conn: &mut DbConnection, inv: &Invitation) -> Result<InvitationOut, CoreError> {
    let org = organizations::get(conn, inv.organization_id)?;
    let groups = invitations::groups_of(conn, inv.id)?;
    Ok(out(inv, &org.slug, &org.name, None, groups))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InvitationList {
    pub invitations: Vec<InvitationOut>,
    pub pagination: Pagination,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum InvitationStatusParam {
    Pending,
    Accepted,
    Declined,
    Expired,
    Cancelled,
}

#[allow(dead_code)]
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InvitationParams {
    /// Organization slug (none match an unknown one).
    #[param(max_length = 100, pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")]
    organization: Option<String>,
    #[param(inline)]
    status: Option<InvitationStatusParam>,
    /// Part of the invited address.
    #[param(max_length = 254, pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")]
    email: Option<String>,
    #[param(minimum = 1, maximum = 1000000, default = 1)]
    page: Option<i64>,
    #[param(minimum = 1, maximum = 100, default = 50)]
    limit: Option<i64>,
}

/// `GET /invitations`: newest first, with the delivery state of their mail.
#[utoipa::path(
    get,
    path = "/invitations",
    operation_id = "invitations_list",
    tag = "invitations",
    params(InvitationParams),
    responses((status = 200, description = "A page of invitations", body = InvitationList))
)]
pub async fn list(req: HttpRequest, state: web::Data<FrontdeskState>, api: ApiActor) -> ApiResult {
    let mut p = Params::parse(
        req.query_string(),
        &["organization", "status", "email", "page", "limit"],
    );
    let paging = p.paging();
    let organization = p.text("organization", 100);
    let status = p.choice(
        "status",
        |v| {
            InvitationStatus::ALL
                .iter()
                .copied()
                .find(|s| s.as_str() == v)
        },
        &["pending", "accepted", "declined", "expired", "cancelled"],
    );
    let email = p.text("email", 254);
    p.finish()?;
    let (items, total, groups) = state
        .db(move |conn| -> Result<_, WebError> {
            let actor = &api.actor;
            let organization_id = match organization {
                None => None,
                Some(slug) => match super::organizations::visible(conn, actor, &slug) {
                    Ok(org) => Some(org.id),
                    Err(CoreError::NotFound(_)) => return Ok((Vec::new(), 0, Default::default())),
                    Err(e) => return Err(e.into()),
                },
            };
            let filter = InvitationFilter {
                organization_id,
                status,
                email,
            };
            let (items, total) = invitations::list(conn, actor, &filter, paging.page, paging.limit)
                .map_err(|e| ApiError::from(e).0)?;
            let ids: Vec<i64> = items.iter().map(|i| i.invitation.id).collect();
            let groups = invitations::groups_of_many(conn, &ids)?;
            Ok((items, total, groups))
        })
        .await?;
    Ok(HttpResponse::Ok().json(InvitationList {
        invitations: items
            .iter()
            .map(|i| {
                out(
                    &i.invitation,
                    &i.organization_slug,
                    &i.organization_name,
                    i.delivery.as_ref(),
                    groups.get(&i.invitation.id).cloned().unwrap_or_default(),
                )
            })
            .collect(),
        pagination: paging.out(total),
    }))
}

#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum InviteRole {
    Member,
    Admin,
    Owner,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewInvitationBody {
    /// Slug of the organization to join.
    #[schema(
        example = "acme",
        max_length = 100,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*$"
    )]
    pub organization: String,
    #[schema(example = "ada@example.com", max_length = 254, format = Email)]
    pub email: String,
    pub role: InviteRole,
    /// A personal note shown in the mail (line breaks kept).
    #[schema(max_length = 1000, pattern = r"^[^\x00-\x09\x0B-\x1F\x7F-\x9F]*$")]
    #[serde(default)]
    pub message: Option<String>,
    /// The invitee's first name, filled in on their invitation page.
    #[schema(
        example = "Ada",
        max_length = 100,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*$"
    )]
    #[serde(default)]
    pub first_name: Option<String>,
    /// The invitee's last name, filled in on their invitation page.
    #[schema(
        example = "Lovelace",
        max_length = 100,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*$"
    )]
    #[serde(default)]
    pub last_name: Option<String>,
    /// Ids of groups of the organization the invitee joins on accepting.
    #[serde(default)]
    #[schema(max_items = 50)]
    pub groups: Vec<i64>,
}

/// `POST /invitations`: queues the invitation mail in the same transaction.
#[utoipa::path(
    post,
    path = "/invitations",
    operation_id = "invitations_create",
    tag = "invitations",
    request_body = NewInvitationBody,
    responses(
        (status = 201, description = "Invited; the mail is queued", body = InvitationOut),
        (status = 404, description = "No such organization, or one the caller may not see", body = super::problem::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already a member, or an invitation is pending", body = super::problem::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create(state: web::Data<FrontdeskState>, api: ApiActor, body: Body) -> ApiResult {
    let body: NewInvitationBody = super::problem::object(body)?;
    check_text(&[
        ("organization", Some(&body.organization), 100),
        ("email", Some(&body.email), 254),
        ("first_name", body.first_name.as_deref(), 100),
        ("last_name", body.last_name.as_deref(), 100),
    ])?;
    if body
        .message
        .as_ref()
        .is_some_and(|m| m.chars().count() > invitations::MAX_MESSAGE)
    {
        return Err(WebError::validation(vec![FieldError::new(
            "message",
            format!("must be at most {} characters", invitations::MAX_MESSAGE),
        )])
        .into());
    }
    let st = state.get_ref().clone();
    let created = state
        .db(move |conn| -> Result<InvitationOut, WebError> {
            let actor = &api.actor;
            // An organization the caller cannot see is not found, like a missing one.
            let org = super::organizations::visible(conn, actor, &body.organization)?;
            let role = match body.role {
                InviteRole::Member => OrgRole::Member,
                InviteRole::Admin => OrgRole::Admin,
                InviteRole::Owner => OrgRole::Owner,
            };
            let issued = invitations::create(
                conn,
                actor,
                st.invitation_settings(),
                st.mail_templates(),
                &NewInvitation {
                    organization_id: org.id,
                    email: body.email,
                    role,
                    message: body.message,
                    first_name: body.first_name,
                    last_name: body.last_name,
                    groups: body.groups,
                },
            )
            .map_err(|e| ApiError::from(e).0)?;
            let groups = invitations::groups_of(conn, issued.invitation.id)?;
            Ok(out(&issued.invitation, &org.slug, &org.name, None, groups))
        })
        .await?;
    state.wake_mailer();
    Ok(HttpResponse::Created().json(created))
}

/// `GET /invitations/{id}`.
#[utoipa::path(
    get,
    path = "/invitations/{id}",
    operation_id = "invitations_get",
    tag = "invitations",
    params(("id" = i64, Path, description = "Invitation id")),
    responses((status = 200, description = "The invitation", body = InvitationOut))
)]
pub async fn get(state: web::Data<FrontdeskState>, api: ApiActor, id: web::Path<i64>) -> ApiResult {
    let id = id.into_inner();
    let inv = state
        .db(move |conn| -> Result<InvitationOut, WebError> {
            let inv =
                invitations::get_for(conn, &api.actor, id).map_err(|e| ApiError::from(e).0)?;
            Ok(with_org(conn, &inv)?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(inv))
}

/// `POST /invitations/{id}/resend`: a new link (the old one stops working)
/// and a new expiry; works on pending and expired invitations.
#[utoipa::path(
    post,
    path = "/invitations/{id}/resend",
    operation_id = "invitations_resend",
    tag = "invitations",
    params(("id" = i64, Path, description = "Invitation id")),
    responses(
        (status = 200, description = "Sent again", body = InvitationOut),
        (status = 409, description = "Accepted, declined or cancelled already", body = super::problem::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn resend(
    state: web::Data<FrontdeskState>,
    api: ApiActor,
    id: web::Path<i64>,
) -> ApiResult {
    let id = id.into_inner();
    let st = state.get_ref().clone();
    let inv = state
        .db(move |conn| -> Result<InvitationOut, WebError> {
            let issued = invitations::resend(
                conn,
                &api.actor,
                st.invitation_settings(),
                st.mail_templates(),
                id,
            )
            .map_err(|e| ApiError::from(e).0)?;
            Ok(with_org(conn, &issued.invitation)?)
        })
        .await?;
    state.wake_mailer();
    Ok(HttpResponse::Ok().json(inv))
}

/// `POST /invitations/{id}/cancel`: the link stops working; unsent mail is dropped.
#[utoipa::path(
    post,
    path = "/invitations/{id}/cancel",
    operation_id = "invitations_cancel",
    tag = "invitations",
    params(("id" = i64, Path, description = "Invitation id")),
    responses(
        (status = 200, description = "Cancelled", body = InvitationOut),
        (status = 409, description = "No longer pending", body = super::problem::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn cancel(
    state: web::Data<FrontdeskState>,
    api: ApiActor,
    id: web::Path<i64>,
) -> ApiResult {
    let id = id.into_inner();
    let inv = state
        .db(move |conn| -> Result<InvitationOut, WebError> {
            let inv = invitations::cancel(conn, &api.actor, id).map_err(|e| ApiError::from(e).0)?;
            Ok(with_org(conn, &inv)?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(inv))
}
