//! The authorization table, checked action by action for every kind of actor.

use frontdesk_core::authz::{can, Action, Actor, Principal, Target};
use frontdesk_core::{OrgRole, StaffRole};

const ACME: i64 = 1;
const GLOBEX: i64 = 2;

fn staff(role: StaffRole) -> Actor {
    Actor::user(100, Some(role), vec![])
}

fn org(role: OrgRole) -> Actor {
    Actor::user(100, None, vec![(ACME, role)])
}

fn key(role: OrgRole) -> Actor {
    Actor {
        principal: Principal::ApiKey(7),
        members_may_read: true,
        ..org(role)
    }
}

fn member_of(org: i64) -> Target {
    Target::User {
        id: 5,
        staff_role: None,
        orgs: vec![(org, OrgRole::Member)],
    }
}

fn owner_of(org: i64) -> Target {
    Target::User {
        id: 5,
        staff_role: None,
        orgs: vec![(org, OrgRole::Owner)],
    }
}

const ACTIONS: [Action; 8] = [
    Action::View,
    Action::Edit,
    Action::Suspend,
    Action::Delete,
    Action::GrantOrgRole(OrgRole::Member),
    Action::GrantOrgRole(OrgRole::Owner),
    Action::GrantStaffRole,
    Action::ManageSite,
];

fn allowed(actor: &Actor, target: &Target) -> Vec<bool> {
    ACTIONS.iter().map(|a| can(actor, *a, target)).collect()
}

#[test]
fn staff_roles() {
    let t = member_of(ACME);
    assert_eq!(allowed(&staff(StaffRole::Owner), &t), [true; 8]);
    assert_eq!(
        allowed(&staff(StaffRole::Admin), &t),
        [true, true, true, true, true, true, false, true]
    );
    assert_eq!(
        allowed(&staff(StaffRole::Viewer), &t),
        [true, false, false, false, false, false, false, false]
    );
    // Staff admins leave staff owners alone.
    let staff_owner = Target::User {
        id: 9,
        staff_role: Some(StaffRole::Owner),
        orgs: vec![],
    };
    assert_eq!(
        allowed(&staff(StaffRole::Admin), &staff_owner),
        [true, false, false, false, false, false, false, false]
    );
}

#[test]
fn organization_roles_inside_their_organization() {
    let t = member_of(ACME);
    assert_eq!(
        allowed(&org(OrgRole::Owner), &t),
        [true, true, true, true, true, true, false, false]
    );
    assert_eq!(
        allowed(&org(OrgRole::Admin), &t),
        [true, true, true, true, true, false, false, false]
    );
    // A human member is an end user: no admin rights at all.
    assert_eq!(allowed(&org(OrgRole::Member), &t), [false; 8]);
    // An org admin may look at but not change an owner.
    assert_eq!(
        allowed(&org(OrgRole::Admin), &owner_of(ACME)),
        [true, false, false, false, false, false, false, false]
    );
}

#[test]
fn nobody_outside_the_organization_gets_anything() {
    for role in [OrgRole::Owner, OrgRole::Admin, OrgRole::Member] {
        assert_eq!(
            allowed(&org(role), &member_of(GLOBEX)),
            [false; 8],
            "{role}"
        );
        assert_eq!(
            allowed(&key(role), &member_of(GLOBEX)),
            [false; 8],
            "{role} key"
        );
        assert!(!can(
            &org(role),
            Action::Edit,
            &Target::Organization(GLOBEX)
        ));
        assert!(!can(&org(role), Action::View, &Target::Site));
    }
    // A user in no organization is out of reach of every org admin.
    let loner = Target::User {
        id: 5,
        staff_role: None,
        orgs: vec![],
    };
    assert_eq!(allowed(&org(OrgRole::Owner), &loner), [false; 8]);
}

#[test]
fn shared_users_need_every_organization_for_destructive_actions() {
    let shared = Target::User {
        id: 5,
        staff_role: None,
        orgs: vec![(ACME, OrgRole::Member), (GLOBEX, OrgRole::Member)],
    };
    let admin = org(OrgRole::Admin);
    assert!(can(&admin, Action::View, &shared));
    assert!(can(&admin, Action::Edit, &shared));
    assert!(!can(&admin, Action::Suspend, &shared));
    assert!(!can(&admin, Action::Delete, &shared));
}

#[test]
fn api_keys_with_member_role_read_only() {
    let t = member_of(ACME);
    assert_eq!(
        allowed(&key(OrgRole::Member), &t),
        [true, false, false, false, false, false, false, false]
    );
    assert_eq!(
        allowed(&key(OrgRole::Admin), &t),
        allowed(&org(OrgRole::Admin), &t)
    );
    assert!(key(OrgRole::Member).is_admin_user());
    assert!(!org(OrgRole::Member).is_admin_user());
}

#[test]
fn nobody_changes_themselves_except_viewing() {
    let me = Target::User {
        id: 100,
        staff_role: None,
        orgs: vec![(ACME, OrgRole::Admin)],
    };
    let admin = org(OrgRole::Owner);
    assert!(can(&admin, Action::View, &me));
    assert!(!can(&admin, Action::Suspend, &me));
    assert!(!can(&admin, Action::Delete, &me));
}

#[test]
fn anonymous_has_no_roles_and_no_rights() {
    let anon = Actor::user(0, None, vec![]);
    assert_eq!(allowed(&anon, &member_of(ACME)), [false; 8]);
    assert!(!can(&anon, Action::View, &Target::Site));
    assert!(!anon.is_admin_user());
}
