//! Asking for decisions on every API shape, idempotency, and what a
//! reader sees of a decision and its packet.

mod common;
use axum::http::StatusCode;

use common::{app, app_with, seed_gate_body, seed_policies};
use gatehouse_app::AppConfig;
use gatehouse_core::canonical::canonical_sha256_hex;
use serde_json::{json, Value};

#[tokio::test]
async fn seed_gate_request_goes_to_review_under_starter_policies() {
    let app = app().await;
    let (status, body) = app
        .call(
            "POST",
            "/api/agent/tasks/8821/requests",
            Some(&app.agent),
            Some(seed_gate_body()),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["status"], "pending_review");
    assert_eq!(body["task_id"], "8821");
    assert_eq!(body["may_proceed"], false);
    assert_eq!(
        body["reasons"][0],
        "Medium and high risk actions need a human reviewer"
    );
    assert!(body["policy_version"].as_str().unwrap().starts_with("pv_"));
    assert!(body["review_deadline"].is_string());
}

#[tokio::test]
async fn low_risk_is_allowed_and_may_proceed() {
    let app = app().await;
    let mut req = seed_gate_body();
    req["risk_level"] = json!("low");
    let (status, body) = app
        .call(
            "POST",
            "/api/agent/tasks/t/requests",
            Some(&app.agent),
            Some(req),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(body["status"], "allow");
    assert_eq!(body["may_proceed"], true);
}

#[tokio::test]
async fn sdk_field_names_are_accepted() {
    let app = app().await;
    let (status, body) = app
        .call(
            "POST",
            "/api/gate/requests",
            Some(&app.agent),
            Some(json!({"agent": "custom-agent-runtime", "action": "send_email", "risk": "low",
                        "subject": "ticket 42", "context": {"args": {"to": "a@b.c"}, "traceId": "t1"}})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["status"], "allow");
    assert_eq!(body["tool_name"], "send_email");
}

#[tokio::test]
async fn decide_returns_a_decision_record_whose_hash_checks_out() {
    let app = app_with(
        seed_policies(),
        AppConfig {
            rate_limit_per_second: 0,
            ..Default::default()
        },
    )
    .await;
    let (status, record) = app
        .call(
            "POST",
            "/api/decide",
            Some(&app.agent),
            Some(json!({
                "question": "Approve annual-plan discount exception before billing update?",
                "mode": "single",
                "context": {
                    "workflow": "billing_discount_gate", "customer_id": "cus_1",
                    "invoice_or_subscription_id": "sub_1", "requested_action": "apply_discount",
                    "discount_percent": 15, "margin_floor": "passed", "owner_rule": "verified"
                }
            })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{record}");
    assert_eq!(record["record_version"], "decision-record/v1");
    assert_eq!(record["verdict"], "yes");
    let id = record["decision_id"].as_str().unwrap();
    assert_eq!(record["verify_url"], format!("/api/decision/{id}/verify"));
    assert_eq!(record["replay_url"], format!("/api/decision/{id}/replay"));
    // The hash covers the record body: everything but the handles and the
    // mutable state. Recompute it independently from the response.
    let mut body = record.as_object().unwrap().clone();
    for k in [
        "record_hash",
        "verify_url",
        "replay_url",
        "status",
        "review",
        "resolved_at",
        "log_index",
        "receipt_hash",
        "checkpoint",
        "approval_token",
        "flagged_for_review",
        "request",
        "review_progress",
        "approved_action",
    ] {
        body.remove(k);
    }
    assert_eq!(
        canonical_sha256_hex(&Value::Object(body)).unwrap(),
        record["record_hash"]
    );

    let (_, fetched) = app
        .call(
            "GET",
            &format!("/api/decision/{id}"),
            Some(&app.auditor),
            None,
        )
        .await;
    assert_eq!(fetched["record_hash"], record["record_hash"]);
    let (_, replay) = app
        .call(
            "GET",
            &format!("/api/decision/{id}/replay"),
            Some(&app.auditor),
            None,
        )
        .await;
    assert_eq!(replay["matches"], true, "{replay}");
    let (_, verify) = app
        .call(
            "GET",
            &format!("/api/decision/{id}/verify"),
            Some(&app.auditor),
            None,
        )
        .await;
    assert_eq!(verify["valid"], true, "{verify}");
}

#[tokio::test]
async fn decide_rejects_discount_over_limit_with_evidence() {
    let app = app_with(
        seed_policies(),
        AppConfig {
            rate_limit_per_second: 0,
            ..Default::default()
        },
    )
    .await;
    let (_, record) = app
        .call(
            "POST",
            "/api/decide",
            Some(&app.agent),
            Some(json!({"question": "q", "context": {"workflow": "b", "requested_action": "apply_discount", "discount_percent": 35}})),
        )
        .await;
    assert_eq!(record["verdict"], "no");
    assert_eq!(record["action"], "block");
    assert_eq!(record["evidence"][0]["code"], "DISCOUNT_ABOVE_LIMIT");
}

#[tokio::test]
async fn fractional_money_is_a_400_never_an_allow() {
    let app = app_with(
        seed_policies(),
        AppConfig {
            rate_limit_per_second: 0,
            ..Default::default()
        },
    )
    .await;
    let mut req = seed_gate_body();
    req["payload"]["amount"] = json!(10.5);
    let (status, body) = app
        .call(
            "POST",
            "/api/agent/tasks/t/requests",
            Some(&app.agent),
            Some(req),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["code"], "schema_mismatch");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("issue_refund"));
}

#[tokio::test]
async fn idempotency_key_replays_or_conflicts() {
    let app = app().await;
    let path = "/api/agent/tasks/t/requests";
    let body = seed_gate_body().to_string();
    let headers = [("idempotency-key", "order-8821")];
    let (s1, _, first) = app
        .call_raw("POST", path, Some(&app.agent), Some(body.clone()), &headers)
        .await;
    let (s2, _, second) = app
        .call_raw("POST", path, Some(&app.agent), Some(body.clone()), &headers)
        .await;
    assert_eq!((s1, s2), (StatusCode::CREATED, StatusCode::OK));
    assert_eq!(first["id"], second["id"]);
    // The body field works too, and must agree with the header.
    let mut in_body = seed_gate_body();
    in_body["idempotency_key"] = json!("order-8821");
    let (s3, third) = app
        .call("POST", path, Some(&app.agent), Some(in_body))
        .await;
    assert_eq!((s3, &third["id"]), (StatusCode::OK, &first["id"]));

    let mut changed = seed_gate_body();
    changed["payload"]["amount"] = json!(900);
    let (s4, _, conflict) = app
        .call_raw(
            "POST",
            path,
            Some(&app.agent),
            Some(changed.to_string()),
            &headers,
        )
        .await;
    assert_eq!(s4, StatusCode::CONFLICT);
    assert_eq!(conflict["error"]["code"], "idempotency_conflict");
    // Scoped per key: another agent may use the same idempotency key.
    let (s5, _, other) = app
        .call_raw("POST", path, Some(&app.agent2), Some(body), &headers)
        .await;
    assert_eq!(s5, StatusCode::CREATED);
    assert_ne!(other["id"], first["id"]);
}

/// Whoever may read a decision sees the request as submitted: a reviewer
/// never approves blind.
#[tokio::test]
async fn readers_see_the_whole_request_as_submitted() {
    let app = app().await;
    let body = seed_gate_body();
    let (_, created) = app
        .call(
            "POST",
            "/api/agent/tasks/t-42/requests",
            Some(&app.agent),
            Some(body.clone()),
        )
        .await;
    let id = created["id"].as_str().unwrap();
    let (_, gate) = app
        .call(
            "GET",
            &format!("/api/gate/requests/{id}"),
            Some(&app.reviewer),
            None,
        )
        .await;
    for field in ["payload", "preview", "task_label", "summary"] {
        assert_eq!(gate[field], body[field], "{field}");
    }
    let (_, record) = app
        .call(
            "GET",
            &format!("/api/decision/{id}"),
            Some(&app.reviewer),
            None,
        )
        .await;
    assert_eq!(record["request"]["payload"], body["payload"]);
    assert_eq!(record["request"]["task_id"], "t-42");
    assert!(
        record["request"].get("context").is_none(),
        "a Gate request has no Decide context"
    );

    let decide = json!({"question": "Approve the discount?", "mode": "single", "context": {
        "workflow": "billing_discount_gate", "requested_action": "apply_discount",
        "source_record_id": "sub_1", "owner_rule": "verified", "discount_percent": 15,
        "margin_floor": "passed", "evidence": ["OWNER_RULE_VERIFIED"], "risk": "high"}});
    let (_, record) = app
        .call(
            "POST",
            "/api/decide",
            Some(&app.agent),
            Some(decide.clone()),
        )
        .await;
    let id = record["decision_id"].as_str().unwrap();
    let (_, gate) = app
        .call(
            "GET",
            &format!("/api/gate/requests/{id}"),
            Some(&app.auditor),
            None,
        )
        .await;
    assert_eq!(
        gate["context"], decide["context"],
        "the Decide context, whole"
    );
    assert_eq!(gate["question"], decide["question"]);
    assert_eq!(
        gate["payload"],
        json!({"discount_percent": 15, "margin_floor": "passed"})
    );
}

/// The packet carries the action requested, bound by the record's action
/// hash, and the rest of the request as submitted under `unverified`.
#[tokio::test]
async fn the_packet_carries_the_request_and_binds_it() {
    let app = app().await;
    let (_, created) = app
        .call(
            "POST",
            "/api/agent/tasks/t/requests",
            Some(&app.agent),
            Some(seed_gate_body()),
        )
        .await;
    let id = created["id"].as_str().unwrap();
    let (_, packet) = app
        .call(
            "GET",
            &format!("/api/decision/{id}/packet"),
            Some(&app.auditor),
            None,
        )
        .await;
    assert_eq!(packet["request"]["payload"], seed_gate_body()["payload"]);
    assert_eq!(
        packet["unverified"]["request"]["preview"],
        seed_gate_body()["preview"]
    );
    let key = app.store.log_verifier_key().to_string();
    let mut parsed: gatehouse_log::packet::Packet = serde_json::from_value(packet).unwrap();
    let checks = gatehouse_log::packet::verify(&parsed, &key);
    assert!(checks.iter().all(|c| c.ok), "{checks:?}");
    assert!(checks.iter().any(|c| c.name == "request"));
    // A payload shown to an auditor other than the one decided is caught.
    let request = parsed.request.as_mut().unwrap();
    request.payload.insert("amount".into(), json!(5));
    let parsed = parsed.seal();
    let failed: Vec<_> = gatehouse_log::packet::verify(&parsed, &key)
        .into_iter()
        .filter(|c| !c.ok)
        .map(|c| c.name)
        .collect();
    assert_eq!(failed, vec!["request"]);
}
