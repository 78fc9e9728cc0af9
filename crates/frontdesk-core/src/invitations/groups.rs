//! The groups an invitation puts its invitee into: chosen by the admin who
//! invites (groups of the invitation's organization), joined when the
//! invitee accepts.

use std::collections::BTreeSet;

use diesel::prelude::*;

use crate::authz::{authorize, Action, Actor, Target};
use crate::db::DbConnection;
use crate::error::{CoreError, CoreResult};
use crate::schema::{groups, invitation_groups};

/// Most groups one invitation may name.
pub const MAX_INVITATION_GROUPS: usize = 50;

/// Records `group_ids` on invitation `id` of `org`: each must be a group of
/// that organization, and the actor must be allowed to change its groups.
/// Answers the groups' names (for the audit row).
pub(super) fn attach(
    conn: &mut DbConnection,
    actor: &Actor,
    org: i64,
    id: i64,
    group_ids: &[i64],
) -> CoreResult<Vec<String>> {
    let wanted: BTreeSet<i64> = group_ids.iter().copied().collect();
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    if wanted.len() > MAX_INVITATION_GROUPS {
        return Err(CoreError::Invalid {
            field: "groups",
            reason: format!("at most {MAX_INVITATION_GROUPS} groups"),
        });
    }
    authorize(actor, Action::Edit, &Target::Organization(org))?;
    let found: Vec<(i64, String)> = groups::table
        .filter(groups::organization_id.eq(org))
        .filter(groups::id.eq_any(&wanted))
        .order(groups::name)
        .select((groups::id, groups::name))
        .load(conn)?;
    if let Some(missing) = wanted
        .iter()
        .find(|g| !found.iter().any(|(id, _)| id == *g))
    {
        return Err(CoreError::Invalid {
            field: "groups",
            reason: format!("{missing} is not a group of the organization"),
        });
    }
    for g in &wanted {
        diesel::insert_into(invitation_groups::table)
            .values((
                invitation_groups::invitation_id.eq(id),
                invitation_groups::group_id.eq(*g),
            ))
            .execute(conn)?;
    }
    Ok(found.into_iter().map(|(_, n)| n).collect())
}

/// The groups (id, name) invitation `id` puts its invitee into, by name.
pub fn groups_of(conn: &mut DbConnection, id: i64) -> CoreResult<Vec<(i64, String)>> {
    Ok(invitation_groups::table
        .inner_join(groups::table)
        .filter(invitation_groups::invitation_id.eq(id))
        .order(groups::name)
        .select((groups::id, groups::name))
        .load(conn)?)
}

/// The groups of many invitations at once (for lists).
pub fn groups_of_many(
    conn: &mut DbConnection,
    ids: &[i64],
) -> CoreResult<std::collections::BTreeMap<i64, Vec<(i64, String)>>> {
    let rows: Vec<(i64, i64, String)> = invitation_groups::table
        .inner_join(groups::table)
        .filter(invitation_groups::invitation_id.eq_any(ids))
        .order((invitation_groups::invitation_id, groups::name))
        .select((invitation_groups::invitation_id, groups::id, groups::name))
        .load(conn)?;
    let mut out: std::collections::BTreeMap<i64, Vec<(i64, String)>> = Default::default();
    for (inv, g, n) in rows {
        out.entry(inv).or_default().push((g, n));
    }
    Ok(out)
}

/// At acceptance, inside its transaction: the invitee joins each of the
/// invitation's groups (audited like any join, the system as actor, since
/// the admin chose them). A group whose licences have no seat left is
/// skipped rather than refusing the invitee: the names of those skipped come
/// back for the acceptance's audit row.
pub(super) fn join_on_accept(
    conn: &mut DbConnection,
    org: i64,
    invitation: i64,
    user_id: i64,
) -> CoreResult<Vec<String>> {
    let mut skipped = Vec::new();
    for (group, name) in groups_of(conn, invitation)? {
        // Its own savepoint: a refused join leaves the rest standing.
        match crate::groups::add_member(conn, &Actor::system(), org, group, user_id) {
            Ok(_) => {}
            Err(CoreError::SeatLimit { .. }) => skipped.push(name),
            Err(e) => return Err(e),
        }
    }
    Ok(skipped)
}
