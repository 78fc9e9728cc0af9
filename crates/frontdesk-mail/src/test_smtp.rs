//! A small SMTP server on loopback that keeps every mail it receives, for the
//! end-to-end tests and the delivery benchmark (feature `test-smtp`). It speaks
//! enough of RFC 5321 for lettre: EHLO/HELO, optional AUTH PLAIN, MAIL, RCPT,
//! DATA, RSET, NOOP, QUIT, with pipelining. It can be stopped and started again
//! on the same port to play an outage.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// One mail as the server received it.
#[derive(Debug, Clone)]
pub struct ReceivedMail {
    /// The address given in `MAIL FROM`, without the angle brackets.
    pub mail_from: String,
    /// The addresses given in each accepted `RCPT TO`, in order.
    pub rcpt_to: Vec<String>,
    /// The message after dot-unstuffing, lines ending in CRLF.
    pub data: String,
}

impl ReceivedMail {
    /// The header block (before the first empty line).
    pub fn headers(&self) -> &str {
        self.data.split("\r\n\r\n").next().unwrap_or("")
    }

    /// Header lines whose name is `name` (case-insensitive), unfolded.
    pub fn header_values(&self, name: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let mut current: Option<String> = None;
        for line in self.headers().split("\r\n") {
            if line.starts_with(' ') || line.starts_with('\t') {
                if let Some(c) = current.as_mut() {
                    c.push_str(line);
                }
                continue;
            }
            if let Some(c) = current.take() {
                out.push(c);
            }
            if let Some((n, v)) = line.split_once(':') {
                if n.eq_ignore_ascii_case(name) {
                    current = Some(v.trim().to_owned());
                }
            }
        }
        if let Some(c) = current {
            out.push(c);
        }
        out
    }

    /// Names of all headers, in order.
    pub fn header_names(&self) -> Vec<String> {
        self.headers()
            .split("\r\n")
            .filter(|l| !l.starts_with(' ') && !l.starts_with('\t'))
            .filter_map(|l| l.split_once(':').map(|(n, _)| n.to_owned()))
            .collect()
    }
}

#[derive(Default)]
struct State {
    mails: Vec<ReceivedMail>,
    connections: usize,
    credentials: Option<(String, String)>,
    reject_containing: Option<String>,
    /// Called after each mail is stored, before the client hears "250".
    on_mail: Option<Arc<dyn Fn() + Send + Sync>>,
}

/// The running server. Dropping it stops it.
pub struct TestSmtp {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: watch::Sender<bool>,
}

