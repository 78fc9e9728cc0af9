//! Single sign-on through an organization's OpenID Connect provider, against
//! a real provider on loopback (the `oidc-provider` package, started by
//! `tests/fixtures/sso/provider.mjs`; its login step picks the account from
//! the `login_hint`). Without Node or the package the tests say SKIPPED and
//! pass, unless `FRONTDESK_REQUIRE_SSO=1`.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use actix_http::Request;
use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::StatusCode;
use diesel::prelude::*;
use frontdesk_core::schema::{
    audit_events, identity_providers, linked_identities, login_attempts, memberships, sessions,
    users,
};
use frontdesk_core::{sso, Actor};
use serde_json::{json, Value};

use crate::api_v1_support::*;
use crate::both;
use crate::support::TestDb;
use crate::web_app::{block_on, frontdesk, Browser, Page, PASSWORD};

pub(crate) const CLIENT_ID: &str = "frontdesk-test";
pub(crate) const CLIENT_SECRET: &str = "s3cret-only-the-idp-and-we-know";
const APP: &str = "http://app.test";

/// The provider, ended when dropped.
pub(crate) struct Idp {
    child: Child,
    pub(crate) issuer: String,
}

impl Drop for Idp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the provider, or `None` (with a SKIPPED note) when Node or the
/// package is missing, unless `FRONTDESK_REQUIRE_SSO=1`.
pub(crate) fn start_idp() -> Option<Idp> {
    start_idp_for(APP)
}

/// [`start_idp`] for an app at `app` (its callback is registered there).
pub(crate) fn start_idp_for(app: &str) -> Option<Idp> {
    let required = std::env::var("FRONTDESK_REQUIRE_SSO").is_ok_and(|v| v == "1");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let modules = std::env::var("FRONTDESK_SSO_NODE_MODULES")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| root.join(".ci/sso/node_modules"));
    let node_ok = Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !node_ok || !modules.join("oidc-provider").exists() {
        if required {
            panic!(
                "FRONTDESK_REQUIRE_SSO=1 but node or oidc-provider (in {}) is missing",
                modules.display()
            );
        }
        eprintln!("SKIPPED (sso): node or the oidc-provider package is missing (see .ci/run)");
        return None;
    }
    let mut child = Command::new("node")
        .arg(root.join("tests/fixtures/sso/provider.mjs"))
        .arg(&modules)
        .arg(format!("{app}/auth/sso/callback"))
        .arg(CLIENT_ID)
        .arg(CLIENT_SECRET)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("node starts");
    let issuer = listening(&mut child, "the OpenID provider");
    Some(Idp { child, issuer })
}

/// The address a fixture server prints (`listening <url>`), waited for at
/// most 60 s: a server that never gets there is killed and the test fails
/// instead of waiting forever. Its output is read on until it ends (a
/// closed pipe would end it at its next line).
pub(crate) fn listening(child: &mut Child, what: &str) -> String {
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(url) = line.strip_prefix("listening ") {
                if let Some(tx) = tx.take() {
                    let _ = tx.send(url.to_owned());
                }
            }
        }
    });
    match rx.recv_timeout(std::time::Duration::from_secs(60)) {
        Ok(url) => url,
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not say where it listens within 60 s");
        }
    }
}

impl Idp {
    /// Follows the provider's redirects from the authorization URL, as a
    /// browser would, up to the redirect back to the app: its path and query.
    pub(crate) fn authorize(&self, url: &str) -> String {
        let agent = ureq::AgentBuilder::new().redirects(0).build();
        let mut url = url.to_owned();
        for _ in 0..10 {
            if let Some(back) = url.strip_prefix(APP) {
                return back.to_owned();
            }
            let res = agent.get(&url).call().expect("the provider answers");
            assert!(
                (300..400).contains(&res.status()),
                "{url}: {}",
                res.status()
            );
            let location = res.header("location").expect("a redirect").to_owned();
            url = url::Url::parse(&url)
                .expect("url")
                .join(&location)
                .expect("location")
                .to_string();
        }
        panic!("too many redirects");
    }

    fn config(&self) -> Value {
        json!({
            "issuer": self.issuer,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "domains": ["acme.test"],
            "default_role": "admin",
        })
    }
}

