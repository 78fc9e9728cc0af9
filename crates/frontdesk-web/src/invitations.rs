//! The invitee's page at `{auth}/invitations/{token}`: GET shows who invited
//! them to what and never uses the token up (mail scanners open links); the
//! POST accepts (new account, or the signed-in one) or declines, once.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use frontdesk_core::invitations::{self, Acceptance, InvitationError, InvitationPreview};
use frontdesk_core::{passwords, sessions, CoreError};
use serde::Deserialize;

use crate::csrf;
use crate::current_user::{client_info, resolve, CurrentUser};
use crate::error::WebError;
use crate::headers::no_referrer;
use crate::login::session_cookie;
use crate::state::FrontdeskState;

impl From<InvitationError> for WebError {
    fn from(e: InvitationError) -> Self {
        match e {
            InvitationError::Core(e) => e.into(),
            InvitationError::InvalidLink(_) => WebError::new(
                StatusCode::NOT_FOUND,
                "Not found",
                "This invitation link is not valid.",
            ),
            e @ (InvitationError::AlreadyPending { .. }
            | InvitationError::NotPending(_)
            | InvitationError::SignInRequired
            | InvitationError::WrongAccount) => {
                WebError::new(StatusCode::CONFLICT, "Conflict", e.to_string())
            }
        }
    }
}

#[derive(Deserialize)]
pub struct InvitationForm {
    #[serde(default)]
    action: String,
    #[serde(default)]
    first_name: String,
    #[serde(default)]
    last_name: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_confirm: String,
    #[serde(default)]
    csrf_token: String,
}

/// What the form remembers when it is shown again after a mistake, and why.
#[derive(Default)]
struct Typed {
    first_name: String,
    last_name: String,
    error: Option<String>,
    /// The form fields the error is about, the one to fix first first.
    error_fields: &'static [&'static str],
}

fn respond(
    req: &HttpRequest,
    state: &FrontdeskState,
    status: StatusCode,
    name: &str,
    fill: impl FnOnce(&mut tera::Context),
) -> Result<HttpResponse, WebError> {
    let (token, new_cookie) = csrf::form_token(req, state);
    let mut ctx = state.context();
    ctx.insert("csrf_token", &token);
    fill(&mut ctx);
    let body = state.render(name, &ctx)?;
    let mut res = HttpResponse::build(status);
    if let Some(c) = new_cookie {
        res.cookie(c);
    }
    no_referrer(&mut res);
    Ok(res.content_type("text/html; charset=utf-8").body(body))
}

/// One page, one status for every link that cannot be used (unknown, expired,
/// cancelled, accepted, declined): nothing tells them apart.
fn invalid(req: &HttpRequest, state: &FrontdeskState) -> Result<HttpResponse, WebError> {
    respond(
        req,
        state,
        StatusCode::NOT_FOUND,
        "auth/invitation_invalid.html",
        |_| {},
    )
}

/// The invitation page: the details, and the form that fits who is looking.
fn show(
    req: &HttpRequest,
    state: &FrontdeskState,
    status: StatusCode,
    token: &str,
    preview: &InvitationPreview,
    me: Option<&CurrentUser>,
    typed: &Typed,
) -> Result<HttpResponse, WebError> {
    let signed_in_as = me.map(|u| u.user.email.clone());
    let is_invitee = signed_in_as.as_deref() == Some(preview.email.as_str());
    let here = format!("{}/invitations/{}", state.prefix(), token);
    let next: String = url::form_urlencoded::byte_serialize(here.as_bytes()).collect();
    respond(req, state, status, "auth/invitation.html", |ctx| {
        ctx.insert("token", token);
        ctx.insert("invitation", preview);
        ctx.insert(
            "message_lines",
            &preview
                .message
                .as_deref()
                .map(|m| m.lines().collect::<Vec<_>>())
                .unwrap_or_default(),
        );
        ctx.insert(
            "expires_at",
            &preview.expires_at.format("%Y-%m-%d %H:%M UTC").to_string(),
        );
        ctx.insert("signed_in_as", &signed_in_as);
        ctx.insert("is_invitee", &is_invitee);
        ctx.insert(
            "login_link",
            &format!("{}/login?next={next}", state.prefix()),
        );
        ctx.insert("first_name", &typed.first_name);
        ctx.insert("last_name", &typed.last_name);
        ctx.insert("error", &typed.error);
        ctx.insert("error_fields", typed.error_fields);
    })
}

