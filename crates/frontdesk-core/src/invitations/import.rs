//! Invitations sent by a CSV import, one per created user.

use diesel::prelude::*;
use serde_json::json;

use crate::audit;
use crate::authz::{authorize, Action, Actor, OrgRole, Target};
use crate::db::DbConnection;
use crate::organizations::{self};
use crate::outbox::MailRenderer;
use crate::schema::{import_invitations, invitations};
use crate::time::now;
use crate::tokens::SecretToken;

use super::*;

/// Invitations for the users an import creates (`WelcomeMail::invitations`):
/// the link settings and the mail templates.
#[derive(Clone)]
pub struct ImportInvitations {
    /// Where the links point and how long they live.
    pub settings: InvitationSettings,
    /// Renders the invitation mail.
    pub renderer: std::sync::Arc<dyn MailRenderer>,
}

impl std::fmt::Debug for ImportInvitations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportInvitations")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl ImportInvitations {
    /// Invites a user the import just created (already a member, without a
    /// password) into `org`, inside the import's batch transaction, and
    /// queues the mail. A pending invitation of the same address there is
    /// cancelled first: the new link is the one that works.
    pub fn invite_created(
        &self,
        conn: &mut DbConnection,
        actor: &Actor,
        org: i64,
        email: &str,
        role: OrgRole,
    ) -> InvitationResult<IssuedInvitation> {
        authorize(
            actor,
            Action::GrantOrgRole(role),
            &Target::Organization(org),
        )?;
        let t = now();
        if let Some(old) = pending_id(conn, org, email)? {
            diesel::update(invitations::table.find(old))
                .set((
                    invitations::status.eq(InvitationStatus::Cancelled.as_str()),
                    invitations::updated_at.eq(t),
                ))
                .execute(conn)?;
            supersede_queued_mail(conn, old, "a new invitation was sent by an import")?;
        }
        let organization = organizations::get(conn, org)?;
        let token = SecretToken::generate();
        let inv = diesel::insert_into(invitations::table)
            .values((
                invitations::organization_id.eq(org),
                invitations::email.eq(email),
                invitations::role.eq(role.as_str()),
                invitations::message.eq(None::<String>),
                invitations::token_hash.eq(token.hash()),
                invitations::status.eq(InvitationStatus::Pending.as_str()),
                invitations::expires_at.eq(t + self.settings.ttl),
                invitations::invited_by.eq(actor.user_id()),
                invitations::send_count.eq(1),
                invitations::last_sent_at.eq(Some(t)),
                invitations::created_at.eq(t),
                invitations::updated_at.eq(t),
            ))
            .returning(invitations::all_columns)
            .get_result::<Invitation>(conn)?;
        diesel::insert_into(import_invitations::table)
            .values(import_invitations::invitation_id.eq(inv.id))
            .execute(conn)?;
        let outbox_id = queue_mail(
            conn,
            actor,
            &self.settings,
            self.renderer.as_ref(),
            &organization,
            &inv,
            &token,
        )?;
        audit::record(
            conn,
            actor,
            "invitation.create",
            &format!("invitation:{}", inv.id),
            Some(org),
            json!({"email": email, "role": role, "organization": organization.slug, "via": "import"}),
        )?;
        Ok(IssuedInvitation {
            invitation: inv,
            token,
            outbox_id,
        })
    }
}
