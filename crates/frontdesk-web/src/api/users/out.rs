//! How the API shows a user: the list row, the detail with memberships,
//! tags, factors and a summary of sessions.

use chrono::{DateTime, Utc};
use frontdesk_core::sessions::{self, SessionConfig};
use frontdesk_core::users::query::Page;
use frontdesk_core::users::User;
use frontdesk_core::{organizations, tags, Actor, CoreError, DbConnection};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::api::params::Pagination;
use crate::api::utc;

/// A user as the API shows them.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserOut {
    pub id: i64,
    pub email: String,
    pub email_verified: bool,
    pub first_name: String,
    pub last_name: String,
    pub display_name: Option<String>,
    /// Display name, else first and last name, else the email.
    pub name: String,
    /// `pending` (never signed in nor set their own password), `active` or `suspended`.
    #[schema(example = "active")]
    pub status: String,
    pub suspended_reason: Option<String>,
    pub suspended_at: Option<DateTime<Utc>>,
    /// When a timed suspension ends (the user is then restored by itself);
    /// null for an open-ended one or an active user.
    pub suspended_until: Option<DateTime<Utc>>,
    /// `viewer`, `admin`, `owner`, or null for end users.
    pub staff_role: Option<String>,
    pub local_login_enabled: bool,
    /// The user has a confirmed second factor (an authenticator app or a
    /// passkey) and is asked for it after the password.
    pub mfa_enabled: bool,
    /// Host-defined profile fields.
    #[schema(value_type = Object)]
    pub profile: Map<String, Value>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_login_at: Option<DateTime<Utc>>,
    pub last_active_at: Option<DateTime<Utc>>,
    /// The version of the host's terms accepted at sign-up, if any.
    pub terms_version: Option<String>,
    pub terms_accepted_at: Option<DateTime<Utc>>,
}

impl From<&User> for UserOut {
    fn from(u: &User) -> Self {
        UserOut {
            id: u.id,
            email: u.email.clone(),
            email_verified: u.email_verified,
            first_name: u.first_name.clone(),
            last_name: u.last_name.clone(),
            display_name: u.display_name.clone(),
            name: u.name(),
            status: u.account_status().as_str().to_owned(),
            suspended_reason: u.suspended_reason.clone(),
            suspended_at: u.suspended_at.map(utc),
            suspended_until: u.suspended_until.map(utc),
            staff_role: u.staff_role.clone(),
            local_login_enabled: u.local_login_enabled,
            mfa_enabled: false,
            profile: u.profile_map(),
            created_at: utc(u.created_at),
            updated_at: utc(u.updated_at),
            last_login_at: u.last_login_at.map(utc),
            last_active_at: u.last_active_at.map(utc),
            terms_version: u.terms_version.clone(),
            terms_accepted_at: u.terms_accepted_at.map(utc),
        }
    }
}

/// A user in a list: the user and where they signed in.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserListItem {
    #[serde(flatten)]
    pub user: UserOut,
    /// The slugs of the services the user signed in on (the detail lists
    /// them with their sign-in times instead).
    pub services: Vec<String>,
    /// In an organization's users list: the keys of the licences the user
    /// holds there, directly or through a group (the detail lists them
    /// with their sources instead).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub licences: Option<Vec<String>>,
    /// In an organization's users list: the groups of that organization the
    /// user belongs to, by name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<GroupRef>>,
}

/// A group as a list names it.
#[derive(Debug, Serialize, ToSchema)]
pub struct GroupRef {
    pub id: i64,
    pub name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserList {
    pub users: Vec<UserListItem>,
    pub pagination: Pagination,
}

impl UserList {
    /// Each user's service slugs ([`frontdesk_core::services::slugs_among`]).
    pub fn with_services(
        mut self,
        mut by_user: std::collections::HashMap<i64, Vec<String>>,
    ) -> Self {
        for u in &mut self.users {
            u.services = by_user.remove(&u.user.id).unwrap_or_default();
        }
        self
    }

    /// Each user's groups in one organization
    /// ([`frontdesk_core::groups::of_users`]).
    pub fn with_groups(
        mut self,
        mut by_user: std::collections::BTreeMap<i64, Vec<(i64, String)>>,
    ) -> Self {
        for u in &mut self.users {
            u.groups = Some(
                by_user
                    .remove(&u.user.id)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(id, name)| GroupRef { id, name })
                    .collect(),
            );
        }
        self
    }

    /// Each user's effective licence keys in one organization.
    pub fn with_licences(
        mut self,
        mut by_user: std::collections::BTreeMap<
            i64,
            std::collections::BTreeMap<i64, Vec<frontdesk_core::licences::Effective>>,
        >,
    ) -> Self {
        for u in &mut self.users {
            u.licences = Some(
                by_user
                    .remove(&u.user.id)
                    .into_iter()
                    .flat_map(|m| m.into_values().flatten())
                    .map(|e| e.key)
                    .collect(),
            );
        }
        self
    }

