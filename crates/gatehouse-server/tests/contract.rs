//! The API contract: the committed `openapi/gatehouse.json` is exactly what
//! the code generates, and the document is self-contained.

use std::path::PathBuf;

use serde_json::Value;

fn committed_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../openapi/gatehouse.json")
}

#[test]
fn the_committed_document_is_the_generated_one() {
    let generated = format!("{}\n", gatehouse_server::openapi::json());
    let committed = std::fs::read_to_string(committed_path()).unwrap_or_default();
    assert!(
        committed == generated,
        "openapi/gatehouse.json is not what the code generates; run scripts/openapi and commit it"
    );
}

#[test]
fn every_reference_resolves_and_every_operation_documents_its_errors() {
    let doc: Value = serde_json::from_str(gatehouse_server::openapi::json()).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let text = doc.to_string();
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for reference in text.split("\"$ref\":\"").skip(1) {
        let target = reference.split('"').next().unwrap();
        let name = target
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("unexpected reference {target}"));
        assert!(schemas.contains_key(name), "dangling reference {target}");
    }
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let responses = op["responses"].as_object().unwrap();
            assert!(
                responses.keys().any(|s| s.starts_with('2')),
                "{method} {path} has no success response"
            );
            for status in ["500", "503"] {
                if path != "/healthz" && path != "/openapi.json" && path != "/api/log/key" {
                    assert!(
                        responses.contains_key(status),
                        "{method} {path} does not document {status}"
                    );
                }
            }
            if op.get("security").is_some() {
                for status in ["401", "403", "429"] {
                    assert!(
                        responses.contains_key(status),
                        "{method} {path} needs a key but does not document {status}"
                    );
                }
            }
            for (status, response) in responses {
                if status.starts_with('4') || status.starts_with('5') {
                    assert_eq!(
                        response["content"]["application/json"]["schema"]["$ref"],
                        "#/components/schemas/ErrorBody",
                        "{method} {path} {status} is not in the error shape"
                    );
                }
            }
        }
    }
}

mod common;

/// The response check the handler tests rely on refuses what the document
/// does not describe.
#[test]
#[should_panic(expected = "does not match the document")]
fn a_response_that_breaks_its_schema_is_caught() {
    let body = serde_json::json!({"status": 42});
    common::contract::check("GET", "/healthz", 200, Some("application/json"), &body);
}

#[test]
#[should_panic(expected = "does not list this status")]
fn an_undocumented_status_is_caught() {
    let body = serde_json::json!({"error": {"code": "conflict", "message": "m"}});
    common::contract::check("GET", "/api/whoami", 409, Some("application/json"), &body);
}

#[test]
fn a_documented_error_passes() {
    let body = serde_json::json!({"error": {"code": "not_found", "message": "decision not found"}});
    common::contract::check(
        "GET",
        "/api/gate/requests/dec_1?wait=5",
        404,
        Some("application/json"),
        &body,
    );
}
