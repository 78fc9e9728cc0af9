//! The users-query parameters: one reader for the admin users list (and the
//! export page, which takes the list's filters), the API's users list and
//! the API's export. The two URL vocabularies differ only in a few names
//! (the pages keep their short, bookmarkable `q`, `org` (an id) and
//! `last_from`/`last_to`; the API says `search`, `organization` (a slug) and
//! `last_login_from`/`last_login_to`) and in how a plain date ends a range
//! (a page's "to" day is included, the API's end is exclusive); every value
//! is checked the same way, and every refused parameter is named.

use chrono::{DateTime, NaiveDate, NaiveDateTime};
use frontdesk_core::users::query::{
    LastLogin, SortDir, SortKey, StaffFilter, UserQuery, DEFAULT_LIMIT, MAX_LIMIT,
};
use frontdesk_core::users::UserStatus;
use frontdesk_core::{OrgRole, StaffRole};

use crate::api::params::MAX_PAGE;
use crate::error::FieldError;
use crate::parts::Part;
use crate::state::Settings;

/// Largest `active_days` / `inactive_days` (ten years).
pub const MAX_DAYS: i64 = 3650;

/// Most search characters accepted.
pub const MAX_SEARCH: usize = 200;

/// Which URL vocabulary a request speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// The admin pages' links and forms.
    Page,
    /// `/admin/api/v1` query strings.
    Api,
}

impl Dialect {
    fn search(self) -> &'static str {
        match self {
            Dialect::Page => "q",
            Dialect::Api => "search",
        }
    }

    fn organization(self) -> &'static str {
        match self {
            Dialect::Page => "org",
            Dialect::Api => "organization",
        }
    }

    fn last_from(self) -> &'static str {
        match self {
            Dialect::Page => "last_from",
            Dialect::Api => "last_login_from",
        }
    }

    fn last_to(self) -> &'static str {
        match self {
            Dialect::Page => "last_to",
            Dialect::Api => "last_login_to",
        }
    }

    /// The `last_login` values: the pages' radio buttons also send `any`
    /// and `range`.
    fn last_login_values(self) -> &'static [&'static str] {
        match self {
            Dialect::Page => &["any", "never", "range"],
            Dialect::Api => &["never"],
        }
    }
}

/// How a request names an organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrgRef {
    Id(i64),
    Slug(String),
}

/// The query a request asks for, with the organization still as named.
#[derive(Debug)]
pub struct Requested {
    pub query: UserQuery,
    pub organization: Option<OrgRef>,
    /// The filters contradict each other: the answer is nobody.
    pub empty: bool,
}

const TAG_PARAMS: [&str; 3] = ["tags_all", "tags_any", "tags_none"];

/// Every parameter name of the users query in `dialect`, the host's
/// declared filters included (the tag filters only while tags are on).
pub fn names(dialect: Dialect, settings: &Settings) -> Vec<String> {
    let tags_off = settings.disabled_parts.contains(&Part::Tags);
    [
        dialect.search(),
        "status",
        "staff",
        dialect.organization(),
        "org_role",
        "group",
        "tags_all",
        "tags_any",
        "tags_none",
        "created_from",
        "created_to",
        "last_login",
        dialect.last_from(),
        "mfa",
        dialect.last_to(),
        "active_days",
        "inactive_days",
        "sort",
        "dir",
        "page",
        "limit",
    ]
    .iter()
    .filter(|s| !(tags_off && TAG_PARAMS.contains(s)))
    .map(|s| (*s).to_owned())
    .chain(crate::user_filters::param_names(settings))
    .collect()
}

