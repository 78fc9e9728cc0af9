//! Host-wide social providers, against real servers on loopback: a
//! GitHub-like provider (the `oauth2-mock-server` package, shaped by
//! `tests/fixtures/sso/github.mjs`: GitHub's paths, `/user` and
//! `/user/emails`, the account picked by the authorization request's
//! `login`), and for OpenID Connect the `oidc-provider` fixture of the
//! single sign-on tests. Without Node or the packages the tests say SKIPPED
//! and pass, unless `FRONTDESK_REQUIRE_SSO=1`.

use std::process::{Child, Command, Stdio};

use actix_http::Request;
use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::StatusCode;
use diesel::prelude::*;
use frontdesk::Provider;
use frontdesk_core::schema::{
    audit_events, identity_providers, linked_identities, login_attempts, mfa_factors, sessions,
    users,
};
use frontdesk_core::signup::SignupPolicy;

use crate::both;
use crate::support::TestDb;
use crate::web_app::{block_on, builder, user_with_password, Browser, Page, PASSWORD};

const CLIENT_ID: &str = "frontdesk-social-test";
const CLIENT_SECRET: &str = "gh-s3cret-never-shown";
const APP: &str = "http://app.test";

/// The GitHub-like provider, ended when dropped.
struct Gh {
    child: Child,
    base: String,
}

impl Drop for Gh {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the provider, or `None` (with a SKIPPED note) when Node or the
/// package is missing, unless `FRONTDESK_REQUIRE_SSO=1`.
fn start_github() -> Option<Gh> {
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
    if !node_ok || !modules.join("oauth2-mock-server").exists() {
        if required {
            panic!(
                "FRONTDESK_REQUIRE_SSO=1 but node or oauth2-mock-server (in {}) is missing",
                modules.display()
            );
        }
        eprintln!("SKIPPED (sso): node or the oauth2-mock-server package is missing (see .ci/run)");
        return None;
    }
    let mut child = Command::new("node")
        .arg(root.join("tests/fixtures/sso/github.mjs"))
        .arg(&modules)
        .arg(format!("{APP}/auth/sso/callback"))
        .arg(CLIENT_ID)
        .arg(CLIENT_SECRET)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("node starts");
    let base = crate::sso::listening(&mut child, "the GitHub-like provider");
    Some(Gh { child, base })
}

impl Gh {
    fn provider(&self, secret: &str) -> Provider {
        Provider::github(CLIENT_ID, secret).endpoints(
            format!("{}/login/oauth/authorize", self.base),
            format!("{}/login/oauth/access_token", self.base),
            format!("{}/user", self.base),
        )
    }

