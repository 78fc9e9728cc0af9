//! The admin list pages as admins use them: the users list's row actions menu
//! (through the single-user handlers and their permission checks), invite
//! button, organization role badges and admin column, tag checkboxes, last
//! active column and sort; sessions and login attempts with devices, names and
//! plain-word reasons and an email filter; the audit log with names; and the
//! accessibility markup of these tables.

use actix_web::http::StatusCode;
use chrono::Duration;
use diesel::prelude::*;
use frontdesk_core::login_attempts::{self, Reason};
use frontdesk_core::schema::{audit_events, password_resets, users as users_t};
use frontdesk_core::sessions::{self, ClientInfo, SessionConfig};
use frontdesk_core::users::query::{SortDir, SortKey, UserQuery};
use frontdesk_core::{organizations, tags, users, Actor, OrgRole};

use crate::admin_fixture::{self as fx};
use crate::both;
use crate::host_app;
use crate::support::TestDb;
use crate::web_app::{block_on, frontdesk};

const CHROME_MAC: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 \
                          (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";

/// The `<tr>…</tr>` of the first table body row that contains `needle`.
fn row_of<'a>(body: &'a str, needle: &str) -> &'a str {
    let table = body.find("<tbody").expect("a table");
    let at = table
        + body[table..]
            .find(needle)
            .unwrap_or_else(|| panic!("{needle} not in the table"));
    let start = body[..at].rfind("<tr").expect("row start");
    let end = at + body[at..].find("</tr>").expect("row end");
    &body[start..end]
}

fn audit_rows(db: &TestDb, action: &str, target: &str) -> i64 {
    let mut conn = db.conn();
    audit_events::table
        .filter(audit_events::action.eq(action))
        .filter(audit_events::target.eq(target))
        .count()
        .get_result(&mut *conn)
        .expect("count")
}

fn set_last_active(db: &TestDb, id: i64, at: Option<chrono::NaiveDateTime>) {
    let mut conn = db.conn();
    diesel::update(users_t::table.find(id))
        .set(users_t::last_active_at.eq(at))
        .execute(&mut *conn)
        .expect("last active");
}

