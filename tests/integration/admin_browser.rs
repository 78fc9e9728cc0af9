//! The admin pages in a real headless Chromium, driven through WebDriver
//! (chromedriver) against frontdesk served on a random loopback port: sign in
//! as staff, search and filter, suspend a user and watch their session die,
//! restore, revoke a session, bulk-tag with select-all, delete with typed
//! confirmation. Every page visited is checked with axe-core's WCAG 2.1 A/AA
//! rules (see [`axe_source`]), and the things axe cannot see are asserted
//! directly: the skip link, form errors tied to their fields and focused, the
//! flash message focused, field-border contrast, the chart's table and line
//! styles, the nav and filters folded at phone width. Without chromedriver
//! the test says SKIPPED and passes, unless `FRONTDESK_REQUIRE_BROWSER=1`.
//! With `FRONTDESK_SCREENSHOTS=<dir>` it saves PNGs of the main pages there.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpServer};
use base64::Engine;
use frontdesk_core::login_attempts::{self, Reason};
use frontdesk_core::sessions::ClientInfo;
use frontdesk_core::users::{self, NewUser};
use frontdesk_core::{passwords, tags, Actor, OrgRole, StaffRole};
use serde_json::{json, Value};

use crate::admin_fixture as fx;
use crate::support::TestDb;
use crate::web_app::{notes, PASSWORD};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

pub(crate) fn find_program(env: &str, names: &[&str]) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(env).map(PathBuf::from) {
        return p.is_file().then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|p| p.is_file())
}

pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// One WebDriver command: JSON over HTTP to chromedriver on loopback, through
/// ureq. Answers the command's `value`, or the WebDriver error it names.
pub(crate) fn http(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Result<Value, String> {
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(60))
        .build();
    let request = agent.request(method, &format!("http://127.0.0.1:{port}{path}"));
    let answer = match body {
        Some(body) => request.send_json(body),
        None => request.call(),
    };
    // A WebDriver error comes with a 4xx/5xx status and its JSON body.
    let response = match answer {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r,
        Err(e) => return Err(e.to_string()),
    };
    let v: Value = response.into_json().map_err(|e| e.to_string())?;
    if let Some(err) = v["value"]["error"].as_str() {
        return Err(format!("{err}: {}", v["value"]["message"]));
    }
    Ok(v["value"].clone())
}

pub(crate) struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) struct Browser<'a> {
    driver: &'a Driver,
    session: String,
    base: String,
    _profile: tempfile::TempDir,
}

impl Drop for Browser<'_> {
    fn drop(&mut self) {
        let _ = http(
            self.driver.port,
            "DELETE",
            &format!("/session/{}", self.session),
            None,
        );
    }
}

