//! Licences: the host declares its licence types (key, name, optional seat
//! limit per organization); organization admins give them to members
//! directly or through groups. A member's effective licences are the direct
//! ones and those of their groups; a seat is one user of the organization
//! holding a licence, whatever the number of sources.
//!
//! Seat limits hold under concurrency: every change that can add a holder
//! (a direct assignment, a licence put on a group, a member joining a group
//! that carries licences) takes the organization's licence lock, counts and
//! writes in one write transaction.

use std::collections::{BTreeMap, BTreeSet};

use diesel::prelude::*;
use serde::Serialize;
use serde_json::json;

use crate::audit;
use crate::authz::{authorize, Action, Actor, Target};
use crate::db::DbConnection;
use crate::error::{CoreError, CoreResult};
use crate::schema::{
    group_licences, group_members, groups, licence_types, memberships, user_licences,
};
use crate::time::now;

/// A licence type the host declares: `Licence::new("pro", "Pro plan").seats(25)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Queryable, Selectable)]
#[diesel(table_name = licence_types)]
pub struct Licence {
    /// 1 to 64 of `a-z`, `0-9`, `.`, `_`, `-`.
    pub key: String,
    /// The name admins see.
    pub name: String,
    /// The most users of one organization who may hold it (`None`: no limit).
    pub seats: Option<i64>,
}

impl Licence {
    /// A licence type with no seat limit; add one with `.seats(n)`. The key is
    /// checked when the host's licences are stored.
    pub fn new(key: impl Into<String>, name: impl Into<String>) -> Self {
        Licence {
            key: key.into(),
            name: name.into(),
            seats: None,
        }
    }

    /// At most `n` users of each organization hold it.
    pub fn seats(mut self, n: u32) -> Self {
        self.seats = Some(i64::from(n));
        self
    }
}

/// True for a well-formed licence key.
pub fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 64
        && key.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        })
}

/// Checks the builder's declarations: keys well formed and unique, names
/// 1 to 200 characters.
pub fn check_declarations(declared: &[Licence]) -> CoreResult<()> {
    let mut seen = BTreeSet::new();
    for l in declared {
        if !valid_key(&l.key) {
            return Err(CoreError::Config(format!(
                "licence key {:?}: use 1 to 64 of a-z, 0-9, '.', '_' and '-'",
                l.key
            )));
        }
        if !seen.insert(l.key.as_str()) {
            return Err(CoreError::Config(format!(
                "licence {:?} is declared twice",
                l.key
            )));
        }
        let n = l.name.trim().chars().count();
        if n == 0 || n > 200 || l.name.chars().any(char::is_control) {
            return Err(CoreError::Config(format!(
                "licence {}: the name must have 1 to 200 characters, without control characters",
                l.key
            )));
        }
    }
    Ok(())
}

/// Makes `licence_types` hold exactly `declared`. Assignments of a type no
/// longer declared stay in their tables, unseen, until it is declared again.
pub fn sync(conn: &mut DbConnection, declared: &[Licence]) -> CoreResult<()> {
    check_declarations(declared)?;
    crate::db::write_transaction(conn, |conn| {
        let keys: Vec<&str> = declared.iter().map(|l| l.key.as_str()).collect();
        diesel::delete(licence_types::table.filter(licence_types::key.ne_all(&keys)))
            .execute(conn)?;
        let t = now();
        for l in declared {
            let updated = diesel::update(licence_types::table.find(&l.key))
                .set((
                    licence_types::name.eq(&l.name),
                    licence_types::seats.eq(l.seats),
                    licence_types::updated_at.eq(t),
                ))
                .execute(conn)?;
            if updated == 0 {
                diesel::insert_into(licence_types::table)
                    .values((
                        licence_types::key.eq(&l.key),
                        licence_types::name.eq(&l.name),
                        licence_types::seats.eq(l.seats),
                        licence_types::updated_at.eq(t),
                    ))
                    .execute(conn)?;
            }
        }
        Ok(())
    })
}

/// The declared licence types, by key.
pub fn types(conn: &mut DbConnection) -> CoreResult<Vec<Licence>> {
    Ok(licence_types::table
        .order(licence_types::key.asc())
        .select(Licence::as_select())
        .load(conn)?)
}

