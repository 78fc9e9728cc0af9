//! Self sign-up and email verification pages. The sign-up form answers every
//! accepted request alike and before touching the database: the rate limits,
//! the lookup, the argon2 hash and the mail all happen once the answer went
//! out (see `deferred`). Verification links: GET only checks, POST uses the
//! token once, marks the address verified and signs the user in.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::NaiveDateTime;
use frontdesk_core::outbox::NewMail;
use frontdesk_core::signup::{self, Checked, SignupPolicy};
use frontdesk_core::tokens::SecretToken;
use frontdesk_core::users::User;
use frontdesk_core::{email_verification, passwords, CoreError, CoreResult};
use serde::Deserialize;
use serde_json::json;

use crate::csrf;
use crate::current_user::client_info;
use crate::error::WebError;
use crate::headers::no_referrer;
use crate::state::FrontdeskState;

#[derive(Deserialize)]
pub struct SignupForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    first_name: String,
    #[serde(default)]
    last_name: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    accept_terms: Option<String>,
    #[serde(default)]
    csrf_token: String,
}

#[derive(Deserialize)]
pub struct JsonSignup {
    email: String,
    #[serde(default)]
    first_name: String,
    #[serde(default)]
    last_name: String,
    password: String,
    #[serde(default)]
    accept_terms: bool,
}

fn page(
    req: &HttpRequest,
    state: &FrontdeskState,
    status: StatusCode,
    name: &str,
    fill: impl FnOnce(&mut tera::Context),
) -> Result<HttpResponse, WebError> {
    let (token, new_cookie) = csrf::form_token(req, state);
    let mut ctx = state.context();
    ctx.insert("csrf_token", &token);
    ctx.insert(
        "terms",
        &state
            .settings()
            .signup
            .terms
            .as_ref()
            .map(|t| json!({"url": t.url, "version": t.version})),
    );
    ctx.insert(
        "invite_only",
        &(state.settings().signup.policy == SignupPolicy::InviteOnly),
    );
    ctx.insert("email", "");
    ctx.insert("first_name", "");
    ctx.insert("last_name", "");
    ctx.insert("error", &None::<String>);
    fill(&mut ctx);
    let body = state.render(name, &ctx)?;
    let mut res = HttpResponse::build(status);
    if let Some(c) = new_cookie {
        res.cookie(c);
    }
    no_referrer(&mut res);
    Ok(res.content_type("text/html; charset=utf-8").body(body))
}

/// Closed: there is no sign-up page.
fn closed(state: &FrontdeskState) -> bool {
    state.settings().signup.policy == SignupPolicy::Closed
}

pub async fn signup_page(
    req: HttpRequest,
    state: web::Data<FrontdeskState>,
) -> Result<HttpResponse, WebError> {
    if closed(&state) {
        return Err(WebError::not_found());
    }
    page(&req, &state, StatusCode::OK, "auth/signup.html", |_| {})
}

/// The checks the requester may be told about (none reads the database).
fn check_form(
    state: &FrontdeskState,
    email: &str,
    first: &str,
    last: &str,
    password: &str,
    accepted: bool,
) -> Result<Checked, (StatusCode, String)> {
    let settings = &state.settings().signup;
    let checked = signup::check(
        &settings.policy,
        settings.terms.as_ref(),
        email,
        first,
        last,
        accepted,
    )
    .map_err(|e| match e {
        CoreError::Forbidden => (
            StatusCode::FORBIDDEN,
            "Accounts are created by invitation only.".to_owned(),
        ),
        CoreError::DomainNotAllowed => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "Sign-up is not open to addresses in this domain.".to_owned(),
        ),
        other => (StatusCode::UNPROCESSABLE_ENTITY, other.to_string()),
    })?;
    passwords::check_policy(password)
        .map_err(|e| (StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))?;
    Ok(checked)
}

