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

/// Mints a key through the API with `minter`; returns (secret, id).
async fn mint(app: &common::TestApp, minter: &str, role: &str) -> (String, String) {
    let (status, created) = app
        .call(
            "POST",
            "/api/keys",
            Some(minter),
            Some(json!({"role": role, "name": format!("minted {role}")})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    (
        created["secret"].as_str().unwrap().to_string(),
        created["key"]["id"].as_str().unwrap().to_string(),
    )
}

async fn review(app: &common::TestApp, key: &str, id: &str) -> (StatusCode, serde_json::Value) {
    app.call(
        "POST",
        &format!("/api/gate/requests/{id}/review"),
        Some(key),
        Some(json!({"decision": "approve"})),
    )
    .await
}

/// Separation of duties covers keys a principal minted: an admin cannot
/// approve its own request with a reviewer key it minted, nor a request of
/// an agent key it minted.
#[tokio::test]
async fn an_admin_cannot_approve_through_keys_it_minted() {
    let app = app().await;
    let (status, own) = app
        .call(
            "POST",
            "/api/agent/tasks/t/requests",
            Some(&app.admin),
            Some(seed_gate_body()),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{own}");
    let own = own["id"].as_str().unwrap().to_string();
    let (reviewer, reviewer_id) = mint(&app, &app.admin, "reviewer").await;
    let (status, body) = review(&app, &reviewer, &own).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "self_review_forbidden");
    let (_, d) = app
        .call(
            "GET",
            &format!("/api/gate/requests/{own}"),
            Some(&app.admin),
            None,
        )
        .await;
    assert_eq!(d["status"], "pending_review");
    assert!(d.get("approval_token").is_none_or(|t| t.is_null()), "{d}");

    // A key minted by a minted key acts for the same principal.
    let (minted_admin, _) = mint(&app, &app.admin, "admin").await;
    let (agent, _) = mint(&app, &minted_admin, "agent").await;
    let (_, asked) = app
        .call(
            "POST",
            "/api/agent/tasks/t/requests",
            Some(&agent),
            Some(seed_gate_body()),
        )
        .await;
    let asked = asked["id"].as_str().unwrap().to_string();
    let (status, body) = review(&app, &reviewer, &asked).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    // A reviewer of another principal may.
    assert_eq!(review(&app, &app.reviewer, &asked).await.0, StatusCode::OK);
    // The minter is shown on the key.
    let (_, keys) = app.call("GET", "/api/keys", Some(&app.admin), None).await;
    let shown = keys["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == reviewer_id.as_str())
        .unwrap();
    assert!(shown["minted_by"].is_string(), "{shown}");
}

/// The last active admin key cannot be revoked through the API.
#[tokio::test]
async fn the_last_admin_key_cannot_be_revoked() {
    let app = app().await;
    let (_, me) = app.call("GET", "/api/whoami", Some(&app.admin), None).await;
    let admin_id = me["key_id"]
        .as_str()
        .unwrap_or_else(|| panic!("{me}"))
        .to_string();
    let (status, body) = app
        .call(
            "DELETE",
            &format!("/api/keys/{admin_id}"),
            Some(&app.admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "last_admin");
    assert_eq!(
        app.call("GET", "/api/whoami", Some(&app.admin), None)
            .await
            .0,
        StatusCode::OK,
        "still in force"
    );
    let (second, second_id) = mint(&app, &app.admin, "admin").await;
    let (status, _) = app
        .call(
            "DELETE",
            &format!("/api/keys/{admin_id}"),
            Some(&second),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = app
        .call(
            "DELETE",
            &format!("/api/keys/{second_id}"),
            Some(&second),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
}

#[tokio::test]
async fn key_names_are_never_empty() {
    let app = app().await;
    for name in ["", "   "] {
        let (status, body) = app
            .call(
                "POST",
                "/api/keys",
                Some(&app.admin),
                Some(json!({"role": "agent", "name": name})),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(body["error"]["code"], "validation_failed");
    }
}
