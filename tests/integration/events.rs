//! Events from core: every change made through a page, the API or an import
//! reaches the listeners registered on the builder exactly once, after its
//! commit and with no pooled connection held; a refused change emits
//! nothing; a listener's veto rolls the change back with its message; the old
//! `Hooks` fire from imports too.

use std::sync::{Arc, Mutex, OnceLock};

use actix_web::http::StatusCode;
use actix_web::test as actix_test;
use diesel::prelude::*;
use frontdesk::{Event, EventListener, Veto};
use frontdesk_core::db::Pool;
use frontdesk_core::schema::{audit_events, users as users_t};
use serde_json::{json, Value};

use crate::api_v1_support::*;
use crate::both;
use crate::support::TestDb;
use crate::web_app::{block_on, builder};

/// What a listener heard: each event as `kind target by actor`, plus what
/// the database said about its user when `after_commit` ran.
#[derive(Clone, Default)]
struct Recorder {
    seen: Arc<Mutex<Vec<String>>>,
    pool: Arc<OnceLock<Pool>>,
    /// Vetoes every event of this kind (`user_suspended`).
    veto: Option<&'static str>,
    /// What `before_commit` was asked, to tell a veto from nothing emitted.
    asked: Arc<Mutex<Vec<String>>>,
}

fn summary(event: &Event) -> (String, Option<i64>, String) {
    let v = serde_json::to_value(event).unwrap_or(Value::Null);
    let kind = v["event"].as_str().unwrap_or("?").to_owned();
    let id = v["user_id"].as_i64();
    let actor = v["actor"].as_str().unwrap_or("").to_owned();
    (kind, id, actor)
}

impl Recorder {
    fn take(&self) -> Vec<String> {
        self.seen
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default()
    }

    /// The user's row as the listener sees it after the commit: its status,
    /// or `gone`. First checks that every connection of frontdesk's pool is
    /// back in it (the tests make one change at a time).
    fn observe(&self, user_id: i64) -> String {
        let Some(pool) = self.pool.get() else {
            return "no pool".into();
        };
        let state = pool.state();
        if state.idle_connections < state.connections {
            return "a pooled connection is still out".into();
        }
        let mut conn = match frontdesk_core::events::checkout(pool) {
            Ok(c) => c,
            Err(e) => return format!("no connection: {e}"),
        };
        match users_t::table
            .find(user_id)
            .select(users_t::status)
            .first::<String>(&mut *conn)
            .optional()
        {
            Ok(Some(s)) => s,
            Ok(None) => "gone".into(),
            Err(e) => format!("error: {e}"),
        }
    }
}

impl EventListener for Recorder {
    fn before_commit(&self, event: &Event) -> Result<(), Veto> {
        let (kind, _, _) = summary(event);
        if let Ok(mut v) = self.asked.lock() {
            v.push(kind.clone());
        }
        match self.veto {
            Some(k) if k == kind => Err(Veto("Billing holds this account open.".into())),
            _ => Ok(()),
        }
    }

    fn after_commit(&self, event: &Event) {
        let (kind, user, actor) = summary(event);
        let line = match user {
            Some(id) => format!("{kind} user:{id} by {actor} [{}]", self.observe(id)),
            None => format!("{kind} by {actor}"),
        };
        if let Ok(mut v) = self.seen.lock() {
            v.push(line);
        }
    }
}

fn app_with(db: &TestDb, rec: &Recorder) -> frontdesk::Frontdesk {
    let fd = builder(db)
        .listener(rec.clone())
        .build()
        .expect("frontdesk");
    let _ = rec.pool.set(fd.pool().clone());
    fd
}

