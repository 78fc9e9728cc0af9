//! The users-list filters the host declares: `profile.<key>=value` for each
//! declared choice or boolean profile field, and `ext.<id>.<name>=value` for
//! each extension filter. One reader for the admin pages, the API and the
//! export: a parameter of either shape that is not declared, or a value that
//! is not one of the choices, is refused by name before any SQL is built.

use frontdesk_core::profile::{self, ProfileKind};
use frontdesk_core::users::query::UserQuery;
use serde::Serialize;

use crate::error::FieldError;
use crate::state::Settings;

/// Whether a parameter name is of the shape these filters use.
pub fn is_filter_param(name: &str) -> bool {
    name.starts_with("profile.") || name.starts_with("ext.") || name == LICENCE
}

/// The licence filter's parameter (taken when the host declares licences).
pub const LICENCE: &str = "licence";

/// Every parameter name a filter may take.
pub fn param_names(settings: &Settings) -> Vec<String> {
    settings
        .import
        .profile_fields
        .iter()
        .filter(|f| f.filterable())
        .map(|f| format!("profile.{}", f.key))
        .chain(settings.extensions.filters().into_iter().map(|(k, _)| k))
        .chain((!settings.licences.is_empty()).then(|| LICENCE.to_owned()))
        .collect()
}

/// Adds the filters of `pairs` (name, non-empty value) to `query`; each
/// refused parameter comes back as a field error naming it.
pub fn apply<'a>(
    settings: &Settings,
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    query: &mut UserQuery,
) -> Result<(), Vec<FieldError>> {
    let fields = &settings.import.profile_fields;
    let ext = settings.extensions.filters();
    let mut errors = Vec::new();
    for (name, value) in pairs {
        if name == LICENCE {
            match settings.licences.iter().find(|l| l.key == value) {
                Some(l) => query.licence = Some(l.key.clone()),
                None if settings.licences.is_empty() => errors.push(FieldError::new(
                    name,
                    "is not a filter of the users list (no licence types are declared)",
                )),
                None => errors.push(FieldError::new(
                    name,
                    format!(
                        "must be one of: {}",
                        settings
                            .licences
                            .iter()
                            .map(|l| l.key.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )),
            }
        } else if let Some(key) = name.strip_prefix("profile.") {
            match profile::parse_filter(fields, key, value) {
                Ok(f) => query.profile.push(f),
                Err(e) => errors.push(FieldError::new(
                    name.chars().take(80).collect::<String>(),
                    match e {
                        frontdesk_core::CoreError::Invalid { reason, .. } => reason,
                        other => other.to_string(),
                    },
                )),
            }
        } else if name.starts_with("ext.") {
            match ext.iter().find(|(k, _)| k == name) {
                Some((_, f)) => match f.choices.iter().find(|(v, _)| v == value) {
                    Some((v, _)) => query.conditions.push((f.condition)(v)),
                    None => errors.push(FieldError::new(
                        name,
                        format!(
                            "must be one of: {}",
                            f.choices
                                .iter()
                                .map(|(v, _)| v.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    )),
                },
                None => errors.push(FieldError::new(
                    name.chars().take(80).collect::<String>(),
                    "is not a filter of the users list",
                )),
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// A select of the admin filter bar.
#[derive(Debug, Serialize)]
pub struct FilterSelect {
    pub param: String,
    pub label: String,
    pub choices: Vec<(String, String)>,
    pub chosen: String,
}

/// The selects for the declared filters, showing what `chosen` asked for.
pub fn selects(settings: &Settings, chosen: impl Fn(&str) -> Option<String>) -> Vec<FilterSelect> {
    let mut out: Vec<FilterSelect> = settings
        .import
        .profile_fields
        .iter()
        .filter(|f| f.filterable())
        .map(|f| {
            let param = format!("profile.{}", f.key);
            let choices = match &f.kind {
                ProfileKind::Boolean => {
                    vec![("yes".into(), "yes".into()), ("no".into(), "no".into())]
                }
                _ => f.choices().iter().map(|c| (c.clone(), c.clone())).collect(),
            };
            FilterSelect {
                chosen: chosen(&param).unwrap_or_default(),
                param,
                label: f.label.clone(),
                choices,
            }
        })
        .collect();
    if !settings.licences.is_empty() {
        out.push(FilterSelect {
            chosen: chosen(LICENCE).unwrap_or_default(),
            param: LICENCE.to_owned(),
            label: "Licence".into(),
            choices: settings
                .licences
                .iter()
                .map(|l| (l.key.clone(), l.name.clone()))
                .collect(),
        });
    }
    out.extend(
        settings
            .extensions
            .filters()
            .into_iter()
            .map(|(param, f)| FilterSelect {
                chosen: chosen(&param).unwrap_or_default(),
                param,
                label: f.label,
                choices: f.choices,
            }),
    );
    out
}