    /// A page of users; `mfa` holds those of them with a second factor
    /// ([`frontdesk_core::mfa::enabled_among`], one query per page).
    pub fn from_page(page: &Page<User>, mfa: &std::collections::HashSet<i64>) -> Self {
        UserList {
            users: page
                .items
                .iter()
                .map(|u| {
                    let mut user = UserOut::from(u);
                    user.mfa_enabled = mfa.contains(&u.id);
                    UserListItem {
                        user,
                        services: Vec::new(),
                        licences: None,
                        groups: None,
                    }
                })
                .collect(),
            pagination: Pagination {
                page: page.page,
                limit: page.limit,
                total: page.total,
                total_is_exact: page.total_is_exact,
            },
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MembershipOut {
    pub organization_id: i64,
    pub organization_slug: String,
    pub organization_name: String,
    #[schema(example = "member")]
    pub role: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionSummary {
    /// Sessions that can still be used.
    pub active_count: i64,
    /// When the newest of them began.
    pub last_created_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TagRef {
    pub id: i64,
    pub name: String,
}

/// A second factor of the user: never its secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct FactorOut {
    /// `totp` (an authenticator app) or `passkey`.
    #[schema(example = "totp")]
    pub kind: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// An account at an identity provider the user signs in with.
#[derive(Debug, Serialize, ToSchema)]
pub struct LinkedIdentity {
    /// The provider's key (`org:<slug>` for an organization's provider).
    #[schema(example = "org:acme")]
    pub provider: String,
    /// The user's id at the provider (the ID token's `sub`).
    pub provider_user_id: String,
    /// The email the provider gave, when it gave one.
    pub email: Option<String>,
    pub linked_at: DateTime<Utc>,
}

/// A user with memberships, tags and a summary of their sessions.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserDetail {
    #[serde(flatten)]
    pub user: UserOut,
    /// Only organizations the caller may see are listed.
    pub memberships: Vec<MembershipOut>,
    pub tags: Vec<TagRef>,
    pub sessions: SessionSummary,
    /// Accounts at identity providers linked to this user.
    pub linked_identities: Vec<LinkedIdentity>,
    /// The user keeps password (and passkey) sign-in even in organizations
    /// that require single sign-on.
    pub sso_exempt: bool,
    /// Confirmed second factors (kind, name, when added and last used).
    pub mfa_factors: Vec<FactorOut>,
    /// Unused recovery codes left.
    pub mfa_recovery_codes_left: i64,
    /// The services the user signed in on, with the first and latest sign-in.
    pub services: Vec<ServiceOut>,
    /// The licences the user holds in each organization the caller may see,
    /// with their sources (`direct`, or a group).
    pub licences: Vec<crate::api::licences::HeldLicence>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ServiceOut {
    pub id: i64,
    pub slug: String,
    pub name: String,
    pub first_login_at: DateTime<Utc>,
    pub last_login_at: DateTime<Utc>,
}

/// The detail of a user the actor has already been allowed to see.
pub fn detail_of(
    conn: &mut DbConnection,
    actor: &Actor,
    user: &User,
    config: &SessionConfig,
) -> Result<UserDetail, CoreError> {
    let visible = actor.visible_orgs();
    let memberships = organizations::memberships_of(conn, user.id)?
        .into_iter()
        .filter(|(m, _)| {
            visible
                .as_ref()
                .is_none_or(|v| v.contains(&m.organization_id))
        })
        .map(|(m, o)| MembershipOut {
            organization_id: o.id,
            organization_slug: o.slug,
            organization_name: o.name,
            role: m.role,
            created_at: utc(m.created_at),
        })
        .collect();
    let tags = tags::tags_of(conn, user.id)?
        .into_iter()
        .map(|t| TagRef {
            id: t.id,
            name: t.name,
        })
        .collect();
    let (active_count, last) = sessions::summary_for_user(conn, user.id, config)?;
    let mfa = frontdesk_core::mfa::summary(conn, user.id)?;
    let licences = frontdesk_core::licences::effective_everywhere(conn, user.id)?
        .into_iter()
        .filter(|(org, _)| visible.as_ref().is_none_or(|v| v.contains(org)))
        .flat_map(|(org, held)| {
            held.into_iter()
                .map(move |e| crate::api::licences::held(org, e))
        })
        .collect();
    let mut out = UserOut::from(user);
    out.mfa_enabled = mfa.enabled;
    Ok(UserDetail {
        user: out,
        mfa_factors: mfa
            .factors
            .into_iter()
            .map(|f| FactorOut {
                kind: f.kind,
                name: f.name,
                created_at: utc(f.created_at),
                last_used_at: f.last_used_at.map(utc),
            })
            .collect(),
        mfa_recovery_codes_left: mfa.recovery_codes_left,
        memberships,
        tags,
        sessions: SessionSummary {
            active_count,
            last_created_at: last.map(utc),
        },
        linked_identities: frontdesk_core::sso::identities(conn, user.id)?
            .into_iter()
            .map(|i| LinkedIdentity {
                provider: i.provider,
                provider_user_id: i.provider_user_id,
                email: i.email,
                linked_at: utc(i.linked_at),
            })
            .collect(),
        licences,
        sso_exempt: frontdesk_core::sso::is_exempt(conn, user.id)?,
        services: frontdesk_core::services::of_user(conn, user.id)?
            .into_iter()
            .map(|s| ServiceOut {
                id: s.service.id,
                slug: s.service.slug,
                name: s.service.name,
                first_login_at: utc(s.first_login_at),
                last_login_at: utc(s.last_login_at),
            })
            .collect(),
    })
}
