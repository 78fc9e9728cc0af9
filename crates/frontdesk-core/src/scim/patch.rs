//! PATCH (RFC 7644 §3.5.2) applied to a resource's JSON form: `add`,
//! `replace` and `remove`, with or without a path, in the forms directories
//! send (`"Replace"` capitalised, `"active": "False"` as a string, a
//! path-less value whose keys are paths such as `name.givenName`,
//! `emails[type eq "work"].value`, `members[value eq "12"]`).

use serde_json::{Map, Value};

use super::filter::{self, PatchPath};
use super::{ScimError, ScimResult, PATCH_SCHEMA};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Add,
    Replace,
    Remove,
}

/// Applies a PatchOp request body to `resource`.
pub fn apply(resource: &mut Value, body: &Value) -> ScimResult<()> {
    let schemas_ok = filter::get_ci(body, "schemas")
        .and_then(Value::as_array)
        .is_some_and(|s| s.iter().any(|s| s.as_str() == Some(PATCH_SCHEMA)));
    if !schemas_ok {
        return Err(ScimError::invalid_syntax(format!(
            "a PATCH body names the schema {PATCH_SCHEMA}"
        )));
    }
    let ops = filter::get_ci(body, "Operations")
        .and_then(Value::as_array)
        .ok_or_else(|| ScimError::invalid_syntax("a PATCH body has Operations"))?;
    for op in ops {
        let name = filter::get_ci(op, "op")
            .and_then(Value::as_str)
            .unwrap_or("");
        let kind = match name.to_ascii_lowercase().as_str() {
            "add" => Op::Add,
            "replace" => Op::Replace,
            "remove" => Op::Remove,
            _ => return Err(ScimError::invalid_syntax(format!("unknown op {name:?}"))),
        };
        let value = filter::get_ci(op, "value").cloned();
        let path = filter::get_ci(op, "path")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|p| !p.is_empty());
        match (path, kind) {
            (Some(p), _) => {
                let path = filter::parse_path(p).map_err(|e| ScimError::invalid_path(e.0))?;
                apply_at(resource, &path, kind, value)?;
            }
            (None, Op::Remove) => {
                return Err(ScimError::no_target("a remove operation needs a path"));
            }
            (None, _) => {
                let Some(Value::Object(map)) = value else {
                    return Err(ScimError::invalid_value(
                        "an operation without a path takes an object value",
                    ));
                };
                for (k, v) in map {
                    let path = filter::parse_path(&k).map_err(|e| ScimError::invalid_path(e.0))?;
                    apply_at(resource, &path, kind, Some(v))?;
                }
            }
        }
    }
    Ok(())
}

fn key_of(obj: &Map<String, Value>, name: &str) -> String {
    obj.keys()
        .find(|k| k.eq_ignore_ascii_case(name))
        .cloned()
        .unwrap_or_else(|| name.to_owned())
}

fn obj_mut(v: &mut Value) -> ScimResult<&mut Map<String, Value>> {
    if !v.is_object() {
        *v = Value::Object(Map::new());
    }
    v.as_object_mut()
        .ok_or_else(|| ScimError::invalid_value("not an object"))
}

