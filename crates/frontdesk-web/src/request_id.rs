//! A request id for every request frontdesk serves: taken from an incoming
//! `X-Request-Id` when it is a plain token (so an id set by the host's proxy
//! follows the request), otherwise made here; sent back in `X-Request-Id`,
//! written into problem+json bodies as `request_id`, and put in front of
//! frontdesk's error log lines, so a user's report can be matched to a log
//! line.

use actix_web::body::BoxBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use rand::RngCore;

/// The response (and accepted request) header.
pub const HEADER: &str = "x-request-id";

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being served on this task, if any.
pub fn current() -> Option<String> {
    REQUEST_ID.try_with(|id| id.clone()).ok()
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
    let result = REQUEST_ID.scope(id.clone(), next.call(req)).await;
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
