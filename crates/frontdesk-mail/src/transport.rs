//! Where mail goes: SMTP (production), a folder of `.eml` files (development),
//! or memory (tests). One enum, so the worker has a single `send`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::transport::smtp::AsyncSmtpTransportBuilder;
use lettre::transport::smtp::PoolConfig;
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::MailError;

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// Plain text. Only for a relay on the same host or a trusted network.
    None,
    /// Plain connection upgraded with STARTTLS (usually port 587); refused
    /// when the server does not offer it.
    StartTls,
    /// TLS from the first byte ("SMTPS", usually port 465).
    Tls,
}

impl SmtpSecurity {
    /// Reads a setting's value, case-insensitive and trimmed: `none` or
    /// `plain`, `starttls`, `tls` or `smtps`. Anything else is `None`.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "none" | "plain" => Some(SmtpSecurity::None),
            "starttls" => Some(SmtpSecurity::StartTls),
            "tls" | "smtps" => Some(SmtpSecurity::Tls),
            _ => None,
        }
    }

    pub(crate) fn default_port(self) -> u16 {
        match self {
            SmtpSecurity::None => 25,
            SmtpSecurity::StartTls => 587,
            SmtpSecurity::Tls => 465,
        }
    }
}

/// An SMTP relay. `Debug` hides the password.
#[derive(Clone)]
pub struct SmtpConfig {
    /// The relay's host name or IP address, also the name its TLS
    /// certificate must carry.
    pub host: String,
    /// The relay's port; [`SmtpConfig::new`] takes the usual one for
    /// `security` (25, 587 or 465).
    pub port: u16,
    /// How the connection is protected.
    pub security: SmtpSecurity,
    /// User name and password, when the relay wants them.
    pub credentials: Option<(String, String)>,
    /// Connections kept open and reused (set the worker's `concurrency` to
    /// match). lettre writes the end-of-data marker in a segment of its own
    /// without TCP_NODELAY, so a relay that delays its ACKs caps one connection
    /// at about 25 mails/s; throughput comes from several connections.
    pub pool_size: u32,
    /// How long one SMTP command may take before the send fails (default
    /// 30 s); such a failure is transient, so the mail is tried again.
    pub timeout: Duration,
}