impl<'a> Browser<'a> {
    pub(crate) fn open(driver: &'a Driver, chromium: &Path, base: &str) -> Browser<'a> {
        let profile = tempfile::tempdir().expect("profile dir");
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium.display().to_string(),
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                    "--window-size=1280,860",
                    format!("--user-data-dir={}", profile.path().display()),
                ]
            }
        }}});
        let v = http(driver.port, "POST", "/session", Some(&caps)).expect("a browser session");
        Browser {
            driver,
            session: v["sessionId"].as_str().expect("session id").to_owned(),
            base: base.to_owned(),
            _profile: profile,
        }
    }

    pub(crate) fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let full = format!("/session/{}{path}", self.session);
        http(self.driver.port, method, &full, body.as_ref())
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    pub(crate) fn go(&self, path: &str) {
        self.cmd(
            "POST",
            "/url",
            Some(json!({"url": format!("{}{path}", self.base)})),
        );
    }

    pub(crate) fn url(&self) -> String {
        self.cmd("GET", "/url", None)
            .as_str()
            .unwrap_or("")
            .to_owned()
    }

    pub(crate) fn source(&self) -> String {
        self.cmd("GET", "/source", None)
            .as_str()
            .unwrap_or("")
            .to_owned()
    }

    pub(crate) fn find(&self, css: &str) -> String {
        let v = self.cmd(
            "POST",
            "/element",
            Some(json!({"using": "css selector", "value": css})),
        );
        v[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css}: {v}"))
            .to_owned()
    }

    pub(crate) fn find_all(&self, css: &str) -> Vec<String> {
        let v = self.cmd(
            "POST",
            "/elements",
            Some(json!({"using": "css selector", "value": css})),
        );
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e[ELEMENT].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub(crate) fn click(&self, css: &str) {
        let e = self.find(css);
        self.cmd("POST", &format!("/element/{e}/click"), Some(json!({})));
    }

    pub(crate) fn selected(&self, element: &str) -> bool {
        self.cmd("GET", &format!("/element/{element}/selected"), None)
            .as_bool()
            .unwrap_or(false)
    }

    pub(crate) fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css);
        self.cmd("POST", &format!("/element/{e}/clear"), Some(json!({})));
        self.cmd(
            "POST",
            &format!("/element/{e}/value"),
            Some(json!({"text": text})),
        );
    }

    /// Waits until the page holds `text` (pages load after clicks on their own time).
    pub(crate) fn wait_for(&self, text: &str) -> String {
        let start = Instant::now();
        loop {
            let src = self.source();
            if src.contains(text) {
                return src;
            }
            if start.elapsed() > Duration::from_secs(15) {
                panic!("page {} never showed {text:?}:\n{src}", self.url());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until the address holds `part` (after a form submits).
    pub(crate) fn wait_url(&self, part: &str) {
        let start = Instant::now();
        while !self.url().contains(part) {
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "never reached {part:?}: {}",
                self.url()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub(crate) fn login(&self, email: &str, next: &str) {
        self.go(&format!("/auth/login?next={next}"));
        self.type_into("input[name=email]", email);
        self.type_into("input[name=password]", PASSWORD);
        self.click("form button[type=submit]");
    }

    pub(crate) fn screenshot(&self, dir: Option<&Path>, name: &str) {
        let Some(dir) = dir else { return };
        let b64 = self.cmd("GET", "/screenshot", None);
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().unwrap_or(""))
            .expect("a PNG");
        std::fs::write(dir.join(format!("{name}.png")), png).expect("write screenshot");
    }

    /// Runs `script` as the body of a function in the page (WebDriver's
    /// execute-script endpoint, which also waits for a returned promise).
    pub(crate) fn execute(&self, script: &str, args: Value) -> Value {
        self.cmd(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
    }

    /// axe-core's WCAG 2.0/2.1 A and AA violations on the page on screen, one
    /// line each with the elements concerned, or `None` without axe. axe is
    /// injected through the execute-script endpoint, which the page's CSP
    /// does not govern.
    pub(crate) fn axe_violations(&self) -> Option<Vec<String>> {
        let axe = axe_source()?;
        if !self
            .execute("return typeof window.axe === 'object';", json!([]))
            .as_bool()
            .unwrap_or(false)
        {
            self.execute(axe, json!([]));
        }
        let found = self.execute(
            "return window.axe.run(document, {\
               runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']},\
               resultTypes: ['violations']\
             }).then(function (r) {\
               return r.violations.map(function (v) {\
                 return v.id + ' (' + v.impact + '): ' + v.help + '\\n    ' +\
                   v.nodes.map(function (n) {\
                     return n.target.join(' ') + ' :: ' + n.failureSummary;\
                   }).join('\\n    ');\
               });\
             });",
            json!([]),
        );
        let list = found
            .as_array()
            .unwrap_or_else(|| panic!("axe-core did not answer with a list: {found}"));
        Some(
            list.iter()
                .map(|v| v.as_str().unwrap_or_default().to_owned())
                .collect(),
        )
    }

    /// Fails with every WCAG 2.1 A/AA violation axe-core finds on the page.
    pub(crate) fn assert_accessible(&self, what: &str) {
        let Some(violations) = self.axe_violations() else {
            return;
        };
        assert!(
            violations.is_empty(),
            "axe-core found {} WCAG 2.1 A/AA violation(s) on {what} ({}):\n{}",
            violations.len(),
            self.url(),
            violations.join("\n")
        );
    }

    /// Whether the first element matching `css` is rendered and takes room
    /// (not inside a closed `<details>`, not `display: none`).
    pub(crate) fn visible(&self, css: &str) -> bool {
        self.execute(
            "var e = document.querySelector(arguments[0]);\
             if (!e) { throw new Error('no element ' + arguments[0]); }\
             var r = e.getBoundingClientRect();\
             return e.checkVisibility() && r.width > 0 && r.height > 0;",
            json!([css]),
        )
        .as_bool()
        .unwrap_or(false)
    }

    /// Presses Tab once, as a keyboard user would.
    pub(crate) fn press_tab(&self) {
        let tab = "\u{E004}";
        self.cmd(
            "POST",
            "/actions",
            Some(
                json!({"actions": [{"type": "key", "id": "keyboard", "actions": [
                    {"type": "keyDown", "value": tab}, {"type": "keyUp", "value": tab}
                ]}]}),
            ),
        );
    }

    /// The focused element, as its tag, id, name, class and text.
    pub(crate) fn focused(&self) -> Value {
        self.execute(
            "var e = document.activeElement; return {tag: e.tagName.toLowerCase(), \
             id: e.id, name: e.getAttribute('name'), class: e.className, \
             text: (e.textContent || '').trim()};",
            json!([]),
        )
    }

    /// Every visible text field, select and textarea has a border of at least
    /// 3:1 contrast against both its own background and what surrounds it
    /// (WCAG 1.4.11; axe does not check it). Answers how many were checked.
    pub(crate) fn assert_field_borders(&self) -> usize {
        let v = self.execute(
            "function rgb(c) { var m = c.match(/[\\d.]+/g).map(Number);\
               return {r: m[0], g: m[1], b: m[2], a: m.length > 3 ? m[3] : 1}; }\
             function lum(c) { return [c.r, c.g, c.b].map(function (v) { v /= 255;\
               return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); })\
               .reduce(function (s, v, i) { return s + v * [0.2126, 0.7152, 0.0722][i]; }, 0); }\
             function ratio(a, b) { var x = lum(a), y = lum(b);\
               return (Math.max(x, y) + 0.05) / (Math.min(x, y) + 0.05); }\
             function bg(e) { for (; e; e = e.parentElement) {\
               var c = rgb(getComputedStyle(e).backgroundColor); if (c.a > 0) return c; }\
               return {r: 255, g: 255, b: 255, a: 1}; }\
             var out = [];\
             document.querySelectorAll('input, select, textarea').forEach(function (f) {\
               if (['hidden', 'checkbox', 'radio', 'file', 'submit'].indexOf(f.type) >= 0) return;\
               if (!f.checkVisibility()) return;\
               var s = getComputedStyle(f);\
               if (parseFloat(s.borderTopWidth) === 0) { out.push([f.name, 0, 0]); return; }\
               var border = rgb(s.borderTopColor);\
               out.push([f.name, ratio(border, bg(f)), ratio(border, bg(f.parentElement))]);\
             });\
             return out;",
            json!([]),
        );
        let fields = v.as_array().cloned().unwrap_or_default();
        let weak: Vec<&Value> = fields
            .iter()
            .filter(|f| f[1].as_f64().unwrap_or(0.0) < 3.0 || f[2].as_f64().unwrap_or(0.0) < 3.0)
            .collect();
        assert!(
            weak.is_empty(),
            "field borders under 3:1 on {} ([name, against the field, against its surroundings]): {weak:?}",
            self.url()
        );
        fields.len()
    }

    /// The page's first focusable element is a "Skip to content" link to the
    /// main element, off screen until it has the focus and on screen then.
    pub(crate) fn assert_skip_link_first(&self) {
        let v = self.execute(
            "var all = document.querySelectorAll('a[href], button, input:not([type=hidden]), \
               select, textarea, summary, [tabindex]:not([tabindex=\"-1\"])');\
             var first = all[0];\
             var before = first.getBoundingClientRect();\
             first.focus();\
             var after = first.getBoundingClientRect();\
             var target = document.getElementById((first.getAttribute('href') || '#').slice(1));\
             var r = {text: first.textContent.trim(), target: target ? target.tagName.toLowerCase() : null,\
               hidden_before: before.bottom <= 0 || before.right <= 0,\
               shown_on_focus: after.top >= 0 && after.left >= 0 && after.width > 20 && after.height > 10\
                 && after.bottom <= window.innerHeight};\
             first.blur();\
             return r;",
            json!([]),
        );
        assert_eq!(v["text"], "Skip to content", "{}: {v}", self.url());
        assert_eq!(v["target"], "main", "the skip link targets <main>: {v}");
        assert_eq!(v["hidden_before"], true, "off screen until focused: {v}");
        assert_eq!(v["shown_on_focus"], true, "on screen when focused: {v}");
    }

    pub(crate) fn resize(&self, width: u32, height: u32) {
        self.cmd(
            "POST",
            "/window/rect",
            Some(json!({"width": width, "height": height})),
        );
    }
}

fn user_with(
    db: &TestDb,
    email: &str,
    staff: Option<StaffRole>,
    org: Option<(i64, OrgRole)>,
) -> users::User {
    let mut conn = db.conn();
    users::create(
        &mut conn,
        &Actor::system(),
        NewUser {
            email: email.into(),
            first_name: email.split('@').next().unwrap_or("x").into(),
            last_name: "Example".into(),
            password_hash: Some(passwords::hash(PASSWORD).expect("hash")),
            staff_role: staff,
            organization: org,
            ..NewUser::default()
        },
    )
    .expect("user")
}

/// The web framework of the host a browser test runs against: the same
/// pages, the same test, either way in.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Framework {
    /// `App::new().configure(fd.configure())`.
    ActixWeb,
    /// frontdesk-axum's router merged into an axum `Router`.
    Axum,
}

/// A host serving frontdesk for a browser test; [`Served::stop`] ends it.
pub(crate) enum Served {
    ActixWeb(actix_web::dev::ServerHandle),
    Axum {
        stop: tokio::sync::oneshot::Sender<()>,
        thread: std::thread::JoinHandle<()>,
    },
}

impl Served {
    /// Stops the host (and its outbox worker) and waits for it.
    pub(crate) fn stop(self) {
        match self {
            Served::ActixWeb(handle) => actix_web::rt::System::new().block_on(handle.stop(true)),
            Served::Axum { stop, thread } => {
                let _ = stop.send(());
                thread.join().expect("the axum host's thread");
            }
        }
    }
}

/// Serves frontdesk and the host's own `/notes` (behind `CurrentUser`) on a
/// loopback port in its own thread, through the given framework, with the
/// builder adjusted by `customize` (after the base URL is set); when mail is
/// configured, the outbox worker runs beside the server. `host` goes into the
/// base URL (`localhost` where a page needs a domain, as WebAuthn does); it
/// listens on 127.0.0.1 either way.
pub(crate) fn serve_on(
    framework: Framework,
    db: &TestDb,
    host: &str,
    customize: impl FnOnce(frontdesk::FrontdeskBuilder) -> frontdesk::FrontdeskBuilder,
) -> (String, Served) {
    let (listener, base) = loopback(host);
    let fd = customize(crate::web_app::builder(db).base_url(&base))
        .build()
        .expect("frontdesk");
    (base, serve_listener(framework, fd, listener))
}

/// A listener on a free loopback port and its base URL naming `host`.
pub(crate) fn loopback(host: &str) -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    (listener, format!("http://{host}:{port}"))
}

/// Serves `fd` (and the host's `/notes`) through `framework` on `listener`.
pub(crate) fn serve_listener(
    framework: Framework,
    fd: frontdesk::Frontdesk,
    listener: TcpListener,
) -> Served {
    match framework {
        Framework::ActixWeb => Served::ActixWeb(serve_actix(fd, listener)),
        Framework::Axum => serve_axum(fd, listener),
    }
}

/// [`serve_on`] at 127.0.0.1 with mail from "Notes <no-reply@notes.example>"
/// kept in memory (the returned transport reads it) and signed-in users sent
/// to `/notes`; `customize` adds the rest.
pub(crate) fn serve_with_memory_mail(
    framework: Framework,
    db: &TestDb,
    customize: impl FnOnce(frontdesk::FrontdeskBuilder) -> frontdesk::FrontdeskBuilder,
) -> (String, Served, frontdesk_mail::MemoryTransport) {
    let (transport, memory) = frontdesk_mail::Transport::memory();
    let mail =
        frontdesk_mail::MailConfig::new("Notes <no-reply@notes.example>").expect("mail config");
    let (base, server) = serve_on(framework, db, "127.0.0.1", |b| {
        customize(
            b.mail_transport(transport)
                .mail_config(mail)
                .after_login("/notes"),
        )
    });
    (base, server, memory)
}

fn serve_actix(fd: frontdesk::Frontdesk, listener: TcpListener) -> actix_web::dev::ServerHandle {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let mailer = fd
                .mailer()
                .is_some()
                .then(|| fd.start_mailer().expect("mail worker"));
            let server = HttpServer::new(move || {
                App::new()
                    .configure(fd.configure())
                    .route("/notes", web::get().to(notes))
            })
            .workers(2)
            .listen(listener)
            .expect("listen")
            .run();
            let _ = tx.send(server.handle());
            let _ = server.await;
            if let Some(m) = mailer {
                m.shutdown().await;
            }
        });
    });
    rx.recv().expect("server started")
}

