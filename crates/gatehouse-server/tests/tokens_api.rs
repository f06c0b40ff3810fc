mod common;

use std::time::Duration;

use axum::http::StatusCode;
use common::{app, app_with, low_risk, seed_gate_body};
use gatehouse_app::AppConfig;
use gatehouse_policy::starter_files;
use gatehouse_token::{verify, Expectation};
use jsonwebtoken::jwk::JwkSet;
use serde_json::{json, Value};

fn action_of(body: &Value) -> Value {
    json!({"tool_name": body["tool_name"], "subject": body["subject"], "payload": body["payload"]})
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

#[tokio::test]
async fn allowed_decision_carries_a_token_bound_to_the_action_and_redeems_once() {
    let app = app().await;
    let body = low_risk();
    let (_, d) = app
        .call(
            "POST",
            "/api/agent/tasks/t/requests",
            Some(&app.agent),
            Some(body.clone()),
        )
        .await;
    let token = d["approval_token"]
        .as_str()
        .expect("allow carries a token")
        .to_string();

    // Offline check with the published JWKS.
    let (_, jwks) = app.call("GET", "/.well-known/jwks.json", None, None).await;
    let jwks: JwkSet = serde_json::from_value(jwks).unwrap();
    let stored = app
        .store
        .get_decision(d["id"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    let claims = verify(
        &token,
        &jwks,
        &Expectation {
            action_hash: &stored.action_hash,
            audience: "gatehouse-executor",
            now: now(),
        },
    )
    .unwrap();
    assert_eq!(claims.sub, stored.id);
    assert_eq!(claims.dec, d["receipt_hash"].as_str().unwrap());
    assert!(
        claims.exp - claims.iat == 600,
        "default lifetime is 10 minutes"
    );

    // The same token is returned on later reads, never a second one.
    let (_, again) = app
        .call(
            "GET",
            &format!("/api/gate/requests/{}", stored.id),
            Some(&app.agent),
            None,
        )
        .await;
    assert_eq!(again["approval_token"], token.as_str());

    // A different payload is refused and says why.
    let mut other = action_of(&body);
    other["payload"]["amount"] = json!(50_000);
    let (status, err) = app
        .call(
            "POST",
            "/api/tokens/redeem",
            Some(&app.agent),
            Some(json!({"token": token, "action": other})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(err["error"]["code"], "token_rejected");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("action differs"),
        "{err}"
    );

    let redeem = json!({"token": token, "action": action_of(&body)});
    let (status, ok) = app
        .call(
            "POST",
            "/api/tokens/redeem",
            Some(&app.agent),
            Some(redeem.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{ok}");
    assert_eq!(ok["decision_id"], stored.id.as_str());
    let index = ok["log_index"].as_u64().unwrap();
    let leaf = app
        .store
        .log_leaves(index, 1)
        .await
        .unwrap()
        .pop()
        .unwrap()
        .1;
    let entry: Value = serde_json::from_slice(&leaf).unwrap();
    assert_eq!(
        (entry["type"].as_str(), entry["jti"].as_str()),
        (Some("token_redeemed"), Some(claims.jti.as_str()))
    );

    // Single use.
    let (status, err) = app
        .call("POST", "/api/tokens/redeem", Some(&app.agent), Some(redeem))
        .await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("token_already_redeemed"))
    );
}

#[tokio::test]
async fn only_the_acting_agent_holds_a_token_and_only_once_approved() {
    let app = app().await;
    let (_, d) = app
        .call(
            "POST",
            "/api/agent/tasks/t/requests",
            Some(&app.agent),
            Some(seed_gate_body()),
        )
        .await;
    assert!(
        d.get("approval_token").is_none(),
        "pending decisions carry no token"
    );
    let id = d["id"].as_str().unwrap();
    let (_, reviewed) = app
        .call(
            "POST",
            &format!("/api/gate/requests/{id}/review"),
            Some(&app.reviewer),
            Some(json!({"decision": "approve"})),
        )
        .await;
    assert_eq!(reviewed["status"], "approved");
    assert!(
        reviewed.get("approval_token").is_none(),
        "a reviewer never receives the token"
    );
    let (_, audited) = app
        .call(
            "GET",
            &format!("/api/decision/{id}"),
            Some(&app.auditor),
            None,
        )
        .await;
    assert!(
        audited.get("approval_token").is_none(),
        "an auditor never receives the token"
    );
    let (_, polled) = app
        .call(
            "GET",
            &format!("/api/gate/requests/{id}"),
            Some(&app.agent),
            None,
        )
        .await;
    assert!(
        polled["approval_token"].is_string(),
        "the agent gets it once approved"
    );
    // Reading again (the state proven at approval predates the token
    // issued on the first read) returns the same token, unflagged.
    for path in [
        format!("/api/gate/requests/{id}"),
        format!("/api/decision/{id}"),
    ] {
        let (status, again) = app.call("GET", &path, Some(&app.agent), None).await;
        assert_eq!(status, StatusCode::OK, "{path}: {again}");
        assert_eq!(again["approval_token"], polled["approval_token"], "{path}");
        assert!(
            again
                .get("flagged_for_review")
                .is_none_or(|f| f.is_null() || f == false),
            "{path}: {again}"
        );
    }
    // Auditors cannot redeem.
    let redeem = json!({"token": polled["approval_token"], "action": action_of(&seed_gate_body())});
    assert_eq!(
        app.call(
            "POST",
            "/api/tokens/redeem",
            Some(&app.auditor),
            Some(redeem)
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn tampered_and_expired_tokens_are_refused() {
    let app = app_with(
        starter_files(),
        AppConfig {
            rate_limit_per_second: 0,
            token_ttl: Duration::from_secs(1),
            ..Default::default()
        },
    )
    .await;
    let body = low_risk();
    let (_, d) = app
        .call(
            "POST",
            "/api/agent/tasks/t/requests",
            Some(&app.agent),
            Some(body.clone()),
        )
        .await;
    let token = d["approval_token"].as_str().unwrap();
    // Change a character inside the signature (the last character of a
    // base64url string also carries padding bits, so it is left alone).
    let mut tampered: Vec<char> = token.chars().collect();
    let at = tampered.len() - 10;
    tampered[at] = if tampered[at] == 'A' { 'B' } else { 'A' };
    let tampered: String = tampered.into_iter().collect();
    let (status, err) = app
        .call(
            "POST",
            "/api/tokens/redeem",
            Some(&app.agent),
            Some(json!({"token": tampered, "action": action_of(&body)})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("signature"),
        "{err}"
    );

    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (status, err) = app
        .call(
            "POST",
            "/api/tokens/redeem",
            Some(&app.agent),
            Some(json!({"token": token, "action": action_of(&body)})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("expired"),
        "{err}"
    );
}

#[tokio::test]
async fn a_policy_can_shorten_the_token_lifetime() {
    let app = app_with(
        common::seed_policies(),
        AppConfig {
            rate_limit_per_second: 0,
            ..Default::default()
        },
    )
    .await;
    let deploy = json!({"workflow_name": "GitHub Actions", "tool_name": "deploy_production", "subject": "main", "risk_level": "low"});
    let (_, d) = app
        .call(
            "POST",
            "/api/agent/tasks/t/requests",
            Some(&app.agent),
            Some(deploy),
        )
        .await;
    let id = d["id"].as_str().unwrap();
    app.call(
        "POST",
        &format!("/api/gate/requests/{id}/review"),
        Some(&app.reviewer),
        Some(json!({"decision": "approve"})),
    )
    .await;
    let (_, approved) = app
        .call(
            "GET",
            &format!("/api/gate/requests/{id}"),
            Some(&app.agent),
            None,
        )
        .await;
    let token = approved["approval_token"].as_str().unwrap();
    let claims = jsonwebtoken::dangerous::insecure_decode::<Value>(token)
        .unwrap()
        .claims;
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        300,
        "@token_ttl(\"5m\")"
    );
}

/// Redemption belongs to whoever runs the action: the key that asked, or an
/// executor key named for the token's audience. Anyone else gets 403 and
/// nothing is written.
#[tokio::test]
async fn only_the_asking_key_or_the_audiences_executor_may_redeem() {
    let app = app().await;
    let body = low_risk();
    let issue = || async {
        let (_, d) = app
            .call(
                "POST",
                "/api/agent/tasks/t/requests",
                Some(&app.agent),
                Some(body.clone()),
            )
            .await;
        d["approval_token"].as_str().unwrap().to_string()
    };
    let redeem = |key: String, token: String| {
        let app = &app;
        let action = action_of(&body);
        async move {
            app.call(
                "POST",
                "/api/tokens/redeem",
                Some(&key),
                Some(json!({"token": token, "action": action})),
            )
            .await
        }
    };
    let token = issue().await;
    let size = app.store.log_size().await.unwrap();
    for (who, key) in [
        ("another agent", app.agent2.clone()),
        (
            "an executor for another audience",
            app.other_executor.clone(),
        ),
        ("an admin that did not ask", app.admin.clone()),
        ("a reviewer", app.reviewer.clone()),
    ] {
        let (status, answer) = redeem(key, token.clone()).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{who}: {answer}");
        assert_eq!(answer["error"]["code"], "forbidden", "{who}");
    }
    assert_eq!(
        app.store.log_size().await.unwrap(),
        size,
        "nothing was written"
    );
    // The audience's executor redeems it, once.
    let (status, answer) = redeem(app.executor.clone(), token.clone()).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let (status, _) = redeem(app.agent.clone(), token).await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "single use holds for the asking key too"
    );
    // And the key that asked redeems its own.
    let (status, answer) = redeem(app.agent.clone(), issue().await).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
}
