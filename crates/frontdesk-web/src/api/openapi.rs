//! The OpenAPI 3 document, generated from the handlers' annotations; the
//! errors every operation can answer are added here in one place.

use actix_web::{web, HttpResponse};
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::server::Server;
use utoipa::openapi::{
    Components, ContentBuilder, OpenApi as Document, Ref, RefOr, ResponseBuilder,
    SecurityRequirement,
};
use utoipa::{Modify, OpenApi};

use super::problem::{Problem, ProblemField};
use super::{
    activity, api_keys, audit, exports, groups, identity_providers, imports, invitations, licences,
    login_attempts, organizations, scim_tokens, sessions, sign_in, tags, users, users_create,
    ApiPrefix,
};
use crate::state::FrontdeskState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "frontdesk admin API",
        version = "1",
        description = "Manage the users, organizations, sessions and API keys of the host \
application. Authenticate with `Authorization: Bearer fdk_…` (an API key) or an admin's \
session cookie plus the `X-CSRF-Token` header on unsafe methods. Lists take `page` (from 1) \
and `limit` (1 to 100, default 50). Errors are `application/problem+json` with a stable `type`."
    ),
    paths(
        document,
        users::list,
        users::get,
        users::update,
        users::delete,
        users::suspend,
        users::restore,
        users::revoke_sessions,
        users_create::create,
        users_create::verify_email,
        users_create::resend_verification,
        users_create::create_in_org,
        users_create::org_verify_email,
        users_create::org_resend_verification,
        sessions::of_user,
        activity::of_user,
        activity::of_org_user,
        tags::assign,
        tags::unassign,
        sessions::list,
        sessions::revoke,
        login_attempts::list,
        organizations::list,
        organizations::create,
        organizations::get,
        organizations::update,
        organizations::delete,
        organizations::members,
        organizations::add_member,
        organizations::change_member,
        organizations::remove_member,
        organizations::users_list,
        organizations::user_get,
        organizations::user_revoke_sessions,
        groups::list,
        groups::create,
        groups::get,
        groups::update,
        groups::delete,
        groups::add_member,
        groups::change_members,
        groups::remove_member,
        licences::list,
        licences::assign_user,
        licences::remove_user,
        licences::assign_group,
        licences::remove_group,
        scim_tokens::list,
        scim_tokens::create,
        scim_tokens::revoke,
        identity_providers::get,
        identity_providers::put,
        identity_providers::delete,
        tags::list,
        tags::create,
        audit::list,
        imports::import,
        imports::template,
        imports::list,
        imports::get,
        exports::export,
        invitations::list,
        invitations::create,
        invitations::get,
        invitations::resend,
        invitations::cancel,
        api_keys::list,
        api_keys::create,
        api_keys::revoke,
        sign_in::sign_in,
        sign_in::second_step,
    ),
    components(schemas(Problem, ProblemField)),
    modifiers(&Errors),
    tags(
        (name = "users", description = "Every user the caller may see: list with filters, detail, change, suspend, restore, delete, create"),
        (name = "organization users", description = "The same, scoped to one organization (the path names it)"),
        (name = "organizations", description = "Organizations and their members"),
        (name = "groups", description = "An organization's groups and their members"),
        (name = "licences", description = "The host's licence types and their seats; licences given to members directly or through groups"),
        (name = "tags", description = "Labels on users"),
        (name = "sessions", description = "Signed-in sessions: list, revoke"),
        (name = "login attempts", description = "Every sign-in attempt, right or wrong"),
        (name = "invitations", description = "Invitations to join an organization: send, resend, cancel"),
        (name = "import and export", description = "Users in and out as CSV"),
        (name = "audit", description = "Who changed what"),
        (name = "api keys", description = "API keys, managed by a signed-in admin (a session, never a key)"),
        (name = "sign-in", description = "An admin's session (cookie and CSRF token) for the operations that take one"),
        (name = "meta", description = "This document"),
    ),
)]
pub struct ApiDoc;

/// The problem answers, as shared responses every operation refers to.
struct Errors;

