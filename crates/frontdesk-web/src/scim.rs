//! The SCIM 2.0 service at `/scim/v2` (RFC 7644): a directory (Entra ID,
//! Okta…) provisions an organization's users and groups with a bearer
//! token that names the organization, so one base URL serves them all.
//! Answers are `application/scim+json`; errors carry the SCIM error
//! schema and a `scimType`. Each authenticated request is noted for the
//! organization's directory-sync page.

use actix_web::http::{header, StatusCode};
use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse};
use frontdesk_core::scim::users::Ctx;
use frontdesk_core::scim::{self, schema, ListQuery, ScimError, ScimResult};
use frontdesk_core::scim_tokens::{self, ScimToken};
use frontdesk_core::{CoreError, DbConnection};
use serde_json::Value;

use crate::state::FrontdeskState;

/// Where `configure` mounts the service.
pub const DEFAULT_PREFIX: &str = "/scim/v2";

/// The prefix the service is mounted at, for absolute URLs.
#[derive(Debug, Clone)]
struct ScimPrefix(String);

const CONTENT_TYPE: &str = "application/scim+json";

/// Largest request body (a group with thousands of members fits).
const MAX_BODY: usize = 2 * 1024 * 1024;

fn answer(status: u16, body: &Value) -> HttpResponse {
    HttpResponse::build(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .content_type(CONTENT_TYPE)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(body.to_string())
}

fn error(e: &ScimError) -> HttpResponse {
    let mut r = answer(e.status, &e.body());
    if e.status == 401 {
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer realm=\"scim\""),
        );
    }
    r
}

/// The service's absolute base URL (from the configured base URL, never
/// the Host header).
pub fn base_url(state: &FrontdeskState, prefix: &str) -> String {
    state.absolute_url(prefix)
}

fn bearer(req: &HttpRequest) -> Option<String> {
    let v = req
        .headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .trim();
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
}

async fn authenticate(req: &HttpRequest, state: &FrontdeskState) -> Result<ScimToken, ScimError> {
    let unauthorized = || ScimError::new(401, None, "a valid SCIM bearer token is required");
    let token = bearer(req).ok_or_else(unauthorized)?;
    state
        .db(move |conn| scim_tokens::authenticate(conn, &token))
        .await
        .map_err(|_| ScimError::new(503, None, "the database is unavailable"))?
        .ok_or_else(unauthorized)
}

fn parse_body(body: &Bytes) -> ScimResult<Value> {
    if body.len() > MAX_BODY {
        return Err(ScimError::new(413, None, "the request body is too large"));
    }
    serde_json::from_slice(body)
        .map_err(|e| ScimError::invalid_syntax(format!("the body is not JSON: {e}")))
}

/// Authenticates, runs `op` on the blocking pool with the directory's
/// actor, notes the request, and answers.
async fn run<F>(req: HttpRequest, op: F) -> HttpResponse
where
    F: FnOnce(&mut DbConnection, &Ctx) -> ScimResult<(u16, Option<Value>)> + Send + 'static,
{
    let Some(state) = req.app_data::<web::Data<FrontdeskState>>().cloned() else {
        return error(&ScimError::new(500, None, "frontdesk is not configured"));
    };
    let token = match authenticate(&req, &state).await {
        Ok(t) => t,
        Err(e) => return error(&e),
    };
    let prefix = req
        .app_data::<ScimPrefix>()
        .map(|p| p.0.clone())
        .unwrap_or_else(|| DEFAULT_PREFIX.to_owned());
    let base = base_url(&state, &prefix);
    let ip = crate::current_user::client_info(&req, &state).ip;
    let method = req.method().to_string();
    let path = match req.uri().query() {
        Some(q) => format!("{}?{q}", req.uri().path()),
        None => req.uri().path().to_owned(),
    };
    let out = state
        .db(move |conn| {
            let actor = token.actor().with_ip(ip);
            let ctx = Ctx {
                actor: &actor,
                org: token.organization_id,
                base: &base,
            };
            let out = op(conn, &ctx);
            let (status, detail) = match &out {
                Ok((s, _)) => (*s, None),
                Err(e) => (e.status, Some(e.detail.as_str())),
            };
            if let Err(e) = scim_tokens::log_request(
                conn,
                token.organization_id,
                token.id,
                &method,
                &path,
                status,
                detail,
            ) {
                tracing::warn!("frontdesk: could not note a SCIM request: {e}");
            }
            Ok::<_, CoreError>(out)
        })
        .await;
    match out {
        Ok(Ok((status, Some(body)))) => answer(status, &body),
        Ok(Ok((status, None))) => {
            HttpResponse::build(StatusCode::from_u16(status).unwrap_or(StatusCode::NO_CONTENT))
                .finish()
        }
        Ok(Err(e)) => error(&e),
        Err(_) => error(&ScimError::new(503, None, "the database is unavailable")),
    }
}

