//! The audit log: one `audit_events` row for every change an actor makes.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;

use crate::authz::Actor;
use crate::db::{Backend, DbConnection};
use crate::error::CoreResult;
use crate::schema::audit_events;
use crate::time::now;

/// One audit log row: who did what to which record.
#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = audit_events)]
pub struct AuditEvent {
    /// The row's id.
    pub id: i64,
    /// Who did it (`user:7`, `api_key:3`, `system`); see [`Actor::label`].
    pub actor: String,
    /// What was done (`user.suspend`, `membership.add`, ...).
    pub action: String,
    /// The record it was done to, as `kind:id` (`user:7`).
    pub target: String,
    /// The organization the change belongs to, if any.
    pub organization_id: Option<i64>,
    /// Details of the change, a JSON object as text; never a secret.
    pub details: String,
    /// The actor's IP address, when known.
    pub ip: Option<String>,
    /// When it happened (UTC).
    pub created_at: NaiveDateTime,
}

/// Writes one event. Call it inside the transaction that makes the change, so
/// that a change without its event cannot be committed. It also emits the
/// change's typed [`crate::events::Event`] (see that module), which a
/// listener may veto: the error then rolls the transaction back.
pub fn record(
    conn: &mut DbConnection,
    actor: &Actor,
    action: &str,
    target: &str,
    organization_id: Option<i64>,
    details: serde_json::Value,
) -> CoreResult<()> {
    diesel::insert_into(audit_events::table)
        .values((
            audit_events::actor.eq(actor.label()),
            audit_events::action.eq(action),
            audit_events::target.eq(target),
            audit_events::organization_id.eq(organization_id),
            audit_events::details.eq(details.to_string()),
            audit_events::ip.eq(actor.ip.as_deref()),
            audit_events::created_at.eq(now()),
        ))
        .execute(conn)?;
    let event =
        crate::events::Event::from_audit(&actor.label(), action, target, organization_id, &details);
    crate::events::emit(conn, event)
}

/// Filters for the audit log list; every field set must match.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Only rows by this actor label (`user:7`).
    pub actor: Option<String>,
    /// Only rows with this action.
    pub action: Option<String>,
    /// Only rows about this target (`user:7`).
    pub target: Option<String>,
    /// Limit to these organizations (an org admin's view); `None` for all.
    pub organizations: Option<Vec<i64>>,
}

/// One page of the audit log, newest first, with the number of matching
/// rows. `page` is 1-based; `limit` rows per page. No access check: the
/// caller scopes an org admin's view with `filter.organizations`.
pub fn list(
    conn: &mut DbConnection,
    filter: &AuditFilter,
    page: i64,
    limit: i64,
) -> CoreResult<(Vec<AuditEvent>, i64)> {
    let build = || {
        let mut q = audit_events::table.into_boxed::<Backend>();
        if let Some(a) = &filter.actor {
            q = q.filter(audit_events::actor.eq(a.clone()));
        }
        if let Some(a) = &filter.action {
            q = q.filter(audit_events::action.eq(a.clone()));
        }
        if let Some(t) = &filter.target {
            q = q.filter(audit_events::target.eq(t.clone()));
        }
        if let Some(orgs) = &filter.organizations {
            // Events recorded in one of these organizations, and events about a
            // member that belong to no organization (a suspension, a profile
            // edit). A member's events in other organizations (their role or
            // membership there) stay hidden.
            let ids = if orgs.is_empty() {
                "NULL".to_owned()
            } else {
                orgs.iter()
                    .map(i64::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            };
            q = q.filter(diesel::dsl::sql::<diesel::sql_types::Bool>(&format!(
                "(audit_events.organization_id IN ({ids}) OR (audit_events.organization_id IS NULL \
                 AND audit_events.target IN \
                 (SELECT 'user:' || user_id FROM memberships WHERE organization_id IN ({ids}))))"
            )));
        }
        q
    };
    let total = build().count().get_result(conn)?;
    let rows = build()
        .order((audit_events::created_at.desc(), audit_events::id.desc()))
        .limit(limit)
        .offset((page.max(1) - 1) * limit)
        .select(AuditEvent::as_select())
        .load(conn)?;
    Ok((rows, total))
}
