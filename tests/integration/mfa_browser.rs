//! Two-step sign-in in headless Chromium: an authenticator app enrolled and
//! used with codes from the test's own RFC 6238 generator, and passkeys
//! registered and used through Chromium's WebDriver virtual authenticator
//! (W3C WebAuthn §11: a CTAP2 "internal" authenticator with resident keys and
//! user verification) — as a second factor and, where the host allows it,
//! as a sign-in on their own.

use diesel::prelude::*;
use frontdesk::PasskeyPolicy;
use frontdesk_core::schema::{login_attempts, mfa_factors, sessions};
use serde_json::{json, Value};

use crate::admin_browser::{screenshot_dir, serve_on, start_driver, Browser, Framework};
use crate::mfa::{base32_decode, code_at, now_step};
use crate::support::TestDb;
use crate::web_app::user_with_password;

/// The latest login attempt: (reason, method).
fn last_attempt(db: &TestDb) -> (String, Option<String>) {
    let mut conn = db.conn();
    login_attempts::table
        .order(login_attempts::id.desc())
        .select((login_attempts::reason, login_attempts::method))
        .first(&mut *conn)
        .expect("an attempt")
}

fn live_sessions(db: &TestDb) -> i64 {
    let mut conn = db.conn();
    sessions::table
        .filter(sessions::revoked_at.is_null())
        .count()
        .get_result(&mut *conn)
        .expect("count")
}