pub(crate) const ERRORS: &[(&str, &str, &str)] = &[
    (
        "400",
        "BadRequest",
        "Invalid parameters or body (`errors` names each field), or a body over 1 MiB",
    ),
    (
        "401",
        "Unauthorized",
        "No API key or session, or the key is unknown or revoked",
    ),
    (
        "403",
        "Forbidden",
        "The caller's role does not allow this, or the CSRF token is missing",
    ),
    (
        "404",
        "NotFound",
        "No such record, or one the caller may not see",
    ),
    (
        "409",
        "Conflict",
        "Conflicts with existing data (duplicate, last owner, no licence seat left)",
    ),
    ("500", "Internal", "Server error"),
    (
        "503",
        "Unavailable",
        "The database is unavailable; try again",
    ),
];

fn operations(item: &mut utoipa::openapi::PathItem) -> Vec<(bool, &mut Operation)> {
    let mut ops = Vec::new();
    for (safe, op) in [
        (true, item.get.as_mut()),
        (false, item.put.as_mut()),
        (false, item.post.as_mut()),
        (false, item.delete.as_mut()),
        (false, item.patch.as_mut()),
    ] {
        if let Some(op) = op {
            ops.push((safe, op));
        }
    }
    ops
}

impl Modify for Errors {
    fn modify(&self, doc: &mut Document) {
        let components = doc.components.get_or_insert_with(Components::new);
        for (_, name, description) in ERRORS {
            let problem = ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build();
            components.responses.insert(
                (*name).to_owned(),
                RefOr::T(
                    ResponseBuilder::new()
                        .description(*description)
                        .content("application/problem+json", problem)
                        .build(),
                ),
            );
        }
        for (path, item) in doc.paths.paths.iter_mut() {
            let has_id = path.contains('{');
            for (safe, op) in operations(item) {
                for (status, name, _) in ERRORS {
                    let wanted = match *status {
                        "400" | "500" | "503" => true,
                        "401" | "403" => true,
                        "404" => has_id,
                        "409" => !safe,
                        _ => false,
                    };
                    if wanted {
                        op.responses
                            .responses
                            .entry((*status).to_owned())
                            .or_insert_with(|| {
                                RefOr::Ref(Ref::new(format!("#/components/responses/{name}")))
                            });
                    }
                }
            }
        }
    }
}

/// The document for an API mounted at `prefix`, with cookie names as `state` sets them.
pub fn document_for(prefix: &str, state: &FrontdeskState) -> Document {
    let mut doc = ApiDoc::openapi();
    doc.servers = Some(vec![Server::new(prefix)]);
    // The API is the host's: its callers ask the host's administrators.
    doc.info.contact = Some(
        utoipa::openapi::info::ContactBuilder::new()
            .name(Some("The administrators of this application"))
            .build(),
    );
    if let Some(d) = doc.info.description.as_mut() {
        d.push_str("\n\nProblem types: ");
        d.push_str(&super::problem::TYPES.join(", "));
        d.push('.');
    }
    let components = doc.components.get_or_insert_with(Components::new);
    components.add_security_scheme(
        "api_key",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some("An API key: `Authorization: Bearer fdk_…`"))
                .build(),
        ),
    );
    components.add_security_scheme(
        "session",
        SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
            state.session_cookie_name(),
            "An admin's session cookie (from signing in)",
        ))),
    );
    components.add_security_scheme(
        "csrf",
        SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
            crate::csrf::HEADER,
            "With the session cookie, on POST, PUT, PATCH and DELETE",
        ))),
    );
    doc.security = Some(vec![
        SecurityRequirement::new("api_key", Vec::<String>::new()),
        SecurityRequirement::new("session", Vec::<String>::new()).add("csrf", Vec::<String>::new()),
    ]);
    doc
}

/// `GET /openapi.json`: this API's description, for its callers only (an API
/// key or an admin's session): it maps the admin surface, which is nobody
/// else's business.
#[utoipa::path(
    get,
    path = "/openapi.json",
    operation_id = "openapi_document",
    tag = "meta",
    responses((status = 200, description = "The OpenAPI document", body = serde_json::Value))
)]
pub async fn document(
    _caller: super::auth::ApiActor,
    state: web::Data<FrontdeskState>,
    prefix: web::Data<ApiPrefix>,
) -> HttpResponse {
    let mut doc = serde_json::to_value(document_for(&prefix.0, &state)).unwrap_or_default();
    exclusive_fields(&mut doc);
    closed_values(&mut doc);
    open_objects(&mut doc);
    optional_bodies(&mut doc);
    declared_profile(&mut doc, &state.settings().import.profile_fields);
    declared_filters(&mut doc, state.settings());
    org_licence_filter(&mut doc, state.settings());
    super::extensions::describe(&mut doc, &state.settings().extensions);
    crate::parts::strip_openapi(&mut doc, &state.settings().disabled_parts);
    HttpResponse::Ok().json(doc)
}