/// A sign-in through the provider for `email` (whose local part names the
/// provider's account): the app's answer to the callback.
async fn sso_sign_in<S, B>(
    app: &S,
    b: &mut Browser,
    idp: &Idp,
    email: &str,
    next: Option<&str>,
) -> (Page, String)
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let login = b.get(app, "/auth/login").await;
    assert!(
        login.body.contains("sso/start\""),
        "the login page offers SSO"
    );
    let csrf = login.csrf();
    let mut form = vec![("email", email), ("csrf_token", csrf.as_str())];
    if let Some(n) = next {
        form.push(("next", n));
    }
    let start = b.post(app, "/auth/sso/start", &form).await;
    // A page that moves on to the provider (not a redirect: see `to_provider`).
    assert_eq!(start.status, StatusCode::OK, "{}", start.body);
    assert!(start.header("refresh").is_some(), "{}", start.body);
    assert!(
        start.location().starts_with(&idp.issuer),
        "{}",
        start.location()
    );
    let back = idp.authorize(start.location());
    let page = b.get(app, &back).await;
    (page, back)
}

fn attempts(db: &TestDb) -> Vec<(String, Option<String>)> {
    login_attempts::table
        .order(login_attempts::id)
        .select((login_attempts::reason, login_attempts::method))
        .load(&mut *db.conn())
        .expect("attempts")
}

fn last_reason(db: &TestDb) -> String {
    attempts(db).last().expect("an attempt").0.clone()
}

fn user_id(db: &TestDb, email: &str) -> Option<i64> {
    users::table
        .filter(users::email.eq(email))
        .select(users::id)
        .first(&mut *db.conn())
        .optional()
        .expect("user")
}

fn links(db: &TestDb) -> i64 {
    linked_identities::table
        .count()
        .get_result(&mut *db.conn())
        .expect("links")
}

fn session_count(db: &TestDb) -> i64 {
    sessions::table
        .count()
        .get_result(&mut *db.conn())
        .expect("sessions")
}

/// acme's provider configured through the API by the staff owner.
async fn configure<S, B>(app: &S, w: &World, idp: &Idp) -> Answer
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    expect(
        app,
        w,
        Who::StaffOwnerKey,
        "PUT",
        "/organizations/acme/identity-provider",
        Some(idp.config()),
        200,
    )
    .await
}

both!(code_flow_signs_in_a_newcomer_with_the_default_role, |db| {
    let Some(idp) = start_idp() else { return };
    block_on(async {
        let fd = frontdesk(db);
        let app = crate::host_app!(fd);
        let w = world_data(db);
        let saved = configure(&app, &w, &idp).await;
        assert_eq!(
            saved.body["redirect_uri"],
            format!("{APP}/auth/sso/callback")
        );
        assert_eq!(saved.body["provider"], "org:acme");
        assert_eq!(saved.body["default_role"], "admin");

        let mut b = Browser::new();
        let (page, _) = sso_sign_in(&app, &mut b, &idp, "alice@acme.test", Some("/notes")).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
        assert_eq!(page.location(), "/notes", "next survives the round trip");
        assert!(b.session().is_some());
        let notes = b.get(&app, "/notes").await;
        assert_eq!(notes.body, "notes of alice@acme.test");

        // Just in time: a verified account, a member of acme with the
        // provider's default role, its identity linked.
        let alice = user_id(db, "alice@acme.test").expect("created");
        let (role, verified): (String, bool) = memberships::table
            .inner_join(users::table)
            .filter(memberships::user_id.eq(alice))
            .filter(memberships::organization_id.eq(w.acme.id))
            .select((memberships::role, users::email_verified))
            .first(&mut *db.conn())
            .expect("membership");
        assert_eq!(role, "admin");
        assert!(verified);
        assert_eq!(
            attempts(db).last(),
            Some(&("success".to_owned(), Some("sso".to_owned())))
        );

        // The second time, the link decides; nothing new is made.
        let mut again = Browser::new();
        let (page, _) = sso_sign_in(
            &app,
            &mut again,
            &idp,
            "alice@acme.test",
            Some("//evil.test"),
        )
        .await;
        assert_eq!(page.status, StatusCode::SEE_OTHER);
        assert!(!page.location().contains("evil"), "{}", page.location());
        assert_eq!(links(db), 1);
        let detail = expect(
            &app,
            &w,
            Who::StaffOwnerKey,
            "GET",
            &format!("/users/{alice}"),
            None,
            200,
        )
        .await;
        let ids = detail.body["linked_identities"]
            .as_array()
            .expect("identities");
        assert_eq!(ids.len(), 1);
        assert_eq!(ids[0]["provider"], "org:acme");
        assert_eq!(ids[0]["provider_user_id"], "alice");
        assert_eq!(ids[0]["email"], "alice@acme.test");
        assert!(ids[0]["linked_at"].is_string());
    });
});

