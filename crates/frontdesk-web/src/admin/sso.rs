//! The user page's "Single sign-on" section: the user's linked identities
//! (unlink, audited) and the exemption from an organization's "require
//! SSO" (password sign-in still allowed, audited).

use actix_web::{web, HttpRequest, HttpResponse};
use frontdesk_core::sso;
use serde_json::{json, Value};

use super::{finish, show_opt, show_time, verify, Admin, Params, State};
use crate::error::WebError;

/// The section's context.
pub async fn section(state: &State, user_id: i64) -> Result<Value, WebError> {
    let (ids, exempt) = state
        .db(move |conn| {
            Ok::<_, frontdesk_core::CoreError>((
                sso::identities(conn, user_id)?,
                sso::is_exempt(conn, user_id)?,
            ))
        })
        .await?;
    Ok(json!({
        "exempt": exempt,
        "identities": ids.iter().map(|i| json!({
            "id": i.id,
            "provider": i.provider,
            "provider_user_id": i.provider_user_id,
            "email": i.email.clone().unwrap_or_default(),
            "linked_at": show_time(i.linked_at),
            "last_used_at": show_opt(i.last_used_at),
        })).collect::<Vec<_>>(),
    }))
}

/// `POST <admin>/users/{id}/identities/{identity}/unlink`.
pub async fn unlink(
    req: HttpRequest,
    state: State,
    admin: Admin,
    path: web::Path<(i64, i64)>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let (id, identity) = path.into_inner();
    let form = Params::form(&body)?;
    verify(&req, &state, &form)?;
    let actor = admin.actor.clone();
    let to = format!("{}/users/{id}", state.settings().admin_prefix);
    let result = state
        .db(move |conn| sso::unlink(conn, &actor, id, identity))
        .await;
    finish(&state, result, &to, |_| "Identity unlinked.".to_owned())
}

/// `POST <admin>/users/{id}/sso-exemption` with `exempt` = 1 or 0.
pub async fn exemption(
    req: HttpRequest,
    state: State,
    admin: Admin,
    path: web::Path<i64>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let id = path.into_inner();
    let form = Params::form(&body)?;
    verify(&req, &state, &form)?;
    let exempt = form.text("exempt") == "1";
    let actor = admin.actor.clone();
    let to = format!("{}/users/{id}", state.settings().admin_prefix);
    let result = state
        .db(move |conn| sso::set_exempt(conn, &actor, id, exempt))
        .await;
    finish(&state, result, &to, |_| {
        if exempt {
            "Password sign-in allowed despite required single sign-on.".to_owned()
        } else {
            "Password sign-in follows the organization's single sign-on rule again.".to_owned()
        }
    })
}

/// The organization page's "Single sign-on" section.
pub async fn org_section(state: &State, admin: &Admin, org: i64) -> Result<Value, WebError> {
    let found = state
        .db(move |conn| sso::for_organization(conn, org))
        .await?;
    let may_configure = frontdesk_core::authz::can(
        &admin.actor,
        frontdesk_core::Action::GrantOrgRole(frontdesk_core::OrgRole::Owner),
        &frontdesk_core::Target::Organization(org),
    );
    Ok(json!({
        "redirect_uri": state.sso_redirect_uri(),
        "may_configure": may_configure,
        "configured": found.is_some(),
        "issuer": found.as_ref().map(|c| c.provider.issuer.clone()).unwrap_or_default(),
        "client_id": found.as_ref().map(|c| c.provider.client_id.clone()).unwrap_or_default(),
        "domains": found.as_ref().map(|c| c.domains.join(", ")).unwrap_or_default(),
        "default_role": found.as_ref().map(|c| c.provider.default_role.clone()).unwrap_or_else(|| "member".into()),
        "require_sso": found.as_ref().is_some_and(|c| c.provider.require_sso),
        "trust_idp_mfa": found.as_ref().is_some_and(|c| c.provider.trust_idp_mfa),
    }))
}

/// `POST <admin>/organizations/{id}/identity-provider`: saved once the
/// issuer's discovery document was fetched and checked.
pub async fn save_for_org(
    req: HttpRequest,
    state: State,
    admin: Admin,
    path: web::Path<i64>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let org = path.into_inner();
    let form = Params::form(&body)?;
    verify(&req, &state, &form)?;
    let to = format!("{}/organizations/{org}#sso", state.settings().admin_prefix);
    let secret = form.text("client_secret");
    let input = sso::ProviderInput {
        issuer: form.text("issuer"),
        client_id: form.text("client_id"),
        client_secret: (!secret.trim().is_empty()).then_some(secret),
        domains: form
            .text("domains")
            .split([',', ' ', '\n'])
            .filter(|d| !d.trim().is_empty())
            .map(|d| d.trim().to_owned())
            .collect(),
        default_role: frontdesk_core::OrgRole::parse(&form.text("default_role")),
        require_sso: form.text("require_sso") == "1",
        trust_idp_mfa: form.text("trust_idp_mfa") == "1",
        allow_loopback_http: !state.secure_cookies(),
    };
    let actor = admin.actor.clone();
    let Some(keys) = state.sso_keys().cloned() else {
        let e: Result<(), WebError> = Err(frontdesk_core::CoreError::Invalid {
            field: "client_secret",
            reason: "cannot be stored: the host has no secret_key configured".into(),
        }
        .into());
        return finish(&state, e, &to, |_| String::new());
    };
    let checked = sso::check_input(&actor, org, &input).map_err(WebError::from);
    let result = match checked {
        Err(e) => Err(e),
        Ok(checked) => {
            let issuer = checked.issuer.clone();
            let found = crate::request_id::block(move || sso::oidc::discover(&issuer))
                .await
                .map_err(WebError::internal)?;
            match found {
                Err(e) => Err(frontdesk_core::CoreError::Invalid {
                    field: "issuer",
                    reason: e.to_string(),
                }
                .into()),
                Ok(()) => {
                    state
                        .db(move |conn| sso::save(conn, &actor, &keys, org, &input))
                        .await
                }
            }
        }
    };
    finish(&state, result, &to, |_| {
        "Identity provider saved.".to_owned()
    })
}

/// `POST <admin>/organizations/{id}/identity-provider/remove`.
pub async fn remove_for_org(
    req: HttpRequest,
    state: State,
    admin: Admin,
    path: web::Path<i64>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let org = path.into_inner();
    let form = Params::form(&body)?;
    verify(&req, &state, &form)?;
    let to = format!("{}/organizations/{org}", state.settings().admin_prefix);
    let actor = admin.actor.clone();
    let result = state.db(move |conn| sso::remove(conn, &actor, org)).await;
    finish(&state, result, &to, |_| {
        "Identity provider removed; the identities linked through it were unlinked.".to_owned()
    })
}
