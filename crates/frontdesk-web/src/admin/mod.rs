//! The admin pages: who may open them (the `Admin` extractor, or the host's
//! own [`AdminAuthorizer`]), the pieces every page shares (form parsing,
//! CSRF, flash messages, rendering) and the routes. One module per page
//! below. Only [`AdminAuthorizer`] is public; hosts mount the pages with
//! [`admin_scope`](crate::admin_scope) or [`configure`](crate::configure).

pub(crate) mod activity;
pub(crate) mod api_keys;
pub(crate) mod audit;
pub(crate) mod chart;
pub(crate) mod dashboard;
pub(crate) mod directory_sync;
pub(crate) mod display;
pub(crate) mod exports;
pub(crate) mod imports;
pub(crate) mod invitations;
pub(crate) mod login_attempts;
pub(crate) mod mfa;
pub(crate) mod new_user;
pub(crate) mod organizations;
pub(crate) mod sessions;
pub(crate) mod sso;
pub(crate) mod user_detail;
pub(crate) mod users;
pub(crate) mod verification;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::dev::Payload;
use actix_web::http::{header, StatusCode};
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use chrono::{NaiveDate, NaiveDateTime};
use frontdesk_core::{users as core_users, Actor, CoreError};
use serde::Serialize;
use tera::Context;

use crate::csrf;
use crate::current_user::{client_info, resolve, sign_in_required, state_of};
use crate::error::WebError;
use crate::headers::security_headers;
use crate::state::FrontdeskState;

pub(crate) const DEFAULT_PREFIX: &str = "/admin";

pub(crate) const STYLESHEET: &str = include_str!("../../assets/admin.css");
pub(crate) const SCRIPT: &str = include_str!("../../assets/admin.js");

/// The host's hook: decides from the request who is acting, or refuses
/// (`WebError::forbidden`, or `WebError::redirect_to` its own login page).
pub type AdminAuthorizer = Arc<dyn Fn(&HttpRequest) -> Result<Actor, WebError> + Send + Sync>;

/// Someone allowed into the admin area, with the roles they act with.
pub(crate) struct Admin {
    pub actor: Actor,
    /// The CSRF token for the forms on the page.
    pub csrf_token: String,
    /// Who is signed in, for the page header.
    pub label: String,
    new_csrf_cookie: Option<Cookie<'static>>,
}

type LocalBoxFuture<T> = Pin<Box<dyn Future<Output = T>>>;

impl FromRequest for Admin {
    type Error = WebError;
    type Future = LocalBoxFuture<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { admin_for(&req).await })
    }
}

async fn admin_for(req: &HttpRequest) -> Result<Admin, WebError> {
    let state = state_of(req)?;
    let ip = client_info(req, &state).ip;
    let signed_in = resolve(req).await?;
    if let Some(hook) = state.settings().admin_authorizer.clone() {
        let mut actor = hook(req)?;
        if actor.ip.is_none() {
            actor.ip = ip;
        }
        let (csrf_token, new_csrf_cookie) = match &signed_in {
            Some(u) => (u.csrf_token().to_owned(), None),
            None => csrf::form_token(req, &state),
        };
        return Ok(Admin {
            label: signed_in.map_or_else(|| actor.label(), |u| u.user.email.clone()),
            actor,
            csrf_token,
            new_csrf_cookie,
        });
    }
    let me = signed_in.ok_or_else(|| sign_in_required(req))?;
    let id = me.id();
    let actor = state
        .db(move |conn| core_users::actor_for(conn, id, ip))
        .await?;
    if !actor.is_admin_user() {
        return Err(WebError::forbidden(
            "You do not have access to the admin pages.",
        ));
    }
    Ok(Admin {
        actor,
        csrf_token: me.csrf_token().to_owned(),
        label: me.user.email.clone(),
        new_csrf_cookie: None,
    })
}

impl Admin {
    /// Staff see every organization; organization admins only theirs.
    pub fn scope(&self) -> Option<Vec<i64>> {
        self.actor.visible_orgs()
    }

    pub fn is_staff(&self) -> bool {
        self.actor.staff_role.is_some()
    }
}

/// A form body or query string with repeated keys kept (`ids=1&ids=2`).
pub(crate) struct Params(Vec<(String, String)>);

impl Params {
    pub fn parse(raw: &[u8]) -> Params {
        Params(url::form_urlencoded::parse(raw).into_owned().collect())
    }