/// An axum host on its own tokio runtime, as the frontdesk-axum README mounts it.
fn serve_axum(fd: frontdesk::Frontdesk, listener: TcpListener) -> Served {
    use frontdesk_axum::{CurrentUser, FrontdeskAxum};
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        runtime.block_on(async move {
            let mailer = fd
                .mailer()
                .is_some()
                .then(|| fd.start_mailer().expect("mail worker"));
            let frontdesk = FrontdeskAxum::new(&fd).expect("frontdesk's thread");
            let app = axum::Router::new()
                .route(
                    "/notes",
                    axum::routing::get(|me: CurrentUser| async move {
                        format!("notes of {}", me.user.email)
                    }),
                )
                .merge(frontdesk.router())
                .layer(frontdesk.layer());
            listener.set_nonblocking(true).expect("nonblocking");
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            let _ = ready_tx.send(());
            let server = axum::serve(
                listener,
                app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
            );
            // Open connections end with the runtime; no graceful wait.
            tokio::select! {
                served = server => served.expect("axum host"),
                _ = stopped => {}
            }
            if let Some(m) = mailer {
                m.shutdown().await;
            }
        });
    });
    ready_rx.recv().expect("the axum host started");
    Served::Axum { stop, thread }
}

/// Chromium and a running chromedriver, or `None` (with a SKIPPED note) when
/// they are not installed, unless `FRONTDESK_REQUIRE_BROWSER=1`.
pub(crate) fn start_driver() -> Option<(Driver, PathBuf)> {
    let required = std::env::var("FRONTDESK_REQUIRE_BROWSER").is_ok_and(|v| v == "1");
    let driver_bin = find_program("CHROMEDRIVER", &["chromedriver"]);
    let chromium = find_program(
        "CHROME_BIN",
        &["chromium", "chromium-browser", "google-chrome"],
    );
    let (Some(driver_bin), Some(chromium)) = (driver_bin, chromium) else {
        if required {
            panic!("FRONTDESK_REQUIRE_BROWSER=1 but chromedriver or chromium is not installed");
        }
        eprintln!("SKIPPED (browser): chromedriver and chromium not found (apt-get install chromium chromium-driver)");
        return None;
    };
    // Fails now, before any browser starts, when axe-core is required and missing.
    axe_source();
    let port = free_port();
    let child = Command::new(&driver_bin)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let driver = Driver { child, port };
    let start = Instant::now();
    while http(port, "GET", "/status", None).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "chromedriver did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Some((driver, chromium))
}

