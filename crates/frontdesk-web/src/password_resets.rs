//! Password reset by mail: ask for a link (same answer whether or not the
//! address has an account), open it (GET only checks the token), and set a new
//! password (POST uses the token once and ends every session of the user).

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::NaiveDateTime;
use frontdesk_core::outbox::NewMail;
use frontdesk_core::tokens::SecretToken;
use frontdesk_core::users::User;
use frontdesk_core::{password_resets, passwords, CoreError, CoreResult};
use serde::Deserialize;

use crate::csrf;
use crate::error::WebError;
use crate::headers::no_referrer;
use crate::state::FrontdeskState;

#[derive(Deserialize)]
pub(crate) struct RequestForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    csrf_token: String,
}

#[derive(Deserialize)]
pub(crate) struct ResetForm {
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_confirm: String,
    #[serde(default)]
    csrf_token: String,
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
    fill(&mut ctx);
    let body = state.render(name, &ctx)?;
    let mut res = HttpResponse::build(status);
    if let Some(c) = new_cookie {
        res.cookie(c);
    }
    no_referrer(&mut res);
    Ok(res.content_type("text/html; charset=utf-8").body(body))
}

pub(crate) async fn request_page(
    req: HttpRequest,
    state: web::Data<FrontdeskState>,
) -> Result<HttpResponse, WebError> {
    page(
        &req,
        &state,
        StatusCode::OK,
        "auth/password_reset_request.html",
        |_| {},
    )
}

pub(crate) async fn request_submit(
    req: HttpRequest,
    state: web::Data<FrontdeskState>,
    form: crate::forms::Form<RequestForm>,
) -> Result<HttpResponse, WebError> {
    csrf::verify(&req, &state, &form.csrf_token)?;
    let email = form.into_inner().email;
    let Some(slot) = state.request_slot() else {
        return Err(busy());
    };
    // Whatever the address, the same page...
    let res = page(
        &req,
        &state,
        StatusCode::OK,
        "auth/password_reset_sent.html",
        |_| {},
    )?;
    // ...and the same work before it: none. Looking the address up, and for
    // an account the token and the mail, happen once the page has gone out,
    // so the answer's timing cannot tell which addresses exist.
    let st = state.get_ref().clone();
    Ok(crate::deferred::after_sent(res, move || {
        let job = st.clone();
        st.spawn_deferred(move || {
            request_reset(&job, &email);
            drop(slot);
        });
    }))
}

/// The work behind the public reset form, after the answer was sent: a
/// database that is away is retried for a few seconds, then the failure is
/// logged (without the address) and the requester may simply ask again.
fn request_reset(state: &FrontdeskState, email: &str) {
    let ttl = state.settings().password_reset_ttl;
    let queued = frontdesk_core::db::retry_on_outage(state.pool(), |conn| {
        password_resets::request(conn, email, ttl, |user, token, expires_at| {
            reset_mail(state, user, token, expires_at)
        })
    });
    match queued {
        // Committed: the mail goes out now, not at the worker's next poll.
        // (Only then: unknown addresses must not make the worker run.)
        Ok(true) => state.wake_mailer(),
        Ok(false) => {}
        Err(e) => tracing::error!("frontdesk: password reset request failed: {e}"),
    }
}

/// Renders the reset mail (templates `auth/password_reset_email.{txt,html}`);
/// the admin pages use it with `password_resets::request_for_user` too.
pub fn reset_mail(
    state: &FrontdeskState,
    user: &User,
    token: &SecretToken,
    expires_at: NaiveDateTime,
) -> CoreResult<NewMail> {
    let link = state.absolute_url(&format!(
        "{}/password-reset/{}",
        state.prefix(),
        token.expose()
    ));
    let mut ctx = state.context();
    ctx.insert("link", &link);
    ctx.insert("name", &user.name());
    ctx.insert(
        "expires_at",
        &expires_at.format("%Y-%m-%d %H:%M UTC").to_string(),
    );
    let render = |n: &str| {
        state
            .render(n, &ctx)
            .map_err(|e| CoreError::Config(e.detail))
    };
    Ok(NewMail {
        kind: "password_reset".into(),
        recipient: user.email.clone(),
        subject: format!("Reset your {} password", state.settings().site_name),
        text_body: render("auth/password_reset_email.txt")?,
        html_body: Some(render("auth/password_reset_email.html")?),
        invitation_id: None,
    })
}

fn invalid(req: &HttpRequest, state: &FrontdeskState) -> Result<HttpResponse, WebError> {
    page(
        req,
        state,
        StatusCode::BAD_REQUEST,
        "auth/password_reset_invalid.html",
        |_| {},
    )
}

pub(crate) async fn form_page(
    req: HttpRequest,
    state: web::Data<FrontdeskState>,
    path: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let token = path.into_inner();
    let check = token.clone();
    let user = state
        .db(move |conn| password_resets::check(conn, &check))
        .await?;
    match user {
        Some(_) => page(
            &req,
            &state,
            StatusCode::OK,
            "auth/password_reset_form.html",
            |ctx| {
                ctx.insert("token", &token);
                ctx.insert("error", &None::<String>);
                ctx.insert("error_fields", &[] as &[&str]);
            },
        ),
        None => invalid(&req, &state),
    }
}

pub(crate) async fn form_submit(
    req: HttpRequest,
    state: web::Data<FrontdeskState>,
    path: web::Path<String>,
    form: crate::forms::Form<ResetForm>,
) -> Result<HttpResponse, WebError> {
    csrf::verify(&req, &state, &form.csrf_token)?;
    let token = path.into_inner();
    let form = form.into_inner();
    let retry = |error: String, fields: &'static [&'static str]| {
        let token = token.clone();
        page(
            &req,
            &state,
            StatusCode::UNPROCESSABLE_ENTITY,
            "auth/password_reset_form.html",
            move |ctx| {
                ctx.insert("token", &token);
                ctx.insert("error", &Some(error));
                ctx.insert("error_fields", fields);
            },
        )
    };
    if form.password != form.password_confirm {
        return retry(
            "The two passwords do not match.".into(),
            &["password", "password_confirm"],
        );
    }
    if let Err(e) = passwords::check_policy(&form.password) {
        return retry(e.to_string(), &["password"]);
    }
    // Check before hashing so a dead link costs no argon2 run.
    let check = token.clone();
    if state
        .db(move |conn| password_resets::check(conn, &check))
        .await?
        .is_none()
    {
        return invalid(&req, &state);
    }
    let password = form.password;
    let hash = state.hashing(move || passwords::hash(&password)).await??;
    let used = token.clone();
    let done = state
        .db(
            move |conn| match password_resets::complete(conn, &used, &hash) {
                Ok(user) => Ok(Some(Ok(user))),
                Err(CoreError::Invalid { field: "token", .. }) => Ok(None),
                // A host listener refused: the link stays unused; say why.
                Err(CoreError::Vetoed(message)) => Ok(Some(Err(message))),
                Err(e) => Err(WebError::from(e)),
            },
        )
        .await?;
    match done {
        Some(Err(message)) => retry(message, &[]),
        Some(Ok(_)) => {
            let mut res = HttpResponse::SeeOther();
            no_referrer(&mut res);
            Ok(res
                .insert_header((
                    header::LOCATION,
                    format!("{}/login?reset=done", state.prefix()),
                ))
                .finish())
        }
        None => invalid(&req, &state),
    }
}

/// The answer while the queue of this form's work is full.
pub(crate) fn busy() -> WebError {
    WebError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "Service Unavailable",
        crate::state::BUSY_REQUESTS,
    )
}
