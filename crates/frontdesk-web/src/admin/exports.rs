//! CSV export page: choose the fields; the filters are the users list's
//! (the same query-string parsing), carried over from the list's "Export
//! CSV" button. The download is a CSRF-checked POST that streams a dated
//! `text/csv` attachment with formula cells neutralised.

use actix_web::{web, HttpRequest, HttpResponse};
use frontdesk_core::exports::{self, ExportField, ExportRequest};
use serde::Serialize;
use tera::Context;

use super::{redirect, render, verify, Admin, Params, State};
use crate::error::WebError;

/// The users-list keys an export carries (paging is not among them).
const FILTER_KEYS: [&str; 21] = [
    "q",
    "status",
    "staff",
    "org",
    "org_role",
    "group",
    "service",
    "mfa",
    "active_days",
    "inactive_days",
    "tags_all",
    "tags_any",
    "tags_none",
    "created_from",
    "created_to",
    "last_login",
    "last_from",
    "last_to",
    "sort",
    "dir",
    "limit",
];

/// The filters of a users-list query string, rebuilt from known keys only.
fn filters_of(raw: &str) -> String {
    let p = Params::parse(raw.as_bytes());
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(
            FILTER_KEYS
                .iter()
                .filter(|k| **k != "limit")
                .flat_map(|k| p.all(k).into_iter().map(move |v| (*k, v.to_owned())))
                .chain(
                    p.0.iter()
                        .filter(|(k, _)| crate::user_filters::is_filter_param(k))
                        .map(|(k, v)| (k.as_str(), v.clone())),
                ),
        )
        .finish()
}

#[derive(Serialize)]
struct FieldChoice {
    name: String,
    checked: bool,
}

/// `GET /exports`: the field choice, with the list's filters (from the query string).
pub async fn page(req: HttpRequest, state: State, admin: Admin) -> Result<HttpResponse, WebError> {
    exports::export_scope(&admin.actor)
        .map_err(|_| WebError::forbidden("You may not export users."))?;
    let filters = filters_of(req.query_string());
    // The filters must read as a users list would read them.
    super::users::parse_query(&Params::parse(filters.as_bytes()), state.settings())?;
    let profile = &state.settings().import.profile_fields;
    let disabled = &state.settings().disabled_parts;
    let defaults = crate::parts::export_fields(disabled, exports::default_fields(profile));
    let no_licences = state.settings().licences.is_empty();
    let fields: Vec<FieldChoice> =
        crate::parts::export_fields(disabled, exports::all_fields(profile))
            .iter()
            .filter(|f| !(no_licences && **f == ExportField::Licences))
            .map(|f| FieldChoice {
                name: f.name().to_owned(),
                checked: defaults.contains(f),
            })
            .collect();
    let shown: Vec<(String, String)> = url::form_urlencoded::parse(filters.as_bytes())
        .into_owned()
        .filter(|(k, _)| k != "sort" && k != "dir")
        .collect();
    let mut ctx = Context::new();
    ctx.insert("fields", &fields);
    ctx.insert("filters", &filters);
    ctx.insert("shown_filters", &shown);
    ctx.insert(
        "users_link",
        &format!(
            "{}/users{}{filters}",
            state.settings().admin_prefix,
            if filters.is_empty() { "" } else { "?" }
        ),
    );
    render(&req, &state, &admin, "admin/exports.html", "users", ctx)
}

/// `POST /exports`: streams the CSV.
pub async fn download(
    req: HttpRequest,
    state: State,
    admin: Admin,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let form = Params::form(&body)?;
    verify(&req, &state, &form)?;
    exports::export_scope(&admin.actor)
        .map_err(|_| WebError::forbidden("You may not export users."))?;
    let filters = filters_of(form.get("filters").unwrap_or(""));
    let back = format!(
        "{}/exports{}{filters}",
        state.settings().admin_prefix,
        if filters.is_empty() { "" } else { "?" }
    );
    let mut query =
        match super::users::parse_query(&Params::parse(filters.as_bytes()), state.settings()) {
            Ok(q) => q,
            Err(e) => return Ok(redirect(&state, &back, "error", &e.detail)),
        };
    query.page = 1;
    let profile = &state.settings().import.profile_fields;
    let names = form.all("fields");
    let disabled = &state.settings().disabled_parts;
    let fields = if names.is_empty() {
        crate::parts::export_fields(disabled, exports::default_fields(profile))
    } else {
        match names
            .iter()
            .map(|n| ExportField::parse(n, profile))
            .collect::<Result<Vec<_>, _>>()
        {
            Ok(f) => f,
            Err(e) => return Ok(redirect(&state, &back, "error", &e.to_string())),
        }
    };
    if let Err(e) = crate::parts::check_export_fields(disabled, &fields) {
        return Ok(redirect(&state, &back, "error", &e.detail));
    }
    Ok(crate::api::exports::stream(
        &state,
        admin.actor.clone(),
        ExportRequest::new(fields, query),
    ))
}
