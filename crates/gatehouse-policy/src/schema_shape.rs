//! What each action's context looks like, read from the schema's JSON form.
//!
//! Cedar rejects a context attribute the schema does not declare, and the
//! Gate API accepts free-form payloads. So the engine passes Cedar only the
//! attributes an action declares (top level and one level into `payload`);
//! undeclared payload fields are stored but cannot influence a verdict.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

#[derive(Debug, Clone, Default)]
pub struct ActionShape {
    pub principal_type: String,
    pub resource_type: String,
    pub context_attrs: HashSet<String>,
    /// `None` when `payload` is not a record (or not declared).
    pub payload_attrs: Option<HashSet<String>>,
}

/// Action name (without namespace) → its shape, plus the namespace prefix.
pub fn action_shapes(schema_json: &Value) -> (String, HashMap<String, ActionShape>) {
    let mut shapes = HashMap::new();
    let mut namespace = String::new();
    let Some(namespaces) = schema_json.as_object() else {
        return (namespace, shapes);
    };
    for (ns, body) in namespaces {
        let common = body.get("commonTypes").cloned().unwrap_or(Value::Null);
        let qualify = |t: &str| {
            if ns.is_empty() || t.contains("::") {
                t.to_string()
            } else {
                format!("{ns}::{t}")
            }
        };
        let Some(actions) = body.get("actions").and_then(Value::as_object) else {
            continue;
        };
        if !actions.is_empty() {
            namespace = ns.clone();
        }
        for (name, action) in actions {
            let applies = action.get("appliesTo").cloned().unwrap_or(Value::Null);
            let first = |key: &str| {
                applies
                    .get(key)
                    .and_then(Value::as_array)
                    .and_then(|a| a.first())
                    .and_then(Value::as_str)
                    .map(&qualify)
                    .unwrap_or_default()
            };
            let context = applies
                .get("context")
                .map(|c| resolve(c, &common))
                .unwrap_or(Value::Null);
            let attrs = context.get("attributes").and_then(Value::as_object);
            let context_attrs = attrs
                .map(|a| a.keys().cloned().collect())
                .unwrap_or_default();
            let payload_attrs = attrs
                .and_then(|a| a.get("payload"))
                .map(|p| resolve(p, &common))
                .filter(|p| p.get("type").and_then(Value::as_str) == Some("Record"))
                .map(|p| {
                    p.get("attributes")
                        .and_then(Value::as_object)
                        .map(|a| a.keys().cloned().collect())
                        .unwrap_or_default()
                });
            shapes.insert(
                name.clone(),
                ActionShape {
                    principal_type: first("principalTypes"),
                    resource_type: first("resourceTypes"),
                    context_attrs,
                    payload_attrs,
                },
            );
        }
    }
    (namespace, shapes)
}

/// Follows one reference to a common type (`{"type": "Name"}` or
/// `{"type": "EntityOrCommon", "name": "Name"}`).
fn resolve(ty: &Value, common: &Value) -> Value {
    let name = match ty.get("type").and_then(Value::as_str) {
        Some("EntityOrCommon") => ty.get("name").and_then(Value::as_str),
        Some("Record") | Some("Set") | Some("Long") | Some("String") | Some("Boolean")
        | Some("Entity") | Some("Extension") => None,
        other => other,
    };
    match name.and_then(|n| common.get(n)) {
        Some(found) => found.clone(),
        None => ty.clone(),
    }
}
