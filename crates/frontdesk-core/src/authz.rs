//! Who may do what to which record. Every service and route asks [`authorize`];
//! no other code decides access.

use serde::{Deserialize, Serialize};

use crate::error::CoreError;

macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $s:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "lowercase")]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            /// Every value, in the order they are declared.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// The name the value is stored and shown as; `Display` writes
            /// the same.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $s),+ }
            }
            /// The value a stored or typed name stands for, ignoring case and
            /// surrounding spaces; `None` for any other text.
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
string_enum!(
    /// A role on the whole site, held by staff; users who are not staff have none.
    StaffRole {
        /// Reads everything, changes nothing.
        Viewer => "viewer",
        /// Does everything but give or take staff roles, and does not act on
        /// staff owners.
        Admin => "admin",
        /// Does everything.
        Owner => "owner",
    }
);
string_enum!(
    /// A member's role in one organization.
    OrgRole {
        /// An end user of the organization; sees no admin data.
        Member => "member",
        /// Manages the organization's members, but not its owners.
        Admin => "admin",
        /// Manages the organization and its admins.
        Owner => "owner",
    }
);

/// Who is acting: a signed-in user, an API key, or the system itself (CLI, seeds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// A signed-in user, by id.
    User(i64),
    /// An API key, by id.
    ApiKey(i64),
    /// A directory syncing one organization over SCIM, by its token.
    ScimToken(i64),
    /// frontdesk itself or the host's own code (CLI, seeds, jobs), with every right.
    System,
}

/// An actor with the roles it holds. `org_roles` lists the organizations it
/// belongs to; API keys scoped to an organization carry their role there.
#[derive(Debug, Clone)]
pub struct Actor {
    /// Who is acting.
    pub principal: Principal,
    /// The actor's staff role, if any; it decides every action on the site.
    pub staff_role: Option<StaffRole>,
    /// The organizations the actor belongs to, with its role in each.
    pub org_roles: Vec<(i64, OrgRole)>,
    /// Members of an organization may read it only through an API key whose role
    /// says so; a human member is an end user and sees no admin data.
    pub members_may_read: bool,
    /// The client's IP address, kept in the audit log; `None` when unknown.
    pub ip: Option<String>,
}

impl Actor {
    /// The system actor: a staff owner, allowed everything. For the CLI, seeds
    /// and the host's own jobs; its audit rows say `system`.
    pub fn system() -> Self {
        Actor {
            principal: Principal::System,
            staff_role: Some(StaffRole::Owner),
            org_roles: Vec::new(),
            members_may_read: true,
            ip: None,
        }
    }

    /// A signed-in user with their staff role and memberships. Members do not
    /// read admin data through this actor (`members_may_read` is false).
    pub fn user(id: i64, staff_role: Option<StaffRole>, org_roles: Vec<(i64, OrgRole)>) -> Self {
        Actor {
            principal: Principal::User(id),
            staff_role,
            org_roles,
            members_may_read: false,
            ip: None,
        }
    }

    /// The same actor with the client's IP address, for the audit log.
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

    /// The user's id when the actor is a signed-in user; `None` for API keys,
    /// SCIM tokens and the system.
    pub fn user_id(&self) -> Option<i64> {
        match self.principal {
            Principal::User(id) => Some(id),
            _ => None,
        }
    }

    /// The actor's role in organization `org`, or `None` when it is not a member.
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
    /// One organization, by id.
    Organization(i64),
    /// A user with their staff role and the organizations they belong to (with roles).
    User {
        /// The user's id.
        id: i64,
        /// The user's staff role, if any.
        staff_role: Option<StaffRole>,
        /// The organizations the user belongs to, with their role in each.
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
