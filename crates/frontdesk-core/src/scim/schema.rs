//! The discovery documents (RFC 7643 §5–7): what this service provider
//! supports, and the attributes it stores. Only attributes frontdesk keeps
//! are declared, so a directory never sends values that would be dropped.

use serde_json::{json, Value};

use super::{GROUP_SCHEMA, USER_SCHEMA};

fn attr(
    name: &str,
    ty: &str,
    multi: bool,
    required: bool,
    mutability: &str,
    unique: &str,
) -> Value {
    json!({
        "name": name,
        "type": ty,
        "multiValued": multi,
        "description": name,
        "required": required,
        "caseExact": false,
        "mutability": mutability,
        "returned": "default",
        "uniqueness": unique,
    })
}

fn complex(name: &str, multi: bool, mutability: &str, subs: Vec<Value>) -> Value {
    let mut a = attr(name, "complex", multi, false, mutability, "none");
    a["subAttributes"] = Value::Array(subs);
    a
}

pub(crate) fn user_schema(base: &str) -> Value {
    let mut user_name = attr("userName", "string", false, true, "readWrite", "server");
    user_name["description"] =
        json!("Unique identifier for the user in this organization, often an email address.");
    let mut ref_ = attr("$ref", "reference", false, false, "readOnly", "none");
    ref_["referenceTypes"] = json!(["User", "Group"]);
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
        "id": USER_SCHEMA,
        "name": "User",
        "description": "User Account",
        "attributes": [
            user_name,
            complex("name", false, "readWrite", vec![
                attr("givenName", "string", false, false, "readWrite", "none"),
                attr("familyName", "string", false, false, "readWrite", "none"),
            ]),
            attr("displayName", "string", false, false, "readWrite", "none"),
            attr("active", "boolean", false, false, "readWrite", "none"),
            complex("emails", true, "readWrite", vec![
                attr("value", "string", false, false, "readWrite", "none"),
                attr("type", "string", false, false, "readWrite", "none"),
                attr("primary", "boolean", false, false, "readWrite", "none"),
            ]),
            complex("groups", true, "readOnly", vec![
                attr("value", "string", false, false, "readOnly", "none"),
                ref_,
                attr("display", "string", false, false, "readOnly", "none"),
            ]),
        ],
        "meta": {"resourceType": "Schema", "location": format!("{base}/Schemas/{USER_SCHEMA}")},
    })
}

pub(crate) fn group_schema(base: &str) -> Value {
    let mut ref_ = attr("$ref", "reference", false, false, "immutable", "none");
    ref_["referenceTypes"] = json!(["User"]);
    let mut ty = attr("type", "string", false, false, "immutable", "none");
    ty["canonicalValues"] = json!(["User"]);
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
        "id": GROUP_SCHEMA,
        "name": "Group",
        "description": "Group",
        "attributes": [
            attr("displayName", "string", false, true, "readWrite", "server"),
            complex("members", true, "readWrite", vec![
                attr("value", "string", false, false, "immutable", "none"),
                ref_,
                ty,
            ]),
        ],
        "meta": {"resourceType": "Schema", "location": format!("{base}/Schemas/{GROUP_SCHEMA}")},
    })
}

/// The `/Schemas` resources: User and Group, with `meta.location` under `base`.
pub fn schemas(base: &str) -> Vec<Value> {
    vec![user_schema(base), group_schema(base)]
}

/// The `/ResourceTypes` resources: User and Group.
pub fn resource_types(base: &str) -> Vec<Value> {
    vec![
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
            "id": "User",
            "name": "User",
            "endpoint": "/Users",
            "description": "User Account",
            "schema": USER_SCHEMA,
            "meta": {"resourceType": "ResourceType", "location": format!("{base}/ResourceTypes/User")},
        }),
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
            "id": "Group",
            "name": "Group",
            "endpoint": "/Groups",
            "description": "Group",
            "schema": GROUP_SCHEMA,
            "meta": {"resourceType": "ResourceType", "location": format!("{base}/ResourceTypes/Group")},
        }),
    ]
}

/// The `/ServiceProviderConfig` resource: PATCH and filters supported, no
/// bulk; `docs` is its `documentationUri`.
pub fn service_provider_config(base: &str, docs: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        "documentationUri": docs,
        "patch": {"supported": true},
        "bulk": {"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": true, "maxResults": super::MAX_COUNT},
        "changePassword": {"supported": false},
        "sort": {"supported": false},
        "etag": {"supported": false},
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "Bearer token",
            "description": "A SCIM token of the organization, made on its directory-sync page or through the API.",
            "primary": true,
        }],
        "meta": {"resourceType": "ServiceProviderConfig", "location": format!("{base}/ServiceProviderConfig")},
    })
}
