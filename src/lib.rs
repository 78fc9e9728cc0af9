#![warn(missing_docs)]

//! frontdesk: end-user management mounted inside an actix-web app.
//!
//! Build one [`Frontdesk`] with [`Frontdesk::builder`]; it owns the database
//! pool (SQLite or PostgreSQL, picked from the URL), runs the embedded
//! migrations when built, and mounts its pages with [`Frontdesk::configure`]:
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use actix_web::{web, App, HttpServer, Responder};
//! use frontdesk::{CurrentUser, Frontdesk};
//!
//! async fn notes(me: CurrentUser) -> impl Responder {
//!     format!("Hello {}", me.user.name())
//! }
//!
//! let frontdesk = Frontdesk::builder()
//!     .database_url("sqlite://app.db")
//!     .base_url("http://127.0.0.1:8080")
//!     // Invitation and reset mail: SMTP in production, `file:///folder` in development.
//!     .mail_url("smtp://user:password@smtp.example.com:587")
//!     .mail_from("Notes <no-reply@notes.example>")
//!     .build()?;
//! // Delivers the outbox in the background, with retries.
//! let mailer = frontdesk.start_mailer()?;
//! HttpServer::new(move || {
//!     App::new().configure(frontdesk.configure()).route("/notes", web::get().to(notes))
//! })
//! .bind(("127.0.0.1", 8080))?
//! .run()
//! .await?;
//! mailer.shutdown().await;
//! # Ok(()) }
//! ```

use std::path::PathBuf;
use std::sync::Arc;

pub use frontdesk_core as core;
pub use frontdesk_core::events::{Event, EventListener, Veto};
pub use frontdesk_core::hooks::Hooks;
pub use frontdesk_core::licences::Licence;
pub use frontdesk_core::login_attempts::LockoutPolicy;
pub use frontdesk_core::mfa::passkeys::PasskeyPolicy;
pub use frontdesk_core::sso::social::Provider;
pub use frontdesk_core::{Action, Actor, CoreError, OrgRole, StaffRole};
pub use frontdesk_mail as mail;
pub use frontdesk_web as web;
pub use frontdesk_web::client_ip::TrustedProxies;
pub use frontdesk_web::extensions;
pub use frontdesk_web::parts::Part;
pub use frontdesk_web::{
    role, security_headers, CurrentUser, FrontdeskState, OptionalUser, Staff, WebError,
};

use actix_web::web::ServiceConfig;
use frontdesk_core::db::{self, BackendKind, DatabaseUrl, Pool};
use frontdesk_web::Settings;

/// Builder for [`Frontdesk`].
#[derive(Clone)]
pub struct FrontdeskBuilder {
    database_url: Option<String>,
    postgres_schema: Option<String>,
    pool_size: u32,
    session_cache: (usize, std::time::Duration),
    base_url: Option<String>,
    auth_prefix: Option<String>,
    after_login: Option<String>,
    admin_after_login: Option<bool>,
    environment_label: Option<String>,
    site_name: Option<String>,
    idle_timeout: Option<chrono::Duration>,
    absolute_timeout: Option<chrono::Duration>,
    lockout: Option<LockoutPolicy>,
    password_reset_ttl: Option<chrono::Duration>,
    signup: frontdesk_web::state::SignupSettings,
    email_verification_ttl: Option<chrono::Duration>,
    require_verified_email: bool,
    passkeys: PasskeyPolicy,
    mfa_staff: bool,
    mfa_organizations: Vec<String>,
    template_dir: Option<PathBuf>,
    secret_key: Option<Vec<u8>>,
    max_concurrent_hashes: Option<usize>,
    hash_queue_timeout: Option<std::time::Duration>,
    trusted_proxies: TrustedProxies,
    hooks: Option<Arc<dyn Hooks>>,
    listeners: Vec<Arc<dyn EventListener>>,
    admin_prefix: Option<String>,
    admin_authorizer: Option<frontdesk_web::admin::AdminAuthorizer>,
    invitation_ttl: Option<chrono::Duration>,
    mail_url: Option<String>,
    mail_transport: Option<mail::Transport>,
    mail_from: Option<String>,
    mail_config: Option<mail::MailConfig>,
    import_config: Option<core::imports::ImportConfig>,
    profile_fields: Option<Vec<String>>,
    typed_profile_fields: Vec<core::profile::ProfileField>,
    extensions: Vec<Arc<dyn frontdesk_web::extensions::Extension>>,
    disabled_parts: Vec<frontdesk_web::parts::Part>,
    import_dir: Option<PathBuf>,
    activity: Option<core::activity::ActivityConfig>,
    services: Vec<(String, String)>,
    licences: Vec<core::licences::Licence>,
    social: Vec<Provider>,
}

