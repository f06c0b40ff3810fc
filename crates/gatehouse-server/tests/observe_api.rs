//! What operators see: request ids on answers and errors, and metrics.

mod common;

use axum::http::StatusCode;
use common::{app, pending, seed_gate_body};
use serde_json::json;

#[tokio::test]
async fn every_answer_has_a_request_id_and_errors_carry_it() {
    let app = app().await;
    let (status, headers, body) = app
        .call_raw("GET", "/api/decision/dec_nope", Some(&app.agent), None, &[])
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let id = headers["x-request-id"].to_str().unwrap().to_string();
    assert_eq!(id.len(), 26, "a ULID: {id}");
    assert_eq!(body["error"]["request_id"], id.as_str());
    // A caller's own id is kept when it is plain, so logs on both sides match.
    let (_, headers, body) = app
        .call_raw(
            "POST",
            "/api/agent/tasks/t/requests",
            None,
            Some("{}".into()),
            &[("x-request-id", "ci-run-42.step-3")],
        )
        .await;
    assert_eq!(headers["x-request-id"], "ci-run-42.step-3");
    assert_eq!(body["error"]["request_id"], "ci-run-42.step-3");
    // One that could forge a log line or a header is replaced.
    let (_, headers, _) = app
        .call_raw("GET", "/healthz", None, None, &[("x-request-id", "a b")])
        .await;
    assert_ne!(headers["x-request-id"], "a b");
}

#[tokio::test]
async fn metrics_need_an_admin_or_auditor_key_and_count_what_happened() {
    let app = app().await;
    let id = pending(&app).await;
    let mut low = seed_gate_body();
    low["risk_level"] = json!("low");
    app.call(
        "POST",
        "/api/agent/tasks/t/requests",
        Some(&app.agent),
        Some(low),
    )
    .await;
    app.call(
        "POST",
        &format!("/api/gate/requests/{id}/review"),
        Some(&app.reviewer),
        Some(json!({"decision": "approve"})),
    )
    .await;
    assert_eq!(
        app.call("GET", "/metrics", None, None).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (status, body) = app.call("GET", "/metrics", Some(&app.agent), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, _, _) = app
        .call_raw("GET", "/metrics", Some(&app.auditor), None, &[])
        .await;
    assert_eq!(status, StatusCode::OK);
    let text = metrics_text(&app, &app.admin).await;
    for line in [
        "gatehouse_decisions_total{verdict=\"pending_review\",action=\"default\"}",
        "gatehouse_decisions_total{verdict=\"allow\",action=\"default\"}",
        "gatehouse_time_to_review_seconds_count{resolution=\"approved\"}",
        "gatehouse_http_requests_total{method=\"POST\",route=\"/api/agent/tasks/{task_id}/requests\",status=\"201\"}",
        "gatehouse_http_request_duration_seconds_bucket{method=\"GET\",route=\"/metrics\",status=\"401\"",
        "gatehouse_store_batch_size_count{store=\"sqlite\"}",
        "gatehouse_store_commit_seconds_count{store=\"sqlite\"}",
        "gatehouse_pending_reviews ",
        "gatehouse_log_size ",
    ] {
        assert!(text.contains(line), "missing {line} in:\n{text}");
    }
}

/// The metrics page as text (the handler tests' JSON reader does not apply).
async fn metrics_text(app: &common::TestApp, key: &str) -> String {
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let req = axum::http::Request::builder()
        .uri("/metrics")
        .header("authorization", format!("Bearer {key}"))
        .body(axum::body::Body::empty())
        .unwrap();
    let response = app.router.clone().oneshot(req).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}
