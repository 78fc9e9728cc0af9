//! Extractors for the host's handlers and ours: `CurrentUser` (signed in, or a
//! redirect to the login page / a 401 problem+json), `OptionalUser`, and
//! `Staff<R>` (a staff role of at least `R`). The session is checked in the
//! database on every request, or on PostgreSQL in the in-process session
//! cache while its listener is connected (`frontdesk_core::session_cache`);
//! the result is kept for the rest of the request.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};
use frontdesk_core::session_cache::SessionCache;
use frontdesk_core::sessions::{self, Check, ClientInfo, Session};
use frontdesk_core::tokens::hash_token;
use frontdesk_core::users::User;
use frontdesk_core::StaffRole;

use crate::csrf;
use crate::error::{wants_json, WebError};
use crate::state::FrontdeskState;

/// A signed-in user and their session.
#[derive(Clone)]
pub struct CurrentUser {
    /// The user, as read with the session check.
    pub user: User,
    /// The session the request's cookie names (its id, when it started and
    /// was last used).
    pub session: Session,
    csrf_token: String,
    licences: LicenceMemo,
}

/// The user's licences per organization, read on the first question about
/// an organization and kept for the rest of the request (the clones a
/// request's extractors hold share them).
#[derive(Clone)]
struct LicenceMemo {
    state: FrontdeskState,
    by_org: std::sync::Arc<
        std::sync::Mutex<
            std::collections::HashMap<
                i64,
                std::sync::Arc<Vec<frontdesk_core::licences::Effective>>,
            >,
        >,
    >,
}

impl std::fmt::Debug for CurrentUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CurrentUser")
            .field("user", &self.user)
            .field("session_id", &self.session.id)
            .finish()
    }
}

impl CurrentUser {
    /// The user's id.
    pub fn id(&self) -> i64 {
        self.user.id
    }

    /// The CSRF token for forms this user submits (field `csrf_token` or header `X-CSRF-Token`).
    pub fn csrf_token(&self) -> &str {
        &self.csrf_token
    }

    /// The user's staff role, or `None` for a user who is not staff.
    pub fn staff_role(&self) -> Option<StaffRole> {
        self.user.staff_role()
    }

    /// The licences the user holds in organization `org`, directly or
    /// through a group, each with its sources. Nothing is read until a
    /// handler asks; one query per organization, then kept for the request.
    pub async fn licences(
        &self,
        org: i64,
    ) -> Result<std::sync::Arc<Vec<frontdesk_core::licences::Effective>>, WebError> {
        let memo = &self.licences;
        if let Some(held) = memo.by_org.lock().ok().and_then(|m| m.get(&org).cloned()) {
            return Ok(held);
        }
        let user_id = self.user.id;
        let held = std::sync::Arc::new(
            memo.state
                .db(move |conn| frontdesk_core::licences::effective(conn, org, user_id))
                .await?,
        );
        if let Ok(mut m) = memo.by_org.lock() {
            m.insert(org, held.clone());
        }
        Ok(held)
    }

    /// True when the user holds licence `key` in organization `org`
    /// (directly or through a group), to gate a feature of the host:
    /// `if !me.has_licence(org_id, "pro").await? { … }`.
    pub async fn has_licence(&self, org: i64, key: &str) -> Result<bool, WebError> {
        Ok(self.licences(org).await?.iter().any(|l| l.key == key))
    }
}

/// The signed-in user, if any; never refuses.
#[derive(Clone, Debug)]
pub struct OptionalUser(pub Option<CurrentUser>);

#[derive(Clone)]
struct Resolved(Option<CurrentUser>);

type LocalBoxFuture<T> = Pin<Box<dyn Future<Output = T>>>;

pub(crate) fn state_of(req: &HttpRequest) -> Result<FrontdeskState, WebError> {
    req.app_data::<web::Data<FrontdeskState>>()
        .map(|d| d.get_ref().clone())
        .ok_or_else(|| {
            WebError::internal(
                "FrontdeskState is not registered on this App (use Frontdesk::configure)",
            )
        })
}

/// The session the request's cookie names, checked in the database.
pub(crate) async fn resolve(req: &HttpRequest) -> Result<Option<CurrentUser>, WebError> {
    if let Some(r) = req.extensions().get::<Resolved>() {
        return Ok(r.0.clone());
    }
    let state = state_of(req)?;
    let found = match req.cookie(state.session_cookie_name()) {
        Some(cookie) => resolve_token(&state, cookie.value()).await?,
        None => None,
    };
    req.extensions_mut().insert(Resolved(found.clone()));
    Ok(found)
}

/// The session check through the cache: `None` when the cache is bypassed
/// (listener not connected), so the caller takes today's path. A hit costs no
/// database query; a miss reads once and fills the cache. Either way expiry
/// and suspension are judged now, and an activity write that is due runs on
/// the blocking pool after the answer, not before it.
async fn cached_check(
    state: &FrontdeskState,
    cache: &std::sync::Arc<SessionCache>,
    token: &str,
    config: sessions::SessionConfig,
) -> Result<Option<Option<(Session, User)>>, WebError> {
    if token.len() != 43 {
        return Ok(Some(None));
    }
    let hash = hash_token(token);
    let check = match cache.get(&hash) {
        Some((session, user)) => sessions::judge(session, user, &config),
        None => {
            let Some(ticket) = cache.ticket() else {
                return Ok(None);
            };
            let token = token.to_owned();
            let check = state
                .db(move |conn| sessions::check(conn, &token, &config))
                .await?;
            if let Check::Valid(s, u) | Check::Stale(s, u) = &check {
                cache.insert(ticket, &hash, s.clone(), u.clone());
            }
            check
        }
    };
    Ok(Some(match check {
        Check::Invalid => None,
        Check::Valid(s, u) => Some((s, u)),
        Check::Stale(s, u) => {
            // Marked on the cached copy first, so one write is asked for.
            cache.touched(&hash, frontdesk_core::time::now());
            let (session_id, user_id) = (s.id, u.id);
            let pool = state.pool().clone();
            state.spawn_deferred(move || {
                let Ok(mut conn) = pool.get() else { return };
                if let Err(e) = sessions::touch(&mut conn, session_id, user_id) {
                    tracing::warn!("frontdesk: session activity not recorded: {e}");
                }
            });
            Some((s, u))
        }
    }))
}

