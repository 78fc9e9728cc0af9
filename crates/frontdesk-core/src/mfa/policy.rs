//! Who must use two-step sign-in: staff (when the host says so), and the
//! members of organizations that require it — by the host's list of slugs or
//! by the organization's own setting, which its owners and admins (and staff)
//! turn on and off. A user under such a policy without a factor is taken
//! through enrolment right after the password, before any session exists
//! (`auth::complete_enrolment`). Sessions opened before the policy applied
//! run on until they end.

use diesel::prelude::*;
use serde_json::json;

use crate::audit;
use crate::authz::{authorize, Action, Actor, Target};
use crate::db::DbConnection;
use crate::error::CoreResult;
use crate::organizations::Organization;
use crate::schema::{memberships, organizations};
use crate::time::now;
use crate::users::User;

/// The host's part of the policy.
#[derive(Debug, Clone, Copy, Default)]
pub struct MfaPolicy {
    /// Every staff member (any staff role) needs a second factor.
    pub staff: bool,
    /// Members of these organizations (by slug) need one, whatever the
    /// organization's own setting. Made once when frontdesk is built.
    pub organizations: &'static [String],
}

/// Whether `user` must have a second factor.
pub fn requires(conn: &mut DbConnection, user: &User, policy: &MfaPolicy) -> CoreResult<bool> {
    if policy.staff && user.staff_role.is_some() {
        return Ok(true);
    }
    let member_of = memberships::table
        .filter(memberships::user_id.eq(user.id))
        .select(memberships::organization_id);
    let slugs: Vec<&str> = policy.organizations.iter().map(String::as_str).collect();
    Ok(diesel::select(diesel::dsl::exists(
        organizations::table
            .filter(organizations::id.eq_any(member_of))
            .filter(
                organizations::require_mfa
                    .eq(true)
                    .or(organizations::slug.eq_any(slugs)),
            ),
    ))
    .get_result(conn)?)
}

/// An organization's "require two-step sign-in for members" setting, set by
/// someone who may edit the organization; audited as
/// `organization.require_mfa` when it changes.
pub fn set_for_organization(
    conn: &mut DbConnection,
    actor: &Actor,
    org_id: i64,
    on: bool,
) -> CoreResult<Organization> {
    authorize(actor, Action::Edit, &Target::Organization(org_id))?;
    crate::db::write_transaction(conn, |conn| {
        let before = crate::organizations::get(conn, org_id)?;
        if before.require_mfa == on {
            return Ok(before);
        }
        let org = diesel::update(organizations::table.find(org_id))
            .set((
                organizations::require_mfa.eq(on),
                organizations::updated_at.eq(now()),
            ))
            .returning(organizations::all_columns)
            .get_result(conn)?;
        audit::record(
            conn,
            actor,
            "organization.require_mfa",
            &format!("organization:{org_id}"),
            Some(org_id),
            json!({"require_mfa": on}),
        )?;
        Ok(org)
    })
}
