//! The one web error type: maps domain errors to status codes in one place.
//! JSON callers get `application/problem+json`; pages get a small HTML page.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use frontdesk_core::CoreError;
use serde::Serialize;
use serde_json::json;

/// Problem `type` URIs: one per kind of error, stable across releases so that
/// clients can branch on them.
pub mod problem_type {
    /// A request that cannot be read or makes no sense (400); also any other
    /// 4xx without a type of its own.
    pub const BAD_REQUEST: &str = "urn:frontdesk:problem:bad-request";
    /// Input fields that are invalid (400); `errors` names each one.
    pub const VALIDATION: &str = "urn:frontdesk:problem:validation";
    /// No valid session or API key (401).
    pub const UNAUTHORIZED: &str = "urn:frontdesk:problem:unauthorized";
    /// The caller may not do this (403).
    pub const FORBIDDEN: &str = "urn:frontdesk:problem:forbidden";
    /// A session caller's unsafe request without a valid CSRF token, or one
    /// from another site (403).
    pub const CSRF: &str = "urn:frontdesk:problem:csrf";
    /// No such resource, or one the caller may not see (404).
    pub const NOT_FOUND: &str = "urn:frontdesk:problem:not-found";
    /// The change clashes with what is stored, such as an email or slug
    /// already taken (409).
    pub const CONFLICT: &str = "urn:frontdesk:problem:conflict";
    /// The change would leave an organization, or the staff, without an
    /// owner (409).
    pub const LAST_OWNER: &str = "urn:frontdesk:problem:last-owner";
    /// A licence change would pass the licence's seat limit.
    pub const SEAT_LIMIT: &str = "urn:frontdesk:problem:seat-limit";
    /// The host's event listener refused the change (`detail` is its message).
    pub const VETOED: &str = "urn:frontdesk:problem:vetoed";
    /// The body is larger than the route accepts (413).
    pub const PAYLOAD_TOO_LARGE: &str = "urn:frontdesk:problem:payload-too-large";
    /// Something failed on the server (5xx); the details are in the log,
    /// not in the answer.
    pub const INTERNAL: &str = "urn:frontdesk:problem:internal";
    /// The database is unreachable or too busy, or no password-hashing slot
    /// freed up in time (503); trying again later may work.
    pub const UNAVAILABLE: &str = "urn:frontdesk:problem:unavailable";
}

/// One invalid input field, for validation problems.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FieldError {
    /// The field's name as the caller sent it (`email`, `profile.team`).
    pub field: String,
    /// What is wrong with it, in a short phrase (`must be at most 200
    /// characters`).
    pub message: String,
}

impl FieldError {
    /// The error `message` for `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// An error answered to a web request: a small HTML page for browsers, or
/// `application/problem+json` (RFC 9457) for API callers, or a redirect.
/// Handlers return it; a [`CoreError`] converts into the right status.
#[derive(Debug, Clone)]
pub struct WebError {
    /// The HTTP status of the answer.
    pub status: StatusCode,
    /// A short, fixed summary of the kind of error (`Not found`).
    pub title: &'static str,
    /// What went wrong, in a sentence shown to the user. Never internal
    /// details: [`WebError::internal`] and [`WebError::unavailable`] log
    /// those and show a generic sentence.
    pub detail: String,
    /// The problem `type`; derived from the status when not set.
    pub problem_type: Option<&'static str>,
    /// Field-level details of a validation problem.
    pub errors: Vec<FieldError>,
    /// Answer as problem+json rather than HTML.
    pub json: bool,
    /// For "sign in first" on pages: where to send the browser.
    pub location: Option<String>,
}

impl WebError {
    /// An error with this status, title and detail, answered as HTML until
    /// [`WebError::json`] or [`WebError::for_request`] says otherwise.
    pub fn new(status: StatusCode, title: &'static str, detail: impl Into<String>) -> Self {
        WebError {
            status,
            title,
            detail: detail.into(),
            problem_type: None,
            errors: Vec::new(),
            json: false,
            location: None,
        }
    }