    /// A form body; a body that does not decode to UTF-8 is refused.
    pub fn form(raw: &[u8]) -> Result<Params, WebError> {
        crate::forms::check_utf8(raw)?;
        Ok(Params::parse(raw))
    }

    pub fn query(req: &HttpRequest) -> Params {
        Params::parse(req.query_string().as_bytes())
    }

    /// The first non-empty value of `key`, trimmed.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.trim())
            .find(|v| !v.is_empty())
    }

    pub fn text(&self, key: &str) -> String {
        self.get(key).unwrap_or("").to_owned()
    }

    /// Every non-empty value of `key`.
    pub fn all(&self, key: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
            .collect()
    }

    pub fn int(&self, key: &str) -> Result<Option<i64>, WebError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .parse::<i64>()
                .map(Some)
                .map_err(|_| WebError::bad_request(format!("{key} must be a whole number"))),
        }
    }

    pub fn ids(&self, key: &str) -> Result<Vec<i64>, WebError> {
        self.all(key)
            .into_iter()
            .map(|v| {
                v.parse::<i64>()
                    .map_err(|_| WebError::bad_request(format!("{key} must be whole numbers")))
            })
            .collect()
    }

    /// A `YYYY-MM-DD` date as the start of that day.
    pub fn date(&self, key: &str) -> Result<Option<NaiveDateTime>, WebError> {
        Ok(self.day(key)?.and_then(|d| d.and_hms_opt(0, 0, 0)))
    }

    /// A `YYYY-MM-DD` date as the start of the next day (for inclusive "to" dates).
    pub fn date_end(&self, key: &str) -> Result<Option<NaiveDateTime>, WebError> {
        Ok(self
            .day(key)?
            .and_then(|d| d.succ_opt())
            .and_then(|d| d.and_hms_opt(0, 0, 0)))
    }

    fn day(&self, key: &str) -> Result<Option<NaiveDate>, WebError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => NaiveDate::parse_from_str(v, "%Y-%m-%d")
                .map(Some)
                .map_err(|_| WebError::bad_request(format!("{key} must be a date (YYYY-MM-DD)"))),
        }
    }

    pub fn page(&self) -> Result<i64, WebError> {
        match self.int("page")? {
            None => Ok(1),
            Some(p) if (1..=1_000_000).contains(&p) => Ok(p),
            Some(_) => Err(WebError::bad_request("page must be between 1 and 1000000")),
        }
    }

    /// Every pair, in order.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.0
    }

    /// The pairs, for rebuilding a URL (pagination links keep the filters).
    pub fn pairs_without(&self, skip: &[&str]) -> String {
        url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(
                self.0
                    .iter()
                    .filter(|(k, v)| !skip.contains(&k.as_str()) && !v.trim().is_empty()),
            )
            .finish()
    }
}

/// Checks origin and CSRF token of an admin form.
pub(crate) fn verify(
    req: &HttpRequest,
    state: &FrontdeskState,
    form: &Params,
) -> Result<(), WebError> {
    csrf::verify(req, state, form.get(csrf::FIELD).unwrap_or(""))
}

const FLASH_COOKIE: &str = "frontdesk_flash";

/// A one-time message shown on the page a change redirects to.
#[derive(Serialize)]
pub(crate) struct Flash {
    pub kind: &'static str,
    pub text: String,
}

fn flash_cookie(state: &FrontdeskState, value: String) -> Cookie<'static> {
    Cookie::build(FLASH_COOKIE, value)
        .path("/")
        .http_only(true)
        .secure(state.secure_cookies())
        .same_site(SameSite::Lax)
        .finish()
}

/// The flash message, when its signature holds (see [`redirect`]).
fn read_flash(req: &HttpRequest, state: &FrontdeskState) -> Option<Flash> {
    let c = req.cookie(FLASH_COOKIE)?;
    let (mac, value) = c.value().split_once('.')?;
    let decoded: String = url::form_urlencoded::parse(format!("m={value}").as_bytes())
        .map(|(_, v)| v.into_owned())
        .next()?;
    if !csrf::flash_signed(state, &decoded, mac) {
        return None;
    }
    let (kind, text) = decoded.split_once(':')?;
    let kind = match kind {
        "ok" => "ok",
        _ => "error",
    };
    Some(Flash {
        kind,
        text: text.chars().take(300).collect(),
    })
}

