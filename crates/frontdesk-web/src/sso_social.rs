//! Host-wide social providers' pages: "Continue with {name}" on the login
//! page (`POST {prefix}/sso/social/{key}`), the signed-in user's "Linked
//! accounts" page (`GET {prefix}/linked-accounts`, link with
//! `POST …/linked-accounts/{key}/link`, unlink with
//! `POST …/linked-accounts/{id}/unlink`), and their half of the one callback
//! (`{prefix}/sso/callback`, which hands over states named `social:<key>`).
//!
//! A social identity signs in only the user it is linked to. It is linked
//! from the account page, by a user who proved the account by signing in;
//! never by the provider's email claim.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use frontdesk_core::auth::SignInError;
use frontdesk_core::login_attempts::Reason;
use frontdesk_core::sso::sign_in::{self, Pending};
use frontdesk_core::sso::social::{self, Linked, Provider};
use frontdesk_core::{sso, Actor, CoreError};
use serde::Deserialize;
use serde_json::json;

use crate::csrf;
use crate::current_user::{client_info, CurrentUser};
use crate::error::WebError;
use crate::login::{presented_session, render_login, safe_next};
use crate::sso::{answer, refused_with, state_cookie, state_removal, CallbackQuery};
use crate::state::FrontdeskState;

#[derive(Deserialize)]
pub struct StartForm {
    #[serde(default)]
    csrf_token: String,
    next: Option<String>,
}

fn failed(provider: &str) -> String {
    format!("Signing in with {provider} did not work. Try again.")
}

/// An account has the provider's email, but the identity is not linked.
fn link_required(provider: &str) -> String {
    format!(
        "An account with the email address of your {provider} account already exists. \
         Sign in to it (with its password), then link your {provider} account from the \
         \"Linked accounts\" page."
    )
}

fn provider(state: &FrontdeskState, key: &str) -> Result<Provider, WebError> {
    state
        .social_provider(key)
        .cloned()
        .ok_or_else(WebError::not_found)
}

/// Sends the browser to the provider, with the state kept for the callback.
async fn begin(
    state: &FrontdeskState,
    provider: Provider,
    next: Option<String>,
    link_user: Option<i64>,
) -> Result<HttpResponse, String> {
    let redirect = state.sso_redirect_uri();
    let p = provider.clone();
    let auth = crate::request_id::block(move || social::authorize(&p, &redirect))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    let key = provider.stored_key();
    let url = auth.url.clone();
    let cookie = state_cookie(state, &auth.state);
    state
        .db(move |conn| sign_in::store_state(conn, &key, &auth, next.as_deref(), link_user))
        .await
        .map_err(|e| e.to_string())?;
    Ok(crate::sso::to_provider(&url, cookie))
}

/// `POST {prefix}/sso/social/{key}`: "Continue with {name}".
pub async fn start(
    req: HttpRequest,
    state: web::Data<FrontdeskState>,
    path: web::Path<String>,
    form: crate::forms::Form<StartForm>,
) -> Result<HttpResponse, WebError> {
    csrf::verify(&req, &state, &form.csrf_token)?;
    let provider = provider(&state, &path)?;
    let form = form.into_inner();
    let next = Some(safe_next(form.next.as_deref(), "")).filter(|n| !n.is_empty());
    let name = provider.display_name().to_owned();
    match begin(&state, provider, next, None).await {
        Ok(res) => Ok(res),
        Err(e) => {
            tracing::warn!("frontdesk: signing in with {name} could not start: {e}");
            render_login(
                &req,
                &state,
                StatusCode::BAD_GATEWAY,
                "",
                (form.next.as_deref(), None),
                Some(&failed(&name)),
            )
            .await
        }
    }
}

/// `POST {prefix}/linked-accounts/{key}/link`: the signed-in user links
/// their account at the provider.
pub async fn link_start(
    req: HttpRequest,
    state: web::Data<FrontdeskState>,
    me: CurrentUser,
    path: web::Path<String>,
    form: crate::forms::Form<crate::login::csrf_form::CsrfForm>,
) -> Result<HttpResponse, WebError> {
    csrf::verify(&req, &state, &form.csrf_token)?;
    let provider = provider(&state, &path)?;
    let name = provider.display_name().to_owned();
    match begin(&state, provider, None, Some(me.id())).await {
        Ok(res) => Ok(res),
        Err(e) => {
            tracing::warn!("frontdesk: linking a {name} account could not start: {e}");
            let msg = format!("Linking your {name} account did not work. Try again later.");
            page_response(&state, &me, StatusCode::BAD_GATEWAY, None, Some(&msg)).await
        }
    }
}