/// Reads the users query from `pairs` (other names are left to the caller:
/// the API refuses them, the pages ignore them). Every refused value comes
/// back as a field error naming its parameter.
pub fn read(
    pairs: &[(String, String)],
    dialect: Dialect,
    settings: &Settings,
) -> Result<Requested, Vec<FieldError>> {
    let mut r = Reader {
        pairs,
        dialect,
        errors: Vec::new(),
    };
    let search = r.text(dialect.search(), MAX_SEARCH);
    let status = r.choice(
        "status",
        |v| UserStatus::ALL.iter().copied().find(|s| s.as_str() == v),
        &["pending", "active", "suspended"],
    );
    let staff = r
        .choice(
            "staff",
            |v| match v {
                "all" => Some(StaffFilter::All),
                "staff" => Some(StaffFilter::Staff),
                "not_staff" => Some(StaffFilter::NotStaff),
                other => StaffRole::ALL
                    .iter()
                    .copied()
                    .find(|s| s.as_str() == other)
                    .map(StaffFilter::Is),
            },
            &["all", "staff", "not_staff", "viewer", "admin", "owner"],
        )
        .unwrap_or_default();
    let organization = match dialect {
        Dialect::Page => r.int(dialect.organization(), 1, i64::MAX).map(OrgRef::Id),
        Dialect::Api => r.text(dialect.organization(), 100).map(OrgRef::Slug),
    };
    let org_role = r.choice(
        "org_role",
        |v| OrgRole::ALL.iter().copied().find(|s| s.as_str() == v),
        &["member", "admin", "owner"],
    );
    let group = r.int("group", 1, i64::MAX);
    let tags_all = r.ids("tags_all");
    let tags_any = r.ids("tags_any");
    let tags_none = r.ids("tags_none");
    if settings.disabled_parts.contains(&Part::Tags) {
        for name in TAG_PARAMS {
            if r.first(name).is_some() {
                r.error(name, "tags are switched off on this site");
            }
        }
    }
    let created_from = r.datetime("created_from", false);
    let created_to = r.datetime("created_to", true);
    let mode = r.choice(
        "last_login",
        |v| {
            dialect
                .last_login_values()
                .contains(&v)
                .then(|| v.to_owned())
        },
        dialect.last_login_values(),
    );
    let from = r.datetime(dialect.last_from(), false);
    let to = r.datetime(dialect.last_to(), true);
    let mut empty = false;
    let last_login = match (mode.as_deref(), from, to) {
        (Some("never"), None, None) => LastLogin::Never,
        // Never signed in, yet signed in within a range: nobody. (A page's
        // "never" radio hides the range fields, so only the API gets here.)
        (Some("never"), _, _) if dialect == Dialect::Api => {
            empty = true;
            LastLogin::Never
        }
        (Some("never"), _, _) => LastLogin::Never,
        (_, None, None) => LastLogin::Any,
        (_, from, to) => LastLogin::Between(from, to),
    };
    // Recent activity, in whole days back from now (`last_active_at`).
    let now = frontdesk_core::time::now();
    let days_back = |d: i64| now - chrono::Duration::days(d);
    let active_since = r.int("active_days", 1, MAX_DAYS).map(days_back);
    let inactive_since = r.int("inactive_days", 1, MAX_DAYS).map(days_back);
    let sort = r
        .choice(
            "sort",
            |v| match v {
                "created" => Some(SortKey::Created),
                "email" => Some(SortKey::Email),
                "name" => Some(SortKey::Name),
                "last_login" => Some(SortKey::LastLogin),
                "last_active" => Some(SortKey::LastActive),
                _ => None,
            },
            &["created", "email", "name", "last_login", "last_active"],
        )
        .unwrap_or_default();
    let dir = r
        .choice(
            "dir",
            |v| match v {
                "asc" => Some(SortDir::Asc),
                "desc" => Some(SortDir::Desc),
                _ => None,
            },
            &["asc", "desc"],
        )
        .unwrap_or_default();
    let mfa = r.choice(
        "mfa",
        |v| match v {
            "on" => Some(true),
            "off" => Some(false),
            _ => None,
        },
        &["on", "off"],
    );
    let page = r.int("page", 1, MAX_PAGE).unwrap_or(1);
    let limit = r.int("limit", 1, MAX_LIMIT).unwrap_or(DEFAULT_LIMIT);
    let mut query = UserQuery {
        mfa,
        search,
        status,
        staff,
        org_role,
        group,
        tags_all,
        tags_any,
        tags_none,
        created_from,
        created_to,
        last_login,
        active_since,
        inactive_since,
        sort,
        dir,
        page,
        limit,
        ..UserQuery::default()
    };
    let declared = pairs
        .iter()
        // Like every other choice: an empty value is "not set" on a page
        // and refused on the API (it is none of the choices).
        .filter(|(k, v)| {
            crate::user_filters::is_filter_param(k)
                && (dialect == Dialect::Api || !v.trim().is_empty())
        })
        .map(|(k, v)| (k.as_str(), v.trim()));
    if let Err(e) = crate::user_filters::apply(settings, declared, &mut query) {
        r.errors.extend(e);
    }
    if r.errors.is_empty() {
        Ok(Requested {
            query,
            organization,
            empty,
        })
    } else {
        Err(r.errors)
    }
}

