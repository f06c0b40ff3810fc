//! Authentication, roles, revocation, visibility and rate limits.

mod common;
use axum::http::StatusCode;

use common::{app, app_with, pending, seed_gate_body};
use gatehouse_app::AppConfig;
use gatehouse_policy::starter_files;
use serde_json::json;

#[tokio::test]
async fn authentication_failures_are_401_and_roles_are_enforced() {
    let app = app().await;
    let path = "/api/agent/tasks/t/requests";
    let (status, body) = app.call("POST", path, None, Some(seed_gate_body())).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "unauthorized");
    let forged = format!("{}x", &app.agent[..app.agent.len() - 1]);
    assert_eq!(
        app.call("POST", path, Some(&forged), Some(seed_gate_body()))
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.call("POST", path, Some("garbage"), Some(seed_gate_body()))
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    // x-api-key works like Bearer.
    let (status, _, _) = app
        .call_raw(
            "POST",
            path,
            None,
            Some(seed_gate_body().to_string()),
            &[("x-api-key", app.agent.as_str())],
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    // Auditors read but never create; agents may not list or manage keys.
    assert_eq!(
        app.call("POST", path, Some(&app.auditor), Some(seed_gate_body()))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.call("GET", "/api/decisions", Some(&app.agent), None)
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.call("GET", "/api/keys", Some(&app.reviewer), None)
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    let (status, list) = app
        .call("GET", "/api/decisions", Some(&app.auditor), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn revoked_keys_stop_working() {
    let app = app().await;
    let (status, created) = app
        .call(
            "POST",
            "/api/keys",
            Some(&app.admin),
            Some(json!({"role": "agent", "name": "temp"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let secret = created["secret"].as_str().unwrap().to_string();
    assert!(
        created["key"].get("secret_hash").is_none(),
        "hash must never be returned"
    );
    assert_eq!(
        app.call("GET", "/api/whoami", Some(&secret), None).await.0,
        StatusCode::OK
    );
    let id = created["key"]["id"].as_str().unwrap();
    let (status, _) = app
        .call("DELETE", &format!("/api/keys/{id}"), Some(&app.admin), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.call("GET", "/api/whoami", Some(&secret), None).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.call("DELETE", "/api/keys/nope", Some(&app.admin), None)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn agents_only_see_their_own_decisions() {
    let app = app().await;
    let id = pending(&app).await;
    assert_eq!(
        app.call(
            "GET",
            &format!("/api/gate/requests/{id}"),
            Some(&app.agent),
            None
        )
        .await
        .0,
        StatusCode::OK
    );
    assert_eq!(
        app.call(
            "GET",
            &format!("/api/gate/requests/{id}"),
            Some(&app.agent2),
            None
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn rate_limit_answers_429_with_retry_after() {
    let app = app_with(
        starter_files(),
        AppConfig {
            rate_limit_per_second: 1,
            rate_limit_burst: 2,
            ..Default::default()
        },
    )
    .await;
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..4 {
        let (status, headers, body) = app
            .call_raw("GET", "/api/whoami", Some(&app.agent), None, &[])
            .await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(body["error"]["code"], "rate_limited");
            retry_after = headers
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_string());
        }
        statuses.push(status);
    }
    assert_eq!(&statuses[..2], &[StatusCode::OK, StatusCode::OK]);
    assert_eq!(statuses[3], StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(retry_after.as_deref(), Some("1"));
    // Limits are per key: another key is unaffected.
    assert_eq!(
        app.call("GET", "/api/whoami", Some(&app.agent2), None)
            .await
            .0,
        StatusCode::OK
    );
}