both!(
    admin_users_row_menu_acts_through_the_single_user_handlers,
    |db| {
        let cast = fx::cast(db);
        let alice = cast.alice.clone();
        // A live session of alice's, for the menu's "Revoke sessions".
        let _ = fx::signed_in(db, Some(&alice));
        let fd = frontdesk(db);
        block_on(async move {
            let app = host_app!(fd);
            let (mut admin, csrf) = fx::signed_in(db, cast.get("staff_admin"));
            let page = admin.get(&app, "/admin/users?q=alice").await;
            assert_eq!(page.status, StatusCode::OK);
            let row = row_of(&page.body, "alice@acme.test");
            // The menu is a details/summary disclosure named with the user's name.
            assert!(row.contains("<details class=\"fda-menu\">"));
            assert!(row.contains("aria-label=\"Actions for alice Test\""));
            let id = alice.id;
            for action in ["suspend\"", "password-reset\"", "sessions/revoke-all\""] {
                assert!(
                    row.contains(&format!("/users/{id}/{action}")),
                    "{action} in the menu"
                );
            }
            assert!(!row.contains(&format!("/users/{id}/restore\"")));
            assert!(row.contains(&format!("/users/{id}#delete\"")));
            assert!(row.contains("aria-label=\"Suspend alice Test\""));
            // The invite button leads to the invitation page (no new-user page yet).
            assert!(page.body.contains("Invite a user…"));
            assert!(
                page.body.contains("/invitations\" class=\"fda-button\"")
                    || page
                        .body
                        .contains("class=\"fda-button\" href=\"&#x2F;admin/invitations\"")
            );

            // Suspend from the menu: without a reason it is refused and nothing changes.
            let page = admin
                .post(
                    &app,
                    &format!("/admin/users/{id}/suspend"),
                    &[
                        ("csrf_token", &csrf),
                        ("from", "list"),
                        ("return", "q=alice"),
                        ("reason", ""),
                    ],
                )
                .await;
            assert_eq!(page.status, StatusCode::SEE_OTHER);
            assert_eq!(page.location(), "/admin/users?q=alice");
            assert_eq!(fx::reload(db, id).expect("alice").status, "active");
            assert_eq!(audit_rows(db, "user.suspend", &format!("user:{id}")), 0);
            // With a reason it suspends, audits, and goes back to the same list view.
            let page = admin
                .post(
                    &app,
                    &format!("/admin/users/{id}/suspend"),
                    &[
                        ("csrf_token", &csrf),
                        ("from", "list"),
                        ("return", "q=alice&sort=email"),
                        ("reason", "chargeback"),
                    ],
                )
                .await;
            assert_eq!(page.status, StatusCode::SEE_OTHER);
            assert_eq!(page.location(), "/admin/users?q=alice&sort=email");
            let now = fx::reload(db, id).expect("alice");
            assert_eq!(now.status, "suspended");
            assert_eq!(now.suspended_reason.as_deref(), Some("chargeback"));
            assert_eq!(audit_rows(db, "user.suspend", &format!("user:{id}")), 1);
            // Her sessions ended with the suspension; the menu now offers Restore.
            let page = admin.get(&app, "/admin/users?q=alice").await;
            assert!(page.body.contains("User suspended"));
            let row = row_of(&page.body, "alice@acme.test");
            assert!(row.contains(&format!("/users/{id}/restore\"")));
            assert!(!row.contains(&format!("/users/{id}/suspend\"")));
            // A suspended user cannot be sent a reset: the menu does not offer it.
            assert!(!row.contains(&format!("/users/{id}/password-reset\"")));
            let page = admin
                .post(
                    &app,
                    &format!("/admin/users/{id}/restore"),
                    &[("csrf_token", &csrf), ("from", "list"), ("return", "")],
                )
                .await;
            assert_eq!(page.location(), "/admin/users");
            assert_eq!(fx::reload(db, id).expect("alice").status, "active");

            // Password reset from the menu writes a reset for alice.
            let page = admin
                .post(
                    &app,
                    &format!("/admin/users/{id}/password-reset"),
                    &[
                        ("csrf_token", &csrf),
                        ("from", "list"),
                        ("return", "q=alice"),
                    ],
                )
                .await;
            assert_eq!(page.location(), "/admin/users?q=alice");
            let mut conn = db.conn();
            let resets: i64 = password_resets::table
                .filter(password_resets::user_id.eq(id))
                .count()
                .get_result(&mut *conn)
                .expect("resets");
            assert_eq!(resets, 1);
            // Revoke sessions from the menu.
            sessions::create(
                &mut conn,
                id,
                &ClientInfo::default(),
                &SessionConfig::default(),
            )
            .expect("session");
            drop(conn);
            let page = admin
                .post(
                    &app,
                    &format!("/admin/users/{id}/sessions/revoke-all"),
                    &[
                        ("csrf_token", &csrf),
                        ("from", "list"),
                        ("return", "q=alice"),
                    ],
                )
                .await;
            assert_eq!(page.location(), "/admin/users?q=alice");
            let mut conn = db.conn();
            assert!(
                sessions::list_live_for_user(&mut conn, id, &SessionConfig::default())
                    .expect("live")
                    .is_empty()
            );
            drop(conn);
            // Without `from=list` the same handler still goes back to the user page,
            // and a `return` pointing elsewhere stays on the users list.
            let page = admin
                .post(
                    &app,
                    &format!("/admin/users/{id}/restore"),
                    &[
                        ("csrf_token", &csrf),
                        ("from", "list"),
                        ("return", "https://evil.test/"),
                    ],
                )
                .await;
            assert!(
                page.location().starts_with("/admin/users"),
                "{}",
                page.location()
            );
            let page = admin
                .post(
                    &app,
                    &format!("/admin/users/{id}/restore"),
                    &[("csrf_token", &csrf)],
                )
                .await;
            assert_eq!(page.location(), format!("/admin/users/{id}"));
            // The menu's forms are CSRF-checked like every other.
            let page = admin
                .post(
                    &app,
                    &format!("/admin/users/{id}/suspend"),
                    &[("csrf_token", "forged"), ("from", "list"), ("reason", "x")],
                )
                .await;
            assert_eq!(page.status, StatusCode::FORBIDDEN);
            assert_eq!(fx::reload(db, id).expect("alice").status, "active");

            // A staff viewer gets no menu, no invite button, and no way round it.
            let (mut viewer, vcsrf) = fx::signed_in(db, cast.get("staff_viewer"));
            let page = viewer.get(&app, "/admin/users?q=alice").await;
            assert!(!page.body.contains("fda-menu"));
            assert!(!page.body.contains("Invite a user"));
            let page = viewer
                .post(
                    &app,
                    &format!("/admin/users/{id}/suspend"),
                    &[("csrf_token", &vcsrf), ("from", "list"), ("reason", "x")],
                )
                .await;
            assert!(page.status.is_client_error(), "{}", page.status);
            assert_eq!(fx::reload(db, id).expect("alice").status, "active");
        });
    }
);