    /// The same server as a plain OAuth2 provider with OpenID claims.
    fn standard(&self) -> Provider {
        Provider::oauth2(
            "mock",
            "Mock ID",
            format!("{}/login/oauth/authorize", self.base),
            format!("{}/login/oauth/access_token", self.base),
            format!("{}/userinfo", self.base),
            CLIENT_ID,
            CLIENT_SECRET,
        )
    }
}

/// Follows the provider's redirect for `account` (the user picking it
/// there): the path and query the provider sends the browser back to.
fn at_provider(url: &str, account: &str) -> String {
    let agent = ureq::AgentBuilder::new().redirects(0).build();
    let url = format!("{url}&login={account}&login_hint={account}@acme.test");
    let mut url = url;
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

/// Every response a test saw, to look for the client secret in.
#[derive(Default)]
struct Seen(Vec<String>);

impl Seen {
    fn keep(&mut self, page: &Page) {
        let headers: Vec<String> = page
            .headers
            .iter()
            .map(|(k, v)| format!("{k}: {}", v.to_str().unwrap_or("")))
            .collect();
        self.0
            .push(format!("{}\n{}", headers.join("\n"), page.body));
    }
}

/// "Continue with {name}" on the login page, then the provider as
/// `account`: the app's answer to the callback.
async fn social_sign_in<S, B>(
    app: &S,
    b: &mut Browser,
    (key, name): (&str, &str),
    account: &str,
    next: Option<&str>,
    seen: &mut Seen,
) -> Page
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let login = b.get(app, "/auth/login").await;
    seen.keep(&login);
    assert!(
        login.body.contains(&format!("Continue with {name}"))
            && login.body.contains(&format!("sso/social/{key}\"")),
        "the login page offers {name}: {}",
        login.body
    );
    let csrf = login.csrf();
    let mut form = vec![("csrf_token", csrf.as_str())];
    if let Some(n) = next {
        form.push(("next", n));
    }
    let start = b.post(app, &format!("/auth/sso/social/{key}"), &form).await;
    seen.keep(&start);
    // A page that moves on to the provider (not a redirect: see `to_provider`).
    assert_eq!(start.status, StatusCode::OK, "{}", start.body);
    assert!(start.header("refresh").is_some(), "{}", start.body);
    let to = start.location().to_owned();
    assert!(to.contains("code_challenge_method=S256"), "{to}");
    assert!(to.contains("state="), "{to}");
    let back = at_provider(&to, account);
    let page = b.get(app, &back).await;
    seen.keep(&page);
    page
}

/// Links the provider's `account` from the signed-in `b`'s account page.
async fn link_from_account_page<S, B>(
    app: &S,
    b: &mut Browser,
    key: &str,
    account: &str,
    seen: &mut Seen,
) -> Page
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let page = b.get(app, "/auth/linked-accounts").await;
    seen.keep(&page);
    assert_eq!(page.status, StatusCode::OK);
    let csrf = page.csrf();
    let start = b
        .post(
            app,
            &format!("/auth/linked-accounts/{key}/link"),
            &[("csrf_token", &csrf)],
        )
        .await;
    seen.keep(&start);
    // A page that moves on to the provider (not a redirect: see `to_provider`).
    assert_eq!(start.status, StatusCode::OK, "{}", start.body);
    assert!(start.header("refresh").is_some(), "{}", start.body);
    let back = at_provider(start.location(), account);
    let page = b.get(app, &back).await;
    seen.keep(&page);
    page
}

fn last_attempt(db: &TestDb) -> (String, Option<String>) {
    login_attempts::table
        .order(login_attempts::id.desc())
        .select((login_attempts::reason, login_attempts::method))
        .first(&mut *db.conn())
        .expect("an attempt")
}

fn links(db: &TestDb) -> Vec<(i64, String, String)> {
    linked_identities::table
        .order(linked_identities::id)
        .select((
            linked_identities::user_id,
            linked_identities::provider,
            linked_identities::provider_user_id,
        ))
        .load(&mut *db.conn())
        .expect("links")
}

fn user_id(db: &TestDb, email: &str) -> Option<i64> {
    users::table
        .filter(users::email.eq(email))
        .select(users::id)
        .first(&mut *db.conn())
        .optional()
        .expect("user")
}

fn session_count(db: &TestDb) -> i64 {
    sessions::table
        .count()
        .get_result(&mut *db.conn())
        .expect("sessions")
}

fn audited(db: &TestDb, action: &str) -> i64 {
    audit_events::table
        .filter(audit_events::action.eq(action))
        .count()
        .get_result(&mut *db.conn())
        .expect("audit")
}

const GITHUB: (&str, &str) = ("github", "GitHub");