struct Reader<'a> {
    pairs: &'a [(String, String)],
    dialect: Dialect,
    errors: Vec<FieldError>,
}

impl Reader<'_> {
    /// The first non-empty value of `name`, trimmed.
    fn first(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .find(|v| !v.is_empty())
    }

    /// The value a number, choice or date is read from: on the pages an
    /// empty field means "not set" (forms send every field); the API says
    /// what it means, so an empty value there is refused like any other.
    fn value(&self, name: &str) -> Option<&str> {
        match self.dialect {
            Dialect::Page => self.first(name),
            Dialect::Api => self
                .pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.trim()),
        }
    }

    fn error(&mut self, name: &str, message: impl Into<String>) {
        self.errors.push(FieldError::new(name, message));
    }

    fn text(&mut self, name: &str, max: usize) -> Option<String> {
        // Checked before trimming: a value that is only a control character
        // (a bare `\r`) is refused, not read as "not given".
        if self
            .pairs
            .iter()
            .any(|(k, v)| k == name && v.chars().any(char::is_control))
        {
            self.error(name, "must not contain control characters");
            return None;
        }
        let v = self.first(name)?.to_owned();
        if v.chars().count() > max {
            self.error(name, format!("must be at most {max} characters"));
            return None;
        }
        Some(v)
    }

    fn int(&mut self, name: &str, min: i64, max: i64) -> Option<i64> {
        let v = self.value(name)?;
        match v.parse::<i64>() {
            Ok(n) if (min..=max).contains(&n) => Some(n),
            _ => {
                let message = if max == i64::MAX {
                    "must be a positive whole number".to_owned()
                } else {
                    format!("must be an integer between {min} and {max}")
                };
                self.error(name, message);
                None
            }
        }
    }

    fn choice<T>(
        &mut self,
        name: &str,
        parse: impl Fn(&str) -> Option<T>,
        allowed: &[&str],
    ) -> Option<T> {
        let v = self.value(name)?;
        match parse(v) {
            Some(t) => Some(t),
            None => {
                self.error(name, format!("must be one of: {}", allowed.join(", ")));
                None
            }
        }
    }

    /// Ids as repeated parameters (the pages' checkboxes), comma-separated
    /// (the API's form style), or both.
    fn ids(&mut self, name: &str) -> Vec<i64> {
        // An empty value is an empty list; on the API a blank one (`%0D`)
        // is not a list of ids and is refused.
        let api = self.dialect == Dialect::Api;
        let parsed: Option<Vec<i64>> = self
            .pairs
            .iter()
            .filter(|(k, v)| {
                k == name
                    && !(if api {
                        v.is_empty()
                    } else {
                        v.trim().is_empty()
                    })
            })
            .flat_map(|(_, v)| v.split(','))
            .map(|p| p.trim().parse::<i64>().ok())
            .collect();
        match parsed {
            Some(ids) if ids.len() <= 100 => ids,
            _ => {
                self.error(
                    name,
                    "must be a comma-separated list of at most 100 integer ids",
                );
                Vec::new()
            }
        }
    }

    /// The pages take a day (`YYYY-MM-DD`; an `end` day is included, so the
    /// range ends at the next midnight); the API also takes an RFC 3339
    /// date-time, and its ends are exclusive as given.
    fn datetime(&mut self, name: &str, end: bool) -> Option<NaiveDateTime> {
        let v = self.value(name)?.to_owned();
        let day = NaiveDate::parse_from_str(&v, "%Y-%m-%d").ok();
        let parsed = match self.dialect {
            Dialect::Page => day
                .and_then(|d| if end { d.succ_opt() } else { Some(d) })
                .and_then(|d| d.and_hms_opt(0, 0, 0)),
            Dialect::Api => DateTime::parse_from_rfc3339(&v)
                .map(|d| d.naive_utc())
                .ok()
                .or_else(|| day.and_then(|d| d.and_hms_opt(0, 0, 0))),
        };
        if parsed.is_none() {
            let message = match self.dialect {
                Dialect::Page => "must be a date (YYYY-MM-DD)",
                Dialect::Api => {
                    "must be an RFC 3339 date-time (2026-01-31T00:00:00Z) or a date (2026-01-31)"
                }
            };
            self.error(name, message);
        }
        parsed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(q: &str) -> Vec<(String, String)> {
        url::form_urlencoded::parse(q.as_bytes())
            .into_owned()
            .collect()
    }

    fn settings() -> Settings {
        Settings::new(url::Url::parse("http://localhost/").expect("url"))
    }

    #[test]
    fn a_text_filter_that_is_only_a_control_character_is_refused() {
        let s = settings();
        for q in [
            "organization=%0D",
            "search=%0A",
            "organization=acme%0D",
            "search=%09ann",
        ] {
            let errors = read(&pairs(q), Dialect::Api, &s).expect_err(q);
            assert_eq!(errors.len(), 1, "{q}");
            assert!(errors[0].message.contains("control characters"), "{q}");
        }
        let errors = read(&pairs("tags_all=%0D"), Dialect::Api, &s).expect_err("blank id list");
        assert_eq!(errors[0].field, "tags_all");
        let r = read(&pairs("tags_all=&tags_any=%0D"), Dialect::Page, &s).expect("blank on a page");
        assert!(r.query.tags_all.is_empty() && r.query.tags_any.is_empty());
        let r = read(&pairs("organization=%20acme%20"), Dialect::Api, &s).expect("spaces");
        assert_eq!(r.organization, Some(OrgRef::Slug("acme".into())));
    }

    #[test]
    fn both_dialects_read_the_same_filters_under_their_own_names() {
        let s = settings();
        let page = read(
            &pairs("q=ann&org=7&status=pending&tags_all=1&tags_all=2&last_from=2026-01-01&last_to=2026-01-31&sort=email&dir=asc&page=2&limit=25"),
            Dialect::Page,
            &s,
        )
        .expect("page query");
        let api = read(
            &pairs("search=ann&organization=acme&status=pending&tags_all=1,2&last_login_from=2026-01-01&last_login_to=2026-02-01&sort=email&dir=asc&page=2&limit=25"),
            Dialect::Api,
            &s,
        )
        .expect("api query");
        assert_eq!(page.organization, Some(OrgRef::Id(7)));
        assert_eq!(api.organization, Some(OrgRef::Slug("acme".into())));
        // The page's inclusive last day and the API's exclusive end agree.
        assert_eq!(format!("{:?}", page.query), format!("{:?}", api.query));
        assert_eq!(page.query.tags_all, vec![1, 2]);
        assert_eq!(page.query.limit, 25);
    }

    #[test]
    fn every_refused_value_is_named() {
        let s = settings();
        for dialect in [Dialect::Page, Dialect::Api] {
            let errors = read(
                &pairs("status=Active&staff=boss&org_role=king&tags_any=x&created_from=yesterday&sort=age&dir=up&page=0&limit=101&last_login=sometimes&profile.nope=1"),
                dialect,
                &s,
            )
            .expect_err("refused");
            let mut fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
            fields.sort_unstable();
            assert_eq!(
                fields,
                vec![
                    "created_from",
                    "dir",
                    "last_login",
                    "limit",
                    "org_role",
                    "page",
                    "profile.nope",
                    "sort",
                    "staff",
                    "status",
                    "tags_any"
                ],
                "{dialect:?}"
            );
        }
        // An empty value is "not set" on a page, refused on the API.
        assert!(read(&pairs("limit=&status="), Dialect::Page, &s).is_ok());
        let errors = read(&pairs("limit=&status="), Dialect::Api, &s).expect_err("empty");
        assert_eq!(errors.len(), 2);
        let long = "x".repeat(MAX_SEARCH + 1);
        let errors = read(&pairs(&format!("q={long}")), Dialect::Page, &s).expect_err("long");
        assert_eq!(errors[0].field, "q");
    }

    #[test]
    fn never_with_a_range_is_nobody_on_the_api() {
        let s = settings();
        let api = read(
            &pairs("last_login=never&last_login_from=2026-01-01"),
            Dialect::Api,
            &s,
        )
        .expect("api");
        assert!(api.empty);
        let page = read(
            &pairs("last_login=range&last_from=2026-01-01"),
            Dialect::Page,
            &s,
        )
        .expect("page");
        assert!(!page.empty);
        assert!(matches!(
            page.query.last_login,
            LastLogin::Between(Some(_), None)
        ));
    }
}