/// The callback's social half: `pending` names a social provider and was
/// taken by this browser.
pub(crate) async fn callback(
    req: HttpRequest,
    state: web::Data<FrontdeskState>,
    query: CallbackQuery,
    pending: Pending,
) -> Result<HttpResponse, WebError> {
    let key = pending
        .provider
        .strip_prefix(social::KEY_PREFIX)
        .unwrap_or_default();
    let Some(provider) = state.social_provider(key).cloned() else {
        // The host no longer declares it.
        let reason = Some((Reason::SsoDenied, None, String::new()));
        return refused_with(&req, &state, reason, crate::sso::SSO_FAILED).await;
    };
    let name = provider.display_name().to_owned();
    let fail = failed(&name);
    let refuse = |reason: Reason| Some((reason, None, String::new()));
    if query.error.is_some() {
        return refused_with(&req, &state, refuse(Reason::SsoDenied), &fail).await;
    }
    let Some(code) = query.code.filter(|c| !c.is_empty() && c.len() <= 2000) else {
        return refused_with(&req, &state, refuse(Reason::SsoTokenInvalid), &fail).await;
    };
    let redirect = state.sso_redirect_uri();
    let (verifier, nonce) = (pending.pkce_verifier.clone(), pending.nonce.clone());
    let p = provider.clone();
    let identity =
        crate::request_id::block(move || social::finish(&p, &redirect, &code, &verifier, &nonce))
            .await
            .map_err(WebError::internal)?;
    let identity = match identity {
        Ok(i) => i,
        Err(e) => {
            tracing::warn!("frontdesk: signing in with {name} refused: {e}");
            let reason = match e {
                sso::oidc::OidcError::Exchange(_) | sso::oidc::OidcError::Token(_) => {
                    Reason::SsoTokenInvalid
                }
                _ => Reason::SsoDenied,
            };
            return refused_with(&req, &state, refuse(reason), &fail).await;
        }
    };
    if let Some(link_user) = pending.link_user_id {
        return link_callback(&req, &state, provider, identity, link_user).await;
    }
    let client = client_info(&req, &state);
    let settings = state.settings().auth;
    let signup = state.settings().signup.policy.clone();
    let replaces = presented_session(&req, &state);
    let outcome = state
        .db(move |conn| {
            match social::complete(
                conn,
                &provider,
                &identity,
                &signup,
                &client,
                &settings,
                replaces.as_deref(),
            ) {
                Err(SignInError::Other(e)) => Err(e),
                other => Ok(other),
            }
        })
        .await?;
    let message = match &outcome {
        Err(SignInError::Refused {
            reason: Reason::SsoLinkRequired,
            ..
        }) => link_required(&name),
        Err(SignInError::Refused {
            reason: Reason::SsoRequired,
            ..
        }) => crate::login::SSO_REQUIRED.to_owned(),
        _ => fail,
    };
    let next = safe_next(pending.next.as_deref(), "");
    answer(&req, &state, outcome, next, &message).await
}

/// The end of a link started from the "Linked accounts" page: only in the
/// browser of the user who started it, still signed in.
async fn link_callback(
    req: &HttpRequest,
    state: &FrontdeskState,
    provider: Provider,
    identity: sso::oidc::Identity,
    link_user: i64,
) -> Result<HttpResponse, WebError> {
    let me = crate::current_user::resolve(req).await?;
    if me.as_ref().map(CurrentUser::id) != Some(link_user) {
        let reason = Some((Reason::SsoStateMismatch, None, String::new()));
        let msg = failed(provider.display_name());
        return refused_with(req, state, reason, &msg).await;
    }
    let linked = state
        .db(move |conn| social::link_to_user(conn, link_user, &provider, &identity))
        .await?;
    let result = match linked {
        Linked::New => "linked",
        Linked::Already => "already",
        Linked::OtherUser => "other",
    };
    Ok(HttpResponse::SeeOther()
        .cookie(state_removal(state))
        .insert_header((
            header::LOCATION,
            format!("{}/linked-accounts?result={result}", state.prefix()),
        ))
        .finish())
}

