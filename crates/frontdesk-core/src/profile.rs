//! Typed profile fields: what the host declares about the values kept in
//! `users.profile` (key, label, kind, required, limits, help), the one check
//! every path runs before a profile is saved (admin form, API, CSV import,
//! CLI), and the SQL of a filter on a declared field.
//!
//! Keys the host has not declared stay accepted as free text, checked only
//! for their name and length as before: data written before a field was
//! declared (or after one was removed) is never refused or lost.

use chrono::NaiveDate;
use serde::Serialize;
use serde_json::{Map, Number, Value};

use crate::db::BackendKind;
use crate::error::{CoreError, CoreResult};
use crate::users::condition::UserCondition;
use crate::validate::{self, MAX_NAME, MAX_TEXT};

/// Longest key of a declared field.
pub const MAX_KEY: usize = 64;

/// What a field holds, and how it is stored in the profile's JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ProfileKind {
    /// A JSON string of one line.
    Text,
    /// A JSON string, one of `choices`.
    Choice {
        /// The allowed values, in the order forms offer them.
        choices: Vec<String>,
    },
    /// A JSON `true` or `false`.
    Boolean,
    /// A JSON integer.
    Integer,
    /// A JSON string `YYYY-MM-DD`.
    Date,
}

impl ProfileKind {
    /// The kind's name: `text`, `choice`, `boolean`, `integer` or `date`.
    pub fn name(&self) -> &'static str {
        match self {
            ProfileKind::Text => "text",
            ProfileKind::Choice { .. } => "choice",
            ProfileKind::Boolean => "boolean",
            ProfileKind::Integer => "integer",
            ProfileKind::Date => "date",
        }
    }
}

/// One declared profile field. Build it with [`ProfileField::text`],
/// [`ProfileField::choice`], [`ProfileField::boolean`],
/// [`ProfileField::integer`] or [`ProfileField::date`], then the modifiers.
/// A plain string converts into an optional text field labelled by its key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProfileField {
    /// The key in the profile object, the import/export column and the
    /// `profile.<key>` filter parameter: 1 to 64 of `a-z`, `0-9`, `_`,
    /// starting with a letter.
    pub key: String,
    /// The label forms and lists show.
    pub label: String,
    /// What the field holds.
    pub kind: ProfileKind,
    /// A value must be given when the profile is saved.
    pub required: bool,
    /// Longest text (text fields; default 2000 characters).
    pub max_length: Option<usize>,
    /// The smallest integer accepted (integer fields).
    pub min: Option<i64>,
    /// The largest integer accepted (integer fields).
    pub max: Option<i64>,
    /// Shown under the field on the user page.
    pub help: Option<String>,
    /// Shown as a column of the admin users list.
    pub list_column: bool,
}

impl ProfileField {
    fn new(key: &str, label: &str, kind: ProfileKind) -> Self {
        ProfileField {
            key: key.to_owned(),
            label: label.to_owned(),
            kind,
            required: false,
            max_length: None,
            min: None,
            max: None,
            help: None,
            list_column: false,
        }
    }

    /// An optional one-line text field.
    pub fn text(key: &str, label: &str) -> Self {
        Self::new(key, label, ProfileKind::Text)
    }

    /// An optional field whose value is one of `choices`.
    pub fn choice<I, S>(key: &str, label: &str, choices: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let choices = choices.into_iter().map(Into::into).collect();
        Self::new(key, label, ProfileKind::Choice { choices })
    }

    /// An optional yes/no field.
    pub fn boolean(key: &str, label: &str) -> Self {
        Self::new(key, label, ProfileKind::Boolean)
    }

    /// An optional integer field.
    pub fn integer(key: &str, label: &str) -> Self {
        Self::new(key, label, ProfileKind::Integer)
    }

    /// An optional date field (`YYYY-MM-DD`).
    pub fn date(key: &str, label: &str) -> Self {
        Self::new(key, label, ProfileKind::Date)
    }

