//! Single sign-on in a real headless Chromium against the real OpenID
//! provider of `tests/integration/sso.rs`: home-realm discovery from the
//! login page's email field sends the browser to the organization's
//! provider, whose own sign-in page it fills in, and back to the app signed
//! in, with the identity on the user's Linked accounts page.

use diesel::prelude::*;
use frontdesk_core::mfa::sealed::SecretBox;
use frontdesk_core::schema::{linked_identities, login_attempts, users};
use frontdesk_core::sso::{self, ProviderInput};
use frontdesk_core::{organizations, Actor};

use crate::admin_browser::{serve_on, start_driver, Browser, Framework};
use crate::both_and_axum;
use crate::sso::{start_idp_for, CLIENT_ID, CLIENT_SECRET};
use crate::support::TestDb;

both_and_axum!(
    home_realm_discovery_signs_in_through_the_provider_in_headless_chromium,
    home_realm_discovery_signs_in_through_the_provider
);

fn home_realm_discovery_signs_in_through_the_provider(db: &TestDb, framework: Framework) {
    let Some((driver, chromium)) = start_driver() else {
        return;
    };
    let (base, server) = serve_on(framework, db, "127.0.0.1", |b| b.after_login("/notes"));
    let Some(idp) = start_idp_for(&base) else {
        return;
    };
    {
        let mut conn = db.conn();
        let acme =
            organizations::create(&mut conn, &Actor::system(), "acme", "Acme", "").expect("org");
        // The key the test app derives from its secret_key.
        let keys = SecretBox::derive(&[7u8; 32], sso::PURPOSE_CLIENT_SECRET).expect("keys");
        sso::save(
            &mut conn,
            &Actor::system(),
            &keys,
            acme.id,
            &ProviderInput {
                issuer: idp.issuer.clone(),
                client_id: CLIENT_ID.into(),
                client_secret: Some(CLIENT_SECRET.into()),
                domains: vec!["acme.test".into()],
                default_role: None,
                require_sso: false,
                trust_idp_mfa: false,
                allow_loopback_http: true,
            },
        )
        .expect("identity provider");
    }

    let b = Browser::open(&driver, &chromium, &base);
    b.go("/auth/login");
    b.wait_for("Single sign-on");
    b.assert_accessible("the login page with single sign-on");
    // Only the email: the domain picks the organization's provider.
    b.type_into("form.fd-sso input[name=email]", "browser@acme.test");
    // A real click: the browser's own CSP checks (form-action) apply.
    b.click("form.fd-sso button[type=submit]");
    b.wait_for("Test provider: sign in");
    assert!(
        b.url().starts_with(&idp.issuer),
        "at the provider: {}",
        b.url()
    );
    b.click("form button[type=submit]");
    // Back at the app, signed in (a new member, made just in time).
    b.wait_url("/notes");
    let user: i64 = users::table
        .filter(users::email.eq("browser@acme.test"))
        .select(users::id)
        .first(&mut *db.conn())
        .expect("made just in time");
    let linked: Vec<(String, Option<String>)> = linked_identities::table
        .filter(linked_identities::user_id.eq(user))
        .select((
            linked_identities::provider_user_id,
            linked_identities::email,
        ))
        .load(&mut *db.conn())
        .expect("identities");
    assert_eq!(
        linked,
        [("browser".to_owned(), Some("browser@acme.test".to_owned()))]
    );
    let method: String = login_attempts::table
        .filter(login_attempts::user_id.eq(user))
        .filter(login_attempts::success.eq(true))
        .select(login_attempts::method)
        .first::<Option<String>>(&mut *db.conn())
        .expect("attempt")
        .unwrap_or_default();
    assert_eq!(method, "sso");

    // The identity shows on the user's own page.
    b.go("/auth/linked-accounts");
    let page = b.wait_for("browser@acme.test");
    assert!(page.contains("Single sign-on (acme)"), "{page}");
    b.assert_accessible("the linked accounts page");

    drop(idp);
    server.stop();
}