both!(a_wrong_or_replayed_state_is_refused_and_recorded, |db| {
    let Some(idp) = start_idp() else { return };
    block_on(async {
        let fd = frontdesk(db);
        let app = crate::host_app!(fd);
        let w = world_data(db);
        configure(&app, &w, &idp).await;

        // A callback this browser did not start (its state cookie differs).
        let mut b = Browser::new();
        let login = b.get(&app, "/auth/login").await;
        let csrf = login.csrf();
        let start = b
            .post(
                &app,
                "/auth/sso/start",
                &[("email", "alice@acme.test"), ("csrf_token", &csrf)],
            )
            .await;
        let back = idp.authorize(start.location());
        let mut other = Browser::new();
        let refused = other.get(&app, &back).await;
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
        assert_eq!(last_reason(db), "sso_state_mismatch");
        assert!(other.session().is_none());

        // A state in the URL that is not the one sent off.
        let forged = back.replace("state=", "state=x");
        let refused = b.get(&app, &forged).await;
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
        assert_eq!(last_reason(db), "sso_state_mismatch");
        assert_eq!(session_count(db), 0);

        // The real one works once...
        let mut b2 = Browser::new();
        let (page, back) = sso_sign_in(&app, &mut b2, &idp, "alice@acme.test", None).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER);
        let sessions_after = session_count(db);
        // ...and its code and state replayed (the cookie put back) are refused.
        let cookie = b.jar.get("frontdesk_sso_state").cloned();
        let mut replay = Browser::new();
        let state = url::Url::parse(&format!("{APP}{back}"))
            .expect("url")
            .query_pairs()
            .find(|(k, _)| k == "state")
            .map(|(_, v)| v.into_owned())
            .expect("state");
        replay.jar.insert("frontdesk_sso_state".into(), state);
        let refused = replay.get(&app, &back).await;
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
        assert_eq!(last_reason(db), "sso_state_mismatch");
        assert_eq!(session_count(db), sessions_after);
        let _ = cookie;
    });
});

both!(spoiled_id_tokens_are_refused_and_recorded, |db| {
    let Some(idp) = start_idp() else { return };
    block_on(async {
        let fd = frontdesk(db);
        let app = crate::host_app!(fd);
        let w = world_data(db);
        configure(&app, &w, &idp).await;
        for account in ["tampered", "foreign", "expired", "nonce"] {
            let mut b = Browser::new();
            let email = format!("{account}@acme.test");
            let (page, _) = sso_sign_in(&app, &mut b, &idp, &email, None).await;
            assert_eq!(page.status, StatusCode::UNAUTHORIZED, "{account}");
            assert_eq!(
                attempts(db).last(),
                Some(&("sso_token_invalid".to_owned(), Some("sso".to_owned()))),
                "{account}"
            );
            assert!(b.session().is_none(), "{account}");
            assert_eq!(user_id(db, &email), None, "{account}");
        }
        assert_eq!(links(db), 0);
        assert_eq!(session_count(db), 0);
    });
});

both!(
    an_unverified_email_never_links_and_jit_keeps_to_the_domains,
    |db| {
        let Some(idp) = start_idp() else { return };
        block_on(async {
            let fd = frontdesk(db);
            let app = crate::host_app!(fd);
            let w = world_data(db);
            configure(&app, &w, &idp).await;
            let existing = user(db, "existing@acme.test", None, None, true);

            // The provider says existing@acme.test but not that it verified it.
            let mut b = Browser::new();
            let (page, _) = sso_sign_in(&app, &mut b, &idp, "unverified@acme.test", None).await;
            assert_eq!(page.status, StatusCode::UNAUTHORIZED);
            assert_eq!(last_reason(db), "sso_no_account");
            assert_eq!(links(db), 0);
            // Nor does an unverified newcomer get an account.
            let (page, _) = sso_sign_in(&app, &mut b, &idp, "newcomer@acme.test", None).await;
            assert_eq!(page.status, StatusCode::UNAUTHORIZED);
            assert_eq!(user_id(db, "newcomer@acme.test"), None);
            // A verified email outside acme's domains: no account either.
            let (page, _) = sso_sign_in(&app, &mut b, &idp, "outsider@acme.test", None).await;
            assert_eq!(page.status, StatusCode::UNAUTHORIZED);
            assert_eq!(last_reason(db), "sso_no_account");
            assert_eq!(user_id(db, "carol@elsewhere.test"), None);
            assert!(b.session().is_none());

            // Verified and in the domains: linked to the existing account, which
            // joins acme with the default role.
            let (page, _) = sso_sign_in(&app, &mut b, &idp, "existing@acme.test", None).await;
            assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
            let linked: Vec<i64> = linked_identities::table
                .select(linked_identities::user_id)
                .load(&mut *db.conn())
                .expect("links");
            assert_eq!(linked, vec![existing.id]);
            let role: String = memberships::table
                .filter(memberships::user_id.eq(existing.id))
                .filter(memberships::organization_id.eq(w.acme.id))
                .select(memberships::role)
                .first(&mut *db.conn())
                .expect("member now");
            assert_eq!(role, "admin");
        });
    }
);