    /// The same field, required.
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }

    /// The same field with at most `n` characters (text fields; at most 2000
    /// whatever `n` says).
    pub fn max_length(mut self, n: usize) -> Self {
        self.max_length = Some(n);
        self
    }

    /// The same field accepting integers from `min` to `max`, both included.
    pub fn range(mut self, min: i64, max: i64) -> Self {
        self.min = Some(min);
        self.max = Some(max);
        self
    }

    /// The same field with `text` shown under it on the user page.
    pub fn help(mut self, text: &str) -> Self {
        self.help = Some(text.to_owned());
        self
    }

    /// The same field shown as a column of the admin users list.
    pub fn list_column(mut self) -> Self {
        self.list_column = true;
        self
    }

    /// Choice and boolean fields can filter the users list.
    pub fn filterable(&self) -> bool {
        matches!(self.kind, ProfileKind::Choice { .. } | ProfileKind::Boolean)
    }

    /// The choices of a choice field (empty for other kinds).
    pub fn choices(&self) -> &[String] {
        match &self.kind {
            ProfileKind::Choice { choices } => choices,
            _ => &[],
        }
    }

    fn invalid(&self, reason: impl Into<String>) -> CoreError {
        CoreError::InvalidProfileField {
            key: self.key.clone(),
            reason: reason.into(),
        }
    }

    /// One value, given as its JSON type or as text (a form field or a CSV
    /// cell): the stored JSON value, or `None` for an empty one.
    pub fn check_value(&self, v: &Value) -> CoreResult<Option<Value>> {
        let text = match v {
            Value::Null => return Ok(None),
            Value::String(s) => Some(s.trim()),
            _ => None,
        };
        if text == Some("") {
            return Ok(None);
        }
        match &self.kind {
            ProfileKind::Text => {
                let Some(s) = text else {
                    return Err(self.invalid("must be text"));
                };
                let max = self.max_length.unwrap_or(MAX_TEXT).min(MAX_TEXT);
                if s.chars().count() > max {
                    return Err(self.invalid(format!("must be at most {max} characters")));
                }
                // Line breaks and tabs are kept (multi-line notes, as before).
                if s.chars()
                    .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
                {
                    return Err(self.invalid("must not contain control characters"));
                }
                Ok(Some(Value::String(s.to_owned())))
            }
            ProfileKind::Choice { choices } => match text {
                Some(s) if choices.iter().any(|c| c == s) => Ok(Some(Value::String(s.into()))),
                _ => Err(self.invalid(format!("must be one of: {}", choices.join(", ")))),
            },
            ProfileKind::Boolean => match (v, text) {
                (Value::Bool(b), _) => Ok(Some(Value::Bool(*b))),
                (_, Some(s)) => match s.to_ascii_lowercase().as_str() {
                    "true" | "yes" | "1" | "on" => Ok(Some(Value::Bool(true))),
                    "false" | "no" | "0" | "off" => Ok(Some(Value::Bool(false))),
                    _ => Err(self.invalid("must be yes or no (true or false)")),
                },
                _ => Err(self.invalid("must be yes or no (true or false)")),
            },
            ProfileKind::Integer => {
                let n = match (v, text) {
                    (Value::Number(n), _) => n.as_i64(),
                    (_, Some(s)) => s.parse::<i64>().ok(),
                    _ => None,
                }
                .ok_or_else(|| self.invalid("must be a whole number"))?;
                if self.min.is_some_and(|m| n < m) || self.max.is_some_and(|m| n > m) {
                    let (lo, hi) = (self.min.unwrap_or(i64::MIN), self.max.unwrap_or(i64::MAX));
                    return Err(self.invalid(format!("must be between {lo} and {hi}")));
                }
                Ok(Some(Value::Number(Number::from(n))))
            }
            ProfileKind::Date => {
                match text.and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()) {
                    Some(d) => Ok(Some(Value::String(d.format("%Y-%m-%d").to_string()))),
                    None => Err(self.invalid("must be a date written YYYY-MM-DD")),
                }
            }
        }
    }

    /// The value as text, for a CSV cell, a list column or a form field.
    pub fn display(v: &Value) -> String {
        match v {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            Value::Bool(true) => "yes".into(),
            Value::Bool(false) => "no".into(),
            other => other.to_string(),
        }
    }
}

