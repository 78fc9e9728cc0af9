//! Security headers on every frontdesk response. Handlers may set a stricter
//! value (token pages set `Referrer-Policy: no-referrer`); these fill the gaps.

use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::DefaultHeaders;
use actix_web::HttpResponseBuilder;

/// No inline script anywhere; styles only from our own stylesheet.
pub const CSP: &str =
    "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self' data:; \
                       form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The middleware; a host may wrap its own scopes with it too.
pub fn security_headers() -> DefaultHeaders {
    DefaultHeaders::new()
        .add(("Content-Security-Policy", CSP))
        .add(("X-Frame-Options", "DENY"))
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("Referrer-Policy", "same-origin"))
        .add(("Cross-Origin-Opener-Policy", "same-origin"))
        // Pages show per-user data and CSRF tokens; only the stylesheet opts in to caching.
        .add(("Cache-Control", "no-store"))
}

/// For pages whose URL holds a secret token.
pub fn no_referrer(builder: &mut HttpResponseBuilder) -> &mut HttpResponseBuilder {
    builder.insert_header((
        HeaderName::from_static("referrer-policy"),
        HeaderValue::from_static("no-referrer"),
    ))
}