both!(
    require_sso_blocks_password_sign_in_except_exempt_users,
    |db| {
        let Some(idp) = start_idp() else { return };
        block_on(async {
            let fd = frontdesk(db);
            let app = crate::host_app!(fd);
            let w = world_data(db);
            let mut config = idp.config();
            config["require_sso"] = json!(true);
            let saved = expect(
                &app,
                &w,
                Who::AcmeOwnerKey,
                "PUT",
                "/organizations/acme/identity-provider",
                Some(config),
                200,
            )
            .await;
            assert_eq!(saved.body["require_sso"], true);

            let mut b = Browser::new();
            let page = b.login(&app, "member@acme.test", PASSWORD).await;
            assert_eq!(page.status, StatusCode::UNAUTHORIZED);
            assert!(page.body.contains("single sign-on"), "{}", page.body);
            assert_eq!(last_reason(db), "sso_required");
            assert!(b.session().is_none());
            // A wrong password says nothing of SSO.
            let page = b.login(&app, "member@acme.test", "wrong password!").await;
            assert!(!page.body.contains("identity provider"));
            assert_eq!(last_reason(db), "bad_password");
            // Not a member of acme: unaffected.
            user(
                db,
                "solo@elsewhere.test",
                None,
                Some((w.globex.id, frontdesk_core::OrgRole::Member)),
                true,
            );
            let page = Browser::new()
                .login(&app, "solo@elsewhere.test", PASSWORD)
                .await;
            assert_eq!(page.status, StatusCode::SEE_OTHER);

            // The escape hatch: an exempt user signs in with the password.
            sso::set_exempt(&mut db.conn(), &Actor::system(), w.acme_member.id, true)
                .expect("exempt");
            let page = Browser::new()
                .login(&app, "member@acme.test", PASSWORD)
                .await;
            assert_eq!(page.status, StatusCode::SEE_OTHER);
            let audited: i64 = audit_events::table
                .filter(audit_events::action.eq("user.sso_exemption.grant"))
                .count()
                .get_result(&mut *db.conn())
                .expect("audit");
            assert_eq!(audited, 1);
            sso::set_exempt(&mut db.conn(), &Actor::system(), w.acme_member.id, false)
                .expect("revoke");
            let page = Browser::new()
                .login(&app, "member@acme.test", PASSWORD)
                .await;
            assert_eq!(page.status, StatusCode::UNAUTHORIZED);
        });
    }
);

