//! The staff role and the organization roles.

use actix_web::{web, HttpRequest, HttpResponse};
use frontdesk_core::authz::Action;
use frontdesk_core::users::{self as core_users};
use frontdesk_core::{organizations, CoreError, OrgRole, StaffRole};

use super::change;
use crate::admin::{Admin, State};
use crate::error::WebError;

pub async fn staff_role(
    req: HttpRequest,
    state: State,
    admin: Admin,
    path: web::Path<i64>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let id = path.into_inner();
    change(
        &req,
        &state,
        &admin,
        id,
        &body,
        move |conn, actor, f| {
            let role = match f.get("role") {
                None | Some("none") => None,
                Some(r) => Some(StaffRole::parse(r).ok_or(CoreError::Invalid {
                    field: "role",
                    reason: "must be none, viewer, admin or owner".into(),
                })?),
            };
            core_users::set_staff_role(conn, actor, id, role)
        },
        |u| match u.staff_role {
            Some(r) => format!("Staff role set to {r}."),
            None => "Staff role removed.".into(),
        },
    )
    .await
}

pub async fn org_role(
    req: HttpRequest,
    state: State,
    admin: Admin,
    path: web::Path<i64>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let id = path.into_inner();
    change(
        &req,
        &state,
        &admin,
        id,
        &body,
        move |conn, actor, f| {
            let org = f
                .get("organization")
                .and_then(|o| o.parse::<i64>().ok())
                .ok_or(CoreError::Invalid {
                    field: "organization",
                    reason: "choose an organization".into(),
                })?;
            // A membership the actor cannot see is not there for them.
            core_users::get_for(conn, actor, id, Action::View)?;
            if actor.visible_orgs().is_some_and(|v| !v.contains(&org)) {
                return Err(CoreError::NotFound("membership"));
            }
            match f.get("role") {
                Some("remove") => {
                    organizations::remove_member(conn, actor, org, id)?;
                    Ok("Removed from the organization.".to_owned())
                }
                Some(r) => {
                    let role = OrgRole::parse(r).ok_or(CoreError::Invalid {
                        field: "role",
                        reason: "must be owner, admin, member or remove".into(),
                    })?;
                    organizations::change_role(conn, actor, org, id, role)?;
                    Ok(format!("Organization role set to {role}."))
                }
                None => Err(CoreError::Invalid {
                    field: "role",
                    reason: "choose a role".into(),
                }),
            }
        },
        |m| m,
    )
    .await
}