both!(
    linking_from_the_account_page_then_signing_in_with_it,
    |db| {
        let Some(gh) = start_github() else { return };
        block_on(async {
            let fd = builder(db)
                .social(gh.provider(CLIENT_SECRET))
                .build()
                .expect("frontdesk");
            let app = crate::host_app!(fd);
            let alice = user_with_password(db, "alice@social.test");
            let mut seen = Seen::default();

            // Signed out, the account page is not there.
            let page = Browser::new().get(&app, "/auth/linked-accounts").await;
            assert!(page.status.is_redirection());
            assert!(page.location().starts_with("/auth/login"));

            // Alice proves the account (password), then links GitHub from it.
            let mut b = Browser::new();
            b.login(&app, "alice@social.test", PASSWORD).await;
            let page = b.get(&app, "/auth/linked-accounts").await;
            assert!(page.body.contains("No account is linked."));
            assert!(page.body.contains("Link your GitHub account"));
            let back = link_from_account_page(&app, &mut b, "github", "alice", &mut seen).await;
            assert_eq!(back.status, StatusCode::SEE_OTHER, "{}", back.body);
            assert_eq!(back.location(), "/auth/linked-accounts?result=linked");
            assert_eq!(
                links(db),
                vec![(alice.id, "social:github".to_owned(), "1001".to_owned())]
            );
            assert_eq!(audited(db, "user.identity.link"), 1);
            let page = b.get(&app, "/auth/linked-accounts?result=linked").await;
            assert!(page.body.contains("The account was linked."));
            assert!(page.body.contains("<td>GitHub</td>"), "{}", page.body);
            assert!(page.body.contains("alice@social.test"));
            assert!(!page.body.contains("Link your GitHub account"));
            seen.keep(&page);

            // Linking it again changes nothing.
            let again = link_from_account_page(&app, &mut b, "github", "alice", &mut seen).await;
            assert_eq!(again.location(), "/auth/linked-accounts?result=already");
            assert_eq!(links(db).len(), 1);
            assert_eq!(audited(db, "user.identity.link"), 1);

            // Now "Continue with GitHub" signs her in, `next` kept.
            let mut fresh = Browser::new();
            let page =
                social_sign_in(&app, &mut fresh, GITHUB, "alice", Some("/notes"), &mut seen).await;
            assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
            assert_eq!(page.location(), "/notes");
            let notes = fresh.get(&app, "/notes").await;
            assert_eq!(notes.body, "notes of alice@social.test");
            assert_eq!(
                last_attempt(db),
                ("success".to_owned(), Some("sso".to_owned()))
            );
            // An open redirect in `next` is dropped.
            let mut other = Browser::new();
            let page = social_sign_in(
                &app,
                &mut other,
                GITHUB,
                "alice",
                Some("//evil.test"),
                &mut seen,
            )
            .await;
            assert_eq!(page.status, StatusCode::SEE_OTHER);
            assert!(!page.location().contains("evil"), "{}", page.location());
            // Nothing new was made.
            assert_eq!(links(db).len(), 1);
            assert_eq!(user_id(db, "alice@social.test"), Some(alice.id));
            for s in &seen.0 {
                assert!(!s.contains(CLIENT_SECRET), "the client secret leaked: {s}");
            }
        });
    }
);

both!(
    an_account_with_the_same_email_is_never_linked_by_the_callback,
    |db| {
        let Some(gh) = start_github() else { return };
        block_on(async {
            // Sign-up open, so nothing but the rule keeps the callback from
            // taking the account.
            let fd = builder(db)
                .social(gh.provider(CLIENT_SECRET))
                .signup_policy(SignupPolicy::Open)
                .build()
                .expect("frontdesk");
            let app = crate::host_app!(fd);
            let existing = user_with_password(db, "existing@social.test");
            let mut seen = Seen::default();

            // GitHub vouches for existing@social.test (verified, primary):
            // still neither linked nor signed in.
            let mut b = Browser::new();
            let page = social_sign_in(&app, &mut b, GITHUB, "existing", None, &mut seen).await;
            assert_eq!(page.status, StatusCode::UNAUTHORIZED, "{}", page.body);
            assert!(
                page.body.contains("already exists") && page.body.contains("Linked accounts"),
                "it says to sign in and link: {}",
                page.body
            );
            assert_eq!(
                last_attempt(db),
                ("sso_link_required".to_owned(), Some("sso".to_owned()))
            );
            assert!(links(db).is_empty());
            assert!(b.session().is_none());
            assert_eq!(session_count(db), 0);

            // An unverified claim of the same address: nothing either, and
            // not even told apart.
            let page = social_sign_in(&app, &mut b, GITHUB, "claimer", None, &mut seen).await;
            assert_eq!(page.status, StatusCode::UNAUTHORIZED);
            assert_eq!(last_attempt(db).0, "sso_no_account");
            assert!(links(db).is_empty());
            assert_eq!(session_count(db), 0);

            // The owner signs in with the password and links it: then it works.
            let mut owner = Browser::new();
            owner.login(&app, "existing@social.test", PASSWORD).await;
            let back =
                link_from_account_page(&app, &mut owner, "github", "existing", &mut seen).await;
            assert_eq!(back.location(), "/auth/linked-accounts?result=linked");
            let mut b = Browser::new();
            let page = social_sign_in(&app, &mut b, GITHUB, "existing", None, &mut seen).await;
            assert_eq!(page.status, StatusCode::SEE_OTHER);
            assert_eq!(
                links(db),
                vec![(existing.id, "social:github".to_owned(), "1003".to_owned())]
            );
            let notes = b.get(&app, "/notes").await;
            assert_eq!(notes.body, "notes of existing@social.test");

            // An identity linked to someone else is not moved by a link.
            let mut alice = Browser::new();
            user_with_password(db, "alice@social.test");
            alice.login(&app, "alice@social.test", PASSWORD).await;
            let back =
                link_from_account_page(&app, &mut alice, "github", "existing", &mut seen).await;
            assert_eq!(back.location(), "/auth/linked-accounts?result=other");
            assert_eq!(links(db).len(), 1);
            assert_eq!(links(db)[0].0, existing.id);
        });
    }
);

