//! Second factors on the end user's pages: the sign-in's second step
//! (`{prefix}/mfa`, and `{prefix}/api/login/mfa` for hosts with their own
//! front end), and "Two-step sign-in" (`{prefix}/mfa/setup`): add an
//! authenticator app (QR code rendered here, as SVG), see and renew recovery
//! codes, remove a factor.
//!
//! Between the password and the second factor the browser holds only the
//! challenge's token, in a short-lived cookie scoped to the auth prefix; no
//! session exists until a right code uses the challenge.

use actix_web::cookie::{time::Duration as CookieDuration, Cookie, SameSite};
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use frontdesk_core::auth::{self, SecondFactor, SignInError, SignedIn};
use frontdesk_core::mfa::{self, recovery, totp};
use frontdesk_core::tokens::SecretToken;
use frontdesk_core::CoreError;
use serde::Deserialize;
use serde_json::json;

use crate::csrf;
use crate::current_user::{client_info, CurrentUser};
use crate::error::WebError;
use crate::login::{safe_next, session_cookie, GENERIC_FAILURE};
use crate::state::FrontdeskState;

/// The cookie that carries the challenge between the two steps.
pub const CHALLENGE_COOKIE: &str = "frontdesk_mfa";

const WRONG_CODE: &str =
    "That code is not right. Try the newest code from your app, or a recovery code.";
const EXPIRED: &str = "Your sign-in took too long or was already used. Sign in again.";

pub fn challenge_cookie(state: &FrontdeskState, token: &SecretToken) -> Cookie<'static> {
    Cookie::build(CHALLENGE_COOKIE, token.expose().to_owned())
        .path(state.prefix().to_owned())
        .http_only(true)
        .secure(state.secure_cookies())
        .same_site(SameSite::Lax)
        .max_age(CookieDuration::seconds(
            mfa::challenges::ttl().num_seconds(),
        ))
        .finish()
}

pub(crate) fn challenge_removal(state: &FrontdeskState) -> Cookie<'static> {
    let mut c = challenge_cookie(state, &SecretToken::from_exposed(String::new()));
    c.make_removal();
    c
}

#[derive(Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

impl NextQuery {
    pub fn next(&self) -> Option<&str> {
        self.next.as_deref()
    }
}

#[derive(Deserialize)]
pub struct StepForm {
    #[serde(default)]
    code: String,
    #[serde(default)]
    recovery_code: String,
    #[serde(default)]
    csrf_token: String,
    next: Option<String>,
}

/// Which ways the second step offers: a code from an app, a passkey.
#[derive(Clone, Copy)]
struct Ways {
    app: bool,
    passkey: bool,
}

/// The ways the pending sign-in's user has (an app's code when the
/// challenge is gone: the page then says so on submit).
async fn ways(req: &HttpRequest, state: &FrontdeskState) -> Result<Ways, WebError> {
    let only_app = Ways {
        app: true,
        passkey: false,
    };
    let Some(token) = req.cookie(CHALLENGE_COOKIE).map(|c| c.value().to_owned()) else {
        return Ok(only_app);
    };
    let passkeys_on = state.passkeys().is_some();
    state
        .db(move |conn| {
            let Some(found) = mfa::challenges::find(conn, &token)? else {
                return Ok::<_, CoreError>(only_app);
            };
            let kinds: Vec<String> = mfa::factors(conn, found.user_id)?
                .into_iter()
                .map(|f| f.kind)
                .collect();
            let has = |k: mfa::Kind| kinds.iter().any(|x| x == k.as_str());
            let passkey = passkeys_on && has(mfa::Kind::Passkey);
            Ok(Ways {
                app: has(mfa::Kind::Totp) || !passkey,
                passkey,
            })
        })
        .await
}