both!(
    admin_users_org_admin_sees_own_rows_and_only_allowed_actions,
    |db| {
        let cast = fx::cast(db);
        let a = cast.org_a.id;
        // A member of both organizations: an Acme admin may not suspend or delete
        // them (that reaches into Globex) but may still send a reset.
        let dual = fx::user(db, "dual@acme.test", None, Some((a, OrgRole::Member)));
        let mut conn = db.conn();
        organizations::add_member(
            &mut conn,
            &Actor::system(),
            cast.org_b.id,
            dual.id,
            OrgRole::Member,
        )
        .expect("dual in globex");
        drop(conn);
        let fd = frontdesk(db);
        block_on(async move {
            let app = host_app!(fd);
            let (mut org, csrf) = fx::signed_in(db, cast.get("org_admin"));
            let page = org.get(&app, "/admin/users").await;
            assert_eq!(page.status, StatusCode::OK);
            assert!(!page.body.contains("bob@globex.test"), "other org hidden");
            assert!(!page.body.contains("owner@staff.test"));
            // Alice: the full menu.
            let row = row_of(&page.body, "alice@acme.test");
            let id = cast.alice.id;
            assert!(row.contains(&format!("/users/{id}/suspend\"")));
            assert!(row.contains(&format!("/users/{id}#delete\"")));
            // Organization roles as badges, only the organizations the admin sees.
            assert!(row.contains("Acme <span class=\"fda-badge fda-role-member\">member</span>"));
            let row = row_of(&page.body, "dual@acme.test");
            assert!(
                !row.contains("Globex"),
                "the other organization stays hidden"
            );
            assert!(!row.contains(&format!("/users/{}/suspend\"", dual.id)));
            assert!(!row.contains(&format!("/users/{}#delete\"", dual.id)));
            assert!(row.contains(&format!("/users/{}/password-reset\"", dual.id)));
            // The org owner: an admin may do nothing to them, so no menu at all.
            let owner = cast.get("org_owner").expect("owner");
            let row = row_of(&page.body, "owner@acme.test");
            assert!(!row.contains("fda-menu"), "{row}");
            // Nor to themselves.
            let row = row_of(&page.body, "admin@acme.test");
            assert!(!row.contains("fda-menu"));
            // Org admins may invite into their organization.
            assert!(page.body.contains("Invite a user…"));

            // Refused where the menu shows nothing, and nothing changes.
            for (who, path) in [
                (dual.id, format!("/admin/users/{}/suspend", dual.id)),
                (owner.id, format!("/admin/users/{}/suspend", owner.id)),
                (cast.bob.id, format!("/admin/users/{}/suspend", cast.bob.id)),
            ] {
                let page = org
                    .post(
                        &app,
                        &path,
                        &[("csrf_token", &csrf), ("from", "list"), ("reason", "x")],
                    )
                    .await;
                assert!(page.status.is_client_error(), "{path}: {}", page.status);
                assert_eq!(fx::reload(db, who).expect("user").status, "active");
                assert_eq!(audit_rows(db, "user.suspend", &format!("user:{who}")), 0);
            }
            // Allowed where the menu offers it.
            let page = org
                .post(
                    &app,
                    &format!("/admin/users/{id}/suspend"),
                    &[("csrf_token", &csrf), ("from", "list"), ("reason", "spam")],
                )
                .await;
            assert_eq!(page.location(), "/admin/users");
            assert_eq!(fx::reload(db, id).expect("alice").status, "suspended");

            // Filtered to Acme: the "Organization admin" column ticks admins and owners.
            let page = org.get(&app, &format!("/admin/users?org={a}")).await;
            assert!(page
                .body
                .contains("<th scope=\"col\">Organization admin</th>"));
            for (email, admin) in [
                ("admin@acme.test", true),
                ("owner@acme.test", true),
                ("alice@acme.test", false),
                ("dual@acme.test", false),
            ] {
                let row = row_of(&page.body, email);
                assert_eq!(row.contains("fda-check-ok"), admin, "{email}");
            }
            // Unfiltered, or filtered to an organization they cannot see: no column.
            let page = org.get(&app, "/admin/users").await;
            assert!(!page.body.contains("Organization admin</th>"));
            let page = org
                .get(&app, &format!("/admin/users?org={}", cast.org_b.id))
                .await;
            assert!(!page.body.contains("Organization admin</th>"));
            assert!(!page.body.contains("bob@globex.test"));
        });
    }
);