fn cookie_names(b: &Browser<'_>) -> Vec<String> {
    b.cmd("GET", "/cookie", None)
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|c| c["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Signing out as far as the browser goes: its cookies are gone.
fn forget_cookies(b: &Browser<'_>) {
    b.cmd("DELETE", "/cookie", None);
}

fn sign_in_password(b: &Browser<'_>, email: &str) {
    b.go("/auth/login?next=/notes");
    b.type_into("input[name=email]", email);
    b.type_into("input[name=password]", crate::web_app::PASSWORD);
    b.click("form button[type=submit]");
}

#[test]
fn authenticator_app_enrolled_and_used_in_headless_chromium() {
    authenticator_app_enrolled_and_used(Framework::ActixWeb);
}

#[test]
fn authenticator_app_enrolled_and_used_through_axum_in_headless_chromium() {
    authenticator_app_enrolled_and_used(Framework::Axum);
}

fn authenticator_app_enrolled_and_used(framework: Framework) {
    crate::captured_log::install();
    let Some((driver, chromium)) = start_driver() else {
        return;
    };
    // The screenshots are the actix-web run's (the pages are the same).
    let shots = matches!(framework, Framework::ActixWeb)
        .then(screenshot_dir)
        .flatten();
    let db = TestDb::sqlite();
    user_with_password(&db, "ann@example.com");
    let (base, server) = serve_on(framework, &db, "127.0.0.1", |b| b);
    let b = Browser::open(&driver, &chromium, &base);

    sign_in_password(&b, "ann@example.com");
    b.wait_for("notes of ann@example.com");
    b.go("/auth/mfa/setup");
    b.wait_for("Add an authenticator app");
    b.assert_accessible("the two-step sign-in page");
    b.type_into("form[action$='/mfa/totp'] input[name=name]", "Phone");
    b.click("form[action$='/mfa/totp'] button[type=submit]");
    let page = b.wait_for("fd-secret");
    b.assert_accessible("the enrolment page");
    b.screenshot(shots.as_deref(), "mfa-enrol");
    let open = "<code class=\"fd-secret\">";
    let i = page.find(open).expect("key") + open.len();
    let key = &page[i..i + page[i..].find("</code>").expect("end")];
    let seed = base32_decode(key);
    assert_eq!(seed.len(), 20);

    // A wrong code keeps the app unconfirmed; the right one adds it.
    let wrong = if code_at(&seed, now_step()) == "000000" {
        "111111"
    } else {
        "000000"
    };
    b.type_into("input[name=code]", wrong);
    b.click("form[action$='/mfa/totp/confirm'] button[type=submit]");
    b.wait_for("fd-error");
    b.type_into("input[name=code]", &code_at(&seed, now_step()));
    b.click("form[action$='/mfa/totp/confirm'] button[type=submit]");
    b.wait_for("Your recovery codes");
    b.assert_accessible("the recovery codes page");

    // Signed out, the password alone leads to the second step, not in.
    forget_cookies(&b);
    let before = live_sessions(&db);
    sign_in_password(&b, "ann@example.com");
    b.wait_url("/auth/mfa");
    b.wait_for("Code from your authenticator app");
    b.assert_accessible("the second step");
    assert!(
        !cookie_names(&b).iter().any(|c| c.contains("session")),
        "{:?}",
        cookie_names(&b)
    );
    assert_eq!(live_sessions(&db), before, "no session before the code");
    assert_eq!(
        last_attempt(&db),
        ("mfa_required".to_owned(), Some("password".to_owned()))
    );
    // The code the confirmation used is spent; the next step's is not.
    b.type_into("input[name=code]", &code_at(&seed, now_step() + 1));
    b.click("form[action$='/mfa'] button[type=submit]");
    b.wait_for("notes of ann@example.com");
    assert_eq!(
        last_attempt(&db),
        ("success".to_owned(), Some("totp".to_owned()))
    );
    assert_eq!(live_sessions(&db), before + 1);
    drop(b);
    server.stop();
}

/// Waits for the address to hold `part`, or fails with what the passkey
/// script said.
fn wait_url_or_status(b: &Browser<'_>, part: &str) {
    let start = std::time::Instant::now();
    while !b.url().contains(part) {
        if start.elapsed() > std::time::Duration::from_secs(15) {
            let said = b.execute(
                "var s = document.getElementById('fd-passkey-status'); return s ? s.textContent : null;",
                json!([]),
            );
            panic!("never reached {part:?} ({}): {said}", b.url());
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// A virtual CTAP2 platform authenticator with resident keys and a user who
/// always verifies; returns its id.
fn add_authenticator(b: &Browser<'_>) -> String {
    let v = b.cmd(
        "POST",
        "/webauthn/authenticator",
        Some(json!({
            "protocol": "ctap2",
            "transport": "internal",
            "hasResidentKey": true,
            "hasUserVerification": true,
            "isUserVerified": true,
        })),
    );
    v.as_str().expect("authenticator id").to_owned()
}

/// Runs a passkey sign-in from the login page by hand, with the assertion's
/// signature altered before it is sent: the server's answer's status.
const TAMPERED_SIGN_IN: &str = r#"
const b64 = s => Uint8Array.from(atob(s.replace(/-/g, '+').replace(/_/g, '/')
    + '==='.slice((s.length + 3) % 4)), c => c.charCodeAt(0)).buffer;
const txt = buf => buf ? btoa(String.fromCharCode(...new Uint8Array(buf)))
    .replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '') : null;
const post = (url, body) => fetch(url, {method: 'POST', credentials: 'same-origin',
    headers: {'Content-Type': 'application/json'}, body: JSON.stringify(body)});
const begun = await (await post('/auth/api/login/passkey/begin', {})).json();
const pk = begun.options.publicKey;
pk.challenge = b64(pk.challenge);
const c = await navigator.credentials.get({publicKey: pk});
const sig = new Uint8Array(c.response.signature);
sig[sig.length - 1] ^= 0x01;
const res = await post('/auth/api/login/passkey/finish', {ceremony: begun.ceremony, credential: {
    id: c.id, rawId: txt(c.rawId), type: c.type, extensions: {},
    response: {authenticatorData: txt(c.response.authenticatorData),
        clientDataJSON: txt(c.response.clientDataJSON), signature: txt(sig.buffer),
        userHandle: txt(c.response.userHandle)}}});
return res.status;
"#;

#[test]
fn passkeys_registered_and_used_in_headless_chromium() {
    passkeys_registered_and_used(Framework::ActixWeb);
}

/// The ceremonies' JSON calls (`fetch` from the page) through the axum mount.
#[test]
fn passkeys_registered_and_used_through_axum_in_headless_chromium() {
    passkeys_registered_and_used(Framework::Axum);
}

fn passkeys_registered_and_used(framework: Framework) {
    crate::captured_log::install();
    let Some((driver, chromium)) = start_driver() else {
        return;
    };
    // The screenshots are the actix-web run's (the pages are the same).
    let shots = matches!(framework, Framework::ActixWeb)
        .then(screenshot_dir)
        .flatten();
    let db = TestDb::sqlite();
    let ann = user_with_password(&db, "ann@example.com");
    // WebAuthn needs a domain: the pages are served as localhost.
    let (base, server) = serve_on(framework, &db, "localhost", |b| {
        b.passkeys(PasskeyPolicy::SignIn)
    });
    let b = Browser::open(&driver, &chromium, &base);
    let authenticator = add_authenticator(&b);

    // Register a passkey, named, on the user's own page.
    sign_in_password(&b, "ann@example.com");
    b.wait_for("notes of ann@example.com");
    b.go("/auth/mfa/setup");
    b.wait_for("Add a passkey");
    b.type_into("#fd-passkey-name", "Work laptop");
    b.click("button[data-fd-passkey=register]");
    wait_url_or_status(&b, "added=passkey");
    b.wait_for("The passkey was added.");
    b.assert_accessible("the two-step sign-in page with a passkey");
    b.screenshot(shots.as_deref(), "mfa-passkey-added");
    {
        let mut conn = db.conn();
        let rows: Vec<(i64, String, String, Option<String>)> = mfa_factors::table
            .select((
                mfa_factors::user_id,
                mfa_factors::kind,
                mfa_factors::name,
                mfa_factors::credential_id,
            ))
            .load(&mut *conn)
            .expect("factors");
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(
            (rows[0].0, rows[0].1.as_str(), rows[0].2.as_str()),
            (ann.id, "passkey", "Work laptop")
        );
        let creds = b.cmd(
            "GET",
            &format!("/webauthn/authenticator/{authenticator}/credentials"),
            None,
        );
        let creds = creds.as_array().expect("credentials");
        assert_eq!(creds.len(), 1, "{creds:?}");
        assert_eq!(creds[0]["isResidentCredential"], Value::Bool(true));
        assert_eq!(
            creds[0]["credentialId"]
                .as_str()
                .map(|s| s.trim_end_matches('=').replace('+', "-").replace('/', "_")),
            rows[0].3.clone(),
            "the credential stored is the authenticator's"
        );
    }

    // Rename it on the same page.
    b.type_into("form[action*='/rename'] input[name=name]", "Laptop");
    b.click("form[action*='/rename'] button[type=submit]");
    b.wait_for("The factor was renamed.");
    b.wait_for("value=\"Laptop\"");

    // As a second factor: the password, then the passkey; no session between.
    forget_cookies(&b);
    sign_in_password(&b, "ann@example.com");
    b.wait_url("/auth/mfa");
    b.wait_for("Use a passkey");
    b.assert_accessible("the second step with a passkey");
    assert!(
        b.find_all("input[name=code]").is_empty(),
        "no app, no code field"
    );
    assert!(!cookie_names(&b).iter().any(|c| c.contains("session")));
    b.click("button[data-fd-passkey=step]");
    b.wait_for("notes of ann@example.com");
    assert_eq!(
        last_attempt(&db),
        ("success".to_owned(), Some("passkey".to_owned()))
    );

    // As a sign-in on its own, from the login page: no email, no password.
    forget_cookies(&b);
    b.go("/auth/login?next=/notes");
    b.wait_for("Sign in with a passkey");
    b.assert_accessible("the sign-in page with a passkey button");
    b.screenshot(shots.as_deref(), "mfa-passkey-login");
    b.click("button[data-fd-passkey=sign-in]");
    b.wait_for("notes of ann@example.com");
    assert_eq!(
        last_attempt(&db),
        ("success".to_owned(), Some("passkey".to_owned()))
    );

    // A passkey whose signature does not verify is refused and counts
    // towards the account's lockout; past the threshold even the real
    // passkey is refused.
    forget_cookies(&b);
    b.go("/auth/login");
    b.wait_for("Sign in with a passkey");
    for _ in 0..5 {
        let status = b.execute(TAMPERED_SIGN_IN, json!([]));
        assert_eq!(status, json!(401));
        assert_eq!(
            last_attempt(&db),
            ("passkey_failed".to_owned(), Some("passkey".to_owned()))
        );
    }
    b.click("button[data-fd-passkey=sign-in]");
    b.wait_for("the account cannot sign in right now");
    assert_eq!(
        last_attempt(&db),
        ("locked_out".to_owned(), Some("passkey".to_owned()))
    );
    assert!(!cookie_names(&b).iter().any(|c| c.contains("session")));
    drop(b);
    server.stop();
}

/// A policy requires two-step sign-in of staff: a staff user without a factor
/// adds a passkey right after the password, sees the recovery codes once,
/// and only then has a session.
#[test]
fn required_enrolment_with_a_passkey_in_headless_chromium() {
    required_enrolment_with_a_passkey(Framework::ActixWeb);
}

/// The same enrolment through an axum host.
#[test]
fn required_enrolment_with_a_passkey_through_axum_in_headless_chromium() {
    required_enrolment_with_a_passkey(Framework::Axum);
}

fn required_enrolment_with_a_passkey(framework: Framework) {
    let Some((driver, chromium)) = start_driver() else {
        return;
    };
    let db = TestDb::sqlite();
    let ann = user_with_password(&db, "ann@example.com");
    diesel::update(frontdesk_core::schema::users::table.find(ann.id))
        .set(frontdesk_core::schema::users::staff_role.eq(Some("viewer")))
        .execute(&mut *db.conn())
        .expect("staff");
    let (base, server) = serve_on(framework, &db, "localhost", |b| {
        b.passkeys(PasskeyPolicy::SecondFactor)
            .require_mfa_for_staff(true)
    });
    let b = Browser::open(&driver, &chromium, &base);
    add_authenticator(&b);

    sign_in_password(&b, "ann@example.com");
    b.wait_url("/auth/mfa/enrol");
    b.wait_for("Add a passkey");
    b.assert_accessible("required enrolment with a passkey");
    assert_eq!(live_sessions(&db), 0);
    assert!(!cookie_names(&b).iter().any(|c| c.contains("session")));
    b.type_into("#fd-passkey-name", "Phone");
    b.click("button[data-fd-passkey=enrol]");
    // The section is in the page from the start, hidden; the codes come
    // with the answer.
    b.wait_for("<li><code>");
    assert!(b.visible("#fd-enrol-codes"), "the codes are shown");
    let codes = b.find_all("#fd-enrol-codes li code");
    assert_eq!(codes.len(), 10, "ten recovery codes shown");
    assert!(
        !b.visible("form[data-fd-enrol-option]"),
        "the app form is gone"
    );
    b.assert_accessible("recovery codes after a passkey");
    assert_eq!(live_sessions(&db), 1);
    assert_eq!(
        last_attempt(&db),
        ("success".to_owned(), Some("passkey".to_owned()))
    );
    b.click("#fd-enrol-codes a");
    b.wait_for("notes of ann@example.com");

    // From now on the passkey is her second step.
    forget_cookies(&b);
    sign_in_password(&b, "ann@example.com");
    b.wait_url("/auth/mfa");
    b.click("button[data-fd-passkey=step]");
    b.wait_for("notes of ann@example.com");
    drop(b);
    server.stop();
}
