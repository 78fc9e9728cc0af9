//! Organizations and memberships. An organization always keeps at least one owner.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;
use serde_json::json;

use crate::audit;
use crate::authz::{authorize, Action, Actor, OrgRole, Target};
use crate::db::DbConnection;
use crate::error::{CoreError, CoreResult};
use crate::schema::{memberships, organizations, users};
use crate::time::now;
use crate::users::unique_violation;
use crate::validate::{self, MAX_NAME};

/// An organization: a customer account whose users are its members.
#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = organizations)]
pub struct Organization {
    /// The organization's id.
    pub id: i64,
    /// The URL name: lower-case letters, digits and hyphens, unique.
    pub slug: String,
    /// The name to show.
    pub name: String,
    /// The email domains members must have, comma-separated; empty allows any.
    /// [`Organization::domains`] splits it.
    pub allowed_email_domains: String,
    /// When it was created (UTC).
    pub created_at: NaiveDateTime,
    /// When it last changed (UTC).
    pub updated_at: NaiveDateTime,
    /// Members must use two-step sign-in (see `mfa::policy`).
    pub require_mfa: bool,
    /// What a directory's `DELETE /Users/{id}` does: `membership` (the user
    /// leaves the organization) or `user` (the account is deleted).
    pub scim_delete: String,
}

impl Organization {
    /// The allowed email domains; empty when any domain is allowed.
    pub fn domains(&self) -> Vec<&str> {
        self.allowed_email_domains
            .split(',')
            .filter(|d| !d.is_empty())
            .collect()
    }

    /// True when the organization has no domain list or the email's domain is on it.
    pub fn allows_email(&self, email: &str) -> bool {
        let domains = self.domains();
        domains.is_empty() || domains.contains(&validate::domain_of(email))
    }
}

/// A user's membership in an organization.
#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = memberships)]
pub struct Membership {
    /// The member's id.
    pub user_id: i64,
    /// The organization's id.
    pub organization_id: i64,
    /// The role's stored name (see [`OrgRole`]).
    pub role: String,
    /// When the user joined (UTC).
    pub created_at: NaiveDateTime,
}

/// Loads an organization by id, without an access check;
/// [`CoreError::NotFound`] when there is none.
pub fn get(conn: &mut DbConnection, id: i64) -> CoreResult<Organization> {
    organizations::table
        .find(id)
        .select(Organization::as_select())
        .first(conn)
        .optional()?
        .ok_or(CoreError::NotFound("organization"))
}

/// Loads an organization by slug (trimmed and lower-cased first), without an
/// access check; [`CoreError::NotFound`] when there is none.
pub fn get_by_slug(conn: &mut DbConnection, slug: &str) -> CoreResult<Organization> {
    organizations::table
        .filter(organizations::slug.eq(slug.trim().to_ascii_lowercase()))
        .select(Organization::as_select())
        .first(conn)
        .optional()?
        .ok_or(CoreError::NotFound("organization"))
}

/// Organizations the actor may see, by name.
pub fn list(conn: &mut DbConnection, actor: &Actor) -> CoreResult<Vec<Organization>> {
    let mut q = organizations::table.into_boxed();
    if let Some(orgs) = actor.visible_orgs() {
        q = q.filter(organizations::id.eq_any(orgs));
    }
    Ok(q.order(organizations::name.asc())
        .select(Organization::as_select())
        .load(conn)?)
}

/// Creates an organization. Only staff who may manage the site can; refuses
/// an invalid or taken slug ([`CoreError::DuplicateSlug`]), an empty or
/// too-long name, and invalid domains. `domains` is a comma-separated list;
/// empty allows any email domain.
pub fn create(
    conn: &mut DbConnection,
    actor: &Actor,
    slug: &str,
    name: &str,
    domains: &str,
) -> CoreResult<Organization> {
    authorize(actor, Action::ManageSite, &Target::Site)?;
    let slug = validate::slug(slug)?;
    let name = validate::text("name", name, MAX_NAME)?;
    if name.is_empty() {
        return Err(CoreError::Invalid {
            field: "name",
            reason: "must not be empty".into(),
        });
    }
    let domains = validate::domains(domains)?.join(",");
    crate::db::write_transaction(conn, |conn| {
        let t = now();
        let org = diesel::insert_into(organizations::table)
            .values((
                organizations::slug.eq(&slug),
                organizations::name.eq(&name),
                organizations::allowed_email_domains.eq(&domains),
                organizations::created_at.eq(t),
                organizations::updated_at.eq(t),
            ))
            .returning(organizations::all_columns)
            .get_result(conn);
        let org: Organization = match org {
            Err(e) if unique_violation(&e) => return Err(CoreError::DuplicateSlug(slug.clone())),
            other => other?,
        };
        audit::record(
            conn,
            actor,
            "organization.create",
            &format!("organization:{}", org.id),
            Some(org.id),
            json!({"slug": slug, "name": name, "allowed_email_domains": domains}),
        )?;
        Ok(org)
    })
}

