//! The extension API of the admin, through the demo's own notes extension:
//! nav item and page in the admin chrome, users-list column loaded once per
//! page, bulk action checked by the authorization function and audited, user
//! page section; and the registry refusing bad or repeated ids.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use actix_web::http::StatusCode;
use diesel::prelude::*;
use frontdesk::extensions::{Extension, UserColumn};
use frontdesk_core::schema::audit_events;
use frontdesk_core::{Actor, OrgRole};

use crate::admin_fixture::{self as fx};
use crate::both;
use crate::host_app;
use crate::support::TestDb;
use crate::web_app::{block_on, builder};

#[path = "../../examples/demo/admin_notes.rs"]
pub mod admin_notes;

use admin_notes::{demo_notes, NotesAdmin};

fn notes_of(db: &TestDb, user: i64) -> Vec<(String, bool)> {
    let mut conn = db.conn();
    demo_notes::table
        .filter(demo_notes::user_id.eq(user))
        .order(demo_notes::id)
        .select((demo_notes::body, demo_notes::archived))
        .load(&mut *conn)
        .expect("notes")
}

fn audit_actions(db: &TestDb, action: &str) -> Vec<String> {
    let mut conn = db.conn();
    audit_events::table
        .filter(audit_events::action.eq(action))
        .order(audit_events::id)
        .select(audit_events::target)
        .load(&mut *conn)
        .expect("audit")
}

/// Tera escapes `/` in attribute values; browsers read both forms alike.
fn plain(html: &str) -> String {
    html.replace("&#x2F;", "/")
}

fn setup_notes(db: &TestDb) {
    let mut conn = db.conn();
    admin_notes::create_table(&mut conn).expect("notes table");
}

