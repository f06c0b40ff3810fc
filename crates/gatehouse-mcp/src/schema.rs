//! JSON Schemas for tool inputs and outputs, made from the same `utoipa`
//! derives that describe the HTTP API, so a tool and its route can never
//! disagree about a shape.

use std::sync::Arc;

use serde_json::{Map, Value};
use utoipa::openapi::{schema::Schema, RefOr};
use utoipa::ToSchema;

const OPENAPI_REF: &str = "#/components/schemas/";
const DEFS_REF: &str = "#/$defs/";

/// `T`'s schema as a standalone JSON Schema (2020-12) object: every type it
/// refers to is inlined under `$defs`, and the root is an object, as MCP
/// requires of tool input and output schemas.
pub fn object_schema<T: ToSchema>() -> Arc<Map<String, Value>> {
    let mut named: Vec<(String, RefOr<Schema>)> = Vec::new();
    T::schemas(&mut named);
    let mut root = to_json(&T::schema());
    if let Value::Object(r) = &mut root {
        if !named.is_empty() {
            let defs: Map<String, Value> = named
                .iter()
                .map(|(name, schema)| (name.clone(), to_json(schema)))
                .collect();
            r.insert("$defs".into(), Value::Object(defs));
        }
        r.entry("type").or_insert_with(|| "object".into());
        r.insert(
            "$schema".into(),
            "https://json-schema.org/draft/2020-12/schema".into(),
        );
    }
    let mut root = rewrite_refs(root);
    match root.take() {
        Value::Object(map) => Arc::new(map),
        // A derive always yields an object; an empty object accepts anything
        // rather than failing the whole tool list.
        _ => Arc::new(Map::new()),
    }
}

fn to_json(schema: &RefOr<Schema>) -> Value {
    serde_json::to_value(schema).unwrap_or_else(|_| Value::Object(Map::new()))
}

/// OpenAPI's `#/components/schemas/X` becomes `#/$defs/X`.
fn rewrite_refs(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| match (k.as_str(), v) {
                    ("$ref", Value::String(r)) if r.starts_with(OPENAPI_REF) => {
                        let name = &r[OPENAPI_REF.len()..];
                        (k, Value::String(format!("{DEFS_REF}{name}")))
                    }
                    (_, v) => (k, rewrite_refs(v)),
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(rewrite_refs).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_api::views::GateView;

    fn refs(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(m) => {
                for (k, v) in m {
                    if k == "$ref" {
                        out.push(v.as_str().unwrap_or_default().to_string());
                    }
                    refs(v, out);
                }
            }
            Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }

    #[test]
    fn every_reference_resolves_inside_the_schema() {
        let schema = Value::Object((*object_schema::<GateView>()).clone());
        assert_eq!(schema["type"], "object");
        let mut found = Vec::new();
        refs(&schema, &mut found);
        assert!(!found.is_empty(), "GateView refers to other types");
        for r in found {
            let name = r.strip_prefix(DEFS_REF).expect("rewritten to $defs");
            assert!(
                schema["$defs"].get(name).is_some(),
                "{name} is not in $defs"
            );
        }
    }
}
