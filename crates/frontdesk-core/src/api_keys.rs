//! API keys: named bearer secrets with a role, optionally scoped to one
//! organization. The key is shown once; only its SHA-256 is stored.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;
use serde_json::json;

use crate::audit;
use crate::authz::{authorize, Action, Actor, OrgRole, Principal, StaffRole, Target};
use crate::db::{DbConnection, LoadOne};
use crate::error::{CoreError, CoreResult};
use crate::schema::api_keys;
use crate::time::now;
use crate::tokens::{hash_token, SecretToken};
use crate::validate::{self, MAX_NAME};

/// Keys start with this, so a leaked one is easy to recognise in code or logs.
pub const KEY_PREFIX: &str = "fdk_";

/// An API key, as stored. The key itself is never kept, only its hash.
#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = api_keys)]
pub struct ApiKey {
    /// The key's id.
    pub id: i64,
    /// The name the creator gave it.
    pub name: String,
    /// The first characters of the key, for recognising it in lists.
    pub prefix: String,
    /// The SHA-256 hash of the key; never serialized.
    #[serde(skip)]
    pub key_hash: String,
    /// The organization the key is scoped to; `None` for a site-wide key.
    pub organization_id: Option<i64>,
    /// The role's stored name: a staff role for site-wide keys, an organization
    /// role otherwise; see [`ApiKey::key_role`].
    pub role: String,
    /// The user who created it, if a user did.
    pub created_by: Option<i64>,
    /// When it was created (UTC).
    pub created_at: NaiveDateTime,
    /// When a request last used it (UTC).
    pub last_used_at: Option<NaiveDateTime>,
    /// When it was revoked (UTC); a revoked key is refused.
    pub revoked_at: Option<NaiveDateTime>,
}

/// The role a key acts with: a staff role for site-wide keys, an organization
/// role for keys scoped to one organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRole {
    /// A site-wide key acting with this staff role.
    Staff(StaffRole),
    /// A key scoped to the organization (id), acting with this role there.
    Org(i64, OrgRole),
}

impl ApiKey {
    /// The role the key acts with; `None` when the stored role is unknown.
    pub fn key_role(&self) -> Option<KeyRole> {
        match self.organization_id {
            Some(org) => OrgRole::parse(&self.role).map(|r| KeyRole::Org(org, r)),
            None => StaffRole::parse(&self.role).map(KeyRole::Staff),
        }
    }

    /// The actor requests made with this key act as.
    pub fn actor(&self) -> Option<Actor> {
        let (staff_role, org_roles) = match self.key_role()? {
            KeyRole::Staff(r) => (Some(r), vec![]),
            KeyRole::Org(org, r) => (None, vec![(org, r)]),
        };
        Some(Actor {
            principal: Principal::ApiKey(self.id),
            staff_role,
            org_roles,
            members_may_read: true,
            ip: None,
        })
    }
}

/// Creates a key and returns it with the secret, which is never shown again.
pub fn create(
    conn: &mut DbConnection,
    actor: &Actor,
    name: &str,
    role: KeyRole,
) -> CoreResult<(ApiKey, SecretToken)> {
    let name = validate::text("name", name, MAX_NAME)?;
    if name.is_empty() {
        return Err(CoreError::Invalid {
            field: "name",
            reason: "must not be empty".into(),
        });
    }
    let (org, role_str) = match role {
        KeyRole::Staff(r) => {
            // A site-wide key is as strong as a staff member: only owners make them,
            // and nobody can mint a key stronger than themselves.
            authorize(actor, Action::GrantStaffRole, &Target::Site)?;
            (None, r.as_str())
        }
        KeyRole::Org(org, r) => {
            authorize(actor, Action::GrantOrgRole(r), &Target::Organization(org))?;
            (Some(org), r.as_str())
        }
    };
    let secret = SecretToken::generate();
    let full = format!("{KEY_PREFIX}{}", secret.expose());
    let key_hash = hash_token(&full);
    crate::db::write_transaction(conn, |conn| {
        if let Some(org) = org {
            crate::organizations::get(conn, org)?;
        }
        let key: ApiKey = diesel::insert_into(api_keys::table)
            .values((
                api_keys::name.eq(&name),
                api_keys::prefix.eq(&full[..KEY_PREFIX.len() + 6]),
                api_keys::key_hash.eq(&key_hash),
                api_keys::organization_id.eq(org),
                api_keys::role.eq(role_str),
                api_keys::created_by.eq(actor.user_id()),
                api_keys::created_at.eq(now()),
            ))
            .returning(api_keys::all_columns)
            .get_result(conn)?;
        audit::record(
            conn,
            actor,
            "api_key.create",
            &format!("api_key:{}", key.id),
            org,
            json!({"name": name, "role": role_str}),
        )?;
        Ok((key, SecretToken::from_exposed(full.clone())))
    })
}

