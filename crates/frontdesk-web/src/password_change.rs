//! A signed-in user changes their password: the current one is checked, the
//! new one must meet the policy, and every other session of theirs ends.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use frontdesk_core::{auth, passwords, CoreError};
use serde::Deserialize;

use crate::csrf;
use crate::current_user::CurrentUser;
use crate::error::WebError;
use crate::state::FrontdeskState;

#[derive(Deserialize)]
pub struct ChangeForm {
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_confirm: String,
    #[serde(default)]
    csrf_token: String,
}

fn render(
    state: &FrontdeskState,
    me: &CurrentUser,
    status: StatusCode,
    error: Option<(&str, &[&str])>,
    done: bool,
) -> Result<HttpResponse, WebError> {
    let mut ctx = state.context();
    ctx.insert("csrf_token", me.csrf_token());
    // The message, and the fields it is about (the one to fix first first).
    ctx.insert("error", &error.map(|(text, _)| text));
    ctx.insert("error_fields", error.map_or(&[][..], |(_, fields)| fields));
    ctx.insert("done", &done);
    crate::email_verification::banner(&mut ctx, me);
    let body = state.render("auth/password_change.html", &ctx)?;
    Ok(HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(body))
}

pub async fn page(
    state: web::Data<FrontdeskState>,
    me: CurrentUser,
) -> Result<HttpResponse, WebError> {
    render(&state, &me, StatusCode::OK, None, false)
}

pub async fn submit(
    req: HttpRequest,
    state: web::Data<FrontdeskState>,
    me: CurrentUser,
    form: crate::forms::Form<ChangeForm>,
) -> Result<HttpResponse, WebError> {
    csrf::verify(&req, &state, &form.csrf_token)?;
    let form = form.into_inner();
    let retry = |msg: &str, fields: &[&str]| {
        render(
            &state,
            &me,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some((msg, fields)),
            false,
        )
    };
    if form.password != form.password_confirm {
        return retry(
            "The two new passwords do not match.",
            &["password", "password_confirm"],
        );
    }
    if let Err(e) = passwords::check_policy(&form.password) {
        return retry(&e.to_string(), &["password"]);
    }
    let user = me.user.clone();
    let current = form.current_password;
    let new = form.password;
    // One argon2 slot for the check, then one for the new hash.
    let hash = state
        .hashing(move || auth::verify_password(&user, &current).then(|| passwords::hash(&new)))
        .await?;
    let hash = match hash {
        None => return retry("The current password is not right.", &["current_password"]),
        Some(h) => h?,
    };
    let (user_id, keep) = (me.id(), me.session.id);
    let vetoed = state
        .db(
            move |conn| match auth::change_password(conn, user_id, &hash, Some(keep)) {
                Ok(_) => Ok(None),
                // A host listener refused: nothing changed; say why.
                Err(CoreError::Vetoed(message)) => Ok(Some(message)),
                Err(e) => Err(e),
            },
        )
        .await?;
    if let Some(message) = vetoed {
        return retry(&message, &[]);
    }
    render(&state, &me, StatusCode::OK, None, true)
}
