//! `frontdesk invite`: invites addresses into an organization through the same
//! service as the admin pages (same checks, same audit events); each mail goes
//! to the outbox, for the app's worker or for `--send` to deliver.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use frontdesk_core::authz::OrgRole;
use frontdesk_core::invitations::{
    self, InvitationError, InvitationSettings, IssuedInvitation, NewInvitation,
};
use frontdesk_core::organizations::{self, Organization};
use frontdesk_core::outbox;
use frontdesk_core::CoreError;
use frontdesk_mail::Templates;

use crate::outbox::{deliver, describe_report, SendArgs};
use crate::{actor_for, conn, connect, ActorArgs, CliResult};

#[derive(Args)]
pub struct InviteArgs {
    /// The addresses to invite.
    #[arg(required = true, value_name = "EMAIL")]
    emails: Vec<String>,
    /// The organization (slug) to invite into.
    #[arg(long)]
    org: String,
    /// member, admin or owner.
    #[arg(long)]
    role: String,
    /// A personal message shown in the mail and on the invitation page.
    #[arg(long)]
    message: Option<String>,
    /// The invitee's first name, filled in on the invitation page (one
    /// address only).
    #[arg(long)]
    first_name: Option<String>,
    /// The invitee's last name, filled in on the invitation page (one
    /// address only).
    #[arg(long)]
    last_name: Option<String>,
    /// Days until the link expires.
    #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(i64).range(1..=365))]
    expires_days: i64,
    /// Public URL of the app; the links in the mail start with it.
    #[arg(long, env = "FRONTDESK_BASE_URL")]
    base_url: Option<String>,
    /// Where the host mounted the auth pages.
    #[arg(long, env = "FRONTDESK_AUTH_PREFIX", default_value = "/auth")]
    auth_prefix: String,
    /// A folder of mail templates overriding the embedded ones by name
    /// (`invitation/subject.txt`, `invitation/body.txt`, `invitation/body.html`).
    #[arg(long, env = "FRONTDESK_MAIL_TEMPLATES")]
    mail_templates: Option<PathBuf>,
    /// For an address with a pending invitation in this organization, send
    /// that invitation again with a new link (the old link stops working).
    #[arg(long)]
    resend: bool,
    #[command(flatten)]
    send: SendArgs,
    #[command(flatten)]
    actor: ActorArgs,
}

fn parse_role(role: &str) -> CliResult<OrgRole> {
    OrgRole::parse(role.trim())
        .ok_or_else(|| format!("--role {role:?}: use member, admin or owner"))
}

/// The sentence for one address that could not be invited.
fn refusal(e: &InvitationError, org: &Organization, role: OrgRole, who: &str) -> String {
    match e {
        InvitationError::AlreadyPending {
            invitation_id: Some(id),
            ..
        } => format!(
            "an invitation is already pending in {} (invitation {id}); pass --resend to send it again with a new link",
            org.slug
        ),
        InvitationError::AlreadyPending { .. } => format!(
            "an invitation is already pending in {}; pass --resend to send it again with a new link",
            org.slug
        ),
        InvitationError::Core(CoreError::AlreadyMember) => {
            format!("already a member of {}", org.slug)
        }
        InvitationError::Core(CoreError::DomainNotAllowed) => format!(
            "the email domain is not allowed in {} (allowed: {})",
            org.slug,
            org.allowed_email_domains
        ),
        InvitationError::Core(CoreError::Forbidden) => format!(
            "{who} may not invite into {} as {}",
            org.slug,
            role.as_str()
        ),
        other => other.to_string(),
    }
}

fn status_line(issued: &IssuedInvitation, org: &Organization, resent: bool) -> String {
    let inv = &issued.invitation;
    format!(
        "{} {} to {} as {} (invitation {}, sent {} time(s), expires {}); mail #{} queued",
        if resent { "re-invited" } else { "invited" },
        inv.email,
        org.slug,
        inv.role,
        inv.id,
        inv.send_count,
        inv.expires_at.format("%Y-%m-%d %H:%M UTC"),
        issued.outbox_id
    )
}