/// Finds the live key a bearer token names and notes its use (at most once a
/// minute, to keep reads cheap).
pub fn authenticate(conn: &mut DbConnection, presented: &str) -> CoreResult<Option<ApiKey>> {
    if !presented.starts_with(KEY_PREFIX) || presented.len() > 200 {
        return Ok(None);
    }
    let key: Option<ApiKey> = api_keys::table
        .filter(api_keys::key_hash.eq(hash_token(presented)))
        .filter(api_keys::revoked_at.is_null())
        .select(ApiKey::as_select())
        .load_one(conn)?;
    if let Some(k) = &key {
        let t = now();
        if k.last_used_at
            .is_none_or(|u| t - u > chrono::Duration::minutes(1))
        {
            diesel::update(api_keys::table.find(k.id))
                .set(api_keys::last_used_at.eq(Some(t)))
                .execute(conn)?;
        }
    }
    Ok(key)
}

/// Keys the actor may manage: all for staff owners, their organizations' for org owners/admins.
pub fn list(conn: &mut DbConnection, actor: &Actor) -> CoreResult<Vec<ApiKey>> {
    let mut q = api_keys::table.into_boxed();
    if actor.staff_role != Some(StaffRole::Owner) {
        let orgs: Vec<i64> = actor
            .org_roles
            .iter()
            .filter(|(_, r)| *r >= OrgRole::Admin)
            .map(|(o, _)| *o)
            .collect();
        if orgs.is_empty() {
            return Err(CoreError::Forbidden);
        }
        q = q.filter(api_keys::organization_id.eq_any(orgs));
    }
    Ok(q.order(api_keys::created_at.desc())
        .select(ApiKey::as_select())
        .load(conn)?)
}

/// Revokes a key at once. The actor must be allowed to grant the key's
/// role; a key the actor may not manage reads as not found.
pub fn revoke(conn: &mut DbConnection, actor: &Actor, id: i64) -> CoreResult<()> {
    crate::db::write_transaction(conn, |conn| {
        let key: ApiKey = api_keys::table
            .find(id)
            .select(ApiKey::as_select())
            .first(conn)
            .optional()?
            .ok_or(CoreError::NotFound("api key"))?;
        match key.key_role() {
            Some(KeyRole::Org(org, r)) => {
                authorize(actor, Action::GrantOrgRole(r), &Target::Organization(org))
                    .map_err(|_| CoreError::NotFound("api key"))?
            }
            _ => authorize(actor, Action::GrantStaffRole, &Target::Site)
                .map_err(|_| CoreError::NotFound("api key"))?,
        }
        diesel::update(
            api_keys::table
                .find(id)
                .filter(api_keys::revoked_at.is_null()),
        )
        .set(api_keys::revoked_at.eq(Some(now())))
        .execute(conn)?;
        audit::record(
            conn,
            actor,
            "api_key.revoke",
            &format!("api_key:{id}"),
            key.organization_id,
            json!({"name": key.name}),
        )?;
        Ok(())
    })
}
