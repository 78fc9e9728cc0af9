//! Inviting: create, resend (a new link kills the old one), cancel.

use diesel::prelude::*;
use serde_json::json;

use crate::audit;
use crate::authz::{authorize, Action, Actor, Target};
use crate::db::DbConnection;
use crate::error::CoreError;
use crate::organizations::{self};
use crate::outbox::MailRenderer;
use crate::schema::invitations;
use crate::time::now;
use crate::tokens::SecretToken;
use crate::users::unique_violation;
use crate::validate::{self};

use super::*;

/// Invites `new.email` into an organization and queues the mail. An org admin
/// invites only into their own organization, with a role below owner, and only
/// addresses of the organization's allowed domains (when it has any).
pub fn create(
    conn: &mut DbConnection,
    actor: &Actor,
    settings: &InvitationSettings,
    renderer: &dyn MailRenderer,
    new: &NewInvitation,
) -> InvitationResult<IssuedInvitation> {
    authorize(
        actor,
        Action::GrantOrgRole(new.role),
        &Target::Organization(new.organization_id),
    )?;
    let email = validate::normalize_email(&new.email)?;
    let message = clean_message(new.message.as_deref())?;
    let first_name = clean_name("first_name", new.first_name.as_deref())?;
    let last_name = clean_name("last_name", new.last_name.as_deref())?;
    crate::db::write_transaction(conn, |conn| {
        let t = now();
        // A pending invitation past its expiry no longer blocks a new one. This
        // write comes first so that SQLite takes its write lock at the start of
        // the transaction (waiting its turn) instead of failing to upgrade later.
        diesel::update(invitations::table)
            .filter(invitations::organization_id.eq(new.organization_id))
            .filter(invitations::email.eq(&email))
            .filter(invitations::status.eq(InvitationStatus::Pending.as_str()))
            .filter(invitations::expires_at.le(t))
            .set((
                invitations::status.eq(InvitationStatus::Expired.as_str()),
                invitations::updated_at.eq(t),
            ))
            .execute(conn)?;
        let org = organizations::get(conn, new.organization_id)?;
        if !org.allows_email(&email) {
            return Err(CoreError::DomainNotAllowed.into());
        }
        if is_member(conn, &email, org.id)? {
            return Err(CoreError::AlreadyMember.into());
        }
        if let Some(id) = pending_id(conn, org.id, &email)? {
            return Err(InvitationError::AlreadyPending {
                invitation_id: Some(id),
                email: email.clone(),
            });
        }
        let token = SecretToken::generate();
        let inserted = diesel::insert_into(invitations::table)
            .values((
                invitations::organization_id.eq(org.id),
                invitations::email.eq(&email),
                invitations::role.eq(new.role.as_str()),
                invitations::message.eq(&message),
                invitations::first_name.eq(&first_name),
                invitations::last_name.eq(&last_name),
                invitations::token_hash.eq(token.hash()),
                invitations::status.eq(InvitationStatus::Pending.as_str()),
                invitations::expires_at.eq(t + settings.ttl),
                invitations::invited_by.eq(actor.user_id()),
                invitations::send_count.eq(1),
                invitations::last_sent_at.eq(Some(t)),
                invitations::created_at.eq(t),
                invitations::updated_at.eq(t),
            ))
            .returning(invitations::all_columns)
            .get_result::<Invitation>(conn);
        let inv = match inserted {
            // Another admin invited the same address a moment ago.
            Err(e) if unique_violation(&e) => {
                return Err(InvitationError::AlreadyPending {
                    invitation_id: None,
                    email: email.clone(),
                })
            }
            other => other?,
        };
        let group_names = super::groups::attach(conn, actor, org.id, inv.id, &new.groups)?;
        let outbox_id = queue_mail(conn, actor, settings, renderer, &org, &inv, &token)?;
        let mut details = json!({"email": email, "role": new.role, "organization": org.slug});
        if !group_names.is_empty() {
            details["groups"] = json!(group_names);
        }
        audit::record(
            conn,
            actor,
            "invitation.create",
            &format!("invitation:{}", inv.id),
            Some(org.id),
            details,
        )?;
        Ok(IssuedInvitation {
            invitation: inv,
            token,
            outbox_id,
        })
    })
}