both!(unlinking_keeps_a_way_in, |db| {
    let Some(idp) = start_idp() else { return };
    block_on(async {
        let fd = frontdesk(db);
        let app = crate::host_app!(fd);
        let w = world_data(db);
        configure(&app, &w, &idp).await;
        // alice exists only through SSO: her one identity is her last way in.
        let mut b = Browser::new();
        sso_sign_in(&app, &mut b, &idp, "alice@acme.test", None).await;
        let alice = user_id(db, "alice@acme.test").expect("alice");
        let id = sso::identities(&mut db.conn(), alice).expect("ids")[0].id;
        let own = Actor::user(alice, None, Vec::new());
        assert!(sso::unlink(&mut db.conn(), &own, alice, id).is_err());
        assert_eq!(links(db), 1);
        // Another user cannot unlink it; an admin of her organization can.
        let stranger = Actor::user(w.globex_member.id, None, Vec::new());
        assert!(sso::unlink(&mut db.conn(), &stranger, alice, id).is_err());
        let admin =
            frontdesk_core::users::actor_for(&mut db.conn(), w.acme_owner.id, None).expect("actor");
        sso::unlink(&mut db.conn(), &admin, alice, id).expect("admin unlinks");
        assert_eq!(links(db), 0);
        let audited: i64 = audit_events::table
            .filter(audit_events::action.eq("user.identity.unlink"))
            .count()
            .get_result(&mut *db.conn())
            .expect("audit");
        assert_eq!(audited, 1);

        // A user with a password may unlink their identity.
        sso_sign_in(&app, &mut Browser::new(), &idp, "admin@acme.test", None).await;
        let admin_id = w.acme_admin.id;
        let id = sso::identities(&mut db.conn(), admin_id).expect("ids")[0].id;
        sso::unlink(
            &mut db.conn(),
            &Actor::user(admin_id, None, Vec::new()),
            admin_id,
            id,
        )
        .expect("own unlink with a password left");
        assert_eq!(links(db), 0);
    });
});

both!(the_client_secret_is_sealed_and_never_answered, |db| {
    let Some(idp) = start_idp() else { return };
    block_on(async {
        let fd = frontdesk(db);
        let app = crate::host_app!(fd);
        let w = world_data(db);
        let saved = configure(&app, &w, &idp).await;
        assert!(!saved.raw.contains(CLIENT_SECRET));
        assert!(!saved.raw.contains("client_secret"));
        let got = expect(
            &app,
            &w,
            Who::AcmeAdminKey,
            "GET",
            "/organizations/acme/identity-provider",
            None,
            200,
        )
        .await;
        assert!(!got.raw.contains(CLIENT_SECRET));
        assert_eq!(got.body["configured"], true);
        let sealed: String = identity_providers::table
            .select(identity_providers::client_secret_sealed)
            .first(&mut *db.conn())
            .expect("row");
        assert!(sealed.starts_with("v1."));
        assert!(!sealed.contains(CLIENT_SECRET));
        let details: Vec<String> = audit_events::table
            .select(audit_events::details)
            .load(&mut *db.conn())
            .expect("audit");
        assert!(details.iter().all(|d| !d.contains(CLIENT_SECRET)));
        let openapi = expect(
            &app,
            &w,
            Who::StaffOwnerKey,
            "GET",
            "/openapi.json",
            None,
            200,
        )
        .await;
        assert!(!openapi.raw.contains(CLIENT_SECRET));

        // Saved again without the secret: the stored one is kept and works.
        let mut config = idp.config();
        config
            .as_object_mut()
            .expect("object")
            .remove("client_secret");
        configure_with(&app, &w, config).await;
        let (page, _) = sso_sign_in(&app, &mut Browser::new(), &idp, "alice@acme.test", None).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);

        // Removed: the identities linked through it go with it.
        assert_eq!(links(db), 1);
        expect(
            &app,
            &w,
            Who::StaffOwnerKey,
            "DELETE",
            "/organizations/acme/identity-provider",
            None,
            204,
        )
        .await;
        assert_eq!(links(db), 0);
        let got = expect(
            &app,
            &w,
            Who::StaffOwnerKey,
            "GET",
            "/organizations/acme/identity-provider",
            None,
            200,
        )
        .await;
        assert_eq!(got.body["configured"], false);
    });
});

async fn configure_with<S, B>(app: &S, w: &World, config: Value) -> Answer
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    expect(
        app,
        w,
        Who::StaffOwnerKey,
        "PUT",
        "/organizations/acme/identity-provider",
        Some(config),
        200,
    )
    .await
}