impl From<&str> for ProfileField {
    fn from(key: &str) -> Self {
        ProfileField::text(key, key)
    }
}

impl From<String> for ProfileField {
    fn from(key: String) -> Self {
        ProfileField::text(&key, &key)
    }
}

/// Checks the host's declarations once, at start: key shapes, no key twice,
/// choice fields with choices.
pub fn check_declarations(fields: &[ProfileField]) -> CoreResult<()> {
    for (i, f) in fields.iter().enumerate() {
        let good = !f.key.is_empty()
            && f.key.len() <= MAX_KEY
            && f.key.starts_with(|c: char| c.is_ascii_lowercase())
            && f.key
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !good {
            return Err(CoreError::Config(format!(
                "profile field key {:?} must be 1 to {MAX_KEY} of a-z, 0-9 and _, starting with a letter",
                f.key
            )));
        }
        if fields[..i].iter().any(|o| o.key == f.key) {
            return Err(CoreError::Config(format!(
                "profile field {:?} is declared twice",
                f.key
            )));
        }
        if matches!(&f.kind, ProfileKind::Choice { choices } if choices.is_empty()) {
            return Err(CoreError::Config(format!(
                "profile field {:?} is a choice without choices",
                f.key
            )));
        }
    }
    Ok(())
}

/// The one check of a whole profile before it is saved: every declared field
/// by its kind (the stored value comes back typed; an empty one is left out),
/// required fields present, undeclared keys kept as they are (name and text
/// length checked).
pub fn validate(
    fields: &[ProfileField],
    profile: &Map<String, Value>,
) -> CoreResult<Map<String, Value>> {
    let mut out = Map::new();
    for (k, v) in profile {
        match fields.iter().find(|f| &f.key == k) {
            Some(f) => {
                if let Some(v) = f.check_value(v)? {
                    out.insert(k.clone(), v);
                }
            }
            None => {
                validate::text("profile field name", k, MAX_NAME)?;
                if let Value::String(s) = v {
                    if s.chars().count() > MAX_TEXT {
                        return Err(CoreError::TooLong {
                            field: "profile field",
                            max: MAX_TEXT,
                        });
                    }
                }
                out.insert(k.clone(), v.clone());
            }
        }
    }
    if let Some(f) = fields
        .iter()
        .find(|f| f.required && !out.contains_key(&f.key))
    {
        return Err(f.invalid("is required"));
    }
    Ok(out)
}

/// A filter on a declared choice or boolean field (`profile.<key>=value`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileFilter {
    /// The field's key.
    pub key: String,
    /// The value to match.
    pub value: FilterValue,
}

/// The value of a [`ProfileFilter`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilterValue {
    /// One of a choice field's values.
    Text(String),
    /// `false` keeps users without the field too.
    Bool(bool),
}

/// Parses `profile.<key>=<value>`: the key must be a declared filterable
/// field and the value one of its choices (`yes`/`no` or `true`/`false` for
/// a boolean). The error names the parameter.
pub fn parse_filter(fields: &[ProfileField], key: &str, raw: &str) -> CoreResult<ProfileFilter> {
    let Some(f) = fields.iter().find(|f| f.key == key && f.filterable()) else {
        let known: Vec<String> = fields
            .iter()
            .filter(|f| f.filterable())
            .map(|f| format!("profile.{}", f.key))
            .collect();
        return Err(CoreError::Invalid {
            field: "profile filter",
            reason: format!(
                "profile.{} is not a filterable profile field (known: {})",
                key.chars().take(MAX_KEY).collect::<String>(),
                if known.is_empty() {
                    "none".into()
                } else {
                    known.join(", ")
                }
            ),
        });
    };
    let value = match f.check_value(&Value::String(raw.to_owned()))? {
        Some(Value::Bool(b)) => FilterValue::Bool(b),
        Some(Value::String(s)) => FilterValue::Text(s),
        _ => return Err(f.invalid("give a value to filter by")),
    };
    Ok(ProfileFilter {
        key: f.key.clone(),
        value,
    })
}

