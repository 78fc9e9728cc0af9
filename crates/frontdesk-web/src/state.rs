//! frontdesk's own state, registered as `web::Data<FrontdeskState>` so it never
//! collides with the host's data: the pool, the settings, the templates, the
//! hooks, and the semaphore that caps concurrent argon2 runs.

use std::path::PathBuf;
use std::sync::Arc;

use actix_web::web;
use frontdesk_core::auth::AuthSettings;
use frontdesk_core::db::{DbConnection, Pool};
use frontdesk_core::hooks::{Hooks, NoHooks};
use frontdesk_core::invitations::InvitationSettings;
use frontdesk_core::CoreError;
use frontdesk_mail::{MailWaker, Templates as MailTemplates};
use tera::{Context, Tera};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use url::Url;

use crate::error::WebError;

/// What the host configures.
#[derive(Clone)]
pub struct Settings {
    /// The public URL of the host app; links in mails are built from it, and
    /// an `https` URL turns on `Secure` and `__Host-` cookies.
    pub base_url: Url,
    /// Where the auth pages are mounted (default `/auth`).
    pub auth_prefix: String,
    /// Where a signed-in user goes when no `next` was asked for.
    pub after_login: String,
    /// Staff and organization admins who sign in without a `next` land on
    /// the admin dashboard instead of `after_login` (default true).
    pub admin_after_login: bool,
    /// Sign-in rules: session timeouts, the lockout policy, whether an
    /// unverified address may sign in, and who must use a second step.
    pub auth: AuthSettings,
    /// How long a password reset link works (default 1 hour).
    pub password_reset_ttl: chrono::Duration,
    /// How long an email verification link works (default 24 hours).
    pub email_verification_ttl: chrono::Duration,
    /// How long an invitation link works (default 7 days).
    pub invitation_ttl: chrono::Duration,
    /// A folder of templates that replace the embedded ones by name.
    pub template_dir: Option<PathBuf>,
    /// Signs the pre-session CSRF cookie. Instances behind one load balancer
    /// need the same key; without one a random key is made at start.
    pub secret_key: Option<Vec<u8>>,
    /// How many argon2 runs may go at once (each takes ~19 MiB); default:
    /// one less than the number of CPUs, at least one.
    pub max_concurrent_hashes: usize,
    /// How long a sign-in may wait for an argon2 slot before it is told the
    /// service is busy (503), so a login flood cannot queue without bound.
    pub hash_queue_timeout: std::time::Duration,
    /// The proxies trusted to report the client's address in
    /// `X-Forwarded-For` (default none: the peer address is the client).
    pub trusted_proxies: crate::client_ip::TrustedProxies,
    /// The name the pages, the mail subjects and authenticator apps show
    /// (default `frontdesk`).
    pub site_name: String,
    /// Where the admin pages are mounted (default `/admin`).
    pub admin_prefix: String,
    /// The host's own decision on who may open the admin pages; without one,
    /// frontdesk's signed-in staff and organization admins may.
    pub admin_authorizer: Option<crate::admin::AdminAuthorizer>,
    /// What the CSV import accepts (profile fields, limits, the row count
    /// above which an import runs in the background); the export offers the
    /// same profile fields.
    pub import: frontdesk_core::imports::ImportConfig,
    /// Where uploads wait while they are imported (and dry runs until they
    /// are applied, at most a day); default: a folder in the system's temp dir.
    pub import_dir: PathBuf,
    /// A mail transport is configured (`mail_url` or `mail_transport`):
    /// otherwise the pages say that mail waits in the outbox.
    pub mail_configured: bool,
    /// Which deployment this is (`production`, `staging`), shown in the admin
    /// header and next to the import and export buttons.
    pub environment_label: Option<String>,
    /// What extensions add to the admin (see [`crate::extensions`]).
    pub extensions: crate::extensions::Registry,
    /// frontdesk's optional parts the host switched off (see [`crate::parts`]).
    pub disabled_parts: Vec<crate::parts::Part>,
    /// Self sign-up: policy, terms, limits, email verification.
    pub signup: SignupSettings,
    /// What passkeys may do (default: a second factor). The relying party is
    /// the host of `base_url`, which must then be a domain name.
    pub passkeys: frontdesk_core::mfa::passkeys::PasskeyPolicy,
    /// The host's licence types (none: the licence sections stay hidden).
    pub licences: Vec<frontdesk_core::licences::Licence>,
    /// Host-wide social providers ("Continue with GitHub" on the login page).
    pub social: Vec<frontdesk_core::sso::social::Provider>,
}

