mod common;

use axum::http::StatusCode;
use common::{app, low_risk, seed_gate_body};
use gatehouse_core::canonical::canonical_sha256_hex;
use serde_json::{json, Value};

fn execution(body: &Value) -> Value {
    json!({
        "target_system": "stripe", "target_object": "re_8821", "mutation": "create_refund",
        "executor": "billing-worker", "state_before_hash": "sha256:00", "state_after_hash": "sha256:11",
        "tool_name": body["tool_name"], "subject": body["subject"], "payload": body["payload"]
    })
}

#[tokio::test]
async fn receipts_and_outcomes_for_the_approved_action_are_recorded_and_logged() {
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
    let id = d["id"].as_str().unwrap();
    let token = d["approval_token"].as_str().unwrap();
    let jti = jsonwebtoken::dangerous::insecure_decode::<Value>(token)
        .unwrap()
        .claims["jti"]
        .clone();

    let mut input = execution(&body);
    input["token_jti"] = jti;
    let (status, created) = app
        .call(
            "POST",
            &format!("/api/decision/{id}/executions"),
            Some(&app.agent),
            Some(input),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(
        created["receipt"]["receipt_version"],
        "action-execution-receipt/v1"
    );
    assert_eq!(
        canonical_sha256_hex(&created["receipt"]).unwrap(),
        created["execution_hash"]
    );
    let leaf = app
        .store
        .log_leaves(created["log_index"].as_u64().unwrap(), 1)
        .await
        .unwrap()
        .pop()
        .unwrap()
        .1;
    let entry: Value = serde_json::from_slice(&leaf).unwrap();
    assert_eq!(
        (entry["type"].as_str(), entry["id"].as_str()),
        (Some("execution"), Some(id))
    );
    assert_eq!(entry["execution_hash"], created["execution_hash"]);

    let (status, outcome) = app
        .call(
            "POST",
            &format!("/api/gate/requests/{id}/outcomes"),
            Some(&app.agent),
            Some(json!({"status": "succeeded", "action_taken": "refund sent", "observed_metrics": {"amount": 500}, "target_system": "stripe"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{outcome}");
    assert_eq!(
        canonical_sha256_hex(&outcome["outcome"]).unwrap(),
        outcome["outcome_hash"]
    );

    let (_, listed) = app
        .call(
            "GET",
            &format!("/api/decision/{id}/executions"),
            Some(&app.auditor),
            None,
        )
        .await;
    assert_eq!(listed["executions"].as_array().unwrap().len(), 1);
    assert_eq!(
        listed["outcomes"][0]["outcome_hash"],
        outcome["outcome_hash"]
    );
    // Auditors read but never report.
    let (status, _) = app
        .call(
            "POST",
            &format!("/api/decision/{id}/outcomes"),
            Some(&app.auditor),
            Some(json!({"status": "failed", "action_taken": "x"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn an_execution_not_bound_to_the_approved_action_is_refused_and_flagged() {
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
    let id = d["id"].as_str().unwrap();
    let mut different = execution(&body);
    different["payload"]["amount"] = json!(99_999);
    let (status, err) = app
        .call(
            "POST",
            &format!("/api/decision/{id}/executions"),
            Some(&app.agent),
            Some(different),
        )
        .await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("execution_refused"))
    );
    let (_, after) = app
        .call(
            "GET",
            &format!("/api/gate/requests/{id}"),
            Some(&app.agent),
            None,
        )
        .await;
    assert!(
        after["flagged_for_review"]
            .as_str()
            .unwrap()
            .contains("not the approved one"),
        "{after}"
    );
    let (_, listed) = app
        .call(
            "GET",
            &format!("/api/decision/{id}/executions"),
            Some(&app.agent),
            None,
        )
        .await;
    assert!(
        listed["executions"].as_array().unwrap().is_empty(),
        "a refused receipt is not stored"
    );

    // A wrong token id is refused too.
    let mut wrong_token = execution(&body);
    wrong_token["token_jti"] = json!("tok_not_this_one");
    let (status, _) = app
        .call(
            "POST",
            &format!("/api/decision/{id}/executions"),
            Some(&app.agent),
            Some(wrong_token),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);

    // So is any execution of a decision that is still pending.
    let (_, pending) = app
        .call(
            "POST",
            "/api/agent/tasks/t/requests",
            Some(&app.agent),
            Some(seed_gate_body()),
        )
        .await;
    let pid = pending["id"].as_str().unwrap();
    let (status, err) = app
        .call(
            "POST",
            &format!("/api/decision/{pid}/executions"),
            Some(&app.agent),
            Some(execution(&seed_gate_body())),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(err["error"]["message"]
        .as_str()
        .unwrap()
        .contains("pending_review"));
}

/// The action object a redemption takes is accepted by the receipt
/// endpoints too, with the whole approval token instead of its id; a token
/// of another decision is refused like any unbound receipt.
#[tokio::test]
async fn a_receipt_takes_the_redeem_shape_and_the_whole_token() {
    let app = app().await;
    let body = low_risk();
    let create = |body: Value| {
        let app = &app;
        async move {
            app.call(
                "POST",
                "/api/agent/tasks/t/requests",
                Some(&app.agent),
                Some(body),
            )
            .await
            .1
        }
    };
    let d = create(body.clone()).await;
    let (id, token) = (
        d["id"].as_str().unwrap(),
        d["approval_token"].as_str().unwrap(),
    );
    let action = json!({"tool_name": body["tool_name"], "subject": body["subject"], "payload": body["payload"]});
    // Redeem first, exactly as an executor does, then report with the same object.
    let (status, redeemed) = app
        .call(
            "POST",
            "/api/tokens/redeem",
            Some(&app.agent),
            Some(json!({"token": token, "action": action})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{redeemed}");
    let receipt = json!({
        "target_system": "stripe", "target_object": "re_1", "mutation": "create_refund",
        "executor": "billing-worker", "token": token, "action": action
    });
    let (status, created) = app
        .call(
            "POST",
            &format!("/api/gate/requests/{id}/executions"),
            Some(&app.agent),
            Some(receipt.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["receipt"]["token_jti"], redeemed["jti"]);
    assert_eq!(created["receipt"]["action_hash"], redeemed["action_hash"]);

    // Another decision's token names the wrong decision: refused and flagged.
    let other = create(body.clone()).await;
    let mut wrong = receipt;
    wrong["token"] = other["approval_token"].clone();
    let (status, refused) = app
        .call(
            "POST",
            &format!("/api/decision/{id}/executions"),
            Some(&app.agent),
            Some(wrong),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    assert_eq!(refused["error"]["code"], "execution_refused");
    let (_, flagged) = app
        .call(
            "GET",
            &format!("/api/decision/{id}"),
            Some(&app.agent),
            None,
        )
        .await;
    let flag = flagged["flagged_for_review"].as_str().unwrap();
    assert!(
        flag.contains(&format!(
            "is for decision {}",
            other["id"].as_str().unwrap()
        )),
        "{flag}"
    );

    // Both forms at once is a validation error, and nothing is flagged for it.
    let (status, both) = app
        .call(
            "POST",
            &format!("/api/decision/{}/executions", other["id"].as_str().unwrap()),
            Some(&app.agent),
            Some(json!({
                "target_system": "s", "target_object": "o", "mutation": "m", "executor": "e",
                "action": action, "subject": "x"
            })),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{both}");
    assert_eq!(both["error"]["code"], "validation_failed");
}

/// A receipt after the approval's token expired is refused and flags the
/// decision, whether or not it names the token: the same rule the packet
/// verifier applies.
#[tokio::test]
async fn a_receipt_after_the_token_expired_is_refused_and_flagged() {
    let app = common::app_with(
        gatehouse_policy::starter_files(),
        gatehouse_app::AppConfig {
            rate_limit_per_second: 0,
            token_ttl: std::time::Duration::from_secs(1),
            ..Default::default()
        },
    )
    .await;
    let body = low_risk();
    let mut ids = Vec::new();
    for _ in 0..2 {
        let (_, d) = app
            .call(
                "POST",
                "/api/agent/tasks/t/requests",
                Some(&app.agent),
                Some(body.clone()),
            )
            .await;
        let jti = jsonwebtoken::dangerous::insecure_decode::<Value>(
            d["approval_token"].as_str().unwrap(),
        )
        .unwrap()
        .claims["jti"]
            .clone();
        ids.push((d["id"].as_str().unwrap().to_string(), jti));
    }
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    for (i, (id, jti)) in ids.iter().enumerate() {
        let mut receipt = execution(&body);
        if i == 0 {
            receipt["token_jti"] = jti.clone();
        }
        let (status, refused) = app
            .call(
                "POST",
                &format!("/api/decision/{id}/executions"),
                Some(&app.agent),
                Some(receipt),
            )
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{refused}");
        assert_eq!(refused["error"]["code"], "execution_refused");
        assert!(refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("after the approval token expired"));
        let (_, d) = app
            .call(
                "GET",
                &format!("/api/decision/{id}"),
                Some(&app.agent),
                None,
            )
            .await;
        assert!(
            d["flagged_for_review"]
                .as_str()
                .unwrap()
                .contains("expired"),
            "{d}"
        );
    }
}
