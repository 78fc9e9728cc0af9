//! Query parameters, read strictly: an unknown, repeated or malformed parameter
//! is a 400 naming it, never silently ignored, so a typo in a filter cannot
//! return every user.

use frontdesk_core::users::query::{DEFAULT_LIMIT, MAX_LIMIT};
use serde::Serialize;
use utoipa::ToSchema;

use super::problem::{ApiError, ApiResult};
use crate::error::{FieldError, WebError};

/// Largest page number accepted (keeps offsets far from overflow).
pub const MAX_PAGE: i64 = 1_000_000;

pub struct Params {
    pairs: Vec<(String, String)>,
    errors: Vec<FieldError>,
}

impl Params {
    /// Splits the query string and refuses names not in `known` and repeats.
    pub fn parse(query: &str, known: &[&str]) -> Params {
        Params::parse_with_lists(query, known, &[])
    }

    /// As [`Params::parse`], but the names in `lists` (comma-separated lists)
    /// may also come as repeated keys, as most HTTP clients and client
    /// generators send arrays: `tags_any=1&tags_any=2` reads as `tags_any=1,2`.
    pub fn parse_with_lists(query: &str, known: &[&str], lists: &[&str]) -> Params {
        let mut pairs: Vec<(String, String)> = Vec::new();
        let mut errors = Vec::new();
        for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
            let k = k.into_owned();
            if !known.contains(&k.as_str()) {
                errors.push(FieldError::new(
                    k.chars().take(64).collect::<String>(),
                    "is not a parameter of this endpoint",
                ));
            } else if let Some((_, value)) = pairs.iter_mut().find(|(n, _)| *n == k) {
                if lists.contains(&k.as_str()) {
                    value.push(',');
                    value.push_str(&v);
                } else {
                    errors.push(FieldError::new(k.clone(), "is given more than once"));
                }
            } else {
                pairs.push((k, v.into_owned()));
            }
        }
        Params { pairs, errors }
    }

    /// The accepted pairs (known names, each once).
    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    /// Adds errors found by another reader of these pairs.
    pub fn extend_errors(&mut self, errors: Vec<FieldError>) {
        self.errors.extend(errors);
    }

    fn raw(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn error(&mut self, name: &str, message: impl Into<String>) {
        self.errors.push(FieldError::new(name, message));
    }

    /// A parameter whose document gives it a pattern that needs at least
    /// one character: taken as sent (not trimmed), and present but empty is
    /// a 400 naming it, where [`Params::text`] would read it as absent. The
    /// caller checks the value against its pattern.
    pub fn strict_text(&mut self, name: &str, max: usize) -> Option<String> {
        let raw = self.raw(name)?.to_owned();
        if raw.is_empty() {
            self.error(name, "must not be empty (leave it out instead)");
            return None;
        }
        if raw.chars().count() > max {
            self.error(name, format!("must be at most {max} characters"));
            return None;
        }
        Some(raw)
    }

    /// A text parameter; empty counts as absent.
    pub fn text(&mut self, name: &str, max: usize) -> Option<String> {
        let raw = self.raw(name)?;
        let too_long = raw.chars().count() > max;
        let control = raw.chars().any(char::is_control);
        let v = raw.trim().to_owned();
        if too_long {
            self.error(name, format!("must be at most {max} characters"));
            return None;
        }
        if control {
            self.error(name, "must not contain control characters");
            return None;
        }
        (!v.is_empty()).then_some(v)
    }

    pub fn int(&mut self, name: &str, min: i64, max: i64) -> Option<i64> {
        let v = self.raw(name)?;
        match v.trim().parse::<i64>() {
            Ok(n) if (min..=max).contains(&n) => Some(n),
            _ => {
                self.error(name, format!("must be an integer between {min} and {max}"));
                None
            }
        }
    }

    /// One of `allowed` (as listed in the message).
    pub fn choice<T>(
        &mut self,
        name: &str,
        parse: impl Fn(&str) -> Option<T>,
        allowed: &[&str],
    ) -> Option<T> {
        let v = self.raw(name)?;
        match parse(v.trim()) {
            Some(t) => Some(t),
            None => {
                self.error(name, format!("must be one of: {}", allowed.join(", ")));
                None
            }
        }
    }

    pub fn boolean(&mut self, name: &str) -> Option<bool> {
        self.choice(
            name,
            |v| match v {
                "true" => Some(true),
                "false" => Some(false),
                _ => None,
            },
            &["true", "false"],
        )
    }

    /// `page` (from 1) and `limit` (1 to 100, default 50).
    pub fn paging(&mut self) -> Paging {
        Paging {
            page: self.int("page", 1, MAX_PAGE).unwrap_or(1),
            limit: self.int("limit", 1, MAX_LIMIT).unwrap_or(DEFAULT_LIMIT),
        }
    }

    /// Fails with every problem found, or succeeds when there was none.
    pub fn finish(self) -> ApiResult<()> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::from(WebError::validation(self.errors)))
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Paging {
    pub page: i64,
    pub limit: i64,
}

impl Paging {
    pub fn out(&self, total: i64) -> Pagination {
        Pagination {
            page: self.page,
            limit: self.limit,
            total,
            total_is_exact: true,
        }
    }

    /// The slice of an in-memory list this page shows.
    pub fn slice<T>(&self, items: Vec<T>) -> Vec<T> {
        let start =
            usize::try_from((self.page - 1).saturating_mul(self.limit)).unwrap_or(usize::MAX);
        let limit = usize::try_from(self.limit).unwrap_or(0);
        items.into_iter().skip(start).take(limit).collect()
    }
}

/// Where a list page sits: `page` from 1, `limit` per page, `total` matches.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Pagination {
    #[schema(minimum = 1)]
    pub page: i64,
    #[schema(minimum = 1, maximum = 100)]
    pub limit: i64,
    /// The number of matches; when `total_is_exact` is false, a lower bound
    /// (100,000: more matched, and counting them all would cost more than
    /// the page).
    #[schema(minimum = 0)]
    pub total: i64,
    /// False only for a users list on PostgreSQL that matches more than
    /// 100,000 users without a cheap exact count of that set; later pages
    /// still load.
    pub total_is_exact: bool,
}
