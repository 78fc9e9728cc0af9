//! `/Users`: the members of the token's organization. A user the directory
//! creates is a member of that organization only; users of other
//! organizations are never found, listed or changed. `active: false`
//! suspends (ending every session); DELETE follows the organization's
//! `scim_delete` setting.

use std::collections::BTreeMap;

use diesel::prelude::*;
use serde_json::{json, Map, Value};

use super::filter::{get_ci, Filter};
use super::{patch, time, ListQuery, ScimError, ScimResult, USER_SCHEMA};
use crate::authz::{Actor, OrgRole};
use crate::db::DbConnection;
use crate::schema::{group_members, groups, memberships, users};
use crate::users::{self as core_users, NewUser, User, UserUpdate};
use crate::validate;

diesel::define_sql_function! {
    /// SQL's `lower()` on a nullable text column, for case-insensitive matches.
    fn lower(x: diesel::sql_types::Nullable<diesel::sql_types::Text>) -> diesel::sql_types::Nullable<diesel::sql_types::Text>;
}

/// Who is asking and for which organization; `base` is the service's
/// absolute URL (`https://app.example/scim/v2`).
#[derive(Debug, Clone)]
pub struct Ctx<'a> {
    /// Who is asking: the SCIM token's actor.
    pub actor: &'a Actor,
    /// The organization the token syncs.
    pub org: i64,
    /// The service's absolute URL, for `meta.location`.
    pub base: &'a str,
}

/// The reason a directory's deactivation gives.
pub const DEACTIVATED: &str = "Deactivated by the directory";

type Row = (
    User,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<bool>,
);

/// Which members to load.
enum Narrow {
    All,
    Id(i64),
    Ids(Vec<i64>),
    ExternalId(String),
}

fn load(conn: &mut DbConnection, org: i64, narrow: Narrow) -> ScimResult<Vec<Row>> {
    let mut q = memberships::table
        .inner_join(users::table)
        .filter(memberships::organization_id.eq(org))
        .into_boxed();
    match narrow {
        Narrow::All => {}
        Narrow::Id(id) => q = q.filter(users::id.eq(id)),
        Narrow::Ids(ids) => q = q.filter(users::id.eq_any(ids)),
        Narrow::ExternalId(v) => q = q.filter(memberships::external_id.eq(v)),
    }
    Ok(q.order(users::id.asc())
        .select((
            User::as_select(),
            memberships::scim_user_name,
            memberships::external_id,
            memberships::scim_emails,
            memberships::scim_active,
        ))
        .load(conn)?)
}

/// Groups of the organization its members belong to.
fn groups_of(
    conn: &mut DbConnection,
    org: i64,
    user: Option<i64>,
) -> ScimResult<BTreeMap<i64, Vec<(i64, String)>>> {
    let mut q = group_members::table
        .inner_join(groups::table)
        .filter(groups::organization_id.eq(org))
        .into_boxed();
    if let Some(u) = user {
        q = q.filter(group_members::user_id.eq(u));
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

fn to_json(row: &Row, groups: &[(i64, String)], base: &str) -> Value {
    let (user, user_name, external_id, emails, active) = row;
    let mut r = Map::new();
    r.insert("schemas".into(), json!([USER_SCHEMA]));
    r.insert("id".into(), json!(user.id.to_string()));
    r.insert(
        "userName".into(),
        json!(user_name.clone().unwrap_or_else(|| user.email.clone())),
    );
    if let Some(e) = external_id {
        r.insert("externalId".into(), json!(e));
    }
    let mut name = Map::new();
    if !user.first_name.is_empty() {
        name.insert("givenName".into(), json!(user.first_name));
    }
    if !user.last_name.is_empty() {
        name.insert("familyName".into(), json!(user.last_name));
    }
    if !name.is_empty() {
        r.insert("name".into(), Value::Object(name));
    }
    if let Some(d) = &user.display_name {
        r.insert("displayName".into(), json!(d));
    }
    if active.is_some() {
        r.insert("active".into(), json!(!user.is_suspended()));
    }
    // A member the directory never described shows their own address.
    let emails = match emails {
        Some(e) => serde_json::from_str::<Value>(e).unwrap_or(json!([])),
        None => json!([{"value": user.email, "type": "work", "primary": true}]),
    };
    if emails.as_array().is_some_and(|a| !a.is_empty()) {
        r.insert("emails".into(), emails);
    }
    if !groups.is_empty() {
        r.insert(
            "groups".into(),
            Value::Array(
                groups
                    .iter()
                    .map(|(id, name)| {
                        json!({"value": id.to_string(), "display": name,
                               "$ref": format!("{base}/Groups/{id}")})
                    })
                    .collect(),
            ),
        );
    }
    r.insert(
        "meta".into(),
        json!({
            "resourceType": "User",
            "created": time(user.created_at),
            "lastModified": time(user.updated_at),
            "location": format!("{base}/Users/{}", user.id),
        }),
    );
    Value::Object(r)
}

/// A user as the directory describes it (POST or PUT body).
#[derive(Debug, Clone)]
struct Input {
    user_name: String,
    external_id: Option<String>,
    given: String,
    family: String,
    display: Option<String>,
    emails: Vec<Value>,
    active: Option<bool>,
}

fn string_at(v: &Value, key: &str) -> ScimResult<Option<String>> {
    match get_ci(v, key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ScimError::invalid_value(format!("{key} must be a string"))),
    }
}

/// `true`, `false`, or the strings Entra ID sends (`"True"`, `"False"`).
fn bool_of(v: &Value) -> ScimResult<bool> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(false),
        _ => Err(ScimError::invalid_value("active must be a boolean")),
    }
}

