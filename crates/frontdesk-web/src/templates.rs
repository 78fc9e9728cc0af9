//! Tera templates for the auth pages and mails, embedded at build time. A host
//! overrides any of them by name: a file `auth/login.html` in the host's
//! template folder replaces the embedded `auth/login.html`.

use std::collections::BTreeMap;
use std::path::Path;

use tera::Tera;

macro_rules! embedded {
    ($($name:literal),+ $(,)?) => {
        &[$(($name, include_str!(concat!("../../../templates/", $name)))),+]
    };
}

/// Every template frontdesk ships, by name.
pub const EMBEDDED: &[(&str, &str)] = embedded!(
    "auth/base.html",
    "auth/login.html",
    "auth/sessions.html",
    "auth/password_change.html",
    "auth/password_reset_request.html",
    "auth/password_reset_sent.html",
    "auth/password_reset_form.html",
    "auth/password_reset_invalid.html",
    "auth/password_reset_email.txt",
    "auth/password_reset_email.html",
    "auth/invitation.html",
    "auth/invitation_invalid.html",
    "auth/invitation_declined.html",
    "admin/base.html",
    "admin/macros.html",
    "admin/dashboard.html",
    "admin/users.html",
    "admin/users_delete.html",
    "admin/user.html",
    "admin/sessions.html",
    "admin/login_attempts.html",
    "admin/organizations.html",
    "admin/organization.html",
    "admin/audit.html",
    "admin/api_keys.html",
    "admin/invitations.html",
    "admin/imports.html",
    "admin/import.html",
    "admin/exports.html",
);

/// The embedded templates, with the host's files of the same names in their place.
pub fn load(override_dir: Option<&Path>) -> Result<Tera, String> {
    let mut sources: BTreeMap<String, String> = EMBEDDED
        .iter()
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
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}
