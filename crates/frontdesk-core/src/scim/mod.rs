//! The SCIM 2.0 service provider (RFC 7643/7644) behind `/scim/v2`: users
//! and groups of one organization, as a directory (Entra ID, Okta…) sees
//! them. Resources travel as JSON; a PATCH is applied to the resource's JSON
//! form and the result saved like a PUT, so every path form a directory
//! sends goes through one parser ([`filter`]) and one save.

pub mod filter;
pub mod groups;
pub mod patch;
pub mod schema;
pub mod users;

use serde_json::{json, Map, Value};

use crate::error::CoreError;

pub(crate) const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub(crate) const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub(crate) const LIST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
pub(crate) const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
pub(crate) const PATCH_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// Most resources one list answer carries.
pub const MAX_COUNT: usize = 200;

/// An error in SCIM terms (RFC 7644 §3.12): an HTTP status and, for 400s
/// and 409s, a `scimType`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScimError {
    /// The HTTP status to answer.
    pub status: u16,
    /// The `scimType` (`invalidValue`, `uniqueness`, ...), if any.
    pub scim_type: Option<&'static str>,
    /// The message for the directory; never a secret.
    pub detail: String,
}

impl ScimError {
    /// An error with this status, type and message.
    pub fn new(status: u16, scim_type: Option<&'static str>, detail: impl Into<String>) -> Self {
        ScimError {
            status,
            scim_type,
            detail: detail.into(),
        }
    }

    pub(crate) fn invalid_value(detail: impl Into<String>) -> Self {
        Self::new(400, Some("invalidValue"), detail)
    }

    /// A 400 `invalidSyntax`: the request body cannot be read.
    pub fn invalid_syntax(detail: impl Into<String>) -> Self {
        Self::new(400, Some("invalidSyntax"), detail)
    }

    pub(crate) fn invalid_filter(detail: impl Into<String>) -> Self {
        Self::new(400, Some("invalidFilter"), detail)
    }

    pub(crate) fn invalid_path(detail: impl Into<String>) -> Self {
        Self::new(400, Some("invalidPath"), detail)
    }

    pub(crate) fn no_target(detail: impl Into<String>) -> Self {
        Self::new(400, Some("noTarget"), detail)
    }

    /// A 400 `mutability`: the attribute may not be changed.
    pub fn mutability(detail: impl Into<String>) -> Self {
        Self::new(400, Some("mutability"), detail)
    }

    pub(crate) fn uniqueness(detail: impl Into<String>) -> Self {
        Self::new(409, Some("uniqueness"), detail)
    }

    /// A 404 naming what was not found (`user`, `group`).
    pub fn not_found(what: &str) -> Self {
        Self::new(404, None, format!("{what} not found"))
    }

    /// The body to send.
    pub fn body(&self) -> Value {
        let mut v = json!({
            "schemas": [ERROR_SCHEMA],
            "status": self.status.to_string(),
            "detail": self.detail,
        });
        if let Some(t) = self.scim_type {
            v["scimType"] = json!(t);
        }
        v
    }
}

impl std::fmt::Display for ScimError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status, self.detail)
    }
}

impl From<CoreError> for ScimError {
    fn from(e: CoreError) -> Self {
        match &e {
            CoreError::NotFound(what) => ScimError::not_found(what),
            CoreError::Forbidden => ScimError::new(
                403,
                None,
                "the directory may not change this user (a staff member, an owner, or a member of another organization)",
            ),
            CoreError::DuplicateEmail(_)
            | CoreError::DuplicateGroup(_)
            | CoreError::Conflict(_)
            | CoreError::AlreadyMember => ScimError::uniqueness(e.to_string()),
            CoreError::LastOwner | CoreError::SeatLimit { .. } => {
                ScimError::new(409, None, e.to_string())
            }
            CoreError::Invalid { .. }
            | CoreError::InvalidEmail(_)
            | CoreError::TooLong { .. }
            | CoreError::InvalidProfileField { .. }
            | CoreError::DomainNotAllowed
            | CoreError::Vetoed(_) => ScimError::invalid_value(e.to_string()),
            _ if e.is_outage() => ScimError::new(503, None, "the database is unavailable"),
            _ => ScimError::new(500, None, "internal error"),
        }
    }
}