impl Default for FrontdeskBuilder {
    fn default() -> Self {
        FrontdeskBuilder {
            database_url: None,
            postgres_schema: None,
            pool_size: 8,
            session_cache: (10_000, std::time::Duration::from_secs(30)),
            base_url: None,
            auth_prefix: None,
            after_login: None,
            admin_after_login: None,
            environment_label: None,
            site_name: None,
            idle_timeout: None,
            absolute_timeout: None,
            lockout: None,
            password_reset_ttl: None,
            signup: Default::default(),
            email_verification_ttl: None,
            require_verified_email: false,
            passkeys: PasskeyPolicy::default(),
            mfa_staff: false,
            mfa_organizations: Vec::new(),
            template_dir: None,
            secret_key: None,
            max_concurrent_hashes: None,
            hash_queue_timeout: None,
            trusted_proxies: TrustedProxies::None,
            hooks: None,
            listeners: Vec::new(),
            admin_prefix: None,
            admin_authorizer: None,
            invitation_ttl: None,
            mail_url: None,
            mail_transport: None,
            mail_from: None,
            mail_config: None,
            import_config: None,
            profile_fields: None,
            typed_profile_fields: Vec::new(),
            import_dir: None,
            extensions: Vec::new(),
            disabled_parts: Vec::new(),
            activity: None,
            services: Vec::new(),
            licences: Vec::new(),
            social: Vec::new(),
        }
    }
}

impl FrontdeskBuilder {
    /// `postgres://…` for PostgreSQL; `sqlite://path` or a file path for SQLite.
    pub fn database_url(mut self, url: impl Into<String>) -> Self {
        self.database_url = Some(url.into());
        self
    }

    /// The PostgreSQL schema that holds frontdesk's tables and its record of
    /// migrations (default `frontdesk`; created when missing). Lower-case
    /// letters, digits and `_`. Tables an earlier version left in `public`
    /// are moved into it on the first build. Ignored on SQLite, where the
    /// database file is frontdesk's own.
    pub fn postgres_schema(mut self, schema: impl Into<String>) -> Self {
        self.postgres_schema = Some(schema.into());
        self
    }

    /// Largest number of open database connections (SQLite is capped at 16).
    pub fn pool_size(mut self, size: u32) -> Self {
        self.pool_size = size;
        self
    }

    /// PostgreSQL: how many validated sessions this process keeps in memory
    /// and for how long (default 10 000 for 30 s); a zero capacity or TTL
    /// turns the cache off. Revocations reach every instance's cache through
    /// `LISTEN/NOTIFY` on one extra connection per process; while that
    /// connection is down, every check goes to the database. Unused on SQLite.
    pub fn session_cache(mut self, capacity: usize, ttl: std::time::Duration) -> Self {
        self.session_cache = (capacity, ttl);
        self
    }