/// A declared type; an unknown key is not found.
pub fn get_type(conn: &mut DbConnection, key: &str) -> CoreResult<Licence> {
    if !valid_key(key) {
        return Err(CoreError::NotFound("licence"));
    }
    licence_types::table
        .find(key)
        .select(Licence::as_select())
        .first(conn)
        .optional()?
        .ok_or(CoreError::NotFound("licence"))
}

/// A licence type with the seats one organization uses.
#[derive(Debug, Clone, Serialize)]
pub struct Seats {
    /// The licence type.
    #[serde(flatten)]
    pub licence: Licence,
    /// Members of the organization who hold it, directly or through a group.
    pub used: i64,
}

/// Where a user's licence comes from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(tag = "source", rename_all = "snake_case")]
pub enum Source {
    /// Given to the user directly.
    Direct,
    /// Held through a group that carries it.
    Group {
        /// The group's id.
        group_id: i64,
        /// The group's name.
        group_name: String,
    },
}

/// A licence a user holds in an organization, with every source of it.
#[derive(Debug, Clone, Serialize)]
pub struct Effective {
    /// The licence's key.
    pub key: String,
    /// The licence's name.
    pub name: String,
    /// Every way the user holds it, sorted.
    pub sources: Vec<Source>,
}

impl Effective {
    /// Whether the user holds it directly (not only through groups).
    pub fn direct(&self) -> bool {
        self.sources.contains(&Source::Direct)
    }
}

/// (user, licence) of every holder in `org` through `key` (all declared
/// types when `None`), directly or through a group.
fn holders(
    conn: &mut DbConnection,
    org: i64,
    key: Option<&str>,
) -> CoreResult<BTreeMap<String, BTreeSet<i64>>> {
    let mut direct = user_licences::table
        .inner_join(licence_types::table.on(licence_types::key.eq(user_licences::licence)))
        .filter(user_licences::organization_id.eq(org))
        .select((user_licences::licence, user_licences::user_id))
        .into_boxed();
    let mut via = group_licences::table
        .inner_join(groups::table)
        .inner_join(group_members::table.on(group_members::group_id.eq(group_licences::group_id)))
        .inner_join(licence_types::table.on(licence_types::key.eq(group_licences::licence)))
        .filter(groups::organization_id.eq(org))
        .select((group_licences::licence, group_members::user_id))
        .into_boxed();
    if let Some(k) = key {
        direct = direct.filter(user_licences::licence.eq(k.to_owned()));
        via = via.filter(group_licences::licence.eq(k.to_owned()));
    }
    let mut out: BTreeMap<String, BTreeSet<i64>> = BTreeMap::new();
    for (k, u) in direct
        .load::<(String, i64)>(conn)?
        .into_iter()
        .chain(via.load::<(String, i64)>(conn)?)
    {
        out.entry(k).or_default().insert(u);
    }
    Ok(out)
}

/// Seats used in `org`: distinct users holding `key` by any source.
pub fn used(conn: &mut DbConnection, org: i64, key: &str) -> CoreResult<i64> {
    Ok(holders(conn, org, Some(key))?
        .get(key)
        .map_or(0, |s| s.len() as i64))
}

/// Every declared type with the seats `org` uses.
pub fn seats(conn: &mut DbConnection, actor: &Actor, org: i64) -> CoreResult<Vec<Seats>> {
    authorize(actor, Action::View, &Target::Organization(org))?;
    seats_unchecked(conn, org)
}

/// [`seats`] without the access check, for callers that checked already.
pub fn seats_unchecked(conn: &mut DbConnection, org: i64) -> CoreResult<Vec<Seats>> {
    let all = holders(conn, org, None)?;
    Ok(types(conn)?
        .into_iter()
        .map(|licence| Seats {
            used: all.get(&licence.key).map_or(0, |s| s.len() as i64),
            licence,
        })
        .collect())
}

/// Serializes the seat checks of one organization until the end of the
/// transaction (PostgreSQL: an advisory lock on the organization; SQLite's
/// write transaction holds the database's one write lock already).
fn lock(conn: &mut DbConnection, org: i64) -> CoreResult<()> {
    crate::db::lock_keys(conn, &[&format!("frontdesk.licences.{org}")])?;
    Ok(())
}