async fn render_step(
    req: &HttpRequest,
    state: &FrontdeskState,
    status: StatusCode,
    next: Option<&str>,
    recovery: bool,
    error: Option<&str>,
) -> Result<HttpResponse, WebError> {
    let ways = ways(req, state).await?;
    let (token, new_cookie) = csrf::form_token(req, state);
    let mut ctx = state.context();
    ctx.insert("app", &ways.app);
    ctx.insert("passkey", &ways.passkey);
    ctx.insert("csrf_token", &token);
    let next = next
        .map(|n| safe_next(Some(n), ""))
        .filter(|n| !n.is_empty());
    // For the links between the ways (the templates have no URL encoder).
    let next_query = next
        .as_deref()
        .map(|n| url::form_urlencoded::byte_serialize(n.as_bytes()).collect::<String>());
    ctx.insert("next", &next);
    ctx.insert("next_query", &next_query);
    ctx.insert("recovery", &recovery);
    ctx.insert("error", &error);
    let body = state.render("auth/mfa_challenge.html", &ctx)?;
    let mut res = HttpResponse::build(status);
    if let Some(c) = new_cookie {
        res.cookie(c);
    }
    Ok(res.content_type("text/html; charset=utf-8").body(body))
}

fn back_to_login(state: &FrontdeskState) -> HttpResponse {
    HttpResponse::SeeOther()
        .cookie(challenge_removal(state))
        .insert_header((header::LOCATION, format!("{}/login", state.prefix())))
        .finish()
}

/// `GET {prefix}/mfa`: the second step's form (`?recovery=1` for a recovery code).
pub async fn step_page(
    req: HttpRequest,
    state: web::Data<FrontdeskState>,
    query: web::Query<NextQuery>,
) -> Result<HttpResponse, WebError> {
    if req.cookie(CHALLENGE_COOKIE).is_none() {
        return Ok(back_to_login(&state));
    }
    let recovery = req.query_string().contains("recovery=1");
    render_step(
        &req,
        &state,
        StatusCode::OK,
        query.next.as_deref(),
        recovery,
        None,
    )
    .await
}

/// Outcome of a second step, for the page and the JSON form.
enum Step {
    In(Box<SignedIn>),
    Wrong,
    Refused,
    Expired,
}

async fn run_step(
    req: &HttpRequest,
    state: &FrontdeskState,
    challenge: String,
    code: String,
    recovery_code: String,
) -> Result<Step, WebError> {
    let client = client_info(req, state);
    let settings = state.settings().auth;
    let keys = state.mfa_keys().cloned();
    let replaces = crate::login::presented_session(req, state);
    let st = state.clone();
    let step = state
        .db(move |conn| {
            let factor = if recovery_code.trim().is_empty() {
                SecondFactor::Totp(&code)
            } else {
                SecondFactor::RecoveryCode(&recovery_code)
            };
            match auth::complete_second_step(
                conn,
                keys.as_ref(),
                &challenge,
                factor,
                &client,
                &settings,
                replaces.as_deref(),
            ) {
                Ok(s) => {
                    if matches!(factor, SecondFactor::RecoveryCode(_)) {
                        let mail = notice_mail(&st, &s.user, Notice::RecoveryCodeUsed)?;
                        frontdesk_core::outbox::enqueue(conn, &mail)?;
                    }
                    Ok(Step::In(Box::new(s)))
                }
                Err(SignInError::Refused {
                    reason: frontdesk_core::login_attempts::Reason::MfaFailed,
                    ..
                }) => Ok(Step::Wrong),
                Err(SignInError::Refused { .. }) => Ok(Step::Refused),
                Err(SignInError::ChallengeExpired)
                | Err(SignInError::SecondFactor { .. })
                | Err(SignInError::EnrolmentRequired { .. }) => Ok(Step::Expired),
                Err(SignInError::Other(e)) => Err(WebError::from(e)),
            }
        })
        .await?;
    if matches!(step, Step::In(_)) {
        state.wake_mailer();
    }
    Ok(step)
}

