//! frontdesk's optional parts, which a host may switch off
//! (`FrontdeskBuilder::without(Part::…)`): a part switched off answers 404 on
//! its admin pages and API routes, is absent from the OpenAPI document, and
//! its menu item and links are gone from the admin.

use actix_web::body::BoxBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web;
use serde::Serialize;

use crate::error::WebError;
use crate::state::FrontdeskState;

/// An optional part of frontdesk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Part {
    /// CSV imports: `/imports…` pages, `/import`, `/imports…` API.
    Imports,
    /// CSV exports: `/exports` page, `/export` API.
    Exports,
    /// API keys: `/api-keys…` pages and API.
    ApiKeys,
    /// Invitations: `/invitations…` pages and API.
    Invitations,
    /// Tags: the `/tags` API, the tag forms of the user page
    /// (`/users/{id}/tags…`), the users list's tag filters, column and bulk
    /// actions, the `tags_*` query parameters, and the import and export
    /// `tags` column.
    Tags,
}

impl Part {
    pub(crate) const ALL: [Part; 5] = [
        Part::Imports,
        Part::Exports,
        Part::ApiKeys,
        Part::Invitations,
        Part::Tags,
    ];

    /// Its paths below the admin prefix.
    pub fn admin_paths(self) -> &'static [&'static str] {
        match self {
            Part::Imports => &["/imports"],
            Part::Exports => &["/exports"],
            Part::ApiKeys => &["/api-keys"],
            Part::Invitations => &["/invitations"],
            Part::Tags => &["/users/*/tags"],
        }
    }

    /// Its paths below the API prefix.
    pub fn api_paths(self) -> &'static [&'static str] {
        match self {
            Part::Imports => &["/import", "/imports"],
            Part::Exports => &["/export"],
            Part::ApiKeys => &["/api-keys"],
            Part::Invitations => &["/invitations"],
            Part::Tags => &["/tags", "/users/*/tags"],
        }
    }

    /// The name templates know it by (`parts.imports`).
    pub(crate) fn key(self) -> &'static str {
        match self {
            Part::Imports => "imports",
            Part::Exports => "exports",
            Part::ApiKeys => "api_keys",
            Part::Invitations => "invitations",
            Part::Tags => "tags",
        }
    }
}

/// `path` is `prefix` or below it; a `*` segment of `prefix` stands for any
/// one segment.
fn under(path: &str, prefix: &str) -> bool {
    let mut segments = path.split('/');
    for want in prefix.split('/') {
        match segments.next() {
            Some(got) if want == "*" || got == want => {}
            _ => return false,
        }
    }
    true
}

/// A path (relative to the admin or API prefix) of a part switched off.
pub(crate) fn is_off(disabled: &[Part], relative: &str, api: bool) -> bool {
    disabled.iter().any(|p| {
        let paths = if api { p.api_paths() } else { p.admin_paths() };
        paths.iter().any(|prefix| under(relative, prefix))
    })
}

/// For templates: `{imports: true, exports: false, …}`.
pub(crate) fn flags(disabled: &[Part]) -> std::collections::BTreeMap<&'static str, bool> {
    Part::ALL
        .iter()
        .map(|p| (p.key(), !disabled.contains(p)))
        .collect()
}

async fn guard(
    req: ServiceRequest,
    next: Next<BoxBody>,
    api: bool,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let off = req
        .app_data::<web::Data<FrontdeskState>>()
        .is_some_and(|state| {
            let settings = state.settings();
            if settings.disabled_parts.is_empty() {
                return false;
            }
            let prefix = if api {
                format!("{}{}", settings.admin_prefix, crate::api::SUFFIX)
            } else {
                settings.admin_prefix.clone()
            };
            let path = req.path();
            let relative = path.strip_prefix(prefix.as_str()).unwrap_or(path);
            is_off(&settings.disabled_parts, relative, api)
        });
    if off {
        let e = WebError::not_found().json(api);
        let res = actix_web::ResponseError::error_response(&e);
        return Ok(req.into_response(res));
    }
    next.call(req).await
}

/// Middleware of the admin pages' scope.
pub(crate) async fn admin_guard(
    req: ServiceRequest,
    next: Next<BoxBody>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    guard(req, next, false).await
}

/// Middleware of the API's scope.
pub(crate) async fn api_guard(
    req: ServiceRequest,
    next: Next<BoxBody>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    guard(req, next, true).await
}

/// The export fields a site offers: `tags` only while tags are on.
pub(crate) fn export_fields(
    disabled: &[Part],
    mut fields: Vec<frontdesk_core::exports::ExportField>,
) -> Vec<frontdesk_core::exports::ExportField> {
    if disabled.contains(&Part::Tags) {
        fields.retain(|f| *f != frontdesk_core::exports::ExportField::Tags);
    }
    fields
}

/// Refuses an export asking for a field of a part switched off.
pub(crate) fn check_export_fields(
    disabled: &[Part],
    fields: &[frontdesk_core::exports::ExportField],
) -> Result<(), WebError> {
    if disabled.contains(&Part::Tags)
        && fields.contains(&frontdesk_core::exports::ExportField::Tags)
    {
        return Err(WebError::validation(vec![crate::error::FieldError::new(
            "fields",
            "tags are switched off on this site",
        )]));
    }
    Ok(())
}

/// Removes the API paths of parts switched off from an OpenAPI document.
pub(crate) fn strip_openapi(doc: &mut serde_json::Value, disabled: &[Part]) {
    if let Some(paths) = doc.get_mut("paths").and_then(|p| p.as_object_mut()) {
        paths.retain(|path, _| !is_off(disabled, path, true));
        // The users query's tag filters go with the tags.
        if disabled.contains(&Part::Tags) {
            for op in paths.values_mut().filter_map(|p| p.as_object_mut()) {
                for method in op.values_mut() {
                    if let Some(params) =
                        method.get_mut("parameters").and_then(|p| p.as_array_mut())
                    {
                        params.retain(|p| {
                            !p.get("name")
                                .and_then(|n| n.as_str())
                                .is_some_and(|n| n.starts_with("tags_"))
                        });
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_of_a_part_and_only_those() {
        let off = [Part::Imports];
        assert!(is_off(&off, "/import", true));
        assert!(is_off(&off, "/import/template", true));
        assert!(is_off(&off, "/imports/3", true));
        assert!(!is_off(&off, "/importsx", true));
        assert!(!is_off(&off, "/users", true));
        assert!(is_off(&off, "/imports/template.csv", false));
        assert!(!is_off(&off, "/import", false));
        assert!(!is_off(&[Part::Exports], "/exportsx", false));
        let tags = [Part::Tags];
        assert!(is_off(&tags, "/users/12/tags", false));
        assert!(is_off(&tags, "/users/12/tags/remove", false));
        assert!(!is_off(&tags, "/users/12", false));
        assert!(!is_off(&tags, "/users/12/tagsx", false));
        assert!(is_off(&tags, "/tags", true));
        assert!(is_off(&tags, "/tags/4", true));
        assert!(is_off(&tags, "/users/{id}/tags/{tag_id}", true));
        assert!(!is_off(&tags, "/users/{id}", true));
    }
}