async fn upload<S, B>(app: &S, key: &str, query: &str, csv: &str) -> (u16, Value)
where
    S: actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse<B>,
        Error = actix_web::Error,
    >,
    B: actix_web::body::MessageBody,
{
    let req = actix_test::TestRequest::post()
        .uri(&format!("{API}/import{query}"))
        .insert_header(("content-type", "text/csv"))
        .insert_header(("authorization", format!("Bearer {key}")))
        .set_payload(csv.to_owned());
    let res = actix_test::call_service(app, req.to_request()).await;
    let status = res.status().as_u16();
    let body = actix_test::read_body(res).await;
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

fn status_of(db: &TestDb, id: i64) -> Option<String> {
    users_t::table
        .find(id)
        .select(users_t::status)
        .first(&mut *db.conn())
        .optional()
        .expect("status")
}

fn audit_count(db: &TestDb, action: &str, target: &str) -> i64 {
    audit_events::table
        .filter(audit_events::action.eq(action))
        .filter(audit_events::target.eq(target))
        .count()
        .get_result(&mut *db.conn())
        .expect("count")
}

#[derive(Debug, Clone, Copy)]
enum Path {
    Page,
    Api,
    Import,
    /// The signed-in user's own pages (password, "My sessions") and the
    /// emailed reset link.
    Own,
}

#[derive(Debug, Clone, Copy)]
enum Change {
    Suspend,
    SuspendWithoutReason,
    SuspendForbidden,
    BulkSuspend,
    Delete,
    DeleteForbidden,
    Import,
    ImportDryRun,
    ImportUpdate,
    NewPassword,
    NewPasswordWrongCurrent,
    PasswordReset,
    RevokeOwnSession,
    RevokeOwnOthers,
    RevokeOwnOthersNone,
    Restore,
    OrgRole,
    StaffRole,
    TagAssign,
    TagUnassignNone,
    InviteAndCancel,
    ApiKeyCreateAndRevoke,
}

/// The user's sessions, oldest first.
fn session_ids(db: &TestDb, user_id: i64) -> Vec<i64> {
    use frontdesk_core::schema::sessions;
    sessions::table
        .filter(sessions::user_id.eq(user_id))
        .filter(sessions::revoked_at.is_null())
        .order(sessions::id.asc())
        .select(sessions::id)
        .load(&mut *db.conn())
        .expect("sessions")
}

/// A reset link's raw token for `email`, as the mail would carry it.
fn reset_token(db: &TestDb, email: &str) -> String {
    let mut raw = String::new();
    let sent = frontdesk_core::password_resets::request(
        &mut db.conn(),
        email,
        chrono::Duration::hours(1),
        |u, t, _| {
            raw = t.expose().to_owned();
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
    .expect("request");
    assert!(sent);
    raw
}

/// The `api_key:<id>` actor of the first event delivered so far.
fn api_actor(rec: &Recorder) -> String {
    let got = rec.seen.lock().map(|v| v.clone()).unwrap_or_default();
    let actor = got
        .first()
        .and_then(|l| l.split(" by ").nth(1))
        .and_then(|l| l.split(' ').next())
        .unwrap_or("")
        .to_owned();
    assert!(actor.starts_with("api_key:"), "{got:?}");
    actor
}

const NEW_PASSWORD: &str = "a much longer passphrase 42";

both!(every_change_reaches_the_listeners_once_after_commit, |db| {
    block_on(async {
        let rec = Recorder::default();
        let fd = app_with(db, &rec);
        let app = crate::host_app!(fd);
        let w = world_data(db);
        let staff = w.staff_owner.id;
        let (mut page, csrf) = sign_in(&app, "owner@staff.test").await;
        let key = |who: Who| w.keys.get(&who).cloned().expect("key");
        let admin_key = key(Who::AcmeAdminKey);
        rec.take(); // signing in above is an event of its own

        let cases: Vec<(Path, Change)> = vec![
            (Path::Page, Change::Suspend),
            (Path::Api, Change::Suspend),
            (Path::Page, Change::SuspendWithoutReason),
            (Path::Api, Change::SuspendForbidden),
            (Path::Page, Change::BulkSuspend),
            (Path::Page, Change::Delete),
            (Path::Api, Change::Delete),
            (Path::Api, Change::DeleteForbidden),
            (Path::Import, Change::Import),
            (Path::Import, Change::ImportDryRun),
            (Path::Import, Change::ImportUpdate),
            (Path::Own, Change::NewPassword),
            (Path::Own, Change::NewPasswordWrongCurrent),
            (Path::Own, Change::PasswordReset),
            (Path::Own, Change::RevokeOwnSession),
            (Path::Own, Change::RevokeOwnOthers),
            (Path::Own, Change::RevokeOwnOthersNone),
            (Path::Page, Change::Restore),
            (Path::Api, Change::Restore),
            (Path::Page, Change::OrgRole),
            (Path::Page, Change::StaffRole),
            (Path::Page, Change::TagAssign),
            (Path::Api, Change::TagAssign),
            (Path::Api, Change::TagUnassignNone),
            (Path::Api, Change::InviteAndCancel),
            (Path::Page, Change::ApiKeyCreateAndRevoke),
        ];
        for (n, (path, change)) in cases.into_iter().enumerate() {
            let acme = w.acme.id;
            let fresh = |tag: &str| {
                user(
                    db,
                    &format!("{tag}{n}@acme.test"),
                    None,
                    Some((acme, frontdesk::OrgRole::Member)),
                    false,
                )
                .id
            };
            let a = fresh("a");
            let b = fresh("b");
            // An account that can sign in, for the user's own pages.
            let own_email = format!("own{n}@acme.test");
            let own = user(
                db,
                &own_email,
                None,
                Some((acme, frontdesk::OrgRole::Member)),
                true,
            )
            .id;
            let own_actor = format!("user:{own}");
            let mut mine = None;
            let mut other_browser = None;
            if matches!(path, Path::Own) {
                mine = Some(sign_in(&app, &own_email).await);
                other_browser = Some(sign_in(&app, &own_email).await);
            }
            rec.take(); // the fixtures' own events went to no listener, but be sure
            let page_actor = format!("user:{staff}");
            let expected: Vec<String> = match (path, change) {
                (Path::Page, Change::Suspend) => {
                    let p = page
                        .post(
                            &app,
                            &format!("/admin/users/{a}/suspend"),
                            &[("csrf_token", &csrf), ("reason", "spam")],
                        )
                        .await;
                    assert_eq!(p.status, StatusCode::SEE_OTHER);
                    vec![format!(
                        "user_suspended user:{a} by {page_actor} [suspended]"
                    )]
                }
                (Path::Api, Change::Suspend) => {
                    let r = call(
                        &app,
                        &w,
                        Who::AcmeAdminKey,
                        "POST",
                        &format!("/users/{a}/suspend"),
                        Some(json!({"reason": "spam"})),
                    )
                    .await;
                    assert_eq!(r.status.as_u16(), 200, "{}", r.raw);
                    let got = rec.seen.lock().map(|v| v.clone()).unwrap_or_default();
                    let actor = got
                        .first()
                        .and_then(|l| l.split(" by ").nth(1))
                        .and_then(|l| l.split(' ').next())
                        .unwrap_or("")
                        .to_owned();
                    assert!(actor.starts_with("api_key:"), "{got:?}");
                    vec![format!("user_suspended user:{a} by {actor} [suspended]")]
                }
                (Path::Page, Change::SuspendWithoutReason) => {
                    let p = page
                        .post(
                            &app,
                            &format!("/admin/users/{a}/suspend"),
                            &[("csrf_token", &csrf)],
                        )
                        .await;
                    assert_eq!(p.status, StatusCode::SEE_OTHER);
                    vec![]
                }
                (Path::Api, Change::SuspendForbidden) => {
                    let r = call(
                        &app,
                        &w,
                        Who::AcmeMemberKey,
                        "POST",
                        &format!("/users/{a}/suspend"),
                        Some(json!({"reason": "spam"})),
                    )
                    .await;
                    assert_eq!(r.status.as_u16(), 403, "{}", r.raw);
                    assert_eq!(status_of(db, a).as_deref(), Some("active"));
                    vec![]
                }
                (Path::Page, Change::BulkSuspend) => {
                    let (sa, sb) = (a.to_string(), b.to_string());
                    let p = page
                        .post(
                            &app,
                            "/admin/users/bulk",
                            &[
                                ("csrf_token", &csrf),
                                ("action", "suspend"),
                                ("reason", "spam"),
                                ("ids", &sa),
                                ("ids", &sb),
                            ],
                        )
                        .await;
                    assert_eq!(p.status, StatusCode::SEE_OTHER);
                    vec![
                        format!("user_suspended user:{a} by {page_actor} [suspended]"),
                        format!("user_suspended user:{b} by {page_actor} [suspended]"),
                    ]
                }
                (Path::Page, Change::Delete) => {
                    let email = format!("a{n}@acme.test");
                    let p = page
                        .post(
                            &app,
                            &format!("/admin/users/{a}/delete"),
                            &[("csrf_token", &csrf), ("confirm", &email)],
                        )
                        .await;
                    assert_eq!(p.status, StatusCode::SEE_OTHER);
                    vec![format!("user_deleted user:{a} by {page_actor} [gone]")]
                }
                (Path::Api, Change::Delete) => {
                    let r = call(
                        &app,
                        &w,
                        Who::StaffOwnerKey,
                        "DELETE",
                        &format!("/users/{a}"),
                        None,
                    )
                    .await;
                    assert_eq!(r.status.as_u16(), 204, "{}", r.raw);
                    let got = rec.seen.lock().map(|v| v.clone()).unwrap_or_default();
                    let actor = got
                        .first()
                        .and_then(|l| l.split(" by ").nth(1))
                        .and_then(|l| l.split(' ').next())
                        .unwrap_or("")
                        .to_owned();
                    assert!(actor.starts_with("api_key:"), "{got:?}");
                    vec![format!("user_deleted user:{a} by {actor} [gone]")]
                }
                (Path::Api, Change::DeleteForbidden) => {
                    let r = call(
                        &app,
                        &w,
                        Who::AcmeMemberKey,
                        "DELETE",
                        &format!("/users/{a}"),
                        None,
                    )
                    .await;
                    assert_eq!(r.status.as_u16(), 403, "{}", r.raw);
                    assert!(status_of(db, a).is_some());
                    vec![]
                }
                (Path::Import, Change::Import) => {
                    let csv = format!(
                        "email,first_name,last_name,organization,role\n\
                         imp{n}x@acme.test,I,X,acme,member\n\
                         not-an-email,Bad,Row,acme,member\n\
                         imp{n}y@acme.test,I,Y,acme,member\n"
                    );
                    let (s, report) = upload(&app, &admin_key, "?mode=apply", &csv).await;
                    assert_eq!(s, 200, "{report}");
                    let id = |e: &str| {
                        users_t::table
                            .filter(users_t::email.eq(e))
                            .select(users_t::id)
                            .first::<i64>(&mut *db.conn())
                            .expect("imported")
                    };
                    let (x, y) = (
                        id(&format!("imp{n}x@acme.test")),
                        id(&format!("imp{n}y@acme.test")),
                    );
                    let got = rec.seen.lock().map(|v| v.clone()).unwrap_or_default();
                    let actor = got
                        .first()
                        .and_then(|l| l.split(" by ").nth(1))
                        .and_then(|l| l.split(' ').next())
                        .unwrap_or("")
                        .to_owned();
                    assert!(actor.starts_with("api_key:"), "{got:?}");
                    let mut want = vec![
                        format!("user_created user:{x} by {actor} [active]"),
                        format!("user_created user:{y} by {actor} [active]"),
                    ];
                    want.sort();
                    want.push(format!("import_finished by {actor}"));
                    want
                }
                (Path::Import, Change::ImportDryRun) => {
                    let csv = format!(
                        "email,first_name,last_name,organization,role\n\
                         dry{n}@acme.test,D,R,acme,member\n"
                    );
                    let (s, report) = upload(&app, &admin_key, "?mode=dry_run", &csv).await;
                    assert_eq!(s, 200, "{report}");
                    vec![]
                }
                (Path::Import, Change::ImportUpdate) => {
                    // `a` gets a new first name, `b` the same values: one
                    // update, one unchanged row.
                    let csv = format!(
                        "email,first_name,last_name,organization,role\n\
                         a{n}@acme.test,Renamed,a{n},acme,member\n\
                         b{n}@acme.test,Test,b{n},acme,member\n"
                    );
                    let (s, report) =
                        upload(&app, &admin_key, "?mode=dry_run&update_existing=true", &csv).await;
                    assert_eq!(s, 200, "{report}");
                    assert_eq!(
                        rec.take(),
                        Vec::<String>::new(),
                        "a dry run changes nothing"
                    );
                    let (s, report) =
                        upload(&app, &admin_key, "?mode=apply&update_existing=true", &csv).await;
                    assert_eq!(s, 200, "{report}");
                    assert_eq!(report["updated"], 1, "{report}");
                    let got = rec.seen.lock().map(|v| v.clone()).unwrap_or_default();
                    let actor = got
                        .first()
                        .and_then(|l| l.split(" by ").nth(1))
                        .and_then(|l| l.split(' ').next())
                        .unwrap_or("")
                        .to_owned();
                    assert!(actor.starts_with("api_key:"), "{got:?}");
                    assert_eq!(audit_count(db, "user.update", &format!("user:{a}")), 1);
                    vec![
                        format!("user_updated user:{a} by {actor} [active]"),
                        format!("import_finished by {actor}"),
                    ]
                }
                (Path::Own, Change::NewPassword) => {
                    let (b1, c1) = mine.as_mut().expect("signed in");
                    let p = b1
                        .post(
                            &app,
                            "/auth/password",
                            &[
                                ("csrf_token", c1.as_str()),
                                ("current_password", crate::web_app::PASSWORD),
                                ("password", NEW_PASSWORD),
                                ("password_confirm", NEW_PASSWORD),
                            ],
                        )
                        .await;
                    assert_eq!(p.status, StatusCode::OK, "{}", p.body);
                    assert_eq!(session_ids(db, own).len(), 1, "the other session ended");
                    vec![format!(
                        "password_changed user:{own} by {own_actor} [active]"
                    )]
                }
                (Path::Own, Change::NewPasswordWrongCurrent) => {
                    let (b1, c1) = mine.as_mut().expect("signed in");
                    let p = b1
                        .post(
                            &app,
                            "/auth/password",
                            &[
                                ("csrf_token", c1.as_str()),
                                ("current_password", "not the password at all"),
                                ("password", NEW_PASSWORD),
                                ("password_confirm", NEW_PASSWORD),
                            ],
                        )
                        .await;
                    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
                    vec![]
                }
                (Path::Own, Change::PasswordReset) => {
                    let token = reset_token(db, &own_email);
                    let mut anon = crate::web_app::Browser::new();
                    let link = format!("/auth/password-reset/{token}");
                    let csrf = anon.get(&app, &link).await.csrf();
                    let p = anon
                        .post(
                            &app,
                            &link,
                            &[
                                ("csrf_token", csrf.as_str()),
                                ("password", NEW_PASSWORD),
                                ("password_confirm", NEW_PASSWORD),
                            ],
                        )
                        .await;
                    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
                    assert!(session_ids(db, own).is_empty(), "every session ended");
                    // The used link changes nothing a second time.
                    let again = anon
                        .post(
                            &app,
                            &link,
                            &[
                                ("csrf_token", csrf.as_str()),
                                ("password", NEW_PASSWORD),
                                ("password_confirm", NEW_PASSWORD),
                            ],
                        )
                        .await;
                    assert_eq!(again.status, StatusCode::BAD_REQUEST);
                    vec![format!("password_reset user:{own} by {own_actor} [active]")]
                }
                (Path::Own, Change::RevokeOwnSession) => {
                    let (b1, c1) = mine.as_mut().expect("signed in");
                    let ids = session_ids(db, own);
                    let newest = *ids.last().expect("two sessions");
                    let p = b1
                        .post(
                            &app,
                            &format!("/auth/sessions/{newest}/revoke"),
                            &[("csrf_token", c1.as_str())],
                        )
                        .await;
                    assert_eq!(p.status, StatusCode::SEE_OTHER);
                    // Already ended: refused, no second event.
                    let p = b1
                        .post(
                            &app,
                            &format!("/auth/sessions/{newest}/revoke"),
                            &[("csrf_token", c1.as_str())],
                        )
                        .await;
                    assert_eq!(p.status, StatusCode::NOT_FOUND);
                    // Someone else's session: refused.
                    let staff_session = *session_ids(db, staff).last().expect("staff session");
                    let p = b1
                        .post(
                            &app,
                            &format!("/auth/sessions/{staff_session}/revoke"),
                            &[("csrf_token", c1.as_str())],
                        )
                        .await;
                    assert_eq!(p.status, StatusCode::NOT_FOUND);
                    vec![format!(
                        "sessions_revoked user:{own} by {own_actor} [active]"
                    )]
                }
                (Path::Own, Change::RevokeOwnOthers) => {
                    let (b1, c1) = mine.as_mut().expect("signed in");
                    let p = b1
                        .post(
                            &app,
                            "/auth/sessions/revoke-others",
                            &[("csrf_token", c1.as_str())],
                        )
                        .await;
                    assert_eq!(p.status, StatusCode::SEE_OTHER);
                    assert_eq!(session_ids(db, own).len(), 1);
                    vec![format!(
                        "sessions_revoked user:{own} by {own_actor} [active]"
                    )]
                }
                (Path::Own, Change::RevokeOwnOthersNone) => {
                    // Signed out elsewhere first: nothing left to end.
                    let (ob, oc) = other_browser.as_mut().expect("signed in");
                    let p = ob
                        .post(&app, "/auth/logout", &[("csrf_token", oc.as_str())])
                        .await;
                    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
                    let (b1, c1) = mine.as_mut().expect("signed in");
                    let p = b1
                        .post(
                            &app,
                            "/auth/sessions/revoke-others",
                            &[("csrf_token", c1.as_str())],
                        )
                        .await;
                    assert_eq!(p.status, StatusCode::SEE_OTHER);
                    vec![]
                }
                (path, Change::Restore) => {
                    frontdesk_core::users::suspend(
                        &mut db.conn(),
                        &frontdesk_core::Actor::system(),
                        a,
                        "spam",
                    )
                    .expect("suspend");
                    let by = if matches!(path, Path::Page) {
                        let p = page
                            .post(
                                &app,
                                &format!("/admin/users/{a}/restore"),
                                &[("csrf_token", &csrf)],
                            )
                            .await;
                        assert_eq!(p.status, StatusCode::SEE_OTHER);
                        page_actor.clone()
                    } else {
                        let r = call(
                            &app,
                            &w,
                            Who::StaffOwnerKey,
                            "POST",
                            &format!("/users/{a}/restore"),
                            None,
                        )
                        .await;
                        assert_eq!(r.status.as_u16(), 200, "{}", r.raw);
                        api_actor(&rec)
                    };
                    vec![format!("user_restored user:{a} by {by} [active]")]
                }
                (Path::Page, Change::OrgRole) => {
                    let p = page
                        .post(
                            &app,
                            &format!("/admin/users/{a}/org-role"),
                            &[
                                ("csrf_token", &csrf),
                                ("organization", &acme.to_string()),
                                ("role", "admin"),
                            ],
                        )
                        .await;
                    assert_eq!(p.status, StatusCode::SEE_OTHER);
                    vec![format!(
                        "membership_role_changed user:{a} by {page_actor} [active]"
                    )]
                }
                (Path::Page, Change::StaffRole) => {
                    let p = page
                        .post(
                            &app,
                            &format!("/admin/users/{a}/staff-role"),
                            &[("csrf_token", &csrf), ("role", "viewer")],
                        )
                        .await;
                    assert_eq!(p.status, StatusCode::SEE_OTHER);
                    vec![format!(
                        "staff_role_changed user:{a} by {page_actor} [active]"
                    )]
                }
                (path, Change::TagAssign) => {
                    let tag = frontdesk_core::tags::create(
                        &mut db.conn(),
                        &frontdesk_core::Actor::system(),
                        &format!("t{n}"),
                    )
                    .expect("tag")
                    .id;
                    let by = if matches!(path, Path::Page) {
                        let p = page
                            .post(
                                &app,
                                &format!("/admin/users/{a}/tags"),
                                &[("csrf_token", &csrf), ("tag", &tag.to_string())],
                            )
                            .await;
                        assert_eq!(p.status, StatusCode::SEE_OTHER);
                        page_actor.clone()
                    } else {
                        let r = call(
                            &app,
                            &w,
                            Who::StaffOwnerKey,
                            "PUT",
                            &format!("/users/{a}/tags/{tag}"),
                            None,
                        )
                        .await;
                        assert_eq!(r.status.as_u16(), 204, "{}", r.raw);
                        api_actor(&rec)
                    };
                    vec![format!("tag_assigned user:{a} by {by} [active]")]
                }
                (Path::Api, Change::TagUnassignNone) => {
                    // A tag the user does not have: nothing changes, no event.
                    let tag = frontdesk_core::tags::create(
                        &mut db.conn(),
                        &frontdesk_core::Actor::system(),
                        &format!("u{n}"),
                    )
                    .expect("tag")
                    .id;
                    let r = call(
                        &app,
                        &w,
                        Who::StaffOwnerKey,
                        "DELETE",
                        &format!("/users/{a}/tags/{tag}"),
                        None,
                    )
                    .await;
                    assert!(r.status.as_u16() < 500, "{}", r.raw);
                    vec![]
                }
                (Path::Api, Change::InviteAndCancel) => {
                    let r = call(
                        &app,
                        &w,
                        Who::AcmeAdminKey,
                        "POST",
                        "/invitations",
                        Some(json!({"organization": "acme", "email": format!("inv{n}@example.com"), "role": "member"})),
                    )
                    .await;
                    assert_eq!(r.status.as_u16(), 201, "{}", r.raw);
                    let by = api_actor(&rec);
                    let id = r.body["id"].as_i64().expect("invitation id");
                    let r = call(
                        &app,
                        &w,
                        Who::AcmeAdminKey,
                        "POST",
                        &format!("/invitations/{id}/cancel"),
                        None,
                    )
                    .await;
                    assert_eq!(r.status.as_u16(), 200, "{}", r.raw);
                    // Cancelled already: refused, no second event.
                    let again = call(
                        &app,
                        &w,
                        Who::AcmeAdminKey,
                        "POST",
                        &format!("/invitations/{id}/cancel"),
                        None,
                    )
                    .await;
                    assert!(again.status.is_client_error(), "{}", again.raw);
                    vec![
                        format!("invitation_sent by {by}"),
                        format!("invitation_cancelled by {by}"),
                    ]
                }
                (Path::Page, Change::ApiKeyCreateAndRevoke) => {
                    // API keys are managed by a signed-in admin only.
                    let name = format!("k{n}");
                    let p = page
                        .post(
                            &app,
                            "/admin/api-keys",
                            &[("csrf_token", &csrf), ("name", &name), ("role", "viewer")],
                        )
                        .await;
                    assert!(
                        p.status.is_success() || p.status.is_redirection(),
                        "{}",
                        p.body
                    );
                    let id: i64 = {
                        use frontdesk_core::schema::api_keys;
                        api_keys::table
                            .filter(api_keys::name.eq(&name))
                            .select(api_keys::id)
                            .first(&mut *db.conn())
                            .expect("key")
                    };
                    let p = page
                        .post(
                            &app,
                            &format!("/admin/api-keys/{id}/revoke"),
                            &[("csrf_token", &csrf)],
                        )
                        .await;
                    assert_eq!(p.status, StatusCode::SEE_OTHER);
                    vec![
                        format!("api_key_created by {page_actor}"),
                        format!("api_key_revoked by {page_actor}"),
                    ]
                }
                other => panic!("no such case {other:?}"),
            };
            let mut got = rec.take();
            // The users an import creates come in its batch's order, the
            // summary last.
            if matches!(change, Change::Import) {
                let last = got.pop();
                got.sort();
                got.extend(last);
            }
            assert_eq!(got, expected, "{path:?} {change:?}");
        }
    })
});

both!(a_veto_rolls_the_change_back_and_says_why, |db| {
    block_on(async {
        let rec = Recorder {
            veto: Some("user_suspended"),
            ..Recorder::default()
        };
        let fd = app_with(db, &rec);
        let app = crate::host_app!(fd);
        let w = world_data(db);
        let id = w.acme_member.id;
        let (mut page, csrf) = sign_in(&app, "owner@staff.test").await;
        rec.take();

        // The page: back to the user with the listener's message; nothing saved.
        let p = page
            .post(
                &app,
                &format!("/admin/users/{id}/suspend"),
                &[("csrf_token", &csrf), ("reason", "spam")],
            )
            .await;
        assert_eq!(p.status, StatusCode::SEE_OTHER);
        let shown = page.get(&app, p.location()).await;
        assert!(
            shown.body.contains("Billing holds this account open."),
            "{}",
            shown.body
        );
        assert_eq!(status_of(db, id).as_deref(), Some("active"));
        assert_eq!(audit_count(db, "user.suspend", &format!("user:{id}")), 0);

        // The API: 409 with the message as the problem's detail.
        let r = call(
            &app,
            &w,
            Who::AcmeAdminKey,
            "POST",
            &format!("/users/{id}/suspend"),
            Some(json!({"reason": "spam"})),
        )
        .await;
        assert_eq!(r.status.as_u16(), 409, "{}", r.raw);
        assert_eq!(r.problem_type(), "urn:frontdesk:problem:vetoed");
        assert_eq!(r.body["detail"], "Billing holds this account open.");
        assert_eq!(status_of(db, id).as_deref(), Some("active"));
        assert_eq!(audit_count(db, "user.suspend", &format!("user:{id}")), 0);

        // A bulk suspension is one transaction: one veto keeps every user.
        let other = w.globex_member.id;
        let (sa, sb) = (other.to_string(), id.to_string());
        let p = page
            .post(
                &app,
                "/admin/users/bulk",
                &[
                    ("csrf_token", &csrf),
                    ("action", "suspend"),
                    ("reason", "spam"),
                    ("ids", &sa),
                    ("ids", &sb),
                ],
            )
            .await;
        assert_eq!(p.status, StatusCode::SEE_OTHER);
        assert_eq!(status_of(db, other).as_deref(), Some("active"));
        assert_eq!(status_of(db, id).as_deref(), Some("active"));
        // Asked, refused, and nothing delivered.
        assert!(rec
            .asked
            .lock()
            .map(|v| v.iter().any(|k| k == "user_suspended"))
            .unwrap_or(false));
        assert_eq!(rec.take(), Vec::<String>::new());

        // Other changes still go through.
        let r = call(
            &app,
            &w,
            Who::StaffOwnerKey,
            "DELETE",
            &format!("/users/{other}"),
            None,
        )
        .await;
        assert_eq!(r.status.as_u16(), 204, "{}", r.raw);
        assert_eq!(status_of(db, other), None);
    })
});

/// Vetoes every event of these kinds.
#[derive(Clone)]
struct VetoKinds(&'static [&'static str]);

impl EventListener for VetoKinds {
    fn before_commit(&self, event: &Event) -> Result<(), Veto> {
        let (kind, _, _) = summary(event);
        if self.0.contains(&kind.as_str()) {
            return Err(Veto(format!("Billing refuses {kind}.")));
        }
        Ok(())
    }
}

both!(
    a_veto_on_the_users_own_pages_rolls_back_and_says_why,
    |db| {
        block_on(async {
            let fd = builder(db)
                .listener(VetoKinds(&[
                    "password_changed",
                    "password_reset",
                    "sessions_revoked",
                    "user_updated",
                ]))
                .build()
                .expect("frontdesk");
            let app = crate::host_app!(fd);
            let w = world_data(db);
            let email = "own@acme.test";
            let id = user(
                db,
                email,
                None,
                Some((w.acme.id, frontdesk::OrgRole::Member)),
                true,
            )
            .id;
            let hash_of = || {
                users_t::table
                    .find(id)
                    .select(users_t::password_hash)
                    .first::<Option<String>>(&mut *db.conn())
                    .expect("hash")
            };
            let before = hash_of();
            let (mut me, csrf) = sign_in(&app, email).await;
            let (_elsewhere, _) = sign_in(&app, email).await;

            // Changing the password: the form again with the listener's
            // message; the old password and the other session stay.
            let p = me
                .post(
                    &app,
                    "/auth/password",
                    &[
                        ("csrf_token", csrf.as_str()),
                        ("current_password", crate::web_app::PASSWORD),
                        ("password", NEW_PASSWORD),
                        ("password_confirm", NEW_PASSWORD),
                    ],
                )
                .await;
            assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", p.body);
            assert!(
                p.body.contains("Billing refuses password_changed."),
                "{}",
                p.body
            );
            assert_eq!(hash_of(), before);
            assert_eq!(session_ids(db, id).len(), 2);
            assert_eq!(
                audit_count(db, "user.password.change", &format!("user:{id}")),
                0
            );

            // Signing out everywhere else: refused with the message, both stay.
            let p = me
                .post(
                    &app,
                    "/auth/sessions/revoke-others",
                    &[("csrf_token", csrf.as_str())],
                )
                .await;
            assert_eq!(p.status, StatusCode::CONFLICT, "{}", p.body);
            assert!(
                p.body.contains("Billing refuses sessions_revoked."),
                "{}",
                p.body
            );
            assert_eq!(session_ids(db, id).len(), 2);

            // A reset link: the form again with the message; the link stays
            // unused (it still opens) and the password is the old one.
            let token = reset_token(db, email);
            let mut anon = crate::web_app::Browser::new();
            let link = format!("/auth/password-reset/{token}");
            let csrf = anon.get(&app, &link).await.csrf();
            let p = anon
                .post(
                    &app,
                    &link,
                    &[
                        ("csrf_token", csrf.as_str()),
                        ("password", NEW_PASSWORD),
                        ("password_confirm", NEW_PASSWORD),
                    ],
                )
                .await;
            assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", p.body);
            assert!(
                p.body.contains("Billing refuses password_reset."),
                "{}",
                p.body
            );
            assert_eq!(hash_of(), before);
            assert_eq!(session_ids(db, id).len(), 2);
            assert_eq!(anon.get(&app, &link).await.status, StatusCode::OK);

            // An update-mode import: refused, the name stays.
            let key = w.keys.get(&Who::AcmeAdminKey).cloned().expect("key");
            let csv = "email,first_name,last_name,organization,role\nown@acme.test,Renamed,Own,acme,member\n";
            let (s, report) = upload(&app, &key, "?mode=apply&update_existing=true", csv).await;
            assert_ne!(s, 200, "{report}");
            assert!(
                report.to_string().contains("Billing refuses user_updated."),
                "{report}"
            );
            let first: String = users_t::table
                .find(id)
                .select(users_t::first_name)
                .first(&mut *db.conn())
                .expect("name");
            assert_eq!(first, "Test");
            assert_eq!(audit_count(db, "user.update", &format!("user:{id}")), 0);
        })
    }
);

/// Hooks that write down what they were told.
#[derive(Clone, Default)]
struct Hooked(Arc<Mutex<Vec<String>>>);

impl frontdesk::Hooks for Hooked {
    fn user_created(&self, user: &frontdesk_core::users::User) {
        if let Ok(mut v) = self.0.lock() {
            v.push(format!("created {}", user.email));
        }
    }
    fn user_deleted(&self, user_id: i64) {
        if let Ok(mut v) = self.0.lock() {
            v.push(format!("deleted {user_id}"));
        }
    }
}

both!(hooks_fire_for_imports_and_api_deletes, |db| {
    block_on(async {
        let hooks = Hooked::default();
        let fd = builder(db).hooks(hooks.clone()).build().expect("frontdesk");
        let app = crate::host_app!(fd);
        let w = world_data(db);
        let key = w.keys.get(&Who::AcmeAdminKey).cloned().expect("key");
        let csv = "email,first_name,last_name,organization,role\n\
                   hook1@acme.test,H,One,acme,member\n\
                   hook2@acme.test,H,Two,acme,member\n";
        let (s, report) = upload(&app, &key, "?mode=apply", csv).await;
        assert_eq!(s, 200, "{report}");
        let mut got = hooks.0.lock().map(|v| v.clone()).unwrap_or_default();
        got.sort();
        assert_eq!(
            got,
            vec!["created hook1@acme.test", "created hook2@acme.test"]
        );

        let id = w.acme_member.id;
        let r = call(
            &app,
            &w,
            Who::StaffOwnerKey,
            "DELETE",
            &format!("/users/{id}"),
            None,
        )
        .await;
        assert_eq!(r.status.as_u16(), 204, "{}", r.raw);
        let got = hooks.0.lock().map(|v| v.clone()).unwrap_or_default();
        assert_eq!(got.last().cloned(), Some(format!("deleted {id}")));
        assert_eq!(got.len(), 3, "each hook once: {got:?}");
    })
});

/// Vetoes the second `OrganizationUpdated` it is asked about.
#[derive(Clone, Default)]
struct VetoSecond(Arc<std::sync::atomic::AtomicUsize>);

impl EventListener for VetoSecond {
    fn before_commit(&self, event: &Event) -> Result<(), Veto> {
        if matches!(event, Event::OrganizationUpdated { .. })
            && self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 1
        {
            return Err(Veto("Domains are managed by billing.".into()));
        }
        Ok(())
    }
}

both!(an_organization_update_is_one_transaction, |db| {
    block_on(async {
        let fd = builder(db)
            .listener(VetoSecond::default())
            .build()
            .expect("frontdesk");
        let app = crate::host_app!(fd);
        let w = world_data(db);
        // The rename passes, the domains are vetoed: neither is saved.
        let r = call(
            &app,
            &w,
            Who::StaffOwnerKey,
            "PATCH",
            "/organizations/acme",
            Some(json!({"name": "Acme Two", "allowed_email_domains": ["acme.test"]})),
        )
        .await;
        assert_eq!(r.status.as_u16(), 409, "{}", r.raw);
        assert_eq!(r.body["detail"], "Domains are managed by billing.");
        let name: String = frontdesk_core::schema::organizations::table
            .find(w.acme.id)
            .select(frontdesk_core::schema::organizations::name)
            .first(&mut *db.conn())
            .expect("org");
        assert_eq!(name, "Acme");
        let renamed = audit_events::table
            .filter(audit_events::action.eq("organization.rename"))
            .count()
            .get_result::<i64>(&mut *db.conn())
            .expect("count");
        assert_eq!(renamed, 0);
    })
});
