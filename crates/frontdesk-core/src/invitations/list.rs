//! Expiry and the admin's list of invitations with their delivery state.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;

use crate::authz::Actor;
use crate::db::{Backend, DbConnection};
use crate::schema::{invitations, organizations as orgs_table, outbox as outbox_table};
use crate::time::now;

use super::*;

/// Writes `expired` on pending invitations past their expiry; returns how many.
/// Expiry is enforced on every read and accept regardless: this only keeps the
/// stored status in step for lists and exports.
pub fn expire_due(conn: &mut DbConnection) -> InvitationResult<usize> {
    let t = now();
    Ok(diesel::update(invitations::table)
        .filter(invitations::status.eq(InvitationStatus::Pending.as_str()))
        .filter(invitations::expires_at.le(t))
        .set((
            invitations::status.eq(InvitationStatus::Expired.as_str()),
            invitations::updated_at.eq(t),
        ))
        .execute(conn)?)
}

/// Filters for the admin list.
#[derive(Debug, Clone, Default)]
pub struct InvitationFilter {
    /// Only invitations to this organization.
    pub organization_id: Option<i64>,
    /// Only invitations with this status (as of now).
    pub status: Option<InvitationStatus>,
    /// Substring of the invited address.
    pub email: Option<String>,
}

/// Where the latest mail of an invitation stands.
#[derive(Debug, Clone, Serialize, Queryable, Selectable)]
#[diesel(table_name = outbox_table)]
pub struct DeliveryState {
    /// The mail's outbox id.
    #[diesel(column_name = id)]
    pub outbox_id: i64,
    /// `queued`, `sending`, `sent` or `failed`.
    pub status: String,
    /// Delivery attempts so far.
    pub attempts: i32,
    /// Why the last attempt failed, if it did.
    pub last_error: Option<String>,
    /// When the next attempt is due (UTC).
    pub next_attempt_at: NaiveDateTime,
    /// When it was sent (UTC).
    pub sent_at: Option<NaiveDateTime>,
}

/// One row of the invitations list.
#[derive(Debug, Clone, Serialize)]
pub struct InvitationListItem {
    /// The invitation.
    pub invitation: Invitation,
    /// The status as of now (a pending invitation past expiry shows as expired).
    pub status: InvitationStatus,
    /// The organization's slug.
    pub organization_slug: String,
    /// The organization's name.
    pub organization_name: String,
    /// Where its latest mail stands; `None` when no mail is left in the outbox.
    pub delivery: Option<DeliveryState>,
}

/// Invitations the actor may see, newest first, with their delivery state.
pub fn list(
    conn: &mut DbConnection,
    actor: &Actor,
    filter: &InvitationFilter,
    page: i64,
    limit: i64,
) -> InvitationResult<(Vec<InvitationListItem>, i64)> {
    let t = now();
    let limit = limit.clamp(1, 100);
    let visible = actor.visible_orgs();
    let build = || {
        let mut q = invitations::table.into_boxed::<Backend>();
        if let Some(orgs) = &visible {
            q = q.filter(invitations::organization_id.eq_any(orgs.clone()));
        }
        if let Some(org) = filter.organization_id {
            q = q.filter(invitations::organization_id.eq(org));
        }
        if let Some(email) = filter
            .email
            .as_deref()
            .map(str::trim)
            .filter(|e| !e.is_empty())
        {
            q = q.filter(
                invitations::email
                    .like(crate::db::like_pattern(&email.to_lowercase()))
                    .escape('\\'),
            );
        }
        let pending = InvitationStatus::Pending.as_str();
        match filter.status {
            None => {}
            Some(InvitationStatus::Pending) => {
                q = q
                    .filter(invitations::status.eq(pending))
                    .filter(invitations::expires_at.gt(t));
            }
            Some(InvitationStatus::Expired) => {
                q = q.filter(
                    invitations::status
                        .eq(InvitationStatus::Expired.as_str())
                        .or(invitations::status
                            .eq(pending)
                            .and(invitations::expires_at.le(t))),
                );
            }
            Some(s) => q = q.filter(invitations::status.eq(s.as_str())),
        }
        q
    };
    let total: i64 = build().count().get_result(conn)?;
    let rows: Vec<Invitation> = build()
        .order((invitations::created_at.desc(), invitations::id.desc()))
        .limit(limit)
        .offset((page.max(1) - 1) * limit)
        .select(Invitation::as_select())
        .load(conn)?;
    let ids: Vec<i64> = rows.iter().map(|i| i.id).collect();
    let mut org_ids: Vec<i64> = rows.iter().map(|i| i.organization_id).collect();
    org_ids.sort_unstable();
    org_ids.dedup();
    let orgs: Vec<(i64, String, String)> = orgs_table::table
        .filter(orgs_table::id.eq_any(org_ids))
        .select((orgs_table::id, orgs_table::slug, orgs_table::name))
        .load(conn)?;
    // Every mail of these invitations, oldest first: the last one is the current state.
    let mails: Vec<(Option<i64>, DeliveryState)> = outbox_table::table
        .filter(outbox_table::invitation_id.eq_any(ids))
        .order(outbox_table::id.asc())
        .select((outbox_table::invitation_id, DeliveryState::as_select()))
        .load(conn)?;
    let items = rows
        .into_iter()
        .map(|inv| {
            let delivery = mails
                .iter()
                .rev()
                .find(|(id, _)| *id == Some(inv.id))
                .map(|(_, d)| d.clone());
            let (slug, name) = orgs
                .iter()
                .find(|o| o.0 == inv.organization_id)
                .map(|o| (o.1.clone(), o.2.clone()))
                .unwrap_or_default();
            InvitationListItem {
                status: inv.status_at(t),
                invitation: inv,
                organization_slug: slug,
                organization_name: name,
                delivery,
            }
        })
        .collect();
    Ok((items, total))
}