/// `POST {prefix}/mfa`: a code (or a recovery code) for the challenge.
pub async fn step_submit(
    req: HttpRequest,
    state: web::Data<FrontdeskState>,
    form: crate::forms::Form<StepForm>,
) -> Result<HttpResponse, WebError> {
    csrf::verify(&req, &state, &form.csrf_token)?;
    let form = form.into_inner();
    let Some(challenge) = req.cookie(CHALLENGE_COOKIE).map(|c| c.value().to_owned()) else {
        return Ok(back_to_login(&state));
    };
    let recovery = !form.recovery_code.trim().is_empty();
    match run_step(&req, &state, challenge, form.code, form.recovery_code).await? {
        Step::In(signed) => {
            let to = match safe_next(form.next.as_deref(), "") {
                n if !n.is_empty() => n,
                _ => crate::login::landing(&state, signed.user.id).await?,
            };
            Ok(HttpResponse::SeeOther()
                .cookie(challenge_removal(&state))
                .cookie(session_cookie(&state, signed.token.expose()))
                .insert_header((header::LOCATION, to))
                .finish())
        }
        Step::Wrong => {
            render_step(
                &req,
                &state,
                StatusCode::UNAUTHORIZED,
                form.next.as_deref(),
                recovery,
                Some(WRONG_CODE),
            )
            .await
        }
        Step::Refused => {
            render_step(
                &req,
                &state,
                StatusCode::UNAUTHORIZED,
                form.next.as_deref(),
                recovery,
                Some(GENERIC_FAILURE),
            )
            .await
        }
        Step::Expired => {
            let mut res = render_step(
                &req,
                &state,
                StatusCode::UNAUTHORIZED,
                form.next.as_deref(),
                recovery,
                Some(EXPIRED),
            )
            .await?;
            res.add_cookie(&challenge_removal(&state))
                .map_err(|e| WebError::internal(e.to_string()))?;
            Ok(res)
        }
    }
}

#[derive(Deserialize)]
pub struct JsonStep {
    pub(crate) challenge: String,
    #[serde(default)]
    pub(crate) code: String,
    #[serde(default)]
    pub(crate) recovery_code: String,
}

/// `POST {prefix}/api/login/mfa` with `{"challenge", "code"}` or
/// `{"challenge", "recovery_code"}`: as `/api/login` once it succeeds.
pub async fn api_step(
    req: HttpRequest,
    state: web::Data<FrontdeskState>,
    body: web::Json<JsonStep>,
) -> Result<HttpResponse, WebError> {
    csrf::check_origin(&req, &state).map_err(|e| e.json(true))?;
    let body = body.into_inner();
    let step = run_step(&req, &state, body.challenge, body.code, body.recovery_code)
        .await
        .map_err(|e| e.json(true))?;
    let refuse =
        |msg: &str| Err(WebError::new(StatusCode::UNAUTHORIZED, "Unauthorized", msg).json(true));
    match step {
        Step::In(signed) => Ok(crate::login::api_signed_in(&state, &signed)),
        Step::Wrong => refuse(WRONG_CODE),
        Step::Refused => refuse(GENERIC_FAILURE),
        Step::Expired => refuse(EXPIRED),
    }
}

// ---- "Two-step sign-in": the user's own factors ----

fn render_setup(
    state: &FrontdeskState,
    me: &CurrentUser,
    summary: &mfa::Summary,
    status: StatusCode,
    notice: Option<&str>,
    error: Option<&str>,
) -> Result<HttpResponse, WebError> {
    let mut ctx = state.context();
    ctx.insert("csrf_token", me.csrf_token());
    let show = |t: chrono::NaiveDateTime| t.format("%Y-%m-%d %H:%M UTC").to_string();
    let factors: Vec<serde_json::Value> = summary
        .factors
        .iter()
        .map(|f| {
            json!({
                "id": f.id,
                "kind": f.kind,
                "name": f.name,
                "created_at": show(f.created_at),
                "last_used_at": f.last_used_at.map(show),
            })
        })
        .collect();
    ctx.insert("summary", summary);
    ctx.insert("factors", &factors);
    ctx.insert("can_add_app", &state.mfa_keys().is_some());
    ctx.insert("can_add_passkey", &state.passkeys().is_some());
    ctx.insert("notice", &notice);
    ctx.insert("error", &error);
    let body = state.render("auth/mfa_setup.html", &ctx)?;
    Ok(HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(body))
}