fn query_pairs(req: &HttpRequest) -> Vec<(String, String)> {
    url::form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// `attributes`/`excludedAttributes` on a single resource's answer.
fn projected(
    params: &[(String, String)],
    status: u16,
    v: Value,
) -> ScimResult<(u16, Option<Value>)> {
    let q = ListQuery::parse(params)?;
    Ok((status, Some(scim::project(v, &q.attributes, &q.excluded))))
}

// --- discovery ---------------------------------------------------------

async fn discovery(req: HttpRequest, what: fn(&str) -> Value) -> HttpResponse {
    run(req.clone(), move |_, ctx| Ok((200, Some(what(ctx.base))))).await
}

async fn service_provider_config(req: HttpRequest) -> HttpResponse {
    discovery(req, |base| {
        schema::service_provider_config(base, "https://datatracker.ietf.org/doc/html/rfc7644")
    })
    .await
}

fn listed(items: Vec<Value>) -> Value {
    let q = ListQuery {
        start_index: 1,
        count: items.len().max(1),
        ..ListQuery::default()
    };
    scim::list_response(items, &q)
}

async fn resource_types(req: HttpRequest) -> HttpResponse {
    discovery(req, |base| listed(schema::resource_types(base))).await
}

async fn schemas(req: HttpRequest) -> HttpResponse {
    discovery(req, |base| listed(schema::schemas(base))).await
}

async fn one_of(req: HttpRequest, id: String, all: fn(&str) -> Vec<Value>) -> HttpResponse {
    run(req, move |_, ctx| {
        all(ctx.base)
            .into_iter()
            .find(|v| v["id"].as_str() == Some(id.as_str()))
            .map(|v| (200, Some(v)))
            .ok_or_else(|| ScimError::not_found(&id))
    })
    .await
}

async fn resource_type(req: HttpRequest, id: web::Path<String>) -> HttpResponse {
    one_of(req, id.into_inner(), schema::resource_types).await
}

async fn schema_by_id(req: HttpRequest, id: web::Path<String>) -> HttpResponse {
    one_of(req, id.into_inner(), schema::schemas).await
}

// --- resources -----------------------------------------------------------

macro_rules! resource_handlers {
    ($module:ident, $list:ident, $search:ident, $create:ident, $get:ident, $replace:ident, $patch:ident, $delete:ident) => {
        async fn $list(req: HttpRequest) -> HttpResponse {
            let params = query_pairs(&req);
            run(req, move |conn, ctx| {
                let q = ListQuery::parse(&params)?;
                Ok((200, Some(scim::$module::list(conn, ctx, &q)?)))
            })
            .await
        }

        async fn $search(req: HttpRequest, body: Bytes) -> HttpResponse {
            run(req, move |conn, ctx| {
                let q = ListQuery::from_search(&parse_body(&body)?)?;
                Ok((200, Some(scim::$module::list(conn, ctx, &q)?)))
            })
            .await
        }

        async fn $create(req: HttpRequest, body: Bytes) -> HttpResponse {
            let params = query_pairs(&req);
            run(req, move |conn, ctx| {
                let v = scim::$module::create(conn, ctx, &parse_body(&body)?)?;
                projected(&params, 201, v)
            })
            .await
        }

        async fn $get(req: HttpRequest, id: web::Path<String>) -> HttpResponse {
            let params = query_pairs(&req);
            run(req, move |conn, ctx| {
                let v = scim::$module::get(conn, ctx, &id)?;
                projected(&params, 200, v)
            })
            .await
        }

        async fn $replace(req: HttpRequest, id: web::Path<String>, body: Bytes) -> HttpResponse {
            let params = query_pairs(&req);
            run(req, move |conn, ctx| {
                let v = scim::$module::replace(conn, ctx, &id, &parse_body(&body)?)?;
                projected(&params, 200, v)
            })
            .await
        }

        async fn $patch(req: HttpRequest, id: web::Path<String>, body: Bytes) -> HttpResponse {
            let params = query_pairs(&req);
            run(req, move |conn, ctx| {
                let v = scim::$module::patch(conn, ctx, &id, &parse_body(&body)?)?;
                projected(&params, 200, v)
            })
            .await
        }

        async fn $delete(req: HttpRequest, id: web::Path<String>) -> HttpResponse {
            run(req, move |conn, ctx| {
                scim::$module::delete(conn, ctx, &id)?;
                Ok((204, None))
            })
            .await
        }
    };
}

resource_handlers!(
    users,
    users_list,
    users_search,
    users_create,
    users_get,
    users_replace,
    users_patch,
    users_delete
);
resource_handlers!(
    groups,
    groups_list,
    groups_search,
    groups_create,
    groups_get,
    groups_replace,
    groups_patch,
    groups_delete
);

async fn not_found() -> HttpResponse {
    error(&ScimError::not_found("resource"))
}

async fn method_not_allowed() -> HttpResponse {
    error(&ScimError::new(405, None, "method not allowed here"))
}

async fn root_search() -> HttpResponse {
    error(&ScimError::new(
        501,
        None,
        "searching every resource type at once is not supported; use /Users/.search or /Groups/.search",
    ))
}

/// The SCIM service at `prefix` (`configure` mounts it at [`DEFAULT_PREFIX`]).
pub fn scope(prefix: &str) -> impl actix_web::dev::HttpServiceFactory {
    let prefix = prefix.trim_end_matches('/');
    web::scope(prefix)
        .app_data(ScimPrefix(prefix.to_owned()))
        .app_data(web::PayloadConfig::new(MAX_BODY))
        .wrap(actix_web::middleware::from_fn(crate::request_id::assign))
        .service(
            web::resource("/ServiceProviderConfig")
                .route(web::get().to(service_provider_config))
                .default_service(web::to(method_not_allowed)),
        )
        .service(
            web::resource("/ResourceTypes")
                .route(web::get().to(resource_types))
                .default_service(web::to(method_not_allowed)),
        )
        .service(
            web::resource("/ResourceTypes/{id}")
                .route(web::get().to(resource_type))
                .default_service(web::to(method_not_allowed)),
        )
        .service(
            web::resource("/Schemas")
                .route(web::get().to(schemas))
                .default_service(web::to(method_not_allowed)),
        )
        .service(
            web::resource("/Schemas/{id}")
                .route(web::get().to(schema_by_id))
                .default_service(web::to(method_not_allowed)),
        )
        .service(
            web::resource("/.search")
                .route(web::post().to(root_search))
                .default_service(web::to(method_not_allowed)),
        )
        .service(
            web::resource("/Users")
                .route(web::get().to(users_list))
                .route(web::post().to(users_create))
                .default_service(web::to(method_not_allowed)),
        )
        .service(
            web::resource("/Users/.search")
                .route(web::post().to(users_search))
                .default_service(web::to(method_not_allowed)),
        )
        .service(
            web::resource("/Users/{id}")
                .route(web::get().to(users_get))
                .route(web::put().to(users_replace))
                .route(web::patch().to(users_patch))
                .route(web::delete().to(users_delete))
                .default_service(web::to(method_not_allowed)),
        )
        .service(
            web::resource("/Groups")
                .route(web::get().to(groups_list))
                .route(web::post().to(groups_create))
                .default_service(web::to(method_not_allowed)),
        )
        .service(
            web::resource("/Groups/.search")
                .route(web::post().to(groups_search))
                .default_service(web::to(method_not_allowed)),
        )
        .service(
            web::resource("/Groups/{id}")
                .route(web::get().to(groups_get))
                .route(web::put().to(groups_replace))
                .route(web::patch().to(groups_patch))
                .route(web::delete().to(groups_delete))
                .default_service(web::to(method_not_allowed)),
        )
        .default_service(web::to(not_found))
}
