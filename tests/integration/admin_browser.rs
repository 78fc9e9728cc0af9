//! The admin pages in a real headless Chromium, driven through WebDriver
//! (chromedriver) against frontdesk served on a random loopback port: sign in
//! as staff, search and filter, suspend a user and watch their session die,
//! restore, revoke a session, bulk-tag with select-all, delete with typed
//! confirmation. Without chromedriver the test says SKIPPED and passes,
//! unless `FRONTDESK_REQUIRE_BROWSER=1`. With `FRONTDESK_SCREENSHOTS=<dir>` it
//! saves PNGs of the main pages there.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
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

/// Plain HTTP/1.1 to chromedriver on loopback: the WebDriver protocol is JSON
/// over a handful of endpoints, so no client library is needed.
pub(crate) fn http(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Result<Value, String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(60)))
        .map_err(|e| e.to_string())?;
    let body = body.map(Value::to_string).unwrap_or_default();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
    // chromedriver keeps the connection open: read the header, then exactly
    // the body it announces.
    let mut raw = Vec::new();
    let mut buf = [0u8; 16384];
    let split = loop {
        if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = s.read(&mut buf).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("connection closed before the header ended".into());
        }
        raw.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let mut payload = raw[split + 4..].to_vec();
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok());
    let chunked = head.contains("transfer-encoding: chunked");
    loop {
        let done = match length {
            Some(len) => payload.len() >= len,
            None if chunked => payload.ends_with(b"0\r\n\r\n"),
            None => false,
        };
        if done {
            break;
        }
        let n = s.read(&mut buf).map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        payload.extend_from_slice(&buf[..n]);
    }
    if chunked {
        payload = dechunk(&payload);
    }
    let v: Value = serde_json::from_slice(&payload).map_err(|e| format!("{e}: {head}"))?;
    if let Some(err) = v["value"]["error"].as_str() {
        return Err(format!("{err}: {}", v["value"]["message"]));
    }
    Ok(v["value"].clone())
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = data.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&data[..eol]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = eol + 2;
        out.extend_from_slice(&data[start..(start + size).min(data.len())]);
        data = &data[(start + size + 2).min(data.len())..];
    }
    out
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

/// Serves frontdesk (and the host's `/notes`) on a loopback port in its own thread.
fn serve(db: &TestDb) -> (String, actix_web::dev::ServerHandle) {
    serve_with(db, |b| b)
}

/// [`serve`] with the builder adjusted (after the base URL is set); when mail
/// is configured, the outbox worker runs beside the server.
pub(crate) fn serve_with(
    db: &TestDb,
    customize: impl FnOnce(frontdesk::FrontdeskBuilder) -> frontdesk::FrontdeskBuilder,
) -> (String, actix_web::dev::ServerHandle) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let base = format!("http://127.0.0.1:{port}");
    let fd = customize(crate::web_app::builder(db).base_url(&base))
        .build()
        .expect("frontdesk");
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
    let handle = rx.recv().expect("server started");
    (base, handle)
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

/// The folder named by `FRONTDESK_SCREENSHOTS`, created, when set.
pub(crate) fn screenshot_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("FRONTDESK_SCREENSHOTS").map(PathBuf::from)?;
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    Some(dir)
}

#[test]
fn admin_browser_flows_in_headless_chromium() {
    let Some((driver, chromium)) = start_driver() else {
        return;
    };
    let shots = screenshot_dir();
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
    let (base, server) = serve(&db);

    // The victim signs in and reads the host's own page.
    let user = Browser::open(&driver, &chromium, &base);
    user.login("victim@acme.test", "/notes");
    user.wait_for("notes of victim@acme.test");

    // Staff sign in through the same login page and land on the users list.
    let admin = Browser::open(&driver, &chromium, &base);
    admin.go("/admin/users");
    admin.wait_for("Sign in");
    assert!(admin.url().contains("/auth/login?next="), "{}", admin.url());
    admin.type_into("input[name=email]", "staff@frontdesk.test");
    admin.type_into("input[name=password]", PASSWORD);
    admin.click("form button[type=submit]");
    admin.wait_for("tina@acme.test");
    assert!(admin.url().ends_with("/admin/users"));
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
    admin.screenshot(shots, "user_detail");
    admin.type_into("input[name=reason]", "chargeback");
    admin.click(".fda-button-warn");
    admin.wait_for("User suspended");
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
    ] {
        admin.go(path);
        admin.wait_for(marker);
        admin.screenshot(shots, name);
    }
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
    admin.screenshot(shots, "users_phone");

    drop(user);
    drop(admin);
    drop(driver);
    actix_web::rt::System::new().block_on(server.stop(true));
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
    let host = base.trim_start_matches("http://");
    let mut s = TcpStream::connect(host).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {key}\r\nAccept: application/json\r\nConnection: close\r\n\r\n"
    )
    .expect("request");
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}
