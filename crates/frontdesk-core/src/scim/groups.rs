//! `/Groups`: the organization's groups. Members are users of the
//! organization, named by their SCIM id; anyone else is refused.

use std::collections::{BTreeMap, BTreeSet};

use diesel::prelude::*;
use serde_json::{json, Map, Value};

use super::filter::{get_ci, Filter};
use super::users::Ctx;
use super::{patch, time, ListQuery, ScimError, ScimResult, GROUP_SCHEMA};
use crate::db::DbConnection;
use crate::groups::{self as core_groups, Group, GroupFields};
use crate::schema::{groups, memberships};

fn to_json(g: &Group, members: &[i64], base: &str) -> Value {
    let mut r = Map::new();
    r.insert("schemas".into(), json!([GROUP_SCHEMA]));
    r.insert("id".into(), json!(g.id.to_string()));
    r.insert("displayName".into(), json!(g.name));
    if let Some(e) = &g.external_id {
        r.insert("externalId".into(), json!(e));
    }
    if !members.is_empty() {
        r.insert(
            "members".into(),
            Value::Array(
                members
                    .iter()
                    .map(|u| {
                        json!({"value": u.to_string(), "$ref": format!("{base}/Users/{u}"),
                               "type": "User"})
                    })
                    .collect(),
            ),
        );
    }
    r.insert(
        "meta".into(),
        json!({
            "resourceType": "Group",
            "created": time(g.created_at),
            "lastModified": time(g.updated_at),
            "location": format!("{base}/Groups/{}", g.id),
        }),
    );
    Value::Object(r)
}

struct Input {
    name: String,
    external_id: Option<String>,
    members: Vec<i64>,
}

fn input(conn: &mut DbConnection, org: i64, body: &Value) -> ScimResult<Input> {
    if !body.is_object() {
        return Err(ScimError::invalid_syntax("the body must be a JSON object"));
    }
    let name = match get_ci(body, "displayName") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_owned(),
        _ => return Err(ScimError::invalid_value("displayName is required")),
    };
    let external_id = match get_ci(body, "externalId") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()).filter(|s| !s.is_empty()),
        Some(_) => return Err(ScimError::invalid_value("externalId must be a string")),
    };
    let mut ids = BTreeSet::new();
    match get_ci(body, "members") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for m in items {
                let v = match get_ci(m, "value") {
                    Some(Value::String(s)) => s.clone(),
                    Some(Value::Number(n)) => n.to_string(),
                    _ => return Err(ScimError::invalid_value("each member needs a value")),
                };
                let id: i64 = v.parse().map_err(|_| {
                    ScimError::invalid_value(format!("{v} is not a user of this organization"))
                })?;
                ids.insert(id);
            }
        }
        Some(_) => return Err(ScimError::invalid_value("members must be a list")),
    }
    let members: Vec<i64> = ids.into_iter().collect();
    if !members.is_empty() {
        let known: BTreeSet<i64> = memberships::table
            .filter(memberships::organization_id.eq(org))
            .filter(memberships::user_id.eq_any(&members))
            .select(memberships::user_id)
            .load::<i64>(conn)?
            .into_iter()
            .collect();
        if let Some(stranger) = members.iter().find(|m| !known.contains(m)) {
            return Err(ScimError::invalid_value(format!(
                "{stranger} is not a user of this organization"
            )));
        }
    }
    Ok(Input {
        name,
        external_id,
        members,
    })
}

fn find(conn: &mut DbConnection, org: i64, id: &str) -> ScimResult<Group> {
    let id: i64 = id.parse().map_err(|_| ScimError::not_found("group"))?;
    Ok(core_groups::get(conn, org, id)?)
}

fn members_of(conn: &mut DbConnection, ids: &[i64]) -> ScimResult<BTreeMap<i64, Vec<i64>>> {
    Ok(core_groups::member_ids_of(conn, ids)?)
}

/// The group `id` of the context's organization, as a SCIM Group resource;
/// a 404 when there is none.
pub fn get(conn: &mut DbConnection, ctx: &Ctx, id: &str) -> ScimResult<Value> {
    let g = find(conn, ctx.org, id)?;
    let m = members_of(conn, &[g.id])?;
    Ok(to_json(
        &g,
        m.get(&g.id).map(Vec::as_slice).unwrap_or(&[]),
        ctx.base,
    ))
}

