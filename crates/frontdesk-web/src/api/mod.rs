//! The JSON admin API (default prefix `/admin/api/v1`): users, sessions, login
//! attempts, organizations, tags, audit events and API keys, authenticated by
//! an API key or an admin's session, described by an OpenAPI document.

pub(crate) mod activity;
pub(crate) mod api_keys;
pub(crate) mod audit;
pub(crate) mod auth;
pub(crate) mod exports;
pub(crate) mod extensions;
pub(crate) mod groups;
pub(crate) mod identity_providers;
pub(crate) mod imports;
pub(crate) mod invitations;
pub(crate) mod licences;
pub(crate) mod login_attempts;
pub(crate) mod openapi;
pub(crate) mod organizations;
pub(crate) mod params;
pub(crate) mod problem;
pub(crate) mod scim_tokens;
pub(crate) mod sessions;
pub(crate) mod sign_in;
pub(crate) mod tags;
pub(crate) mod users;
pub(crate) mod users_create;

use actix_web::middleware::DefaultHeaders;
use actix_web::web;
use chrono::{DateTime, NaiveDateTime, Utc};

/// `configure` mounts the API at the admin prefix followed by this.
pub(crate) const SUFFIX: &str = "/api/v1";

/// The prefix the API is mounted at, for the OpenAPI document's server URL.
#[derive(Debug, Clone)]
pub(crate) struct ApiPrefix(pub String);

/// Stored times are UTC without a zone; the API says so.
pub(crate) fn utc(t: NaiveDateTime) -> DateTime<Utc> {
    t.and_utc()
}

/// Declares every route once: the scope is built from this list, and the
/// list is public so tests can check the OpenAPI document covers it.
macro_rules! routes {
    ($($path:literal => { $($method:ident : $handler:path),+ $(,)? }),* $(,)?) => {
        /// Every (method, path) the API answers, paths relative to the prefix.
        pub const ROUTES: &[(&str, &str)] = &[$($((stringify!($method), $path),)+)*];

        fn register(scope: actix_web::Scope) -> actix_web::Scope {
            scope$(.service(web::resource($path)$(.route(web::$method().to($handler)))+))*
        }
    };
}

routes! {
    "/openapi.json" => { get: openapi::document },
    "/users" => { get: users::list, post: users_create::create },
    "/users/{id}" => { get: users::get, patch: users::update, delete: users::delete },
    "/users/{id}/suspend" => { post: users::suspend },
    "/users/{id}/restore" => { post: users::restore },
    "/users/{id}/verify-email" => { post: users_create::verify_email },
    "/users/{id}/resend-verification" => { post: users_create::resend_verification },
    "/users/{id}/sessions" => { get: sessions::of_user, delete: users::revoke_sessions },
    "/users/{id}/activity" => { get: activity::of_user },
    "/users/{id}/tags/{tag_id}" => { put: tags::assign, delete: tags::unassign },
    "/sessions" => { get: sessions::list },
    "/sessions/{id}" => { delete: sessions::revoke },
    "/login-attempts" => { get: login_attempts::list },
    "/organizations" => { get: organizations::list, post: organizations::create },
    "/organizations/{slug}" => {
        get: organizations::get,
        patch: organizations::update,
        delete: organizations::delete,
    },
    "/organizations/{slug}/members" => {
        get: organizations::members,
        post: organizations::add_member,
    },
    "/organizations/{slug}/members/{user_id}" => {
        patch: organizations::change_member,
        delete: organizations::remove_member,
    },
    "/organizations/{slug}/users" => {
        get: organizations::users_list,
        post: users_create::create_in_org,
    },
    "/organizations/{slug}/users/{id}/verify-email" => { post: users_create::org_verify_email },
    "/organizations/{slug}/users/{id}/resend-verification" => {
        post: users_create::org_resend_verification,
    },
    "/organizations/{slug}/users/{id}" => { get: organizations::user_get },
    "/organizations/{slug}/users/{id}/sessions" => { delete: organizations::user_revoke_sessions },
    "/organizations/{slug}/users/{id}/activity" => { get: activity::of_org_user },
    "/organizations/{slug}/users/{id}/licences/{key}" => {
        put: licences::assign_user,
        delete: licences::remove_user,
    },
    "/organizations/{slug}/licences" => { get: licences::list },
    "/organizations/{slug}/groups" => { get: groups::list, post: groups::create },
    "/organizations/{slug}/groups/{id}" => {
        get: groups::get,
        patch: groups::update,
        delete: groups::delete,
    },
    "/organizations/{slug}/groups/{id}/members" => { post: groups::change_members },
    "/organizations/{slug}/groups/{id}/members/{user_id}" => {
        put: groups::add_member,
        delete: groups::remove_member,
    },
    "/organizations/{slug}/groups/{id}/licences/{key}" => {
        put: licences::assign_group,
        delete: licences::remove_group,
    },
    "/organizations/{slug}/scim-tokens" => {
        get: scim_tokens::list,
        post: scim_tokens::create,
    },
    "/organizations/{slug}/scim-tokens/{id}" => { delete: scim_tokens::revoke },
    "/organizations/{slug}/identity-provider" => {
        get: identity_providers::get,
        put: identity_providers::put,
        delete: identity_providers::delete,
    },
    "/tags" => { get: tags::list, post: tags::create },
    "/audit-events" => { get: audit::list },
    "/import" => { post: imports::import },
    "/import/template" => { get: imports::template },
    "/imports" => { get: imports::list },
    "/imports/{id}" => { get: imports::get },
    "/export" => { get: exports::export },
    "/invitations" => { get: invitations::list, post: invitations::create },
    "/invitations/{id}" => { get: invitations::get },
    "/invitations/{id}/resend" => { post: invitations::resend },
    "/invitations/{id}/cancel" => { post: invitations::cancel },
    "/api-keys" => { get: api_keys::list, post: api_keys::create },
    "/api-keys/{id}" => { delete: api_keys::revoke },
    "/sign-in" => { post: sign_in::sign_in },
    "/sign-in/second-step" => { post: sign_in::second_step },
}

/// The routes open to anyone, without a key or a session (signing in); every
/// other route of [`ROUTES`] answers 401 to an anonymous caller.
pub const OPEN_ROUTES: &[(&str, &str)] = &[("post", "/sign-in"), ("post", "/sign-in/second-step")];

/// The API scope at `prefix`. Mount it before any scope whose prefix contains
/// it (such as `/admin`), since actix routes to the first matching scope.
pub(crate) fn scope(prefix: &str) -> impl actix_web::dev::HttpServiceFactory {
    let prefix = prefix.trim_end_matches('/');
    register(web::scope(prefix))
        .app_data(web::Data::new(ApiPrefix(prefix.to_owned())))
        .app_data(problem::json_config())
        .app_data(problem::path_config())
        .wrap(
            DefaultHeaders::new()
                .add(("Cache-Control", "no-store"))
                .add(("X-Content-Type-Options", "nosniff")),
        )
        .service(web::resource("/ext/{ext}/{path:.*}").to(extensions::dispatch))
        .wrap(actix_web::middleware::from_fn(crate::parts::api_guard))
        .wrap(actix_web::middleware::from_fn(crate::request_id::assign))
        .default_service(web::to(problem::no_such_route))
}
