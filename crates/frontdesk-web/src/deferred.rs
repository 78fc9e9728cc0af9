//! Work that must not run before the answer is sent: what it costs would show
//! in the response time and tell an attacker something (whether an address has
//! an account). The work starts once the response body has been written, or
//! dropped unsent, and runs on the blocking pool; the state counts it so that
//! a host (or a test) can wait for it to settle.

use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::web::Bytes;
use actix_web::HttpResponse;
use tokio::sync::Notify;

/// Blocking jobs started after a response, still running.
#[derive(Default)]
pub(crate) struct Running {
    count: AtomicUsize,
    settled: Notify,
}

/// Counts a job down when it ends, even if it panics.
struct Done(Arc<Running>);

impl Drop for Done {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.settled.notify_waiters();
        }
    }
}

/// Runs `job` on the blocking pool of `runtime`, counted in `running`.
pub(crate) fn spawn(
    runtime: &tokio::runtime::Handle,
    running: Arc<Running>,
    job: impl FnOnce() + Send + 'static,
) {
    running.count.fetch_add(1, Ordering::SeqCst);
    // Not awaited: nobody waits for the job but `settled`.
    // In the span (and with the request id) of the request that left it.
    let job = crate::request_id::carried(job);
    drop(runtime.spawn_blocking(move || {
        let _done = Done(running);
        job();
    }));
}

/// Runs `work` as a task on `runtime`, counted in `running`: for work that
/// waits (for an argon2 slot) without holding a blocking thread meanwhile.
pub(crate) fn spawn_async(
    runtime: &tokio::runtime::Handle,
    running: Arc<Running>,
    work: impl std::future::Future<Output = ()> + Send + 'static,
) {
    running.count.fetch_add(1, Ordering::SeqCst);
    // In the span (and with the request id) of the request that left it.
    let work = crate::request_id::carried_future(work);
    drop(runtime.spawn(async move {
        let _done = Done(running);
        work.await;
    }));
}

/// Resolves once no deferred job is running.
pub(crate) async fn settled(running: &Running) {
    loop {
        let notified = running.settled.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if running.count.load(Ordering::SeqCst) == 0 {
            return;
        }
        notified.await;
    }
}

/// `res`, calling `then` once its body has been sent or dropped.
pub(crate) fn after_sent(res: HttpResponse, then: impl FnOnce() + 'static) -> HttpResponse {
    res.map_body(|_, body| {
        ThenBody {
            body,
            then: Some(Box::new(then)),
        }
        .boxed()
    })
}

struct ThenBody {
    body: BoxBody,
    then: Option<Box<dyn FnOnce()>>,
}

impl MessageBody for ThenBody {
    type Error = <BoxBody as MessageBody>::Error;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_next(cx)
    }
}

impl Drop for ThenBody {
    fn drop(&mut self) {
        if let Some(then) = self.then.take() {
            then();
        }
    }
}
