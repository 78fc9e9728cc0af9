//! A member's direct licences, given or taken from the user page.

use actix_web::{web, HttpRequest, HttpResponse};
use frontdesk_core::authz::Action;
use frontdesk_core::users::{self as core_users};
use frontdesk_core::{licences, CoreError};

use super::change;
use crate::admin::{Admin, State};
use crate::error::WebError;

/// `organization`, `licence` and `action` (`assign` or `remove`).
pub async fn licence(
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
            core_users::get_for(conn, actor, id, Action::View)?;
            if actor.visible_orgs().is_some_and(|v| !v.contains(&org)) {
                return Err(CoreError::NotFound("membership"));
            }
            let key = f.get("licence").unwrap_or_default().to_owned();
            let name = licences::get_type(conn, &key)?.name;
            match f.get("action") {
                Some("remove") => {
                    licences::unassign_user(conn, actor, org, id, &key)?;
                    Ok(format!("Licence {name} removed."))
                }
                _ => {
                    licences::assign_user(conn, actor, org, id, &key)?;
                    Ok(format!("Licence {name} assigned."))
                }
            }
        },
        |m| m,
    )
    .await
}