both!(
    admin_users_last_active_column_sort_and_tag_checkboxes,
    |db| {
        let cast = fx::cast(db);
        let a = cast.org_a.id;
        let now = frontdesk_core::time::now();
        // Made in an order that neither id nor sign-up order matches the sort.
        let late = fx::user(db, "late@acme.test", None, Some((a, OrgRole::Member)));
        let idle = fx::user(db, "idle@acme.test", None, Some((a, OrgRole::Member)));
        let early = fx::user(db, "early@acme.test", None, Some((a, OrgRole::Member)));
        set_last_active(db, early.id, Some(now - Duration::days(3)));
        set_last_active(db, late.id, Some(now - Duration::hours(1)));
        set_last_active(db, idle.id, None);
        let mut conn = db.conn();
        let red = tags::create(&mut conn, &Actor::system(), "red").expect("tag");
        let blue = tags::create(&mut conn, &Actor::system(), "blue").expect("tag");
        tags::assign(&mut conn, &Actor::system(), early.id, red.id).expect("tag");
        tags::assign(&mut conn, &Actor::system(), late.id, blue.id).expect("tag");

        // The query itself, on both backends: never-active users last either way,
        // and the keyset batches follow the same order.
        for (dir, expected) in [
            (SortDir::Asc, [early.id, late.id, idle.id]),
            (SortDir::Desc, [late.id, early.id, idle.id]),
        ] {
            let q = UserQuery {
                search: Some("@acme.test".into()),
                sort: SortKey::LastActive,
                dir,
                ..UserQuery::default()
            };
            let page = q.run_scoped(&mut conn, None).expect("query");
            let ids: Vec<i64> = page
                .items
                .iter()
                .map(|u| u.id)
                .filter(|id| expected.contains(id))
                .collect();
            assert_eq!(ids, expected, "{dir:?}");
            let mut seen = Vec::new();
            q.for_each_batch::<frontdesk_core::CoreError>(&mut conn, None, 1, |_, rows| {
                seen.extend(rows.iter().map(|u| u.id));
                Ok(())
            })
            .expect("batches");
            let batched: Vec<i64> = seen
                .into_iter()
                .filter(|id| expected.contains(id))
                .collect();
            assert_eq!(batched, expected, "keyset {dir:?}");
        }
        drop(conn);

        let fd = frontdesk(db);
        block_on(async move {
            let app = host_app!(fd);
            let (mut admin, _) = fx::signed_in(db, cast.get("staff_viewer"));
            let page = admin
                .get(&app, "/admin/users?q=acme.test&sort=last_active&dir=asc")
                .await;
            assert_eq!(page.status, StatusCode::OK);
            let pos = |e: &str| page.body.find(e).unwrap_or_else(|| panic!("{e}"));
            assert!(pos("early@acme.test") < pos("late@acme.test"));
            assert!(pos("late@acme.test") < pos("idle@acme.test"));
            // The column shows the time, "never" for the idle user.
            let shown = (now - Duration::hours(1))
                .format("%Y-%m-%d %H:%M")
                .to_string();
            assert!(row_of(&page.body, "late@acme.test")
                .contains(&format!("<td data-label=\"Last active\">{shown}</td>")));
            assert!(row_of(&page.body, "idle@acme.test")
                .contains("<td data-label=\"Last active\">never</td>"));
            // The header says how the list is sorted, with an arrow, and its link
            // turns the order round; the other sortable headers say "none".
            assert!(page.body.contains(
            "<th scope=\"col\" aria-sort=\"ascending\"><a href=\"&#x2F;admin&#x2F;users?q=acme.test&amp;sort=last_active&amp;dir=desc\">Last active<span class=\"fda-sort-arrow\" aria-hidden=\"true\">▲</span>"
        ), "aria-sort on Last active");
            assert_eq!(page.body.matches("aria-sort=\"none\"").count(), 4);
            let page = admin
                .get(&app, "/admin/users?q=acme.test&sort=last_active&dir=desc")
                .await;
            let pos = |e: &str| page.body.find(e).unwrap_or_else(|| panic!("{e}"));
            assert!(pos("late@acme.test") < pos("early@acme.test"));
            assert!(pos("early@acme.test") < pos("idle@acme.test"));
            assert!(page.body.contains("aria-sort=\"descending\""));
            assert!(page.body.contains("▼"));
            // The default order (joined, newest first) is marked too.
            let page = admin.get(&app, "/admin/users").await;
            assert!(page.body.contains("aria-sort=\"descending\"><a href=\"&#x2F;admin&#x2F;users?sort=created&amp;dir=asc\">Joined"));
            // The API shares the sort.
            let api = admin
                .get(
                    &app,
                    "/admin/api/v1/users?search=acme.test&sort=last_active&dir=asc",
                )
                .await;
            assert_eq!(api.status, StatusCode::OK, "{}", api.body);
            let e = api.body.find("early@acme.test").expect("early");
            let l = api.body.find("late@acme.test").expect("late");
            let i = api.body.find("idle@acme.test").expect("idle");
            assert!(e < l && l < i);
            let bad = admin.get(&app, "/admin/users?sort=last_seen").await;
            assert_eq!(bad.status, StatusCode::BAD_REQUEST);

            // Tag filters are checkbox lists in fieldsets, ticked from the URL.
            let page = admin
                .get(
                    &app,
                    &format!(
                        "/admin/users?q=acme.test&tags_any={}&tags_any={}",
                        red.id, blue.id
                    ),
                )
                .await;
            assert!(!page.body.contains("<select name=\"tags_any\""));
            assert!(page.body.contains("<legend>Tags: has any of</legend>"));
            assert!(page.body.contains(&format!(
                "<input type=\"checkbox\" name=\"tags_any\" value=\"{}\" checked> red",
                red.id
            )));
            assert!(page.body.contains(&format!(
                "<input type=\"checkbox\" name=\"tags_any\" value=\"{}\" checked> blue",
                blue.id
            )));
            assert!(page.body.contains(&format!(
                "<input type=\"checkbox\" name=\"tags_all\" value=\"{}\"> red",
                red.id
            )));
            assert!(page.body.contains("Tick as many as you like."));
            assert!(page.body.contains("early@acme.test") && page.body.contains("late@acme.test"));
            assert!(!page.body.contains("idle@acme.test"));
            // Date filters are grouped under a legend.
            assert!(page.body.contains("<legend>Signed up</legend>"));
            assert!(page.body.contains("<legend>Last sign-in</legend>"));
        });
    }
);

