//! Groups inside an organization: a name, a description, members (who must
//! belong to the organization) and, optionally, an organization role that
//! every member holds at least. Directories (SCIM) manage the same groups.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;
use serde_json::json;

use crate::audit;
use crate::authz::{authorize, Action, Actor, OrgRole, Target};
use crate::db::DbConnection;
use crate::error::{CoreError, CoreResult};
use crate::schema::{group_members, groups, memberships, users};
use crate::time::now;
use crate::users::unique_violation;
use crate::validate::{self, MAX_NAME, MAX_TEXT};

/// A group of an organization's members, managed by an admin or a directory
/// (SCIM). A group may carry a role and licences its members then hold.
#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = groups)]
pub struct Group {
    /// The group's id.
    pub id: i64,
    /// The organization it belongs to.
    pub organization_id: i64,
    /// Its name, unique in the organization.
    pub name: String,
    /// What it is for; may be empty.
    pub description: String,
    /// The organization role members hold at least.
    pub role: Option<String>,
    /// The group's id in the directory that manages it.
    pub external_id: Option<String>,
    /// When it was created (UTC).
    pub created_at: NaiveDateTime,
    /// When it last changed (UTC).
    pub updated_at: NaiveDateTime,
}

impl Group {
    /// The role members hold at least, or `None` when the group grants none.
    pub fn org_role(&self) -> Option<OrgRole> {
        self.role.as_deref().and_then(OrgRole::parse)
    }
}

/// A group's fields as given by an admin or a directory. On update, `None`
/// leaves a field as it is (`role: Some(None)` clears the role).
#[derive(Debug, Clone, Default)]
pub struct GroupFields {
    /// The name; required on create.
    pub name: Option<String>,
    /// What the group is for.
    pub description: Option<String>,
    /// The role members hold at least; `Some(None)` clears it.
    pub role: Option<Option<OrgRole>>,
    /// The group's id in the directory; `Some(None)` clears it.
    pub external_id: Option<Option<String>>,
}

/// One member as lists show them.
#[derive(Debug, Clone, Queryable, Serialize)]
pub struct GroupMember {
    /// The member's id.
    pub user_id: i64,
    /// The member's email.
    pub email: String,
    /// The member's first name.
    pub first_name: String,
    /// The member's last name.
    pub last_name: String,
}

fn group_name(name: &str) -> CoreResult<String> {
    let name = validate::text("name", name, MAX_NAME)?;
    if name.is_empty() {
        return Err(CoreError::Invalid {
            field: "name",
            reason: "must not be empty".into(),
        });
    }
    Ok(name)
}

fn external(v: Option<&str>) -> CoreResult<Option<String>> {
    match v {
        None => Ok(None),
        Some(v) => {
            let v = validate::text("external_id", v, MAX_NAME * 2)?;
            Ok((!v.is_empty()).then_some(v))
        }
    }
}

/// The organization's groups by name.
pub fn list(conn: &mut DbConnection, actor: &Actor, org: i64) -> CoreResult<Vec<Group>> {
    authorize(actor, Action::View, &Target::Organization(org))?;
    list_unchecked(conn, org)
}

pub(crate) fn list_unchecked(conn: &mut DbConnection, org: i64) -> CoreResult<Vec<Group>> {
    Ok(groups::table
        .filter(groups::organization_id.eq(org))
        .order((groups::name.asc(), groups::id.asc()))
        .select(Group::as_select())
        .load(conn)?)
}

/// Most groups the forms offer at once (every organization together).
pub const MAX_OFFERED: i64 = 500;

/// The groups of `orgs` (organization, then name), for the forms that let an
/// admin pick groups: at most [`MAX_OFFERED`]. The caller has checked that
/// the actor may see each organization.
pub fn in_organizations(conn: &mut DbConnection, orgs: &[i64]) -> CoreResult<Vec<Group>> {
    Ok(groups::table
        .filter(groups::organization_id.eq_any(orgs))
        .order((groups::organization_id, groups::name, groups::id))
        .limit(MAX_OFFERED)
        .select(Group::as_select())
        .load(conn)?)
}

/// How many members each group of the organization has.
pub fn member_counts(conn: &mut DbConnection, org: i64) -> CoreResult<BTreeMap<i64, i64>> {
    let rows: Vec<(i64, i64)> = group_members::table
        .inner_join(groups::table)
        .filter(groups::organization_id.eq(org))
        .group_by(group_members::group_id)
        .select((group_members::group_id, diesel::dsl::count_star()))
        .load(conn)?;
    Ok(rows.into_iter().collect())
}