impl From<diesel::result::Error> for ScimError {
    fn from(e: diesel::result::Error) -> Self {
        CoreError::from(e).into()
    }
}

/// The result of the SCIM services.
pub type ScimResult<T> = Result<T, ScimError>;

/// `startIndex`, `count`, `filter`, `attributes`, `excludedAttributes` of a
/// list request (query string or `.search` body).
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    /// The parsed `filter`, if any.
    pub filter: Option<filter::Filter>,
    /// `startIndex`: the first result to return, 1-based (default 1).
    pub start_index: usize,
    /// `count`: the most results to return (default 100, at most [`MAX_COUNT`]).
    pub count: usize,
    /// `attributes`: return only these (plus `id` and `schemas`); empty for all.
    pub attributes: Vec<String>,
    /// `excludedAttributes`: leave these out.
    pub excluded: Vec<String>,
}

impl ListQuery {
    /// Reads the parameters (names case-insensitive); a bad filter is `invalidFilter`.
    pub fn parse(params: &[(String, String)]) -> ScimResult<Self> {
        let get = |k: &str| {
            params
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(k))
                .map(|(_, v)| v.as_str())
        };
        let filter = match get("filter").map(str::trim).filter(|f| !f.is_empty()) {
            Some(f) => Some(filter::parse(f).map_err(|e| ScimError::invalid_filter(e.0))?),
            None => None,
        };
        let num = |k: &str, default: usize| -> ScimResult<usize> {
            match get(k) {
                None | Some("") => Ok(default),
                Some(v) => v
                    .trim()
                    .parse::<i64>()
                    .map(|n| n.max(0) as usize)
                    .map_err(|_| ScimError::invalid_value(format!("{k} must be an integer"))),
            }
        };
        Ok(ListQuery {
            filter,
            start_index: num("startIndex", 1)?.max(1),
            count: num("count", 100)?.min(MAX_COUNT),
            attributes: split_list(get("attributes")),
            excluded: split_list(get("excludedAttributes")),
        })
    }

    /// The same from a `POST …/.search` body.
    pub fn from_search(body: &Value) -> ScimResult<Self> {
        let mut params = Vec::new();
        for key in [
            "filter",
            "startIndex",
            "count",
            "attributes",
            "excludedAttributes",
        ] {
            match filter::get_ci(body, key) {
                Some(Value::String(s)) => params.push((key.to_owned(), s.clone())),
                Some(Value::Number(n)) => params.push((key.to_owned(), n.to_string())),
                Some(Value::Array(a)) => params.push((
                    key.to_owned(),
                    a.iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(","),
                )),
                _ => {}
            }
        }
        Self::parse(&params)
    }
}

fn split_list(v: Option<&str>) -> Vec<String> {
    v.map(|v| {
        v.split(',')
            .map(|a| a.trim())
            .filter(|a| !a.is_empty())
            // `urn:…:User:name.givenName` names `name.givenName`.
            .map(|a| match a.rfind(':') {
                Some(p) => a[p + 1..].to_owned(),
                None => a.to_owned(),
            })
            .collect()
    })
    .unwrap_or_default()
}