/// Changes an organization's name. The actor must be allowed to edit it;
/// refuses an empty or too-long name.
pub fn rename(
    conn: &mut DbConnection,
    actor: &Actor,
    id: i64,
    name: &str,
) -> CoreResult<Organization> {
    authorize(actor, Action::Edit, &Target::Organization(id))?;
    let name = validate::text("name", name, MAX_NAME)?;
    if name.is_empty() {
        return Err(CoreError::Invalid {
            field: "name",
            reason: "must not be empty".into(),
        });
    }
    crate::db::write_transaction(conn, |conn| {
        let old = get(conn, id)?;
        let org = diesel::update(organizations::table.find(id))
            .set((
                organizations::name.eq(&name),
                organizations::updated_at.eq(now()),
            ))
            .returning(organizations::all_columns)
            .get_result(conn)?;
        audit::record(
            conn,
            actor,
            "organization.rename",
            &format!("organization:{id}"),
            Some(id),
            json!({"from": old.name, "to": name}),
        )?;
        Ok(org)
    })
}

/// Saves an organization's settings in one transaction: the name (when
/// given and different), then the allowed email domains (when given). With
/// neither it only checks that `actor` may edit it. For the organization
/// page's form and the API's `PATCH`.
pub fn update(
    conn: &mut DbConnection,
    actor: &Actor,
    id: i64,
    name: Option<&str>,
    domains: Option<&str>,
) -> CoreResult<Organization> {
    crate::db::write_transaction(conn, |conn| {
        authorize(actor, Action::Edit, &Target::Organization(id))?;
        let mut org = get(conn, id)?;
        if let Some(name) = name.filter(|n| *n != org.name) {
            org = rename(conn, actor, id, name)?;
        }
        if let Some(domains) = domains {
            org = set_allowed_domains(conn, actor, id, domains)?;
        }
        Ok(org)
    })
}

/// Replaces the allowed email domains (comma-separated; empty allows any).
/// Existing members are not removed. The actor must be allowed to edit the
/// organization.
pub fn set_allowed_domains(
    conn: &mut DbConnection,
    actor: &Actor,
    id: i64,
    domains: &str,
) -> CoreResult<Organization> {
    authorize(actor, Action::Edit, &Target::Organization(id))?;
    let domains = validate::domains(domains)?.join(",");
    crate::db::write_transaction(conn, |conn| {
        get(conn, id)?;
        let org = diesel::update(organizations::table.find(id))
            .set((
                organizations::allowed_email_domains.eq(&domains),
                organizations::updated_at.eq(now()),
            ))
            .returning(organizations::all_columns)
            .get_result(conn)?;
        audit::record(
            conn,
            actor,
            "organization.domains",
            &format!("organization:{id}"),
            Some(id),
            json!({"allowed_email_domains": domains}),
        )?;
        Ok(org)
    })
}

/// Deletes an organization with its memberships and invitations (cascade).
pub fn delete(conn: &mut DbConnection, actor: &Actor, id: i64) -> CoreResult<()> {
    authorize(actor, Action::Delete, &Target::Organization(id))?;
    crate::db::write_transaction(conn, |conn| {
        let org = get(conn, id)?;
        diesel::delete(organizations::table.find(id)).execute(conn)?;
        audit::record(
            conn,
            actor,
            "organization.delete",
            &format!("organization:{id}"),
            Some(id),
            json!({"slug": org.slug}),
        )?;
        Ok(())
    })
}

/// The organizations a user belongs to, with their role in each.
pub fn roles_of(conn: &mut DbConnection, user_id: i64) -> CoreResult<Vec<(i64, OrgRole)>> {
    let rows: Vec<(i64, String)> = memberships::table
        .filter(memberships::user_id.eq(user_id))
        .select((memberships::organization_id, memberships::role))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .filter_map(|(o, r)| OrgRole::parse(&r).map(|r| (o, r)))
        .collect())
}

/// The organization's members with each one's email, ordered by email. No
/// access check.
pub fn members(conn: &mut DbConnection, org: i64) -> CoreResult<Vec<(Membership, String)>> {
    Ok(memberships::table
        .inner_join(users::table)
        .filter(memberships::organization_id.eq(org))
        .order(users::email.asc())
        .select((Membership::as_select(), users::email))
        .load(conn)?)
}

pub(crate) fn insert_membership(
    conn: &mut DbConnection,
    user_id: i64,
    org: i64,
    role: OrgRole,
) -> CoreResult<()> {
    let r = diesel::insert_into(memberships::table)
        .values((
            memberships::user_id.eq(user_id),
            memberships::organization_id.eq(org),
            memberships::role.eq(role.as_str()),
            memberships::created_at.eq(now()),
        ))
        .execute(conn);
    match r {
        Err(e) if unique_violation(&e) => Err(CoreError::AlreadyMember),
        other => {
            other?;
            Ok(())
        }
    }
}

