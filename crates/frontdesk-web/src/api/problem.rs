//! API errors: every failure is `application/problem+json` with a stable
//! `type`, and extractor rejections (bad JSON, bad path ids) get the same form.

use actix_web::error::{JsonPayloadError, PathError};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use frontdesk_core::CoreError;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{problem_type, FieldError, WebError};

/// Largest JSON body the API reads.
pub const MAX_BODY: usize = 1024 * 1024;

/// A `WebError` that always answers as problem+json.
#[derive(Debug)]
pub struct ApiError(pub WebError);

pub type ApiResult<T = HttpResponse> = Result<T, ApiError>;

impl From<WebError> for ApiError {
    fn from(e: WebError) -> Self {
        ApiError(e.json(true))
    }
}

impl From<CoreError> for ApiError {
    fn from(e: CoreError) -> Self {
        ApiError::from(WebError::from(e))
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.0.status
    }

    fn error_response(&self) -> HttpResponse {
        self.0.error_response()
    }
}

/// An RFC 9457 problem document, as every error of this API is answered.
#[derive(Serialize, ToSchema)]
pub struct Problem {
    /// Stable URI naming the kind of error, e.g. `urn:frontdesk:problem:validation`.
    #[serde(rename = "type")]
    #[schema(example = "urn:frontdesk:problem:validation")]
    pub problem_type: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Present on validation problems: each invalid field and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<ProblemField>>,
    /// The request's id, also in the `X-Request-Id` header and frontdesk's
    /// log line for it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ProblemField {
    /// The parameter or body field, e.g. `limit` or `name`.
    pub field: String,
    pub message: String,
}

/// An integer that JSON may also spell with a zero fraction (`7.0`), as JSON
/// Schema's `integer` allows.
pub fn integral<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    use serde::Deserialize;
    let n = serde_json::Number::deserialize(d)?;
    if let Some(i) = n.as_i64() {
        return Ok(i);
    }
    match n.as_f64() {
        // Past 2^50 a double's fraction is noise from the decimal conversion.
        Some(f) if (f.fract() == 0.0 || f.abs() >= 1.1e15) && (-9.2e18..=9.2e18).contains(&f) => {
            Ok(f.round() as i64)
        }
        _ => Err(serde::de::Error::custom(format!(
            "{n} is not a 64-bit integer"
        ))),
    }
}

/// Checks body strings as sent, before the services trim them: the length and
/// the absence of control characters the OpenAPI document promises.
pub fn check_text(fields: &[(&str, Option<&str>, usize)]) -> ApiResult<()> {
    let errors: Vec<FieldError> = fields
        .iter()
        .filter_map(|(f, v, max)| {
            let v = (*v)?;
            if v.chars().count() > *max {
                Some(FieldError::new(
                    *f,
                    format!("must be at most {max} characters"),
                ))
            } else if v.chars().any(char::is_control) {
                Some(FieldError::new(*f, "must not contain control characters"))
            } else {
                None
            }
        })
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::from(WebError::validation(errors)))
    }
}

pub fn not_found() -> ApiError {
    ApiError::from(WebError::not_found())
}

/// Answer for paths the API does not have.
pub async fn no_such_route() -> ApiResult {
    Err(not_found())
}

fn json_error(err: JsonPayloadError, _req: &HttpRequest) -> actix_web::Error {
    let e = match &err {
        JsonPayloadError::Overflow { .. } | JsonPayloadError::OverflowKnownLength { .. } => {
            // A 400 like every other refused body (the type says which).
            WebError::new(
                StatusCode::BAD_REQUEST,
                "Payload too large",
                format!("The body may be at most {MAX_BODY} bytes."),
            )
            .with_type(problem_type::PAYLOAD_TOO_LARGE)
        }
        JsonPayloadError::Deserialize(de) => {
            let field = body_field(&de.to_string());
            WebError::validation(vec![FieldError::new(field, de.to_string())])
        }
        other => WebError::bad_request(format!("The body must be a JSON object: {other}")),
    };
    ApiError::from(e).into()
}

/// The field a serde message names (``missing field `name` ``), or `body`.
fn body_field(message: &str) -> String {
    let marker = "field `";
    message
        .find(marker)
        .map(|i| &message[i + marker.len()..])
        .and_then(|rest| rest.find('`').map(|end| rest[..end].to_owned()))
        .unwrap_or_else(|| "body".to_owned())
}

fn path_error(err: PathError, _req: &HttpRequest) -> actix_web::Error {
    // `/users/abc` names no user: the same answer as an id that does not exist.
    tracing::debug!("frontdesk api: bad path: {err}");
    not_found().into()
}

pub fn json_config() -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(MAX_BODY)
        .content_type_required(false)
        .error_handler(json_error)
}

pub fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(path_error)
}

fn body_error(e: &serde_json::Error) -> ApiError {
    let field = body_field(&e.to_string());
    ApiError::from(WebError::validation(vec![FieldError::new(
        field,
        e.to_string(),
    )]))
}

/// A JSON body that must be an object (serde would also take an array for a
/// struct, field by position).
pub type Body = web::Json<serde_json::Map<String, serde_json::Value>>;

/// The body as `T`.
pub fn object<T: serde::de::DeserializeOwned>(body: Body) -> ApiResult<T> {
    let map = body.into_inner();
    serde_json::from_value(serde_json::Value::Object(map.clone())).map_err(|e| {
        // serde names the field only for missing or unknown ones; for a bad
        // enum value, find the field that holds it.
        let message = e.to_string();
        let marker = "unknown variant `";
        let field = message
            .find(marker)
            .map(|i| &message[i + marker.len()..])
            .and_then(|rest| rest.find('`').map(|end| &rest[..end]))
            .and_then(|value| {
                map.iter()
                    .find(|(_, v)| v.as_str() == Some(value))
                    .map(|(k, _)| k.clone())
            });
        match field {
            Some(field) => {
                ApiError::from(WebError::validation(vec![FieldError::new(field, message)]))
            }
            None => body_error(&e),
        }
    })
}

/// Reads an optional JSON object body: empty or `null` means the defaults.
pub fn optional_body<T: serde::de::DeserializeOwned + Default>(body: &[u8]) -> ApiResult<T> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    match serde_json::from_slice::<Option<serde_json::Map<String, serde_json::Value>>>(body) {
        Ok(None) => Ok(T::default()),
        Ok(Some(map)) => {
            serde_json::from_value(serde_json::Value::Object(map)).map_err(|e| body_error(&e))
        }
        Err(e) => Err(body_error(&e)),
    }
}

/// Every problem `type` the API answers with, listed in the OpenAPI description.
pub const TYPES: &[&str] = &[
    problem_type::BAD_REQUEST,
    problem_type::VALIDATION,
    problem_type::UNAUTHORIZED,
    problem_type::FORBIDDEN,
    problem_type::CSRF,
    problem_type::NOT_FOUND,
    problem_type::CONFLICT,
    problem_type::LAST_OWNER,
    problem_type::PAYLOAD_TOO_LARGE,
    problem_type::INTERNAL,
    problem_type::UNAVAILABLE,
];