both!(
    admin_sessions_and_attempts_show_devices_names_and_reasons,
    |db| {
        let cast = fx::cast(db);
        let mut conn = db.conn();
        users::update(
            &mut conn,
            &Actor::system(),
            cast.alice.id,
            users::UserUpdate {
                display_name: Some(Some("Alice Liddell".into())),
                ..users::UserUpdate::default()
            },
        )
        .expect("display name");
        let chrome = ClientInfo {
            ip: Some("203.0.113.9".into()),
            user_agent: Some(CHROME_MAC.into()),
        };
        sessions::create(&mut conn, cast.alice.id, &chrome, &SessionConfig::default())
            .expect("session");
        sessions::create(
            &mut conn,
            cast.bob.id,
            &ClientInfo::default(),
            &SessionConfig::default(),
        )
        .expect("session");
        login_attempts::record(
            &mut conn,
            Some(cast.alice.id),
            "alice@acme.test",
            &chrome,
            Reason::BadPassword,
        )
        .expect("attempt");
        login_attempts::record(
            &mut conn,
            None,
            "ghost@acme.test",
            &chrome,
            Reason::UnknownEmail,
        )
        .expect("attempt");
        login_attempts::record(
            &mut conn,
            Some(cast.bob.id),
            "bob@globex.test",
            &ClientInfo::default(),
            Reason::Suspended,
        )
        .expect("attempt");
        login_attempts::record(
            &mut conn,
            Some(cast.alice.id),
            "alice@acme.test",
            &chrome,
            Reason::LockedOut,
        )
        .expect("attempt");
        drop(conn);
        let fd = frontdesk(db);
        block_on(async move {
            let app = host_app!(fd);
            let (mut staff, _) = fx::signed_in(db, cast.get("staff_viewer"));
            let page = staff.get(&app, "/admin/sessions").await;
            assert_eq!(page.status, StatusCode::OK);
            let row = row_of(&page.body, "Chrome 131 on macOS");
            // The device in words, the raw string in the tooltip.
            assert!(
                row.contains("<span title=\"Mozilla&#x2F;5.0 (Macintosh; Intel Mac OS X 10_15_7)")
            );
            // The user by display name, linked, with the email under it.
            assert!(row.contains(&format!(
                "href=\"&#x2F;admin/users/{}\">Alice Liddell</a>",
                cast.alice.id
            )));
            assert!(row.contains("alice@acme.test"));
            // No display name: first and last name.
            assert!(page.body.contains(">bob Test</a>"));
            assert!(page
                .body
                .contains("<td data-label=\"Device\"><span title=\"\">unknown</span></td>"));

            // The user page's sessions and sign-in attempts name devices alike.
            let page = staff
                .get(&app, &format!("/admin/users/{}", cast.alice.id))
                .await;
            assert!(
                page.body
                    .contains("<td title=\"Mozilla&#x2F;5.0 (Macintosh; Intel Mac OS X 10_15_7)")
                    && page.body.matches(">Chrome 131 on macOS</td>").count() >= 2,
                "{}",
                page.body
            );

            // Filter by email (any case); an old user-id link still works.
            let page = staff
                .get(&app, "/admin/sessions?email=ALICE@acme.test")
                .await;
            assert!(page.body.contains("Alice Liddell") && !page.body.contains("bob Test"));
            assert!(page.body.contains("value=\"ALICE@acme.test\""));
            let page = staff
                .get(&app, &format!("/admin/sessions?user={}", cast.bob.id))
                .await;
            assert!(!page.body.contains("Alice Liddell") && page.body.contains("bob Test"));
            let page = staff
                .get(&app, &format!("/admin/sessions?user_id={}", cast.bob.id))
                .await;
            assert!(!page.body.contains("Alice Liddell") && page.body.contains("bob Test"));
            // The link's user shows in the email box, so filtering again keeps them.
            assert!(page
                .body
                .contains("name=\"email\" value=\"bob@globex.test\""));
            let page = staff
                .get(
                    &app,
                    &format!("/admin/login-attempts?user_id={}", cast.bob.id),
                )
                .await;
            assert!(page
                .body
                .contains("name=\"email\" value=\"bob@globex.test\""));
            // An email no one has lists nothing (not everyone); so does a mismatch.
            let page = staff.get(&app, "/admin/sessions?email=nobody@x.test").await;
            assert!(page.body.contains("No sessions."));
            let page = staff
                .get(
                    &app,
                    &format!(
                        "/admin/sessions?email=alice@acme.test&user_id={}",
                        cast.bob.id
                    ),
                )
                .await;
            assert!(page.body.contains("No sessions."));
            let page = staff.get(&app, "/admin/sessions?user_id=abc").await;
            assert_eq!(page.status, StatusCode::BAD_REQUEST);
            // An org admin looking up another organization's user by email sees nothing.
            let (mut org, _) = fx::signed_in(db, cast.get("org_admin"));
            let page = org.get(&app, "/admin/sessions?email=bob@globex.test").await;
            assert!(page.body.contains("No sessions.") && !page.body.contains("bob Test"));
            // An id of a user they may not see reveals no address.
            for path in ["sessions", "login-attempts"] {
                let page = org
                    .get(&app, &format!("/admin/{path}?user_id={}", cast.bob.id))
                    .await;
                assert_eq!(page.status, StatusCode::OK);
                assert!(!page.body.contains("bob@globex.test"), "{path}");
            }

            // Login attempts: reasons in words, never the codes, names and devices.
            let page = staff.get(&app, "/admin/login-attempts").await;
            assert_eq!(page.status, StatusCode::OK);
            for (code, words) in [
                ("bad_password", "Wrong password"),
                ("unknown_email", "Unknown email"),
                ("suspended", "Account suspended"),
                ("locked_out", "Locked out"),
            ] {
                assert!(
                    page.body
                        .contains(&format!("<td data-label=\"Reason\">{words}</td>")),
                    "{words}"
                );
                // The code stays only as the filter option's value.
                assert!(!page.body.contains(&format!(">{code}<")), "{code}");
                assert!(page
                    .body
                    .contains(&format!("<option value=\"{code}\">{words}</option>")));
            }
            assert!(page.body.contains(&format!(
                "href=\"&#x2F;admin/users/{}\">Alice Liddell</a>",
                cast.alice.id
            )));
            // An unknown email is shown as typed, unlinked.
            assert!(page
                .body
                .contains("<td data-label=\"User\">ghost@acme.test</td>"));
            assert!(page.body.contains(">Chrome 131 on macOS</span>"));
            let page = staff
                .get(&app, "/admin/login-attempts?email=ghost@acme.test")
                .await;
            assert!(
                page.body.contains("Unknown email</td>")
                    && !page.body.contains("Wrong password</td>")
            );
            let page = staff
                .get(
                    &app,
                    &format!("/admin/login-attempts?user_id={}", cast.bob.id),
                )
                .await;
            assert!(
                page.body.contains("Account suspended</td>")
                    && !page.body.contains("Wrong password</td>")
            );
            let page = staff
                .get(&app, "/admin/login-attempts?reason=bad_password")
                .await;
            assert!(page
                .body
                .contains("<option value=\"bad_password\" selected>Wrong password</option>"));
            assert!(!page.body.contains("Unknown email</td>"));
            // The user page uses the same words.
            let page = staff
                .get(&app, &format!("/admin/users/{}", cast.alice.id))
                .await;
            assert!(page.body.contains("<td>Wrong password</td>"));
            assert!(!page.body.contains(">bad_password<"));
        });
    }
);

