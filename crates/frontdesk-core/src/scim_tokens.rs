//! SCIM bearer tokens: each names one organization, which a directory then
//! provisions through `/scim/v2`. Shown once; only the SHA-256 is stored. The
//! directory acts as `scim_token:<id>` in the audit log, with an
//! organization admin's powers in that organization only. Also the log of
//! the directory's latest requests for the directory-sync page.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;
use serde_json::json;

use crate::audit;
use crate::authz::{authorize, Action, Actor, OrgRole, Principal, Target};
use crate::db::{DbConnection, LoadOne};
use crate::error::{CoreError, CoreResult};
use crate::schema::{scim_requests, scim_tokens};
use crate::time::now;
use crate::tokens::{hash_token, SecretToken};
use crate::validate::{self, MAX_NAME};

/// Tokens start with this, so a leaked one is easy to recognise.
pub const TOKEN_PREFIX: &str = "fdscim_";

/// How many requests per organization the log keeps.
pub const KEEP_REQUESTS: i64 = 200;

/// A bearer token a directory uses to sync one organization over SCIM. The
/// token itself is never kept, only its hash.
#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = scim_tokens)]
pub struct ScimToken {
    /// The token's id.
    pub id: i64,
    /// The organization it syncs.
    pub organization_id: i64,
    /// The name the admin gave it.
    pub name: String,
    /// The first characters of the token, for recognising it in lists.
    pub prefix: String,
    /// The SHA-256 hash of the token; never serialized.
    #[serde(skip)]
    pub token_hash: String,
    /// The user who created it, if a user did.
    pub created_by: Option<i64>,
    /// When it was created (UTC).
    pub created_at: NaiveDateTime,
    /// When a directory last used it (UTC).
    pub last_used_at: Option<NaiveDateTime>,
    /// When it was revoked (UTC); a revoked token is refused.
    pub revoked_at: Option<NaiveDateTime>,
}

impl ScimToken {
    /// The actor a directory's requests act as: an organization admin there.
    pub fn actor(&self) -> Actor {
        Actor {
            principal: Principal::ScimToken(self.id),
            staff_role: None,
            org_roles: vec![(self.organization_id, OrgRole::Admin)],
            members_may_read: true,
            ip: None,
        }
    }
}

/// Creates a token for `org`; the secret is returned this once.
pub fn create(
    conn: &mut DbConnection,
    actor: &Actor,
    org: i64,
    name: &str,
) -> CoreResult<(ScimToken, SecretToken)> {
    // A directory acts as an organization admin: only who may grant that may
    // hand it a token.
    authorize(
        actor,
        Action::GrantOrgRole(OrgRole::Admin),
        &Target::Organization(org),
    )?;
    let name = validate::text("name", name, MAX_NAME)?;
    let name = if name.is_empty() {
        "Directory".to_owned()
    } else {
        name
    };
    let secret = SecretToken::generate();
    let full = format!("{TOKEN_PREFIX}{}", secret.expose());
    crate::db::write_transaction(conn, |conn| {
        crate::organizations::get(conn, org)?;
        let token: ScimToken = diesel::insert_into(scim_tokens::table)
            .values((
                scim_tokens::organization_id.eq(org),
                scim_tokens::name.eq(&name),
                scim_tokens::prefix.eq(&full[..TOKEN_PREFIX.len() + 6]),
                scim_tokens::token_hash.eq(hash_token(&full)),
                scim_tokens::created_by.eq(actor.user_id()),
                scim_tokens::created_at.eq(now()),
            ))
            .returning(scim_tokens::all_columns)
            .get_result(conn)?;
        audit::record(
            conn,
            actor,
            "scim_token.create",
            &format!("scim_token:{}", token.id),
            Some(org),
            json!({"name": name}),
        )?;
        Ok((token, SecretToken::from_exposed(full.clone())))
    })
}

/// The live token a bearer value names, its use noted (once a minute at most).
pub fn authenticate(conn: &mut DbConnection, presented: &str) -> CoreResult<Option<ScimToken>> {
    if !presented.starts_with(TOKEN_PREFIX) || presented.len() > 200 {
        return Ok(None);
    }
    let token: Option<ScimToken> = scim_tokens::table
        .filter(scim_tokens::token_hash.eq(hash_token(presented)))
        .filter(scim_tokens::revoked_at.is_null())
        .select(ScimToken::as_select())
        .load_one(conn)?;
    if let Some(t) = &token {
        let at = now();
        if t.last_used_at
            .is_none_or(|u| at - u > chrono::Duration::minutes(1))
        {
            diesel::update(scim_tokens::table.find(t.id))
                .set(scim_tokens::last_used_at.eq(Some(at)))
                .execute(conn)?;
        }
    }
    Ok(token)
}

/// The organization's tokens, newest first (revoked ones too); whoever may
/// read the organization sees them (never their secrets).
pub fn list(conn: &mut DbConnection, actor: &Actor, org: i64) -> CoreResult<Vec<ScimToken>> {
    authorize(actor, Action::View, &Target::Organization(org))?;
    Ok(scim_tokens::table
        .filter(scim_tokens::organization_id.eq(org))
        .order(scim_tokens::id.desc())
        .select(ScimToken::as_select())
        .load(conn)?)
}

