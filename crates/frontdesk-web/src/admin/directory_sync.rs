//! An organization's directory-sync page: the SCIM URL to paste into the
//! directory, its tokens (made here, shown once, revoked here), what a
//! directory's delete does, and the directory's latest requests and failures.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use frontdesk_core::authz::{can, Action, Target};
use frontdesk_core::{organizations, scim_tokens, CoreError, OrgRole};
use serde::Serialize;
use tera::Context;

use super::{finish, render_status, show_opt, show_time, verify, Admin, Params, State};
use crate::error::WebError;

#[derive(Serialize)]
struct TokenRow {
    id: i64,
    name: String,
    prefix: String,
    created_at: String,
    last_used_at: String,
    revoked: bool,
}

#[derive(Serialize)]
struct RequestRow {
    at: String,
    method: String,
    path: String,
    status: i32,
    error: String,
}

fn page_url(state: &State, id: i64) -> String {
    format!(
        "{}/organizations/{id}/directory-sync",
        state.settings().admin_prefix
    )
}

async fn show(
    req: &HttpRequest,
    state: &State,
    admin: &Admin,
    id: i64,
    new_token: Option<String>,
) -> Result<HttpResponse, WebError> {
    if !can(&admin.actor, Action::View, &Target::Organization(id)) {
        return Err(WebError::not_found());
    }
    let actor = admin.actor.clone();
    let (org, tokens, recent, failures) = state
        .db(move |conn| {
            let org = organizations::get(conn, id)?;
            let tokens = scim_tokens::list(conn, &actor, id)?;
            let recent = scim_tokens::recent_requests(conn, &actor, id, false, 20)?;
            let failures = scim_tokens::recent_requests(conn, &actor, id, true, 20)?;
            Ok::<_, CoreError>((org, tokens, recent, failures))
        })
        .await?;
    let rows = |list: Vec<scim_tokens::ScimRequest>| -> Vec<RequestRow> {
        list.into_iter()
            .map(|r| RequestRow {
                at: show_time(r.created_at),
                method: r.method,
                path: r.path,
                status: r.status,
                error: r.error.unwrap_or_default(),
            })
            .collect()
    };
    let mut ctx = Context::new();
    ctx.insert("org_id", &org.id);
    ctx.insert("org_name", &org.name);
    ctx.insert("scim_delete", &org.scim_delete);
    ctx.insert(
        "scim_url",
        &crate::scim::base_url(state, crate::scim::DEFAULT_PREFIX),
    );
    ctx.insert("new_token", &new_token);
    ctx.insert(
        "tokens",
        &tokens
            .into_iter()
            .map(|t| TokenRow {
                id: t.id,
                name: t.name,
                prefix: t.prefix,
                created_at: show_time(t.created_at),
                last_used_at: show_opt(t.last_used_at),
                revoked: t.revoked_at.is_some(),
            })
            .collect::<Vec<_>>(),
    );
    ctx.insert("recent", &rows(recent));
    ctx.insert("failures", &rows(failures));
    ctx.insert(
        "can_manage",
        &can(
            &admin.actor,
            Action::GrantOrgRole(OrgRole::Admin),
            &Target::Organization(id),
        ),
    );
    render_status(
        req,
        state,
        admin,
        "admin/directory_sync.html",
        "organizations",
        StatusCode::OK,
        &mut ctx,
    )
}

pub async fn page(
    req: HttpRequest,
    state: State,
    admin: Admin,
    path: web::Path<i64>,
) -> Result<HttpResponse, WebError> {
    show(&req, &state, &admin, path.into_inner(), None).await
}

/// Makes a token and shows it this once, on the page itself.
pub async fn create_token(
    req: HttpRequest,
    state: State,
    admin: Admin,
    path: web::Path<i64>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let id = path.into_inner();
    let form = Params::form(&body)?;
    verify(&req, &state, &form)?;
    if !can(&admin.actor, Action::View, &Target::Organization(id)) {
        return Err(WebError::not_found());
    }
    let actor = admin.actor.clone();
    let name = form.text("name");
    let result = state
        .db(move |conn| scim_tokens::create(conn, &actor, id, &name))
        .await;
    match result {
        Ok((_, secret)) => show(&req, &state, &admin, id, Some(secret.expose().to_owned())).await,
        Err(e) => finish(&state, Err::<(), _>(e), &page_url(&state, id), |_| {
            String::new()
        }),
    }
}

pub async fn revoke_token(
    req: HttpRequest,
    state: State,
    admin: Admin,
    path: web::Path<(i64, i64)>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let (id, token) = path.into_inner();
    let form = Params::form(&body)?;
    verify(&req, &state, &form)?;
    if !can(&admin.actor, Action::View, &Target::Organization(id)) {
        return Err(WebError::not_found());
    }
    let actor = admin.actor.clone();
    let result = state
        .db(move |conn| scim_tokens::revoke(conn, &actor, id, token))
        .await;
    finish(&state, result, &page_url(&state, id), |_| {
        "Token revoked: the directory can no longer sync.".into()
    })
}

pub async fn set_delete_mode(
    req: HttpRequest,
    state: State,
    admin: Admin,
    path: web::Path<i64>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let id = path.into_inner();
    let form = Params::form(&body)?;
    verify(&req, &state, &form)?;
    if !can(&admin.actor, Action::View, &Target::Organization(id)) {
        return Err(WebError::not_found());
    }
    let actor = admin.actor.clone();
    let mode = form.text("scim_delete");
    let result = state
        .db(move |conn| scim_tokens::set_delete_mode(conn, &actor, id, &mode))
        .await;
    finish(&state, result, &page_url(&state, id), |_| "Saved.".into())
}