impl ProfileFilter {
    /// The filter as SQL over `users.profile`, with the key and the value as
    /// bound parameters (the key is also a declared one, checked above).
    pub fn condition(&self, kind: BackendKind) -> UserCondition {
        match (kind, &self.value) {
            (BackendKind::Sqlite, FilterValue::Text(v)) => {
                UserCondition::sql("json_extract(users.profile, ")
                    .bind_text(format!("$.{}", self.key))
                    .push(") = ")
                    .bind_text(v.clone())
            }
            (BackendKind::Sqlite, FilterValue::Bool(b)) => {
                UserCondition::sql("json_type(users.profile, ")
                    .bind_text(format!("$.{}", self.key))
                    .push(if *b { ") = 'true'" } else { ") IS NOT 'true'" })
            }
            (BackendKind::Postgres, FilterValue::Text(v)) => {
                UserCondition::sql("(users.profile::jsonb ->> ")
                    .bind_text(self.key.clone())
                    .push(") = ")
                    .bind_text(v.clone())
            }
            (BackendKind::Postgres, FilterValue::Bool(b)) => {
                UserCondition::sql("(users.profile::jsonb -> ")
                    .bind_text(self.key.clone())
                    .push(if *b {
                        ") = 'true'::jsonb"
                    } else {
                        ") IS DISTINCT FROM 'true'::jsonb"
                    })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields() -> Vec<ProfileField> {
        vec![
            ProfileField::choice("plan", "Plan", ["free", "pro"]).required(),
            ProfileField::boolean("beta", "Beta"),
            ProfileField::integer("seats", "Seats").range(1, 500),
            ProfileField::date("renews", "Renews"),
            ProfileField::text("company", "Company").max_length(5),
        ]
    }

    fn check(p: Value) -> CoreResult<Map<String, Value>> {
        validate(&fields(), p.as_object().expect("object"))
    }

    #[test]
    fn each_kind_is_checked_and_typed() {
        let ok = check(
            json!({"plan": "pro", "beta": "yes", "seats": "12", "renews": "2027-01-31",
            "company": " Acme ", "legacy": "kept"}),
        )
        .expect("valid");
        assert_eq!(
            Value::Object(ok),
            json!({"plan": "pro", "beta": true, "seats": 12, "renews": "2027-01-31",
                "company": "Acme", "legacy": "kept"})
        );
        let err = |p: Value| check(p).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            err(json!({"plan": "gold"})).contains("plan"),
            "{}",
            err(json!({"plan": "gold"}))
        );
        assert!(err(json!({})).contains("plan is invalid: is required"));
        assert!(err(json!({"plan": ""})).contains("is required"));
        assert!(err(json!({"plan": "free", "beta": "maybe"})).contains("beta"));
        assert!(err(json!({"plan": "free", "seats": 0})).contains("between 1 and 500"));
        assert!(err(json!({"plan": "free", "seats": "1.5"})).contains("whole number"));
        assert!(err(json!({"plan": "free", "renews": "31/01/2027"})).contains("YYYY-MM-DD"));
        assert!(err(json!({"plan": "free", "company": "Acme Inc"})).contains("at most 5"));
        assert!(err(json!({"plan": "free", "company": 5})).contains("must be text"));
        assert!(err(json!({"plan": 1})).contains("one of: free, pro"));
    }

    #[test]
    fn declarations_and_filters() {
        assert!(check_declarations(&fields()).is_ok());
        for bad in ["Plan", "1x", "a-b", "", "a b"] {
            assert!(
                check_declarations(&[ProfileField::from(bad)]).is_err(),
                "{bad:?}"
            );
        }
        assert!(check_declarations(&[ProfileField::from("a"), ProfileField::from("a")]).is_err());
        let f = fields();
        assert_eq!(
            parse_filter(&f, "beta", "no").ok().map(|f| f.value),
            Some(FilterValue::Bool(false))
        );
        assert!(parse_filter(&f, "plan", "gold").is_err());
        // Not declared, or not filterable: refused before any SQL.
        assert!(parse_filter(&f, "x') OR 1=1 --", "a").is_err());
        assert!(parse_filter(&f, "company", "Acme").is_err());
    }
}