/// The host's declared profile fields, by type, in every schema with a
/// `profile` object (undeclared keys stay allowed as before).
fn declared_profile(doc: &mut serde_json::Value, fields: &[frontdesk_core::profile::ProfileField]) {
    use frontdesk_core::profile::ProfileKind;
    use serde_json::json;
    if fields.is_empty() {
        return;
    }
    let props: serde_json::Map<String, serde_json::Value> = fields
        .iter()
        .map(|f| {
            let mut s = match &f.kind {
                ProfileKind::Text => {
                    json!({"type": "string", "maxLength": f.max_length.unwrap_or(2000).min(2000)})
                }
                ProfileKind::Choice { choices } => json!({"type": "string", "enum": choices}),
                ProfileKind::Boolean => json!({"type": "boolean"}),
                ProfileKind::Integer => {
                    let mut s = json!({"type": "integer"});
                    if let Some(m) = f.min {
                        s["minimum"] = json!(m);
                    }
                    if let Some(m) = f.max {
                        s["maximum"] = json!(m);
                    }
                    s
                }
                ProfileKind::Date => json!({"type": "string", "format": "date"}),
            };
            if !f.required {
                // Null or an empty string clears an optional field.
                s = json!({"anyOf": [s, {"type": "null"}, {"type": "string", "maxLength": 0}]});
            }
            s["title"] = json!(f.label);
            if let Some(h) = &f.help {
                s["description"] = json!(h);
            }
            (f.key.clone(), s)
        })
        .collect();
    if let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(|s| s.as_object_mut())
    {
        for schema in schemas.values_mut() {
            if let Some(p) = schema.pointer_mut("/properties/profile") {
                if p.is_object() && p.get("$ref").is_none() {
                    // Not `required`: users saved before a field was declared may lack it.
                    p["properties"] = serde_json::Value::Object(props.clone());
                }
            }
        }
    }
}

/// The host's declared users-list filters (`profile.<key>` for choice and
/// boolean profile fields, `ext.<id>.<name>` for extension filters) as query
/// parameters of the users list and the export, with their values.
fn declared_filters(doc: &mut serde_json::Value, settings: &crate::state::Settings) {
    use frontdesk_core::profile::ProfileKind;
    use serde_json::json;
    let mut params: Vec<serde_json::Value> = settings
        .import
        .profile_fields
        .iter()
        .filter(|f| f.filterable())
        .map(|f| {
            let schema = match &f.kind {
                ProfileKind::Choice { choices } => json!({"type": "string", "enum": choices}),
                _ => json!({"type": "boolean"}),
            };
            json!({
                "name": format!("profile.{}", f.key),
                "in": "query",
                "required": false,
                "description": format!("Only users whose profile field \"{}\" has this value.", f.label),
                "schema": schema,
            })
        })
        .collect();
    params.extend(settings.extensions.filters().into_iter().map(|(name, f)| {
        let values: Vec<&str> = f.choices.iter().map(|(v, _)| v.as_str()).collect();
        json!({
            "name": name,
            "in": "query",
            "required": false,
            "description": format!("{} (a filter of the host's extension).", f.label),
            "schema": {"type": "string", "enum": values},
        })
    }));
    if !settings.licences.is_empty() {
        let keys: Vec<&str> = settings.licences.iter().map(|l| l.key.as_str()).collect();
        params.push(json!({
            "name": crate::user_filters::LICENCE,
            "in": "query",
            "required": false,
            "description": "Only users holding this licence (directly or through a group) in the \
                filtered organization, else in any organization the caller may see.",
            "schema": {"type": "string", "enum": keys},
        }));
    }
    if params.is_empty() {
        return;
    }
    for path in ["/users", "/export"] {
        if let Some(list) = doc
            .pointer_mut(&format!(
                "/paths/{}/get/parameters",
                path.replace('/', "~1")
            ))
            .and_then(|p| p.as_array_mut())
        {
            list.extend(params.iter().cloned());
        }
    }
}