impl std::fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("user", &self.credentials.as_ref().map(|(u, _)| u))
            .field("pool_size", &self.pool_size)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl SmtpConfig {
    /// A relay at `host` (trimmed) with the usual port for `security`, no
    /// credentials, 16 pooled connections and a 30 s timeout.
    pub fn new(host: &str, security: SmtpSecurity) -> Self {
        SmtpConfig {
            host: host.trim().to_owned(),
            port: security.default_port(),
            security,
            credentials: None,
            pool_size: 16,
            timeout: Duration::from_secs(30),
        }
    }

    /// The same configuration on another port.
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// The same configuration, signing in with `user` and `password`.
    pub fn credentials(mut self, user: &str, password: &str) -> Self {
        self.credentials = Some((user.to_owned(), password.to_owned()));
        self
    }

    /// The same configuration with `n` pooled connections (at least 1; 0
    /// counts as 1).
    pub fn pool_size(mut self, n: u32) -> Self {
        self.pool_size = n.max(1);
        self
    }

    /// The same configuration with another timeout per SMTP command.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// A mail the memory transport kept.
#[derive(Debug, Clone)]
pub struct StoredMail {
    /// The envelope sender (the configured `from` address), empty when the
    /// message had none.
    pub from: String,
    /// The envelope recipients.
    pub to: Vec<String>,
    /// The whole message as it would go on the wire (headers and body).
    pub raw: String,
}

/// Keeps mail in memory; can be switched to fail, to test retries.
#[derive(Debug, Clone, Default)]
pub struct MemoryTransport {
    inner: Arc<Mutex<MemoryInner>>,
}

#[derive(Debug, Default)]
struct MemoryInner {
    mails: Vec<StoredMail>,
    failing: Option<String>,
}

impl MemoryTransport {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// A copy of every mail kept so far, in the order they were sent.
    pub fn mails(&self) -> Vec<StoredMail> {
        self.inner
            .lock()
            .map(|i| i.mails.clone())
            .unwrap_or_default()
    }

    /// Every send fails with this (transient) error until cleared with `None`.
    pub fn set_failing(&self, error: Option<&str>) {
        if let Ok(mut i) = self.inner.lock() {
            i.failing = error.map(str::to_owned);
        }
    }

    fn send(&self, message: &Message) -> Result<(), SendError> {
        let mut inner = self
            .inner
            .lock()
            .map_err(|_| SendError::transient("memory transport poisoned"))?;
        if let Some(e) = &inner.failing {
            return Err(SendError::transient(e));
        }
        let envelope = message.envelope();
        inner.mails.push(StoredMail {
            from: envelope.from().map(|a| a.to_string()).unwrap_or_default(),
            to: envelope.to().iter().map(|a| a.to_string()).collect(),
            raw: String::from_utf8_lossy(&message.formatted()).into_owned(),
        });
        Ok(())
    }
}

/// Why a send failed, and whether trying again could help.
#[derive(Debug, Clone)]
pub struct SendError {
    /// True when a retry cannot help (the relay answered 5xx, or the message
    /// could not be built): the worker then marks the mail failed at once.
    /// False for everything else (timeouts, refused connections, 4xx).
    pub permanent: bool,
    /// What went wrong, as the transport or relay said it; it is stored on
    /// the outbox row as the last error.
    pub message: String,
}

impl SendError {
    pub(crate) fn transient(message: impl Into<String>) -> Self {
        SendError {
            permanent: false,
            message: message.into(),
        }
    }

    pub(crate) fn permanent(message: impl Into<String>) -> Self {
        SendError {
            permanent: true,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// A pooled SMTP transport, built on first use: lettre's pool starts a task
/// of its own, so it must come to life inside the runtime that sends, while
/// the configuration may be made anywhere (a synchronous builder, a CLI).
#[derive(Clone)]
pub struct SmtpTransport {
    builder: AsyncSmtpTransportBuilder,
    built: Arc<OnceLock<AsyncSmtpTransport<Tokio1Executor>>>,
}

impl SmtpTransport {
    fn get(&self) -> &AsyncSmtpTransport<Tokio1Executor> {
        self.built.get_or_init(|| self.builder.clone().build())
    }
}

/// The transports, behind one `send`.
#[derive(Clone)]
pub enum Transport {
    /// An SMTP relay, made by [`Transport::smtp`] or [`Transport::from_url`].
    Smtp(SmtpTransport),
    /// One `<uuid>.eml` file per mail in a folder.
    File(AsyncFileTransport<Tokio1Executor>, PathBuf),
    /// Kept in memory, for tests; read it through the [`MemoryTransport`]
    /// that [`Transport::memory`] returns with it.
    Memory(MemoryTransport),
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Transport::Smtp(_) => f.write_str("Transport::Smtp"),
            Transport::File(_, dir) => write!(f, "Transport::File({})", dir.display()),
            Transport::Memory(_) => f.write_str("Transport::Memory"),
        }
    }
}

impl Transport {
    /// A pooled async SMTP transport (TLS by rustls). Nothing connects until
    /// the first mail, so this works outside a runtime and while the relay is
    /// down; mail waits in the outbox.
    pub fn smtp(config: &SmtpConfig) -> Result<Self, MailError> {
        if config.host.is_empty() {
            return Err(MailError::Config("SMTP host is empty".into()));
        }
        let tls_params = || {
            TlsParameters::builder(config.host.clone())
                .build_rustls()
                .map_err(|e| MailError::Config(format!("TLS for {}: {e}", config.host)))
        };
        let tls = match config.security {
            SmtpSecurity::None => Tls::None,
            SmtpSecurity::StartTls => Tls::Required(tls_params()?),
            SmtpSecurity::Tls => Tls::Wrapper(tls_params()?),
        };
        let mut builder =
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(config.host.clone())
                .port(config.port)
                .tls(tls)
                .timeout(Some(config.timeout))
                .pool_config(
                    PoolConfig::new()
                        .max_size(config.pool_size)
                        .idle_timeout(Duration::from_secs(60)),
                );
        if let Some((user, password)) = &config.credentials {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        Ok(Transport::Smtp(SmtpTransport {
            builder,
            built: Arc::new(OnceLock::new()),
        }))
    }

    /// A transport from one configuration string:
    /// - `smtp://[user:password@]host[:port]`: STARTTLS required (port 587);
    ///   add `?tls=none` for a plain relay on a trusted network (port 25);
    /// - `smtps://[user:password@]host[:port]`: TLS from the start (port 465);
    /// - `file:///path/to/folder`: one `.eml` file per mail.
    ///
    /// `?pool=N` sets the SMTP connections, `?timeout=SECONDS` the timeout.
    /// User and password may be percent-encoded. Errors never repeat the password.
    pub fn from_url(spec: &str) -> Result<Self, MailError> {
        let spec = spec.trim();
        if let Some(path) = spec.strip_prefix("file://") {
            if path.is_empty() {
                return Err(MailError::Config(
                    "file:// needs a folder, e.g. file:///var/mail/out".into(),
                ));
            }
            return Transport::file(Path::new(&percent_decode(path)?));
        }
        let (scheme, rest) = spec.split_once("://").ok_or_else(|| {
            MailError::Config("mail URL must start with smtp://, smtps:// or file://".into())
        })?;
        let mut security = match scheme.to_ascii_lowercase().as_str() {
            "smtp" => SmtpSecurity::StartTls,
            "smtps" => SmtpSecurity::Tls,
            other => {
                return Err(MailError::Config(format!(
                    "unknown mail URL scheme {other:?}"
                )))
            }
        };
        let (authority, query) = rest.split_once('?').unwrap_or((rest, ""));
        let authority = authority.trim_end_matches('/');
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        // `host`, `host:port`, `[v6]` or `[v6]:port`.
        let (host, port) = match hostport.strip_prefix('[') {
            Some(v6) => {
                let (h, after) = v6
                    .split_once(']')
                    .ok_or_else(|| MailError::Config("unclosed [ in SMTP host".into()))?;
                (h, after.strip_prefix(':'))
            }
            None => match hostport.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            },
        };
        let port = port
            .map(|p| {
                p.parse::<u16>()
                    .map_err(|_| MailError::Config(format!("bad SMTP port {p:?}")))
            })
            .transpose()?;
        let mut pool = None;
        let mut timeout = None;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "tls" => {
                    security = SmtpSecurity::parse(v).ok_or_else(|| {
                        MailError::Config(format!("tls={v:?}: use none, starttls or tls"))
                    })?
                }
                "pool" => {
                    pool = Some(
                        v.parse::<u32>()
                            .map_err(|_| MailError::Config(format!("pool={v:?}")))?,
                    )
                }
                "timeout" => {
                    timeout = Some(Duration::from_secs(
                        v.parse::<u64>()
                            .map_err(|_| MailError::Config(format!("timeout={v:?}")))?,
                    ))
                }
                other => {
                    return Err(MailError::Config(format!(
                        "unknown mail URL option {other:?}"
                    )))
                }
            }
        }
        let mut config = SmtpConfig::new(host, security);
        config.port = port.unwrap_or(security.default_port());
        if let Some(userinfo) = userinfo {
            let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
            config = config.credentials(&percent_decode(user)?, &percent_decode(password)?);
        }
        if let Some(n) = pool {
            config = config.pool_size(n);
        }
        if let Some(t) = timeout {
            config = config.timeout(t);
        }
        Transport::smtp(&config)
    }

    /// Writes each mail as an `.eml` file into `dir` (created if missing).
    pub fn file(dir: &Path) -> Result<Self, MailError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| MailError::Config(format!("mail folder {}: {e}", dir.display())))?;
        Ok(Transport::File(
            AsyncFileTransport::<Tokio1Executor>::new(dir),
            dir.to_path_buf(),
        ))
    }

    /// A memory transport and a handle on the same store, to read what was
    /// sent or to make sends fail.
    pub fn memory() -> (Self, MemoryTransport) {
        let m = MemoryTransport::new();
        (Transport::Memory(m.clone()), m)
    }

    pub(crate) async fn send(&self, message: Message) -> Result<(), SendError> {
        match self {
            Transport::Smtp(t) => t.get().send(message).await.map(|_| ()).map_err(|e| {
                // 5xx answers will not change on retry; everything else might.
                if e.is_permanent() {
                    SendError::permanent(e.to_string())
                } else {
                    SendError::transient(e.to_string())
                }
            }),
            Transport::File(t, _) => t
                .send(message)
                .await
                .map(|_| ())
                .map_err(|e| SendError::transient(e.to_string())),
            Transport::Memory(m) => m.send(&message),
        }
    }
}