async fn summary(state: &FrontdeskState, user_id: i64) -> Result<mfa::Summary, WebError> {
    state.db(move |conn| mfa::summary(conn, user_id)).await
}

/// `GET {prefix}/mfa/setup` (`?added=passkey` after the script added one).
pub async fn setup_page(
    req: HttpRequest,
    state: web::Data<FrontdeskState>,
    me: CurrentUser,
) -> Result<HttpResponse, WebError> {
    let notice = req
        .query_string()
        .contains("added=passkey")
        .then_some("The passkey was added.");
    setup_response(&state, &me, StatusCode::OK, notice, None).await
}

/// The "Two-step sign-in" page with the user's current factors.
pub(crate) async fn setup_response(
    state: &FrontdeskState,
    me: &CurrentUser,
    status: StatusCode,
    notice: Option<&str>,
    error: Option<&str>,
) -> Result<HttpResponse, WebError> {
    let s = summary(state, me.id()).await?;
    render_setup(state, me, &s, status, notice, error)
}

#[derive(Deserialize)]
pub struct NameForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    csrf_token: String,
}

/// The QR code of an otpauth URL, as an inline SVG element.
pub fn qr_svg(url: &str) -> Result<String, WebError> {
    let code = qrcode::QrCode::new(url.as_bytes())
        .map_err(|e| WebError::internal(format!("QR code: {e}")))?;
    let svg = code
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build();
    // The XML declaration has no place inside HTML.
    let start = svg.find("<svg").unwrap_or(0);
    Ok(svg[start..].replacen(
        "<svg",
        "<svg role=\"img\" aria-label=\"QR code for your authenticator app\"",
        1,
    ))
}

/// `POST {prefix}/mfa/totp`: starts adding an authenticator app.
pub async fn totp_begin(
    req: HttpRequest,
    state: web::Data<FrontdeskState>,
    me: CurrentUser,
    form: crate::forms::Form<NameForm>,
) -> Result<HttpResponse, WebError> {
    csrf::verify(&req, &state, &form.csrf_token)?;
    let Some(keys) = state.mfa_keys().cloned() else {
        let s = summary(&state, me.id()).await?;
        return render_setup(
            &state,
            &me,
            &s,
            StatusCode::CONFLICT,
            None,
            Some("Authenticator apps cannot be added: the site has no secret key configured."),
        );
    };
    let user = me.user.clone();
    let issuer = state.settings().site_name.clone();
    let name = form.into_inner().name;
    let enrol = state
        .db(move |conn| totp::begin(conn, &keys, &user, &issuer, &name))
        .await;
    let enrol = match enrol {
        Ok(e) => e,
        Err(e) if e.status.is_client_error() => {
            let s = summary(&state, me.id()).await?;
            return render_setup(
                &state,
                &me,
                &s,
                StatusCode::UNPROCESSABLE_ENTITY,
                None,
                Some(&e.detail),
            );
        }
        Err(e) => return Err(e),
    };
    render_enrol(&state, &me, &enrol, StatusCode::OK, None)
}

