#![warn(missing_docs)]

//! frontdesk-web: the actix-web side of frontdesk. The auth pages and JSON
//! endpoints, the `CurrentUser` extractors for the host's own handlers, CSRF,
//! security headers and the embedded templates. No SQL here: every database
//! call goes through a core function inside `web::block`.

pub mod activity;
pub mod admin;
pub mod api;
pub(crate) mod assets;
pub mod client_ip;
pub mod csrf;
pub mod current_user;
mod deferred;
pub(crate) mod email_verification;
pub mod error;
pub mod extensions;
pub(crate) mod forms;
pub(crate) mod headers;
pub(crate) mod import_runs;
pub(crate) mod invitations;
pub mod login;
pub(crate) mod mfa;
pub(crate) mod mfa_enrolment;
pub mod parts;
pub(crate) mod passkeys;
pub(crate) mod password_change;
pub mod password_resets;
pub mod request_id;
pub(crate) mod scim;
pub(crate) mod sessions;
pub(crate) mod signup;
pub(crate) mod sso;
pub(crate) mod sso_social;
pub mod state;
pub mod templates;
pub(crate) mod user_filters;
pub(crate) mod users_query;

use actix_web::web::{self, ServiceConfig};

pub use current_user::{role, CurrentUser, OptionalUser, Staff};
pub use error::WebError;
pub use headers::security_headers;
pub use state::{FrontdeskState, Settings};

/// Registers frontdesk's state (for the extractors, app-wide) and mounts the
/// auth scope at the configured prefix: `App::new().configure(configure(state))`.
pub fn configure(state: FrontdeskState) -> impl FnOnce(&mut ServiceConfig) + Clone {
    move |cfg: &mut ServiceConfig| {
        let prefix = state.prefix().to_owned();
        let admin_prefix = state.settings().admin_prefix.clone();
        cfg.app_data(web::Data::new(state));
        cfg.service(auth_scope(&prefix));
        // Before the admin pages, whose scope would otherwise take its paths.
        cfg.service(api_scope(&format!("{admin_prefix}{}", api::SUFFIX)));
        cfg.service(scim::scope(scim::DEFAULT_PREFIX));
        cfg.service(admin_scope(&admin_prefix));
    }
}

/// The JSON admin API at `prefix` (`configure` mounts it at the admin prefix
/// plus `/api/v1`, by default `/admin/api/v1`). Mount it before a scope whose
/// prefix contains it, such as the admin pages.
pub fn api_scope(prefix: &str) -> impl actix_web::dev::HttpServiceFactory {
    api::scope(prefix)
}

/// The admin pages at `prefix` (`configure` mounts them at the configured
/// admin prefix, default `/admin`). Mount the JSON API before this scope.
pub fn admin_scope(prefix: &str) -> impl actix_web::dev::HttpServiceFactory {
    admin::scope(prefix)
}

