//! frontdesk for axum hosts: the same admin pages, JSON API, sign-in,
//! sign-up, invitation and two-step pages as actix-web hosts get, as an axum
//! [`Router`] to `.merge` into the host's own, and [`CurrentUser`] /
//! [`OptionalUser`] as axum extractors for the host's handlers.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use axum::{routing::get, Router};
//! use frontdesk_axum::{CurrentUser, FrontdeskAxum};
//!
//! let fd = frontdesk::Frontdesk::builder()
//!     .database_url("sqlite://app-users.db")
//!     .base_url("http://localhost:3000")
//!     .build()?;
//! let frontdesk = FrontdeskAxum::new(&fd)?;
//! let app = Router::new()
//!     .route("/", get(|user: CurrentUser| async move { format!("Hello, {}", user.user.email) }))
//!     .merge(frontdesk.router())
//!     .layer(frontdesk.layer());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>()).await?;
//! # Ok(()) }
//! ```
//!
//! How it works: frontdesk's pages and API are actix-web services; this
//! crate runs them on one dedicated thread with its own actix runtime and
//! hands each request to it (method, URI, headers, body and the client's
//! address), streaming the answer back. Everything the pages do — CSRF,
//! sessions, the database on the blocking pool, problem+json errors — is the
//! same code that serves actix-web hosts, so the two cannot drift apart.
//! Request bodies stream through as they arrive, so frontdesk's own size
//! limits and answers apply (an upload too large for the import gets the same
//! problem+json as on actix-web); the rest of a body frontdesk stopped
//! reading is still read and dropped (up to 16 MiB), so a client still
//! sending gets that answer rather than a reset connection. The cost is a
//! channel hop per request and per body chunk.

#![warn(missing_docs)]

use std::net::SocketAddr;
use std::rc::Rc;

