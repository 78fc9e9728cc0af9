//! How the list pages show what the database stores in machine form: a
//! User-Agent as "Chrome 131 on macOS", a login attempt's reason code in plain
//! words, an audit reference (`user:7`) as a name with a link, and an audit
//! event's JSON details as a key/value list.

use frontdesk_core::authz::{Action, Actor};
use frontdesk_core::names::{parse_ref, Names};
use frontdesk_core::{users, CoreError, CoreResult, DbConnection};
use serde::Serialize;
use serde_json::Value;

/// The email a `user_id` link's filter shows in the email box, so that the
/// form, sent again, asks for the same person; nothing for a user the actor
/// may not see (an id must not reveal an address).
pub fn email_for_filter(
    conn: &mut DbConnection,
    actor: &Actor,
    user_id: Option<i64>,
) -> CoreResult<Option<String>> {
    let Some(id) = user_id else {
        return Ok(None);
    };
    match users::get_for(conn, actor, id, Action::View) {
        Ok(u) => Ok(Some(u.email)),
        Err(CoreError::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The device a User-Agent names, e.g. "Chrome 131 on macOS"; the raw string
/// (cut short) when the parser does not recognise it, "unknown" when empty.
pub fn device(user_agent: Option<&str>) -> String {
    let raw = user_agent.map(str::trim).unwrap_or("");
    if raw.is_empty() {
        return "unknown".to_owned();
    }
    let known = |s: &str| !s.is_empty() && s != woothee::woothee::VALUE_UNKNOWN;
    if let Some(r) = woothee::parser::Parser::new().parse(raw) {
        let major = r.version.split('.').next().unwrap_or("");
        // Browsers carry a numeric version; tools and libraries (curl's
        // "HTTP Library") read better as their own string.
        let numeric = !major.is_empty() && major.bytes().all(|b| b.is_ascii_digit());
        if known(r.name) && (numeric || !known(major)) && r.category != "misc" {
            let mut out = r.name.to_owned();
            if numeric {
                out.push(' ');
                out.push_str(major);
            }
            if known(r.os) {
                out.push_str(" on ");
                out.push_str(os_name(r.os));
            }
            return out;
        }
    }
    let short: String = raw.chars().take(60).collect();
    if short.len() < raw.len() {
        format!("{short}…")
    } else {
        short
    }
}

/// The parser's operating system names, as people call them today.
fn os_name(os: &str) -> &str {
    match os {
        "Mac OSX" => "macOS",
        "iPhone" | "iPad" | "iPod" => "iOS",
        other => other,
    }
}

/// A login attempt's reason in plain words. The API keeps the codes; every
/// page that shows a reason goes through this one function.
pub fn reason(code: &str) -> String {
    match code {
        "success" => "Signed in",
        "unknown_email" => "Unknown email",
        "bad_password" => "Wrong password",
        "suspended" => "Account suspended",
        "local_login_disabled" => "Password sign-in disabled",
        "locked_out" => "Locked out",
        "email_unverified" => "Email not verified",
        "lockout_cleared" => "Lockout cleared by an admin",
        "mfa_required" => "Password right, second step asked",
        "mfa_failed" => "Wrong second factor",
        "mfa_recovery_code_used" => "Signed in with a recovery code",
        "passkey_failed" => "Passkey refused",
        "sso_link_required" => "Social account not linked (an account has its email)",
        other => return sentence_case(other),
    }
    .to_owned()
}

/// A login attempt's method as the pages show it.
pub fn method(code: &str) -> String {
    match code {
        "password" => "Password",
        "totp" => "Authenticator app",
        "recovery_code" => "Recovery code",
        "passkey" => "Passkey",
        other => return sentence_case(other),
    }
    .to_owned()
}

/// `sessions_revoked` → "Sessions revoked".
fn sentence_case(code: &str) -> String {
    let words = code.replace(['_', '.'], " ");
    let mut chars = words.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// An audit actor or target as a page shows it: a label, and the admin page
/// it links to (`{prefix}/{page}/{id}`) when it has one.
#[derive(Debug, Serialize)]
pub struct Named {
    pub label: String,
    pub page: Option<&'static str>,
    pub id: Option<i64>,
}

/// Names `r` (`user:7`, `organization:2`, `api_key:3`, `system`, …) from the
/// names loaded for the page; a record since deleted keeps its kind and id.
pub fn named(r: &str, names: &Names) -> Named {
    let plain = |label: String| Named {
        label,
        page: None,
        id: None,
    };
    if r == "system" {
        return plain("System".to_owned());
    }
    if let Some(ip) = r.strip_prefix("ip:") {
        return plain(format!("IP address {ip}"));
    }
    let Some((kind, id)) = parse_ref(r) else {
        return plain(r.to_owned());
    };
    match kind {
        "user" => match names.users.get(&id) {
            Some(u) => Named {
                label: u.name.clone(),
                page: Some("users"),
                id: Some(id),
            },
            None => plain(format!("Deleted user #{id}")),
        },
        "organization" => match names.organizations.get(&id) {
            Some(n) => Named {
                label: n.clone(),
                page: Some("organizations"),
                id: Some(id),
            },
            None => plain(format!("Deleted organization #{id}")),
        },
        "api_key" => plain(match names.api_keys.get(&id) {
            Some(n) => format!("API key “{n}”"),
            None => format!("API key #{id}"),
        }),
        "invitation" => plain(match names.invitations.get(&id) {
            Some(e) => format!("Invitation for {e}"),
            None => format!("Invitation #{id}"),
        }),
        "tag" => plain(match names.tags.get(&id) {
            Some(n) => format!("Tag “{n}”"),
            None => format!("Tag #{id}"),
        }),
        _ => plain(r.to_owned()),
    }
}

/// References inside an event's details worth naming too (a tag's id).
pub fn detail_refs(details: &str) -> Vec<String> {
    let Ok(Value::Object(map)) = serde_json::from_str::<Value>(details) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if let Some(id) = map.get("tag").and_then(Value::as_i64) {
        out.push(format!("tag:{id}"));
    }
    if let Some(id) = map.get("user_id").and_then(Value::as_i64) {
        out.push(format!("user:{id}"));
    }
    if let Some((id, _)) = map.get("organization").and_then(org_and_role) {
        out.push(format!("organization:{id}"));
    }
    out
}

/// One line of an event's details.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Detail {
    pub key: String,
    pub value: String,
}

/// An event's JSON details as key/value pairs in plain words; anything that
/// is not a JSON object is shown as it is, under "Details".
pub fn details(raw: &str, names: &Names) -> Vec<Detail> {
    let map = match serde_json::from_str::<Value>(raw) {
        Ok(Value::Object(map)) => map,
        Ok(Value::Null) => return Vec::new(),
        _ if raw.trim().is_empty() => return Vec::new(),
        _ => {
            return vec![Detail {
                key: "Details".to_owned(),
                value: raw.to_owned(),
            }]
        }
    };
    map.iter()
        .map(|(k, v)| {
            let value = match (k.as_str(), v.as_i64()) {
                ("tag", Some(id)) => names
                    .tags
                    .get(&id)
                    .cloned()
                    .unwrap_or_else(|| format!("#{id}")),
                ("user_id", Some(id)) => names
                    .users
                    .get(&id)
                    .map(|u| u.name.clone())
                    .unwrap_or_else(|| format!("#{id}")),
                ("organization", _) => match org_and_role(v) {
                    Some((id, role)) => {
                        let org = names
                            .organizations
                            .get(&id)
                            .cloned()
                            .unwrap_or_else(|| format!("#{id}"));
                        format!("{org} ({role})")
                    }
                    None => value_text(v),
                },
                _ => value_text(v),
            };
            Detail {
                key: sentence_case(k),
                value,
            }
        })
        .collect()
}

/// An organization recorded with a role, as `[id, "role"]`.
fn org_and_role(v: &Value) -> Option<(i64, &str)> {
    match v.as_array()?.as_slice() {
        [id, role] => Some((id.as_i64()?, role.as_str()?)),
        _ => None,
    }
}

fn value_text(v: &Value) -> String {
    match v {
        Value::Null => "none".to_owned(),
        Value::Bool(true) => "yes".to_owned(),
        Value::Bool(false) => "no".to_owned(),
        Value::String(s) if s.is_empty() => "(empty)".to_owned(),
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Array(items) if items.is_empty() => "none".to_owned(),
        Value::Array(items) => items.iter().map(value_text).collect::<Vec<_>>().join(", "),
        Value::Object(_) => v.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_are_named_by_browser_version_and_system() {
        let mac = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 \
                   (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
        assert_eq!(device(Some(mac)), "Chrome 131 on macOS");
        let win =
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0";
        assert_eq!(device(Some(win)), "Firefox 133 on Windows 10");
        assert_eq!(device(None), "unknown");
        assert_eq!(device(Some("  ")), "unknown");
        assert_eq!(device(Some("TestBrowser/1.0")), "TestBrowser/1.0");
        assert_eq!(device(Some("curl/8.5.0")), "curl/8.5.0");
        let iphone = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 \
                      (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";
        assert_eq!(device(Some(iphone)), "Safari 17 on iOS");
        let long = "x".repeat(200);
        assert_eq!(device(Some(&long)).chars().count(), 61);
    }

    #[test]
    fn reasons_read_as_words() {
        assert_eq!(reason("bad_password"), "Wrong password");
        assert_eq!(reason("unknown_email"), "Unknown email");
        assert_eq!(reason("suspended"), "Account suspended");
        assert_eq!(reason("locked_out"), "Locked out");
        assert_eq!(reason("something_new"), "Something new");
        assert_eq!(reason(""), "");
    }

    #[test]
    fn details_are_listed_as_words() {
        let names = Names::default();
        let d = details(
            r#"{"sessions_revoked":2,"reason":"spam","ok":true,"to":null,"domains":["a","b"]}"#,
            &names,
        );
        let pairs: Vec<(&str, &str)> = d
            .iter()
            .map(|d| (d.key.as_str(), d.value.as_str()))
            .collect();
        assert!(pairs.contains(&("Sessions revoked", "2")));
        assert!(pairs.contains(&("Reason", "spam")));
        assert!(pairs.contains(&("Ok", "yes")));
        assert!(pairs.contains(&("To", "none")));
        assert!(pairs.contains(&("Domains", "a, b")));
        assert!(details("{}", &names).is_empty());
        let mut names = Names::default();
        names.organizations.insert(4, "Acme".into());
        let d = details(r#"{"organization":[4,"admin"]}"#, &names);
        assert_eq!(d[0].value, "Acme (admin)");
        assert_eq!(
            detail_refs(r#"{"organization":[4,"admin"]}"#),
            ["organization:4"]
        );
        let d = details(r#"{"organization":"acme"}"#, &names);
        assert_eq!(d[0].value, "acme");
        assert_eq!(details("not json", &names)[0].value, "not json");
    }

    #[test]
    fn references_without_a_record_keep_kind_and_id() {
        let names = Names::default();
        assert_eq!(named("system", &names).label, "System");
        let u = named("user:9", &names);
        assert_eq!(u.label, "Deleted user #9");
        assert!(u.page.is_none());
        assert_eq!(named("api_key:3", &names).label, "API key #3");
        assert_eq!(named("weird", &names).label, "weird");
    }
}