/// The organization's users list takes `licence` as well: one of the declared
/// keys (any other value is a 400), and no such parameter when the host
/// declares none.
fn org_licence_filter(doc: &mut serde_json::Value, settings: &crate::state::Settings) {
    let keys: Vec<&str> = settings.licences.iter().map(|l| l.key.as_str()).collect();
    let Some(list) = doc
        .pointer_mut("/paths/~1organizations~1{slug}~1users/get/parameters")
        .and_then(|p| p.as_array_mut())
    else {
        return;
    };
    let name = crate::user_filters::LICENCE;
    if keys.is_empty() {
        list.retain(|p| p["name"] != name);
        return;
    }
    for p in list.iter_mut().filter(|p| p["name"] == name) {
        p["schema"] = serde_json::json!({"type": "string", "enum": keys});
    }
}

/// Rules between fields that the derived schemas cannot state: a suspension
/// ends after `days` or at `suspended_until`, never both; a new user's `role`
/// needs an `organization` (the API answers 400).
fn exclusive_fields(doc: &mut serde_json::Value) {
    if let Some(body) = doc.pointer_mut("/components/schemas/NewUserBody") {
        // A role (not null) without an organization (absent or null).
        body["not"] = serde_json::json!({
            "required": ["role"],
            "properties": {"role": {"not": {"type": "null"}}},
            "not": {
                "required": ["organization"],
                "properties": {"organization": {"not": {"type": "null"}}}
            }
        });
    }
    if let Some(body) = doc.pointer_mut("/components/schemas/SuspendBody") {
        // Both given and not null.
        body["not"] = serde_json::json!({
            "required": ["days", "suspended_until"],
            "properties": {
                "days": {"type": "integer"},
                "suspended_until": {"type": "string"}
            }
        });
    }
}

/// Answer fields whose values come from a closed set, as named enum schemas
/// (generated clients get types for them), taken from the core's own lists so
/// that a new value shows up here by itself.
fn closed_values(doc: &mut serde_json::Value) {
    use frontdesk_core::import_jobs::JobStatus;
    use frontdesk_core::invitations::InvitationStatus;
    use frontdesk_core::login_attempts::{Method, Reason};
    use frontdesk_core::users::UserStatus;
    use frontdesk_core::{mfa, OrgRole, StaffRole};
    use serde_json::json;

    fn names<T: Copy>(all: &[T], name: fn(T) -> &'static str) -> Vec<&'static str> {
        all.iter().map(|v| name(*v)).collect()
    }
    let mut key_roles = names(StaffRole::ALL, StaffRole::as_str);
    key_roles.extend(names(OrgRole::ALL, OrgRole::as_str));
    key_roles.sort_unstable();
    key_roles.dedup();
    let sets: Vec<(&str, &str, Vec<&str>)> =
        vec![
        ("UserStatus", "A user's state.", names(UserStatus::ALL, UserStatus::as_str)),
        ("StaffRole", "A staff role.", names(StaffRole::ALL, StaffRole::as_str)),
        ("Role", "An organization role.", names(OrgRole::ALL, OrgRole::as_str)),
        (
            "KeyRole",
            "A staff role (site-wide keys) or an organization role (scoped keys).",
            key_roles,
        ),
        (
            "InvitationStatus",
            "An invitation's state as of now.",
            names(InvitationStatus::ALL, InvitationStatus::as_str),
        ),
        ("ImportStatus", "An import's state.", names(JobStatus::ALL, JobStatus::as_str)),
        (
            "LoginReason",
            "How a sign-in attempt ended (or the marker an admin's clearing of a lockout leaves).",
            names(Reason::ALL, Reason::as_str),
        ),
        (
            "SignInMethod",
            "How an attempt proved who it was.",
            names(Method::ALL, Method::as_str),
        ),
        ("FactorKind", "A second factor's kind.", names(mfa::Kind::ALL, mfa::Kind::as_str)),
        (
            "DeliveryStatus",
            "A queued mail's state.",
            frontdesk_core::outbox::STATUSES.to_vec(),
        ),
    ];
    let uses: &[(&str, &str, &str)] = &[
        ("UserOut", "status", "UserStatus"),
        ("UserOut", "staff_role", "StaffRole"),
        ("MembershipOut", "role", "Role"),
        ("MemberOut", "role", "Role"),
        ("GroupOut", "role", "Role"),
        ("InvitationOut", "role", "Role"),
        ("InvitationOut", "status", "InvitationStatus"),
        ("ApiKeyOut", "role", "KeyRole"),
        ("ImportOut", "status", "ImportStatus"),
        ("LoginAttemptOut", "reason", "LoginReason"),
        ("LoginAttemptOut", "method", "SignInMethod"),
        ("FactorOut", "kind", "FactorKind"),
        ("DeliveryOut", "status", "DeliveryStatus"),
    ];
    let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(|s| s.as_object_mut())
    else {
        return;
    };
    for (name, description, values) in sets {
        schemas.insert(
            name.to_owned(),
            json!({"type": "string", "description": description, "enum": values}),
        );
    }
    for (schema, field, set) in uses {
        let Some(prop) = schemas
            .get_mut(*schema)
            .and_then(|s| s.pointer_mut(&format!("/properties/{field}")))
        else {
            continue;
        };
        let nullable = prop["type"]
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t == "null"));
        let reference = json!({"$ref": format!("#/components/schemas/{set}")});
        let mut typed = if nullable {
            json!({"anyOf": [reference, {"type": "null"}]})
        } else {
            reference
        };
        for keep in ["description", "example"] {
            if let Some(v) = prop.get(keep) {
                typed[keep] = v.clone();
            }
        }
        *prop = typed;
    }
}