/// The form field an acceptance error is about, when it is one of the form's.
fn form_fields_of(e: &InvitationError) -> &'static [&'static str] {
    match e {
        InvitationError::Core(
            CoreError::Invalid { field, .. } | CoreError::TooLong { field, .. },
        ) => match *field {
            "first_name" => &["first_name"],
            "last_name" => &["last_name"],
            "password" => &["password"],
            _ => &[],
        },
        _ => &[],
    }
}

async fn load(state: &FrontdeskState, token: &str) -> Result<Option<InvitationPreview>, WebError> {
    let token = token.to_owned();
    state
        .db(move |conn| match invitations::preview(conn, &token) {
            Ok(p) => Ok(Some(p)),
            Err(InvitationError::InvalidLink(_)) => Ok(None),
            Err(e) => Err(WebError::from(e)),
        })
        .await
}

/// `GET {auth}/invitations/{token}`: read only.
pub async fn page(
    req: HttpRequest,
    state: web::Data<FrontdeskState>,
    path: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let token = path.into_inner();
    let Some(preview) = load(&state, &token).await? else {
        return invalid(&req, &state);
    };
    let me = resolve(&req).await?;
    // The names the admin gave, if any, to start from.
    let typed = Typed {
        first_name: preview.first_name.clone().unwrap_or_default(),
        last_name: preview.last_name.clone().unwrap_or_default(),
        error: None,
        error_fields: &[],
    };
    show(
        &req,
        &state,
        StatusCode::OK,
        &token,
        &preview,
        me.as_ref(),
        &typed,
    )
}

/// `POST {auth}/invitations/{token}` with `action=accept` or `action=decline`.
pub async fn submit(
    req: HttpRequest,
    state: web::Data<FrontdeskState>,
    path: web::Path<String>,
    form: crate::forms::Form<InvitationForm>,
) -> Result<HttpResponse, WebError> {
    csrf::verify(&req, &state, &form.csrf_token)?;
    let token = path.into_inner();
    let form = form.into_inner();
    match form.action.as_str() {
        "accept" => accept(&req, &state, token, form).await,
        "decline" => decline(&req, &state, token).await,
        _ => Err(WebError::bad_request("Choose to accept or to decline.")),
    }
}

async fn decline(
    req: &HttpRequest,
    state: &FrontdeskState,
    token: String,
) -> Result<HttpResponse, WebError> {
    let declined = state
        .db(move |conn| match invitations::decline(conn, &token) {
            Ok(inv) => Ok(Some(inv)),
            Err(InvitationError::InvalidLink(_)) => Ok(None),
            Err(e) => Err(WebError::from(e)),
        })
        .await?;
    let Some(inv) = declined else {
        return invalid(req, state);
    };
    // The host's hooks hear of it through the decline's event.
    let _ = inv;
    respond(
        req,
        state,
        StatusCode::OK,
        "auth/invitation_declined.html",
        |_| {},
    )
}

