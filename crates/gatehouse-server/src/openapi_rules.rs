//! The input rules the server enforces, written into the generated
//! document where the derive cannot state them: names (not blank, at most
//! 200 characters, no control characters), text limits, the risk levels,
//! the ranges of proof parameters, and that no text anywhere, keys of
//! free-form objects included, holds the NUL character (PostgreSQL cannot
//! store it). A client or a fuzzer reading the document then knows exactly
//! which inputs are accepted; `crates/gatehouse/tests/e2e/contract.rs`
//! holds the server to it.
//!
//! Rules the document cannot state (a token's signature, a payload's
//! types under the operator's policy schema, a proof index below the size
//! it is asked for) are listed in `schemathesis.toml` with their reasons.

use gatehouse_api::requests::{MAX_NAME_LEN, MAX_SUMMARY_ITEMS, MAX_TEXT_LEN};
use serde_json::{json, Value};

/// Text without the NUL character.
const NUL_FREE: &str = "^[^\\u0000]*$";
/// Text with something besides whitespace, and without NUL.
const NOT_BLANK: &str = "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$";
/// A name: something besides whitespace, and no control character.
const NAME: &str = "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$";
/// A user name: 1 to 64 letters, digits, `.`, `_`, `-` or `@`, starting
/// with a letter or digit.
const USER_NAME: &str = "^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$";
/// A group name: as a user name, without `@`.
const GROUP: &str = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$";
/// An email address as the server checks it: something, `@`, something,
/// no whitespace or control character.
const EMAIL: &str =
    "^[^\\s@\\u0000-\\u001f\\u007f-\\u009f]+@[^\\s\\u0000-\\u001f\\u007f-\\u009f]+$";
/// A JWS in compact form: three base64url segments.
const JWS: &str = "^[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]*$";

fn name() -> Value {
    json!({"minLength": 1, "maxLength": MAX_NAME_LEN, "pattern": NAME})
}

fn text() -> Value {
    json!({"maxLength": MAX_TEXT_LEN, "pattern": NUL_FREE})
}

fn risk() -> Value {
    json!({"enum": ["low", "medium", "high"]})
}

/// Merges `rule` into the property `field` of the component `schema`.
fn rule(doc: &mut Value, schema: &str, field: &str, rule: Value) {
    let property = &mut doc["components"]["schemas"][schema]["properties"][field];
    assert!(
        property.is_object(),
        "the input rules name {schema}.{field}, which the document lacks"
    );
    merge(property, rule);
}

fn merge(target: &mut Value, rule: Value) {
    if let (Some(target), Value::Object(rule)) = (target.as_object_mut(), rule) {
        for (k, v) in rule {
            target.insert(k, v);
        }
    }
}