/// The organization's groups that match the query's filter, as a SCIM
/// list answer.
pub fn list(conn: &mut DbConnection, ctx: &Ctx, q: &ListQuery) -> ScimResult<Value> {
    let mut query = groups::table
        .filter(groups::organization_id.eq(ctx.org))
        .into_boxed();
    match q.filter.as_ref().and_then(Filter::as_equality) {
        Some((attr, v)) if attr.eq_ignore_ascii_case("displayName") => {
            query = query.filter(groups::name.eq(v.to_owned()));
        }
        Some((attr, v)) if attr.eq_ignore_ascii_case("externalId") => {
            query = query.filter(groups::external_id.eq(v.to_owned()));
        }
        _ => {}
    }
    let found: Vec<Group> = query
        .order(groups::id.asc())
        .select(Group::as_select())
        .load(conn)?;
    // Members are only read when the answer shows them or the filter asks.
    let skip_members =
        q.excluded.iter().any(|e| e.eq_ignore_ascii_case("members")) && q.filter.is_none();
    let members = if skip_members {
        BTreeMap::new()
    } else {
        let ids: Vec<i64> = found.iter().map(|g| g.id).collect();
        members_of(conn, &ids)?
    };
    let all: Vec<Value> = found
        .iter()
        .map(|g| {
            to_json(
                g,
                members.get(&g.id).map(Vec::as_slice).unwrap_or(&[]),
                ctx.base,
            )
        })
        .filter(|r| q.filter.as_ref().is_none_or(|f| f.matches(r)))
        .collect();
    Ok(super::list_response(all, q))
}

/// Creates a group with its members from a SCIM Group resource; returns
/// the stored resource.
pub fn create(conn: &mut DbConnection, ctx: &Ctx, body: &Value) -> ScimResult<Value> {
    let id = crate::db::write_transaction(conn, |conn| -> ScimResult<i64> {
        let i = input(conn, ctx.org, body)?;
        let g = core_groups::create(
            conn,
            ctx.actor,
            ctx.org,
            GroupFields {
                name: Some(i.name),
                external_id: Some(i.external_id),
                ..GroupFields::default()
            },
        )?;
        core_groups::set_members(conn, ctx.actor, ctx.org, g.id, &i.members)?;
        Ok(g.id)
    })?;
    get(conn, ctx, &id.to_string())
}

fn save(conn: &mut DbConnection, ctx: &Ctx, g: &Group, doc: &Value) -> ScimResult<()> {
    crate::db::write_transaction(conn, |conn| -> ScimResult<()> {
        let i = input(conn, ctx.org, doc)?;
        if i.name != g.name || i.external_id != g.external_id {
            core_groups::update(
                conn,
                ctx.actor,
                ctx.org,
                g.id,
                GroupFields {
                    name: Some(i.name),
                    external_id: Some(i.external_id),
                    ..GroupFields::default()
                },
            )?;
        }
        core_groups::set_members(conn, ctx.actor, ctx.org, g.id, &i.members)?;
        Ok(())
    })
}

/// Replaces the group's name, external id and members with the body's;
/// returns the stored resource.
pub fn replace(conn: &mut DbConnection, ctx: &Ctx, id: &str, body: &Value) -> ScimResult<Value> {
    let g = find(conn, ctx.org, id)?;
    save(conn, ctx, &g, body)?;
    get(conn, ctx, id)
}

/// Applies a SCIM PATCH request to the group; returns the stored resource.
pub fn patch(conn: &mut DbConnection, ctx: &Ctx, id: &str, body: &Value) -> ScimResult<Value> {
    let g = find(conn, ctx.org, id)?;
    let m = members_of(conn, &[g.id])?;
    let mut doc = to_json(&g, m.get(&g.id).map(Vec::as_slice).unwrap_or(&[]), ctx.base);
    patch::apply(&mut doc, body)?;
    save(conn, ctx, &g, &doc)?;
    get(conn, ctx, id)
}

/// Deletes the group; its members stay in the organization.
pub fn delete(conn: &mut DbConnection, ctx: &Ctx, id: &str) -> ScimResult<()> {
    let g = find(conn, ctx.org, id)?;
    Ok(core_groups::delete(conn, ctx.actor, ctx.org, g.id)?)
}