both!(
    only_owners_and_staff_configure_and_the_issuer_is_checked,
    |db| {
        block_on(async {
            let fd = frontdesk(db);
            let app = crate::host_app!(fd);
            let w = world_data(db);
            let body = json!({
                "issuer": "http://127.0.0.1:9",
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "domains": ["acme.test"],
            });
            let path = "/organizations/acme/identity-provider";
            // Another organization's admin: not even there. acme's admin: not an owner.
            expect(
                &app,
                &w,
                Who::GlobexAdminKey,
                "PUT",
                path,
                Some(body.clone()),
                404,
            )
            .await;
            expect(
                &app,
                &w,
                Who::AcmeAdminKey,
                "PUT",
                path,
                Some(body.clone()),
                403,
            )
            .await;
            expect(
                &app,
                &w,
                Who::StaffViewerKey,
                "PUT",
                path,
                Some(body.clone()),
                403,
            )
            .await;
            // An issuer nobody answers at: a quick, clear 400 naming the issuer.
            let t = std::time::Instant::now();
            let a = expect(
                &app,
                &w,
                Who::AcmeOwnerKey,
                "PUT",
                path,
                Some(body.clone()),
                400,
            )
            .await;
            assert!(a.raw.contains("issuer"), "{}", a.raw);
            assert!(t.elapsed() < std::time::Duration::from_secs(10));
            let mut plain = body.clone();
            plain["issuer"] = json!("http://idp.example");
            expect(&app, &w, Who::AcmeOwnerKey, "PUT", path, Some(plain), 400).await;
            let mut owner_role = body.clone();
            owner_role["default_role"] = json!("owner");
            expect(
                &app,
                &w,
                Who::AcmeOwnerKey,
                "PUT",
                path,
                Some(owner_role),
                400,
            )
            .await;
            let n: i64 = identity_providers::table
                .count()
                .get_result(&mut *db.conn())
                .expect("count");
            assert_eq!(n, 0);

            let Some(idp) = start_idp() else { return };
            let mut good = idp.config();
            expect(
                &app,
                &w,
                Who::AcmeOwnerKey,
                "PUT",
                path,
                Some(good.clone()),
                200,
            )
            .await;
            // globex cannot claim acme's domain.
            good["domains"] = json!(["acme.test"]);
            expect(
                &app,
                &w,
                Who::StaffOwnerKey,
                "PUT",
                "/organizations/globex/identity-provider",
                Some(good),
                409,
            )
            .await;
        });
    }
);

both!(
    the_second_factor_follows_unless_the_trusted_provider_did_it,
    |db| {
        let Some(idp) = start_idp() else { return };
        block_on(async {
            let fd = frontdesk(db);
            let app = crate::host_app!(fd);
            let w = world_data(db);
            configure(&app, &w, &idp).await;
            // Both have an authenticator app; the provider says `amr: [pwd, otp]`
            // of mfa@ and `[pwd]` of admin@.
            let mfa_user = user(
                db,
                "mfa@acme.test",
                None,
                Some((w.acme.id, frontdesk_core::OrgRole::Member)),
                false,
            );
            crate::mfa::enrol(db, &mfa_user);
            crate::mfa::enrol(db, &w.acme_admin);

            // Not trusted: the second step follows, and no session before it.
            let mut b = Browser::new();
            let (page, _) = sso_sign_in(&app, &mut b, &idp, "mfa@acme.test", None).await;
            assert_eq!(page.status, StatusCode::SEE_OTHER);
            assert_eq!(page.location(), "/auth/mfa");
            assert!(b.session().is_none());
            assert_eq!(
                attempts(db).last(),
                Some(&("mfa_required".to_owned(), Some("sso".to_owned())))
            );

            // Trusted: the provider's `amr` stands for the second factor...
            let mut config = idp.config();
            config["trust_idp_mfa"] = json!(true);
            configure_with(&app, &w, config).await;
            let mut b = Browser::new();
            let (page, _) = sso_sign_in(&app, &mut b, &idp, "mfa@acme.test", None).await;
            assert_eq!(page.status, StatusCode::SEE_OTHER);
            assert!(!page.location().contains("/mfa"), "{}", page.location());
            assert!(b.session().is_some());
            // ...only when it names one.
            let mut b = Browser::new();
            let (page, _) = sso_sign_in(&app, &mut b, &idp, "admin@acme.test", None).await;
            assert_eq!(page.location(), "/auth/mfa");
            assert!(b.session().is_none());
        });
    }
);