#[derive(Deserialize)]
pub struct PageQuery {
    result: Option<String>,
}

/// `GET {prefix}/linked-accounts`.
pub async fn page(
    state: web::Data<FrontdeskState>,
    me: CurrentUser,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, WebError> {
    let (notice, error) = match query.result.as_deref() {
        Some("linked") => (Some("The account was linked."), None),
        Some("already") => (Some("That account was linked already."), None),
        Some("other") => (
            None,
            Some("That account is linked to another user here; it was not linked to you."),
        ),
        _ => (None, None),
    };
    let status = if error.is_some() {
        StatusCode::CONFLICT
    } else {
        StatusCode::OK
    };
    page_response(&state, &me, status, notice, error).await
}

async fn page_response(
    state: &FrontdeskState,
    me: &CurrentUser,
    status: StatusCode,
    notice: Option<&str>,
    error: Option<&str>,
) -> Result<HttpResponse, WebError> {
    let uid = me.id();
    let identities = state.db(move |conn| sso::identities(conn, uid)).await?;
    let show = |t: chrono::NaiveDateTime| t.format("%Y-%m-%d %H:%M UTC").to_string();
    let social = &state.settings().social;
    let name_of = |stored: &str| match stored.strip_prefix(social::KEY_PREFIX) {
        Some(k) => social
            .iter()
            .find(|p| p.key_str() == k)
            .map_or_else(|| k.to_owned(), |p| p.display_name().to_owned()),
        None => match stored.strip_prefix("org:") {
            Some(org) => format!("Single sign-on ({org})"),
            None => stored.to_owned(),
        },
    };
    let rows: Vec<serde_json::Value> = identities
        .iter()
        .map(|i| {
            json!({
                "id": i.id,
                "provider": name_of(&i.provider),
                "email": i.email,
                "linked_at": show(i.linked_at),
                "last_used_at": i.last_used_at.map(show),
            })
        })
        .collect();
    let linkable: Vec<serde_json::Value> = social
        .iter()
        .filter(|p| !identities.iter().any(|i| i.provider == p.stored_key()))
        .map(|p| json!({"key": p.key_str(), "name": p.display_name()}))
        .collect();
    let mut ctx = state.context();
    ctx.insert("csrf_token", me.csrf_token());
    ctx.insert("identities", &rows);
    ctx.insert("linkable", &linkable);
    ctx.insert("notice", &notice);
    ctx.insert("error", &error);
    let body = state.render("auth/linked_accounts.html", &ctx)?;
    Ok(HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(body))
}

/// `POST {prefix}/linked-accounts/{id}/unlink`: refused when it is the
/// user's last way in (no password, no passkey that signs in, no other
/// identity). Audited (`user.identity.unlink`).
pub async fn unlink(
    req: HttpRequest,
    state: web::Data<FrontdeskState>,
    me: CurrentUser,
    path: web::Path<i64>,
    form: crate::forms::Form<crate::login::csrf_form::CsrfForm>,
) -> Result<HttpResponse, WebError> {
    csrf::verify(&req, &state, &form.csrf_token)?;
    let identity = path.into_inner();
    let actor = Actor::user(me.id(), me.staff_role(), Vec::new());
    let uid = me.id();
    let passkeys = state.passkey_sign_in();
    let done = state
        .db(move |conn| Ok::<_, WebError>(sso::unlink_with(conn, &actor, uid, identity, passkeys)))
        .await?;
    match done {
        Ok(()) => {
            page_response(
                &state,
                &me,
                StatusCode::OK,
                Some("The account was unlinked."),
                None,
            )
            .await
        }
        Err(CoreError::Invalid { reason, .. }) => {
            let msg = format!("It was not unlinked: {reason}.");
            page_response(&state, &me, StatusCode::BAD_REQUEST, None, Some(&msg)).await
        }
        Err(e) => Err(e.into()),
    }
}