async fn accept(
    req: &HttpRequest,
    state: &FrontdeskState,
    token: String,
    form: InvitationForm,
) -> Result<HttpResponse, WebError> {
    // The link is checked before anything costly (argon2) happens.
    let Some(preview) = load(state, &token).await? else {
        return invalid(req, state);
    };
    let me = resolve(req).await?;
    let typed = Typed {
        first_name: form.first_name.trim().to_owned(),
        last_name: form.last_name.trim().to_owned(),
        error: None,
        error_fields: &[],
    };
    let retry = |status: StatusCode, error: &str, fields: &'static [&'static str]| {
        let again = Typed {
            first_name: typed.first_name.clone(),
            last_name: typed.last_name.clone(),
            error: Some(error.to_owned()),
            error_fields: fields,
        };
        show(req, state, status, &token, &preview, me.as_ref(), &again)
    };
    let how = if preview.account_exists {
        match &me {
            Some(u) if u.user.email == preview.email => {
                Acceptance::ExistingUser { user_id: u.id() }
            }
            Some(_) => {
                return retry(
                    StatusCode::CONFLICT,
                    &InvitationError::WrongAccount.to_string(),
                    &[],
                )
            }
            None => {
                return retry(
                    StatusCode::CONFLICT,
                    &InvitationError::SignInRequired.to_string(),
                    &[],
                )
            }
        }
    } else {
        if typed.first_name.is_empty() {
            return retry(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Enter your first name.",
                &["first_name"],
            );
        }
        if form.password != form.password_confirm {
            return retry(
                StatusCode::UNPROCESSABLE_ENTITY,
                "The two passwords do not match.",
                &["password", "password_confirm"],
            );
        }
        if let Err(e) = passwords::check_policy(&form.password) {
            return retry(
                StatusCode::UNPROCESSABLE_ENTITY,
                &e.to_string(),
                &["password"],
            );
        }
        let password = form.password;
        let password_hash = state.hashing(move || passwords::hash(&password)).await??;
        Acceptance::NewAccount {
            first_name: typed.first_name.clone(),
            last_name: typed.last_name.clone(),
            password_hash,
        }
    };

    let client = client_info(req, state);
    let config = state.settings().auth.sessions;
    let replaces = crate::login::presented_session(req, state);
    let used = token.clone();
    let outcome = state
        .db(move |conn| {
            let accepted = match invitations::accept(conn, &used, &how) {
                Ok(a) => a,
                Err(e) => return Ok(Err(e)),
            };
            // A new account (or an imported one that just got its password)
            // is signed in at once, with a fresh session token; an existing
            // account is signed in already. The acceptance is
            // committed by now: if the session cannot be opened the invitee
            // signs in by hand, and the hooks still run.
            let session = if accepted.created_account || accepted.activated_account {
                let opened = replaces
                    .as_deref()
                    .map_or(Ok(false), |old| {
                        sessions::revoke_by_token(conn, old, sessions::reason::REPLACED)
                    })
                    .and_then(|_| sessions::create(conn, accepted.user.id, &client, &config));
                match opened {
                    Ok((_, token)) => {
                        let signed_in = frontdesk_core::events::Event::UserSignedIn {
                            user_id: accepted.user.id,
                        };
                        if let Err(e) = frontdesk_core::events::emit(conn, signed_in) {
                            tracing::warn!(
                                "frontdesk: sign-in event refused after an acceptance: {e}"
                            );
                        }
                        Some(token)
                    }
                    Err(e) => {
                        tracing::error!("frontdesk: no session after an accepted invitation: {e}");
                        None
                    }
                }
            } else {
                None
            };
            Ok::<_, CoreError>(Ok((accepted, session)))
        })
        .await?;
    let (accepted, session) = match outcome {
        Ok(done) => done,
        Err(InvitationError::InvalidLink(_)) => return invalid(req, state),
        // Wrong input (a name too long, the account already a member, …): the
        // form again with the reason; the invitation is still pending.
        Err(e) => {
            let message = e.to_string();
            let fields = form_fields_of(&e);
            let err = WebError::from(e);
            return match err.status {
                StatusCode::BAD_REQUEST => {
                    retry(StatusCode::UNPROCESSABLE_ENTITY, &message, fields)
                }
                StatusCode::CONFLICT => retry(StatusCode::CONFLICT, &message, fields),
                _ => Err(err),
            };
        }
    };
    let signed_in = !(accepted.created_account || accepted.activated_account) || session.is_some();
    let mut res = HttpResponse::SeeOther();
    no_referrer(&mut res);
    if let Some(token) = session {
        res.cookie(session_cookie(state, token.expose()));
    }
    let to = if signed_in {
        state.settings().after_login.clone()
    } else {
        format!("{}/login", state.prefix())
    };
    Ok(res.insert_header((header::LOCATION, to)).finish())
}