pub fn run(url: Option<&str>, args: InviteArgs) -> CliResult<ExitCode> {
    let role = parse_role(&args.role)?;
    if args.emails.len() > 1 && (args.first_name.is_some() || args.last_name.is_some()) {
        return Err("--first-name and --last-name name one invitee: give one address".into());
    }
    let base_url = args
        .base_url
        .as_deref()
        .ok_or("--base-url (or FRONTDESK_BASE_URL) is required: the links in the mail start with the app's public URL")?;
    let settings = InvitationSettings::new(base_url)
        .map_err(|e| format!("--base-url: {e}"))?
        .with_auth_path(&args.auth_prefix)
        .with_ttl(chrono::Duration::days(args.expires_days));
    let templates = match &args.mail_templates {
        Some(dir) => Templates::with_overrides(dir),
        None => Templates::new(),
    }
    .map_err(|e| e.to_string())?;
    let pool = connect(url)?;
    let mailer = args.send.mailer(&pool)?;
    let mut c = conn(&pool)?;
    let actor = actor_for(&mut c, &args.actor)?;
    let who = args.actor.as_user.as_deref().unwrap_or("the system");
    let org = match organizations::get_by_slug(&mut c, &args.org) {
        Ok(o) => o,
        Err(CoreError::NotFound(_)) => return Err(format!("unknown organization {:?}", args.org)),
        Err(e) => return Err(e.to_string()),
    };

    let mut issued = Vec::new();
    let mut errors = 0;
    for email in &args.emails {
        let new = NewInvitation {
            organization_id: org.id,
            email: email.clone(),
            role,
            message: args.message.clone(),
            first_name: args.first_name.clone(),
            last_name: args.last_name.clone(),
            groups: Vec::new(),
        };
        let mut result =
            invitations::create(&mut c, &actor, &settings, &templates, &new).map(|i| (i, false));
        if let (
            true,
            Err(InvitationError::AlreadyPending {
                invitation_id: Some(id),
                ..
            }),
        ) = (args.resend, &result)
        {
            let id = *id;
            result =
                invitations::resend(&mut c, &actor, &settings, &templates, id).map(|i| (i, true));
        }
        match result {
            Ok((inv, resent)) => {
                println!("{}", status_line(&inv, &org, resent));
                if resent && inv.invitation.role != role.as_str() {
                    println!(
                        "  note: the pending invitation keeps its role {}; cancel it on the admin invitations page and invite again to change the role",
                        inv.invitation.role
                    );
                }
                issued.push(inv);
            }
            Err(e) if e.is_client_error() => {
                eprintln!("error: {email}: {}", refusal(&e, &org, role, who));
                errors += 1;
            }
            Err(e) => return Err(format!("{email}: {e}")),
        }
    }

    match mailer {
        Some(mailer) if !issued.is_empty() => {
            let report = deliver(mailer)?;
            println!("{}", describe_report(&report));
            for inv in &issued {
                let mail = outbox::get(&mut c, inv.outbox_id).map_err(|e| e.to_string())?;
                let state = match mail {
                    Some(m) if m.status == "sent" => "sent".to_owned(),
                    Some(m) => {
                        errors += 1;
                        format!(
                        "{} after {} attempt(s): {}",
                        m.status,
                        m.attempts,
                            m.last_error.as_deref().unwrap_or("not tried yet")
                        )
                    }
                    None => {
                        errors += 1;
                        "missing from the outbox".to_owned()
                    }
                };
                println!(
                    "  mail #{} to {}: {state}",
                    inv.outbox_id, inv.invitation.email
                );
            }
        }
        Some(_) => {}
        None if !issued.is_empty() => println!(
            "the app's mail worker delivers queued mail (or pass --send with --mail-url and --mail-from); `frontdesk outbox` shows where it stands"
        ),
        None => {}
    }
    Ok(if errors > 0 {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}