/// Adds an existing user to the organization with `role`. The actor must be
/// allowed to grant that role there; refuses a user already a member
/// ([`CoreError::AlreadyMember`]) and an email outside the allowed domains.
pub fn add_member(
    conn: &mut DbConnection,
    actor: &Actor,
    org: i64,
    user_id: i64,
    role: OrgRole,
) -> CoreResult<()> {
    authorize(
        actor,
        Action::GrantOrgRole(role),
        &Target::Organization(org),
    )?;
    crate::db::write_transaction(conn, |conn| {
        let o = get(conn, org)?;
        // Only users the actor can already see (staff: anyone; an organization
        // admin: members of their organizations). Anyone else is "not found",
        // exactly like a missing user: adding an outsider would open their
        // profile, sessions and sign-in history to this admin. Outsiders are
        // invited instead, and accept for themselves.
        let user = crate::users::get_for(conn, actor, user_id, Action::View)?;
        if !o.allows_email(&user.email) {
            return Err(CoreError::DomainNotAllowed);
        }
        insert_membership(conn, user_id, org, role)?;
        audit::record(
            conn,
            actor,
            "membership.add",
            &format!("user:{user_id}"),
            Some(org),
            json!({"organization": o.slug, "role": role}),
        )?;
        Ok(())
    })
}

fn current_role(conn: &mut DbConnection, org: i64, user_id: i64) -> CoreResult<OrgRole> {
    let role: Option<String> = memberships::table
        .find((user_id, org))
        .select(memberships::role)
        .first(conn)
        .optional()?;
    role.and_then(|r| OrgRole::parse(&r))
        .ok_or(CoreError::NotFound("membership"))
}

/// Fails with `LastOwner` unless the organization has an owner besides `except`.
/// It first writes the organization row, which serializes concurrent owner
/// changes (row lock on PostgreSQL, write lock on SQLite).
pub(crate) fn ensure_other_owner(conn: &mut DbConnection, org: i64, except: i64) -> CoreResult<()> {
    diesel::update(organizations::table.find(org))
        .set(organizations::updated_at.eq(now()))
        .execute(conn)?;
    let others: i64 = memberships::table
        .filter(memberships::organization_id.eq(org))
        .filter(memberships::role.eq(OrgRole::Owner.as_str()))
        .filter(memberships::user_id.ne(except))
        .count()
        .get_result(conn)?;
    if others == 0 {
        Err(CoreError::LastOwner)
    } else {
        Ok(())
    }
}

/// Changes a member's role. The actor must be allowed to grant the new role
/// to this member (org admins cannot change an owner); refuses to demote the
/// last owner ([`CoreError::LastOwner`]).
pub fn change_role(
    conn: &mut DbConnection,
    actor: &Actor,
    org: i64,
    user_id: i64,
    role: OrgRole,
) -> CoreResult<()> {
    crate::db::write_transaction(conn, |conn| {
        let old = current_role(conn, org, user_id)?;
        let target = Target::User {
            id: user_id,
            staff_role: None,
            orgs: vec![(org, old)],
        };
        authorize(actor, Action::GrantOrgRole(role), &target)?;
        if old == OrgRole::Owner && role != OrgRole::Owner {
            ensure_other_owner(conn, org, user_id)?;
        }
        diesel::update(memberships::table.find((user_id, org)))
            .set(memberships::role.eq(role.as_str()))
            .execute(conn)?;
        audit::record(
            conn,
            actor,
            "membership.role",
            &format!("user:{user_id}"),
            Some(org),
            json!({"from": old, "to": role}),
        )?;
        Ok(())
    })
}

/// Removes a member from the organization (their groups and licences there
/// go too). Refuses to remove the last owner ([`CoreError::LastOwner`]).
pub fn remove_member(
    conn: &mut DbConnection,
    actor: &Actor,
    org: i64,
    user_id: i64,
) -> CoreResult<()> {
    crate::db::write_transaction(conn, |conn| {
        let old = current_role(conn, org, user_id)?;
        let target = Target::User {
            id: user_id,
            staff_role: None,
            orgs: vec![(org, old)],
        };
        authorize(actor, Action::GrantOrgRole(old), &target)?;
        if old == OrgRole::Owner {
            ensure_other_owner(conn, org, user_id)?;
        }
        diesel::delete(memberships::table.find((user_id, org))).execute(conn)?;
        crate::groups::leave_org(conn, org, user_id)?;
        crate::licences::leave_org(conn, org, user_id)?;
        audit::record(
            conn,
            actor,
            "membership.remove",
            &format!("user:{user_id}"),
            Some(org),
            json!({"role": old}),
        )?;
        Ok(())
    })
}

/// A user's memberships with their organizations, by organization name.
pub fn memberships_of(
    conn: &mut DbConnection,
    user_id: i64,
) -> CoreResult<Vec<(Membership, Organization)>> {
    Ok(memberships::table
        .inner_join(organizations::table)
        .filter(memberships::user_id.eq(user_id))
        .order(organizations::name.asc())
        .select((Membership::as_select(), Organization::as_select()))
        .load(conn)?)
}