/// A group of `org`; a group of another organization is not found.
pub fn get(conn: &mut DbConnection, org: i64, id: i64) -> CoreResult<Group> {
    groups::table
        .find(id)
        .filter(groups::organization_id.eq(org))
        .select(Group::as_select())
        .first(conn)
        .optional()?
        .ok_or(CoreError::NotFound("group"))
}

/// Loads a group of organization `org` the actor may see;
/// [`CoreError::NotFound`] when the organization has no such group.
pub fn get_for(conn: &mut DbConnection, actor: &Actor, org: i64, id: i64) -> CoreResult<Group> {
    authorize(actor, Action::View, &Target::Organization(org))?;
    get(conn, org, id)
}

/// Members of a group by email.
pub fn members(conn: &mut DbConnection, group: i64) -> CoreResult<Vec<GroupMember>> {
    Ok(group_members::table
        .inner_join(users::table)
        .filter(group_members::group_id.eq(group))
        .order(users::email.asc())
        .select((users::id, users::email, users::first_name, users::last_name))
        .load(conn)?)
}

/// Member ids of many groups at once.
pub fn member_ids_of(
    conn: &mut DbConnection,
    group_ids: &[i64],
) -> CoreResult<BTreeMap<i64, Vec<i64>>> {
    let rows: Vec<(i64, i64)> = group_members::table
        .filter(group_members::group_id.eq_any(group_ids))
        .order((group_members::group_id, group_members::user_id))
        .select((group_members::group_id, group_members::user_id))
        .load(conn)?;
    let mut out: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for (g, u) in rows {
        out.entry(g).or_default().push(u);
    }
    Ok(out)
}

/// The groups of `org` each of `users` belongs to (id and name), for lists.
pub fn of_users(
    conn: &mut DbConnection,
    org: Option<i64>,
    user_ids: &[i64],
) -> CoreResult<BTreeMap<i64, Vec<(i64, String)>>> {
    let mut q = group_members::table
        .inner_join(groups::table)
        .filter(group_members::user_id.eq_any(user_ids))
        .into_boxed();
    if let Some(org) = org {
        q = q.filter(groups::organization_id.eq(org));
    }
    let rows: Vec<(i64, i64, String)> = q
        .order((group_members::user_id, groups::name))
        .select((group_members::user_id, groups::id, groups::name))
        .load(conn)?;
    let mut out: BTreeMap<i64, Vec<(i64, String)>> = BTreeMap::new();
    for (u, g, n) in rows {
        out.entry(u).or_default().push((g, n));
    }
    Ok(out)
}

/// The users-query condition "member of group `group`", limited to a group
/// of one of `orgs` (any organization when `None`; none when empty).
pub fn member_condition(
    group: i64,
    orgs: Option<&[i64]>,
) -> crate::users::condition::UserCondition {
    use crate::users::condition::UserCondition;
    let mut c = UserCondition::sql(
        "users.id IN (SELECT group_members.user_id FROM group_members \
         JOIN groups ON groups.id = group_members.group_id \
         WHERE group_members.group_id = ",
    )
    .bind_int(group);
    match orgs {
        None => {}
        Some([]) => c = c.push(" AND groups.organization_id IS NULL"),
        Some(list) => {
            c = c.push(" AND groups.organization_id IN (");
            for (i, o) in list.iter().enumerate() {
                if i > 0 {
                    c = c.push(", ");
                }
                c = c.bind_int(*o);
            }
            c = c.push(")");
        }
    }
    c.push(")")
}

/// The group `id` if the actor may see its organization; any other (of an
/// organization they cannot see, or none at all) is not found alike.
pub fn visible(conn: &mut DbConnection, actor: &Actor, id: i64) -> CoreResult<Group> {
    let group = groups::table
        .find(id)
        .select(Group::as_select())
        .first(conn)
        .optional()?
        .ok_or(CoreError::NotFound("group"))?;
    match authorize(
        actor,
        Action::View,
        &Target::Organization(group.organization_id),
    ) {
        Ok(()) => Ok(group),
        Err(CoreError::Forbidden) => Err(CoreError::NotFound("group")),
        Err(e) => Err(e),
    }
}

/// Groups of `org` by name (exactly as stored); names not found come back
/// in the second list, in the order given.
pub fn by_names(
    conn: &mut DbConnection,
    org: i64,
    names: &[String],
) -> CoreResult<(Vec<Group>, Vec<String>)> {
    let found: Vec<Group> = groups::table
        .filter(groups::organization_id.eq(org))
        .filter(groups::name.eq_any(names))
        .select(Group::as_select())
        .load(conn)?;
    let missing = names
        .iter()
        .filter(|n| !found.iter().any(|g| &g.name == *n))
        .cloned()
        .collect();
    Ok((found, missing))
}

