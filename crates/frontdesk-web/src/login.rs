//! Sign-in and sign-out: the login page and form, logout, and the JSON
//! endpoints for hosts with their own front end. Every failure gets the same
//! answer, whatever the reason recorded in `login_attempts`.

use actix_web::cookie::{time::Duration as CookieDuration, Cookie, SameSite};
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use frontdesk_core::auth::{self, SignInError, SignedIn};
use frontdesk_core::{services, sessions, CoreError};
use serde::Deserialize;
use serde_json::json;

use crate::csrf;
use crate::current_user::{client_info, resolve};
use crate::error::{FieldError, WebError};
use crate::state::FrontdeskState;

/// The one message for every refused sign-in.
pub const GENERIC_FAILURE: &str =
    "Incorrect email or password, or the account cannot sign in right now.";

/// With `require_verified_email`, for a right password on an unverified address.
pub(crate) const UNVERIFIED: &str =
    "Confirm your email address first: open the link in the mail we sent you.";

/// For a right password of a member of an organization that requires
/// single sign-on (told apart only then: the user knows it).
pub(crate) const SSO_REQUIRED: &str =
    "Your organization signs you in through its identity provider: use single sign-on below.";

#[derive(Deserialize)]
pub(crate) struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf_token: String,
    next: Option<String>,
    /// The host's service this sign-in is for (a slug or id), when its
    /// login link says so (`/login?service=mobile-app`).
    service: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct JsonLogin {
    pub(crate) email: String,
    pub(crate) password: String,
    /// The host's service this sign-in is for (a slug or id).
    #[serde(default)]
    pub(crate) service: Option<String>,
}

/// `GET {prefix}/login`'s query.
#[derive(Deserialize)]
pub(crate) struct LoginQuery {
    next: Option<String>,
    service: Option<String>,
}

/// A same-site path to go to after sign-in, or the default. Anything that a
/// browser could read as another host (`//x`, `/\x`, a scheme) is refused.
pub fn safe_next(next: Option<&str>, default: &str) -> String {
    match next.map(str::trim) {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.contains('\\')
                && n.len() <= 2000
                && !n.chars().any(|c| c.is_control() || c.is_whitespace()) =>
        {
            n.to_owned()
        }
        _ => default.to_owned(),
    }
}

/// The session token the request carries, if any: a new sign-in replaces it.
pub(crate) fn presented_session(req: &HttpRequest, state: &FrontdeskState) -> Option<String> {
    req.cookie(state.session_cookie_name())
        .map(|c| c.value().to_owned())
}

pub(crate) fn session_cookie(state: &FrontdeskState, token: &str) -> Cookie<'static> {
    let max_age = state
        .settings()
        .auth
        .sessions
        .absolute_timeout
        .num_seconds();
    Cookie::build(state.session_cookie_name().to_owned(), token.to_owned())
        .path("/")
        .http_only(true)
        .secure(state.secure_cookies())
        .same_site(SameSite::Lax)
        .max_age(CookieDuration::seconds(max_age))
        .finish()
}

fn removal_cookie(state: &FrontdeskState) -> Cookie<'static> {
    let mut c = session_cookie(state, "");
    c.make_removal();
    c
}

pub(crate) async fn render_login(
    req: &HttpRequest,
    state: &FrontdeskState,
    status: StatusCode,
    email: &str,
    (next, service): (Option<&str>, Option<&str>),
    error: Option<&str>,
) -> Result<HttpResponse, WebError> {
    let (token, new_cookie) = csrf::form_token(req, state);
    let mut ctx = state.context();
    ctx.insert("csrf_token", &token);
    ctx.insert("email", email);
    ctx.insert("service", &service.filter(|s| !s.is_empty()));
    ctx.insert(
        "next",
        &next
            .map(|n| safe_next(Some(n), ""))
            .filter(|n| !n.is_empty()),
    );
    ctx.insert("error", &error);
    // The refusal of an unverified address links to a new verification mail.
    ctx.insert("unverified", &(error == Some(UNVERIFIED)));
    // One answer for a wrong email and a wrong password: both fields are
    // marked, the email first.
    let error_fields: &[&str] = if error.is_some() {
        &["email", "password"]
    } else {
        &[]
    };
    ctx.insert("error_fields", error_fields);
    let notice = req
        .query_string()
        .contains("reset=done")
        .then_some("Your password was changed. Sign in with it.");
    ctx.insert("notice", &notice);
    ctx.insert("passkey_sign_in", &state.passkey_sign_in());
    let sso = state
        .db(frontdesk_core::sso::any_configured)
        .await
        .unwrap_or(false);
    ctx.insert("sso", &sso);
    let social: Vec<serde_json::Value> = state
        .settings()
        .social
        .iter()
        .map(|p| json!({"key": p.key_str(), "name": p.display_name()}))
        .collect();
    ctx.insert("social", &social);
    let body = state.render("auth/login.html", &ctx)?;
    let mut res = HttpResponse::build(status);
    if let Some(c) = new_cookie {
        res.cookie(c);
    }
    Ok(res.content_type("text/html; charset=utf-8").body(body))
}