/// axe-core's `axe.min.js`: from `FRONTDESK_AXE_JS`, or where `.ci/run`
/// installs it (`.ci/axe/node_modules/axe-core/axe.min.js`). Without it the
/// accessibility checks say SKIPPED and pass, unless
/// `FRONTDESK_REQUIRE_BROWSER=1`, which makes a missing axe a failure.
pub(crate) fn axe_source() -> Option<&'static str> {
    static AXE: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    AXE.get_or_init(|| {
        let path = std::env::var_os("FRONTDESK_AXE_JS")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join(".ci/axe/node_modules/axe-core/axe.min.js")
            });
        match std::fs::read_to_string(&path) {
            Ok(js) if js.contains("axe") => Some(js),
            _ => {
                let required = std::env::var("FRONTDESK_REQUIRE_BROWSER").is_ok_and(|v| v == "1");
                assert!(
                    !required,
                    "FRONTDESK_REQUIRE_BROWSER=1 but axe-core is not at {} \
                     (npm install axe-core into .ci/axe, or set FRONTDESK_AXE_JS)",
                    path.display()
                );
                eprintln!(
                    "SKIPPED (accessibility): no axe-core at {} (.ci/run installs it)",
                    path.display()
                );
                None
            }
        }
    })
    .as_deref()
}

/// The folder named by `FRONTDESK_SCREENSHOTS`, created, when set.
pub(crate) fn screenshot_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("FRONTDESK_SCREENSHOTS").map(PathBuf::from)?;
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    Some(dir)
}

#[test]
fn admin_browser_flows_in_headless_chromium() {
    admin_browser_flows(Framework::ActixWeb);
}

/// The same flows with frontdesk mounted in an axum host.
#[test]
fn admin_browser_flows_through_axum_in_headless_chromium() {
    admin_browser_flows(Framework::Axum);
}