pub(crate) fn apply(doc: &mut Value) {
    doc["components"]["schemas"]["JsonValue"] = json!({
        "description": "Any JSON value whose text, keys included, holds no NUL character.",
        "anyOf": [
            {"type": "string", "pattern": NUL_FREE},
            {"type": ["number", "boolean", "null"]},
            {"type": "array", "items": {"$ref": "#/components/schemas/JsonValue"}},
            {"type": "object", "propertyNames": {"pattern": NUL_FREE},
             "additionalProperties": {"$ref": "#/components/schemas/JsonValue"}}
        ]
    });
    for body in ["GateBody", "SdkGateBody"] {
        let names: &[&str] = if body == "GateBody" {
            &["workflow_name", "tool_name", "subject"]
        } else {
            &["agent", "action", "subject", "task_id"]
        };
        for field in names {
            rule(doc, body, field, name());
        }
        let risk_field = if body == "GateBody" {
            "risk_level"
        } else {
            "risk"
        };
        rule(doc, body, risk_field, risk());
        rule(
            doc,
            body,
            "summary",
            json!({"maxItems": MAX_SUMMARY_ITEMS, "items": {"type": "string", "maxLength": MAX_TEXT_LEN, "pattern": NUL_FREE}}),
        );
        rule(
            doc,
            body,
            "idempotency_key",
            json!({"minLength": 1, "maxLength": 200}),
        );
    }
    for field in ["task_label", "preview"] {
        rule(doc, "GateBody", field, text());
    }
    rule(doc, "DecideBody", "question", text());
    rule(doc, "DecideBody", "mode", json!({"enum": ["single", null]}));
    rule(
        doc,
        "DecideBody",
        "idempotency_key",
        json!({"minLength": 1, "maxLength": 200}),
    );
    let nullable_name = |n: Value| {
        let mut n = n;
        n["type"] = json!(["string", "null"]);
        n
    };
    rule(
        doc,
        "DecideBody",
        "context",
        json!({
            "required": ["workflow", "requested_action"],
            "properties": {
                "workflow": merged(json!({"type": "string"}), name()),
                "requested_action": merged(json!({"type": "string"}), name()),
                "source_record_id": nullable_name(name()),
                "task_id": nullable_name(name()),
                "owner_rule": {"type": ["string", "null"], "pattern": NUL_FREE},
                "risk": {"enum": ["low", "medium", "high", null]},
                "evidence": {"type": ["array", "null"], "items": {"$ref": "#/components/schemas/JsonValue"}}
            },
            "propertyNames": {"pattern": NUL_FREE},
            "additionalProperties": {"$ref": "#/components/schemas/JsonValue"}
        }),
    );
    rule(
        doc,
        "EventBody",
        "kind",
        json!({"minLength": 1, "maxLength": 100, "pattern": NOT_BLANK}),
    );
    rule(doc, "EventBody", "message", text());
    rule(doc, "ReviewBody", "comment", text());
    rule(doc, "OutcomeBody", "action_taken", text());
    rule(
        doc,
        "NewKeyBody",
        "name",
        json!({"minLength": 1, "maxLength": MAX_NAME_LEN, "pattern": NOT_BLANK}),
    );
    rule(doc, "RedeemBody", "token", json!({"pattern": JWS}));
    people(doc);
    notifications(doc);
    hooks(doc);
    screen(doc);
    parameters(doc);
    nul_free(doc);
}

/// Users, groups, passwords, and the owner group a request names.
fn people(doc: &mut Value) {
    let user_name = json!({"pattern": USER_NAME});
    let group = json!({"type": "string", "pattern": GROUP});
    let groups = json!({"maxItems": 64, "items": group});
    let password = json!({"minLength": 8, "maxLength": 1024, "pattern": NUL_FREE});
    rule(doc, "NewUserBody", "name", user_name.clone());
    rule(
        doc,
        "NewUserBody",
        "role",
        json!({"enum": ["reviewer", "auditor", "admin"]}),
    );
    rule(doc, "NewUserBody", "groups", groups.clone());
    rule(doc, "NewUserBody", "password", password.clone());
    rule(
        doc,
        "NewUserBody",
        "email",
        json!({"maxLength": 254, "pattern": EMAIL}),
    );
    rule(
        doc,
        "NewUserBody",
        "slack_user_id",
        json!({"pattern": "^[UW][A-Z0-9]{2,23}$"}),
    );
    rule(doc, "GroupsBody", "groups", groups);
    rule(doc, "PasswordBody", "password", password);
    rule(doc, "NewKeyBody", "user", user_name);
    for body in ["GateBody", "SdkGateBody"] {
        rule(doc, body, "owner", name());
    }
}

/// Webhook subscriptions: a plain http(s) URL the server can parse, and
/// event names from the catalogue.
fn notifications(doc: &mut Value) {
    rule(
        doc,
        "WebhookBody",
        "url",
        json!({"maxLength": 2048,
               "pattern": "^https?://[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*(:[1-9][0-9]{0,3})?(/[A-Za-z0-9._~/-]*)?$"}),
    );
    rule(
        doc,
        "WebhookBody",
        "events",
        json!({"minItems": 1, "maxItems": 64,
               "items": {"type": "string", "enum": gatehouse_app::notice::EVENT_TYPES}}),
    );
}