both!(
    new_accounts_only_with_sign_up_open_and_a_verified_email,
    |db| {
        let Some(gh) = start_github() else { return };
        block_on(async {
            let mut seen = Seen::default();
            // Sign-up closed (the default): no account for a newcomer.
            let closed = builder(db)
                .social(gh.provider(CLIENT_SECRET))
                .build()
                .expect("frontdesk");
            let app = crate::host_app!(closed);
            let page =
                social_sign_in(&app, &mut Browser::new(), GITHUB, "alice", None, &mut seen).await;
            assert_eq!(page.status, StatusCode::UNAUTHORIZED);
            assert_eq!(last_attempt(db).0, "sso_no_account");
            assert_eq!(user_id(db, "alice@social.test"), None);

            // Open to other domains only: neither.
            let elsewhere = builder(db)
                .social(gh.provider(CLIENT_SECRET))
                .signup_policy(SignupPolicy::AllowedDomains(vec!["other.test".into()]))
                .build()
                .expect("frontdesk");
            let app = crate::host_app!(elsewhere);
            let page =
                social_sign_in(&app, &mut Browser::new(), GITHUB, "alice", None, &mut seen).await;
            assert_eq!(page.status, StatusCode::UNAUTHORIZED);
            assert_eq!(user_id(db, "alice@social.test"), None);

            let open = builder(db)
                .social(gh.provider(CLIENT_SECRET))
                .signup_policy(SignupPolicy::Open)
                .build()
                .expect("frontdesk");
            let app = crate::host_app!(open);
            // Open, but the provider did not verify the address.
            let page = social_sign_in(
                &app,
                &mut Browser::new(),
                GITHUB,
                "unverified",
                None,
                &mut seen,
            )
            .await;
            assert_eq!(page.status, StatusCode::UNAUTHORIZED);
            assert_eq!(last_attempt(db).0, "sso_no_account");
            assert_eq!(user_id(db, "newbie@social.test"), None);
            // Only a public profile email (no user:email grant): unverified too.
            let page = social_sign_in(
                &app,
                &mut Browser::new(),
                GITHUB,
                "private",
                None,
                &mut seen,
            )
            .await;
            assert_eq!(page.status, StatusCode::UNAUTHORIZED);
            assert_eq!(user_id(db, "private@social.test"), None);
            assert!(links(db).is_empty());

            // Open and verified: the account is made (the primary address, not
            // the other verified one), verified, named, linked, signed in.
            let mut b = Browser::new();
            let page = social_sign_in(&app, &mut b, GITHUB, "alice", None, &mut seen).await;
            assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
            let (id, first, last, verified): (i64, String, String, bool) = users::table
                .filter(users::email.eq("alice@social.test"))
                .select((
                    users::id,
                    users::first_name,
                    users::last_name,
                    users::email_verified,
                ))
                .first(&mut *db.conn())
                .expect("created");
            assert_eq!(
                (first.as_str(), last.as_str(), verified),
                ("Alice", "Anders", true)
            );
            assert_eq!(user_id(db, "other@social.test"), None);
            assert_eq!(
                links(db),
                vec![(id, "social:github".to_owned(), "1001".to_owned())]
            );
            assert!(b.session().is_some());
            assert_eq!(
                b.get(&app, "/notes").await.body,
                "notes of alice@social.test"
            );
        });
    }
);