pub async fn signup_submit(
    req: HttpRequest,
    state: web::Data<FrontdeskState>,
    form: crate::forms::Form<SignupForm>,
) -> Result<HttpResponse, WebError> {
    if closed(&state) {
        return Err(WebError::not_found());
    }
    csrf::verify(&req, &state, &form.csrf_token)?;
    let form = form.into_inner();
    let checked = match check_form(
        &state,
        &form.email,
        &form.first_name,
        &form.last_name,
        &form.password,
        form.accept_terms.is_some(),
    ) {
        Ok(c) => c,
        Err((status, message)) => {
            return page(&req, &state, status, "auth/signup.html", |ctx| {
                ctx.insert("email", &form.email);
                ctx.insert("first_name", &form.first_name);
                ctx.insert("last_name", &form.last_name);
                ctx.insert("error", &Some(message));
            })
        }
    };
    let Some(slot) = state.signup_slot() else {
        let mut res = page(
            &req,
            &state,
            StatusCode::SERVICE_UNAVAILABLE,
            "auth/signup.html",
            |ctx| {
                ctx.insert("email", &form.email);
                ctx.insert("first_name", &form.first_name);
                ctx.insert("last_name", &form.last_name);
                ctx.insert("error", &Some(BUSY));
            },
        )?;
        res.headers_mut().insert(
            actix_web::http::header::RETRY_AFTER,
            actix_web::http::header::HeaderValue::from_static("30"),
        );
        return Ok(res);
    };
    let res = page(
        &req,
        &state,
        StatusCode::OK,
        "auth/signup_sent.html",
        |_| {},
    )?;
    Ok(defer(&req, &state, res, (checked, slot), form.password))
}

