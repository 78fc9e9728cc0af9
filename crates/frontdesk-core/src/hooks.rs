//! Callbacks the host implements to keep its own rows in step with frontdesk
//! (like Django's auth signals). Every method has an empty default; they run
//! on a blocking thread after the change is committed.

use crate::invitations::{Accepted, Invitation};
use crate::login_attempts::Reason;
use crate::users::User;

pub trait Hooks: Send + Sync + 'static {
    fn user_signed_in(&self, _user: &User) {}
    /// `email` is what was typed; `user_id` is set when it names an account.
    fn login_failed(&self, _email: &str, _user_id: Option<i64>, _reason: Reason) {}
    fn user_created(&self, _user: &User) {}
    fn user_deleted(&self, _user_id: i64) {}
    /// An invitee accepted: `accepted.user` is the new or existing account,
    /// now a member of `accepted.organization_id` with `accepted.role`.
    fn invitation_accepted(&self, _accepted: &Accepted) {}
    fn invitation_declined(&self, _invitation: &Invitation) {}
}

/// The hooks used when the host sets none.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoHooks;

impl Hooks for NoHooks {}