fn input(body: &Value) -> ScimResult<Input> {
    if !body.is_object() {
        return Err(ScimError::invalid_syntax("the body must be a JSON object"));
    }
    let user_name = string_at(body, "userName")?
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ScimError::invalid_value("userName is required"))?;
    if user_name.chars().count() > validate::MAX_EMAIL {
        return Err(ScimError::invalid_value("userName is too long"));
    }
    let name = get_ci(body, "name").cloned().unwrap_or(Value::Null);
    let emails = match get_ci(body, "emails") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => {
            for e in a {
                if !matches!(get_ci(e, "value"), Some(Value::String(_))) {
                    return Err(ScimError::invalid_value("each email needs a string value"));
                }
            }
            a.clone()
        }
        Some(_) => return Err(ScimError::invalid_value("emails must be a list")),
    };
    Ok(Input {
        user_name,
        external_id: string_at(body, "externalId")?.filter(|s| !s.is_empty()),
        given: string_at(&name, "givenName")?.unwrap_or_default(),
        family: string_at(&name, "familyName")?.unwrap_or_default(),
        display: string_at(body, "displayName")?.filter(|s| !s.is_empty()),
        emails,
        active: get_ci(body, "active")
            .filter(|v| !v.is_null())
            .map(bool_of)
            .transpose()?,
    })
}

