//! Checks every response the handler tests see against the generated
//! OpenAPI document: the route must list the status, and a JSON body must
//! validate against the schema the document gives for it.

use std::sync::OnceLock;

use serde_json::{json, Value};

struct Contract {
    doc: Value,
}

fn contract() -> &'static Contract {
    static CONTRACT: OnceLock<Contract> = OnceLock::new();
    CONTRACT.get_or_init(|| Contract {
        doc: serde_json::from_str(gatehouse_server::openapi::json()).expect("the document is JSON"),
    })
}

/// The document's path template that `path` matches, if any.
fn template<'a>(doc: &'a Value, path: &str) -> Option<&'a str> {
    let segments: Vec<&str> = path.split('/').collect();
    doc["paths"].as_object()?.keys().find_map(|t| {
        let parts: Vec<&str> = t.split('/').collect();
        let matches = parts.len() == segments.len()
            && parts
                .iter()
                .zip(&segments)
                .all(|(p, s)| (p.starts_with('{') && p.ends_with('}') && !s.is_empty()) || p == s);
        matches.then_some(t.as_str())
    })
}

fn validate(schema: &Value, body: &Value, what: &str) {
    // The schema's references point into the document's components; give
    // the validator a root that holds them.
    let mut root = schema.clone();
    if let Some(obj) = root.as_object_mut() {
        obj.insert("components".into(), contract().doc["components"].clone());
    } else {
        root = json!({"allOf": [schema], "components": contract().doc["components"]});
    }
    let validator = jsonschema::validator_for(&root)
        .unwrap_or_else(|e| panic!("{what}: the document's schema does not compile: {e}"));
    let errors: Vec<String> = validator
        .iter_errors(body)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{what}: the response does not match the document:\n{}\nbody: {body}",
        errors.join("\n")
    );
}

/// Panics unless the response is one the document describes.
pub fn check(method: &str, uri: &str, status: u16, content_type: Option<&str>, body: &Value) {
    let doc = &contract().doc;
    let path = uri.split('?').next().unwrap_or(uri);
    let what = format!("{method} {path} → {status}");
    let operation = template(doc, path)
        .map(|t| &doc["paths"][t][method.to_ascii_lowercase()])
        .filter(|op| op.is_object());
    let Some(operation) = operation else {
        // Unknown routes and methods answer from the fallbacks, in the one
        // error shape.
        assert!(status == 404 || status == 405, "{what}: undocumented route");
        validate(
            &json!({"$ref": "#/components/schemas/ErrorBody"}),
            body,
            &what,
        );
        return;
    };
    let response = &operation["responses"][status.to_string()];
    assert!(
        response.is_object(),
        "{what}: the document does not list this status for the route"
    );
    let is_json = content_type.is_some_and(|c| c.starts_with("application/json"));
    match (&response["content"]["application/json"]["schema"], is_json) {
        (schema, true) if schema.is_object() => validate(schema, body, &what),
        (_, true) => panic!("{what}: answered JSON where the document lists none"),
        _ => {}
    }
}