both!(
    extension_nav_page_column_and_section_show_the_hosts_data,
    |db| {
        let cast = fx::cast(db);
        setup_notes(db);
        let mut conn = db.conn();
        let sys = Actor::system();
        admin_notes::add(&mut conn, &sys, cast.alice.id, "asked for an invoice").expect("note");
        admin_notes::add(&mut conn, &sys, cast.alice.id, "prefers <email>").expect("note");
        admin_notes::add(&mut conn, &sys, cast.bob.id, "met at the fair").expect("note");
        drop(conn);
        let fd = builder(db)
            .extension(NotesAdmin)
            .build()
            .expect("frontdesk");
        let (alice, bob) = (cast.alice.id, cast.bob.id);
        block_on(async move {
            let app = host_app!(fd);
            let (mut b, csrf) = fx::signed_in(db, cast.get("staff_admin"));

            let list = b.get(&app, "/admin/users?q=alice").await;
            assert_eq!(list.status, StatusCode::OK);
            assert!(list.body.contains(r#"<th scope="col">Notes</th>"#));
            assert!(list.body.contains(r#"<td data-label="Notes">2</td>"#));
            assert!(
                plain(&list.body).contains(r#"href="/admin/ext/notes/""#),
                "nav item"
            );
            assert!(list
                .body
                .contains(r#"<option value="notes.archive">Archive notes</option>"#));

            let page = b.get(&app, "/admin/ext/notes/").await;
            assert_eq!(page.status, StatusCode::OK);
            // Rendered in the admin chrome, with the nav item marked current.
            assert!(plain(&page.body)
                .contains(r#"<a href="/admin/ext/notes/" aria-current="page">Notes</a>"#));
            assert!(page.body.contains("met at the fair"));
            assert!(page.body.contains("prefers &lt;email&gt;"), "escaped");
            assert!(page.body.contains(&format!("value=\"{csrf}\"")));

            let user = b.get(&app, &format!("/admin/users/{alice}")).await;
            assert_eq!(user.status, StatusCode::OK);
            assert!(user.body.contains("<h2>Notes</h2>"));
            assert!(user.body.contains("asked for an invoice"));
            assert!(
                !user.body.contains("met at the fair"),
                "only this user's notes"
            );

            // A note added on the page: CSRF-checked, audited, then shown.
            let mut audited = audit_actions(db, "notes.create");
            let ok = b
                .post(
                    &app,
                    "/admin/ext/notes/",
                    &[
                        ("csrf_token", &csrf),
                        ("user_id", &bob.to_string()),
                        ("body", "called back"),
                    ],
                )
                .await;
            assert_eq!(ok.status, StatusCode::SEE_OTHER);
            assert_eq!(ok.location(), "/admin/ext/notes/");
            let shown = b.get(&app, ok.location()).await;
            assert!(shown.body.contains("Note added."));
            assert_eq!(notes_of(db, bob).len(), 2);
            audited.push(format!("user:{bob}"));
            assert_eq!(audit_actions(db, "notes.create"), audited);

            // Bad inputs change nothing and say why.
            for (form, status, says) in [
                (
                    vec![
                        ("csrf_token", csrf.as_str()),
                        ("user_id", "x"),
                        ("body", "hi"),
                    ],
                    StatusCode::SEE_OTHER,
                    "user id is invalid",
                ),
                (
                    vec![
                        ("csrf_token", csrf.as_str()),
                        ("user_id", "999999"),
                        ("body", "hi"),
                    ],
                    StatusCode::NOT_FOUND,
                    "",
                ),
                (
                    vec![
                        ("csrf_token", csrf.as_str()),
                        ("user_id", &bob.to_string()),
                        ("body", "  "),
                    ],
                    StatusCode::SEE_OTHER,
                    "note is invalid",
                ),
            ] {
                let bad = b.post(&app, "/admin/ext/notes/", &form).await;
                assert_eq!(bad.status, status, "{form:?}");
                if status == StatusCode::SEE_OTHER {
                    let shown = b.get(&app, bad.location()).await;
                    assert!(shown.body.contains(says), "{form:?}");
                }
            }
            let no_token = b
                .post(
                    &app,
                    "/admin/ext/notes/",
                    &[("user_id", &bob.to_string()), ("body", "x")],
                )
                .await;
            assert_eq!(no_token.status, StatusCode::FORBIDDEN);
            assert_eq!(notes_of(db, bob).len(), 2);
            assert_eq!(audit_actions(db, "notes.create"), audited);

            // Unknown pages and extensions are not found.
            for uri in ["/admin/ext/notes/nope", "/admin/ext/other/"] {
                assert_eq!(
                    b.get(&app, uri).await.status,
                    StatusCode::NOT_FOUND,
                    "{uri}"
                );
            }
            // The page needs a signed-in admin, and its permission on the site.
            let (mut anon, _) = fx::signed_in(db, None);
            let page = anon.get(&app, "/admin/ext/notes/").await;
            assert_ne!(page.status, StatusCode::OK);
            assert!(!page.body.contains("met at the fair"));
            let (mut org_admin, _) = fx::signed_in(db, cast.get("org_admin"));
            let page = org_admin.get(&app, "/admin/ext/notes/").await;
            assert_eq!(page.status, StatusCode::FORBIDDEN);
        });
    }
);

both!(
    extension_bulk_action_is_checked_audited_and_all_or_nothing,
    |db| {
        let cast = fx::cast(db);
        setup_notes(db);
        let a = cast.org_a.id;
        let carol = fx::user(db, "carol@acme.test", None, Some((a, OrgRole::Member)));
        let mut conn = db.conn();
        let sys = Actor::system();
        for u in [cast.alice.id, cast.bob.id, carol.id] {
            admin_notes::add(&mut conn, &sys, u, "note").expect("note");
        }
        drop(conn);
        let fd = builder(db)
            .extension(NotesAdmin)
            .build()
            .expect("frontdesk");
        let (alice, bob, carol) = (cast.alice.id, cast.bob.id, carol.id);
        block_on(async move {
            let app = host_app!(fd);
            let bulk = |csrf: &str, ids: &[i64]| {
                let mut f = vec![
                    ("csrf_token".to_owned(), csrf.to_owned()),
                    ("action".to_owned(), "notes.archive".to_owned()),
                ];
                f.extend(ids.iter().map(|i| ("ids".to_owned(), i.to_string())));
                f
            };
            let post = |f: &Vec<(String, String)>| {
                f.iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect::<Vec<_>>()
            };

            // A staff viewer may view but not edit: refused, nothing changes.
            let (mut viewer, vcsrf) = fx::signed_in(db, cast.get("staff_viewer"));
            let f = post(&bulk(&vcsrf, &[alice]));
            let f: Vec<(&str, &str)> = f.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let res = viewer.post(&app, "/admin/users/bulk", &f).await;
            assert_eq!(res.status, StatusCode::FORBIDDEN);
            assert!(!notes_of(db, alice)[0].1);
            assert!(audit_actions(db, "notes.archive").is_empty());

            // An organization admin who cannot see bob: the whole action is refused.
            let (mut org_admin, ocsrf) = fx::signed_in(db, cast.get("org_admin"));
            let f = post(&bulk(&ocsrf, &[alice, bob]));
            let f: Vec<(&str, &str)> = f.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let res = org_admin.post(&app, "/admin/users/bulk", &f).await;
            assert_ne!(res.status, StatusCode::OK);
            assert!(!notes_of(db, alice)[0].1);
            assert!(!notes_of(db, bob)[0].1);
            assert!(audit_actions(db, "notes.archive").is_empty());

            // Without the CSRF token: refused.
            let f = post(&bulk("forged", &[alice]));
            let f: Vec<(&str, &str)> = f.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let res = org_admin.post(&app, "/admin/users/bulk", &f).await;
            assert_eq!(res.status, StatusCode::FORBIDDEN);
            assert!(!notes_of(db, alice)[0].1);

            // Allowed: exactly the selected users, one audit row each.
            let f = post(&bulk(&ocsrf, &[alice, carol]));
            let f: Vec<(&str, &str)> = f.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let res = org_admin.post(&app, "/admin/users/bulk", &f).await;
            assert_eq!(res.status, StatusCode::SEE_OTHER);
            let shown = org_admin.get(&app, res.location()).await;
            assert!(shown.body.contains("Archive notes: 2 user(s)."));
            assert!(notes_of(db, alice)[0].1);
            assert!(notes_of(db, carol)[0].1);
            assert!(!notes_of(db, bob)[0].1);
            let mut rows = audit_actions(db, "notes.archive");
            rows.sort();
            let mut want = vec![format!("user:{alice}"), format!("user:{carol}")];
            want.sort();
            assert_eq!(rows, want);
            // The column counts live notes only.
            let list = org_admin.get(&app, "/admin/users?q=carol").await;
            assert!(!list.body.contains(r#"<td data-label="Notes">1</td>"#));
        });
    }
);

/// A column that records each call of its loader and the ids it was given.
struct Counting {
    calls: Arc<AtomicUsize>,
    seen: Arc<Mutex<Vec<usize>>>,
}

impl Extension for Counting {
    fn id(&self) -> &'static str {
        "counting"
    }

    fn user_columns(&self) -> Vec<UserColumn> {
        let calls = self.calls.clone();
        let seen = self.seen.clone();
        vec![UserColumn {
            label: "Email length".into(),
            load: Arc::new(move |conn, ids| {
                calls.fetch_add(1, Ordering::SeqCst);
                if let Ok(mut s) = seen.lock() {
                    s.push(ids.len());
                }
                use frontdesk_core::schema::users;
                let rows: Vec<(i64, String)> = users::table
                    .filter(users::id.eq_any(ids))
                    .select((users::id, users::email))
                    .load(conn)?;
                Ok(rows
                    .into_iter()
                    .map(|(id, e)| (id, format!("len{}", e.len())))
                    .collect::<HashMap<_, _>>())
            }),
        }]
    }
}

both!(extension_column_loads_a_whole_page_in_one_call, |db| {
    let cast = fx::cast(db);
    for i in 0..30 {
        fx::user(
            db,
            &format!("row{i:02}@acme.test"),
            None,
            Some((cast.org_a.id, OrgRole::Member)),
        );
    }
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let fd = builder(db)
        .extension(Counting {
            calls: calls.clone(),
            seen: seen.clone(),
        })
        .build()
        .expect("frontdesk");
    block_on(async move {
        let app = host_app!(fd);
        let (mut b, _) = fx::signed_in(db, cast.get("staff_admin"));
        let page = b
            .get(&app, "/admin/users?q=row&limit=25&sort=email&dir=asc")
            .await;
        assert_eq!(page.status, StatusCode::OK);
        assert_eq!(
            page.body
                .matches(r#"<td data-label="Email length">len"#)
                .count(),
            25
        );
        assert!(page
            .body
            .contains(r#"<td data-label="Email length">len15</td>"#));
        let page = b
            .get(
                &app,
                "/admin/users?q=row&limit=25&sort=email&dir=asc&page=2",
            )
            .await;
        assert_eq!(
            page.body
                .matches(r#"<td data-label="Email length">len"#)
                .count(),
            5
        );
        // One call per page, whatever the number of rows.
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert_eq!(*seen.lock().expect("seen"), vec![25, 5]);
    });
});

both!(extension_registry_refuses_bad_and_repeated_ids, |db| {
    struct Named(&'static str);
    impl Extension for Named {
        fn id(&self) -> &'static str {
            self.0
        }
    }
    for bad in ["", "Notes", "no/slash", "a b"] {
        let err = builder(db).extension(Named(bad)).build().err();
        assert!(err.is_some(), "{bad:?} accepted");
    }
    let twice = builder(db)
        .extension(Named("notes"))
        .extension(NotesAdmin)
        .build()
        .err();
    assert!(twice.is_some(), "a repeated id was accepted");
    assert!(builder(db).extension(Named("ok-1_x")).build().is_ok());
});