/// Self sign-up and email verification.
#[derive(Clone, Debug, Default)]
pub struct SignupSettings {
    /// Who may create their own account (default: closed).
    pub policy: frontdesk_core::signup::SignupPolicy,
    /// Terms a new user must accept (URL and version), stored on the user.
    pub terms: Option<frontdesk_core::signup::Terms>,
    /// Requests per email and per IP.
    pub limits: frontdesk_core::signup::SignupLimits,
}

impl Settings {
    /// The defaults for an app at `base_url`: auth pages at `/auth`, admin
    /// pages at `/admin`, sign-up closed, no mail transport, no trusted
    /// proxies. [`FrontdeskState::new`] checks them.
    pub fn new(base_url: Url) -> Self {
        Settings {
            base_url,
            auth_prefix: "/auth".into(),
            after_login: "/".into(),
            admin_after_login: true,
            auth: AuthSettings::default(),
            password_reset_ttl: chrono::Duration::hours(1),
            email_verification_ttl: chrono::Duration::hours(24),
            invitation_ttl: chrono::Duration::days(7),
            template_dir: None,
            secret_key: None,
            // One core stays free for serving requests while logins flood in.
            max_concurrent_hashes: std::thread::available_parallelism()
                .map_or(1, |n| n.get().saturating_sub(1).max(1)),
            hash_queue_timeout: std::time::Duration::from_secs(10),
            trusted_proxies: crate::client_ip::TrustedProxies::None,
            site_name: "frontdesk".into(),
            admin_prefix: crate::admin::DEFAULT_PREFIX.into(),
            admin_authorizer: None,
            import: frontdesk_core::imports::ImportConfig::default(),
            import_dir: std::env::temp_dir().join("frontdesk-imports"),
            mail_configured: false,
            environment_label: None,
            extensions: Default::default(),
            disabled_parts: Vec::new(),
            signup: SignupSettings::default(),
            passkeys: Default::default(),
            licences: Vec::new(),
            social: Vec::new(),
        }
    }
}

/// Sign-ups whose work may wait, per concurrent argon2 hash: each waits for
/// a hash of its own, so more would only lengthen the queue (and the wait of
/// every other request for the database) without creating accounts faster.
pub const PENDING_SIGNUPS_PER_HASH_SLOT: usize = 8;

/// Password-reset and verification-mail requests whose work (a lookup, and
/// for an account a token and a mail) may wait after their answer; each
/// waiting one holds a blocking thread until a connection is free.
pub const PENDING_PUBLIC_REQUESTS: usize = 64;

/// The answer of a public form whose queue of work is full: the same for
/// every address, and nothing was done.
pub(crate) const BUSY_REQUESTS: &str = "Too many requests right now. Please try again in a minute.";

struct Inner {
    pool: Pool,
    settings: Settings,
    templates: Tera,
    hashing: Arc<Semaphore>,
    /// Sign-ups answered whose work (limits, argon2, the account, the mail)
    /// has not finished: bounded, so a flood cannot queue without end.
    signups_pending: Arc<Semaphore>,
    /// The same for the public forms that work after their answer (password
    /// reset and verification-mail requests).
    requests_pending: Arc<Semaphore>,
    hooks: Arc<dyn Hooks>,
    csrf_key: Vec<u8>,
    /// Seals authenticator apps' seeds; only with a configured `secret_key`
    /// (a random key would lose every seed at restart).
    mfa_keys: Option<frontdesk_core::mfa::sealed::SecretBox>,
    /// Seals identity providers' client secrets; only with a configured
    /// `secret_key`.
    sso_keys: Option<frontdesk_core::mfa::sealed::SecretBox>,
    /// The WebAuthn relying party, unless passkeys are off (or `base_url`'s
    /// host is an IP address, which WebAuthn does not accept).
    passkeys: Option<Arc<frontdesk_core::mfa::passkeys::webauthn_rs::Webauthn>>,
    secure: bool,
    session_cookie: String,
    csrf_cookie: String,
    origin: String,
    invitations: InvitationSettings,
    mail_templates: MailTemplates,
    mail_waker: std::sync::RwLock<Option<MailWaker>>,
    /// SQLite: the per-request session read runs on the request's own thread
    /// (a local indexed read that takes no lock a writer holds in WAL mode),
    /// sparing the hop to the blocking pool. PostgreSQL's is a network round
    /// trip and always goes to the blocking pool.
    inline_session_reads: bool,
    /// Background imports running in this process (capped by
    /// `import.max_running`).
    import_slots: frontdesk_core::import_jobs::Slots,
    /// Work started after a response went out (see `deferred`).
    deferred: Arc<crate::deferred::Running>,
    /// PostgreSQL: validated sessions kept in memory (see
    /// `frontdesk_core::session_cache`); set once by the builder.
    session_cache: std::sync::OnceLock<Arc<frontdesk_core::session_cache::SessionCache>>,
    /// Activity recording, when the host turned it on; set once by the builder.
    recorder: std::sync::OnceLock<frontdesk_core::activity::Recorder>,
}

