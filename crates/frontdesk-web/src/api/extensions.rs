//! `/ext/<id>/<path>`: the API routes extensions add (see
//! [`crate::extensions::ApiRoute`]), served and described like the built-in
//! ones.

use actix_web::http::{header, StatusCode};
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use serde_json::{json, Map, Value};

use super::auth::ApiActor;
use super::problem::{not_found, ApiError, ApiResult, MAX_BODY};
use crate::error::{problem_type, FieldError, WebError};
use crate::extensions::{ApiMethod, ApiRequest, ApiTarget, Registry};
use crate::state::FrontdeskState;

/// Reads the body, at most [`MAX_BODY`] bytes.
async fn read_body(mut payload: web::Payload) -> ApiResult<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(chunk) = crate::import_runs::next(&mut payload).await {
        let chunk = chunk.map_err(|e| ApiError::from(WebError::bad_request(e.to_string())))?;
        if out.len() + chunk.len() > MAX_BODY {
            return Err(ApiError::from(
                WebError::new(
                    StatusCode::BAD_REQUEST,
                    "Payload too large",
                    format!("The body may be at most {MAX_BODY} bytes."),
                )
                .with_type(problem_type::PAYLOAD_TOO_LARGE),
            ));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

fn invalid_body(message: String) -> ApiError {
    ApiError::from(WebError::validation(vec![FieldError::new("body", message)]))
}

/// Answers every method on `/ext/{ext}/{path:.*}`: an unknown route is 404
/// before anything else, a known path with another method 405; then the
/// caller is authenticated, the permission checked and the handler run.
pub async fn dispatch(
    req: HttpRequest,
    state: web::Data<FrontdeskState>,
    path: web::Path<(String, String)>,
    payload: web::Payload,
) -> ApiResult {
    let (ext, sub) = path.into_inner();
    let matches = state.settings().extensions.api_matches(&ext, &sub);
    if matches.is_empty() {
        return Err(not_found());
    }
    let method = ApiMethod::parse(req.method().as_str());
    let Some((route, params)) = matches
        .iter()
        .find(|(r, _)| Some(r.method) == method)
        .cloned()
    else {
        let allow = matches
            .iter()
            .map(|(r, _)| r.method.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let e = WebError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "Method not allowed",
            format!("This route answers {allow}."),
        )
        .json(true);
        let mut res = actix_web::ResponseError::error_response(&e);
        if let Ok(v) = header::HeaderValue::from_str(&allow) {
            res.headers_mut().insert(header::ALLOW, v);
        }
        return Ok(res);
    };
    let api = ApiActor::extract(&req).await?;
    let body = if route.request.is_some() {
        let bytes = read_body(payload).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(invalid_body("a JSON body is required".into()));
        }
        Some(serde_json::from_slice::<Value>(&bytes).map_err(|e| invalid_body(e.to_string()))?)
    } else {
        None
    };
    let user_id = match &route.target {
        ApiTarget::Site => None,
        ApiTarget::User(name) => {
            let raw = params
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
                .unwrap_or("");
            // Not a number names no user: 404, as on `/users/abc`.
            Some(raw.parse::<i64>().map_err(|_| not_found())?)
        }
    };
    if route.target == ApiTarget::Site
        && !frontdesk_core::authz::can(&api.actor, route.permission, &frontdesk_core::Target::Site)
    {
        return Err(ApiError::from(WebError::forbidden(
            "Your role does not allow this.",
        )));
    }
    let query = web::Query::<Vec<(String, String)>>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .unwrap_or_default();
    let request = ApiRequest {
        actor: api.actor.clone(),
        method: route.method,
        params,
        query,
        body,
        user_id,
    };
    let (permission, handler) = (route.permission, route.handler.clone());
    let run = move |conn: &mut frontdesk_core::db::DbConnection| {
        if let Some(id) = request.user_id {
            frontdesk_core::users::get_for(conn, &request.actor, id, permission)?;
        }
        handler(conn, &request)
    };
    let out = state
        .db(move |conn| {
            if route.method == ApiMethod::Get {
                run(conn)
            } else {
                frontdesk_core::db::write_transaction(conn, run)
            }
        })
        .await?;
    let status = StatusCode::from_u16(route.status).unwrap_or(StatusCode::OK);
    Ok(HttpResponse::build(status).json(out))
}

/// Adds the extensions' routes to an OpenAPI document (as JSON), with the
/// same shared error answers as the built-in operations.
pub fn describe(doc: &mut Value, registry: &Registry) {
    let routes = registry.api_routes();
    if routes.is_empty() {
        return;
    }
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for (id, route) in routes {
        let sub = route.path.trim_matches('/');
        let key = format!("/ext/{id}/{sub}");
        let names: Vec<&str> = sub
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .collect();
        let parameters: Vec<Value> = names
            .iter()
            .map(|name| {
                let schema = route
                    .params
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, s)| s.clone())
                    .unwrap_or_else(|| match &route.target {
                        ApiTarget::User(p) if p == name => {
                            json!({"type": "integer", "format": "int64"})
                        }
                        _ => json!({"type": "string"}),
                    });
                json!({"name": name, "in": "path", "required": true, "schema": schema})
            })
            .collect();
        let safe = route.method == ApiMethod::Get;
        let mut responses = Map::new();
        responses.insert(
            route.status.to_string(),
            json!({
                "description": route.summary,
                "content": {"application/json": {"schema": route.response}},
            }),
        );
        for (status, name, _) in super::openapi::ERRORS {
            let wanted = match *status {
                "404" => !names.is_empty(),
                "409" => !safe,
                _ => true,
            };
            if wanted {
                responses.insert(
                    (*status).to_owned(),
                    json!({"$ref": format!("#/components/responses/{name}")}),
                );
            }
        }
        let op_id: String = format!(
            "ext_{id}_{}_{}",
            route.method.as_str().to_ascii_lowercase(),
            sub
        )
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
        let mut op = json!({
            "operationId": op_id,
            "summary": route.summary,
            "tags": [format!("ext:{id}")],
            "responses": responses,
        });
        if !parameters.is_empty() {
            op["parameters"] = Value::Array(parameters);
        }
        if let Some(schema) = &route.request {
            op["requestBody"] = json!({
                "required": true,
                "content": {"application/json": {"schema": schema}},
            });
        }
        let item = paths.entry(key).or_insert_with(|| json!({}));
        item[route.method.as_str().to_ascii_lowercase()] = op;
    }
}