/// The names of the groups each of `user_ids` belongs to, in the
/// organizations of `scope` (all when `None`), sorted, for exports.
pub fn names_of_users(
    conn: &mut DbConnection,
    user_ids: &[i64],
    scope: Option<&[i64]>,
) -> CoreResult<BTreeMap<i64, Vec<String>>> {
    let mut q = group_members::table
        .inner_join(groups::table)
        .filter(group_members::user_id.eq_any(user_ids))
        .into_boxed();
    if let Some(s) = scope {
        q = q.filter(groups::organization_id.eq_any(s));
    }
    let rows: Vec<(i64, String)> = q
        .order((group_members::user_id, groups::name))
        .select((group_members::user_id, groups::name))
        .load(conn)?;
    let mut out: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    for (u, n) in rows {
        let names = out.entry(u).or_default();
        // The same name in two organizations is written once.
        if names.last() != Some(&n) {
            names.push(n);
        }
    }
    Ok(out)
}

/// The groups a user belongs to, in every organization: (organization, name).
pub fn of_user(conn: &mut DbConnection, user_id: i64) -> CoreResult<Vec<(i64, String)>> {
    Ok(group_members::table
        .inner_join(groups::table)
        .filter(group_members::user_id.eq(user_id))
        .order((groups::organization_id, groups::name))
        .select((groups::organization_id, groups::name))
        .load(conn)?)
}

fn authorize_role(actor: &Actor, org: i64, role: Option<OrgRole>) -> CoreResult<()> {
    authorize(actor, Action::Edit, &Target::Organization(org))?;
    if let Some(role) = role {
        // A group with a role grants it: only who may grant it may set it.
        authorize(
            actor,
            Action::GrantOrgRole(role),
            &Target::Organization(org),
        )?;
    }
    Ok(())
}

/// Creates a group in organization `org`. The actor must be allowed to edit
/// the organization, and to grant the group's role; refuses a missing,
/// too-long or taken name ([`CoreError::DuplicateGroup`]).
pub fn create(
    conn: &mut DbConnection,
    actor: &Actor,
    org: i64,
    fields: GroupFields,
) -> CoreResult<Group> {
    let role = fields.role.flatten();
    authorize_role(actor, org, role)?;
    let name = group_name(fields.name.as_deref().unwrap_or(""))?;
    let description = validate::text(
        "description",
        fields.description.as_deref().unwrap_or(""),
        MAX_TEXT,
    )?;
    let external_id = external(fields.external_id.flatten().as_deref())?;
    crate::db::write_transaction(conn, |conn| {
        crate::organizations::get(conn, org)?;
        let t = now();
        let inserted = diesel::insert_into(groups::table)
            .values((
                groups::organization_id.eq(org),
                groups::name.eq(&name),
                groups::description.eq(&description),
                groups::role.eq(role.map(|r| r.as_str())),
                groups::external_id.eq(&external_id),
                groups::created_at.eq(t),
                groups::updated_at.eq(t),
            ))
            .returning(groups::all_columns)
            .get_result(conn);
        let group: Group = match inserted {
            Err(e) if unique_violation(&e) => return Err(CoreError::DuplicateGroup(name.clone())),
            other => other?,
        };
        audit::record(
            conn,
            actor,
            "group.create",
            &format!("group:{}", group.id),
            Some(org),
            json!({"name": name, "role": role, "external_id": external_id}),
        )?;
        Ok(group)
    })
}