    /// The public URL of the host app (required). Mail links are built from
    /// it, never from the Host header; `https` turns on Secure `__Host-` cookies.
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = Some(url.into());
        self
    }

    /// Where the auth pages are mounted (default `/auth`).
    pub fn auth_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.auth_prefix = Some(prefix.into());
        self
    }

    /// Where users land after signing in when no `next` was asked for (default `/`).
    pub fn after_login(mut self, path: impl Into<String>) -> Self {
        self.after_login = Some(path.into());
        self
    }

    /// Staff and organization admins who sign in without a `next` land on
    /// the admin dashboard instead of [`after_login`](Self::after_login)
    /// (default `true`; `false` sends everyone to `after_login`).
    pub fn admin_after_login(mut self, yes: bool) -> Self {
        self.admin_after_login = Some(yes);
        self
    }

    /// Which deployment this is (`"production"`, `"staging"`): shown in the
    /// admin header and next to the import and export buttons, so an admin
    /// sees which app a file goes into. At most 40 characters.
    pub fn environment_label(mut self, label: impl Into<String>) -> Self {
        self.environment_label = Some(label.into());
        self
    }

    /// The name shown on the pages and in mails.
    pub fn site_name(mut self, name: impl Into<String>) -> Self {
        self.site_name = Some(name.into());
        self
    }

    /// A session unused this long ends (default 12 hours).
    pub fn session_idle_timeout(mut self, d: chrono::Duration) -> Self {
        self.idle_timeout = Some(d);
        self
    }

    /// A session ends this long after sign-in however active (default 14 days).
    pub fn session_absolute_timeout(mut self, d: chrono::Duration) -> Self {
        self.absolute_timeout = Some(d);
        self
    }

    /// Failures per account / IP before sign-in locks, and how long.
    pub fn lockout(mut self, policy: LockoutPolicy) -> Self {
        self.lockout = Some(policy);
        self
    }

    /// How long a password reset link works (default 1 hour).
    pub fn password_reset_ttl(mut self, d: chrono::Duration) -> Self {
        self.password_reset_ttl = Some(d);
        self
    }

    /// Who may create their own account at `<auth prefix>/signup` (default:
    /// closed, no sign-up page).
    pub fn signup_policy(mut self, policy: core::signup::SignupPolicy) -> Self {
        self.signup.policy = policy;
        self
    }

    /// Terms a new user must accept to sign up (a checkbox on the form); the
    /// version and the time are stored on the user.
    pub fn signup_terms(mut self, url: impl Into<String>, version: impl Into<String>) -> Self {
        self.signup.terms = Some(core::signup::Terms {
            url: url.into(),
            version: version.into(),
        });
        self
    }

    /// Sign-up requests allowed per email and per IP within a window.
    pub fn signup_limits(mut self, limits: core::signup::SignupLimits) -> Self {
        self.signup.limits = limits;
        self
    }

    /// Refuse sign-in until the address is verified (default false: allowed,
    /// and `CurrentUser.user.email_verified` lets the host show a banner).
    pub fn require_verified_email(mut self, yes: bool) -> Self {
        self.require_verified_email = yes;
        self
    }

    /// What passkeys may do: `Off`, `SecondFactor` (the default: after the
    /// password) or `SignIn` (also "Sign in with a passkey" on the login
    /// page). The relying party is `base_url`'s host, which must be a domain.
    pub fn passkeys(mut self, policy: PasskeyPolicy) -> Self {
        self.passkeys = policy;
        self
    }

    /// Every staff member must use two-step sign-in (default false): one
    /// without a factor adds an authenticator app right after the password,
    /// before any session exists.
    pub fn require_mfa_for_staff(mut self, yes: bool) -> Self {
        self.mfa_staff = yes;
        self
    }

    /// Members of these organizations (by slug) must use two-step sign-in,
    /// whatever the organization's own "require MFA" setting says.
    pub fn require_mfa_for_organizations<I, S>(mut self, slugs: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.mfa_organizations = slugs.into_iter().map(Into::into).collect();
        self
    }

    /// How long an email verification link works (default 24 hours).
    pub fn email_verification_ttl(mut self, d: chrono::Duration) -> Self {
        self.email_verification_ttl = Some(d);
        self
    }

    /// A folder whose templates replace the embedded ones by name
    /// (e.g. `auth/login.html`).
    pub fn template_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.template_dir = Some(dir.into());
        self
    }

    /// At least 32 bytes; signs the pre-session CSRF cookie. Give every
    /// instance behind one load balancer the same key.
    pub fn secret_key(mut self, key: impl Into<Vec<u8>>) -> Self {
        self.secret_key = Some(key.into());
        self
    }

    /// Cap on concurrent argon2 runs (default: CPUs − 1, at least 1, so one
    /// core keeps serving requests during a login flood).
    pub fn max_concurrent_hashes(mut self, n: usize) -> Self {
        self.max_concurrent_hashes = Some(n);
        self
    }

    /// How long a sign-in waits for an argon2 slot before a 503 (default 10 s).
    pub fn hash_queue_timeout(mut self, d: std::time::Duration) -> Self {
        self.hash_queue_timeout = Some(d);
        self
    }

    /// The proxies trusted to report the client's address in
    /// `X-Forwarded-For`, read from the right (see [`TrustedProxies`]):
    /// `TrustedProxies::Hops(1)` behind one load balancer, or
    /// `TrustedProxies::networks(["10.0.0.0/8"])?`. Default: none.
    pub fn trusted_proxies(mut self, proxies: TrustedProxies) -> Self {
        self.trusted_proxies = proxies;
        self
    }

    /// One trusted proxy (`true`) or none; prefer [`Self::trusted_proxies`].
    #[deprecated(note = "use trusted_proxies(TrustedProxies::Hops(1)) or a network list")]
    pub fn trust_forwarded_for(self, yes: bool) -> Self {
        self.trusted_proxies(if yes {
            TrustedProxies::Hops(1)
        } else {
            TrustedProxies::None
        })
    }

    /// The host's callbacks (signed in, login failed, user created, deleted,
    /// invitation accepted or declined). They are one event listener (see
    /// [`FrontdeskBuilder::listener`]), so they run for every path that
    /// makes the change, after it committed.
    pub fn hooks(mut self, hooks: impl Hooks) -> Self {
        self.hooks = Some(Arc::new(hooks));
        self
    }

    /// Adds a listener for frontdesk's [`Event`]s: `before_commit` runs inside
    /// each change's transaction and may veto it with a message (nothing is
    /// saved; pages show the message, the API answers 409 with it);
    /// `after_commit` runs once the change committed and the connection is
    /// back in the pool. Listeners run in the order added, the hooks last.
    pub fn listener(mut self, listener: impl EventListener) -> Self {
        self.listeners.push(Arc::new(listener));
        self
    }

    /// Where the admin pages are mounted (default `/admin`).
    pub fn admin_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.admin_prefix = Some(prefix.into());
        self
    }

    /// The host decides who may open the admin pages, and as whom: a function
    /// of the request returning the [`Actor`] or a refusal. Without it, staff
    /// and organization admins signed in through the auth pages may.
    pub fn admin_authorizer(
        mut self,
        f: impl Fn(&actix_web::HttpRequest) -> Result<Actor, WebError> + Send + Sync + 'static,
    ) -> Self {
        self.admin_authorizer = Some(Arc::new(f));
        self
    }

    /// How long an invitation link works (default 7 days).
    pub fn invitation_ttl(mut self, d: chrono::Duration) -> Self {
        self.invitation_ttl = Some(d);
        self
    }

    /// Where mail goes: `smtp://user:pass@host:587` (STARTTLS),
    /// `smtps://host:465` (TLS), `smtp://host:25?tls=none`, or
    /// `file:///path/to/folder` (one `.eml` per mail). Start the delivery
    /// worker with [`Frontdesk::start_mailer`].
    pub fn mail_url(mut self, url: impl Into<String>) -> Self {
        self.mail_url = Some(url.into());
        self
    }

    /// A transport made in code (e.g. [`mail::Transport::file`] or
    /// [`mail::Transport::memory`]); takes the place of `mail_url`.
    pub fn mail_transport(mut self, transport: mail::Transport) -> Self {
        self.mail_transport = Some(transport);
        self
    }

    /// The sender of every mail, like `Acme <no-reply@acme.example>`
    /// (required with `mail_url` or `mail_transport`).
    pub fn mail_from(mut self, from: impl Into<String>) -> Self {
        self.mail_from = Some(from.into());
        self
    }

    /// The worker's full settings (sender, retries, backoff, polling);
    /// takes the place of `mail_from`.
    pub fn mail_config(mut self, config: mail::MailConfig) -> Self {
        self.mail_config = Some(config);
        self
    }

    /// What the CSV import accepts: profile fields, size and row limits, batch
    /// size, and the row count above which an import from the pages or the
    /// API runs in the background (default 10,000).
    pub fn import_config(mut self, config: core::imports::ImportConfig) -> Self {
        self.import_config = Some(config);
        self
    }

    /// The host's profile fields: columns of the import template and fields
    /// of the export (overrides those of `import_config`).
    pub fn profile_fields<I, S>(mut self, fields: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.profile_fields = Some(fields.into_iter().map(Into::into).collect());
        self
    }

    /// A typed profile field (kind, label, required, limits, help, list
    /// column), after those of `profile_fields`: checked on every path that
    /// saves a profile, an import/export column, an edit-form field, a
    /// users-list filter (choice and boolean fields) and, with
    /// `list_column()`, a users-list column.
    pub fn profile_field(mut self, field: core::profile::ProfileField) -> Self {
        self.typed_profile_fields.push(field);
        self
    }

    /// Where uploaded CSV files wait while they are imported, and dry runs
    /// until they are applied (default: `frontdesk-imports` in the temp dir).
    pub fn import_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.import_dir = Some(dir.into());
        self
    }

    /// Adds an extension to the admin: nav items, pages, users-list columns,
    /// bulk actions, user-page sections (see [`web::extensions`]).
    pub fn extension(mut self, ext: impl frontdesk_web::extensions::Extension) -> Self {
        self.extensions.push(Arc::new(ext));
        self
    }

    /// Switches one of frontdesk's optional parts off: its admin pages and
    /// API routes answer 404, its API paths leave the OpenAPI document and
    /// its menu item and links leave the admin (see [`web::parts`]).
    pub fn without(mut self, part: frontdesk_web::parts::Part) -> Self {
        if !self.disabled_parts.contains(&part) {
            self.disabled_parts.push(part);
        }
        self
    }

    /// Turns on activity recording (off by default): page views through
    /// [`Frontdesk::activity_middleware`] and feature events through
    /// [`Frontdesk::activity`], queued in memory and written in batches by
    /// one background thread, with the dedup window, retention, IP and path
    /// choices of `config`.
    pub fn activity(mut self, config: core::activity::ActivityConfig) -> Self {
        self.activity = Some(config);
        self
    }

    /// Declares one of the host's services (`"main-app"`, `"Main
    /// Application"`): kept in the `services` table, synced at each start.
    /// A sign-in counts for a service when its session is used on routes the
    /// activity middleware records for it (`activity_middleware().service(slug)`).
    /// Without any, one service `app` named after the site is declared.
    pub fn service(mut self, slug: impl Into<String>, name: impl Into<String>) -> Self {
        self.services.push((slug.into(), name.into()));
        self
    }

    /// Declares one of the host's licence types, e.g.
    /// `Licence::new("pro", "Pro plan").seats(25)`: organization admins give
    /// it to members directly or through groups, at most `seats` users per
    /// organization. Kept in the `licence_types` table, synced at each start.
    /// Without any, the licence sections stay out of the pages and the API
    /// lists none.
    pub fn licence(mut self, licence: core::licences::Licence) -> Self {
        self.licences.push(licence);
        self
    }

    /// Offers a host-wide social provider on the login page ("Continue with
    /// GitHub"): `Provider::github(id, secret)`, `Provider::oidc(key, name,
    /// issuer, id, secret)` or `Provider::oauth2(…)`. Register
    /// `{base_url}{auth prefix}/sso/callback` as its redirect URI. Its
    /// identities sign in only the accounts they are linked to; users link
    /// them from their "Linked accounts" page, and a new account is made only
    /// when sign-up is open to the provider's verified email.
    pub fn social(mut self, provider: Provider) -> Self {
        self.social.push(provider);
        self
    }

    /// Opens the pool, brings the schema up to date and loads the templates.
    pub fn build(self) -> Result<Frontdesk, CoreError> {
        let url = self
            .database_url
            .ok_or_else(|| CoreError::Config("database_url is required".into()))?;
        let base_url = self.base_url.ok_or_else(|| {
            CoreError::Config("base_url is required (the public URL of the app)".into())
        })?;
        let base_url = url::Url::parse(&base_url)
            .map_err(|e| CoreError::Config(format!("base_url {base_url:?}: {e}")))?;
        let mut settings = Settings::new(base_url);
        if let Some(p) = self.auth_prefix {
            settings.auth_prefix = p;
        }
        if let Some(p) = self.after_login {
            if !p.starts_with('/') || p.starts_with("//") {
                return Err(CoreError::Config(
                    "after_login must be a path starting with /".into(),
                ));
            }
            settings.after_login = p;
        }
        if let Some(n) = self.site_name {
            settings.site_name = n;
        }
        if let Some(yes) = self.admin_after_login {
            settings.admin_after_login = yes;
        }
        if let Some(label) = self.environment_label {
            let label = label.trim().to_owned();
            if label.is_empty() || label.chars().count() > 40 || label.chars().any(char::is_control)
            {
                return Err(CoreError::Config(
                    "environment_label must be 1 to 40 characters, without control characters"
                        .into(),
                ));
            }
            settings.environment_label = Some(label);
        }
        settings.signup = self.signup.clone();
        settings.auth.require_verified_email = self.require_verified_email;
        settings.passkeys = self.passkeys;
        settings.auth.mfa_policy = core::mfa::policy::MfaPolicy {
            staff: self.mfa_staff,
            // Settings are copied into every sign-in: the list is made once.
            organizations: Box::leak(self.mfa_organizations.clone().into_boxed_slice()),
        };
        if let Some(d) = self.email_verification_ttl {
            if d <= chrono::Duration::zero() {
                return Err(CoreError::Config(
                    "email_verification_ttl must be positive".into(),
                ));
            }
            settings.email_verification_ttl = d;
        }
        if let Some(d) = self.idle_timeout {
            settings.auth.sessions.idle_timeout = d;
        }
        if let Some(d) = self.absolute_timeout {
            settings.auth.sessions.absolute_timeout = d;
        }
        let sessions = settings.auth.sessions;
        if sessions.idle_timeout <= chrono::Duration::zero()
            || sessions.absolute_timeout <= chrono::Duration::zero()
        {
            return Err(CoreError::Config(
                "session timeouts must be positive".into(),
            ));
        }
        if let Some(l) = self.lockout {
            settings.auth.lockout = l;
        }
        if let Some(d) = self.password_reset_ttl {
            settings.password_reset_ttl = d;
        }
        settings.template_dir = self.template_dir;
        settings.secret_key = self.secret_key;
        if let Some(n) = self.max_concurrent_hashes {
            settings.max_concurrent_hashes = n;
        }
        if let Some(d) = self.hash_queue_timeout {
            settings.hash_queue_timeout = d;
        }
        settings.trusted_proxies = self.trusted_proxies.clone();
        if let Some(p) = self.admin_prefix {
            let p = p.trim_end_matches('/').to_owned();
            if !p.starts_with('/') || p.len() < 2 || p == settings.auth_prefix {
                return Err(CoreError::Config(
                    "admin_prefix must start with / and differ from auth_prefix".into(),
                ));
            }
            settings.admin_prefix = p;
        }
        settings.admin_authorizer = self.admin_authorizer;
        if let Some(d) = self.invitation_ttl {
            settings.invitation_ttl = d;
        }
        if let Some(c) = self.import_config {
            settings.import = c;
        }
        if let Some(f) = self.profile_fields {
            settings.import.profile_fields = f.into_iter().map(Into::into).collect();
        }
        settings
            .import
            .profile_fields
            .extend(self.typed_profile_fields);
        if let Some(d) = self.import_dir {
            settings.import_dir = d;
        }
        for ext in &self.extensions {
            settings.extensions.add(ext.as_ref())?;
        }
        settings.disabled_parts = self.disabled_parts.clone();
        if settings
            .disabled_parts
            .contains(&frontdesk_web::parts::Part::Tags)
        {
            settings.import.tags = false;
        }
        let ext_fields = settings.extensions.profile_fields();
        settings.import.profile_fields.extend(ext_fields);
        core::profile::check_declarations(&settings.import.profile_fields)?;
        core::licences::check_declarations(&self.licences)?;
        settings.licences = self.licences.clone();
        // Plain http to a provider only on loopback, and only for a host
        // itself served over http (development and tests).
        core::sso::social::check_declarations(&self.social, settings.base_url.scheme() == "http")?;
        settings.social = self.social.clone();
        if settings.import.max_rows == 0 || settings.import.max_bytes == 0 {
            return Err(CoreError::Config(
                "import_config: max_rows and max_bytes must be positive".into(),
            ));
        }
        let transport = match (self.mail_transport, &self.mail_url) {
            (Some(t), _) => Some(t),
            (None, Some(url)) => Some(mail::Transport::from_url(url).map_err(mail_config_error)?),
            (None, None) => None,
        };
        let mail_config = match (self.mail_config, &self.mail_from) {
            (Some(c), _) => Some(c),
            (None, Some(from)) => Some(mail::MailConfig::new(from).map_err(mail_config_error)?),
            (None, None) => None,
        };
        let mail = match (transport, mail_config) {
            (Some(t), Some(c)) => Some((t, c)),
            (None, None) => None,
            (Some(_), None) => {
                return Err(CoreError::Config(
                    "mail_from is required with a mail transport (e.g. \"Acme <no-reply@acme.example>\")"
                        .into(),
                ))
            }
            (None, Some(_)) => {
                return Err(CoreError::Config(
                    "mail_from needs mail_url (or mail_transport) to say where mail goes".into(),
                ))
            }
        };

        settings.mail_configured = mail.is_some();
        let backend = DatabaseUrl::parse(&url)?.kind();
        let schema = match &self.postgres_schema {
            Some(name) => db::PgSchema::new(name)?,
            None => db::PgSchema::default(),
        };
        let mut listeners = core::events::Listeners::new(self.listeners.clone());
        let hooks_listener = self
            .hooks
            .clone()
            .map(|h| Arc::new(core::hooks::HooksListener::new(h)));
        if let Some(h) = &hooks_listener {
            listeners.push(h.clone());
        }
        let pool = db::connect_with(&url, self.pool_size, &schema, listeners)?;
        if let Some(h) = &hooks_listener {
            h.attach(pool.clone());
        }
        // Imports left running by a process that stopped: on SQLite this
        // process is the database's only server, so every one of them is
        // dead; on PostgreSQL other instances may still be running theirs.
        let stale = match backend {
            BackendKind::Sqlite => None,
            BackendKind::Postgres => Some(settings.import.heartbeat_timeout),
        };
        let mut conn = pool.get().map_err(|e| CoreError::Pool(e.to_string()))?;
        core::import_jobs::mark_interrupted(&mut conn, stale)?;
        let declared = if self.services.is_empty() {
            vec![(
                core::services::DEFAULT_SLUG.to_owned(),
                settings.site_name.clone(),
            )]
        } else {
            self.services.clone()
        };
        let services = core::services::sync(&mut conn, &declared)?;
        core::licences::sync(&mut conn, &self.licences)?;
        drop(conn);
        let state = FrontdeskState::new(pool.clone(), settings, self.hooks)?;
        if let (BackendKind::Postgres, Some(capacity)) = (
            backend,
            std::num::NonZeroUsize::new(self.session_cache.0)
                .filter(|_| !self.session_cache.1.is_zero()),
        ) {
            let cache = Arc::new(core::session_cache::SessionCache::new(
                capacity,
                self.session_cache.1,
            ));
            core::session_cache::start_listener(&cache, url.clone())
                .map_err(|e| CoreError::Config(format!("session cache listener: {e}")))?;
            state.set_session_cache(cache);
        }
        if let Some(config) = self.activity {
            state.set_recorder(core::activity::Recorder::start(
                pool.clone(),
                config,
                &services,
            )?);
        }
        let mailer = mail.map(|(t, c)| mail::Mailer::new(pool.clone(), t, c));
        Ok(Frontdesk {
            pool,
            backend,
            state,
            mailer,
        })
    }
}

