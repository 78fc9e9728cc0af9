//! Email verification from the admin side: mark a user's address verified,
//! or send them a new verification link (the user page and the bulk bar).
//! The checks (`can` for `Edit` on each user), the cap and the audit are the
//! core's (`email_verification`).

use actix_web::{web, HttpRequest, HttpResponse};
use frontdesk_core::tokens::SecretToken;
use frontdesk_core::users::User;
use frontdesk_core::{email_verification, Actor, CoreResult, DbConnection};

use super::{finish, verify, Admin, Params, State};
use crate::error::WebError;
use crate::state::FrontdeskState;

fn user_url(state: &State, id: i64) -> String {
    format!("{}/users/{id}", state.settings().admin_prefix)
}

/// Sends `user_id` a new verification link (the mail rendered as at sign-up).
pub fn resend(
    conn: &mut DbConnection,
    state: &FrontdeskState,
    actor: &Actor,
    user_id: i64,
) -> CoreResult<()> {
    email_verification::request_for_user(
        conn,
        actor,
        user_id,
        state.settings().email_verification_ttl,
        Box::new(|u: &User, t: &SecretToken, at| crate::signup::verification_mail(state, u, t, at)),
    )
}

/// `POST /admin/users/{id}/verify-email`.
pub async fn mark_verified(
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
        .db(move |conn| email_verification::mark_verified(conn, &actor, id))
        .await;
    finish(&state, result, &user_url(&state, id), |u| {
        format!("{} is marked verified.", u.email)
    })
}

/// `POST /admin/users/{id}/resend-verification`.
pub async fn resend_mail(
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
    let st = state.get_ref().clone();
    let result = state.db(move |conn| resend(conn, &st, &actor, id)).await;
    if result.is_ok() {
        state.wake_mailer();
    }
    finish(&state, result, &user_url(&state, id), |_| {
        "A new verification mail is on its way; earlier links no longer work.".into()
    })
}

/// The bulk bar's two actions on many users, all or nothing: one user the
/// admin may not edit (or one whose mail is refused) changes no one.
pub fn bulk(
    conn: &mut DbConnection,
    state: &FrontdeskState,
    actor: &Actor,
    ids: &[i64],
    send_mail: bool,
) -> CoreResult<()> {
    frontdesk_core::db::write_transaction(conn, |conn| {
        for &id in ids {
            if send_mail {
                resend(conn, state, actor, id)?;
            } else {
                email_verification::mark_verified(conn, actor, id)?;
            }
        }
        Ok(())
    })
}