/// Changes the fields `fields` sets, with the same checks as [`create`].
pub fn update(
    conn: &mut DbConnection,
    actor: &Actor,
    org: i64,
    id: i64,
    fields: GroupFields,
) -> CoreResult<Group> {
    authorize_role(actor, org, fields.role.flatten())?;
    let name = fields.name.as_deref().map(group_name).transpose()?;
    let description = fields
        .description
        .as_deref()
        .map(|d| validate::text("description", d, MAX_TEXT))
        .transpose()?;
    let external_id = match &fields.external_id {
        Some(v) => Some(external(v.as_deref())?),
        None => None,
    };
    crate::db::write_transaction(conn, |conn| {
        let old = get(conn, org, id)?;
        let role = match fields.role {
            Some(r) => r,
            None => old.org_role(),
        };
        let updated = diesel::update(groups::table.find(id))
            .set((
                groups::name.eq(name.as_ref().unwrap_or(&old.name)),
                groups::description.eq(description.as_ref().unwrap_or(&old.description)),
                groups::role.eq(role.map(|r| r.as_str())),
                groups::external_id.eq(external_id.as_ref().unwrap_or(&old.external_id)),
                groups::updated_at.eq(now()),
            ))
            .returning(groups::all_columns)
            .get_result(conn);
        let group: Group = match updated {
            Err(e) if unique_violation(&e) => {
                return Err(CoreError::DuplicateGroup(name.clone().unwrap_or_default()))
            }
            other => other?,
        };
        audit::record(
            conn,
            actor,
            "group.update",
            &format!("group:{id}"),
            Some(org),
            json!({"name": name, "description": description, "role": fields.role,
                   "external_id": external_id}),
        )?;
        if role.is_some() && role != old.org_role() {
            let ids: Vec<i64> = group_members::table
                .filter(group_members::group_id.eq(id))
                .select(group_members::user_id)
                .load(conn)?;
            for user_id in ids {
                raise_role(conn, actor, org, user_id, role)?;
            }
        }
        Ok(group)
    })
}

/// Deletes a group; its members stay in the organization. The actor must be
/// allowed to edit the organization.
pub fn delete(conn: &mut DbConnection, actor: &Actor, org: i64, id: i64) -> CoreResult<()> {
    authorize(actor, Action::Edit, &Target::Organization(org))?;
    crate::db::write_transaction(conn, |conn| {
        let group = get(conn, org, id)?;
        diesel::delete(groups::table.find(id)).execute(conn)?;
        audit::record(
            conn,
            actor,
            "group.delete",
            &format!("group:{id}"),
            Some(org),
            json!({"name": group.name}),
        )?;
        Ok(())
    })
}

/// Gives a member the group's role when theirs is weaker (never lowers it).
fn raise_role(
    conn: &mut DbConnection,
    actor: &Actor,
    org: i64,
    user_id: i64,
    role: Option<OrgRole>,
) -> CoreResult<()> {
    let Some(role) = role else { return Ok(()) };
    let current: Option<String> = memberships::table
        .find((user_id, org))
        .select(memberships::role)
        .first(conn)
        .optional()?;
    match current.as_deref().and_then(OrgRole::parse) {
        Some(r) if r < role => crate::organizations::change_role(conn, actor, org, user_id, role),
        _ => Ok(()),
    }
}

fn is_member_of_org(conn: &mut DbConnection, org: i64, user_id: i64) -> CoreResult<bool> {
    Ok(memberships::table
        .find((user_id, org))
        .count()
        .get_result::<i64>(conn)?
        > 0)
}

/// Adds a member of the organization to the group (already in it: nothing
/// happens, `Ok(false)`).
pub fn add_member(
    conn: &mut DbConnection,
    actor: &Actor,
    org: i64,
    id: i64,
    user_id: i64,
) -> CoreResult<bool> {
    authorize(actor, Action::Edit, &Target::Organization(org))?;
    crate::db::write_transaction(conn, |conn| {
        let group = get(conn, org, id)?;
        if !is_member_of_org(conn, org, user_id)? {
            return Err(CoreError::NotFound("user"));
        }
        let already: i64 = group_members::table
            .find((id, user_id))
            .count()
            .get_result(conn)?;
        if already > 0 {
            return Ok(false);
        }
        crate::licences::check_group_join(conn, org, id, user_id)?;
        diesel::insert_into(group_members::table)
            .values((
                group_members::group_id.eq(id),
                group_members::user_id.eq(user_id),
                group_members::created_at.eq(now()),
            ))
            .execute(conn)?;
        audit::record(
            conn,
            actor,
            "group.member.add",
            &format!("group:{id}"),
            Some(org),
            json!({"user_id": user_id, "group": group.name}),
        )?;
        raise_role(conn, actor, org, user_id, group.org_role())?;
        Ok(true)
    })
}

/// Takes a user out of the group (`Ok(false)` when they were not in it).
pub fn remove_member(
    conn: &mut DbConnection,
    actor: &Actor,
    org: i64,
    id: i64,
    user_id: i64,
) -> CoreResult<bool> {
    authorize(actor, Action::Edit, &Target::Organization(org))?;
    crate::db::write_transaction(conn, |conn| {
        let group = get(conn, org, id)?;
        let removed = diesel::delete(group_members::table.find((id, user_id))).execute(conn)?;
        if removed == 0 {
            return Ok(false);
        }
        audit::record(
            conn,
            actor,
            "group.member.remove",
            &format!("group:{id}"),
            Some(org),
            json!({"user_id": user_id, "group": group.name}),
        )?;
        Ok(true)
    })
}