fn render_enrol(
    state: &FrontdeskState,
    me: &CurrentUser,
    enrol: &EnrolView,
    status: StatusCode,
    error: Option<&str>,
) -> Result<HttpResponse, WebError> {
    let mut ctx = state.context();
    ctx.insert("csrf_token", me.csrf_token());
    ctx.insert("factor_id", &enrol.factor_id);
    ctx.insert("secret", &enrol.secret_base32);
    ctx.insert("qr_svg", &qr_svg(&enrol.otpauth_url)?);
    ctx.insert("error", &error);
    ctx.insert(
        "confirm_action",
        &format!("{}/mfa/totp/confirm", state.prefix()),
    );
    ctx.insert("cancel_link", &format!("{}/mfa/setup", state.prefix()));
    let body = state.render("auth/mfa_enrol.html", &ctx)?;
    Ok(HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        // The page shows a secret: never cached.
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(body))
}

type EnrolView = totp::Enrolment;

#[derive(Deserialize)]
pub struct ConfirmForm {
    #[serde(default)]
    factor_id: i64,
    #[serde(default)]
    code: String,
    #[serde(default)]
    csrf_token: String,
}

/// `POST {prefix}/mfa/totp/confirm`: the first code makes the app count;
/// a user's first factor also gets a set of recovery codes, shown once.
pub async fn totp_confirm(
    req: HttpRequest,
    state: web::Data<FrontdeskState>,
    me: CurrentUser,
    form: crate::forms::Form<ConfirmForm>,
) -> Result<HttpResponse, WebError> {
    csrf::verify(&req, &state, &form.csrf_token)?;
    let Some(keys) = state.mfa_keys().cloned() else {
        return Err(WebError::not_found());
    };
    let form = form.into_inner();
    let user = me.user.clone();
    let factor_id = form.factor_id;
    let code = form.code;
    let k2 = keys.clone();
    let st = state.get_ref().clone();
    let result = state
        .db(move |conn| {
            match totp::confirm(conn, &k2, &user, factor_id, &code) {
                Ok(()) => {}
                Err(e @ CoreError::Invalid { .. }) => return Ok(Err(e.to_string())),
                Err(e) => return Err(e),
            }
            frontdesk_core::outbox::enqueue(conn, &notice_mail(&st, &user, Notice::Added)?)?;
            if recovery::remaining(conn, user.id)? == 0 {
                Ok(Ok(Some(recovery::regenerate(conn, user.id)?)))
            } else {
                Ok(Ok(None))
            }
        })
        .await?;
    state.wake_mailer();
    match result {
        Ok(Some(codes)) => render_codes(&state, &me, &codes, true),
        Ok(None) => {
            let s = summary(&state, me.id()).await?;
            render_setup(
                &state,
                &me,
                &s,
                StatusCode::OK,
                Some("The authenticator app was added."),
                None,
            )
        }
        Err(message) => {
            // Show the same seed again (its factor is still unconfirmed).
            let user = me.user.clone();
            let issuer = state.settings().site_name.clone();
            let again = state
                .db(move |conn| totp::pending(conn, &keys, &user, factor_id, &issuer))
                .await?;
            render_enrol(
                &state,
                &me,
                &again,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(&message),
            )
        }
    }
}

fn render_codes(
    state: &FrontdeskState,
    me: &CurrentUser,
    codes: &[String],
    first: bool,
) -> Result<HttpResponse, WebError> {
    let mut ctx = state.context();
    ctx.insert("csrf_token", me.csrf_token());
    ctx.insert("codes", codes);
    ctx.insert("first", &first);
    let body = state.render("auth/mfa_codes.html", &ctx)?;
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(body))
}

/// `POST {prefix}/mfa/recovery-codes`: a new set (the old one stops working).
pub async fn recovery_regenerate(
    req: HttpRequest,
    state: web::Data<FrontdeskState>,
    me: CurrentUser,
    form: crate::forms::Form<crate::login::csrf_form::CsrfForm>,
) -> Result<HttpResponse, WebError> {
    csrf::verify(&req, &state, &form.csrf_token)?;
    let user_id = me.id();
    let codes = state
        .db(move |conn| {
            if !mfa::enabled(conn, user_id)? {
                return Ok(None);
            }
            recovery::regenerate(conn, user_id).map(Some)
        })
        .await?;
    match codes {
        Some(codes) => render_codes(&state, &me, &codes, false),
        None => {
            let s = summary(&state, me.id()).await?;
            render_setup(
                &state,
                &me,
                &s,
                StatusCode::CONFLICT,
                None,
                Some("Recovery codes come with a second factor: add one first."),
            )
        }
    }
}

