//! Tera templates for the auth pages and mails, embedded at build time. A host
//! overrides any of them by name: a file `auth/login.html` in the host's
//! template folder replaces the embedded `auth/login.html`.

use std::collections::BTreeMap;
use std::path::Path;

use tera::Tera;

macro_rules! embedded {
    ($($name:literal),+ $(,)?) => {
        &[$(($name, include_str!(concat!("../templates/", $name)))),+]
    };
}

/// Every template frontdesk ships, by name.
pub const EMBEDDED: &[(&str, &str)] = embedded!(
    "auth/base.html",
    "auth/macros.html",
    "auth/login.html",
    "auth/sessions.html",
    "auth/password_change.html",
    "auth/mfa_challenge.html",
    "auth/mfa_required.html",
    "auth/mfa_setup.html",
    "auth/mfa_enrol.html",
    "auth/mfa_codes.html",
    "auth/linked_accounts.html",
    "auth/mfa_notice_email.txt",
    "auth/password_reset_request.html",
    "auth/password_reset_sent.html",
    "auth/password_reset_form.html",
    "auth/password_reset_invalid.html",
    "auth/password_reset_email.txt",
    "auth/password_reset_email.html",
    "auth/invitation.html",
    "auth/invitation_invalid.html",
    "auth/invitation_declined.html",
    "auth/signup.html",
    "auth/signup_sent.html",
    "auth/signup_existing_email.txt",
    "auth/signup_existing_email.html",
    "auth/verify_email.html",
    "auth/verify_email_invalid.html",
    "auth/verify_email_email.txt",
    "auth/verify_email_email.html",
    "auth/verify_email_request.html",
    "auth/verify_email_sent.html",
    "auth/verify_banner.html",
    "auth/account_created_email.txt",
    "auth/account_created_email.html",
    "admin/base.html",
    "admin/macros.html",
    "admin/dashboard.html",
    "admin/users.html",
    "admin/users_delete.html",
    "admin/user.html",
    "admin/user_new.html",
    "admin/user_activity.html",
    "admin/sessions.html",
    "admin/login_attempts.html",
    "admin/organizations.html",
    "admin/organization.html",
    "admin/directory_sync.html",
    "admin/audit.html",
    "admin/api_keys.html",
    "admin/invitations.html",
    "admin/imports.html",
    "admin/import.html",
    "admin/exports.html",
);

/// The embedded templates plus the templates extensions ship, with the
/// host's files of the same names in their place (the host's files win).
pub(crate) fn load_with(
    override_dir: Option<&Path>,
    extra: &[(&str, &str)],
) -> Result<Tera, String> {
    let mut sources: BTreeMap<String, String> = EMBEDDED
        .iter()
        .chain(extra.iter())
        .map(|(n, s)| ((*n).to_owned(), (*s).to_owned()))
        .collect();
    if let Some(dir) = override_dir {
        if !dir.is_dir() {
            return Err(format!("template folder {} does not exist", dir.display()));
        }
        collect(dir, dir, &mut sources)?;
    }
    let mut tera = Tera::default();
    tera.autoescape_on(vec![".html"]);
    tera.add_raw_templates(sources.iter().map(|(n, s)| (n.as_str(), s.as_str())))
        .map_err(|e| format!("templates: {}", error_chain(&e)))?;
    Ok(tera)
}

fn collect(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) -> Result<(), String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in entries {
        let path = entry.map_err(|e| format!("{}: {e}", dir.display()))?.path();
        if path.is_dir() {
            collect(root, &path, out)?;
            continue;
        }
        let is_template = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| matches!(e, "html" | "txt"));
        if !is_template {
            continue;
        }
        let Ok(rel) = path.strip_prefix(root) else {
            continue;
        };
        let name = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        out.insert(name, text);
    }
    Ok(())
}

/// Tera hides the useful part of an error in its source chain.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::EMBEDDED;
    use frontdesk_core::import_jobs::JobStatus;
    use frontdesk_core::invitations::InvitationStatus;
    use frontdesk_core::users::UserStatus;

    /// Classes that only mark elements for the admin script or a form; they
    /// need no style of their own.
    const HOOKS: &[&str] = &["fda-select-all", "fda-bulk"];

    fn styled(css: &str, class: &str) -> bool {
        css.match_indices(&format!(".{class}")).any(|(i, m)| {
            css[i + m.len()..]
                .chars()
                .next()
                .is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        })
    }

    /// Every `fda-` class an admin template uses has a rule in the admin
    /// stylesheet, and a class built from a value (`fda-status-{{ u.status }}`)
    /// has one for every value that value can take.
    #[test]
    fn admin_template_classes_are_styled() {
        let css = crate::admin::STYLESHEET;
        let user: Vec<&str> = UserStatus::ALL.iter().map(|s| s.as_str()).collect();
        let invitation: Vec<&str> = InvitationStatus::ALL.iter().map(|s| s.as_str()).collect();
        let dynamic: Vec<(&str, Vec<&str>)> = vec![
            ("fda-status-", [user, invitation].concat()),
            (
                "fda-import-",
                JobStatus::ALL.iter().map(|s| s.as_str()).collect(),
            ),
            // The outbox's states (its CHECK constraint).
            ("fda-delivery-", vec!["queued", "sending", "sent", "failed"]),
            ("fda-flash-", vec!["ok", "error"]),
            (
                "fda-role-",
                frontdesk_core::OrgRole::ALL
                    .iter()
                    .map(|r| r.as_str())
                    .collect(),
            ),
        ];
        let mut missing = Vec::new();
        for (name, text) in EMBEDDED.iter().filter(|(n, _)| n.starts_with("admin/")) {
            for (at, _) in text.match_indices("fda-") {
                let rest = &text[at..];
                let len = rest
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
                    .unwrap_or(rest.len());
                let class = &rest[..len];
                if rest[len..].starts_with("{{") {
                    match dynamic.iter().find(|(prefix, _)| *prefix == class) {
                        Some((_, values)) => missing.extend(
                            values
                                .iter()
                                .map(|v| format!("{class}{v}"))
                                .filter(|c| !styled(css, c))
                                .map(|c| format!("{name}: {c}")),
                        ),
                        None => missing.push(format!(
                            "{name}: {class}{{{{…}}}} has no list of values here"
                        )),
                    }
                } else if !HOOKS.contains(&class) && !styled(css, class) {
                    missing.push(format!("{name}: {class}"));
                }
            }
        }
        missing.sort();
        missing.dedup();
        assert!(
            missing.is_empty(),
            "classes without a rule in admin.css: {missing:#?}"
        );
    }
}
