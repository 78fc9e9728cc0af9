//! A cast for the admin page tests: two organizations, one user per role, and
//! signed-in browsers for them (sessions made directly, no argon2 per role).

use frontdesk_core::organizations::{self, Organization};
use frontdesk_core::sessions::{self, ClientInfo, SessionConfig};
use frontdesk_core::users::{self, NewUser, User};
use frontdesk_core::{Actor, OrgRole, StaffRole};

use crate::support::TestDb;
use crate::web_app::Browser;

pub const ROLES: [&str; 8] = [
    "staff_owner",
    "staff_admin",
    "staff_viewer",
    "org_owner",
    "org_admin",
    "org_member",
    "end_user",
    "anonymous",
];

pub struct Cast {
    pub org_a: Organization,
    pub org_b: Organization,
    /// A plain member of A and of B: the users acted upon.
    pub alice: User,
    pub bob: User,
    pub people: Vec<(&'static str, Option<User>)>,
}

pub fn user(
    db: &TestDb,
    email: &str,
    staff: Option<StaffRole>,
    org: Option<(i64, OrgRole)>,
) -> User {
    let mut conn = db.conn();
    users::create(
        &mut conn,
        &Actor::system(),
        NewUser {
            email: email.into(),
            first_name: email.split('@').next().unwrap_or("x").into(),
            last_name: "Test".into(),
            staff_role: staff,
            organization: org,
            ..NewUser::default()
        },
    )
    .expect("user")
}

pub fn cast(db: &TestDb) -> Cast {
    let mut conn = db.conn();
    let sys = Actor::system();
    let org_a = organizations::create(&mut conn, &sys, "acme", "Acme", "").expect("org a");
    let org_b = organizations::create(&mut conn, &sys, "globex", "Globex", "").expect("org b");
    drop(conn);
    let a = org_a.id;
    let people = vec![
        (
            "staff_owner",
            Some(user(db, "owner@staff.test", Some(StaffRole::Owner), None)),
        ),
        (
            "staff_admin",
            Some(user(db, "admin@staff.test", Some(StaffRole::Admin), None)),
        ),
        (
            "staff_viewer",
            Some(user(db, "viewer@staff.test", Some(StaffRole::Viewer), None)),
        ),
        (
            "org_owner",
            Some(user(db, "owner@acme.test", None, Some((a, OrgRole::Owner)))),
        ),
        (
            "org_admin",
            Some(user(db, "admin@acme.test", None, Some((a, OrgRole::Admin)))),
        ),
        (
            "org_member",
            Some(user(
                db,
                "member@acme.test",
                None,
                Some((a, OrgRole::Member)),
            )),
        ),
        ("end_user", Some(user(db, "someone@else.test", None, None))),
        ("anonymous", None),
    ];
    let alice = user(db, "alice@acme.test", None, Some((a, OrgRole::Member)));
    let bob = user(
        db,
        "bob@globex.test",
        None,
        Some((org_b.id, OrgRole::Member)),
    );
    Cast {
        org_a,
        org_b,
        alice,
        bob,
        people,
    }
}

impl Cast {
    pub fn get(&self, role: &str) -> Option<&User> {
        self.people
            .iter()
            .find(|(r, _)| *r == role)
            .and_then(|(_, u)| u.as_ref())
    }
}

/// A browser signed in as `user` (a fresh session row), and its CSRF token.
pub fn signed_in(db: &TestDb, user: Option<&User>) -> (Browser, String) {
    let mut b = Browser::new();
    let Some(user) = user else {
        return (b, String::new());
    };
    let mut conn = db.conn();
    let (_, token) = sessions::create(
        &mut conn,
        user.id,
        &ClientInfo {
            ip: Some("192.0.2.1".into()),
            user_agent: Some("TestBrowser/1.0".into()),
        },
        &SessionConfig::default(),
    )
    .expect("session");
    b.jar
        .insert("frontdesk_session".into(), token.expose().to_owned());
    let csrf = frontdesk_web::csrf::session_token(token.expose());
    (b, csrf)
}

/// The actor the pages will see for `user`.
pub fn actor(db: &TestDb, user: &User) -> Actor {
    let mut conn = db.conn();
    users::actor_for(&mut conn, user.id, None).expect("actor")
}

pub fn reload(db: &TestDb, id: i64) -> Option<User> {
    let mut conn = db.conn();
    users::get(&mut conn, id).ok()
}

pub fn audit_count(db: &TestDb) -> i64 {
    use diesel::prelude::*;
    use frontdesk_core::schema::audit_events;
    let mut conn = db.conn();
    audit_events::table
        .count()
        .get_result(&mut *conn)
        .expect("count")
}