/// `POST {prefix}/mfa/factors/{id}/remove`.
pub async fn remove_factor(
    req: HttpRequest,
    state: web::Data<FrontdeskState>,
    me: CurrentUser,
    path: web::Path<i64>,
    form: crate::forms::Form<crate::login::csrf_form::CsrfForm>,
) -> Result<HttpResponse, WebError> {
    csrf::verify(&req, &state, &form.csrf_token)?;
    let user = me.user.clone();
    let factor_id = path.into_inner();
    let st = state.get_ref().clone();
    state
        .db(move |conn| {
            frontdesk_core::db::write_transaction(conn, |conn| {
                mfa::remove_own(conn, user.id, factor_id)?;
                frontdesk_core::outbox::enqueue(conn, &notice_mail(&st, &user, Notice::Removed)?)
            })
        })
        .await?;
    state.wake_mailer();
    let s = summary(&state, me.id()).await?;
    render_setup(
        &state,
        &me,
        &s,
        StatusCode::OK,
        Some("The factor was removed."),
        None,
    )
}

/// The JSON answer when the password was right and a second step follows.
pub fn api_second_step(token: &SecretToken) -> HttpResponse {
    HttpResponse::Accepted().json(json!({
        "mfa_required": true,
        "challenge": token.expose(),
        "expires_in": mfa::challenges::ttl().num_seconds(),
    }))
}

/// What a security notice tells the user.
#[derive(Debug, Clone, Copy)]
pub enum Notice {
    Added,
    Removed,
    RecoveryCodeUsed,
    ResetByAdmin,
}

impl Notice {
    fn kind(self) -> &'static str {
        match self {
            Notice::Added => "mfa_added",
            Notice::Removed => "mfa_removed",
            Notice::RecoveryCodeUsed => "mfa_recovery_code_used",
            Notice::ResetByAdmin => "mfa_reset",
        }
    }

    fn text(self) -> &'static str {
        match self {
            Notice::Added => "A second factor was added to your account: you will be asked for it after your password.",
            Notice::Removed => "A second factor was removed from your account.",
            Notice::RecoveryCodeUsed => "One of your recovery codes was used to sign in to your account. Each code works once.",
            Notice::ResetByAdmin => "An administrator removed the second factors of your account and signed you out everywhere. Sign in with your password and add an authenticator app again.",
        }
    }
}

/// The security notice mail (template `auth/mfa_notice_email.txt`), queued
/// through the outbox like every mail.
pub fn notice_mail(
    state: &FrontdeskState,
    user: &frontdesk_core::users::User,
    notice: Notice,
) -> frontdesk_core::CoreResult<frontdesk_core::outbox::NewMail> {
    let mut ctx = state.context();
    ctx.insert("name", &user.name());
    ctx.insert("what", notice.text());
    ctx.insert(
        "at",
        &frontdesk_core::time::now()
            .format("%Y-%m-%d %H:%M UTC")
            .to_string(),
    );
    ctx.insert(
        "link",
        &state.absolute_url(&format!("{}/password-reset", state.prefix())),
    );
    let text = state
        .render("auth/mfa_notice_email.txt", &ctx)
        .map_err(|e| CoreError::Config(e.detail))?;
    Ok(frontdesk_core::outbox::NewMail {
        kind: notice.kind().into(),
        recipient: user.email.clone(),
        subject: format!(
            "Two-step sign-in on your {} account",
            state.settings().site_name
        ),
        text_body: text,
        html_body: None,
        invitation_id: None,
    })
}