pub(crate) async fn login_page(
    req: HttpRequest,
    state: web::Data<FrontdeskState>,
    query: web::Query<LoginQuery>,
) -> Result<HttpResponse, WebError> {
    render_login(
        &req,
        &state,
        StatusCode::OK,
        "",
        (query.next.as_deref(), query.service.as_deref()),
        None,
    )
    .await
}

/// What the password step came to.
pub(crate) enum Attempt {
    In(Box<SignedIn>),
    /// Right password, second factor next: the challenge's token.
    SecondStep(frontdesk_core::tokens::SecretToken),
    /// Right password, but a policy requires a second factor the user has
    /// not added: enrolment next, on the challenge's token.
    Enrol(frontdesk_core::tokens::SecretToken),
    /// `unverified`: the password was right but the address is not verified
    /// and the host requires it (told apart only then: the user knows it).
    Refused {
        unverified: bool,
    },
    /// Right password, but an organization of the user requires SSO.
    SsoRequired,
}

/// Runs the sign-in under the argon2 cap and tells the hooks.
async fn attempt(
    req: &HttpRequest,
    state: &FrontdeskState,
    email: String,
    password: String,
    service: Option<String>,
) -> Result<Attempt, WebError> {
    let client = client_info(req, state);
    let settings = state.settings().auth;
    let replaces = presented_session(req, state);
    let permit = state.hash_permit().await?;
    let outcome = state
        .db(move |conn| {
            // A service the host does not have is its mistake, said before
            // the password is tried.
            let service = match service.as_deref().filter(|s| !s.is_empty()) {
                None => None,
                Some(s) => match services::find(conn, s).map_err(CoreError::from)? {
                    Some(found) => Some(found),
                    None => {
                        return Err(WebError::validation(vec![FieldError::new(
                            "service",
                            "is not a service of this app (give its slug or id)",
                        )]))
                    }
                },
            };
            match auth::sign_in(
                conn,
                &email,
                &password,
                &client,
                &settings,
                replaces.as_deref(),
            ) {
                Ok(signed) => {
                    if let Some(service) = service {
                        services::record_sign_in(
                            conn,
                            signed.user.id,
                            signed.session.id,
                            service.id,
                            signed.session.created_at,
                        )
                        .map_err(CoreError::from)?;
                    }
                    Ok(Attempt::In(Box::new(signed)))
                }
                Err(SignInError::SecondFactor { challenge, .. }) => {
                    Ok(Attempt::SecondStep(challenge))
                }
                Err(SignInError::EnrolmentRequired { challenge, .. }) => {
                    Ok(Attempt::Enrol(challenge))
                }
                Err(SignInError::Refused {
                    reason: frontdesk_core::login_attempts::Reason::EmailUnverified,
                    ..
                }) => Ok(Attempt::Refused { unverified: true }),
                Err(SignInError::Refused {
                    reason: frontdesk_core::login_attempts::Reason::SsoRequired,
                    ..
                }) => Ok(Attempt::SsoRequired),
                Err(SignInError::Refused { .. }) | Err(SignInError::ChallengeExpired) => {
                    Ok(Attempt::Refused { unverified: false })
                }
                Err(SignInError::Other(e)) => Err(WebError::from(e)),
            }
        })
        .await;
    drop(permit);
    // The host's hooks heard of it through the sign-in's events, delivered
    // once the connection was back in the pool.
    outcome
}

/// Where a sign-in without a `next` goes: the admin dashboard for staff and
/// organization admins (unless the host turned that off), else `after_login`.
pub(crate) async fn landing(state: &FrontdeskState, user_id: i64) -> Result<String, WebError> {
    let settings = state.settings();
    if settings.admin_after_login {
        let actor = state
            .db(move |conn| frontdesk_core::users::actor_for(conn, user_id, None))
            .await?;
        if actor.is_admin_user() {
            return Ok(state.admin_url());
        }
    }
    Ok(settings.after_login.clone())
}

pub(crate) async fn login_submit(
    req: HttpRequest,
    state: web::Data<FrontdeskState>,
    form: crate::forms::Form<LoginForm>,
) -> Result<HttpResponse, WebError> {
    csrf::verify(&req, &state, &form.csrf_token)?;
    let form = form.into_inner();
    let email = form.email.trim().to_owned();
    let attempt = attempt(
        &req,
        &state,
        email.clone(),
        form.password,
        form.service.clone(),
    )
    .await?;
    let enrol = matches!(attempt, Attempt::Enrol(_));
    match attempt {
        Attempt::SecondStep(challenge) | Attempt::Enrol(challenge) => {
            let page = if enrol { "mfa/enrol" } else { "mfa" };
            let mut to = format!("{}/{page}", state.prefix());
            let next = safe_next(form.next.as_deref(), "");
            if !next.is_empty() {
                to.push_str("?next=");
                to.extend(url::form_urlencoded::byte_serialize(next.as_bytes()));
            }
            Ok(HttpResponse::SeeOther()
                .cookie(crate::mfa::challenge_cookie(&state, &challenge))
                .insert_header((header::LOCATION, to))
                .finish())
        }
        Attempt::In(signed) => {
            let to = match safe_next(form.next.as_deref(), "") {
                n if !n.is_empty() => n,
                _ => landing(&state, signed.user.id).await?,
            };
            Ok(HttpResponse::SeeOther()
                .cookie(session_cookie(&state, signed.token.expose()))
                .insert_header((header::LOCATION, to))
                .finish())
        }
        Attempt::Refused { unverified } => {
            render_login(
                &req,
                &state,
                StatusCode::UNAUTHORIZED,
                &email,
                (form.next.as_deref(), form.service.as_deref()),
                Some(if unverified {
                    UNVERIFIED
                } else {
                    GENERIC_FAILURE
                }),
            )
            .await
        }
        Attempt::SsoRequired => {
            render_login(
                &req,
                &state,
                StatusCode::UNAUTHORIZED,
                &email,
                (form.next.as_deref(), form.service.as_deref()),
                Some(SSO_REQUIRED),
            )
            .await
        }
    }
}