impl Input {
    /// The address the directory gives: the primary email, else the first,
    /// else the userName when it is an address.
    fn email(&self) -> Option<String> {
        let primary = self
            .emails
            .iter()
            .find(|e| get_ci(e, "primary").is_some_and(|p| bool_of(p).unwrap_or(false)))
            .or_else(|| self.emails.first())
            .and_then(|e| get_ci(e, "value"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        primary.or_else(|| {
            validate::normalize_email(&self.user_name)
                .ok()
                .map(|_| self.user_name.clone())
        })
    }
}

/// An address for a user the directory gave none (`.invalid` never
/// resolves, RFC 2606): unique per organization and userName.
fn placeholder_email(org: i64, user_name: &str) -> String {
    let h = crate::tokens::hash_token(&user_name.to_lowercase());
    format!("scim-{org}-{}@directory.invalid", &h[..16])
}

/// Members whose userName is `user_name` (any case): by the directory's
/// userName, or by email for members the directory never named. Two
/// lookups, each by an index.
fn by_user_name(conn: &mut DbConnection, org: i64, user_name: &str) -> ScimResult<Vec<i64>> {
    let lowered = user_name.to_lowercase();
    let mut ids: Vec<i64> = memberships::table
        .filter(memberships::organization_id.eq(org))
        .filter(lower(memberships::scim_user_name).eq(Some(lowered.clone())))
        .select(memberships::user_id)
        .load(conn)?;
    ids.extend(
        memberships::table
            .inner_join(users::table)
            .filter(users::email.eq(lowered))
            .filter(memberships::organization_id.eq(org))
            .filter(memberships::scim_user_name.is_null())
            .select(memberships::user_id)
            .load::<i64>(conn)?,
    );
    Ok(ids)
}

fn user_name_taken(
    conn: &mut DbConnection,
    org: i64,
    user_name: &str,
    except: Option<i64>,
) -> ScimResult<bool> {
    Ok(by_user_name(conn, org, user_name)?
        .into_iter()
        .any(|id| Some(id) != except))
}

fn find(conn: &mut DbConnection, org: i64, id: &str) -> ScimResult<Row> {
    let id: i64 = id.parse().map_err(|_| ScimError::not_found("user"))?;
    load(conn, org, Narrow::Id(id))?
        .into_iter()
        .next()
        .ok_or_else(|| ScimError::not_found("user"))
}

/// The user `id`, a member of the context's organization, as a SCIM User
/// resource; a 404 when there is none.
pub fn get(conn: &mut DbConnection, ctx: &Ctx, id: &str) -> ScimResult<Value> {
    let row = find(conn, ctx.org, id)?;
    let groups = groups_of(conn, ctx.org, Some(row.0.id))?;
    Ok(to_json(
        &row,
        groups.get(&row.0.id).map(Vec::as_slice).unwrap_or(&[]),
        ctx.base,
    ))
}

/// The organization's members that match the query's filter, as a SCIM
/// list answer.
pub fn list(conn: &mut DbConnection, ctx: &Ctx, q: &ListQuery) -> ScimResult<Value> {
    // The lookups directories make before each create go by index.
    let rows = match q.filter.as_ref().and_then(Filter::as_equality) {
        Some((attr, v)) if attr.eq_ignore_ascii_case("userName") => {
            let ids = by_user_name(conn, ctx.org, v)?;
            load(conn, ctx.org, Narrow::Ids(ids))?
        }
        Some((attr, v)) if attr.eq_ignore_ascii_case("externalId") => {
            load(conn, ctx.org, Narrow::ExternalId(v.to_owned()))?
        }
        _ => load(conn, ctx.org, Narrow::All)?,
    };
    let groups = if rows.len() == 1 {
        groups_of(conn, ctx.org, Some(rows[0].0.id))?
    } else {
        groups_of(conn, ctx.org, None)?
    };
    let all: Vec<Value> = rows
        .iter()
        .map(|r| {
            to_json(
                r,
                groups.get(&r.0.id).map(Vec::as_slice).unwrap_or(&[]),
                ctx.base,
            )
        })
        .filter(|r| q.filter.as_ref().is_none_or(|f| f.matches(r)))
        .collect();
    Ok(super::list_response(all, q))
}

fn save_scim_fields(conn: &mut DbConnection, org: i64, user: i64, i: &Input) -> ScimResult<()> {
    diesel::update(memberships::table.find((user, org)))
        .set((
            memberships::scim_user_name.eq(Some(&i.user_name)),
            memberships::external_id.eq(&i.external_id),
            memberships::scim_emails.eq(Some(Value::Array(i.emails.clone()).to_string())),
            memberships::scim_active.eq(i.active),
        ))
        .execute(conn)?;
    Ok(())
}

/// Creates a user, a member of the organization, from a SCIM User resource;
/// returns the stored resource. A taken `userName` or email is a 409
/// `uniqueness`; `active: false` creates the user suspended.
pub fn create(conn: &mut DbConnection, ctx: &Ctx, body: &Value) -> ScimResult<Value> {
    let i = input(body)?;
    let id = crate::db::write_transaction(conn, |conn| -> ScimResult<i64> {
        if user_name_taken(conn, ctx.org, &i.user_name, None)? {
            return Err(ScimError::uniqueness(format!(
                "a user with the userName {} exists in this organization",
                i.user_name
            )));
        }
        let email = i
            .email()
            .unwrap_or_else(|| placeholder_email(ctx.org, &i.user_name));
        let user = core_users::create(
            conn,
            ctx.actor,
            NewUser {
                email,
                first_name: i.given.clone(),
                last_name: i.family.clone(),
                display_name: i.display.clone(),
                organization: Some((ctx.org, OrgRole::Member)),
                ..NewUser::default()
            },
        )
        .map_err(|e| match e {
            crate::CoreError::DuplicateEmail(_) => {
                ScimError::uniqueness("a user with this email address already exists")
            }
            e => e.into(),
        })?;
        save_scim_fields(conn, ctx.org, user.id, &i)?;
        if i.active == Some(false) {
            core_users::suspend(conn, ctx.actor, user.id, DEACTIVATED)?;
        }
        Ok(user.id)
    })?;
    get(conn, ctx, &id.to_string())
}

fn belongs_elsewhere(conn: &mut DbConnection, org: i64, user: i64) -> ScimResult<bool> {
    Ok(memberships::table
        .filter(memberships::user_id.eq(user))
        .filter(memberships::organization_id.ne(org))
        .count()
        .get_result::<i64>(conn)?
        > 0)
}

fn save(conn: &mut DbConnection, ctx: &Ctx, row: Row, i: Input) -> ScimResult<()> {
    let user = row.0;
    let id = user.id;
    crate::db::write_transaction(conn, |conn| -> ScimResult<()> {
        if user_name_taken(conn, ctx.org, &i.user_name, Some(id))? {
            return Err(ScimError::uniqueness(format!(
                "a user with the userName {} exists in this organization",
                i.user_name
            )));
        }
        let email = i
            .email()
            .map(|e| validate::normalize_email(&e))
            .transpose()?;
        let email_changes = email.as_ref().is_some_and(|e| *e != user.email);
        let names_change = i.given != user.first_name
            || i.family != user.last_name
            || i.display != user.display_name;
        if (email_changes || names_change) && belongs_elsewhere(conn, ctx.org, id)? {
            // The account is shared with another organization: its
            // directory may not rename it.
            return Err(ScimError::new(
                403,
                None,
                "this user also belongs to another organization; the directory may not change their name or email",
            ));
        }
        if names_change {
            core_users::update(
                conn,
                ctx.actor,
                id,
                UserUpdate {
                    first_name: Some(i.given.clone()),
                    last_name: Some(i.family.clone()),
                    display_name: Some(i.display.clone()),
                    ..UserUpdate::default()
                },
            )?;
        }
        if let Some(email) = email.filter(|_| email_changes) {
            core_users::change_email(conn, ctx.actor, id, &email).map_err(|e| match e {
                crate::CoreError::DuplicateEmail(_) => {
                    ScimError::uniqueness("a user with this email address already exists")
                }
                e => e.into(),
            })?;
        }
        save_scim_fields(conn, ctx.org, id, &i)?;
        match i.active {
            Some(false) if !user.is_suspended() => {
                core_users::suspend(conn, ctx.actor, id, DEACTIVATED)?;
            }
            Some(true) if user.is_suspended() => {
                core_users::restore(conn, ctx.actor, id)?;
            }
            _ => {}
        }
        Ok(())
    })
}

/// Replaces the user's attributes with the body's; returns the stored
/// resource.
pub fn replace(conn: &mut DbConnection, ctx: &Ctx, id: &str, body: &Value) -> ScimResult<Value> {
    let row = find(conn, ctx.org, id)?;
    let i = input(body)?;
    let uid = row.0.id;
    save(conn, ctx, row, i)?;
    get(conn, ctx, &uid.to_string())
}

/// Applies a SCIM PATCH request to the user; returns the stored resource.
pub fn patch(conn: &mut DbConnection, ctx: &Ctx, id: &str, body: &Value) -> ScimResult<Value> {
    let row = find(conn, ctx.org, id)?;
    let mut doc = to_json(&row, &[], ctx.base);
    patch::apply(&mut doc, body)?;
    let i = input(&doc)?;
    let uid = row.0.id;
    save(conn, ctx, row, i)?;
    get(conn, ctx, &uid.to_string())
}

/// Removes the user from the organization, or deletes the account when the
/// organization says so.
pub fn delete(conn: &mut DbConnection, ctx: &Ctx, id: &str) -> ScimResult<()> {
    let row = find(conn, ctx.org, id)?;
    let org = crate::organizations::get(conn, ctx.org)?;
    if org.scim_delete == "user" {
        core_users::delete(conn, ctx.actor, row.0.id)?;
    } else {
        crate::organizations::remove_member(conn, ctx.actor, ctx.org, row.0.id)?;
    }
    Ok(())
}