/// A 303 to `to` carrying a flash message.
///
/// The cookie is `<mac>.<message>`, the message signed with HMAC-SHA256 under
/// the site key (like the pre-session CSRF tokens), so a cookie set by anyone
/// else (a sibling subdomain, another app of the host) cannot put words on
/// an admin page.
pub(crate) fn redirect(state: &FrontdeskState, to: &str, kind: &str, text: &str) -> HttpResponse {
    let message = format!("{kind}:{text}");
    let mac = csrf::sign_flash(state, &message);
    let encoded: String = url::form_urlencoded::byte_serialize(message.as_bytes()).collect();
    let value = format!("{mac}.{encoded}");
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to.to_owned()))
        .cookie(flash_cookie(state, value))
        .finish()
}

/// Turns the outcome of a change into a redirect with a flash: success, or the
/// reason a bad input was refused. Access errors stay errors (403/404).
pub(crate) fn finish<T>(
    state: &FrontdeskState,
    result: Result<T, WebError>,
    to: &str,
    ok: impl FnOnce(T) -> String,
) -> Result<HttpResponse, WebError> {
    match result {
        Ok(v) => Ok(redirect(state, to, "ok", &ok(v))),
        Err(e) if matches!(e.status, StatusCode::BAD_REQUEST | StatusCode::CONFLICT) => {
            Ok(redirect(state, to, "error", &e.detail))
        }
        Err(e) => Err(e),
    }
}

/// Renders an admin page: the shared context (prefixes, CSRF token, who is
/// signed in, the flash) plus the page's own.
pub(crate) fn render(
    req: &HttpRequest,
    state: &FrontdeskState,
    admin: &Admin,
    name: &str,
    nav: &str,
    mut ctx: Context,
) -> Result<HttpResponse, WebError> {
    render_status(req, state, admin, name, nav, StatusCode::OK, &mut ctx)
}

pub(crate) fn render_status(
    req: &HttpRequest,
    state: &FrontdeskState,
    admin: &Admin,
    name: &str,
    nav: &str,
    status: StatusCode,
    ctx: &mut Context,
) -> Result<HttpResponse, WebError> {
    ctx.extend(state.context());
    ctx.insert("admin_prefix", &state.settings().admin_prefix);
    ctx.insert("csrf_token", &admin.csrf_token);
    ctx.insert("me", &admin.label);
    ctx.insert("nav", nav);
    ctx.insert("is_staff", &admin.is_staff());
    ctx.insert(
        "can_manage_site",
        &frontdesk_core::authz::can(
            &admin.actor,
            frontdesk_core::Action::ManageSite,
            &frontdesk_core::Target::Site,
        ),
    );
    ctx.insert("ext_nav", &state.settings().extensions.nav());
    ctx.insert(
        "parts",
        &crate::parts::flags(&state.settings().disabled_parts),
    );
    let flash = read_flash(req, state);
    ctx.insert("flash", &flash);
    let body = state.render(name, ctx)?;
    let mut res = HttpResponse::build(status);
    if flash.is_some() {
        let mut gone = flash_cookie(state, String::new());
        gone.make_removal();
        res.cookie(gone);
    }
    if let Some(c) = &admin.new_csrf_cookie {
        res.cookie(c.clone());
    }
    Ok(res.content_type("text/html; charset=utf-8").body(body))
}

pub(crate) fn show_time(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%d %H:%M").to_string()
}

pub(crate) fn show_opt(t: Option<NaiveDateTime>) -> String {
    t.map(show_time).unwrap_or_default()
}

/// The extension sections of user `id`'s page, rendered (the caller has
/// checked that the admin may view the user).
pub(crate) async fn extension_sections(
    state: &FrontdeskState,
    admin: &Admin,
    id: i64,
) -> Result<Vec<RenderedSection>, WebError> {
    let sections = state.settings().extensions.sections();
    if sections.is_empty() {
        return Ok(vec![]);
    }
    let actor = admin.actor.clone();
    let loaded = {
        let sections = sections.clone();
        state
            .db(move |conn| {
                sections
                    .iter()
                    .map(|s| (s.load)(conn, &actor, id))
                    .collect::<Result<Vec<_>, CoreError>>()
            })
            .await?
    };
    sections
        .iter()
        .zip(loaded)
        .map(|(s, value)| {
            let mut ctx = Context::from_value(value).map_err(WebError::internal)?;
            ctx.extend(state.context());
            ctx.insert("admin_prefix", &state.settings().admin_prefix);
            ctx.insert("csrf_token", &admin.csrf_token);
            ctx.insert("user_id", &id);
            Ok(RenderedSection {
                title: s.title.clone(),
                html: state.render(&s.template, &ctx)?,
            })
        })
        .collect()
}

