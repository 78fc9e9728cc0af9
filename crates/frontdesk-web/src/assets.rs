//! The stylesheet, embedded in the binary and cacheable.

use actix_web::HttpResponse;

pub const STYLESHEET: &str = include_str!("../assets/frontdesk.css");

pub async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header(("Cache-Control", "public, max-age=3600"))
        .body(STYLESHEET)
}
