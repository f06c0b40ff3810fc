//! Webhook subscriptions, deliveries and callback URLs through the router.

mod common;
use axum::http::StatusCode;

use common::{app, app_with, seed_gate_body, seed_policies};
use gatehouse_app::callbacks::CallbackAllowlist;
use gatehouse_app::AppConfig;
use serde_json::json;

#[tokio::test]
async fn admins_manage_webhooks() {
    let app = app().await;
    let body = json!({"url": "https://hooks.example.com/gh", "events": ["decision.resolved", "decision.created", "decision.resolved"]});
    let (status, _) = app
        .call(
            "POST",
            "/api/webhooks",
            Some(&app.reviewer),
            Some(body.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, created) = app
        .call("POST", "/api/webhooks", Some(&app.admin), Some(body))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert!(created["secret"].as_str().unwrap().starts_with("whsec_"));
    // In catalogue order, without repeats.
    assert_eq!(
        created["webhook"]["events"],
        json!(["decision.created", "decision.resolved"])
    );
    let id = created["webhook"]["id"].as_str().unwrap().to_string();
    let (status, list) = app
        .call("GET", "/api/webhooks", Some(&app.admin), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["items"][0]["id"], id.as_str());
    assert!(
        list["items"][0].get("secret").is_none(),
        "the secret is shown once: {list}"
    );

    for (bad, needle) in [
        (
            json!({"url": "ftp://hooks.example.com/x", "events": ["decision.created"]}),
            "http",
        ),
        (
            json!({"url": "https://u:p@hooks.example.com/x", "events": ["decision.created"]}),
            "credentials",
        ),
        (
            json!({"url": "https://0*/x", "events": ["decision.created"]}),
            "host",
        ),
        (
            json!({"url": "https://hooks.example.com/x", "events": []}),
            "at least one",
        ),
        (
            json!({"url": "https://hooks.example.com/x", "events": ["decision.made"]}),
            "unknown event",
        ),
    ] {
        let (status, out) = app
            .call("POST", "/api/webhooks", Some(&app.admin), Some(bad))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{out}");
        assert!(
            out["error"]["message"].as_str().unwrap().contains(needle),
            "{needle}: {out}"
        );
    }
    let (status, _) = app
        .call(
            "DELETE",
            &format!("/api/webhooks/{id}"),
            Some(&app.admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, out) = app
        .call(
            "DELETE",
            &format!("/api/webhooks/{id}"),
            Some(&app.admin),
            None,
        )
        .await;
    assert_eq!(
        (status, out["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
}

#[tokio::test]
async fn deliveries_are_read_by_admins_and_auditors() {
    let app = app().await;
    let (status, list) = app
        .call("GET", "/api/deliveries", Some(&app.auditor), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["items"], json!([]));
    let (status, _) = app
        .call("GET", "/api/deliveries", Some(&app.agent), None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, out) = app
        .call("GET", "/api/deliveries?limit=0", Some(&app.admin), None)
        .await;
    assert_eq!(
        (status, out["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("bad_request"))
    );
    let (status, _) = app
        .call("GET", "/api/deliveries?status=lost", Some(&app.admin), None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = app
        .call("GET", "/api/deliveries/msg_nope", Some(&app.admin), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app
        .call(
            "POST",
            "/api/deliveries/msg_nope/retry",
            Some(&app.auditor),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app
        .call(
            "POST",
            "/api/deliveries/msg_nope/retry",
            Some(&app.admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn callback_urls_must_be_allowed() {
    let config = AppConfig {
        callbacks: CallbackAllowlist::parse(&["hooks.example.com".into(), "10.9.0.0/16".into()])
            .unwrap(),
        ..AppConfig::default()
    };
    let app = app_with(seed_policies(), config).await;
    for url in [
        "https://other.example.com/cb",
        "http://127.0.0.1/cb",
        "http://169.254.169.254/latest",
        "http://10.8.0.1/cb",
        "http://2130706433/cb",
        "gopher://hooks.example.com/cb",
        "not a url",
    ] {
        let mut body = seed_gate_body();
        body["callback_url"] = json!(url);
        let (status, out) = app
            .call(
                "POST",
                "/api/agent/tasks/t/requests",
                Some(&app.agent),
                Some(body),
            )
            .await;
        assert_eq!(
            (status, out["error"]["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("callback_not_allowed")),
            "{url}: {out}"
        );
    }
    let (_, list) = app
        .call("GET", "/api/decisions", Some(&app.auditor), None)
        .await;
    assert_eq!(list["items"], json!([]), "a refused request stored nothing");
    for url in ["https://hooks.example.com/cb", "http://10.9.1.2:8080/cb"] {
        let mut body = seed_gate_body();
        body["callback_url"] = json!(url);
        let (status, out) = app
            .call(
                "POST",
                "/api/agent/tasks/t/requests",
                Some(&app.agent),
                Some(body),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{url}: {out}");
    }
    // The Decide API takes it too.
    let (status, out) = app
        .call(
            "POST",
            "/api/decide",
            Some(&app.agent),
            Some(json!({
            "question": "Refund?", "context": {"workflow": "w", "requested_action": "issue_refund"},
            "callback_url": "https://evil.example.net/"})),
        )
        .await;
    assert_eq!(
        (status, out["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("callback_not_allowed")),
        "{out}"
    );
}

#[tokio::test]
async fn users_are_linked_to_their_slack_id() {
    let app = app().await;
    let (status, out) = app
        .call(
            "POST",
            "/api/users",
            Some(&app.admin),
            Some(json!({"name": "ana", "password": "long enough pw", "slack_user_id": "ana"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{out}");
    assert!(
        out["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Slack user id"),
        "{out}"
    );
    let (_, list) = app.call("GET", "/api/users", Some(&app.admin), None).await;
    assert_eq!(list["items"], json!([]), "a refused user is not stored");
    let (status, out) = app
        .call(
            "POST",
            "/api/users",
            Some(&app.admin),
            Some(
                json!({"name": "ana", "password": "long enough pw", "slack_user_id": "U0ANA",
                        "email": "Ana@Example.com"}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{out}");
    let by_id = app.app.person_for_slack("U0ANA", None).await.unwrap();
    assert_eq!(by_id.map(|u| u.name).as_deref(), Some("ana"));
    let by_email = app
        .app
        .person_for_slack("U0OTHER", Some("ana@example.com"))
        .await
        .unwrap();
    assert_eq!(by_email.map(|u| u.name).as_deref(), Some("ana"));
    assert!(app
        .app
        .person_for_slack("U0OTHER", None)
        .await
        .unwrap()
        .is_none());
}