/// Sends the invitation again with a new link; the old link stops working.
/// Works on pending and expired invitations (an expired one gets a new expiry).
pub fn resend(
    conn: &mut DbConnection,
    actor: &Actor,
    settings: &InvitationSettings,
    renderer: &dyn MailRenderer,
    id: i64,
) -> InvitationResult<IssuedInvitation> {
    crate::db::write_transaction(conn, |conn| {
        lock_row(conn, id)?;
        let old = get_for(conn, actor, id)?;
        authorize(
            actor,
            Action::GrantOrgRole(old.role()),
            &Target::Organization(old.organization_id),
        )?;
        let t = now();
        match old.status_at(t) {
            InvitationStatus::Pending | InvitationStatus::Expired => {}
            other => return Err(InvitationError::NotPending(other)),
        }
        // An import's invitation goes to a member whose account awaits its password.
        if is_member(conn, &old.email, old.organization_id)?
            && account_to_activate(conn, &old)?.is_none()
        {
            return Err(CoreError::AlreadyMember.into());
        }
        let org = organizations::get(conn, old.organization_id)?;
        let token = SecretToken::generate();
        let updated = diesel::update(invitations::table.find(id))
            .filter(invitations::status.eq_any([
                InvitationStatus::Pending.as_str(),
                InvitationStatus::Expired.as_str(),
            ]))
            .set((
                invitations::token_hash.eq(token.hash()),
                invitations::status.eq(InvitationStatus::Pending.as_str()),
                invitations::expires_at.eq(t + settings.ttl),
                invitations::send_count.eq(invitations::send_count + 1),
                invitations::last_sent_at.eq(Some(t)),
                invitations::updated_at.eq(t),
            ))
            .returning(invitations::all_columns)
            .get_result::<Invitation>(conn)
            .optional();
        let inv = match updated {
            Err(e) if unique_violation(&e) => {
                return Err(InvitationError::AlreadyPending {
                    invitation_id: None,
                    email: old.email.clone(),
                })
            }
            Ok(None) => return Err(InvitationError::NotPending(by_id(conn, id)?.status_at(t))),
            Ok(Some(inv)) => inv,
            Err(e) => return Err(e.into()),
        };
        supersede_queued_mail(conn, id, "the invitation was sent again")?;
        let outbox_id = queue_mail(conn, actor, settings, renderer, &org, &inv, &token)?;
        audit::record(
            conn,
            actor,
            "invitation.resend",
            &format!("invitation:{id}"),
            Some(inv.organization_id),
            json!({"email": inv.email, "send_count": inv.send_count}),
        )?;
        Ok(IssuedInvitation {
            invitation: inv,
            token,
            outbox_id,
        })
    })
}

/// Withdraws a pending invitation; its link stops working and unsent mail is dropped.
pub fn cancel(conn: &mut DbConnection, actor: &Actor, id: i64) -> InvitationResult<Invitation> {
    crate::db::write_transaction(conn, |conn| {
        lock_row(conn, id)?;
        let old = get_for(conn, actor, id)?;
        authorize(
            actor,
            Action::GrantOrgRole(old.role()),
            &Target::Organization(old.organization_id),
        )?;
        let t = now();
        let inv = diesel::update(invitations::table.find(id))
            .filter(invitations::status.eq(InvitationStatus::Pending.as_str()))
            .set((
                invitations::status.eq(InvitationStatus::Cancelled.as_str()),
                invitations::updated_at.eq(t),
            ))
            .returning(invitations::all_columns)
            .get_result::<Invitation>(conn)
            .optional()?
            .ok_or(InvitationError::NotPending(old.status_at(t)))?;
        supersede_queued_mail(conn, id, "the invitation was cancelled")?;
        audit::record(
            conn,
            actor,
            "invitation.cancel",
            &format!("invitation:{id}"),
            Some(inv.organization_id),
            json!({"email": inv.email}),
        )?;
        Ok(inv)
    })
}