impl TestSmtp {
    /// Starts on a free loopback port.
    pub async fn start() -> std::io::Result<TestSmtp> {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Starts on `addr` (e.g. the port of a server stopped before).
    pub async fn start_on(addr: SocketAddr) -> std::io::Result<TestSmtp> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State::default()));
        let (stop, stopped) = watch::channel(false);
        let st = state.clone();
        tokio::spawn(async move {
            let mut stopped_accept = stopped.clone();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((socket, _)) = accepted else { continue };
                        if let Ok(mut s) = st.lock() {
                            s.connections += 1;
                        }
                        let st = st.clone();
                        let stopped = stopped.clone();
                        tokio::spawn(async move {
                            // A broken connection is the client's problem; the server goes on.
                            let _ = session(socket, st, stopped).await;
                        });
                    }
                    _ = stopped_accept.changed() => break,
                }
            }
        });
        Ok(TestSmtp { addr, state, stop })
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port the server listens on (the one the system picked after
    /// [`TestSmtp::start`]).
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Requires AUTH PLAIN with these credentials before MAIL.
    pub fn require_auth(&self, user: &str, password: &str) {
        if let Ok(mut s) = self.state.lock() {
            s.credentials = Some((user.to_owned(), password.to_owned()));
        }
    }

    /// Runs `hook` after each mail is stored and before it is acknowledged
    /// (to play something going wrong while the sender waits for the "250").
    pub fn on_mail(&self, hook: impl Fn() + Send + Sync + 'static) {
        if let Ok(mut s) = self.state.lock() {
            s.on_mail = Some(Arc::new(hook));
        }
    }

    /// Answers `550` to recipients containing `needle` (a permanent failure).
    pub fn reject_recipients_containing(&self, needle: &str) {
        if let Ok(mut s) = self.state.lock() {
            s.reject_containing = Some(needle.to_owned());
        }
    }

    /// A copy of every mail received so far, in arrival order.
    pub fn received(&self) -> Vec<ReceivedMail> {
        self.state
            .lock()
            .map(|s| s.mails.clone())
            .unwrap_or_default()
    }

    /// How many mails were received so far.
    pub fn count(&self) -> usize {
        self.state.lock().map(|s| s.mails.len()).unwrap_or(0)
    }

    /// Connections accepted so far (to see connection reuse).
    pub fn connections(&self) -> usize {
        self.state.lock().map(|s| s.connections).unwrap_or(0)
    }

    /// Waits until at least `n` mails arrived or `timeout` passed; returns the count.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> usize {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let c = self.count();
            if c >= n || tokio::time::Instant::now() >= deadline {
                return c;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Stops listening and cuts every open connection.
    pub fn stop(&self) {
        let _ = self.stop.send(true);
    }
}

impl Drop for TestSmtp {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn session(
    socket: TcpStream,
    state: Arc<Mutex<State>>,
    mut stopped: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let (read, mut write) = socket.into_split();
    let mut reader = BufReader::new(read);
    let mut line = Vec::new();
    write
        .write_all(b"220 localhost test SMTP ready\r\n")
        .await?;
    let needs_auth = || {
        state
            .lock()
            .map(|s| s.credentials.is_some())
            .unwrap_or(false)
    };
    let mut authed = false;
    let mut from: Option<String> = None;
    let mut rcpts: Vec<String> = Vec::new();
    loop {
        line.clear();
        let n = tokio::select! {
            n = reader.read_until(b'\n', &mut line) => n?,
            _ = stopped.changed() => return Ok(()),
        };
        if n == 0 {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&line);
        let cmd = text.trim_end_matches(['\r', '\n']);
        let upper = cmd.to_ascii_uppercase();
        let reply: String = if upper.starts_with("EHLO") {
            if needs_auth() {
                "250-localhost\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-AUTH PLAIN\r\n250 SMTPUTF8\r\n".into()
            } else {
                "250-localhost\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n".into()
            }
        } else if upper.starts_with("HELO") {
            "250 localhost\r\n".into()
        } else if upper.starts_with("AUTH PLAIN") {
            let given = cmd.get(10..).unwrap_or("").trim();
            let decoded = STANDARD.decode(given).unwrap_or_default();
            let parts: Vec<&[u8]> = decoded.split(|b| *b == 0).collect();
            let ok = state
                .lock()
                .ok()
                .and_then(|s| s.credentials.clone())
                .is_some_and(|(u, p)| {
                    parts.len() == 3 && parts[1] == u.as_bytes() && parts[2] == p.as_bytes()
                });
            authed = ok;
            if ok {
                "235 2.7.0 authenticated\r\n".into()
            } else {
                "535 5.7.8 bad credentials\r\n".into()
            }
        } else if upper.starts_with("MAIL FROM:") {
            if needs_auth() && !authed {
                "530 5.7.0 authentication required\r\n".into()
            } else {
                from = Some(address(&cmd[10..]));
                rcpts.clear();
                "250 2.1.0 ok\r\n".into()
            }
        } else if upper.starts_with("RCPT TO:") {
            let to = address(&cmd[8..]);
            let reject = state
                .lock()
                .ok()
                .and_then(|s| s.reject_containing.clone())
                .is_some_and(|needle| to.contains(&needle));
            if from.is_none() {
                "503 5.5.1 MAIL first\r\n".into()
            } else if reject {
                "550 5.1.1 no such user\r\n".into()
            } else {
                rcpts.push(to);
                "250 2.1.5 ok\r\n".into()
            }
        } else if upper == "DATA" {
            if from.is_none() || rcpts.is_empty() {
                "503 5.5.1 no recipients\r\n".into()
            } else {
                write.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await?;
                let mut data = String::new();
                loop {
                    line.clear();
                    let n = tokio::select! {
                        n = reader.read_until(b'\n', &mut line) => n?,
                        _ = stopped.changed() => return Ok(()),
                    };
                    if n == 0 {
                        return Ok(());
                    }
                    let l = String::from_utf8_lossy(&line);
                    if l == ".\r\n" || l == ".\n" {
                        break;
                    }
                    data.push_str(l.strip_prefix('.').unwrap_or(&l));
                }
                let mail = ReceivedMail {
                    mail_from: from.take().unwrap_or_default(),
                    rcpt_to: std::mem::take(&mut rcpts),
                    data,
                };
                let hook = match state.lock() {
                    Ok(mut s) => {
                        s.mails.push(mail);
                        s.on_mail.clone()
                    }
                    Err(_) => None,
                };
                if let Some(hook) = hook {
                    hook();
                }
                "250 2.0.0 queued\r\n".into()
            }
        } else if upper == "RSET" {
            from = None;
            rcpts.clear();
            "250 2.0.0 ok\r\n".into()
        } else if upper == "NOOP" {
            "250 2.0.0 ok\r\n".into()
        } else if upper == "QUIT" {
            write.write_all(b"221 2.0.0 bye\r\n").await?;
            return Ok(());
        } else {
            "502 5.5.2 command not implemented\r\n".into()
        };
        write.write_all(reply.as_bytes()).await?;
    }
}

/// `<a@b.c> SIZE=…` → `a@b.c`.
fn address(arg: &str) -> String {
    let arg = arg.trim();
    let inner = arg
        .strip_prefix('<')
        .and_then(|a| a.split_once('>'))
        .map(|(a, _)| a)
        .unwrap_or(arg);
    inner.trim().to_owned()
}