/// A hook's name, and its scope: a workflow and 1 to 50 distinct actions,
/// each a name.
fn screen(doc: &mut Value) {
    rule(doc, "ScreenBody", "agent", name());
    rule(
        doc,
        "ScreenBody",
        "actions",
        json!({"maxItems": gatehouse_api::screen::MAX_SCREENED_ACTIONS,
               "items": merged(json!({"type": "string"}), name())}),
    );
}

fn hooks(doc: &mut Value) {
    rule(
        doc,
        "NewHookBody",
        "name",
        json!({"pattern": "^[A-Za-z0-9._-]{1,64}$"}),
    );
    rule(doc, "NewHookBody", "workflow", name());
    rule(
        doc,
        "NewHookBody",
        "actions",
        json!({"minItems": 1, "maxItems": 50, "uniqueItems": true,
               "items": merged(json!({"type": "string"}), name())}),
    );
}

fn merged(mut a: Value, b: Value) -> Value {
    merge(&mut a, b);
    a
}

/// Rules of path, query and header parameters.
fn parameters(doc: &mut Value) {
    let Some(paths) = doc["paths"].as_object_mut() else {
        return;
    };
    for item in paths.values_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for op in item.values_mut() {
            let Some(params) = op.get_mut("parameters").and_then(Value::as_array_mut) else {
                continue;
            };
            for p in params {
                let rule = match (p["name"].as_str(), p["in"].as_str()) {
                    (Some("task_id"), Some("path")) => name(),
                    (Some("Idempotency-Key"), Some("header")) => {
                        json!({"minLength": 1, "maxLength": 200, "pattern": "^[\\t -~]*[!-~][\\t -~]*$"})
                    }
                    (Some("size" | "to" | "from"), Some("query")) => json!({"minimum": 1}),
                    _ => continue,
                };
                merge(&mut p["schema"], rule);
            }
        }
    }
}

/// Every string without a pattern, an enum or a format gets the NUL-free
/// pattern, and every free-form object or value takes [`JsonValue`]s.
fn nul_free(doc: &mut Value) {
    if let Some(schemas) = doc["components"]["schemas"].as_object_mut() {
        for (name, schema) in schemas.iter_mut() {
            if name != "JsonValue" {
                walk(schema);
            }
        }
    }
    if let Some(paths) = doc["paths"].as_object_mut() {
        for item in paths.values_mut().filter_map(Value::as_object_mut) {
            for op in item.values_mut() {
                if let Some(params) = op.get_mut("parameters").and_then(Value::as_array_mut) {
                    for p in params {
                        walk(&mut p["schema"]);
                    }
                }
            }
        }
    }
}

fn walk(schema: &mut Value) {
    let Some(map) = schema.as_object_mut() else {
        return;
    };
    if map.is_empty() {
        // `{}`: any value at all.
        map.insert("$ref".into(), json!("#/components/schemas/JsonValue"));
        return;
    }
    let types: Vec<String> = match map.get("type") {
        Some(Value::String(t)) => vec![t.clone()],
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(|t| t.as_str().map(String::from))
            .collect(),
        _ => Vec::new(),
    };
    let open_text = ["pattern", "enum", "format"]
        .iter()
        .all(|k| !map.contains_key(*k));
    if types.iter().any(|t| t == "string") && open_text {
        map.insert("pattern".into(), json!(NUL_FREE));
    }
    if types.iter().any(|t| t == "object") && !map.contains_key("properties") {
        map.insert("propertyNames".into(), json!({"pattern": NUL_FREE}));
        map.insert(
            "additionalProperties".into(),
            json!({"$ref": "#/components/schemas/JsonValue"}),
        );
    }
    for key in ["items", "additionalProperties"] {
        if let Some(inner) = map.get_mut(key) {
            if !inner.is_boolean() && inner.get("$ref").is_none() {
                walk(inner);
            }
        }
    }
    if let Some(props) = map.get_mut("properties").and_then(Value::as_object_mut) {
        for p in props.values_mut() {
            walk(p);
        }
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        if let Some(list) = map.get_mut(key).and_then(Value::as_array_mut) {
            for s in list {
                walk(s);
            }
        }
    }
}