#[derive(Serialize)]
pub(crate) struct RenderedSection {
    title: String,
    html: String,
}

/// An extension's page, `GET` or `POST` (CSRF-checked; run in one transaction).
async fn extension_page(
    req: HttpRequest,
    state: State,
    admin: Admin,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let (ext, sub) = path.into_inner();
    let Some(page) = state.settings().extensions.page(&ext, &sub).cloned() else {
        return Err(WebError::not_found());
    };
    let post = req.method() == actix_web::http::Method::POST;
    let params = if post {
        let form = Params::form(&body)?;
        verify(&req, &state, &form)?;
        form
    } else {
        Params::query(&req)
    };
    if !frontdesk_core::authz::can(&admin.actor, page.permission, &frontdesk_core::Target::Site) {
        return Err(WebError::forbidden("You may not open this page."));
    }
    let request = crate::extensions::PageRequest {
        actor: admin.actor.clone(),
        method: if post { "POST" } else { "GET" },
        path: sub.trim_matches('/').to_owned(),
        params: params.0,
    };
    let handler = page.handler.clone();
    let result = state
        .db(move |conn| {
            if post {
                frontdesk_core::db::write_transaction(conn, |conn| handler(conn, &request))
            } else {
                handler(conn, &request)
            }
        })
        .await;
    let base = &state.settings().admin_prefix;
    match result {
        Ok(crate::extensions::PageResponse::Render { template, context }) => {
            let ctx = Context::from_value(context).map_err(WebError::internal)?;
            let nav = format!("/ext/{ext}/{}", sub.trim_matches('/'));
            let nav = nav.trim_end_matches('/').to_owned() + "/";
            render(&req, &state, &admin, &template, &nav, ctx)
        }
        Ok(crate::extensions::PageResponse::Redirect { to, ok, message }) => Ok(redirect(
            &state,
            &format!("{base}{to}"),
            if ok { "ok" } else { "error" },
            &message,
        )),
        Err(e) => {
            if matches!(e.status, StatusCode::BAD_REQUEST | StatusCode::CONFLICT) {
                let back = format!("{base}/ext/{ext}/{}", sub.trim_matches('/'));
                Ok(redirect(&state, &back, "error", &e.detail))
            } else {
                Err(e)
            }
        }
    }
}

/// The state as handlers receive it.
pub(crate) type State = web::Data<FrontdeskState>;

// The admin's assets are for admins only (they describe the admin surface);
// cached privately, never by a shared cache.
async fn stylesheet(_admin: Admin) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header(("Cache-Control", "private, max-age=3600"))
        .body(STYLESHEET)
}

async fn script(_admin: Admin) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header(("Cache-Control", "private, max-age=3600"))
        .body(SCRIPT)
}