/// The session a cookie's token names, checked (through the session cache
/// where there is one): the same check for every web framework.
pub async fn resolve_token(
    state: &FrontdeskState,
    token: &str,
) -> Result<Option<CurrentUser>, WebError> {
    let token = token.to_owned();
    let config = state.settings().auth.sessions;
    let csrf_token = csrf::session_token(&token);
    let found = match state.session_cache() {
        Some(cache) => cached_check(state, cache, &token, config).await?,
        None => None,
    };
    let found = match found {
        Some(found) => found,
        None => match inline_check(state, &token, &config)? {
            Some(Check::Invalid) => None,
            Some(Check::Valid(session, user)) => Some((session, user)),
            // Due for its activity write (or no idle connection): the
            // full check, with its write, off this thread.
            Some(Check::Stale(..)) | None => {
                state
                    .db(move |conn| sessions::authenticate(conn, &token, &config))
                    .await?
            }
        },
    };
    Ok(found.map(|(session, user)| CurrentUser {
        user,
        session,
        csrf_token,
        licences: LicenceMemo {
            state: state.clone(),
            by_org: Default::default(),
        },
    }))
}

/// The read-only session check on this thread, where the state allows it and
/// a pooled connection is free right now; `None` sends the caller to the
/// blocking pool.
fn inline_check(
    state: &FrontdeskState,
    token: &str,
    config: &sessions::SessionConfig,
) -> Result<Option<Check>, WebError> {
    if !state.inline_session_reads() {
        return Ok(None);
    }
    let Some(mut conn) = state.pool().try_get() else {
        return Ok(None);
    };
    Ok(Some(sessions::check(&mut conn, token, config)?))
}

/// The answer to an anonymous request for a protected resource.
pub(crate) fn sign_in_required(req: &HttpRequest) -> WebError {
    if wants_json(req) || req.method() != actix_web::http::Method::GET {
        return WebError::unauthorized().json(true);
    }
    let Ok(state) = state_of(req) else {
        return WebError::unauthorized();
    };
    let next = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let next: String = url::form_urlencoded::byte_serialize(next.as_bytes()).collect();
    WebError::redirect_to(format!("{}/login?next={next}", state.prefix()))
}

impl FromRequest for CurrentUser {
    type Error = WebError;
    type Future = LocalBoxFuture<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { resolve(&req).await?.ok_or_else(|| sign_in_required(&req)) })
    }
}

impl FromRequest for OptionalUser {
    type Error = WebError;
    type Future = LocalBoxFuture<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { resolve(&req).await.map(OptionalUser) })
    }
}

/// The least staff role a [`Staff`] extractor accepts.
pub trait MinRole {
    /// The role itself; any higher role is accepted too.
    const MIN: StaffRole;
}

/// Role markers for [`Staff`].
pub mod role {
    use super::MinRole;
    use frontdesk_core::StaffRole;

    /// Any staff member: viewer, admin or owner.
    pub struct Viewer;
    /// A staff admin or owner.
    pub struct Admin;
    /// A staff owner only.
    pub struct Owner;

    impl MinRole for Viewer {
        const MIN: StaffRole = StaffRole::Viewer;
    }
    impl MinRole for Admin {
        const MIN: StaffRole = StaffRole::Admin;
    }
    impl MinRole for Owner {
        const MIN: StaffRole = StaffRole::Owner;
    }
}

/// A signed-in staff member holding at least role `R` (403 otherwise).
pub struct Staff<R: MinRole>(pub CurrentUser, PhantomData<R>);

impl<R: MinRole> std::ops::Deref for Staff<R> {
    type Target = CurrentUser;
    fn deref(&self) -> &CurrentUser {
        &self.0
    }
}

impl<R: MinRole + 'static> FromRequest for Staff<R> {
    type Error = WebError;
    type Future = LocalBoxFuture<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let user = resolve(&req).await?.ok_or_else(|| sign_in_required(&req))?;
            match user.staff_role() {
                Some(r) if r >= R::MIN => Ok(Staff(user, PhantomData)),
                _ => {
                    Err(WebError::forbidden("You do not have access to this page.")
                        .for_request(&req))
                }
            }
        })
    }
}

/// The IP and user agent to record for this request.
pub(crate) fn client_info(req: &HttpRequest, state: &FrontdeskState) -> ClientInfo {
    let ip = crate::client_ip::client_ip(
        &state.settings().trusted_proxies,
        req.peer_addr().map(|a| a.ip()),
        req.headers()
            .get_all("x-forwarded-for")
            .filter_map(|v| v.to_str().ok()),
    )
    .map(|ip| ip.to_string());
    let user_agent = req
        .headers()
        .get(actix_web::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.to_owned());
    ClientInfo { ip, user_agent }.sanitized()
}