pub(crate) async fn logout(
    req: HttpRequest,
    state: web::Data<FrontdeskState>,
    form: crate::forms::Form<csrf_form::CsrfForm>,
) -> Result<HttpResponse, WebError> {
    csrf::verify(&req, &state, &form.csrf_token)?;
    end_session(&req, &state).await?;
    Ok(HttpResponse::SeeOther()
        .cookie(removal_cookie(&state))
        .insert_header((header::LOCATION, format!("{}/login", state.prefix())))
        .finish())
}

async fn end_session(req: &HttpRequest, state: &FrontdeskState) -> Result<(), WebError> {
    if let Some(c) = req.cookie(state.session_cookie_name()) {
        let token = c.value().to_owned();
        state
            .db(move |conn| sessions::revoke_by_token(conn, &token, sessions::reason::LOGOUT))
            .await?;
    }
    Ok(())
}

pub(crate) mod csrf_form {
    use serde::Deserialize;

    /// A form whose only field is the CSRF token.
    #[derive(Deserialize)]
    pub struct CsrfForm {
        #[serde(default)]
        pub csrf_token: String,
    }
}

fn user_json(user: &frontdesk_core::users::User) -> serde_json::Value {
    json!({
        "id": user.id,
        "email": user.email,
        "name": user.name(),
        "staff_role": user.staff_role,
    })
}

/// `POST {prefix}/api/login` with `{"email", "password"}`: sets the session
/// cookie and returns the user and the CSRF token for later unsafe calls.
pub(crate) async fn api_login(
    req: HttpRequest,
    state: web::Data<FrontdeskState>,
    body: web::Json<JsonLogin>,
) -> Result<HttpResponse, WebError> {
    // A JSON body cannot be sent cross-site without a CORS preflight; the
    // origin check covers what is left.
    csrf::check_origin(&req, &state).map_err(|e| e.json(true))?;
    let body = body.into_inner();
    match attempt(&req, &state, body.email, body.password, body.service)
        .await
        .map_err(|e| e.json(true))?
    {
        Attempt::In(signed) => Ok(api_signed_in(&state, &signed)),
        Attempt::SecondStep(challenge) => Ok(crate::mfa::api_second_step(&challenge)),
        Attempt::Enrol(_) => Err(WebError::new(
            StatusCode::FORBIDDEN,
            "Forbidden",
            crate::mfa_enrolment::REQUIRED_API,
        )
        .json(true)),
        Attempt::SsoRequired => {
            Err(WebError::new(StatusCode::UNAUTHORIZED, "Unauthorized", SSO_REQUIRED).json(true))
        }
        Attempt::Refused { unverified } => Err(WebError::new(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            if unverified {
                UNVERIFIED
            } else {
                GENERIC_FAILURE
            },
        )
        .json(true)),
    }
}

/// The JSON answer of a completed sign-in, with its session cookie.
pub(crate) fn api_signed_in(state: &FrontdeskState, signed: &SignedIn) -> HttpResponse {
    HttpResponse::Ok()
        .cookie(session_cookie(state, signed.token.expose()))
        .json(json!({
            "user": user_json(&signed.user),
            "csrf_token": csrf::session_token(signed.token.expose()),
            "expires_at": signed.session.expires_at,
        }))
}

/// `POST {prefix}/api/logout` with the `X-CSRF-Token` header.
pub(crate) async fn api_logout(
    req: HttpRequest,
    state: web::Data<FrontdeskState>,
) -> Result<HttpResponse, WebError> {
    csrf::verify(&req, &state, "").map_err(|e| e.json(true))?;
    end_session(&req, &state).await?;
    Ok(HttpResponse::NoContent()
        .cookie(removal_cookie(&state))
        .finish())
}

/// `GET {prefix}/api/session`: who is signed in, or 401.
pub(crate) async fn api_session(req: HttpRequest) -> Result<HttpResponse, WebError> {
    match resolve(&req).await? {
        Some(u) => Ok(HttpResponse::Ok().json(json!({
            "user": user_json(&u.user),
            "csrf_token": u.csrf_token(),
            "expires_at": u.session.expires_at,
        }))),
        None => Err(WebError::unauthorized().json(true)),
    }
}