use actix_service::{IntoServiceFactory, Service, ServiceFactory};
use axum::body::Body;
use axum::extract::{ConnectInfo, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use bytes::Bytes;
use frontdesk_web::state::FrontdeskState;
use futures_util::StreamExt as _;
use tokio::sync::{mpsc, oneshot};

pub use frontdesk::Frontdesk;

/// Requests waiting for the frontdesk thread before callers are told it is busy.
const QUEUE: usize = 1024;

/// Request body chunks in flight between the host and frontdesk's thread.
const BODY_CHUNKS: usize = 8;

/// How much of a request body is still read and dropped after frontdesk has
/// answered without it (a size limit reached, an early error), so that a
/// client still sending receives the answer rather than a reset connection;
/// past it the connection is closed.
const DRAIN_BYTES: usize = 16 * 1024 * 1024;

/// A request on its way to frontdesk's thread.
struct Job {
    method: actix_web::http::Method,
    uri: String,
    headers: Vec<(
        actix_web::http::header::HeaderName,
        actix_web::http::header::HeaderValue,
    )>,
    /// The request body's chunks as the host receives them.
    body: mpsc::Receiver<Result<Bytes, std::io::Error>>,
    peer: Option<SocketAddr>,
    reply: oneshot::Sender<Answer>,
}

/// The head of frontdesk's answer; the body follows in chunks.
struct Answer {
    status: u16,
    headers: Vec<(String, Vec<u8>)>,
    body: mpsc::Receiver<Result<Bytes, std::io::Error>>,
}

/// frontdesk mounted for axum: the router of its pages and API, and the
/// layer that lets the extractors find it.
#[derive(Clone)]
pub struct FrontdeskAxum {
    jobs: mpsc::Sender<Job>,
    state: FrontdeskState,
}

impl FrontdeskAxum {
    /// Starts frontdesk's thread (its own actix runtime) and returns the
    /// handle the router and the extractors share. Call once per process.
    pub fn new(fd: &Frontdesk) -> std::io::Result<FrontdeskAxum> {
        let (jobs, rx) = mpsc::channel::<Job>(QUEUE);
        let configure = fd.configure();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), String>>();
        std::thread::Builder::new()
            .name("frontdesk-actix".into())
            .spawn(move || {
                let system = actix_rt::System::new();
                system.block_on(serve(configure, rx, ready_tx));
            })?;
        ready_rx
            .recv()
            .map_err(|_| std::io::Error::other("frontdesk's thread ended before it was ready"))?
            .map_err(std::io::Error::other)?;
        Ok(FrontdeskAxum {
            jobs,
            state: fd.state().clone(),
        })
    }

    /// The auth pages, the admin pages and the JSON API under their
    /// prefixes, to `.merge` into the host's router.
    pub fn router<S>(&self) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        let settings = self.state.settings();
        let mut router = Router::new();
        for prefix in [settings.auth_prefix.clone(), settings.admin_prefix.clone()] {
            let prefix = prefix.trim_end_matches('/').to_owned();
            let this = self.clone();
            let handler = move |req: Request| {
                let this = this.clone();
                async move { this.forward(req).await }
            };
            router = router
                .route(&prefix, axum::routing::any(handler.clone()))
                .route(&format!("{prefix}/"), axum::routing::any(handler.clone()))
                .route(&format!("{prefix}/{{*rest}}"), axum::routing::any(handler));
        }
        router
    }

    /// The layer that makes [`CurrentUser`] and [`OptionalUser`] work in
    /// the host's handlers: `.layer(frontdesk.layer())` on the host's router.
    pub fn layer(&self) -> axum::Extension<FrontdeskAxum> {
        axum::Extension(self.clone())
    }

    /// Hands one request to frontdesk's thread and streams its answer back.
    async fn forward(&self, req: Request) -> Response {
        let peer = req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0);
        let (parts, body) = req.into_parts();
        // The body is pumped to frontdesk's thread as it arrives; the pump
        // ends when the body does. When frontdesk stops reading (an answer
        // given early, a size limit reached), which drops the receiver, the
        // rest of the body is read and dropped up to `DRAIN_BYTES`: a client
        // still writing would otherwise meet a closed connection (a broken
        // pipe, a reset) instead of the answer.
        let (chunks, body_rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(BODY_CHUNKS);
        // Most requests (every GET) have no body: no pump, the channel is
        // closed at once.
        if axum::body::HttpBody::is_end_stream(&body) {
            drop(chunks);
        } else {
            tokio::spawn(async move {
                let mut stream = body.into_data_stream();
                let mut drained: Option<usize> = None;
                while let Some(chunk) = stream.next().await {
                    let chunk = chunk.map_err(std::io::Error::other);
                    match (&mut drained, chunk) {
                        (Some(n), Ok(bytes)) => {
                            *n += bytes.len();
                            if *n > DRAIN_BYTES {
                                break;
                            }
                        }
                        (Some(_), Err(_)) => break,
                        (None, Err(e)) => {
                            let _ = chunks.send(Err(e)).await;
                            break;
                        }
                        (None, Ok(bytes)) => {
                            if chunks.send(Ok(bytes)).await.is_err() {
                                drained = Some(0);
                            }
                        }
                    }
                }
            });
        }
        let method = match actix_web::http::Method::from_bytes(parts.method.as_str().as_bytes()) {
            Ok(m) => m,
            Err(_) => return StatusCode::METHOD_NOT_ALLOWED.into_response(),
        };
        let headers = parts
            .headers
            .iter()
            .filter_map(|(n, v)| {
                Some((
                    actix_web::http::header::HeaderName::from_bytes(n.as_str().as_bytes()).ok()?,
                    actix_web::http::header::HeaderValue::from_bytes(v.as_bytes()).ok()?,
                ))
            })
            .collect();
        let (reply, answer) = oneshot::channel();
        let job = Job {
            method,
            uri: parts
                .uri
                .path_and_query()
                .map(|p| p.as_str().to_owned())
                .unwrap_or_else(|| "/".into()),
            headers,
            body: body_rx,
            peer,
            reply,
        };
        if self.jobs.try_send(job).is_err() {
            return busy();
        }
        let Ok(answer) = answer.await else {
            return busy();
        };
        let mut res = Response::new(Body::from_stream(tokio_stream_of(answer.body)));
        *res.status_mut() = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::BAD_GATEWAY);
        for (name, value) in answer.headers {
            if let (Ok(n), Ok(v)) = (
                header::HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_bytes(&value),
            ) {
                res.headers_mut().append(n, v);
            }
        }
        res
    }
}

fn busy() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, "1")],
        "frontdesk is busy; try again shortly.",
    )
        .into_response()
}