fn admin_browser_flows(framework: Framework) {
    let Some((driver, chromium)) = start_driver() else {
        return;
    };
    // The screenshots are the actix-web run's (the pages are the same).
    let shots = matches!(framework, Framework::ActixWeb)
        .then(screenshot_dir)
        .flatten();
    let shots = shots.as_deref();

    let db = TestDb::sqlite();
    let mut conn = db.conn();
    let sys = Actor::system();
    let acme =
        frontdesk_core::organizations::create(&mut conn, &sys, "acme", "Acme Corp", "acme.test")
            .expect("org");
    frontdesk_core::organizations::create(&mut conn, &sys, "globex", "Globex", "").expect("org");
    let beta = tags::create(&mut conn, &sys, "beta").expect("tag");
    drop(conn);
    user_with(&db, "staff@frontdesk.test", Some(StaffRole::Owner), None);
    let victim = user_with(
        &db,
        "victim@acme.test",
        None,
        Some((acme.id, OrgRole::Member)),
    );
    let t1 = fx::user(
        &db,
        "tina@acme.test",
        None,
        Some((acme.id, OrgRole::Member)),
    );
    let t2 = fx::user(&db, "tom@acme.test", None, Some((acme.id, OrgRole::Admin)));
    let doomed = fx::user(
        &db,
        "doomed@acme.test",
        None,
        Some((acme.id, OrgRole::Member)),
    );
    // A few failed sign-ins, so the attempts page and chart have both kinds.
    let mut conn = db.conn();
    for (email, reason) in [
        ("tina@acme.test", Reason::BadPassword),
        ("ghost@acme.test", Reason::UnknownEmail),
    ] {
        let client = ClientInfo {
            ip: Some("203.0.113.7".into()),
            user_agent: Some("curl/8.5".into()),
        };
        login_attempts::record(&mut conn, None, email, &client, reason).expect("attempt");
    }
    drop(conn);
    let (base, server) = serve_on(framework, &db, "127.0.0.1", |b| b);

    // The victim signs in and reads the host's own page.
    let user = Browser::open(&driver, &chromium, &base);
    user.login("victim@acme.test", "/notes");
    user.wait_for("notes of victim@acme.test");

    // Staff sign in through the same login page and land on the users list.
    let admin = Browser::open(&driver, &chromium, &base);
    admin.go("/admin/users");
    admin.wait_for("Sign in");
    assert!(admin.url().contains("/auth/login?next="), "{}", admin.url());
    admin.assert_accessible("the sign-in page");
    admin.assert_skip_link_first();
    admin.type_into("input[name=email]", "staff@frontdesk.test");
    admin.type_into("input[name=password]", PASSWORD);
    admin.click("form button[type=submit]");
    admin.wait_for("tina@acme.test");
    assert!(admin.url().ends_with("/admin/users"));
    admin.assert_accessible("the users list");
    admin.assert_skip_link_first();
    assert!(
        admin.assert_field_borders() >= 10,
        "the filters' fields were checked"
    );
    // The check itself catches a fault: an unlabelled field added to the page.
    admin.execute(
        "var i = document.createElement('input'); i.id = 'axe-probe';\
         document.querySelector('main').appendChild(i);",
        json!([]),
    );
    let probed = admin.axe_violations();
    admin.execute("document.getElementById('axe-probe').remove();", json!([]));
    if let Some(found) = probed {
        assert!(
            found
                .iter()
                .any(|v| v.starts_with("label ") && v.contains("#axe-probe")),
            "axe reports the unlabelled field: {found:?}"
        );
    }
    // On a wide screen the nav and the filters show whole, without their
    // disclosure buttons.
    assert!(admin.visible(".fda-nav a[href$='/admin/organizations']"));
    assert!(!admin.visible(".fda-navmenu > summary"));
    assert!(admin.visible("input[name=q]"));
    assert!(!admin.visible(".fda-filterbox > summary"));
    // The stylesheet alone does it too (the script also opens them).
    admin.execute(
        "document.querySelectorAll('details').forEach(function (d) { d.open = false; });",
        json!([]),
    );
    assert!(admin.visible(".fda-nav a[href$='/admin/organizations']"));
    assert!(admin.visible("input[name=q]"));
    assert!(!admin.visible(".fda-navmenu > summary"));
    admin.go("/admin/users");
    admin.wait_for("tina@acme.test");
    admin.screenshot(shots, "users");

    // Search and filter; the filters end up in the URL.
    admin.type_into("input[name=q]", "victim");
    admin.click("select[name=status] option[value=active]");
    admin.click(".fda-filters button[type=submit]");
    admin.wait_url("q=victim");
    assert!(admin.url().contains("status=active"), "{}", admin.url());
    let page = admin.wait_for("Clear");
    assert!(page.contains("victim@acme.test") && !page.contains("tina@acme.test"));

    // Suspend the victim from their page; their next request is refused.
    admin.click(&format!("a[href$='/admin/users/{}']", victim.id));
    admin.wait_for("Recent login attempts");
    admin.assert_accessible("a user's page");
    admin.screenshot(shots, "user_detail");
    admin.type_into("input[name=reason]", "chargeback");
    admin.click(".fda-button-warn");
    admin.wait_for("User suspended");
    admin.assert_accessible("a user's page with a flash message");
    let focus = admin.focused();
    assert!(
        focus["class"].as_str().unwrap_or("").contains("fda-flash")
            && focus["text"]
                .as_str()
                .unwrap_or("")
                .contains("User suspended"),
        "the flash message has the focus after the submit: {focus}"
    );
    user.go("/notes");
    user.wait_for("Sign in");
    assert!(
        user.url().contains("/auth/login"),
        "the session died: {}",
        user.url()
    );

    // Restore; the victim signs in again.
    admin.click(&format!(
        "form[action$='/users/{}/restore'] button",
        victim.id
    ));
    admin.wait_for("User restored.");
    user.login("victim@acme.test", "/notes");
    user.wait_for("notes of victim@acme.test");

    // Revoke that one session from the user page.
    admin.go(&format!("/admin/users/{}", victim.id));
    admin.wait_for("HeadlessChrome");
    admin.click(&format!(
        "form[action*='/sessions/'] input[name=return_user][value='{}'] ~ button",
        victim.id
    ));
    admin.wait_for("Session ended.");
    user.go("/notes");
    user.wait_for("Sign in");
    assert!(user.url().contains("/auth/login"));

    // Bulk-tag: select all rows of a filtered list with the script's checkbox.
    admin.go("/admin/users?q=acme.test&sort=email&dir=asc");
    admin.wait_for("tina@acme.test");
    admin.click(".fda-select-all");
    let boxes = admin.find_all("input[name=ids]");
    assert!(
        boxes.len() >= 4 && boxes.iter().all(|b| admin.selected(b)),
        "select-all ticks every row"
    );
    admin.click(".fda-select-all");
    assert!(boxes.iter().all(|b| !admin.selected(b)));
    admin.click(&format!("input[name=ids][value='{}']", t1.id));
    admin.click(&format!("input[name=ids][value='{}']", t2.id));
    admin.click("select[name=action] option[value=add_tag]");
    admin.click(&format!("select[name=tag] option[value='{}']", beta.id));
    admin.click(".fda-bulkbar button[type=submit]");
    admin.wait_for("2 user(s) tagged.");
    assert!(
        admin.url().contains("q=acme.test"),
        "back to the same view: {}",
        admin.url()
    );
    let mut conn = db.conn();
    for (u, tagged) in [(&t1, true), (&t2, true), (&doomed, false)] {
        let has = tags::tags_of(&mut conn, u.id)
            .expect("tags")
            .iter()
            .any(|t| t.id == beta.id);
        assert_eq!(has, tagged, "{}", u.email);
    }
    drop(conn);

    // The row's actions menu: a disclosure of small forms. Open it, suspend
    // with a reason, and land back on the same view of the list.
    admin.go("/admin/users?q=acme.test&sort=email&dir=asc");
    admin.wait_for("tina@acme.test");
    let suspend_form = format!("form[action$='/users/{}/suspend']", t1.id);
    let reason_box = admin.find(&format!("{suspend_form} input[name=reason]"));
    let shown = |e: &str| {
        admin
            .cmd("GET", &format!("/element/{e}/displayed"), None)
            .as_bool()
            .unwrap_or(false)
    };
    assert!(!shown(&reason_box), "the menu starts closed");
    admin.click("summary[aria-label='Actions for tina Test']");
    assert!(shown(&reason_box), "the summary opens the menu");
    admin.screenshot(shots, "users_menu");
    admin.type_into(&format!("{suspend_form} input[name=reason]"), "chargeback");
    admin.click(&format!("{suspend_form} button[type=submit]"));
    admin.wait_for("User suspended");
    assert!(admin.url().contains("q=acme.test"), "{}", admin.url());
    let tina = fx::reload(&db, t1.id).expect("tina");
    assert_eq!(tina.status, "suspended");
    assert_eq!(tina.suspended_reason.as_deref(), Some("chargeback"));
    admin.click("summary[aria-label='Actions for tina Test']");
    admin.click(&format!(
        "form[action$='/users/{}/restore'] button[type=submit]",
        t1.id
    ));
    admin.wait_for("User restored.");
    assert_eq!(fx::reload(&db, t1.id).expect("tina").status, "active");

    // Delete with the typed confirmation.
    admin.go(&format!("/admin/users/{}", doomed.id));
    admin.wait_for("Delete permanently");
    admin.type_into("input[name=confirm]", "doomed@acme.test");
    admin.click(".fda-button-danger");
    admin.wait_for("doomed@acme.test was deleted.");
    assert!(fx::reload(&db, doomed.id).is_none());

    // The other pages, for the README.
    for (path, name, marker) in [
        ("/admin/", "dashboard", "Last 30 days"),
        ("/admin/sessions", "sessions", "Sessions"),
        ("/admin/login-attempts", "login_attempts", "Login attempts"),
        ("/admin/organizations", "organizations", "New organization"),
        (
            &format!("/admin/organizations/{}", acme.id) as &str,
            "organization",
            "Members",
        ),
        ("/admin/audit", "audit", "user.delete"),
        ("/admin/invitations", "", "Invite someone"),
        ("/admin/exports", "", "Export"),
        ("/admin/imports", "", "Dry run"),
    ] {
        admin.go(path);
        admin.wait_for(marker);
        admin.assert_accessible(path);
        admin.assert_field_borders();
        if !name.is_empty() {
            admin.screenshot(shots, name);
        }
    }
    // The dashboard: the skip link is the first stop of the Tab key; the
    // chart's figures are in a table too, and its lines differ by more than
    // colour, in the legend as on the chart.
    admin.go("/admin/");
    admin.wait_for("Last 30 days");
    admin.press_tab();
    let focus = admin.focused();
    assert_eq!(focus["text"], "Skip to content", "{focus}");
    let figures = admin.execute(
        "var svg = {};\
         document.querySelectorAll('.fd-chart g[data-series]').forEach(function (g) {\
           svg[g.dataset.series] = Array.from(g.querySelectorAll('.fd-m')).map(function (m) {\
             return [m.dataset.date, Number(m.dataset.value)];\
           });\
         });\
         var heads = Array.from(document.querySelectorAll('.fda-chart-data thead th'))\
           .slice(1).map(function (th) { return th.textContent.trim(); });\
         var table = {};\
         heads.forEach(function (h) { table[h] = []; });\
         document.querySelectorAll('.fda-chart-data tbody tr').forEach(function (tr) {\
           var day = tr.querySelector('th').textContent.trim();\
           tr.querySelectorAll('td').forEach(function (td, i) {\
             table[heads[i]].push([day, Number(td.textContent.trim())]);\
           });\
         });\
         var dashes = {};\
         document.querySelectorAll('.fd-chart g[data-series]').forEach(function (g) {\
           dashes[g.dataset.series] = g.querySelector('polyline').getAttribute('stroke-dasharray') + ' '\
             + g.querySelector('.fd-m').tagName;\
         });\
         var keys = {};\
         document.querySelectorAll('.fda-legend li').forEach(function (li) {\
           var label = li.textContent.trim().replace(/ \\(\\d+\\)$/, '');\
           keys[label] = li.querySelector('line').getAttribute('stroke-dasharray') + ' '\
             + li.querySelector('.fd-m').tagName;\
         });\
         return {svg: svg, table: table, dashes: dashes, keys: keys};",
        json!([]),
    );
    assert_eq!(
        figures["svg"], figures["table"],
        "the table has the chart's figures"
    );
    let failed = figures["table"]["Failed sign-ins"]
        .as_array()
        .expect("a failed sign-ins column");
    assert_eq!(failed.len(), 30, "{figures}");
    let failed_total: i64 = failed.iter().filter_map(|d| d[1].as_i64()).sum();
    assert_eq!(failed_total, 2, "the two failed sign-ins recorded above");
    assert_eq!(
        figures["dashes"], figures["keys"],
        "the legend draws the lines as the chart does"
    );
    let styles: std::collections::HashSet<String> = figures["dashes"]
        .as_object()
        .map(|o| o.values().map(|v| v.to_string()).collect())
        .unwrap_or_default();
    assert_eq!(
        styles.len(),
        3,
        "three different dash-and-marker styles: {figures}"
    );

    // API keys: a secret is shown once, on the answer to the form. Two keys in
    // use, one for the whole site and one scoped to Acme, as a site would have.
    admin.go("/admin/api-keys");
    admin.type_into("input[name=name]", "billing sync");
    admin.click("select[name=organization] option[value=site]");
    admin.click("select[name=role] option[value=viewer]");
    admin.click(".fda-form button[type=submit]");
    let page = admin.wait_for("Copy this key now");
    let billing_key = secret_on(&page);
    admin.type_into("input[name=name]", "Acme HR directory sync");
    admin.click(&format!(
        "select[name=organization] option[value='{}']",
        acme.id
    ));
    admin.click("select[name=role] option[value=admin]");
    admin.click(".fda-form button[type=submit]");
    let page = admin.wait_for("Acme HR directory sync");
    let hr_key = secret_on(&page);
    assert_ne!(billing_key, hr_key);
    assert_eq!(
        api_get(&base, "/admin/api/v1/users?limit=5", &billing_key),
        200
    );
    assert_eq!(
        api_get(
            &base,
            "/admin/api/v1/organizations/acme/users?limit=5",
            &hr_key
        ),
        200
    );
    admin.go("/admin/api-keys");
    let page = admin.wait_for("Acme HR directory sync");
    assert!(!page.contains("Copy this key now") && !page.contains(&hr_key));
    assert!(page.contains("whole site") && page.contains("Acme Corp"));
    admin.assert_accessible("the API keys page");
    let used: Vec<Option<chrono::NaiveDateTime>> = {
        use diesel::prelude::*;
        use frontdesk_core::schema::api_keys;
        api_keys::table
            .select(api_keys::last_used_at)
            .load(&mut db.conn())
            .expect("keys")
    };
    assert!(
        used.len() == 2 && used.iter().all(Option::is_some),
        "both keys were used: {used:?}"
    );
    admin.screenshot(shots, "api_keys");

    // A CSV import: upload, dry-run report, then apply the same file.
    let dir = tempfile::tempdir().expect("temp dir");
    let csv_path = dir.path().join("new-hires.csv");
    std::fs::write(
        &csv_path,
        "email,first_name,last_name,organization,role,tags\n\
         new.hire@acme.test,New,Hire,acme,member,beta\n\
         not-an-email,Bad,Row,acme,member,\n\
         victim@acme.test,Victim,Again,acme,member,\n\
         outsider@elsewhere.test,Out,Sider,acme,member,\n",
    )
    .expect("csv");
    admin.go("/admin/imports");
    admin.wait_for("Dry run");
    let file_input = admin.find("input[type=file]");
    admin.cmd(
        "POST",
        &format!("/element/{file_input}/value"),
        Some(json!({"text": csv_path.display().to_string()})),
    );
    admin.click(".fda-form button[type=submit]");
    let page = admin.wait_for("Dry run: nothing was written");
    assert!(
        page.contains("1 would be created") && page.contains("1 skipped"),
        "dry-run report"
    );
    assert!(page.contains("not-an-email") && page.contains("outsider@elsewhere.test"));
    assert!(
        users::find_by_email(&mut db.conn(), "new.hire@acme.test")
            .expect("lookup")
            .is_none(),
        "a dry run writes nothing"
    );
    admin.assert_accessible("an import's dry-run report");
    admin.screenshot(shots, "import_report");
    admin.click("form[action$='/apply'] button[type=submit]");
    admin.wait_for("1 created");
    let hired = users::find_by_email(&mut db.conn(), "new.hire@acme.test")
        .expect("lookup")
        .expect("created by the import");
    assert_eq!(hired.first_name, "New");
    assert!(
        users::find_by_email(&mut db.conn(), "outsider@elsewhere.test")
            .expect("lookup")
            .is_none()
    );
    // And on a phone.
    admin.resize(390, 844);
    admin.go("/admin/users");
    admin.wait_for("tina@acme.test");
    admin.assert_accessible("the users list on a phone");
    // The nav and the filters fold into their <details>; a tap opens them.
    assert!(admin.visible(".fda-navmenu > summary"));
    assert!(!admin.visible(".fda-nav a[href$='/admin/organizations']"));
    assert!(admin.visible(".fda-filterbox > summary"));
    assert!(!admin.visible("input[name=q]"));
    admin.screenshot(shots, "users_phone");
    admin.click(".fda-navmenu > summary");
    assert!(admin.visible(".fda-nav a[href$='/admin/organizations']"));
    admin.click(".fda-filterbox > summary");
    assert!(admin.visible("input[name=q]"));
    admin.assert_accessible("the users list on a phone, menu and filters open");
    admin.go("/admin/");
    admin.wait_for("Last 30 days");
    admin.click(".fda-chart-data > summary");
    assert!(admin.visible(".fda-chart-data tbody tr"));
    admin.assert_accessible("the dashboard on a phone, its table open");

    drop(user);
    drop(admin);
    drop(driver);
    server.stop();
}