/// Most users one [`change_members`] call may add and remove together.
pub const MAX_MEMBER_CHANGES: usize = 1000;

/// Adds `add` to the group and takes `remove` out of it, all or nothing
/// (each change audited like a single one). Everyone in `add` must be a
/// member of the organization; already in (or already out) counts nothing.
/// Answers how many joined and how many left.
pub fn change_members(
    conn: &mut DbConnection,
    actor: &Actor,
    org: i64,
    id: i64,
    add: &[i64],
    remove: &[i64],
) -> CoreResult<(usize, usize)> {
    authorize(actor, Action::Edit, &Target::Organization(org))?;
    if add.len() + remove.len() > MAX_MEMBER_CHANGES {
        return Err(CoreError::Invalid {
            field: "add",
            reason: format!("at most {MAX_MEMBER_CHANGES} users at once (add and remove together)"),
        });
    }
    if let Some(u) = add.iter().find(|u| remove.contains(u)) {
        return Err(CoreError::Invalid {
            field: "remove",
            reason: format!("user {u} is also in add"),
        });
    }
    crate::db::write_transaction(conn, |conn| {
        get(conn, org, id)?;
        let members: BTreeSet<i64> = memberships::table
            .filter(memberships::organization_id.eq(org))
            .filter(memberships::user_id.eq_any(add))
            .select(memberships::user_id)
            .load::<i64>(conn)?
            .into_iter()
            .collect();
        if let Some(u) = add.iter().find(|u| !members.contains(u)) {
            return Err(CoreError::Invalid {
                field: "add",
                reason: format!("user {u} is not a member of the organization"),
            });
        }
        let mut added = 0;
        for u in add {
            added += usize::from(add_member(conn, actor, org, id, *u)?);
        }
        let mut removed = 0;
        for u in remove {
            removed += usize::from(remove_member(conn, actor, org, id, *u)?);
        }
        Ok((added, removed))
    })
}

/// Puts a member of `org` into each of `group_ids` (groups of `org`; any
/// other is refused naming `groups`), as the new-user form and API do.
pub fn join_many(
    conn: &mut DbConnection,
    actor: &Actor,
    org: i64,
    user_id: i64,
    group_ids: &[i64],
) -> CoreResult<()> {
    let wanted: BTreeSet<i64> = group_ids.iter().copied().collect();
    if wanted.is_empty() {
        return Ok(());
    }
    let found: BTreeSet<i64> = groups::table
        .filter(groups::organization_id.eq(org))
        .filter(groups::id.eq_any(&wanted))
        .select(groups::id)
        .load::<i64>(conn)?
        .into_iter()
        .collect();
    if let Some(missing) = wanted.difference(&found).next() {
        return Err(CoreError::Invalid {
            field: "groups",
            reason: format!("{missing} is not a group of the organization"),
        });
    }
    for g in wanted {
        add_member(conn, actor, org, g, user_id)?;
    }
    Ok(())
}

/// Makes the group's members exactly `user_ids` (a directory's replace),
/// one audited change per member added or removed.
pub fn set_members(
    conn: &mut DbConnection,
    actor: &Actor,
    org: i64,
    id: i64,
    user_ids: &[i64],
) -> CoreResult<()> {
    crate::db::write_transaction(conn, |conn| {
        get(conn, org, id)?;
        let want: BTreeSet<i64> = user_ids.iter().copied().collect();
        let have: BTreeSet<i64> = group_members::table
            .filter(group_members::group_id.eq(id))
            .select(group_members::user_id)
            .load::<i64>(conn)?
            .into_iter()
            .collect();
        for u in have.difference(&want) {
            remove_member(conn, actor, org, id, *u)?;
        }
        for u in want.difference(&have) {
            add_member(conn, actor, org, id, *u)?;
        }
        Ok(())
    })
}

/// A user leaving the organization leaves its groups (no audit row of its
/// own: the membership's removal is the change).
pub(crate) fn leave_org(conn: &mut DbConnection, org: i64, user_id: i64) -> CoreResult<()> {
    let ids = groups::table
        .filter(groups::organization_id.eq(org))
        .select(groups::id);
    diesel::delete(
        group_members::table
            .filter(group_members::user_id.eq(user_id))
            .filter(group_members::group_id.eq_any(ids)),
    )
    .execute(conn)?;
    Ok(())
}