/// The module's state: shared by its scopes, never mixed with the host's own `Data`.
#[derive(Clone)]
pub struct Frontdesk {
    pool: Pool,
    backend: BackendKind,
    state: FrontdeskState,
    mailer: Option<mail::Mailer>,
}

fn mail_config_error(e: mail::MailError) -> CoreError {
    CoreError::Config(e.to_string())
}

impl Frontdesk {
    /// A builder with every default; `database_url` and `base_url` must be
    /// set before [`FrontdeskBuilder::build`].
    pub fn builder() -> FrontdeskBuilder {
        FrontdeskBuilder::default()
    }

    /// The database pool frontdesk opened (8 connections unless set), for
    /// the host's own queries on frontdesk's tables through `core`.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Which database the URL named: SQLite or PostgreSQL.
    pub fn backend(&self) -> BackendKind {
        self.backend
    }

    /// The state the web scopes and extractors use.
    pub fn state(&self) -> &FrontdeskState {
        &self.state
    }

    /// The admin dashboard's path (`/admin/` by default), for a link from the
    /// host's own pages; templates rendered by frontdesk get it as `admin_url`.
    pub fn admin_url(&self) -> String {
        self.state.admin_url()
    }

    /// The outbox's delivery worker, when mail is configured (`mail_url` or
    /// `mail_transport`, and `mail_from`).
    pub fn mailer(&self) -> Option<&mail::Mailer> {
        self.mailer.as_ref()
    }

