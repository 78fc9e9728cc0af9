use diesel::prelude::*;
use frontdesk_core::api_keys::{self, KeyRole};
use frontdesk_core::schema::api_keys as keys_t;
use frontdesk_core::users::{self, NewUser};
use frontdesk_core::{organizations, Actor, CoreError, OrgRole, StaffRole};

use crate::both;
use crate::users::new_user;

both!(keys_are_shown_once_stored_hashed_and_revocable, |db| {
    let c = &mut *db.conn();
    let sys = Actor::system();
    let acme = organizations::create(c, &sys, "acme", "Acme", "").expect("org");
    let (key, secret) =
        api_keys::create(c, &sys, "ci", KeyRole::Org(acme.id, OrgRole::Admin)).expect("create");
    assert!(secret.expose().starts_with("fdk_"));
    assert!(secret.expose().len() >= 4 + 43, "256 bits in base64url");
    let stored: Vec<String> = keys_t::table
        .select(keys_t::key_hash)
        .load(c)
        .expect("hashes");
    assert_eq!(stored.len(), 1);
    assert_ne!(stored[0], secret.expose());
    assert!(!stored[0].contains(&secret.expose()[4..]));

    let found = api_keys::authenticate(c, secret.expose())
        .expect("auth")
        .expect("key");
    assert_eq!(found.id, key.id);
    let used: Option<chrono::NaiveDateTime> = keys_t::table
        .find(key.id)
        .select(keys_t::last_used_at)
        .first(c)
        .expect("key");
    assert!(used.is_some(), "last use is recorded");
    let actor = found.actor().expect("actor");
    assert_eq!(actor.visible_orgs(), Some(vec![acme.id]));
    assert!(api_keys::authenticate(c, "fdk_wrong")
        .expect("auth")
        .is_none());
    assert!(api_keys::authenticate(c, &secret.expose()[..20])
        .expect("auth")
        .is_none());

    api_keys::revoke(c, &sys, key.id).expect("revoke");
    assert!(api_keys::authenticate(c, secret.expose())
        .expect("auth")
        .is_none());
});

both!(nobody_mints_a_key_stronger_than_themselves, |db| {
    let c = &mut *db.conn();
    let sys = Actor::system();
    let acme = organizations::create(c, &sys, "acme", "Acme", "").expect("acme");
    let globex = organizations::create(c, &sys, "globex", "Globex", "").expect("globex");
    let u = users::create(
        c,
        &sys,
        NewUser {
            organization: Some((acme.id, OrgRole::Admin)),
            ..new_user("a@acme.com")
        },
    )
    .expect("u");
    let org_admin = Actor::user(u.id, None, vec![(acme.id, OrgRole::Admin)]);
    let staff_admin = Actor::user(u.id, Some(StaffRole::Admin), vec![]);

    api_keys::create(
        c,
        &org_admin,
        "mine",
        KeyRole::Org(acme.id, OrgRole::Member),
    )
    .expect("member key");
    for (actor, role) in [
        (&org_admin, KeyRole::Org(acme.id, OrgRole::Owner)),
        (&org_admin, KeyRole::Org(globex.id, OrgRole::Member)),
        (&org_admin, KeyRole::Staff(StaffRole::Viewer)),
        (&staff_admin, KeyRole::Staff(StaffRole::Owner)),
    ] {
        assert!(
            matches!(
                api_keys::create(c, actor, "x", role),
                Err(CoreError::Forbidden)
            ),
            "{role:?}"
        );
    }
    assert!(matches!(
        api_keys::create(c, &sys, "", KeyRole::Staff(StaffRole::Viewer)),
        Err(CoreError::Invalid { .. })
    ));
    assert!(matches!(
        api_keys::create(c, &sys, "x", KeyRole::Org(9_999, OrgRole::Member)),
        Err(CoreError::NotFound(_))
    ));
    let n: i64 = keys_t::table.count().get_result(c).expect("count");
    assert_eq!(n, 1);
    // An org admin lists only their organization's keys and cannot revoke others'.
    let (global, _) =
        api_keys::create(c, &sys, "global", KeyRole::Staff(StaffRole::Viewer)).expect("global");
    assert_eq!(api_keys::list(c, &org_admin).expect("list").len(), 1);
    assert!(matches!(
        api_keys::revoke(c, &org_admin, global.id),
        Err(CoreError::NotFound(_))
    ));
    assert_eq!(api_keys::list(c, &sys).expect("list").len(), 2);
});