both!(a_wrong_or_replayed_state_is_refused_and_recorded, |db| {
    let Some(gh) = start_github() else { return };
    block_on(async {
        let fd = builder(db)
            .social(gh.provider(CLIENT_SECRET))
            .signup_policy(SignupPolicy::Open)
            .build()
            .expect("frontdesk");
        let app = crate::host_app!(fd);

        // A callback this browser did not start.
        let mut b = Browser::new();
        let login = b.get(&app, "/auth/login").await;
        let csrf = login.csrf();
        let start = b
            .post(&app, "/auth/sso/social/github", &[("csrf_token", &csrf)])
            .await;
        let back = at_provider(start.location(), "alice");
        let mut other = Browser::new();
        let refused = other.get(&app, &back).await;
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
        assert_eq!(last_attempt(db).0, "sso_state_mismatch");
        assert_eq!(session_count(db), 0);
        assert_eq!(user_id(db, "alice@social.test"), None);

        // The real one works once...
        let page = b.get(&app, &back).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
        let sessions_after = session_count(db);
        assert_eq!(sessions_after, 1);
        // ...and replayed with its state cookie put back, it is refused.
        let state = url::Url::parse(&format!("{APP}{back}"))
            .expect("url")
            .query_pairs()
            .find(|(k, _)| k == "state")
            .map(|(_, v)| v.into_owned())
            .expect("state");
        let mut replay = Browser::new();
        replay.jar.insert("frontdesk_sso_state".into(), state);
        let refused = replay.get(&app, &back).await;
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
        assert_eq!(last_attempt(db).0, "sso_state_mismatch");
        assert_eq!(session_count(db), sessions_after);

        // A state that is not the one sent off (this browser's cookie holds
        // the real one).
        let mut b = Browser::new();
        let login = b.get(&app, "/auth/login").await;
        let csrf = login.csrf();
        let start = b
            .post(&app, "/auth/sso/social/github", &[("csrf_token", &csrf)])
            .await;
        let back = at_provider(start.location(), "alice");
        let refused = b.get(&app, &back.replace("state=", "state=x")).await;
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
        assert_eq!(last_attempt(db).0, "sso_state_mismatch");
        assert_eq!(session_count(db), sessions_after);

        // A link started by a signed-in user and finished after they
        // signed out: refused, nothing linked.
        let bob = user_with_password(db, "bob@social.test");
        let mut b = Browser::new();
        b.login(&app, "bob@social.test", PASSWORD).await;
        let page = b.get(&app, "/auth/linked-accounts").await;
        let csrf = page.csrf();
        let start = b
            .post(
                &app,
                "/auth/linked-accounts/github/link",
                &[("csrf_token", &csrf)],
            )
            .await;
        let back = at_provider(start.location(), "bob");
        b.jar.remove("frontdesk_session");
        let refused = b.get(&app, &back).await;
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
        assert_eq!(last_attempt(db).0, "sso_state_mismatch");
        assert!(links(db).iter().all(|l| l.0 != bob.id));
    });
});