/// Refuses when `new` more holders of `licence` would pass its limit in `org`.
fn check_room(conn: &mut DbConnection, org: i64, licence: &Licence, new: i64) -> CoreResult<()> {
    let Some(limit) = licence.seats else {
        return Ok(());
    };
    if new == 0 {
        return Ok(());
    }
    let used = used(conn, org, &licence.key)?;
    if used + new > limit {
        return Err(CoreError::SeatLimit {
            licence: licence.key.clone(),
            name: licence.name.clone(),
            used,
            limit,
            needed: new,
        });
    }
    Ok(())
}

fn holds(conn: &mut DbConnection, org: i64, key: &str, user_id: i64) -> CoreResult<bool> {
    Ok(holders(conn, org, Some(key))?
        .get(key)
        .is_some_and(|s| s.contains(&user_id)))
}

fn is_member(conn: &mut DbConnection, org: i64, user_id: i64) -> CoreResult<bool> {
    Ok(memberships::table
        .find((user_id, org))
        .count()
        .get_result::<i64>(conn)?
        > 0)
}

/// Gives a member of `org` the licence directly (`Ok(false)`: they had it
/// directly already). Refused with [`CoreError::SeatLimit`] when it would
/// take a seat the organization does not have.
pub fn assign_user(
    conn: &mut DbConnection,
    actor: &Actor,
    org: i64,
    user_id: i64,
    key: &str,
) -> CoreResult<bool> {
    authorize(actor, Action::Edit, &Target::Organization(org))?;
    crate::db::write_transaction(conn, |conn| {
        let licence = get_type(conn, key)?;
        if !is_member(conn, org, user_id)? {
            return Err(CoreError::NotFound("user"));
        }
        lock(conn, org)?;
        let already: i64 = user_licences::table
            .find((org, key, user_id))
            .count()
            .get_result(conn)?;
        if already > 0 {
            return Ok(false);
        }
        let new = i64::from(!holds(conn, org, key, user_id)?);
        check_room(conn, org, &licence, new)?;
        diesel::insert_into(user_licences::table)
            .values((
                user_licences::organization_id.eq(org),
                user_licences::user_id.eq(user_id),
                user_licences::licence.eq(key),
                user_licences::created_at.eq(now()),
            ))
            .execute(conn)?;
        audit::record(
            conn,
            actor,
            "licence.assign",
            &format!("user:{user_id}"),
            Some(org),
            json!({"licence": key}),
        )?;
        Ok(true)
    })
}

/// Takes a direct licence away (`Ok(false)`: they did not have it directly;
/// a group's licence stays with the group's members).
pub fn unassign_user(
    conn: &mut DbConnection,
    actor: &Actor,
    org: i64,
    user_id: i64,
    key: &str,
) -> CoreResult<bool> {
    authorize(actor, Action::Edit, &Target::Organization(org))?;
    crate::db::write_transaction(conn, |conn| {
        get_type(conn, key)?;
        let removed =
            diesel::delete(user_licences::table.find((org, key, user_id))).execute(conn)?;
        if removed == 0 {
            return Ok(false);
        }
        audit::record(
            conn,
            actor,
            "licence.unassign",
            &format!("user:{user_id}"),
            Some(org),
            json!({"licence": key}),
        )?;
        Ok(true)
    })
}

/// Puts the licence on a group of `org`: each member holds it (`Ok(false)`:
/// the group carried it already). Refused when its members who do not hold
/// it yet outnumber the free seats.
pub fn assign_group(
    conn: &mut DbConnection,
    actor: &Actor,
    org: i64,
    group_id: i64,
    key: &str,
) -> CoreResult<bool> {
    authorize(actor, Action::Edit, &Target::Organization(org))?;
    crate::db::write_transaction(conn, |conn| {
        let licence = get_type(conn, key)?;
        let group = crate::groups::get(conn, org, group_id)?;
        lock(conn, org)?;
        let already: i64 = group_licences::table
            .find((group_id, key))
            .count()
            .get_result(conn)?;
        if already > 0 {
            return Ok(false);
        }
        let held = holders(conn, org, Some(key))?
            .remove(key)
            .unwrap_or_default();
        let members: Vec<i64> = group_members::table
            .filter(group_members::group_id.eq(group_id))
            .select(group_members::user_id)
            .load(conn)?;
        let new = members.iter().filter(|u| !held.contains(u)).count() as i64;
        check_room(conn, org, &licence, new)?;
        diesel::insert_into(group_licences::table)
            .values((
                group_licences::group_id.eq(group_id),
                group_licences::licence.eq(key),
                group_licences::created_at.eq(now()),
            ))
            .execute(conn)?;
        audit::record(
            conn,
            actor,
            "group.licence.add",
            &format!("group:{group_id}"),
            Some(org),
            json!({"licence": key, "group": group.name}),
        )?;
        Ok(true)
    })
}

