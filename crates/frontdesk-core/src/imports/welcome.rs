//! The welcome mail or invitation a created user may get.

use crate::authz::Actor;
use crate::db::DbConnection;
use crate::error::CoreError;
use crate::outbox::{self, NewMail};

use super::*;

pub(super) fn problem(code: &'static str, e: CoreError) -> Problem {
    (code, e.to_string())
}

/// Queues the mail of a created user: an invitation into the row's first
/// organization when invitations are configured, else the welcome mail.
pub(super) fn welcome_or_invite(
    conn: &mut DbConnection,
    actor: &Actor,
    m: &WelcomeMail,
    p: &Pending,
) -> Result<(), ImportError> {
    match (&m.invitations, p.memberships.first()) {
        (Some(inv), Some((org, role))) => {
            inv.invite_created(conn, actor, *org, &p.email, *role)
                .map_err(|e| match e {
                    crate::invitations::InvitationError::Core(c) => ImportError::Core(c),
                    other => ImportError::Core(CoreError::Invalid {
                        field: "invitation",
                        reason: other.to_string(),
                    }),
                })?;
        }
        _ => {
            outbox::enqueue(conn, &welcome(m, p))?;
        }
    }
    Ok(())
}

pub(super) fn welcome(m: &WelcomeMail, p: &Pending) -> NewMail {
    let name = if p.first_name.is_empty() {
        p.email.as_str()
    } else {
        p.first_name.as_str()
    };
    NewMail {
        kind: "import_welcome".into(),
        recipient: p.email.clone(),
        subject: format!("Your {} account", m.site_name),
        text_body: format!(
            "Hello {name},\n\nAn account was created for you on {site}.\n\
             To choose your password, open {url} and enter this email address ({email}).\n",
            site = m.site_name,
            url = m.set_password_url,
            email = p.email,
        ),
        html_body: None,
        invitation_id: None,
    }
}