both!(unlinking_the_last_way_in_is_refused, |db| {
    let Some(gh) = start_github() else { return };
    block_on(async {
        let fd = builder(db)
            .social(gh.provider(CLIENT_SECRET))
            .signup_policy(SignupPolicy::Open)
            .build()
            .expect("frontdesk");
        let app = crate::host_app!(fd);
        let mut seen = Seen::default();

        // Alice's account came from GitHub: no password, no passkey.
        let mut b = Browser::new();
        social_sign_in(&app, &mut b, GITHUB, "alice", None, &mut seen).await;
        let page = b.get(&app, "/auth/linked-accounts").await;
        assert!(page.body.contains("<td>GitHub</td>"));
        let id = links(db).len();
        assert_eq!(id, 1);
        let identity: i64 = linked_identities::table
            .select(linked_identities::id)
            .first(&mut *db.conn())
            .expect("id");
        let csrf = page.csrf();
        let refused = b
            .post(
                &app,
                &format!("/auth/linked-accounts/{identity}/unlink"),
                &[("csrf_token", &csrf)],
            )
            .await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST);
        assert!(
            refused.body.contains("last way to sign in"),
            "{}",
            refused.body
        );
        assert_eq!(links(db).len(), 1);
        assert_eq!(audited(db, "user.identity.unlink"), 0);
        // Without the CSRF token: refused too.
        let forged = b
            .post(
                &app,
                &format!("/auth/linked-accounts/{identity}/unlink"),
                &[("csrf_token", "nope")],
            )
            .await;
        assert_eq!(forged.status, StatusCode::FORBIDDEN);

        // Bob has a password: his GitHub identity may go.
        let bob = user_with_password(db, "bob@social.test");
        let mut b = Browser::new();
        b.login(&app, "bob@social.test", PASSWORD).await;
        link_from_account_page(&app, &mut b, "github", "bob", &mut seen).await;
        let bobs: i64 = linked_identities::table
            .filter(linked_identities::user_id.eq(bob.id))
            .select(linked_identities::id)
            .first(&mut *db.conn())
            .expect("bob's");
        let page = b.get(&app, "/auth/linked-accounts").await;
        let csrf = page.csrf();
        // Not someone else's.
        let theirs = b
            .post(
                &app,
                &format!("/auth/linked-accounts/{identity}/unlink"),
                &[("csrf_token", &csrf)],
            )
            .await;
        assert_eq!(theirs.status, StatusCode::NOT_FOUND);
        assert_eq!(links(db).len(), 2);
        let done = b
            .post(
                &app,
                &format!("/auth/linked-accounts/{bobs}/unlink"),
                &[("csrf_token", &csrf)],
            )
            .await;
        assert_eq!(done.status, StatusCode::OK, "{}", done.body);
        assert!(done.body.contains("The account was unlinked."));
        assert_eq!(links(db).len(), 1);
        assert_eq!(audited(db, "user.identity.unlink"), 1);
        // Unlinked, GitHub no longer signs him in (his email has an account).
        let page = social_sign_in(&app, &mut Browser::new(), GITHUB, "bob", None, &mut seen).await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED);
        assert_eq!(last_attempt(db).0, "sso_link_required");
    });
});

both!(the_client_secret_is_sent_but_never_shown, |db| {
    let Some(gh) = start_github() else { return };
    block_on(async {
        let mut seen = Seen::default();
        // The provider refuses a wrong secret: the right one is what we send.
        let wrong = builder(db)
            .social(gh.provider("not-the-secret"))
            .signup_policy(SignupPolicy::Open)
            .build()
            .expect("frontdesk");
        let app = crate::host_app!(wrong);
        let page =
            social_sign_in(&app, &mut Browser::new(), GITHUB, "alice", None, &mut seen).await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED);
        assert_eq!(last_attempt(db).0, "sso_token_invalid");

        let fd = builder(db)
            .social(gh.provider(CLIENT_SECRET))
            .signup_policy(SignupPolicy::Open)
            .build()
            .expect("frontdesk");
        let app = crate::host_app!(fd);
        let mut b = Browser::new();
        let page = social_sign_in(&app, &mut b, GITHUB, "alice", None, &mut seen).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER);
        for path in ["/auth/linked-accounts", "/auth/mfa/setup", "/auth/sessions"] {
            let page = b.get(&app, path).await;
            assert_eq!(page.status, StatusCode::OK, "{path}");
            seen.keep(&page);
        }
        // A refused sign-in's page too.
        user_with_password(db, "existing@social.test");
        let page = social_sign_in(
            &app,
            &mut Browser::new(),
            GITHUB,
            "existing",
            None,
            &mut seen,
        )
        .await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED);
        assert!(seen.0.len() > 10);
        for s in &seen.0 {
            assert!(!s.contains(CLIENT_SECRET), "the client secret leaked: {s}");
        }
        // Nor in what was recorded.
        let details: Vec<String> = audit_events::table
            .select(audit_events::details)
            .load(&mut *db.conn())
            .expect("audit");
        assert!(details.iter().all(|d| !d.contains(CLIENT_SECRET)));
    });
});