    /// A 400 listing each invalid field.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        let detail = errors
            .iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect::<Vec<_>>()
            .join("; ");
        let mut e = Self::new(StatusCode::BAD_REQUEST, "Invalid input", detail);
        e.problem_type = Some(problem_type::VALIDATION);
        e.errors = errors;
        e
    }

    /// The same error with this problem `type` (one of [`problem_type`]).
    pub fn with_type(mut self, problem_type: &'static str) -> Self {
        self.problem_type = Some(problem_type);
        self
    }

    /// The problem `type` URI of this error.
    pub fn type_uri(&self) -> &'static str {
        if let Some(t) = self.problem_type {
            return t;
        }
        match self.status {
            StatusCode::UNAUTHORIZED => problem_type::UNAUTHORIZED,
            StatusCode::FORBIDDEN => problem_type::FORBIDDEN,
            StatusCode::NOT_FOUND => problem_type::NOT_FOUND,
            StatusCode::CONFLICT => problem_type::CONFLICT,
            StatusCode::PAYLOAD_TOO_LARGE => problem_type::PAYLOAD_TOO_LARGE,
            StatusCode::SERVICE_UNAVAILABLE => problem_type::UNAVAILABLE,
            s if s.is_server_error() => problem_type::INTERNAL,
            _ => problem_type::BAD_REQUEST,
        }
    }

    /// A 400 with `detail` shown to the user.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "Bad request", detail)
    }

    /// A 403 with `detail` shown to the user.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "Forbidden", detail)
    }

    /// A 404 that says nothing about what was looked for.
    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "Not found", "There is nothing here.")
    }

    /// A 401 asking the caller to sign in; as problem+json it carries
    /// `WWW-Authenticate: Bearer`.
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "Sign in to continue.",
        )
    }

    /// A 500. `detail` goes to the error log with the request id; the
    /// caller only reads that something went wrong.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(
            "frontdesk [{}]: {detail}",
            crate::request_id::current().as_deref().unwrap_or("-")
        );
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal error",
            "Something went wrong on our side.",
        )
    }

    /// A 503 (the database is away or busy). `detail` goes to the error log
    /// with the request id; the caller is told to try again shortly.
    pub fn unavailable(detail: impl std::fmt::Display) -> Self {
        tracing::error!(
            "frontdesk [{}]: {detail}",
            crate::request_id::current().as_deref().unwrap_or("-")
        );
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Unavailable",
            "The service is busy; try again shortly.",
        )
    }

    /// A 303 to `location`, for "sign in first" on pages (an
    /// [`AdminAuthorizer`](crate::admin::AdminAuthorizer) may send the
    /// browser to the host's own login page this way).
    pub fn redirect_to(location: String) -> Self {
        let mut e = Self::new(StatusCode::SEE_OTHER, "Sign in", "Sign in to continue.");
        e.location = Some(location);
        e
    }

    /// The same error, answered as problem+json when `json` is true and as
    /// an HTML page otherwise.
    pub fn json(mut self, json: bool) -> Self {
        self.json = json;
        self
    }

    /// Answers in the form the request asked for.
    pub fn for_request(self, req: &HttpRequest) -> Self {
        let json = wants_json(req);
        self.json(json)
    }
}

/// True for API callers: JSON accepted and HTML not, or a JSON body.
pub(crate) fn wants_json(req: &HttpRequest) -> bool {
    let get = |h: header::HeaderName| {
        req.headers()
            .get(h)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase()
    };
    let accept = get(header::ACCEPT);
    let content_type = get(header::CONTENT_TYPE);
    (accept.contains("json") && !accept.contains("text/html"))
        || content_type.starts_with("application/json")
}

impl std::fmt::Display for WebError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.title, self.detail)
    }
}

