//! Every error answer has the API's error body, including the ones the
//! HTTP layer gives before any handler runs, and the document lists every
//! status an operation can answer.

mod common;
use axum::http::StatusCode;

use common::app;
use serde_json::Value;

/// Checks the error shape: a stable code, a message and the request id
/// (the same as the `x-request-id` header).
fn assert_error(
    (status, headers, body): &(StatusCode, axum::http::HeaderMap, Value),
    want: StatusCode,
    code: &str,
) {
    assert_eq!(
        (*status, body["error"]["code"].as_str()),
        (want, Some(code)),
        "{body}"
    );
    assert!(body["error"]["message"]
        .as_str()
        .is_some_and(|m| !m.is_empty()));
    let id = headers.get("x-request-id").unwrap().to_str().unwrap();
    assert_eq!(body["error"]["request_id"], id, "{body}");
    assert_eq!(headers.get("content-type").unwrap(), "application/json");
}

#[tokio::test]
async fn framework_errors_have_the_json_error_body() {
    let app = app().await;
    let key = Some(app.agent.as_str());
    let answer = app.call_raw("GET", "/no/such/route", key, None, &[]).await;
    assert_error(&answer, StatusCode::NOT_FOUND, "not_found");

    let answer = app.call_raw("DELETE", "/healthz", None, None, &[]).await;
    assert_error(
        &answer,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    );
    let answer = app.call_raw("FROB", "/api/decide", key, None, &[]).await;
    assert_error(
        &answer,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    );

    // %FF is not UTF-8 once decoded.
    let answer = app
        .call_raw("GET", "/api/decision/%FF%FE", key, None, &[])
        .await;
    assert_error(&answer, StatusCode::BAD_REQUEST, "bad_request");

    let long = format!("/api/decisions?status={}", "a".repeat(9 * 1024));
    let answer = app.call_raw("GET", &long, key, None, &[]).await;
    assert_error(&answer, StatusCode::URI_TOO_LONG, "uri_too_long");

    let many: Vec<(String, String)> = (0..70).map(|i| (format!("x-h{i}"), "v".into())).collect();
    let many: Vec<(&str, &str)> = many.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    let answer = app.call_raw("GET", "/api/whoami", key, None, &many).await;
    assert_error(
        &answer,
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        "headers_too_large",
    );
    let big = "v".repeat(33 * 1024);
    let answer = app
        .call_raw("GET", "/api/whoami", key, None, &[("x-big", &big)])
        .await;
    assert_error(
        &answer,
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        "headers_too_large",
    );

    let answer = app
        .call_raw(
            "POST",
            "/api/decide",
            key,
            None,
            &[("content-type", "text/plain")],
        )
        .await;
    assert_error(
        &answer,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    );
    let huge = format!("{{\"question\": \"{}\"}}", "x".repeat(300 * 1024));
    let answer = app
        .call_raw("POST", "/api/decide", key, Some(huge), &[])
        .await;
    assert_error(&answer, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
}

#[tokio::test]
async fn every_operation_documents_every_status_it_can_answer() {
    let app = app().await;
    let (_, doc) = app.call("GET", "/openapi.json", None, None).await;
    let mut operations = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            operations += 1;
            let answers = op["responses"].as_object().unwrap();
            let mut required = vec!["400", "414", "431", "500", "503"];
            if op.get("requestBody").is_some() {
                required.extend(["408", "413", "415"]);
                // Unknown fields are refused, and the document says so.
                let schema = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
                    .as_str()
                    .unwrap()
                    .rsplit('/')
                    .next()
                    .unwrap();
                assert_eq!(
                    doc["components"]["schemas"][schema]["additionalProperties"],
                    Value::Bool(false),
                    "{schema}"
                );
            }
            for status in required {
                assert!(
                    answers.contains_key(status),
                    "{method} {path} lacks {status}"
                );
            }
            let outage = &answers["503"];
            assert!(
                outage["headers"].get("Retry-After").is_some()
                    || outage["description"]
                        .as_str()
                        .unwrap()
                        .contains("Retry-After"),
                "{method} {path}: {outage}"
            );
        }
    }
    assert!(operations > 30);
}