both!(a_plain_oauth2_provider_with_openid_claims, |db| {
    let Some(gh) = start_github() else { return };
    block_on(async {
        let fd = builder(db)
            .social(gh.standard())
            .signup_policy(SignupPolicy::Open)
            .build()
            .expect("frontdesk");
        let app = crate::host_app!(fd);
        let mut seen = Seen::default();
        let mut b = Browser::new();
        let page = social_sign_in(&app, &mut b, ("mock", "Mock ID"), "bob", None, &mut seen).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
        let bob = user_id(db, "bob@social.test").expect("created");
        assert_eq!(
            links(db),
            vec![(bob, "social:mock".to_owned(), "bob".to_owned())]
        );
        // Unverified claims make nothing.
        let page = social_sign_in(
            &app,
            &mut Browser::new(),
            ("mock", "Mock ID"),
            "unverified",
            None,
            &mut seen,
        )
        .await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED);
        assert_eq!(user_id(db, "newbie@social.test"), None);
    });
});

both!(an_openid_connect_social_provider, |db| {
    let Some(idp) = crate::sso::start_idp() else {
        return;
    };
    block_on(async {
        let fd = builder(db)
            .social(Provider::oidc(
                "corp",
                "Corp ID",
                idp.issuer.clone(),
                crate::sso::CLIENT_ID,
                crate::sso::CLIENT_SECRET,
            ))
            .build()
            .expect("frontdesk");
        let app = crate::host_app!(fd);
        let mut seen = Seen::default();
        // An account with the provider's verified email is not taken.
        let alice = user_with_password(db, "alice@acme.test");
        let page = social_sign_in(
            &app,
            &mut Browser::new(),
            ("corp", "Corp ID"),
            "alice",
            None,
            &mut seen,
        )
        .await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED, "{}", page.body);
        assert_eq!(last_attempt(db).0, "sso_link_required");
        assert!(links(db).is_empty());

        // Linked from her page, the ID token's subject signs her in.
        let mut b = Browser::new();
        b.login(&app, "alice@acme.test", PASSWORD).await;
        let back = link_from_account_page(&app, &mut b, "corp", "alice", &mut seen).await;
        assert_eq!(back.location(), "/auth/linked-accounts?result=linked");
        assert_eq!(
            links(db),
            vec![(alice.id, "social:corp".to_owned(), "alice".to_owned())]
        );
        let mut fresh = Browser::new();
        let page = social_sign_in(
            &app,
            &mut fresh,
            ("corp", "Corp ID"),
            "alice",
            Some("/notes"),
            &mut seen,
        )
        .await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
        assert_eq!(page.location(), "/notes");
        // A spoiled ID token is refused.
        let page = social_sign_in(
            &app,
            &mut Browser::new(),
            ("corp", "Corp ID"),
            "tampered",
            None,
            &mut seen,
        )
        .await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED);
        assert_eq!(last_attempt(db).0, "sso_token_invalid");
        for s in &seen.0 {
            assert!(!s.contains(crate::sso::CLIENT_SECRET), "leaked: {s}");
        }
    });
});