/// What a field says to assistive technology: whether it is marked invalid,
/// the text its `aria-describedby` points to, and whether it has the focus.
fn field_state(b: &Browser<'_>, name: &str) -> Value {
    b.execute(
        "var f = document.querySelector('[name=\"' + arguments[0] + '\"]');\
         var ids = (f.getAttribute('aria-describedby') || '').split(' ').filter(Boolean);\
         return {invalid: f.getAttribute('aria-invalid'),\
           described: ids.map(function (id) {\
             var e = document.getElementById(id); return e ? e.textContent.trim() : null;\
           }),\
           focused: document.activeElement === f};",
        json!([name]),
    )
}

#[test]
fn auth_pages_tie_errors_to_their_fields_in_headless_chromium() {
    auth_pages_tie_errors_to_their_fields(Framework::ActixWeb);
}

/// The same pages through an axum host.
#[test]
fn auth_pages_tie_errors_to_their_fields_through_axum_in_headless_chromium() {
    auth_pages_tie_errors_to_their_fields(Framework::Axum);
}

fn auth_pages_tie_errors_to_their_fields(framework: Framework) {
    let Some((driver, chromium)) = start_driver() else {
        return;
    };
    let db = TestDb::sqlite();
    let user = user_with(&db, "ada@acme.test", None, None);
    let (base, server) = serve_on(framework, &db, "127.0.0.1", |b| b);
    let b = Browser::open(&driver, &chromium, &base);

    // The sign-in page, then a wrong password: both fields are marked (one
    // answer for a wrong email and a wrong password), tied to the message,
    // and the first of them has the focus.
    b.go("/auth/login");
    b.wait_for("Sign in");
    b.assert_skip_link_first();
    b.assert_accessible("the sign-in page");
    assert_eq!(b.assert_field_borders(), 2);
    assert_eq!(field_state(&b, "password")["invalid"], Value::Null);
    b.type_into("input[name=email]", "ada@acme.test");
    b.type_into("input[name=password]", "not the password");
    b.click("form button[type=submit]");
    let page = b.wait_for("fd-error");
    let message = page
        .split("id=\"fd-error\" role=\"alert\">")
        .nth(1)
        .and_then(|r| r.split('<').next())
        .unwrap_or_default()
        .to_owned();
    assert!(!message.is_empty(), "an error message with an id: {page}");
    let email = field_state(&b, "email");
    let password = field_state(&b, "password");
    for f in [&email, &password] {
        assert_eq!(f["invalid"], "true", "{f}");
        assert_eq!(f["described"], json!([message]), "{f}");
    }
    assert_eq!(
        email["focused"], true,
        "the first invalid field has the focus"
    );
    b.assert_accessible("the sign-in page with an error");

    // The reset request page.
    b.go("/auth/password-reset");
    b.wait_for("Reset your password");
    b.assert_skip_link_first();
    b.assert_accessible("the password reset request page");

    // The reset form: two passwords that differ mark both fields; a short
    // one marks the first only.
    let mut token = String::new();
    frontdesk_core::password_resets::request_for_user(
        &mut db.conn(),
        &Actor::system(),
        user.id,
        chrono::Duration::hours(1),
        |u, t, _| {
            token = t.expose().to_owned();
            Ok(frontdesk_core::outbox::NewMail {
                kind: "password_reset".into(),
                recipient: u.email.clone(),
                subject: "reset".into(),
                text_body: "reset".into(),
                html_body: None,
                invitation_id: None,
            })
        },
    )
    .expect("a reset link");
    b.go(&format!("/auth/password-reset/{token}"));
    b.wait_for("Choose a new password");
    b.assert_accessible("the reset form");
    b.type_into("input[name=password]", "a long new password");
    b.type_into("input[name=password_confirm]", "another long password");
    b.click("form button[type=submit]");
    b.wait_for("do not match");
    let (first, second) = (
        field_state(&b, "password"),
        field_state(&b, "password_confirm"),
    );
    assert_eq!(first["invalid"], "true", "{first}");
    assert_eq!(second["invalid"], "true", "{second}");
    assert_eq!(
        first["described"],
        json!(["The two passwords do not match."])
    );
    assert_eq!(first["focused"], true, "{first}");
    b.assert_accessible("the reset form with an error");
    b.type_into("input[name=password]", "short");
    b.type_into("input[name=password_confirm]", "short");
    b.execute(
        "document.querySelectorAll('input[minlength]').forEach(function (i) {\
           i.removeAttribute('minlength'); });",
        json!([]),
    );
    b.click("form button[type=submit]");
    b.wait_for("at least");
    let (first, second) = (
        field_state(&b, "password"),
        field_state(&b, "password_confirm"),
    );
    assert_eq!(
        (&first["invalid"], first["focused"].as_bool()),
        (&json!("true"), Some(true))
    );
    assert_eq!(second["invalid"], Value::Null, "{second}");
    // Nothing was changed: the old password still works.
    assert!(
        frontdesk_core::password_resets::check(&mut db.conn(), &token)
            .expect("check")
            .is_some(),
        "the link is still unused"
    );

    // Signed in: the own sessions page and the password change form.
    b.login("ada@acme.test", "/auth/sessions");
    b.wait_for("Your sessions");
    b.assert_skip_link_first();
    b.assert_accessible("the own sessions page");
    b.resize(390, 844);
    b.go("/auth/sessions");
    b.wait_for("Your sessions");
    b.assert_accessible("the own sessions page on a phone");
    b.resize(1280, 860);
    b.go("/auth/password");
    b.wait_for("Change your password");
    b.assert_accessible("the password change form");
    assert_eq!(b.assert_field_borders(), 3);
    b.type_into("input[name=current_password]", "not the password");
    b.type_into("input[name=password]", "a long new password");
    b.type_into("input[name=password_confirm]", "a long new password");
    // The form itself (an unverified user's banner has a button too).
    b.click("form.fd-form button[type=submit]");
    b.wait_for("not right");
    let current = field_state(&b, "current_password");
    assert_eq!(current["invalid"], "true", "{current}");
    assert_eq!(
        current["described"],
        json!(["The current password is not right."])
    );
    assert_eq!(current["focused"], true, "{current}");
    assert_eq!(field_state(&b, "password")["invalid"], Value::Null);
    b.assert_accessible("the password change form with an error");
    let hash = fx::reload(&db, user.id).and_then(|u| u.password_hash);
    assert!(
        passwords::verify(PASSWORD, hash.as_deref()),
        "the password is unchanged"
    );

    drop(b);
    drop(driver);
    server.stop();
}