/// Keeps the attributes asked for (`attributes`) or drops those refused
/// (`excludedAttributes`); `id` and `schemas` always stay (RFC 7643 §7).
pub fn project(resource: Value, attributes: &[String], excluded: &[String]) -> Value {
    let Value::Object(map) = resource else {
        return resource;
    };
    let always = |k: &str| k == "id" || k == "schemas";
    let mut out = Map::new();
    for (k, v) in map {
        if always(&k) {
            out.insert(k, v);
            continue;
        }
        let named = |list: &[String]| -> (bool, Vec<String>) {
            let mut whole = false;
            let mut subs = Vec::new();
            for a in list {
                let (top, sub) = match a.split_once('.') {
                    Some((t, s)) => (t, Some(s)),
                    None => (a.as_str(), None),
                };
                if top.eq_ignore_ascii_case(&k) {
                    match sub {
                        Some(s) => subs.push(s.to_owned()),
                        None => whole = true,
                    }
                }
            }
            (whole, subs)
        };
        if !attributes.is_empty() {
            let (whole, subs) = named(attributes);
            if whole {
                out.insert(k, v);
            } else if !subs.is_empty() {
                out.insert(k, keep_subs(v, &subs, true));
            }
        } else {
            let (whole, subs) = named(excluded);
            if whole {
                continue;
            }
            if subs.is_empty() {
                out.insert(k, v);
            } else {
                out.insert(k, keep_subs(v, &subs, false));
            }
        }
    }
    Value::Object(out)
}

fn keep_subs(v: Value, subs: &[String], keep: bool) -> Value {
    let filter_obj = |o: Map<String, Value>| -> Value {
        Value::Object(
            o.into_iter()
                .filter(|(k, _)| subs.iter().any(|s| s.eq_ignore_ascii_case(k)) == keep)
                .collect(),
        )
    };
    match v {
        Value::Object(o) => filter_obj(o),
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|i| match i {
                    Value::Object(o) => filter_obj(o),
                    other => other,
                })
                .collect(),
        ),
        other => other,
    }
}

/// A list answer: the page of `resources` (already filtered) that the query asks for.
pub fn list_response(all: Vec<Value>, q: &ListQuery) -> Value {
    let total = all.len();
    let page: Vec<Value> = all
        .into_iter()
        .skip(q.start_index - 1)
        .take(q.count)
        .map(|r| project(r, &q.attributes, &q.excluded))
        .collect();
    json!({
        "schemas": [LIST_SCHEMA],
        "totalResults": total,
        "startIndex": q.start_index,
        "itemsPerPage": page.len(),
        "Resources": page,
    })
}

/// A stored time as SCIM writes it (RFC 3339, UTC).
pub fn time(t: chrono::NaiveDateTime) -> String {
    t.and_utc()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn projection_keeps_id_and_schemas_and_the_named_parts() {
        let r = json!({"schemas": ["s"], "id": "1", "userName": "a", "name": {"givenName": "A", "familyName": "B"}, "emails": [{"value": "x", "type": "work"}]});
        let p = project(
            r.clone(),
            &["name.givenName".into(), "emails.value".into()],
            &[],
        );
        assert_eq!(
            p,
            json!({"schemas": ["s"], "id": "1", "name": {"givenName": "A"}, "emails": [{"value": "x"}]})
        );
        let p = project(
            r,
            &[],
            &["userName".into(), "name.familyName".into(), "id".into()],
        );
        assert_eq!(
            p,
            json!({"schemas": ["s"], "id": "1", "name": {"givenName": "A"}, "emails": [{"value": "x", "type": "work"}]})
        );
    }

    #[test]
    fn list_parameters() {
        let q = ListQuery::parse(&[
            ("startIndex".into(), "0".into()),
            ("count".into(), "5000".into()),
        ])
        .expect("q");
        assert_eq!((q.start_index, q.count), (1, MAX_COUNT));
        assert_eq!(
            ListQuery::parse(&[("filter".into(), "userName zz 1".into())]).map(|_| ()),
            Err(ScimError::invalid_filter("unknown operator \"zz\""))
        );
        let page = list_response(
            (1..=5).map(|i| json!({"id": i.to_string()})).collect(),
            &ListQuery {
                start_index: 2,
                count: 2,
                ..Default::default()
            },
        );
        assert_eq!(page["totalResults"], 5);
        assert_eq!(page["Resources"], json!([{"id": "2"}, {"id": "3"}]));
    }
}