both!(a_passkey_counts_as_a_way_in_only_when_it_signs_in, |db| {
    let Some(gh) = start_github() else { return };
    block_on(async {
        let base = || {
            builder(db)
                .social(gh.provider(CLIENT_SECRET))
                .signup_policy(SignupPolicy::Open)
        };
        let mut seen = Seen::default();
        // Alice came from GitHub (no password), signed in, then added a passkey.
        let second_factor = base()
            .passkeys(frontdesk::PasskeyPolicy::SecondFactor)
            .build()
            .expect("frontdesk");
        let app = crate::host_app!(second_factor);
        let mut b = Browser::new();
        social_sign_in(&app, &mut b, GITHUB, "alice", None, &mut seen).await;
        let alice = user_id(db, "alice@social.test").expect("alice");
        let now = chrono::Utc::now().naive_utc();
        diesel::insert_into(mfa_factors::table)
            .values((
                mfa_factors::user_id.eq(alice),
                mfa_factors::kind.eq("passkey"),
                mfa_factors::name.eq("Laptop"),
                mfa_factors::confirmed_at.eq(Some(now)),
                mfa_factors::created_at.eq(now),
            ))
            .execute(&mut *db.conn())
            .expect("passkey");
        let identity: i64 = linked_identities::table
            .select(linked_identities::id)
            .first(&mut *db.conn())
            .expect("id");
        let path = format!("/auth/linked-accounts/{identity}/unlink");
        // A passkey that is only a second factor does not sign in alone.
        let csrf = b.get(&app, "/auth/linked-accounts").await.csrf();
        let refused = b.post(&app, &path, &[("csrf_token", &csrf)]).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
        assert!(refused.body.contains("last way to sign in"));
        assert_eq!(links(db).len(), 1);

        // Where passkeys sign in alone, it is a way in: the identity may go.
        let sign_in = base()
            .passkeys(frontdesk::PasskeyPolicy::SignIn)
            .build()
            .expect("frontdesk");
        let app = crate::host_app!(sign_in);
        let csrf = b.get(&app, "/auth/linked-accounts").await.csrf();
        let done = b.post(&app, &path, &[("csrf_token", &csrf)]).await;
        assert_eq!(done.status, StatusCode::OK, "{}", done.body);
        assert!(links(db).is_empty());
    });
});

both!(an_organization_that_requires_sso_is_not_bypassed, |db| {
    let Some(gh) = start_github() else { return };
    block_on(async {
        let fd = builder(db)
            .social(gh.provider(CLIENT_SECRET))
            .build()
            .expect("frontdesk");
        let app = crate::host_app!(fd);
        let org = frontdesk_core::organizations::create(
            &mut db.conn(),
            &frontdesk_core::Actor::system(),
            "acme",
            "Acme",
            "",
        )
        .expect("org");
        let member = crate::api_v1_support::user(
            db,
            "member@social.test",
            None,
            Some((org.id, frontdesk_core::OrgRole::Member)),
            true,
        );
        let now = chrono::Utc::now().naive_utc();
        diesel::insert_into(identity_providers::table)
            .values((
                identity_providers::organization_id.eq(org.id),
                identity_providers::provider_key.eq("org:acme"),
                identity_providers::issuer.eq("https://idp.acme.test"),
                identity_providers::client_id.eq("acme"),
                identity_providers::client_secret_sealed.eq("unused"),
                identity_providers::require_sso.eq(true),
                identity_providers::created_at.eq(now),
                identity_providers::updated_at.eq(now),
            ))
            .execute(&mut *db.conn())
            .expect("provider");
        // Her GitHub identity is linked, but acme requires its own provider.
        diesel::insert_into(linked_identities::table)
            .values((
                linked_identities::user_id.eq(member.id),
                linked_identities::provider.eq("social:github"),
                linked_identities::provider_user_id.eq("1001"),
                linked_identities::linked_at.eq(now),
            ))
            .execute(&mut *db.conn())
            .expect("link");
        let mut seen = Seen::default();
        let mut b = Browser::new();
        let page = social_sign_in(&app, &mut b, GITHUB, "alice", None, &mut seen).await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED, "{}", page.body);
        assert_eq!(last_attempt(db).0, "sso_required");
        assert!(page.body.contains("identity provider"));
        assert!(b.session().is_none());
        assert_eq!(session_count(db), 0);
    });
});