/// The one-time secret on the page that answers the new-key form.
fn secret_on(page: &str) -> String {
    let secret: String = page
        .split("class=\"fda-secret\">")
        .nth(1)
        .unwrap_or_default()
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect();
    assert!(secret.starts_with("fdk_"), "no new key on the page");
    secret
}

/// A bearer-key GET to the JSON API; returns the status code.
fn api_get(base: &str, path: &str, key: &str) -> u16 {
    let answer = ureq::get(&format!("{base}{path}"))
        .set("Authorization", &format!("Bearer {key}"))
        .set("Accept", "application/json")
        .timeout(Duration::from_secs(30))
        .call();
    match answer {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r.status(),
        Err(e) => panic!("GET {path}: {e}"),
    }
}

/// The demo's notes extension in the browser: its menu item and page in the
/// admin chrome, a note added through the page's form, the notes column on
/// the users list, the "Archive notes" bulk action, the user page's section.
#[test]
fn demo_extensions_in_headless_chromium() {
    demo_extensions(Framework::ActixWeb);
}

/// The same extensions through an axum host (the extension's pages and API
/// are part of what the adapter mounts).
#[test]
fn demo_extensions_through_axum_in_headless_chromium() {
    demo_extensions(Framework::Axum);
}

fn demo_extensions(framework: Framework) {
    use crate::extensions::admin_notes;
    let Some((driver, chromium)) = start_driver() else {
        return;
    };
    let db = TestDb::sqlite();
    let mut conn = db.conn();
    admin_notes::create_table(&mut conn).expect("notes table");
    let sys = Actor::system();
    let acme =
        frontdesk_core::organizations::create(&mut conn, &sys, "acme", "Acme Corp", "acme.test")
            .expect("org");
    drop(conn);
    user_with(&db, "staff@frontdesk.test", Some(StaffRole::Owner), None);
    let nina = fx::user(
        &db,
        "nina@acme.test",
        None,
        Some((acme.id, OrgRole::Member)),
    );
    let omar = fx::user(
        &db,
        "omar@acme.test",
        None,
        Some((acme.id, OrgRole::Member)),
    );
    let mut conn = db.conn();
    admin_notes::add(&mut conn, &sys, omar.id, "wants the pro plan").expect("note");
    drop(conn);
    let (base, server) = serve_on(framework, &db, "127.0.0.1", |b| {
        b.extension(admin_notes::NotesAdmin)
    });

    let admin = Browser::open(&driver, &chromium, &base);
    admin.login("staff@frontdesk.test", "/admin/users");
    admin.wait_for("nina@acme.test");
    admin.click(".fda-nav a[href$='/admin/ext/notes/']");
    admin.wait_for("wants the pro plan");
    admin.assert_accessible("the demo's notes page");
    admin.type_into("input[name=user_id]", &nina.id.to_string());
    admin.type_into("input[name=body]", "renewal due in May");
    admin.click(".fda-main form button[type=submit]");
    admin.wait_for("Note added.");
    admin.wait_for("renewal due in May");

    admin.go("/admin/users?q=acme.test");
    let list = admin.wait_for("Archive notes");
    assert!(
        list.contains(r#"<td data-label="Notes">1</td>"#),
        "notes column"
    );
    admin.assert_accessible("the users list with the notes column");
    admin.click(&format!("input[name=ids][value='{}']", nina.id));
    admin.click("select[name=action] option[value='notes.archive']");
    admin.click(".fda-bulkbar button[type=submit]");
    admin.wait_for("Archive notes: 1 user(s).");
    let mut conn = db.conn();
    let archived: Vec<(i64, bool)> = {
        use diesel::prelude::*;
        admin_notes::demo_notes::table
            .order(admin_notes::demo_notes::id)
            .select((
                admin_notes::demo_notes::user_id,
                admin_notes::demo_notes::archived,
            ))
            .load(&mut *conn)
            .expect("notes")
    };
    drop(conn);
    assert_eq!(archived, vec![(omar.id, false), (nina.id, true)]);

    admin.go(&format!("/admin/users/{}", nina.id));
    let page = admin.wait_for("renewal due in May");
    assert!(page.contains("<h2>Notes</h2>"));
    assert!(page.contains("archived"));
    admin.assert_accessible("the user page with the notes section");

    // The typed plan field: a select on the user page, then a list column
    // and a filter; the "Has notes" extension filter in the filter bar.
    admin.click("details:has(form[action$='/edit']) > summary");
    admin.click("select[name='profile.plan'] option[value=pro]");
    admin.click("form[action$='/edit'] button[type=submit]");
    admin.wait_for("Profile saved.");
    admin.go("/admin/users?profile.plan=pro");
    let list = admin.wait_for("nina@acme.test");
    assert!(!list.contains("omar@acme.test"), "filtered by plan");
    assert!(
        list.contains(r#"<td data-label="Plan">pro</td>"#),
        "plan column"
    );
    admin.assert_accessible("the users list filtered by plan");
    admin.go("/admin/users?ext.notes.has_notes=yes");
    let list = admin.wait_for("omar@acme.test");
    assert!(
        !list.contains("nina@acme.test"),
        "nina's only note is archived"
    );
    assert!(list.contains(r#"<select name="ext.notes.has_notes">"#));

    drop(admin);
    drop(driver);
    server.stop();
}