/// The receiver as a stream of chunks.
fn tokio_stream_of(
    mut rx: mpsc::Receiver<Result<Bytes, std::io::Error>>,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// frontdesk's thread: the actix app, one task per request.
async fn serve<F>(
    configure: F,
    mut rx: mpsc::Receiver<Job>,
    ready: std::sync::mpsc::Sender<Result<(), String>>,
) where
    F: FnOnce(&mut actix_web::web::ServiceConfig) + Clone + 'static,
{
    let app = actix_web::App::new().configure(configure);
    let service = match app
        .into_factory()
        .new_service(actix_web::dev::AppConfig::default())
        .await
    {
        Ok(s) => Rc::new(s),
        Err(()) => {
            let _ = ready.send(Err("frontdesk's actix app did not start".into()));
            return;
        }
    };
    let _ = ready.send(Ok(()));
    while let Some(job) = rx.recv().await {
        let service = service.clone();
        actix_rt::spawn(async move {
            let mut req = actix_web::test::TestRequest::default()
                .method(job.method)
                .uri(&job.uri);
            // The client's `Content-Length` (hyper has held the body to it)
            // is handed on with the body; `Transfer-Encoding` is not, since
            // the chunks arrive decoded.
            use actix_web::http::header::TRANSFER_ENCODING;
            for h in job
                .headers
                .into_iter()
                .filter(|(name, _)| *name != TRANSFER_ENCODING)
            {
                req = req.append_header(h);
            }
            if let Some(peer) = job.peer {
                req = req.peer_addr(peer);
            }
            let chunks = tokio_stream_of(job.body)
                .map(|chunk| chunk.map_err(actix_web::error::PayloadError::Io));
            let payload: actix_web::dev::Payload = actix_web::dev::Payload::Stream {
                payload: Box::pin(chunks),
            };
            let (req, _) = req.to_request().replace_payload(payload);
            let res = match service.call(req).await {
                Ok(res) => res.map_into_boxed_body(),
                Err(e) => actix_web::dev::ServiceResponse::new(
                    // The request is gone with the error; answer from the error alone.
                    actix_web::test::TestRequest::default().to_http_request(),
                    e.error_response().map_into_boxed_body(),
                ),
            };
            let res = res.into_parts().1;
            let status = res.status().as_u16();
            let headers = res
                .headers()
                .iter()
                .map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec()))
                .collect();
            let (tx, body_rx) = mpsc::channel(8);
            if job
                .reply
                .send(Answer {
                    status,
                    headers,
                    body: body_rx,
                })
                .is_err()
            {
                return; // the client went away
            }
            let mut body = res.into_body();
            loop {
                let next = std::future::poll_fn(|cx| {
                    actix_web::body::MessageBody::poll_next(std::pin::Pin::new(&mut body), cx)
                })
                .await;
                match next {
                    Some(Ok(chunk)) => {
                        if tx.send(Ok(chunk)).await.is_err() {
                            break;
                        }
                    }
                    Some(Err(e)) => {
                        let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
                        break;
                    }
                    None => break,
                }
            }
        });
    }
}

/// The signed-in user of a host handler; an anonymous request is sent to
/// the sign-in page (a GET) or answered 401 (anything else, or JSON).
pub struct CurrentUser(pub frontdesk_web::current_user::CurrentUser);

impl std::ops::Deref for CurrentUser {
    type Target = frontdesk_web::current_user::CurrentUser;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

/// The signed-in user, if any.
pub struct OptionalUser(pub Option<frontdesk_web::current_user::CurrentUser>);

async fn resolve(
    parts: &Parts,
) -> Result<Option<frontdesk_web::current_user::CurrentUser>, Response> {
    let Some(fd) = parts.extensions.get::<FrontdeskAxum>() else {
        return Err((
            StatusCode::INTERNAL_SERVER_ERROR,
            "frontdesk's layer is missing: add `.layer(frontdesk.layer())` to the router",
        )
            .into_response());
    };
    let name = fd.state.session_cookie_name();
    let token = parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.to_owned());
    let Some(token) = token else {
        return Ok(None);
    };
    frontdesk_web::current_user::resolve_token(&fd.state, &token)
        .await
        .map_err(|e| {
            tracing::warn!("frontdesk: session check failed: {e}");
            (StatusCode::SERVICE_UNAVAILABLE, "Try again shortly.").into_response()
        })
}

impl<S: Send + Sync> FromRequestParts<S> for CurrentUser {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        match resolve(parts).await? {
            Some(user) => Ok(CurrentUser(user)),
            None => Err(sign_in_required(parts)),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for OptionalUser {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(OptionalUser(resolve(parts).await?))
    }
}

/// As for actix-web hosts: a page visit goes to the sign-in page and back,
/// anything else gets a 401.
fn sign_in_required(parts: &Parts) -> Response {
    let wants_json = parts
        .headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json"));
    if wants_json || parts.method != axum::http::Method::GET {
        return (StatusCode::UNAUTHORIZED, "Sign in first.").into_response();
    }
    let prefix = parts
        .extensions
        .get::<FrontdeskAxum>()
        .map(|f| f.state.prefix().to_owned())
        .unwrap_or_else(|| "/auth".into());
    let next = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let next: String = url_encode(next);
    (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, format!("{prefix}/login?next={next}"))],
    )
        .into_response()
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// The README's Rust examples, compiled (and run) as doctests, so the
/// mounting example a host copies cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