/// The auth pages; `configure` mounts them, or a host may mount this scope
/// itself (then it must register `web::Data<FrontdeskState>` too).
pub fn auth_scope(prefix: &str) -> impl actix_web::dev::HttpServiceFactory {
    web::scope(prefix)
        .wrap(security_headers())
        .wrap(actix_web::middleware::from_fn(request_id::assign))
        // Forms are read by `forms::Form` (UTF-8 enforced), at most 16 KiB.
        .app_data(web::PayloadConfig::new(16 * 1024))
        // A path segment that does not parse (an id too long for i64) is
        // simply not found, in our format.
        .app_data(
            web::PathConfig::default()
                .error_handler(|_, req| WebError::not_found().for_request(req).into()),
        )
        .app_data(
            web::JsonConfig::default()
                .limit(16 * 1024)
                .error_handler(|e, _| {
                    WebError::bad_request(format!("The JSON body could not be read: {e}"))
                        .json(true)
                        .into()
                }),
        )
        .route("/login", web::get().to(login::login_page))
        .route("/login", web::post().to(login::login_submit))
        .route("/logout", web::post().to(login::logout))
        .route("/sso/start", web::post().to(sso::start))
        .route("/sso/callback", web::get().to(sso::callback))
        .route("/sso/social/{key}", web::post().to(sso_social::start))
        .route("/linked-accounts", web::get().to(sso_social::page))
        .route(
            "/linked-accounts/{key}/link",
            web::post().to(sso_social::link_start),
        )
        .route(
            "/linked-accounts/{id}/unlink",
            web::post().to(sso_social::unlink),
        )
        .route(
            "/password-reset",
            web::get().to(password_resets::request_page),
        )
        .route(
            "/password-reset",
            web::post().to(password_resets::request_submit),
        )
        .route(
            "/password-reset/{token}",
            web::get().to(password_resets::form_page),
        )
        .route(
            "/password-reset/{token}",
            web::post().to(password_resets::form_submit),
        )
        .route("/signup", web::get().to(signup::signup_page))
        .route("/signup", web::post().to(signup::signup_submit))
        .route(
            "/verify-email",
            web::get().to(email_verification::request_page),
        )
        .route(
            "/verify-email",
            web::post().to(email_verification::request_submit),
        )
        .route("/verify-email/{token}", web::get().to(signup::verify_page))
        .route(
            "/verify-email/{token}",
            web::post().to(signup::verify_submit),
        )
        .route("/invitations/{token}", web::get().to(invitations::page))
        .route("/invitations/{token}", web::post().to(invitations::submit))
        .route("/password", web::get().to(password_change::page))
        .route("/password", web::post().to(password_change::submit))
        .route("/mfa", web::get().to(mfa::step_page))
        .route("/mfa", web::post().to(mfa::step_submit))
        .route("/mfa/setup", web::get().to(mfa::setup_page))
        .route("/mfa/enrol", web::get().to(mfa_enrolment::required_page))
        .route("/mfa/enrol", web::post().to(mfa_enrolment::begin))
        .route("/mfa/enrol/confirm", web::post().to(mfa_enrolment::confirm))
        .route("/mfa/totp", web::post().to(mfa::totp_begin))
        .route("/mfa/totp/confirm", web::post().to(mfa::totp_confirm))
        .route(
            "/mfa/recovery-codes",
            web::post().to(mfa::recovery_regenerate),
        )
        .route(
            "/mfa/factors/{id}/remove",
            web::post().to(mfa::remove_factor),
        )
        .route("/mfa/factors/{id}/rename", web::post().to(passkeys::rename))
        .route("/sessions", web::get().to(sessions::list))
        .route(
            "/sessions/revoke-others",
            web::post().to(sessions::revoke_others),
        )
        .route("/sessions/{id}/revoke", web::post().to(sessions::revoke))
        .service(
            web::scope("/api")
                .wrap(actix_web::middleware::from_fn(error::json_errors))
                .route("/login", web::post().to(login::api_login))
                .route("/login/mfa", web::post().to(mfa::api_step))
                .route(
                    "/login/mfa/passkey/begin",
                    web::post().to(passkeys::step_begin),
                )
                .route(
                    "/login/mfa/passkey/finish",
                    web::post().to(passkeys::step_finish),
                )
                .route(
                    "/login/mfa/enrol/passkey/begin",
                    web::post().to(passkeys::enrol_begin),
                )
                .route(
                    "/login/mfa/enrol/passkey/finish",
                    web::post().to(passkeys::enrol_finish),
                )
                .route(
                    "/login/passkey/begin",
                    web::post().to(passkeys::sign_in_begin),
                )
                .route(
                    "/login/passkey/finish",
                    web::post().to(passkeys::sign_in_finish),
                )
                .route(
                    "/passkeys/register/begin",
                    web::post().to(passkeys::register_begin),
                )
                .route(
                    "/passkeys/register/finish",
                    web::post().to(passkeys::register_finish),
                )
                .route("/signup", web::post().to(signup::api_signup))
                .route("/logout", web::post().to(login::api_logout))
                .route("/session", web::get().to(login::api_session)),
        )
        .route("/static/frontdesk.css", web::get().to(assets::stylesheet))
        .route("/static/passkeys.js", web::get().to(passkeys::script))
}