fn apply_at(
    resource: &mut Value,
    path: &PatchPath,
    kind: Op,
    value: Option<Value>,
) -> ScimResult<()> {
    if kind != Op::Remove && value.is_none() {
        return Err(ScimError::invalid_value("the operation needs a value"));
    }
    let root = obj_mut(resource)?;
    let key = key_of(root, &path.attr.name);
    if let Some(f) = &path.filter {
        // Elements of a multi-valued attribute selected by a filter.
        let Some(Value::Array(items)) = root.get_mut(&key) else {
            return match kind {
                Op::Remove => Ok(()),
                _ => Err(ScimError::no_target(format!(
                    "no {} matches the path's filter",
                    path.attr.name
                ))),
            };
        };
        let matched: Vec<usize> = (0..items.len()).filter(|i| f.matches(&items[*i])).collect();
        if matched.is_empty() && kind != Op::Remove {
            return Err(ScimError::no_target(format!(
                "no {} matches the path's filter",
                path.attr.name
            )));
        }
        match (&path.sub_after_filter, kind) {
            (None, Op::Remove) => {
                let mut i = 0;
                items.retain(|_| {
                    let keep = !matched.contains(&i);
                    i += 1;
                    keep
                });
            }
            (None, _) => {
                for i in matched {
                    match (&mut items[i], &value) {
                        (Value::Object(item), Some(Value::Object(v))) if kind == Op::Add => {
                            for (k, v) in v {
                                let k2 = key_of(item, k);
                                item.insert(k2, v.clone());
                            }
                        }
                        (slot, Some(v)) => *slot = v.clone(),
                        _ => {}
                    }
                }
            }
            (Some(sub), _) => {
                for i in matched {
                    let item = obj_mut(&mut items[i])?;
                    let k = key_of(item, sub);
                    match (&value, kind) {
                        (_, Op::Remove) => {
                            item.remove(&k);
                        }
                        (Some(v), _) => {
                            item.insert(k, v.clone());
                        }
                        _ => {}
                    }
                }
            }
        }
        if matches!(root.get(&key), Some(Value::Array(a)) if a.is_empty()) {
            root.remove(&key);
        }
        return Ok(());
    }
    if let Some(sub) = &path.attr.sub {
        // `name.givenName`, or `emails.value` on every element.
        let target = root.entry(key.clone()).or_insert(Value::Null);
        match target {
            Value::Array(items) => {
                for item in items.iter_mut() {
                    let item = obj_mut(item)?;
                    let k = key_of(item, sub);
                    match (&value, kind) {
                        (_, Op::Remove) => {
                            item.remove(&k);
                        }
                        (Some(v), _) => {
                            item.insert(k, v.clone());
                        }
                        _ => {}
                    }
                }
            }
            other => {
                if kind == Op::Remove && other.is_null() {
                    root.remove(&key);
                    return Ok(());
                }
                let obj = obj_mut(other)?;
                let k = key_of(obj, sub);
                match value {
                    None => {
                        obj.remove(&k);
                    }
                    Some(v) => {
                        obj.insert(k, v);
                    }
                }
                if obj.is_empty() {
                    root.remove(&key);
                }
            }
        }
        return Ok(());
    }
    match (kind, value) {
        (Op::Remove, _) => {
            root.remove(&key);
        }
        (Op::Add, Some(Value::Array(new))) => {
            // Adding to a multi-valued attribute appends, skipping elements
            // already there.
            let slot = root.entry(key).or_insert_with(|| Value::Array(Vec::new()));
            if !slot.is_array() {
                *slot = Value::Array(Vec::new());
            }
            if let Value::Array(items) = slot {
                for v in new {
                    if !items.contains(&v) {
                        items.push(v);
                    }
                }
            }
        }
        (Op::Add, Some(Value::Object(new))) => {
            // Adding to a complex attribute sets the sub-attributes given.
            let slot = root.entry(key).or_insert(Value::Null);
            let obj = obj_mut(slot)?;
            for (k, v) in new {
                let k2 = key_of(obj, &k);
                obj.insert(k2, v);
            }
        }
        (_, Some(v)) => {
            root.insert(key, v);
        }
        (_, None) => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn patch(mut r: Value, ops: Value) -> ScimResult<Value> {
        apply(
            &mut r,
            &json!({"schemas": [PATCH_SCHEMA], "Operations": ops}),
        )?;
        Ok(r)
    }

    #[test]
    fn entra_id_forms() {
        let r = json!({"userName": "a", "active": true, "emails": [{"type": "work", "value": "a@x.test", "primary": true}]});
        let r = patch(
            r,
            json!([
                {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "b@x.test"},
                {"op": "Replace", "path": "active", "value": "False"},
                {"op": "Add", "path": "name.givenName", "value": "Bea"},
                {"op": "Replace", "value": {"displayName": "Bea B", "name.familyName": "B"}},
            ]),
        )
        .expect("patch");
        assert_eq!(r["emails"][0]["value"], "b@x.test");
        assert_eq!(r["active"], "False");
        assert_eq!(r["name"], json!({"givenName": "Bea", "familyName": "B"}));
        assert_eq!(r["displayName"], "Bea B");
    }

    #[test]
    fn members_add_and_remove() {
        let g = json!({"displayName": "g", "members": [{"value": "1"}]});
        let g = patch(
            g,
            json!([{"op": "add", "path": "members", "value": [{"value": "2"}, {"value": "1"}]}]),
        )
        .expect("add");
        assert_eq!(g["members"], json!([{"value": "1"}, {"value": "2"}]));
        let g = patch(
            g,
            json!([{"op": "remove", "path": "members[value eq \"1\"]"}]),
        )
        .expect("remove");
        assert_eq!(g["members"], json!([{"value": "2"}]));
        // Okta replaces the whole list.
        let g = patch(
            g,
            json!([{"op": "replace", "path": "members", "value": [{"value": "3"}]}]),
        )
        .expect("replace");
        assert_eq!(g["members"], json!([{"value": "3"}]));
        let g = patch(g, json!([{"op": "remove", "path": "members"}])).expect("remove all");
        assert!(g.get("members").is_none());
    }

    #[test]
    fn bad_requests_have_their_scim_type() {
        let r = json!({"userName": "a"});
        assert_eq!(
            patch(r.clone(), json!([{"op": "remove"}]))
                .map(|_| ())
                .expect_err("refused")
                .scim_type,
            Some("noTarget")
        );
        assert_eq!(
            patch(r.clone(), json!([{"op": "move", "path": "a"}]))
                .map(|_| ())
                .expect_err("refused")
                .scim_type,
            Some("invalidSyntax")
        );
        assert_eq!(
            patch(
                r.clone(),
                json!([{"op": "add", "path": "emails[", "value": 1}])
            )
            .map(|_| ())
            .expect_err("refused")
            .scim_type,
            Some("invalidPath")
        );
        assert_eq!(
            patch(
                r.clone(),
                json!([{"op": "replace", "path": "emails[type eq \"x\"].value", "value": "v"}])
            )
            .map(|_| ())
            .expect_err("refused")
            .scim_type,
            Some("noTarget")
        );
        let mut r2 = r;
        assert_eq!(
            apply(&mut r2, &json!({"Operations": []}))
                .expect_err("refused")
                .scim_type,
            Some("invalidSyntax")
        );
    }
}