/// Free-form objects (`details`, `profile`) say that any key is allowed:
/// generators read a bare `type: object` as an empty one.
fn open_objects(doc: &mut serde_json::Value) {
    fn walk(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(o) => {
                let is_object = match o.get("type") {
                    Some(serde_json::Value::String(t)) => t == "object",
                    Some(serde_json::Value::Array(ts)) => ts.iter().any(|t| t == "object"),
                    _ => false,
                };
                if is_object
                    && !o.contains_key("properties")
                    && !o.contains_key("additionalProperties")
                {
                    o.insert("additionalProperties".into(), serde_json::Value::Bool(true));
                }
                o.values_mut().for_each(walk);
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(walk),
            _ => {}
        }
    }
    if let Some(c) = doc.get_mut("components") {
        walk(c);
    }
    if let Some(p) = doc.get_mut("paths") {
        walk(p);
    }
}

/// Request bodies as client generators read them: an optional body said so
/// plainly (a `oneOf` of null and the body makes them give up on the
/// operation), and the import's file as binary.
fn optional_bodies(doc: &mut serde_json::Value) {
    // The CSV as bytes: generators take `format: binary` for a file upload.
    let upload = "/paths/~1import/post/requestBody/content/application~1octet-stream";
    if let Some(bytes) = doc.pointer_mut(upload) {
        bytes["schema"] = serde_json::json!({"type": "string", "format": "binary"});
    }
    let pointer = "/paths/~1users~1{id}~1suspend/post/requestBody";
    if let Some(body) = doc.pointer_mut(pointer) {
        body["required"] = serde_json::json!(false);
        body["content"]["application/json"]["schema"] =
            serde_json::json!({"$ref": "#/components/schemas/SuspendBody"});
    }
}

/// How many profile fields the API takes in one update.
pub const MAX_PROFILE_FIELDS: usize = 50;

/// The profile object: at most 50 fields, field names of at most 100 characters without control
/// characters, string values of at most 2000 characters.
pub fn profile_schema() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Object, Type::Null]))
        .max_properties(Some(MAX_PROFILE_FIELDS))
        .property_names(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .max_length(Some(100))
                .pattern(Some(r"^[^\x00-\x1F\x7F-\x9F]*$")),
        ))
        .additional_properties(Some(
            ObjectBuilder::new()
                .schema_type(SchemaType::AnyValue)
                .max_length(Some(2000)),
        ))
        .build()
}

/// A list of lower-case email domains.
pub fn domains_schema() -> utoipa::openapi::schema::Array {
    domains_builder().build()
}

/// [`domains_schema`], or null (leave the list as it is).
pub fn domains_or_null_schema() -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{SchemaType, Type};
    domains_builder()
        .schema_type(SchemaType::from_iter([Type::Array, Type::Null]))
        .build()
}

fn domains_builder() -> utoipa::openapi::schema::ArrayBuilder {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
    ArrayBuilder::new()
        .items(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .max_length(Some(252))
                .pattern(Some(super::organizations::DOMAIN_PATTERN)),
        )
        .max_items(Some(100))
}
