//! The JSON admin API (default prefix `/admin/api/v1`): users, sessions, login
//! attempts, organizations, tags, audit events and API keys, authenticated by
//! an API key or an admin's session, described by an OpenAPI document.

pub mod api_keys;
pub mod audit;
pub mod auth;
pub mod login_attempts;
pub mod openapi;
pub mod organizations;
pub mod params;
pub mod problem;
pub mod sessions;
pub mod tags;
pub mod users;

use actix_web::middleware::DefaultHeaders;
use actix_web::web;
use chrono::{DateTime, NaiveDateTime, Utc};

pub use auth::ApiActor;

/// Where `configure` mounts the API.
pub const DEFAULT_PREFIX: &str = "/admin/api/v1";

/// The prefix the API is mounted at, for the OpenAPI document's server URL.
#[derive(Debug, Clone)]
pub struct ApiPrefix(pub String);

/// Stored times are UTC without a zone; the API says so.
pub(crate) fn utc(t: NaiveDateTime) -> DateTime<Utc> {
    t.and_utc()
}

/// The API scope at `prefix`. Mount it before any scope whose prefix contains
/// it (such as `/admin`), since actix routes to the first matching scope.
pub fn scope(prefix: &str) -> impl actix_web::dev::HttpServiceFactory {
    let prefix = prefix.trim_end_matches('/');
    web::scope(prefix)
        .app_data(web::Data::new(ApiPrefix(prefix.to_owned())))
        .app_data(problem::json_config())
        .app_data(problem::path_config())
        .wrap(
            DefaultHeaders::new()
                .add(("Cache-Control", "no-store"))
                .add(("X-Content-Type-Options", "nosniff")),
        )
        .service(web::resource("/openapi.json").route(web::get().to(openapi::document)))
        .service(web::resource("/users").route(web::get().to(users::list)))
        .service(
            web::resource("/users/{id}")
                .route(web::get().to(users::get))
                .route(web::patch().to(users::update))
                .route(web::delete().to(users::delete)),
        )
        .service(web::resource("/users/{id}/suspend").route(web::post().to(users::suspend)))
        .service(web::resource("/users/{id}/restore").route(web::post().to(users::restore)))
        .service(
            web::resource("/users/{id}/sessions")
                .route(web::get().to(sessions::of_user))
                .route(web::delete().to(users::revoke_sessions)),
        )
        .service(
            web::resource("/users/{id}/tags/{tag_id}")
                .route(web::put().to(tags::assign))
                .route(web::delete().to(tags::unassign)),
        )
        .service(web::resource("/sessions").route(web::get().to(sessions::list)))
        .service(web::resource("/sessions/{id}").route(web::delete().to(sessions::revoke)))
        .service(web::resource("/login-attempts").route(web::get().to(login_attempts::list)))
        .service(
            web::resource("/organizations")
                .route(web::get().to(organizations::list))
                .route(web::post().to(organizations::create)),
        )
        .service(
            web::resource("/organizations/{slug}")
                .route(web::get().to(organizations::get))
                .route(web::patch().to(organizations::update))
                .route(web::delete().to(organizations::delete)),
        )
        .service(
            web::resource("/organizations/{slug}/members")
                .route(web::get().to(organizations::members))
                .route(web::post().to(organizations::add_member)),
        )
        .service(
            web::resource("/organizations/{slug}/members/{user_id}")
                .route(web::patch().to(organizations::change_member))
                .route(web::delete().to(organizations::remove_member)),
        )
        .service(
            web::resource("/organizations/{slug}/users")
                .route(web::get().to(organizations::users_list)),
        )
        .service(
            web::resource("/organizations/{slug}/users/{id}")
                .route(web::get().to(organizations::user_get)),
        )
        .service(
            web::resource("/organizations/{slug}/users/{id}/sessions")
                .route(web::delete().to(organizations::user_revoke_sessions)),
        )
        .service(
            web::resource("/tags")
                .route(web::get().to(tags::list))
                .route(web::post().to(tags::create)),
        )
        .service(web::resource("/audit-events").route(web::get().to(audit::list)))
        .service(
            web::resource("/api-keys")
                .route(web::get().to(api_keys::list))
                .route(web::post().to(api_keys::create)),
        )
        .service(web::resource("/api-keys/{id}").route(web::delete().to(api_keys::revoke)))
        .default_service(web::to(problem::no_such_route))
}