both!(admin_audit_log_names_actors_targets_and_details, |db| {
    let cast = fx::cast(db);
    let owner = cast.get("staff_owner").expect("owner").clone();
    let mut conn = db.conn();
    let owner_actor = fx::actor(db, &owner);
    users::suspend(&mut conn, &owner_actor, cast.alice.id, "spam").expect("suspend");
    organizations::rename(&mut conn, &owner_actor, cast.org_a.id, "Acme Corp").expect("rename");
    let (key, _) = frontdesk_core::api_keys::create(
        &mut conn,
        &owner_actor,
        "CI robot",
        frontdesk_core::api_keys::KeyRole::Staff(frontdesk_core::StaffRole::Admin),
    )
    .expect("key");
    let key_actor = key.actor().expect("key actor");
    users::restore(&mut conn, &key_actor, cast.alice.id).expect("restore");
    let gone = fx::user(
        db,
        "gone@acme.test",
        None,
        Some((cast.org_a.id, OrgRole::Member)),
    );
    users::delete(&mut conn, &owner_actor, gone.id).expect("delete");
    drop(conn);
    let fd = frontdesk(db);
    block_on(async move {
        let app = host_app!(fd);
        let (mut staff, _) = fx::signed_in(db, Some(&owner));
        let page = staff.get(&app, "/admin/audit").await;
        assert_eq!(page.status, StatusCode::OK);
        let suspend = row_of(&page.body, ">user.suspend<");
        // The actor by name with a link to their page; the target likewise.
        assert!(suspend.contains(&format!(
            "<a href=\"&#x2F;admin/users/{}\">owner Test</a>",
            owner.id
        )));
        assert!(suspend.contains(&format!(
            "<a href=\"&#x2F;admin/users/{}\">alice Test</a>",
            cast.alice.id
        )));
        // Details as a key/value list, not JSON.
        assert!(suspend.contains("<dt>Reason</dt><dd>spam</dd>"));
        assert!(suspend.contains("<dt>Sessions revoked</dt><dd>0</dd>"));
        assert!(!suspend.contains("{&quot;"));
        assert!(!page.body.contains("<code>{"));
        // Organizations by name, linked to their page.
        let rename = row_of(&page.body, ">organization.rename<");
        assert!(rename.contains(&format!(
            "<a href=\"&#x2F;admin/organizations/{}\">Acme Corp</a>",
            cast.org_a.id
        )));
        assert!(rename.contains("<dt>From</dt><dd>Acme</dd>"));
        // API keys by name.
        let restore = row_of(&page.body, ">user.restore<");
        assert!(restore.contains("API key “CI robot”"));
        // A deleted user keeps kind and id; the system is named as such.
        let delete = row_of(&page.body, ">user.delete<");
        assert!(delete.contains(&format!("Deleted user #{}", gone.id)));
        assert!(page.body.contains("<td data-label=\"Actor\">System</td>"));
        // An organization recorded with a role reads as its name and the role.
        assert!(page
            .body
            .contains("<dt>Organization</dt><dd>Acme Corp (member)</dd>"));
        // The user page's trail uses the same names.
        let page = staff
            .get(&app, &format!("/admin/users/{}", cast.alice.id))
            .await;
        assert!(page.body.contains("API key “CI robot”"));
        assert!(page.body.contains("<dt>Reason</dt><dd>spam</dd>"));
        assert!(page.body.contains(&format!(
            "<a href=\"&#x2F;admin/users/{}\">owner Test</a>",
            owner.id
        )));
    });
});