/// Revokes a token of `org` (a token of another organization is not found).
pub fn revoke(conn: &mut DbConnection, actor: &Actor, org: i64, id: i64) -> CoreResult<()> {
    authorize(
        actor,
        Action::GrantOrgRole(OrgRole::Admin),
        &Target::Organization(org),
    )?;
    crate::db::write_transaction(conn, |conn| {
        let token: ScimToken = scim_tokens::table
            .find(id)
            .filter(scim_tokens::organization_id.eq(org))
            .select(ScimToken::as_select())
            .first(conn)
            .optional()?
            .ok_or(CoreError::NotFound("scim token"))?;
        if token.revoked_at.is_some() {
            return Ok(());
        }
        diesel::update(scim_tokens::table.find(id))
            .set(scim_tokens::revoked_at.eq(Some(now())))
            .execute(conn)?;
        audit::record(
            conn,
            actor,
            "scim_token.revoke",
            &format!("scim_token:{id}"),
            Some(org),
            json!({"name": token.name}),
        )?;
        Ok(())
    })
}

/// Sets what a directory's `DELETE /Users/{id}` does in `org`:
/// `membership` (the user leaves the organization) or `user` (the account
/// is deleted).
pub fn set_delete_mode(
    conn: &mut DbConnection,
    actor: &Actor,
    org: i64,
    mode: &str,
) -> CoreResult<()> {
    authorize(
        actor,
        Action::GrantOrgRole(OrgRole::Admin),
        &Target::Organization(org),
    )?;
    if !matches!(mode, "membership" | "user") {
        return Err(CoreError::Invalid {
            field: "scim_delete",
            reason: "must be membership or user".into(),
        });
    }
    crate::db::write_transaction(conn, |conn| {
        crate::organizations::get(conn, org)?;
        diesel::update(crate::schema::organizations::table.find(org))
            .set((
                crate::schema::organizations::scim_delete.eq(mode),
                crate::schema::organizations::updated_at.eq(now()),
            ))
            .execute(conn)?;
        audit::record(
            conn,
            actor,
            "organization.scim_delete",
            &format!("organization:{org}"),
            Some(org),
            json!({"scim_delete": mode}),
        )
    })
}

/// One SCIM request a directory made, kept for the admin's log.
#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = scim_requests)]
pub struct ScimRequest {
    /// The record's id.
    pub id: i64,
    /// The organization the request was for.
    pub organization_id: i64,
    /// The token it came with, when one was recognised.
    pub token_id: Option<i64>,
    /// The HTTP method.
    pub method: String,
    /// The request's path (at most 500 characters).
    pub path: String,
    /// The HTTP status answered.
    pub status: i32,
    /// The error detail answered, if any.
    pub error: Option<String>,
    /// When it came in (UTC).
    pub created_at: NaiveDateTime,
}

/// Notes one request of a directory, keeping the newest [`KEEP_REQUESTS`].
pub fn log_request(
    conn: &mut DbConnection,
    org: i64,
    token_id: i64,
    method: &str,
    path: &str,
    status: u16,
    error: Option<&str>,
) -> CoreResult<()> {
    let path: String = path.chars().take(500).collect();
    let error: Option<String> = error.map(|e| e.chars().take(500).collect());
    let id: i64 = diesel::insert_into(scim_requests::table)
        .values((
            scim_requests::organization_id.eq(org),
            scim_requests::token_id.eq(Some(token_id)),
            scim_requests::method.eq(method),
            scim_requests::path.eq(&path),
            scim_requests::status.eq(i32::from(status)),
            scim_requests::error.eq(&error),
            scim_requests::created_at.eq(now()),
        ))
        .returning(scim_requests::id)
        .get_result(conn)?;
    // Trimmed now and then rather than on every request.
    if id % 50 == 0 {
        let oldest_kept: Option<i64> = scim_requests::table
            .filter(scim_requests::organization_id.eq(org))
            .order(scim_requests::id.desc())
            .offset(KEEP_REQUESTS - 1)
            .select(scim_requests::id)
            .load_one(conn)?;
        if let Some(oldest) = oldest_kept {
            diesel::delete(
                scim_requests::table
                    .filter(scim_requests::organization_id.eq(org))
                    .filter(scim_requests::id.lt(oldest)),
            )
            .execute(conn)?;
        }
    }
    Ok(())
}

/// The organization's latest requests, newest first; `failures` keeps only
/// those answered with an error.
pub fn recent_requests(
    conn: &mut DbConnection,
    actor: &Actor,
    org: i64,
    failures: bool,
    limit: i64,
) -> CoreResult<Vec<ScimRequest>> {
    authorize(actor, Action::View, &Target::Organization(org))?;
    let mut q = scim_requests::table
        .filter(scim_requests::organization_id.eq(org))
        .into_boxed();
    if failures {
        q = q.filter(scim_requests::status.ge(400));
    }
    Ok(q.order(scim_requests::id.desc())
        .limit(limit)
        .select(ScimRequest::as_select())
        .load(conn)?)
}