/// `POST {prefix}/api/signup` with `{"email", "first_name", "last_name",
/// "password", "accept_terms"}`: 202 with the same body whatever the address.
pub async fn api_signup(
    req: HttpRequest,
    state: web::Data<FrontdeskState>,
    body: web::Json<JsonSignup>,
) -> Result<HttpResponse, WebError> {
    if closed(&state) {
        return Err(WebError::not_found().json(true));
    }
    csrf::check_origin(&req, &state).map_err(|e| e.json(true))?;
    let body = body.into_inner();
    let checked = check_form(
        &state,
        &body.email,
        &body.first_name,
        &body.last_name,
        &body.password,
        body.accept_terms,
    )
    .map_err(|(status, message)| {
        WebError::new(
            status,
            status.canonical_reason().unwrap_or("Error"),
            message,
        )
        .json(true)
    })?;
    let Some(slot) = state.signup_slot() else {
        return Err(
            WebError::new(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable", BUSY).json(true),
        );
    };
    let res = HttpResponse::Accepted().json(json!({
        "status": "check_your_mail",
        "detail": "If the address can receive mail, a message with the next step is on its way.",
    }));
    Ok(defer(&req, &state, res, (checked, slot), body.password))
}

/// The answer as it is, and the sign-up's work once it has gone out.
/// The sign-up's place in the bounded queue ([`FrontdeskState::signup_slot`])
/// goes with its work and is freed when the work ends.
fn defer(
    req: &HttpRequest,
    state: &FrontdeskState,
    res: HttpResponse,
    (checked, slot): (Checked, tokio::sync::OwnedSemaphorePermit),
    password: String,
) -> HttpResponse {
    let ip = client_info(req, state).ip;
    let st = state.clone();
    crate::deferred::after_sent(res, move || {
        let job = st.clone();
        st.spawn_deferred_async(async move {
            register(job, checked, ip, password).await;
            drop(slot);
        });
    })
}

/// The answer to a sign-up while the queue of sign-up work is full: the same
/// for every address, and nothing was done.
const BUSY: &str = "Too many people are signing up right now. Please try again in a minute.";

/// The work behind the sign-up form, after the answer was sent. A task, not
/// a blocking job: while it waits for an argon2 slot it holds no thread of
/// the blocking pool (a flood of sign-ups would otherwise starve every other
/// database call), and past `hash_queue_timeout` it gives up (logged).
async fn register(state: FrontdeskState, form: Checked, ip: Option<String>, password: String) {
    let outcome = async {
        let limits = state.settings().signup.limits;
        let (st, f) = (state.clone(), form.clone());
        let answered = state
            .db(move |conn| -> Result<Option<signup::Outcome>, WebError> {
                if !signup::admit(conn, &f.email, ip.as_deref(), &limits)? {
                    return Ok(Some(signup::Outcome::Limited));
                }
                if signup::registered(conn, &f.email)?.is_some() {
                    return Ok(Some(signup::already_registered(conn, &f.email, |u| {
                        existing_mail(&st, u)
                    })?));
                }
                Ok(None)
            })
            .await?;
        if let Some(outcome) = answered {
            return Ok(outcome);
        }
        // Hashing waits for a slot like a sign-in.
        let hash = state.hashing(move || passwords::hash(&password)).await??;
        let st = state.clone();
        let ttl = state.settings().email_verification_ttl;
        state
            .db(move |conn| -> Result<signup::Outcome, WebError> {
                Ok(signup::create(
                    conn,
                    &form,
                    hash,
                    ttl,
                    Box::new(|u: &User, t: &SecretToken, at| verification_mail(&st, u, t, at)),
                    |u| existing_mail(&st, u),
                )?)
            })
            .await
    }
    .await;
    match outcome {
        Ok(signup::Outcome::Limited) => {}
        Ok(_) => state.wake_mailer(),
        Err(e) => tracing::error!("frontdesk: sign-up request failed: {}", e.detail),
    }
}

fn render_mail(
    state: &FrontdeskState,
    ctx: &tera::Context,
    kind: &str,
    subject: String,
    recipient: &str,
    template: &str,
) -> CoreResult<NewMail> {
    let render = |n: &str| {
        state
            .render(n, ctx)
            .map_err(|e| CoreError::Config(e.detail))
    };
    Ok(NewMail {
        kind: kind.into(),
        recipient: recipient.to_owned(),
        subject,
        text_body: render(&format!("{template}.txt"))?,
        html_body: Some(render(&format!("{template}.html"))?),
        invitation_id: None,
    })
}

/// The verification mail (templates `auth/verify_email_email.{txt,html}`).
pub fn verification_mail(
    state: &FrontdeskState,
    user: &User,
    token: &SecretToken,
    expires_at: NaiveDateTime,
) -> CoreResult<NewMail> {
    let mut ctx = state.context();
    ctx.insert(
        "link",
        &state.absolute_url(&format!(
            "{}/verify-email/{}",
            state.prefix(),
            token.expose()
        )),
    );
    ctx.insert("name", &user.name());
    ctx.insert(
        "expires_at",
        &expires_at.format("%Y-%m-%d %H:%M UTC").to_string(),
    );
    render_mail(
        state,
        &ctx,
        "email_verification",
        format!("Confirm your {} address", state.settings().site_name),
        &user.email,
        "auth/verify_email_email",
    )
}

/// The "you already have an account" mail (`auth/signup_existing_email.*`).
fn existing_mail(state: &FrontdeskState, user: &User) -> CoreResult<NewMail> {
    let mut ctx = state.context();
    ctx.insert("name", &user.name());
    ctx.insert(
        "login",
        &state.absolute_url(&format!("{}/login", state.prefix())),
    );
    ctx.insert(
        "reset",
        &state.absolute_url(&format!("{}/password-reset", state.prefix())),
    );
    render_mail(
        state,
        &ctx,
        "signup_existing",
        format!("You already have a {} account", state.settings().site_name),
        &user.email,
        "auth/signup_existing_email",
    )
}

fn invalid(req: &HttpRequest, state: &FrontdeskState) -> Result<HttpResponse, WebError> {
    page(
        req,
        state,
        StatusCode::BAD_REQUEST,
        "auth/verify_email_invalid.html",
        |_| {},
    )
}

/// `GET {prefix}/verify-email/{token}`: checks the link, uses nothing.
pub async fn verify_page(
    req: HttpRequest,
    state: web::Data<FrontdeskState>,
    path: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let token = path.into_inner();
    let check = token.clone();
    let user = state
        .db(move |conn| email_verification::check(conn, &check))
        .await?;
    match user {
        Some(u) => page(
            &req,
            &state,
            StatusCode::OK,
            "auth/verify_email.html",
            |ctx| {
                ctx.insert("token", &token);
                ctx.insert("email", &u.email);
            },
        ),
        None => invalid(&req, &state),
    }
}

/// `POST {prefix}/verify-email/{token}`: uses the link, verifies the
/// address and signs the user in.
pub async fn verify_submit(
    req: HttpRequest,
    state: web::Data<FrontdeskState>,
    path: web::Path<String>,
    form: crate::forms::Form<crate::login::csrf_form::CsrfForm>,
) -> Result<HttpResponse, WebError> {
    csrf::verify(&req, &state, &form.csrf_token)?;
    let token = path.into_inner();
    let client = client_info(&req, &state);
    let config = state.settings().auth.sessions;
    let done = state
        .db(move |conn| {
            match email_verification::complete(conn, &token, Some((&client, &config))) {
                Ok(v) => Ok(Some(v)),
                Err(CoreError::Invalid { field: "token", .. }) => Ok(None),
                Err(e) => Err(WebError::from(e)),
            }
        })
        .await?;
    let Some(done) = done else {
        return invalid(&req, &state);
    };
    let mut res = HttpResponse::SeeOther();
    no_referrer(&mut res);
    match done.session {
        Some((_, token)) => Ok(res
            .cookie(crate::login::session_cookie(&state, token.expose()))
            .insert_header((header::LOCATION, state.settings().after_login.clone()))
            .finish()),
        None => Ok(res
            .insert_header((header::LOCATION, format!("{}/login", state.prefix())))
            .finish()),
    }
}
