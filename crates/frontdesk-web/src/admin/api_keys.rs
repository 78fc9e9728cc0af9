//! API keys: create one (its secret is shown once, on the answer to the POST,
//! never stored or redirected with), list, revoke.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use frontdesk_core::api_keys::{self, KeyRole};
use frontdesk_core::{organizations, CoreError, OrgRole, StaffRole};
use serde::Serialize;
use tera::Context;

use super::{finish, render_status, show_opt, show_time, verify, Admin, Params, State};
use crate::error::WebError;

#[derive(Serialize)]
struct Row {
    id: i64,
    name: String,
    prefix: String,
    scope: String,
    role: String,
    created_at: String,
    last_used_at: String,
    revoked: bool,
}

async fn show(
    req: &HttpRequest,
    state: &State,
    admin: &Admin,
    status: StatusCode,
    new_key: Option<String>,
) -> Result<HttpResponse, WebError> {
    let actor = admin.actor.clone();
    let (keys, orgs) = state
        .db(move |conn| {
            let keys = api_keys::list(conn, &actor)?;
            let orgs = organizations::list(conn, &actor)?;
            Ok::<_, CoreError>((keys, orgs))
        })
        .await?;
    let names: std::collections::HashMap<i64, String> =
        orgs.iter().map(|o| (o.id, o.name.clone())).collect();
    let rows: Vec<Row> = keys
        .into_iter()
        .map(|k| Row {
            scope: k
                .organization_id
                .map(|o| names.get(&o).cloned().unwrap_or_else(|| format!("#{o}")))
                .unwrap_or_else(|| "whole site".into()),
            id: k.id,
            name: k.name,
            prefix: k.prefix,
            role: k.role,
            created_at: show_time(k.created_at),
            last_used_at: show_opt(k.last_used_at),
            revoked: k.revoked_at.is_some(),
        })
        .collect();
    let mut ctx = Context::new();
    ctx.insert("rows", &rows);
    ctx.insert("new_key", &new_key);
    ctx.insert(
        "organizations",
        &orgs
            .iter()
            .map(|o| (o.id, o.name.clone()))
            .collect::<Vec<_>>(),
    );
    ctx.insert(
        "may_site_keys",
        &(admin.actor.staff_role == Some(StaffRole::Owner)),
    );
    render_status(
        req,
        state,
        admin,
        "admin/api_keys.html",
        "api_keys",
        status,
        &mut ctx,
    )
}

pub async fn list(req: HttpRequest, state: State, admin: Admin) -> Result<HttpResponse, WebError> {
    show(&req, &state, &admin, StatusCode::OK, None).await
}

fn parse_role(form: &Params) -> Result<KeyRole, CoreError> {
    let bad = |reason: &str| CoreError::Invalid {
        field: "role",
        reason: reason.into(),
    };
    let role = form.get("role").unwrap_or("");
    match form.get("organization") {
        None | Some("site") => StaffRole::parse(role)
            .map(KeyRole::Staff)
            .ok_or_else(|| bad("a site-wide key's role must be viewer, admin or owner")),
        Some(o) => {
            let org = o.parse::<i64>().map_err(|_| bad("unknown organization"))?;
            OrgRole::parse(role)
                .map(|r| KeyRole::Org(org, r))
                .ok_or_else(|| bad("an organization key's role must be member, admin or owner"))
        }
    }
}

pub async fn create(
    req: HttpRequest,
    state: State,
    admin: Admin,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let form = Params::form(&body)?;
    verify(&req, &state, &form)?;
    let actor = admin.actor.clone();
    let name = form.text("name");
    let role = parse_role(&form);
    let result = state
        .db(move |conn| {
            // Only those who may see the keys page may make a key: the secret is
            // shown there, once.
            api_keys::list(conn, &actor)?;
            api_keys::create(conn, &actor, &name, role?)
        })
        .await;
    match result {
        // The secret goes out in this answer only.
        Ok((_, secret)) => {
            show(
                &req,
                &state,
                &admin,
                StatusCode::OK,
                Some(secret.expose().to_owned()),
            )
            .await
        }
        Err(e) => {
            let to = format!("{}/api-keys", state.settings().admin_prefix);
            finish(&state, Err::<(), _>(e), &to, |_| String::new())
        }
    }
}

pub async fn revoke(
    req: HttpRequest,
    state: State,
    admin: Admin,
    path: web::Path<i64>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let id = path.into_inner();
    let form = Params::form(&body)?;
    verify(&req, &state, &form)?;
    let actor = admin.actor.clone();
    let result = state
        .db(move |conn| api_keys::revoke(conn, &actor, id))
        .await;
    let to = format!("{}/api-keys", state.settings().admin_prefix);
    finish(&state, result, &to, |_| "Key revoked.".into())
}
