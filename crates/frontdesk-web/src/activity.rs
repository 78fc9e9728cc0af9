//! Activity recording for the host's own routes: the [`RecordActivity`]
//! middleware (page views of signed-in users, by route pattern) and the
//! [`Activity`] handle for features the host records by name. Both hand the
//! event to the core recorder's queue and return at once; nothing here waits
//! on the database or fails a request.

use std::future::{ready, Future, Ready};
use std::pin::Pin;
use std::rc::Rc;

use actix_web::body::MessageBody;
use actix_web::dev::{forward_ready, Payload, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::{FromRequest, HttpRequest};
use frontdesk_core::activity::{self, NewActivity, Recorder};
use serde_json::Value;

use crate::current_user::{client_info, resolve, state_of, CurrentUser};
use crate::error::WebError;
use crate::state::FrontdeskState;

/// Records what signed-in users do, when the host turned recording on
/// (`.activity(…)` on the builder); otherwise every call does nothing.
/// Also an extractor: `async fn export(me: CurrentUser, activity: Activity)`.
#[derive(Clone, Debug, Default)]
pub struct Activity {
    recorder: Option<Recorder>,
    service: Option<String>,
}

impl Activity {
    pub(crate) fn new(recorder: Option<Recorder>) -> Self {
        Activity {
            recorder,
            service: None,
        }
    }

    /// The same handle, recording its events under `service` (a slug).
    pub fn for_service(&self, service: impl Into<String>) -> Self {
        Activity {
            recorder: self.recorder.clone(),
            service: Some(service.into()),
        }
    }

    /// Whether recording is on; when it is off every call does nothing.
    pub fn enabled(&self) -> bool {
        self.recorder.is_some()
    }

    /// Queues a feature event (`"export.created"`, with a JSON object of
    /// details) for this user. Returns whether it was queued; a bad kind or
    /// details, or a full queue, leave it out (logged, never an error).
    pub fn record(&self, user: &CurrentUser, kind: &str, details: Value) -> bool {
        self.record_for(user.id(), kind, details)
    }

    /// [`Activity::record`] for a user known by id.
    pub fn record_for(&self, user_id: i64, kind: &str, details: Value) -> bool {
        let Some(recorder) = &self.recorder else {
            return false;
        };
        match NewActivity::feature(user_id, kind, details) {
            Ok(mut e) => {
                e.service = self.service.clone();
                recorder.record(e)
            }
            Err(e) => {
                tracing::warn!("frontdesk: activity event {kind:?} not recorded: {e}");
                false
            }
        }
    }

    /// Counters since the start (queued, dropped, deduplicated, written…).
    pub fn stats(&self) -> activity::ActivityStats {
        self.recorder
            .as_ref()
            .map(Recorder::stats)
            .unwrap_or_default()
    }

    /// Resolves once everything queued so far is written.
    pub async fn flushed(&self) {
        if let Some(r) = self.recorder.clone() {
            let _ = crate::request_id::block(move || r.flush()).await;
        }
    }

    /// Runs the retention purge now; the rows deleted.
    pub async fn purge_now(&self) -> u64 {
        match self.recorder.clone() {
            Some(r) => crate::request_id::block(move || r.purge_now())
                .await
                .unwrap_or(0),
            None => 0,
        }
    }
}

impl FromRequest for Activity {
    type Error = WebError;
    type Future = Ready<Result<Self, WebError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(state_of(req).map(|s| s.activity()))
    }
}

/// The middleware the host wraps around its own routes
/// (`.wrap(frontdesk.activity_middleware())`): after each response to a
/// signed-in user it queues a page view with the route pattern
/// (`/projects/{id}`, never the id), the method and the status.
#[derive(Clone)]
pub struct RecordActivity {
    state: FrontdeskState,
    service: Option<String>,
}

impl RecordActivity {
    /// The middleware for the app of `state`; it records nothing while
    /// activity recording is off.
    pub fn new(state: FrontdeskState) -> Self {
        RecordActivity {
            state,
            service: None,
        }
    }

    /// Which of the host's services these routes belong to (a slug).
    pub fn service(mut self, slug: impl Into<String>) -> Self {
        self.service = Some(slug.into());
        self
    }
}

impl<S, B> Transform<S, ServiceRequest> for RecordActivity
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<B>;
    type Error = actix_web::Error;
    type Transform = RecordActivityService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, ()>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(RecordActivityService {
            inner: Rc::new(service),
            state: self.state.clone(),
            service: self.service.clone(),
        }))
    }
}

/// The service [`RecordActivity`] wraps around the host's routes; made by
/// actix, never by hand.
pub struct RecordActivityService<S> {
    inner: Rc<S>,
    state: FrontdeskState,
    service: Option<String>,
}

impl<S, B> Service<ServiceRequest> for RecordActivityService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<B>;
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>>>>;

    forward_ready!(inner);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let inner = self.inner.clone();
        let state = self.state.clone();
        let service = self.service.clone();
        Box::pin(async move {
            let res = inner.call(req).await?;
            if let Some(recorder) = state.recorder() {
                page_view(&state, recorder, service, &res).await;
            }
            Ok(res)
        })
    }
}

async fn page_view<B>(
    state: &FrontdeskState,
    recorder: &Recorder,
    service: Option<String>,
    res: &ServiceResponse<B>,
) {
    let req = res.request();
    // A request no route matched has no pattern; it is not a page.
    let Some(route) = req.match_pattern() else {
        return;
    };
    let config = recorder.config();
    if config.excludes(&route) || route.len() > activity::MAX_ROUTE {
        return;
    }
    // The handler's own check when it made one; otherwise one here. A user
    // who is not signed in (or whose session cannot be read) is not recorded.
    let user = match resolve(req).await {
        Ok(Some(u)) => u,
        _ => return,
    };
    if let Some(s) = &service {
        recorder.signed_in(user.id(), user.session.id, s, user.session.created_at);
    }
    let details = if config.record_path {
        let path = req.uri().path_and_query().map_or("", |p| p.as_str());
        serde_json::json!({ "path": path.chars().take(activity::MAX_ROUTE).collect::<String>() })
            .to_string()
    } else {
        "{}".to_owned()
    };
    let ip = if config.record_ip {
        client_info(req, state).ip
    } else {
        None
    };
    recorder.record(NewActivity {
        user_id: user.id(),
        at: frontdesk_core::time::now(),
        kind: activity::PAGE_VIEW.to_owned(),
        service,
        route: Some(route),
        method: Some(req.method().as_str().to_owned()),
        status: Some(i32::from(res.status().as_u16())),
        details,
        ip,
    });
}