/// The admin pages at `prefix`.
pub(crate) fn scope(prefix: &str) -> impl actix_web::dev::HttpServiceFactory {
    use web::{get, post};
    web::scope(prefix)
        .wrap(actix_web::middleware::from_fn(crate::parts::admin_guard))
        .wrap(security_headers())
        .wrap(actix_web::middleware::from_fn(crate::request_id::assign))
        // `/users/<an id too long for i64>` is a page that does not exist,
        // answered like any other (not the framework's plain-text message).
        .app_data(
            web::PathConfig::default()
                .error_handler(|_, req| WebError::not_found().for_request(req).into()),
        )
        .route("", get().to(dashboard::page))
        .route("/", get().to(dashboard::page))
        .route("/static/admin.css", get().to(stylesheet))
        .route("/static/admin.js", get().to(script))
        .route("/users", get().to(users::list))
        .route("/users/bulk", post().to(users::bulk))
        .route("/users/new", get().to(new_user::page))
        .route("/users/new", post().to(new_user::submit))
        .route("/users/{id}", get().to(user_detail::page))
        .route(
            "/users/{id}/verify-email",
            post().to(verification::mark_verified),
        )
        .route(
            "/users/{id}/resend-verification",
            post().to(verification::resend_mail),
        )
        .route("/users/{id}/activity", get().to(activity::page))
        .route("/users/{id}/activity.csv", get().to(activity::csv))
        .route("/users/{id}/edit", post().to(user_detail::edit))
        .route("/users/{id}/suspend", post().to(user_detail::suspend))
        .route("/users/{id}/restore", post().to(user_detail::restore))
        .route(
            "/users/{id}/local-login",
            post().to(user_detail::local_login),
        )
        .route(
            "/users/{id}/password-reset",
            post().to(user_detail::password_reset),
        )
        .route("/users/{id}/staff-role", post().to(user_detail::staff_role))
        .route("/users/{id}/org-role", post().to(user_detail::org_role))
        .route("/users/{id}/tags", post().to(user_detail::add_tag))
        .route(
            "/users/{id}/tags/remove",
            post().to(user_detail::remove_tag),
        )
        .route(
            "/users/{id}/sessions/revoke-all",
            post().to(user_detail::revoke_all_sessions),
        )
        .route(
            "/users/{id}/lockout/clear",
            post().to(user_detail::clear_lockout),
        )
        .route("/users/{id}/delete", post().to(user_detail::delete))
        .route("/users/{id}/mfa/reset", post().to(mfa::reset))
        .route("/users/{id}/licences", post().to(user_detail::licence))
        .route(
            "/users/{id}/identities/{identity}/unlink",
            post().to(sso::unlink),
        )
        .route("/users/{id}/sso-exemption", post().to(sso::exemption))
        .route("/sessions", get().to(sessions::list))
        .route("/sessions/{id}/revoke", post().to(sessions::revoke))
        .route("/login-attempts", get().to(login_attempts::list))
        .route("/organizations", get().to(organizations::list))
        .route("/organizations", post().to(organizations::create))
        .route("/organizations/{id}", get().to(organizations::page))
        .route("/organizations/{id}", post().to(organizations::edit))
        .route(
            "/organizations/{id}/identity-provider",
            post().to(sso::save_for_org),
        )
        .route(
            "/organizations/{id}/identity-provider/remove",
            post().to(sso::remove_for_org),
        )
        .route(
            "/organizations/{id}/require-mfa",
            post().to(mfa::require_for_organization),
        )
        .route(
            "/organizations/{id}/members",
            post().to(organizations::add_member),
        )
        .route(
            "/organizations/{id}/members/{user}/role",
            post().to(organizations::change_role),
        )
        .route(
            "/organizations/{id}/members/{user}/remove",
            post().to(organizations::remove_member),
        )
        .route(
            "/organizations/{id}/groups",
            post().to(organizations::create_group),
        )
        .route(
            "/organizations/{id}/groups/{group}/delete",
            post().to(organizations::delete_group),
        )
        .route(
            "/organizations/{id}/licences",
            post().to(organizations::group_licence),
        )
        .route(
            "/organizations/{id}/directory-sync",
            get().to(directory_sync::page),
        )
        .route(
            "/organizations/{id}/directory-sync/tokens",
            post().to(directory_sync::create_token),
        )
        .route(
            "/organizations/{id}/directory-sync/tokens/{token}/revoke",
            post().to(directory_sync::revoke_token),
        )
        .route(
            "/organizations/{id}/directory-sync/delete-mode",
            post().to(directory_sync::set_delete_mode),
        )
        .route("/invitations", get().to(invitations::list))
        .route("/invitations", post().to(invitations::create))
        .route("/invitations/{id}/resend", post().to(invitations::resend))
        .route("/invitations/{id}/cancel", post().to(invitations::cancel))
        .route("/imports", get().to(imports::list))
        .route("/imports", post().to(imports::upload))
        .route("/imports/template.csv", get().to(imports::template))
        .route("/imports/{id}", get().to(imports::page))
        .route("/imports/{id}/report.csv", get().to(imports::report_csv))
        .route("/imports/{id}/apply", post().to(imports::apply))
        .route("/exports", get().to(exports::page))
        .route("/exports", post().to(exports::download))
        .route("/audit", get().to(audit::list))
        .route("/api-keys", get().to(api_keys::list))
        .route("/api-keys", post().to(api_keys::create))
        .route("/api-keys/{id}/revoke", post().to(api_keys::revoke))
        .route("/ext/{ext}/{path:.*}", get().to(extension_page))
        .route("/ext/{ext}/{path:.*}", post().to(extension_page))
}