both!(admin_list_tables_name_their_headers, |db| {
    let cast = fx::cast(db);
    let _ = fx::signed_in(db, Some(&cast.alice));
    let mut conn = db.conn();
    login_attempts::record(
        &mut conn,
        Some(cast.alice.id),
        "alice@acme.test",
        &ClientInfo::default(),
        Reason::BadPassword,
    )
    .expect("attempt");
    drop(conn);
    let fd = frontdesk(db);
    block_on(async move {
        let app = host_app!(fd);
        let (mut staff, _) = fx::signed_in(db, cast.get("staff_owner"));
        for path in [
            "/admin/users",
            "/admin/sessions",
            "/admin/login-attempts",
            "/admin/audit",
        ] {
            let page = staff.get(&app, path).await;
            assert_eq!(page.status, StatusCode::OK, "{path}");
            let headers = page.body.matches("<th>").count() + page.body.matches("<th ").count();
            assert!(headers > 0, "{path}");
            assert_eq!(
                page.body.matches("<th scope=\"col\"").count(),
                headers,
                "every header cell of {path} has scope=col"
            );
            assert!(!page.body.contains("<th></th>"), "{path}: unnamed header");
            assert!(!page.body.contains("style=\""), "{path}: inline style");
            assert!(!page.body.contains("<script>"), "{path}: inline script");
        }
        let page = staff.get(&app, "/admin/users").await;
        assert!(page.body.contains("<span class=\"fda-sr\">Actions</span>"));
        assert!(page
            .body
            .contains("aria-label=\"Select alice Test (alice@acme.test)\""));
        let page = staff.get(&app, "/admin/sessions").await;
        assert!(page.body.contains("<span class=\"fda-sr\">Actions</span>"));
        assert!(page
            .body
            .contains("aria-label=\"Revoke session of alice Test on TestBrowser&#x2F;1.0\""));
        let page = staff.get(&app, "/admin/login-attempts").await;
        assert!(page.body.contains("<legend>When</legend>"));
    });
});