/// Parses a sender like `Acme <no-reply@acme.example>`.
pub(crate) fn parse_mailbox(s: &str) -> Result<Mailbox, MailError> {
    s.trim()
        .parse()
        .map_err(|e| MailError::Config(format!("mail address {s:?}: {e}")))
}

/// `%XX` escapes of a URL part, decoded as UTF-8.
fn percent_decode(s: &str) -> Result<String, MailError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| MailError::Config("bad %-escape in mail URL".into()))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out)
        .map_err(|_| MailError::Config("mail URL is not UTF-8 once decoded".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transports_from_urls() -> Result<(), MailError> {
        assert!(matches!(
            Transport::from_url("smtp://relay.example.com")?,
            Transport::Smtp(_)
        ));
        assert!(matches!(
            Transport::from_url("smtps://u:p%40ss@relay.example.com:2465?pool=4&timeout=5")?,
            Transport::Smtp(_)
        ));
        assert!(matches!(
            Transport::from_url("smtp://127.0.0.1:2525?tls=none")?,
            Transport::Smtp(_)
        ));
        for v6 in ["smtp://[::1]:2525?tls=none", "smtp://[::1]?tls=none"] {
            assert!(
                matches!(Transport::from_url(v6)?, Transport::Smtp(_)),
                "{v6}"
            );
        }
        let dir = tempfile::tempdir().map_err(|e| MailError::Config(e.to_string()))?;
        let url = format!("file://{}", dir.path().join("out").display());
        assert!(matches!(Transport::from_url(&url)?, Transport::File(..)));
        assert!(dir.path().join("out").is_dir());
        for bad in [
            "",
            "relay.example.com",
            "http://x",
            "smtp://x?tls=maybe",
            "smtp://x:notaport",
            "smtp://x?bogus=1",
            "file://",
        ] {
            assert!(Transport::from_url(bad).is_err(), "{bad:?} accepted");
        }
        let err = Transport::from_url("smtp://user:hunter2@x:99999")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(!err.contains("hunter2"), "{err}");
        assert_eq!(percent_decode("p%40ss%2F")?, "p@ss/");
        Ok(())
    }
}