both!(admins_see_and_unlink_identities_on_the_user_page, |db| {
    let Some(idp) = start_idp() else { return };
    block_on(async {
        let fd = frontdesk(db);
        let app = crate::host_app!(fd);
        let w = world_data(db);
        configure(&app, &w, &idp).await;
        sso_sign_in(&app, &mut Browser::new(), &idp, "alice@acme.test", None).await;
        let alice = user_id(db, "alice@acme.test").expect("alice");
        let (mut admin, _) = sign_in(&app, "owner@staff.test").await;
        let page = admin.get(&app, &format!("/admin/users/{alice}")).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.body.contains("org:acme"), "the identity is listed");
        let identity = sso::identities(&mut db.conn(), alice).expect("ids")[0].id;
        let csrf = page.csrf();

        // The exemption from require-SSO, switched on the page.
        let res = admin
            .post(
                &app,
                &format!("/admin/users/{alice}/sso-exemption"),
                &[("exempt", "1"), ("csrf_token", &csrf)],
            )
            .await;
        assert_eq!(res.status, StatusCode::SEE_OTHER);
        assert!(sso::is_exempt(&mut db.conn(), alice).expect("exempt"));

        let res = admin
            .post(
                &app,
                &format!("/admin/users/{alice}/identities/{identity}/unlink"),
                &[("csrf_token", &csrf)],
            )
            .await;
        assert_eq!(res.status, StatusCode::SEE_OTHER);
        assert_eq!(links(db), 0);
        let actor: String = audit_events::table
            .filter(audit_events::action.eq("user.identity.unlink"))
            .select(audit_events::actor)
            .first(&mut *db.conn())
            .expect("audited");
        assert_eq!(actor, format!("user:{}", w.staff_owner.id));
    });
});

both!(
    owners_configure_the_provider_on_the_organization_page,
    |db| {
        let Some(idp) = start_idp() else { return };
        block_on(async {
            let fd = frontdesk(db);
            let app = crate::host_app!(fd);
            let w = world_data(db);
            let page_uri = format!("/admin/organizations/{}", w.acme.id);
            let save_uri = format!("{page_uri}/identity-provider");
            let form = |csrf: &str, issuer: &str| {
                vec![
                    ("csrf_token".to_owned(), csrf.to_owned()),
                    ("issuer".to_owned(), issuer.to_owned()),
                    ("client_id".to_owned(), CLIENT_ID.to_owned()),
                    ("client_secret".to_owned(), CLIENT_SECRET.to_owned()),
                    ("domains".to_owned(), "acme.test".to_owned()),
                    ("default_role".to_owned(), "member".to_owned()),
                    ("require_sso".to_owned(), "1".to_owned()),
                ]
            };
            let providers = || -> i64 {
                identity_providers::table
                    .count()
                    .get_result(&mut *db.conn())
                    .expect("count")
            };

            // acme's admin (not an owner) sees the redirect URI, not the form,
            // and cannot save.
            let (mut admin, _) = sign_in(&app, "admin@acme.test").await;
            let page = admin.get(&app, &page_uri).await;
            assert!(page.body.contains("callback"), "the redirect URI is shown");
            assert!(!page.body.contains("Save identity provider"));
            let csrf = page.csrf();
            let f = form(&csrf, &idp.issuer);
            let pairs: Vec<(&str, &str)> =
                f.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let res = admin.post(&app, &save_uri, &pairs).await;
            assert!(
                res.status.is_client_error() || res.location().contains("error"),
                "{}",
                res.status
            );
            assert_eq!(providers(), 0);

            // The staff owner saves; an unreachable issuer is refused first.
            let (mut owner, _) = sign_in(&app, "owner@staff.test").await;
            let page = owner.get(&app, &page_uri).await;
            assert!(page.body.contains("Save identity provider"));
            let csrf = page.csrf();
            let f = form(&csrf, "http://127.0.0.1:9");
            let pairs: Vec<(&str, &str)> =
                f.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let res = owner.post(&app, &save_uri, &pairs).await;
            assert_eq!(res.status, StatusCode::SEE_OTHER);
            assert_eq!(providers(), 0);
            let f = form(&csrf, &idp.issuer);
            let pairs: Vec<(&str, &str)> =
                f.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let res = owner.post(&app, &save_uri, &pairs).await;
            assert_eq!(res.status, StatusCode::SEE_OTHER);
            assert_eq!(providers(), 1);
            let page = owner.get(&app, &page_uri).await;
            assert!(page.body.contains("Remove identity provider"));
            assert!(!page.body.contains(CLIENT_SECRET));
            let require: bool = identity_providers::table
                .select(identity_providers::require_sso)
                .first(&mut *db.conn())
                .expect("row");
            assert!(require);

            let res = owner
                .post(
                    &app,
                    &format!("{save_uri}/remove"),
                    &[("csrf_token", &csrf)],
                )
                .await;
            assert_eq!(res.status, StatusCode::SEE_OTHER);
            assert_eq!(providers(), 0);
        });
    }
);
