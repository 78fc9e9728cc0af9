//! Input checks shared by every service: emails, names, slugs, lengths.

use crate::error::{CoreError, CoreResult};

pub(crate) const MAX_EMAIL: usize = 254;
pub(crate) const MAX_NAME: usize = 100;
pub(crate) const MAX_TEXT: usize = 2000;

/// Trims and lower-cases an email and checks its shape: one `@`, a non-empty
/// local part, a dotted domain of letters, digits and hyphens, no spaces.
pub fn normalize_email(raw: &str) -> CoreResult<String> {
    let email = raw.trim().to_lowercase();
    let bad = || CoreError::InvalidEmail(raw.trim().chars().take(80).collect());
    if email.chars().count() > MAX_EMAIL {
        return Err(CoreError::TooLong {
            field: "email",
            max: MAX_EMAIL,
        });
    }
    let (local, domain) = email.split_once('@').ok_or_else(bad)?;
    if local.is_empty() || local.len() > 64 || domain.contains('@') {
        return Err(bad());
    }
    if local.chars().any(|c| {
        c.is_whitespace()
            || c.is_control()
            || matches!(
                c,
                '<' | '>' | '(' | ')' | ',' | ';' | ':' | '\\' | '"' | '[' | ']'
            )
    }) || local.starts_with('.')
        || local.ends_with('.')
        || local.contains("..")
    {
        return Err(bad());
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2
        || labels.iter().any(|l| {
            l.is_empty()
                || l.len() > 63
                || l.starts_with('-')
                || l.ends_with('-')
                || !l.chars().all(|c| c.is_alphanumeric() || c == '-')
        })
    {
        return Err(bad());
    }
    Ok(email)
}

pub(crate) fn domain_of(email: &str) -> &str {
    email.rsplit_once('@').map(|(_, d)| d).unwrap_or("")
}

/// Trims a free-text field and enforces its length and the absence of control characters.
pub fn text(field: &'static str, value: &str, max: usize) -> CoreResult<String> {
    let v = value.trim();
    if v.chars().count() > max {
        return Err(CoreError::TooLong { field, max });
    }
    if v.contains(['\n', '\r']) {
        return Err(CoreError::Invalid {
            field,
            reason: "contains a line break".into(),
        });
    }
    if v.chars().any(|c| c.is_control()) {
        return Err(CoreError::Invalid {
            field,
            reason: "contains control characters".into(),
        });
    }
    Ok(v.to_owned())
}

/// Organization slugs: 1..=64 of a-z, 0-9 and `-`, not starting or ending with `-`.
pub fn slug(value: &str) -> CoreResult<String> {
    let s = value.trim().to_ascii_lowercase();
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !s.starts_with('-')
        && !s.ends_with('-');
    if ok {
        Ok(s)
    } else {
        Err(CoreError::Invalid {
            field: "slug",
            reason: "use 1 to 64 lower-case letters, digits and hyphens".into(),
        })
    }
}

/// A comma- or whitespace-separated list of email domains, normalized.
pub fn domains(value: &str) -> CoreResult<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for d in value
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|d| !d.is_empty())
    {
        let d = d.trim_start_matches('@').to_lowercase();
        normalize_email(&format!("x@{d}")).map_err(|_| CoreError::Invalid {
            field: "allowed_email_domains",
            reason: format!("{d:?} is not a domain"),
        })?;
        if !out.contains(&d) {
            out.push(d);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_trimmed_lowercased_and_checked() {
        assert_eq!(
            normalize_email("  Ann.Lee@Example.COM ").ok().as_deref(),
            Some("ann.lee@example.com")
        );
        for bad in [
            "",
            "a",
            "a@",
            "@b.c",
            "a@b",
            "a b@c.d",
            "a@b..c",
            "a@-b.c",
            "a@@b.c",
            "a@b\n.c",
            "a@b.c\r\nbcc: x@y.z",
            "<a>@b.c",
        ] {
            assert!(normalize_email(bad).is_err(), "{bad:?} accepted");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert!(matches!(
            normalize_email(&long),
            Err(CoreError::TooLong { .. })
        ));
    }

    #[test]
    fn slugs_and_domains() {
        assert_eq!(slug(" Acme-1 ").ok().as_deref(), Some("acme-1"));
        assert!(slug("-x").is_err() && slug("a b").is_err() && slug("").is_err());
        assert_eq!(
            domains("@Acme.com, acme.com beta.io").ok(),
            Some(vec!["acme.com".into(), "beta.io".into()])
        );
        assert!(domains("not a domain!").is_err());
    }
}