/// Takes the licence off a group (`Ok(false)`: it did not carry it).
pub fn unassign_group(
    conn: &mut DbConnection,
    actor: &Actor,
    org: i64,
    group_id: i64,
    key: &str,
) -> CoreResult<bool> {
    authorize(actor, Action::Edit, &Target::Organization(org))?;
    crate::db::write_transaction(conn, |conn| {
        get_type(conn, key)?;
        let group = crate::groups::get(conn, org, group_id)?;
        let removed = diesel::delete(group_licences::table.find((group_id, key))).execute(conn)?;
        if removed == 0 {
            return Ok(false);
        }
        audit::record(
            conn,
            actor,
            "group.licence.remove",
            &format!("group:{group_id}"),
            Some(org),
            json!({"licence": key, "group": group.name}),
        )?;
        Ok(true)
    })
}

/// Before `user_id` joins group `group_id` of `org` (inside the joining
/// transaction): refused when a licence the group carries, which the user
/// does not hold yet, has no free seat.
pub(crate) fn check_group_join(
    conn: &mut DbConnection,
    org: i64,
    group_id: i64,
    user_id: i64,
) -> CoreResult<()> {
    // Locked before reading what the group carries: a licence being put on
    // the group at the same time is then either seen here or counts this
    // member.
    lock(conn, org)?;
    let carried: Vec<Licence> = group_licences::table
        .inner_join(licence_types::table.on(licence_types::key.eq(group_licences::licence)))
        .filter(group_licences::group_id.eq(group_id))
        .order(licence_types::key.asc())
        .select(Licence::as_select())
        .load(conn)?;
    for licence in carried {
        let new = i64::from(!holds(conn, org, &licence.key, user_id)?);
        check_room(conn, org, &licence, new)?;
    }
    Ok(())
}

/// A user leaving the organization loses its direct licences (no audit row
/// of its own: the membership's removal is the change). The foreign key to
/// the membership removes them too; this says it where it happens.
pub(crate) fn leave_org(conn: &mut DbConnection, org: i64, user_id: i64) -> CoreResult<()> {
    diesel::delete(
        user_licences::table
            .filter(user_licences::organization_id.eq(org))
            .filter(user_licences::user_id.eq(user_id)),
    )
    .execute(conn)?;
    Ok(())
}

/// The declared licences a group carries, by key.
pub fn of_group(conn: &mut DbConnection, group_id: i64) -> CoreResult<Vec<Licence>> {
    Ok(group_licences::table
        .inner_join(licence_types::table.on(licence_types::key.eq(group_licences::licence)))
        .filter(group_licences::group_id.eq(group_id))
        .order(licence_types::key.asc())
        .select(Licence::as_select())
        .load(conn)?)
}

/// For each licence key, the groups of `org` carrying it (id, name).
pub fn groups_carrying(
    conn: &mut DbConnection,
    org: i64,
) -> CoreResult<BTreeMap<String, Vec<(i64, String)>>> {
    let rows: Vec<(String, i64, String)> = group_licences::table
        .inner_join(groups::table)
        .filter(groups::organization_id.eq(org))
        .order((group_licences::licence, groups::name))
        .select((group_licences::licence, groups::id, groups::name))
        .load(conn)?;
    let mut out: BTreeMap<String, Vec<(i64, String)>> = BTreeMap::new();
    for (k, id, name) in rows {
        out.entry(k).or_default().push((id, name));
    }
    Ok(out)
}

