//! Who may do what to which record. Every service and route asks [`authorize`];
//! no other code decides access.

use serde::{Deserialize, Serialize};

use crate::error::CoreError;

macro_rules! string_enum {
    ($name:ident { $($variant:ident => $s:literal),+ $(,)? }) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "lowercase")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $s),+ }
            }
            pub fn parse(s: &str) -> Option<Self> {
                match s.trim().to_ascii_lowercase().as_str() { $($s => Some($name::$variant),)+ _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use string_enum;

// Variants are declared weakest first so that `Ord` ranks them.
string_enum!(StaffRole { Viewer => "viewer", Admin => "admin", Owner => "owner" });
string_enum!(OrgRole { Member => "member", Admin => "admin", Owner => "owner" });

/// Who is acting: a signed-in user, an API key, or the system itself (CLI, seeds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    User(i64),
    ApiKey(i64),
    /// A directory syncing one organization over SCIM, by its token.
    ScimToken(i64),
    System,
}

/// An actor with the roles it holds. `org_roles` lists the organizations it
/// belongs to; API keys scoped to an organization carry their role there.
#[derive(Debug, Clone)]
pub struct Actor {
    pub principal: Principal,
    pub staff_role: Option<StaffRole>,
    pub org_roles: Vec<(i64, OrgRole)>,
    /// Members of an organization may read it only through an API key whose role
    /// says so; a human member is an end user and sees no admin data.
    pub members_may_read: bool,
    pub ip: Option<String>,
}

impl Actor {
    pub fn system() -> Self {
        Actor {
            principal: Principal::System,
            staff_role: Some(StaffRole::Owner),
            org_roles: Vec::new(),
            members_may_read: true,
            ip: None,
        }
    }

    pub fn user(id: i64, staff_role: Option<StaffRole>, org_roles: Vec<(i64, OrgRole)>) -> Self {
        Actor {
            principal: Principal::User(id),
            staff_role,
            org_roles,
            members_may_read: false,
            ip: None,
        }
    }

    pub fn with_ip(mut self, ip: Option<String>) -> Self {
        self.ip = ip;
        self
    }

    /// How the actor is named in the audit log.
    pub fn label(&self) -> String {
        match self.principal {
            Principal::User(id) => format!("user:{id}"),
            Principal::ApiKey(id) => format!("api_key:{id}"),
            Principal::ScimToken(id) => format!("scim_token:{id}"),
            Principal::System => "system".to_owned(),
        }
    }

    pub fn user_id(&self) -> Option<i64> {
        match self.principal {
            Principal::User(id) => Some(id),
            _ => None,
        }
    }

    pub fn role_in(&self, org: i64) -> Option<OrgRole> {
        self.org_roles
            .iter()
            .find(|(o, _)| *o == org)
            .map(|(_, r)| *r)
    }

    /// Organizations whose users this actor may see, or `None` for all of them.
    pub fn visible_orgs(&self) -> Option<Vec<i64>> {
        if self.staff_role.is_some() {
            return None;
        }
        Some(
            self.org_roles
                .iter()
                .filter(|(_, r)| *r >= OrgRole::Admin || self.members_may_read)
                .map(|(o, _)| *o)
                .collect(),
        )
    }

    /// True when the actor may open the admin area at all.
    pub fn is_admin_user(&self) -> bool {
        self.visible_orgs().is_none_or(|orgs| !orgs.is_empty())
    }
}

/// What the actor wants to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Read a record (user, organization, sessions, attempts, invitations).
    View,
    /// Change a user's names, profile, tags, local login, or an organization's settings.
    Edit,
    /// Suspend or restore a user, revoke their sessions, clear a lockout.
    Suspend,
    /// Delete a user or an organization permanently.
    Delete,
    /// Invite to, add to, or change a role in an organization, granting `role`.
    GrantOrgRole(OrgRole),
    /// Give or take a staff role.
    GrantStaffRole,
    /// Create organizations, tags and API keys; import users; read the whole audit log.
    ManageSite,
    /// Export or import users of the target's scope.
    ImportExport,
}

/// The record acted upon.
#[derive(Debug, Clone)]
pub enum Target {
    /// The site as a whole (dashboards, global lists, creating organizations).
    Site,
    Organization(i64),
    /// A user with their staff role and the organizations they belong to (with roles).
    User {
        id: i64,
        staff_role: Option<StaffRole>,
        orgs: Vec<(i64, OrgRole)>,
    },
}

/// The one decision: may `actor` do `action` to `target`?
pub fn can(actor: &Actor, action: Action, target: &Target) -> bool {
    if let Some(staff) = actor.staff_role {
        return staff_can(staff, action, target);
    }
    let read_only_ok = actor.members_may_read;
    match target {
        Target::Site => false,
        Target::Organization(org) => match actor.role_in(*org) {
            None => false,
            Some(role) => org_can(role, read_only_ok, action, None),
        },
        Target::User {
            id,
            staff_role,
            orgs,
        } => {
            // Org admins never act on staff, and only on users of their own org.
            if staff_role.is_some() && action != Action::View {
                return false;
            }
            if orgs.is_empty() {
                return false;
            }
            // Deleting a user destroys their rows in every organization, so the
            // actor must administer every organization the user belongs to.
            let needs_all = matches!(action, Action::Delete | Action::Suspend);
            let allowed_in = |(org, target_role): &(i64, OrgRole)| match actor.role_in(*org) {
                None => false,
                Some(role) => {
                    org_can(role, read_only_ok, action, Some(*target_role))
                        && (Some(*id) != actor.user_id() || action == Action::View)
                }
            };
            if needs_all {
                orgs.iter().all(allowed_in)
            } else {
                orgs.iter().any(allowed_in)
            }
        }
    }
}

fn staff_can(staff: StaffRole, action: Action, target: &Target) -> bool {
    match staff {
        StaffRole::Owner => true,
        StaffRole::Viewer => action == Action::View,
        StaffRole::Admin => match (action, target) {
            (Action::GrantStaffRole, _) => false,
            // Staff admins do not act on staff owners.
            (
                _,
                Target::User {
                    staff_role: Some(StaffRole::Owner),
                    ..
                },
            ) => action == Action::View,
            _ => true,
        },
    }
}

fn org_can(
    role: OrgRole,
    members_may_read: bool,
    action: Action,
    target_role: Option<OrgRole>,
) -> bool {
    match role {
        OrgRole::Member => members_may_read && action == Action::View,
        OrgRole::Admin => match action {
            Action::View | Action::Edit | Action::Suspend | Action::ImportExport => {
                target_role != Some(OrgRole::Owner) || action == Action::View
            }
            Action::Delete => target_role.is_some_and(|r| r < OrgRole::Owner),
            Action::GrantOrgRole(granted) => {
                granted < OrgRole::Owner && target_role != Some(OrgRole::Owner)
            }
            Action::GrantStaffRole | Action::ManageSite => false,
        },
        OrgRole::Owner => {
            !matches!(action, Action::GrantStaffRole | Action::ManageSite)
                && (target_role.is_some() || action != Action::Delete)
        }
    }
}

/// [`can`] as a `Result`, for services.
pub fn authorize(actor: &Actor, action: Action, target: &Target) -> Result<(), CoreError> {
    if can(actor, action, target) {
        Ok(())
    } else {
        Err(CoreError::Forbidden)
    }
}
