//! Email verification from the end user's side: the banner on their own
//! pages while the address is unconfirmed, and the "send me a new link" form
//! (also linked from the sign-in refusal when the host requires verified
//! addresses). The form answers alike whatever the address; the lookup and
//! the mail happen after the answer went out, within the sign-up form's
//! limits per address and per IP and the per-user hourly cap.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use frontdesk_core::tokens::SecretToken;
use frontdesk_core::users::User;
use serde::Deserialize;
use serde_json::json;

use crate::csrf;
use crate::current_user::{client_info, resolve, CurrentUser};
use crate::error::WebError;
use crate::headers::no_referrer;
use crate::state::FrontdeskState;

#[derive(Deserialize)]
pub struct RequestForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    csrf_token: String,
}

/// Adds the "confirm your address" banner to an end user's page while their
/// address is unverified (template `auth/verify_banner.html`).
pub fn banner(ctx: &mut tera::Context, me: &CurrentUser) {
    if !me.user.email_verified {
        ctx.insert(
            "verify_banner",
            &json!({"email": me.user.email, "csrf_token": me.csrf_token()}),
        );
    }
}

fn page(
    req: &HttpRequest,
    state: &FrontdeskState,
    name: &str,
    email: &str,
) -> Result<HttpResponse, WebError> {
    let (token, new_cookie) = csrf::form_token(req, state);
    let mut ctx = state.context();
    ctx.insert("csrf_token", &token);
    ctx.insert("email", email);
    let body = state.render(name, &ctx)?;
    let mut res = HttpResponse::build(StatusCode::OK);
    if let Some(c) = new_cookie {
        res.cookie(c);
    }
    no_referrer(&mut res);
    Ok(res.content_type("text/html; charset=utf-8").body(body))
}

/// `GET {prefix}/verify-email`: the form (the address filled in for a
/// signed-in user).
pub async fn request_page(
    req: HttpRequest,
    state: web::Data<FrontdeskState>,
) -> Result<HttpResponse, WebError> {
    let me = resolve(&req).await?;
    let email = me.map(|m| m.user.email.clone()).unwrap_or_default();
    page(&req, &state, "auth/verify_email_request.html", &email)
}

/// `POST {prefix}/verify-email`: the same page whatever the address (a
/// signed-in user's banner posts without one: theirs is used).
pub async fn request_submit(
    req: HttpRequest,
    state: web::Data<FrontdeskState>,
    form: crate::forms::Form<RequestForm>,
) -> Result<HttpResponse, WebError> {
    csrf::verify(&req, &state, &form.csrf_token)?;
    let mut email = form.into_inner().email.trim().to_owned();
    if email.is_empty() {
        if let Some(me) = resolve(&req).await? {
            email = me.user.email.clone();
        }
    }
    let res = page(&req, &state, "auth/verify_email_sent.html", "")?;
    if email.is_empty() {
        return Ok(res);
    }
    let Some(slot) = state.request_slot() else {
        return Err(crate::password_resets::busy());
    };
    let ip = client_info(&req, &state).ip;
    let st = state.get_ref().clone();
    Ok(crate::deferred::after_sent(res, move || {
        let job = st.clone();
        st.spawn_deferred(move || {
            send(&job, &email, ip.as_deref());
            drop(slot);
        });
    }))
}

/// The work behind the form, after the answer was sent.
fn send(state: &FrontdeskState, email: &str, ip: Option<&str>) {
    let Ok(email) = frontdesk_core::validate::normalize_email(email) else {
        return;
    };
    let settings = state.settings();
    let queued = frontdesk_core::db::retry_on_outage(state.pool(), |conn| {
        if !frontdesk_core::signup::admit(conn, &email, ip, &settings.signup.limits)? {
            return Ok(false);
        }
        frontdesk_core::email_verification::request(
            conn,
            &email,
            settings.email_verification_ttl,
            Box::new(|u: &User, t: &SecretToken, at| {
                crate::signup::verification_mail(state, u, t, at)
            }),
        )
    });
    match queued {
        Ok(true) => state.wake_mailer(),
        Ok(false) => {}
        Err(e) => tracing::error!("frontdesk: verification mail request failed: {e}"),
    }
}