/// The effective licences of many users, keyed by user then organization:
/// in `org` only, or in every organization when `None`. Two queries for the
/// whole set, whatever its size.
pub fn effective_of_users(
    conn: &mut DbConnection,
    org: Option<i64>,
    user_ids: &[i64],
) -> CoreResult<BTreeMap<i64, BTreeMap<i64, Vec<Effective>>>> {
    let mut direct = user_licences::table
        .inner_join(licence_types::table.on(licence_types::key.eq(user_licences::licence)))
        .filter(user_licences::user_id.eq_any(user_ids))
        .select((
            user_licences::user_id,
            user_licences::organization_id,
            licence_types::key,
            licence_types::name,
        ))
        .into_boxed();
    let mut via = group_members::table
        .inner_join(groups::table)
        .inner_join(group_licences::table.on(group_licences::group_id.eq(group_members::group_id)))
        .inner_join(licence_types::table.on(licence_types::key.eq(group_licences::licence)))
        .filter(group_members::user_id.eq_any(user_ids))
        .select((
            group_members::user_id,
            groups::organization_id,
            licence_types::key,
            licence_types::name,
            groups::id,
            groups::name,
        ))
        .into_boxed();
    if let Some(org) = org {
        direct = direct.filter(user_licences::organization_id.eq(org));
        via = via.filter(groups::organization_id.eq(org));
    }
    type Key = (i64, i64, String);
    let mut acc: BTreeMap<Key, (String, BTreeSet<Source>)> = BTreeMap::new();
    for (u, o, k, n) in direct.load::<(i64, i64, String, String)>(conn)? {
        acc.entry((u, o, k))
            .or_insert_with(|| (n, BTreeSet::new()))
            .1
            .insert(Source::Direct);
    }
    for (u, o, k, n, gid, gname) in via.load::<(i64, i64, String, String, i64, String)>(conn)? {
        acc.entry((u, o, k))
            .or_insert_with(|| (n, BTreeSet::new()))
            .1
            .insert(Source::Group {
                group_id: gid,
                group_name: gname,
            });
    }
    let mut out: BTreeMap<i64, BTreeMap<i64, Vec<Effective>>> = BTreeMap::new();
    for ((u, o, key), (name, sources)) in acc {
        out.entry(u)
            .or_default()
            .entry(o)
            .or_default()
            .push(Effective {
                key,
                name,
                sources: sources.into_iter().collect(),
            });
    }
    Ok(out)
}

/// A user's effective licences in `org`, by key, with their sources.
pub fn effective(conn: &mut DbConnection, org: i64, user_id: i64) -> CoreResult<Vec<Effective>> {
    Ok(effective_of_users(conn, Some(org), &[user_id])?
        .remove(&user_id)
        .and_then(|mut m| m.remove(&org))
        .unwrap_or_default())
}

/// A user's effective licences in every organization, keyed by organization.
pub fn effective_everywhere(
    conn: &mut DbConnection,
    user_id: i64,
) -> CoreResult<BTreeMap<i64, Vec<Effective>>> {
    Ok(effective_of_users(conn, None, &[user_id])?
        .remove(&user_id)
        .unwrap_or_default())
}

/// The users-list condition "holds licence `key`", directly or through a
/// group, in one of `orgs` (any organization when `None`).
pub fn holder_condition(key: &str, orgs: Option<&[i64]>) -> crate::users::condition::UserCondition {
    use crate::users::condition::UserCondition;
    let in_orgs = |c: UserCondition, column: &str| match orgs {
        None => c,
        Some([]) => c.push(&format!(" AND {column} IS NULL")),
        Some(list) => {
            let mut c = c.push(&format!(" AND {column} IN ("));
            for (i, o) in list.iter().enumerate() {
                if i > 0 {
                    c = c.push(", ");
                }
                c = c.bind_int(*o);
            }
            c.push(")")
        }
    };
    let c = UserCondition::sql(
        "(users.id IN (SELECT user_licences.user_id FROM user_licences \
         WHERE user_licences.licence = ",
    )
    .bind_text(key);
    let c = in_orgs(c, "user_licences.organization_id")
        .push(
            ") OR users.id IN (SELECT group_members.user_id FROM group_members \
             JOIN group_licences ON group_licences.group_id = group_members.group_id \
             JOIN groups ON groups.id = group_members.group_id \
             WHERE group_licences.licence = ",
        )
        .bind_text(key);
    in_orgs(c, "groups.organization_id").push("))")
}