/// Cheap to clone; every clone shares one pool, one semaphore, one template set.
#[derive(Clone)]
pub struct FrontdeskState(Arc<Inner>);

impl FrontdeskState {
    /// The state for `pool` and `settings`, with the host's `hooks` (none:
    /// hooks that do nothing). Loads the page and mail templates and
    /// derives the cookie names and keys. Fails with [`CoreError::Config`]
    /// when `base_url` is not http or https, `auth_prefix` does not start
    /// with `/`, `max_concurrent_hashes` is 0, `secret_key` is shorter than
    /// 32 bytes, `invitation_ttl` is not positive, or a template does not
    /// load. Without a `secret_key` a random one is made (and a warning
    /// logged): forms then only work on this instance, and authenticator
    /// apps and identity providers cannot be set up.
    pub fn new(
        pool: Pool,
        mut settings: Settings,
        hooks: Option<Arc<dyn Hooks>>,
    ) -> Result<Self, CoreError> {
        let scheme = settings.base_url.scheme();
        if scheme != "http" && scheme != "https" {
            return Err(CoreError::Config(format!(
                "base_url must be http or https, not {scheme}"
            )));
        }
        let prefix = settings.auth_prefix.trim_end_matches('/').to_owned();
        if !prefix.starts_with('/') || prefix.len() < 2 {
            return Err(CoreError::Config(
                "auth_prefix must start with / (for example /auth)".into(),
            ));
        }
        settings.auth_prefix = prefix;
        if settings.max_concurrent_hashes == 0 {
            return Err(CoreError::Config(
                "max_concurrent_hashes must be at least 1".into(),
            ));
        }
        let csrf_key = match &settings.secret_key {
            Some(k) if k.len() >= 32 => k.clone(),
            Some(_) => {
                return Err(CoreError::Config(
                    "secret_key must be at least 32 bytes".into(),
                ))
            }
            None => {
                tracing::warn!("frontdesk: no secret_key set; a random one is used, so several instances will not share login forms");
                let mut k = vec![0u8; 32];
                rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut k);
                k
            }
        };
        let mfa_keys = match &settings.secret_key {
            Some(k) => Some(frontdesk_core::mfa::sealed::SecretBox::derive(
                k,
                frontdesk_core::mfa::PURPOSE_TOTP,
            )?),
            None => None,
        };
        let sso_keys = match &settings.secret_key {
            Some(k) => Some(frontdesk_core::mfa::sealed::SecretBox::derive(
                k,
                frontdesk_core::sso::PURPOSE_CLIENT_SECRET,
            )?),
            None => None,
        };
        let passkeys = if settings.passkeys.enabled() {
            let rp = frontdesk_core::mfa::passkeys::relying_party(
                &settings.base_url,
                &settings.site_name,
            )?;
            if rp.is_none() {
                tracing::warn!("frontdesk: passkeys need base_url to name a domain (localhost counts), not an IP address; they are off");
            }
            rp.map(Arc::new)
        } else {
            None
        };
        let templates = load_templates(&settings)?;
        let secure = scheme == "https";
        let (session_cookie, csrf_cookie) = if secure {
            (
                "__Host-frontdesk_session".to_owned(),
                "__Host-frontdesk_csrf".to_owned(),
            )
        } else {
            ("frontdesk_session".to_owned(), "frontdesk_csrf".to_owned())
        };
        let origin = settings.base_url.origin().ascii_serialization();
        if settings.invitation_ttl <= chrono::Duration::zero() {
            return Err(CoreError::Config("invitation_ttl must be positive".into()));
        }
        // Links go to the auth pages under the configured origin, like reset links.
        let invitations = InvitationSettings::new(&origin)?
            .with_auth_path(&settings.auth_prefix)
            .with_ttl(settings.invitation_ttl);
        // Mail templates are overridden from `<template_dir>/email/<mail>/…`.
        let mail_templates = match &settings.template_dir {
            Some(dir) => MailTemplates::with_overrides(&dir.join("email")),
            None => MailTemplates::new(),
        }
        .map_err(|e| CoreError::Config(e.to_string()))?;
        let inline_session_reads = pool
            .get()
            .is_ok_and(|c| c.kind() == frontdesk_core::db::BackendKind::Sqlite);
        Ok(FrontdeskState(Arc::new(Inner {
            pool,
            hashing: Arc::new(Semaphore::new(settings.max_concurrent_hashes)),
            signups_pending: Arc::new(Semaphore::new(
                settings.max_concurrent_hashes * PENDING_SIGNUPS_PER_HASH_SLOT,
            )),
            requests_pending: Arc::new(Semaphore::new(PENDING_PUBLIC_REQUESTS)),
            settings,
            templates,
            hooks: hooks.unwrap_or_else(|| Arc::new(NoHooks)),
            csrf_key,
            mfa_keys,
            sso_keys,
            passkeys,
            secure,
            session_cookie,
            csrf_cookie,
            origin,
            invitations,
            mail_templates,
            mail_waker: std::sync::RwLock::new(None),
            inline_session_reads,
            import_slots: Default::default(),
            deferred: Default::default(),
            session_cache: Default::default(),
            recorder: Default::default(),
        })))
    }

    pub(crate) fn pool(&self) -> &Pool {
        &self.0.pool
    }

    /// Whether the session check may read on the request's own thread.
    pub(crate) fn inline_session_reads(&self) -> bool {
        self.0.inline_session_reads
    }

    /// Uses `cache` for the session check from now on (once; later calls are
    /// ignored). Its listener must already be started.
    pub fn set_session_cache(&self, cache: Arc<frontdesk_core::session_cache::SessionCache>) {
        let _ = self.0.session_cache.set(cache);
    }

    /// The session cache, when this instance has one.
    pub fn session_cache(&self) -> Option<&Arc<frontdesk_core::session_cache::SessionCache>> {
        self.0.session_cache.get()
    }

    /// Records activity through `recorder` from now on (once; later calls
    /// are ignored).
    pub fn set_recorder(&self, recorder: frontdesk_core::activity::Recorder) {
        let _ = self.0.recorder.set(recorder);
    }

    /// The activity recorder, when recording is on.
    pub(crate) fn recorder(&self) -> Option<&frontdesk_core::activity::Recorder> {
        self.0.recorder.get()
    }

    /// The handle the host records feature events with.
    pub fn activity(&self) -> crate::activity::Activity {
        crate::activity::Activity::new(self.recorder().cloned())
    }

    /// The slots background imports wait for (`running()` counts the imports
    /// running in this process). A slot taken here holds back one import.
    pub fn import_slots(&self) -> &frontdesk_core::import_jobs::Slots {
        &self.0.import_slots
    }

    /// The settings, as checked and normalized by [`FrontdeskState::new`]
    /// (`auth_prefix` without a trailing `/`).
    pub fn settings(&self) -> &Settings {
        &self.0.settings
    }

    /// The host's hooks. frontdesk does not call them from here: they are
    /// delivered through the events (`frontdesk_core::hooks::HooksListener`),
    /// after the commit, for every path.
    pub fn hooks(&self) -> &Arc<dyn Hooks> {
        &self.0.hooks
    }

    /// Where invitation links point and how long they live.
    pub(crate) fn invitation_settings(&self) -> &InvitationSettings {
        &self.0.invitations
    }

    /// The email templates (invitation mail), with the host's overrides.
    pub(crate) fn mail_templates(&self) -> &MailTemplates {
        &self.0.mail_templates
    }

    /// Lets the pages wake a running outbox worker after they queue mail
    /// (`Frontdesk::start_mailer` sets it).
    pub fn set_mail_waker(&self, waker: MailWaker) {
        if let Ok(mut w) = self.0.mail_waker.write() {
            *w = Some(waker);
        }
    }

    /// Starts a delivery round now, when a worker runs in this process; other
    /// workers pick the mail up at their next poll.
    pub(crate) fn wake_mailer(&self) {
        if let Ok(w) = self.0.mail_waker.read() {
            if let Some(w) = w.as_ref() {
                w.wake();
            }
        }
    }

    /// Where the auth pages are mounted, without a trailing `/` (`/auth`).
    pub fn prefix(&self) -> &str {
        &self.0.settings.auth_prefix
    }

    /// The admin dashboard's path (`/admin/`), for links from the host's pages.
    pub fn admin_url(&self) -> String {
        format!("{}/", self.0.settings.admin_prefix)
    }

    /// Whether mail can go out (a transport is configured); without one,
    /// queued mail waits in the outbox.
    pub(crate) fn mail_configured(&self) -> bool {
        self.0.settings.mail_configured
    }

    pub(crate) fn secure_cookies(&self) -> bool {
        self.0.secure
    }

    /// The name of the session cookie: `__Host-frontdesk_session` when
    /// `base_url` is https, `frontdesk_session` otherwise.
    pub fn session_cookie_name(&self) -> &str {
        &self.0.session_cookie
    }

    pub(crate) fn csrf_cookie_name(&self) -> &str {
        &self.0.csrf_cookie
    }

    pub(crate) fn csrf_key(&self) -> &[u8] {
        &self.0.csrf_key
    }

    /// The key authenticator apps' seeds are sealed with; none without a
    /// configured `secret_key` (then apps cannot be added).
    pub(crate) fn mfa_keys(&self) -> Option<&frontdesk_core::mfa::sealed::SecretBox> {
        self.0.mfa_keys.as_ref()
    }

    /// The key identity providers' client secrets are sealed with; none
    /// without a configured `secret_key` (then none can be configured).
    pub(crate) fn sso_keys(&self) -> Option<&frontdesk_core::mfa::sealed::SecretBox> {
        self.0.sso_keys.as_ref()
    }

    /// The one callback of every identity provider, to register there.
    pub(crate) fn sso_redirect_uri(&self) -> String {
        self.absolute_url(&format!("{}/sso/callback", self.prefix()))
    }

    /// The social provider the host declared under `key` (`github`).
    pub(crate) fn social_provider(
        &self,
        key: &str,
    ) -> Option<&frontdesk_core::sso::social::Provider> {
        self.0.settings.social.iter().find(|p| p.key_str() == key)
    }

    /// The WebAuthn relying party when passkeys are on.
    pub(crate) fn passkeys(
        &self,
    ) -> Option<&Arc<frontdesk_core::mfa::passkeys::webauthn_rs::Webauthn>> {
        self.0.passkeys.as_ref()
    }

    /// Whether the login page offers "Sign in with a passkey".
    pub(crate) fn passkey_sign_in(&self) -> bool {
        self.0.passkeys.is_some() && self.0.settings.passkeys.sign_in()
    }

    /// `scheme://host[:port]` of the base URL, as browsers send it in `Origin`.
    pub(crate) fn origin(&self) -> &str {
        &self.0.origin
    }

    /// An absolute link under the base URL (never from the Host header).
    pub(crate) fn absolute_url(&self, path: &str) -> String {
        format!("{}{}", self.0.origin, path)
    }

    /// Runs diesel work on the blocking pool, with a connection taken there.
    /// The events its changes committed are delivered to the listeners once
    /// the connection is back in the pool (see `frontdesk_core::events`).
    pub async fn db<T, E, F>(&self, f: F) -> Result<T, WebError>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: Into<WebError> + Send + 'static,
    {
        let pool = self.0.pool.clone();
        let cache = self.session_cache().cloned();
        web::block(crate::request_id::carried(move || {
            // The service call, inside the request's span: named by the
            // closure's type (`frontdesk_web::admin::users::…`).
            let _call = tracing::debug_span!("core", call = %std::any::type_name::<F>()).entered();
            // Events the work commits reach the listeners once the
            // connection is back in the pool (when `conn` drops).
            let mut conn =
                frontdesk_core::events::checkout(&pool).map_err(WebError::unavailable)?;
            // Sessions this work ended drop out of this instance's cache
            // before the response goes out (other instances hear of it
            // through NOTIFY).
            frontdesk_core::session_cache::take_pending();
            let out = f(&mut conn).map_err(Into::into);
            let changed = frontdesk_core::session_cache::take_pending();
            if let Some(cache) = cache {
                for c in &changed {
                    cache.invalidate(c);
                }
            }
            out
        }))
        .await
        .map_err(WebError::internal)?
    }

    /// Runs blocking `job` on the blocking pool of the current runtime, counted
    /// until it ends ([`FrontdeskState::deferred_settled`]). Call it from a
    /// task on the runtime (a handler, or [`crate::deferred::after_sent`]'s
    /// callback, which runs where the response is written).
    pub(crate) fn spawn_deferred(&self, job: impl FnOnce() + Send + 'static) {
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => crate::deferred::spawn(&rt, self.0.deferred.clone(), job),
            // Outside any runtime (a response dropped on a plain thread).
            Err(_) => job(),
        }
    }

    /// [`FrontdeskState::spawn_deferred`] for async work (its database and
    /// argon2 steps go through [`FrontdeskState::db`] and
    /// [`FrontdeskState::hashing`], so waiting holds no blocking thread).
    pub(crate) fn spawn_deferred_async(
        &self,
        work: impl std::future::Future<Output = ()> + Send + 'static,
    ) {
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => crate::deferred::spawn_async(&rt, self.0.deferred.clone(), work),
            Err(_) => tracing::error!("frontdesk: deferred work dropped outside a runtime"),
        }
    }

    /// Resolves once no work started after a response is still running:
    /// for a graceful shutdown, and for tests that read what it wrote.
    pub async fn deferred_settled(&self) {
        crate::deferred::settled(&self.0.deferred).await
    }

    /// A place for one more sign-up's work after its answer, or `None` when
    /// [`PENDING_SIGNUPS_PER_HASH_SLOT`] per argon2 slot are already waiting
    /// (the form then answers "busy" for every address alike, doing nothing).
    pub(crate) fn signup_slot(&self) -> Option<OwnedSemaphorePermit> {
        self.0.signups_pending.clone().try_acquire_owned().ok()
    }

    /// A place for the work of one more password-reset or verification-mail
    /// request after its answer, or `None` when [`PENDING_PUBLIC_REQUESTS`]
    /// are already waiting (the form then answers "busy" for every address
    /// alike, doing nothing).
    pub(crate) fn request_slot(&self) -> Option<OwnedSemaphorePermit> {
        self.0.requests_pending.clone().try_acquire_owned().ok()
    }

    /// Waits for a free argon2 slot; hold the permit while hashing or verifying.
    pub async fn hash_permit(&self) -> Result<OwnedSemaphorePermit, WebError> {
        let wait = self.0.settings.hash_queue_timeout;
        match tokio::time::timeout(wait, self.0.hashing.clone().acquire_owned()).await {
            Ok(permit) => permit.map_err(WebError::internal),
            Err(_) => Err(WebError::unavailable(
                "no argon2 slot freed up in time; refusing to queue more",
            )),
        }
    }

    /// Argon2 work (hash or verify) off the executor, under the concurrency cap.
    pub async fn hashing<T, F>(&self, f: F) -> Result<T, WebError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let permit = self.hash_permit().await?;
        let out = web::block(crate::request_id::carried(f))
            .await
            .map_err(WebError::internal);
        drop(permit);
        out
    }

    /// A context with what every page needs.
    pub(crate) fn context(&self) -> Context {
        let mut ctx = Context::new();
        ctx.insert("site_name", &self.0.settings.site_name);
        ctx.insert("prefix", &self.0.settings.auth_prefix);
        ctx.insert("admin_url", &self.admin_url());
        ctx.insert("environment_label", &self.0.settings.environment_label);
        ctx.insert("mail_configured", &self.0.settings.mail_configured);
        ctx
    }

    pub(crate) fn render(&self, name: &str, ctx: &Context) -> Result<String, WebError> {
        self.0.templates.render(name, ctx).map_err(|e| {
            WebError::internal(format!(
                "rendering {name}: {}",
                crate::templates::error_chain(&e)
            ))
        })
    }
}

fn load_templates(settings: &Settings) -> Result<Tera, CoreError> {
    crate::templates::load_with(
        settings.template_dir.as_deref(),
        &settings.extensions.templates(),
    )
    .map_err(CoreError::Config)
}
