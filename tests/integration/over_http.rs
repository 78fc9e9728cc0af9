//! The in-process suites against another framework: [`OverHttp`] is an
//! actix-web `Service`, so the helpers written for `host_app!` (a `Browser`,
//! `expect`, `world`) take it unchanged, but it sends each request over real
//! HTTP to a host served by that framework (the axum one of
//! `admin_browser::serve_on`) and hands the host's answer back. [`Host`] is
//! either that or the in-process app, so one test body serves both
//! (`host_on!` with the `Framework` of `both_and_axum!`).

use std::io::Read;
use std::pin::Pin;

use actix_http::{HttpMessage, Request};
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::{test, HttpResponse};
use futures_core::future::LocalBoxFuture;
use futures_core::Stream;

use crate::admin_browser::{Framework, Served};

/// What a request carries over the wire, and what comes back.
type Header = (String, String);

/// The in-process app's service with its answers' bodies boxed.
type Boxed = Box<
    dyn Service<
        Request,
        Response = ServiceResponse<BoxBody>,
        Error = actix_web::Error,
        Future = LocalBoxFuture<'static, Result<ServiceResponse<BoxBody>, actix_web::Error>>,
    >,
>;

/// A test's frontdesk, in process (actix-web's test service) or over HTTP.
pub enum Host {
    InProcess(Boxed),
    OverHttp(OverHttp),
}

impl Host {
    /// Wraps the service `host_app!` made.
    pub fn in_process<S, B>(app: S) -> Host
    where
        S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
        S::Future: 'static,
        B: MessageBody + 'static,
    {
        Host::InProcess(Box::new(BoxBodies { app }))
    }
}

impl Service<Request> for Host {
    type Response = ServiceResponse<BoxBody>;
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Self::Error>>;

    actix_web::dev::always_ready!();

    fn call(&self, req: Request) -> Self::Future {
        match self {
            Host::InProcess(app) => app.call(req),
            Host::OverHttp(host) => host.call(req),
        }
    }
}

struct BoxBodies<S> {
    app: S,
}

impl<S, B> Service<Request> for BoxBodies<S>
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    S::Future: 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<BoxBody>;
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Self::Error>>;

    actix_web::dev::forward_ready!(app);

    fn call(&self, req: Request) -> Self::Future {
        let answer = self.app.call(req);
        Box::pin(async move { answer.await.map(ServiceResponse::map_into_boxed_body) })
    }
}

/// The test's frontdesk `$fd` as a [`Host`] served by `$framework`.
#[macro_export]
macro_rules! host_on {
    ($framework:expr, $fd:expr) => {
        match $framework {
            $crate::admin_browser::Framework::ActixWeb => {
                $crate::over_http::Host::in_process($crate::host_app!($fd))
            }
            framework => $crate::over_http::Host::OverHttp($crate::over_http::OverHttp::serve(
                framework, $fd,
            )),
        }
    };
}

/// A running host behind an actix-web `Service`; stopped when dropped.
pub struct OverHttp {
    base: String,
    served: Option<Served>,
}

impl OverHttp {
    /// Serves `fd` through `framework` on a loopback port.
    pub fn serve(framework: Framework, fd: frontdesk::Frontdesk) -> OverHttp {
        let (listener, base) = crate::admin_browser::loopback("127.0.0.1");
        OverHttp {
            base,
            served: Some(crate::admin_browser::serve_listener(
                framework, fd, listener,
            )),
        }
    }
}

impl Drop for OverHttp {
    fn drop(&mut self) {
        if let Some(served) = self.served.take() {
            served.stop();
        }
    }
}

impl Service<Request> for OverHttp {
    type Response = ServiceResponse<BoxBody>;
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Self::Error>>;

    actix_web::dev::always_ready!();

    fn call(&self, mut req: Request) -> Self::Future {
        let url = format!("{}{}", self.base, req.uri());
        let method = req.method().as_str().to_owned();
        // The connection's own headers are the client's to write.
        let headers: Vec<Header> = req
            .headers()
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "host" | "content-length" | "transfer-encoding"))
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    v.to_str().expect("a text header").to_owned(),
                )
            })
            .collect();
        let mut payload = req.take_payload();
        Box::pin(async move {
            let mut body = Vec::new();
            while let Some(chunk) =
                std::future::poll_fn(|cx| Pin::new(&mut payload).poll_next(cx)).await
            {
                body.extend_from_slice(&chunk?);
            }
            let (status, headers, bytes) =
                actix_web::rt::task::spawn_blocking(move || send(&method, &url, &headers, &body))
                    .await
                    .expect("the HTTP call's thread");
            let mut res = HttpResponse::build(StatusCode::from_u16(status).expect("a status"));
            for (k, v) in headers {
                res.append_header((k, v));
            }
            Ok(ServiceResponse::new(
                test::TestRequest::default().to_http_request(),
                res.body(bytes),
            ))
        })
    }
}

/// One request, no redirects followed and no cookies kept (the caller's
/// `Browser` keeps them): the status, headers and body as they came.
fn send(method: &str, url: &str, headers: &[Header], body: &[u8]) -> (u16, Vec<Header>, Vec<u8>) {
    let agent = ureq::AgentBuilder::new().redirects(0).build();
    let mut req = agent.request(method, url);
    for (k, v) in headers {
        req = req.set(k, v);
    }
    let sent = if body.is_empty() && matches!(method, "GET" | "HEAD" | "DELETE") {
        req.call()
    } else {
        req.send_bytes(body)
    };
    let res = match sent {
        Ok(res) | Err(ureq::Error::Status(_, res)) => res,
        Err(e) => panic!("{method} {url}: {e}"),
    };
    let status = res.status();
    let headers = res
        .headers_names()
        .into_iter()
        // The answer's own framing: actix-web writes it for the body given.
        .filter(|k| {
            !matches!(
                k.as_str(),
                "content-length" | "transfer-encoding" | "connection"
            )
        })
        .flat_map(|k| {
            res.all(&k)
                .into_iter()
                .map(|v| (k.clone(), v.to_owned()))
                .collect::<Vec<_>>()
        })
        .collect();
    let mut bytes = Vec::new();
    res.into_reader()
        .read_to_end(&mut bytes)
        .expect("the answer's body");
    (status, headers, bytes)
}
