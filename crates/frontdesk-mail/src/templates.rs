//! Email templates: `<mail>/subject.txt`, `<mail>/body.txt` and
//! `<mail>/body.html`, rendered with Tera. The defaults are embedded in the
//! binary; a host overrides any of them by name, from a folder or a string.

use std::path::Path;

use frontdesk_core::outbox::{MailRenderer, RenderedMail};
use tera::{Context, Tera};

use crate::MailError;

/// The embedded defaults, by template name.
const EMBEDDED: &[(&str, &str)] = &[
    (
        "invitation/subject.txt",
        include_str!("../templates/email/invitation/subject.txt"),
    ),
    (
        "invitation/body.txt",
        include_str!("../templates/email/invitation/body.txt"),
    ),
    (
        "invitation/body.html",
        include_str!("../templates/email/invitation/body.html"),
    ),
];

/// The longest subject line a template may produce; longer ones are cut.
const MAX_SUBJECT: usize = 200;

/// The mail templates. Only `.html` templates are HTML-escaped (Tera's rule
/// for the file suffix); subjects are reduced to one line.
#[derive(Debug, Clone)]
pub struct Templates {
    tera: Tera,
}

impl Templates {
    /// The embedded templates.
    pub fn new() -> Result<Self, MailError> {
        let mut tera = Tera::default();
        tera.add_raw_templates(EMBEDDED.iter().copied())
            .map_err(template_error)?;
        Ok(Templates { tera })
    }

    /// The embedded templates, with any `<mail>/<file>` found under `dir`
    /// taking the place of the embedded one of the same name.
    pub fn with_overrides(dir: &Path) -> Result<Self, MailError> {
        let mut templates = Templates::new()?;
        for (name, _) in EMBEDDED {
            let path = dir.join(name);
            match std::fs::read_to_string(&path) {
                Ok(source) => templates.override_template(name, &source)?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(MailError::Template(format!("{}: {e}", path.display()))),
            }
        }
        Ok(templates)
    }

    /// Replaces (or adds) one template, e.g. `"invitation/body.html"`.
    pub fn override_template(&mut self, name: &str, source: &str) -> Result<(), MailError> {
        self.tera
            .add_raw_template(name, source)
            .map_err(template_error)
    }

    /// Names of the templates a host may override.
    pub fn names() -> impl Iterator<Item = &'static str> {
        EMBEDDED.iter().map(|(n, _)| *n)
    }

    fn render_one(&self, name: &str, context: &Context) -> Result<String, MailError> {
        self.tera.render(name, context).map_err(template_error)
    }

    /// Renders `<mail>/subject.txt`, `<mail>/body.txt` and, when present,
    /// `<mail>/body.html`.
    pub(crate) fn render_mail(
        &self,
        mail: &str,
        context: &serde_json::Value,
    ) -> Result<RenderedMail, MailError> {
        let context = Context::from_value(context.clone()).map_err(template_error)?;
        let subject = one_line(&self.render_one(&format!("{mail}/subject.txt"), &context)?);
        let text = self.render_one(&format!("{mail}/body.txt"), &context)?;
        let html_name = format!("{mail}/body.html");
        let html = if self.tera.get_template_names().any(|n| n == html_name) {
            Some(self.render_one(&html_name, &context)?)
        } else {
            None
        };
        Ok(RenderedMail {
            subject,
            text,
            html,
        })
    }
}

impl MailRenderer for Templates {
    fn render(&self, mail: &str, context: &serde_json::Value) -> Result<RenderedMail, String> {
        self.render_mail(mail, context).map_err(|e| e.to_string())
    }
}

/// A header value on one line: every control character (CR and LF above all,
/// which would start a new header) becomes a space, runs of spaces collapse,
/// and the result is cut to a sane length.
pub(crate) fn one_line(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        let c = if c.is_control() || c.is_whitespace() {
            ' '
        } else {
            c
        };
        if c == ' ' && (out.is_empty() || out.ends_with(' ')) {
            continue;
        }
        out.push(c);
    }
    let trimmed = out.trim_end();
    trimmed.chars().take(MAX_SUBJECT).collect()
}

fn template_error(e: tera::Error) -> MailError {
    // Tera keeps the useful part (which variable, which line) in the source chain.
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    MailError::Template(msg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx(message: &str, inviter: &str) -> serde_json::Value {
        json!({
            "email": "ann@example.com",
            "organization": "Acme <b>",
            "inviter": inviter,
            "role": "member",
            "message": message,
            "link": "https://app.example.com/auth/invitations/abc",
            "expires_at": "2026-12-02 10:00 UTC",
        })
    }

    #[test]
    fn invitation_renders_all_three_parts_and_escapes_html_only() -> Result<(), MailError> {
        let t = Templates::new()?;
        let m = t.render_mail("invitation", &ctx("<script>alert(1)</script>", "Bob"))?;
        assert_eq!(m.subject, "Bob invited you to join Acme <b>");
        assert!(
            m.text.contains("<script>alert(1)</script>"),
            "text is plain text"
        );
        assert!(m
            .text
            .contains("https://app.example.com/auth/invitations/abc"));
        let html = m.html.unwrap_or_default();
        assert!(
            !html.contains("<script>"),
            "message must be escaped in HTML"
        );
        assert!(html.contains("&lt;script&gt;"));
        assert!(html.contains("Acme &lt;b&gt;"));
        Ok(())
    }

    #[test]
    fn subjects_stay_on_one_line() -> Result<(), MailError> {
        let t = Templates::new()?;
        let m = t.render_mail(
            "invitation",
            &ctx("hi", "Eve\r\nBcc: victim@example.com\r\nX-Evil: 1"),
        )?;
        assert!(!m.subject.contains('\r') && !m.subject.contains('\n'));
        assert_eq!(
            m.subject,
            "Eve Bcc: victim@example.com X-Evil: 1 invited you to join Acme <b>"
        );
        assert_eq!(one_line(&"x".repeat(500)).len(), MAX_SUBJECT);
        Ok(())
    }

    #[test]
    fn overrides_win_by_name_and_bad_templates_are_refused() -> Result<(), MailError> {
        let dir = tempfile::tempdir().map_err(|e| MailError::Template(e.to_string()))?;
        std::fs::create_dir_all(dir.path().join("invitation"))
            .map_err(|e| MailError::Template(e.to_string()))?;
        std::fs::write(
            dir.path().join("invitation/subject.txt"),
            "Join {{ organization }} now",
        )
        .map_err(|e| MailError::Template(e.to_string()))?;
        let t = Templates::with_overrides(dir.path())?;
        let m = t.render_mail("invitation", &ctx("", "Bob"))?;
        assert_eq!(m.subject, "Join Acme <b> now");
        assert!(
            m.text.contains("Accept or decline"),
            "other templates stay embedded"
        );

        let mut t = Templates::new()?;
        assert!(t
            .override_template("invitation/body.txt", "{% if %}")
            .is_err());
        assert!(t.render_mail("no-such-mail", &ctx("", "Bob")).is_err());
        Ok(())
    }
}
