//! A request id for every request frontdesk serves: taken from an incoming
//! `X-Request-Id` when it is a plain token (so an id set by the host's proxy
//! follows the request), otherwise made here; sent back in `X-Request-Id`,
//! written into problem+json bodies as `request_id`, and put in front of
//! frontdesk's error log lines, so a user's report can be matched to a log
//! line.
//!
//! Each request runs in a `tracing` span named `request` (debug level) with the id, the
//! method and, once routed, the route's pattern and the status (never the
//! path itself: invitation and reset links carry their token in it). Work
//! sent to the blocking pool runs in the same span and sees the same id
//! ([`carried`]).

use actix_web::body::BoxBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use rand::RngCore;
use tracing::Instrument;

/// The response (and accepted request) header.
pub const HEADER: &str = "x-request-id";

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being served on this task, if any.
pub fn current() -> Option<String> {
    REQUEST_ID.try_with(|id| id.clone()).ok()
}

/// Runs `f` with `id` as the current request id (for work off the request's
/// task, on a blocking thread).
pub fn within<T>(id: Option<String>, f: impl FnOnce() -> T) -> T {
    match id {
        Some(id) => REQUEST_ID.sync_scope(id, f),
        None => f(),
    }
}

/// [`carried`] for a future: `work`, to be spawned as a task of its own.
pub fn carried_future<T>(
    work: impl std::future::Future<Output = T>,
) -> impl std::future::Future<Output = T> {
    let span = tracing::Span::current();
    let id = current();
    async move {
        match id {
            Some(id) => REQUEST_ID.scope(id, work).await,
            None => work.await,
        }
    }
    .instrument(span)
}

/// `f`, to run elsewhere (the blocking pool, a spawned job) inside the
/// caller's span and with the caller's request id, so what it logs names the
/// request it serves.
pub fn carried<T>(f: impl FnOnce() -> T) -> impl FnOnce() -> T {
    let span = tracing::Span::current();
    let id = current();
    move || {
        let _entered = span.enter();
        within(id, f)
    }
}

/// `actix_web::web::block` with the caller's span and request id carried.
pub(crate) async fn block<T, F>(f: F) -> Result<T, actix_web::error::BlockingError>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    actix_web::web::block(carried(f)).await
}

/// An incoming id is kept when it is 1 to 64 characters of `A-Z a-z 0-9 - _ .`.
fn acceptable(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn fresh() -> String {
    let mut bytes = [0u8; 12];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Middleware of frontdesk's scopes.
pub async fn assign(
    req: ServiceRequest,
    next: Next<BoxBody>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let id = req
        .headers()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| acceptable(v))
        .map(str::to_owned)
        .unwrap_or_else(fresh);
    // At debug level, like tower-http's request spans: with `tracing`'s `log`
    // bridge, an info span would put a line per request into the log of a
    // host that only has a `log` logger.
    let span = tracing::debug_span!(
        "request",
        request_id = %id,
        method = %req.method(),
        route = tracing::field::Empty,
        status = tracing::field::Empty,
    );
    let result = REQUEST_ID
        .scope(id.clone(), next.call(req))
        .instrument(span.clone())
        .await;
    if let Ok(res) = &result {
        if let Some(route) = res.request().match_pattern() {
            span.record("route", tracing::field::display(route));
        }
        span.record("status", res.status().as_u16());
    }
    let mut res = match result {
        Ok(res) => res,
        // Rendered here, so the problem body carries the id too; the outer
        // layers only copy the response out of it.
        Err(e) => {
            let response = REQUEST_ID.sync_scope(id.clone(), || e.error_response());
            let mut response = response;
            if let Ok(v) = HeaderValue::from_str(&id) {
                response
                    .headers_mut()
                    .insert(HeaderName::from_static(HEADER), v);
            }
            return Err(actix_web::error::InternalError::from_response(e, response).into());
        }
    };
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(HeaderName::from_static(HEADER), v);
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incoming_ids_are_kept_only_when_plain() {
        assert!(acceptable("req-1.A_b"));
        assert!(!acceptable(""));
        assert!(!acceptable("a b"));
        assert!(!acceptable("x\r\nSet-Cookie: y"));
        assert!(!acceptable(&"a".repeat(65)));
        assert_eq!(fresh().len(), 24);
        assert_ne!(fresh(), fresh());
    }
}