    /// Starts delivering queued mail (invitations, password resets) in the
    /// background of the current tokio runtime, e.g. in `#[actix_web::main]`
    /// before `HttpServer::new`. Pages that queue mail wake it at once. Keep the
    /// handle and `shutdown().await` it when the server stops. On PostgreSQL
    /// every instance may run one; on SQLite run one per database.
    pub fn start_mailer(&self) -> Result<mail::MailerHandle, mail::MailError> {
        let mailer = self.mailer.as_ref().ok_or_else(|| {
            mail::MailError::Config(
                "no mail transport configured: set mail_url (or mail_transport) and mail_from"
                    .into(),
            )
        })?;
        let handle = mailer.spawn()?;
        self.state.set_mail_waker(handle.waker());
        Ok(handle)
    }

    /// Records feature events (`activity().record(&me, "export.created",
    /// json!({…}))`); does nothing unless the builder turned recording on.
    /// Handlers can also take [`web::activity::Activity`] as an argument.
    pub fn activity(&self) -> web::activity::Activity {
        self.state.activity()
    }

    /// The middleware that records signed-in users' page views on the routes
    /// it wraps (`.wrap(frontdesk.activity_middleware())`), by route pattern;
    /// `.service("mobile-api")` says which service they belong to.
    pub fn activity_middleware(&self) -> web::activity::RecordActivity {
        web::activity::RecordActivity::new(self.state.clone())
    }

    /// Registers frontdesk's state and mounts the auth pages:
    /// `App::new().configure(frontdesk.configure())`.
    pub fn configure(&self) -> impl FnOnce(&mut ServiceConfig) + Clone {
        frontdesk_web::configure(self.state.clone())
    }
}

/// The README's Rust examples, compiled (and run) as doctests, so the
/// mounting example a host copies cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