impl ResponseError for WebError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        if let Some(location) = &self.location {
            return HttpResponse::SeeOther()
                .insert_header((header::LOCATION, location.as_str()))
                .finish();
        }
        if self.json {
            let mut body = json!({
                "type": self.type_uri(),
                "title": self.title,
                "status": self.status.as_u16(),
                "detail": self.detail,
            });
            if !self.errors.is_empty() {
                body["errors"] = json!(self.errors);
            }
            if let Some(id) = crate::request_id::current() {
                body["request_id"] = json!(id);
            }
            let mut res = HttpResponse::build(self.status);
            if self.status == StatusCode::UNAUTHORIZED {
                res.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
            }
            return res
                .insert_header((header::CONTENT_TYPE, "application/problem+json"))
                .body(body.to_string());
        }
        let page = format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title></head>\
             <body><main><h1>{title}</h1><p>{detail}</p></main></body></html>",
            title = escape(self.title),
            detail = escape(&self.detail)
        );
        HttpResponse::build(self.status)
            .content_type("text/html; charset=utf-8")
            .body(page)
    }
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

impl From<CoreError> for WebError {
    fn from(e: CoreError) -> Self {
        match &e {
            CoreError::NotFound(_) => WebError::not_found(),
            CoreError::Forbidden => WebError::forbidden("You may not do this."),
            CoreError::DuplicateEmail(_)
            | CoreError::DuplicateSlug(_)
            | CoreError::DuplicateTag(_)
            | CoreError::DuplicateGroup(_)
            | CoreError::Conflict(_)
            | CoreError::AlreadyMember => {
                WebError::new(StatusCode::CONFLICT, "Conflict", e.to_string())
            }
            CoreError::SeatLimit { .. } => {
                WebError::new(StatusCode::CONFLICT, "Conflict", e.to_string())
                    .with_type(problem_type::SEAT_LIMIT)
            }
            CoreError::LastOwner | CoreError::LastStaffOwner => {
                WebError::new(StatusCode::CONFLICT, "Conflict", e.to_string())
                    .with_type(problem_type::LAST_OWNER)
            }
            // The detail keeps the service's own sentence (pages show it);
            // `errors` names the field for API clients.
            CoreError::Invalid { field, reason } => {
                let mut w = WebError::validation(vec![FieldError::new(*field, reason.clone())]);
                w.detail = e.to_string();
                w
            }
            CoreError::InvalidProfileField { key, reason } => {
                let mut w = WebError::validation(vec![FieldError::new(
                    format!("profile.{key}"),
                    reason.clone(),
                )]);
                w.detail = e.to_string();
                w
            }
            CoreError::TooLong { field, max } => {
                let mut w = WebError::validation(vec![FieldError::new(
                    *field,
                    format!("must be at most {max} characters"),
                )]);
                w.detail = e.to_string();
                w
            }
            CoreError::InvalidEmail(_) => {
                let mut w = WebError::validation(vec![FieldError::new(
                    "email",
                    "is not a valid email address",
                )]);
                w.detail = e.to_string();
                w
            }
            // The host's listener refused: its message, nothing saved.
            CoreError::Vetoed(message) => {
                WebError::new(StatusCode::CONFLICT, "Conflict", message.clone())
                    .with_type(problem_type::VETOED)
            }
            // Valid input that the organization's domain policy refuses.
            CoreError::DomainNotAllowed => {
                let mut w = WebError::new(StatusCode::CONFLICT, "Conflict", e.to_string());
                w.errors = vec![FieldError::new("email", w.detail.clone())];
                w
            }
            _ if e.is_outage() => WebError::unavailable(&e),
            _ if e.is_client_error() => WebError::bad_request(e.to_string()),
            _ => WebError::internal(&e),
        }
    }
}

/// For scopes that only speak JSON: an error answered there is problem+json
/// whatever raised it (an extractor, the session check meeting a database
/// outage, a handler), never the HTML page meant for browsers.
pub(crate) async fn json_errors(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<actix_web::body::BoxBody>,
) -> Result<actix_web::dev::ServiceResponse, actix_web::Error> {
    let res = next.call(req).await?;
    let html = res
        .response()
        .error()
        .and_then(|e| e.as_error::<WebError>())
        .filter(|e| !e.json)
        .cloned();
    Ok(match html {
        Some(e) => res.into_response(e.json(true).error_response()),
        None => res,
    })
}
