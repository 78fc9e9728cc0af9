//! Tags on the user.

use actix_web::{web, HttpRequest, HttpResponse};
use frontdesk_core::{tags, CoreError};

use super::change;
use crate::admin::{Admin, State};
use crate::error::WebError;

pub async fn add_tag(
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
            let tag = match (f.get("tag"), f.get("new_tag")) {
                (_, Some(name)) => match tags::get_by_name(conn, name)? {
                    Some(t) => t,
                    None => tags::create(conn, actor, name)?,
                },
                (Some(t), None) => {
                    let tid = t.parse::<i64>().map_err(|_| CoreError::NotFound("tag"))?;
                    tags::list(conn)?
                        .into_iter()
                        .find(|x| x.id == tid)
                        .ok_or(CoreError::NotFound("tag"))?
                }
                (None, None) => {
                    return Err(CoreError::Invalid {
                        field: "tag",
                        reason: "choose or name a tag".into(),
                    })
                }
            };
            tags::assign(conn, actor, id, tag.id)?;
            Ok(tag.name)
        },
        |name| format!("Tagged {name}."),
    )
    .await
}

pub async fn remove_tag(
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
            let tag =
                f.get("tag")
                    .and_then(|t| t.parse::<i64>().ok())
                    .ok_or(CoreError::Invalid {
                        field: "tag",
                        reason: "choose a tag".into(),
                    })?;
            tags::unassign(conn, actor, id, tag)
        },
        |_| "Tag removed.".into(),
    )
    .await
}
