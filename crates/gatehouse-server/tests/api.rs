mod common;

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use common::{app, app_with, app_with_http, seed_gate_body, seed_policies};
use gatehouse_app::AppConfig;
use gatehouse_core::canonical::canonical_sha256_hex;
use gatehouse_policy::starter_files;
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

async fn pending(app: &common::TestApp) -> String {
    let (_, body) = app
        .call(
            "POST",
            "/api/agent/tasks/t/requests",
            Some(&app.agent),
            Some(seed_gate_body()),
        )
        .await;
    body["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn reviewer_approves_once_and_only_reviewers_may_review() {
    let app = app().await;
    let id = pending(&app).await;
    let path = format!("/api/gate/requests/{id}/review");
    let approve = json!({"decision": "approve", "comment": "verified with customer"});
    let (status, body) = app
        .call("POST", &path, Some(&app.agent), Some(approve.clone()))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"]["code"], "forbidden");
    let (status, body) = app
        .call("POST", &path, Some(&app.auditor), Some(approve.clone()))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");

    let (status, body) = app
        .call("POST", &path, Some(&app.reviewer), Some(approve.clone()))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "approved");
    assert_eq!(body["may_proceed"], true);
    assert_eq!(body["review"]["reviewer_name"], "Rita");

    let (status, body) = app
        .call(
            "POST",
            &path,
            Some(&app.reviewer),
            Some(json!({"decision": "reject"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"]["code"], "not_pending");

    let (status, body) = app
        .call(
            "POST",
            &format!("/api/decision/{id}/review"),
            Some(&app.reviewer),
            Some(json!({"decision": "maybe"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
}

#[tokio::test]
async fn a_key_may_not_review_its_own_request() {
    let app = app().await;
    let d = gatehouse_store::conformance::sample_decision(
        gatehouse_core::Verdict::PendingReview,
        &app.reviewer_id,
        None,
        "t",
    );
    app.store.create_decision(&d, None).await.unwrap();
    let (status, body) = app
        .call(
            "POST",
            &format!("/api/gate/requests/{}/review", d.id),
            Some(&app.reviewer),
            Some(json!({"decision": "approve"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"]["code"], "self_review_forbidden");
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

#[tokio::test]
async fn bad_inputs_get_stable_error_codes() {
    let app = app_with_http(
        starter_files(),
        AppConfig {
            rate_limit_per_second: 0,
            ..Default::default()
        },
        gatehouse_server::ServerConfig { body_limit: 1024 },
    )
    .await;
    let path = "/api/agent/tasks/t/requests";
    let (status, _, body) = app
        .call_raw(
            "POST",
            path,
            Some(&app.agent),
            Some("{not json".into()),
            &[],
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_json"))
    );
    let mut req = seed_gate_body();
    req["risk_level"] = json!("extreme");
    let (status, body) = app.call("POST", path, Some(&app.agent), Some(req)).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("validation_failed"))
    );
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("risk_level"));
    let (status, body) = app
        .call(
            "POST",
            path,
            Some(&app.agent),
            Some(json!({"workflow_name": "w"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let mut big = seed_gate_body();
    big["payload"]["blob"] = json!("x".repeat(4096));
    let (status, body) = app.call("POST", path, Some(&app.agent), Some(big)).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("payload_too_large"))
    );
    // A wait that is not a number, or an unknown parameter, is refused.
    for query in ["wait=soon", "wait=-1", "wiat=5"] {
        let (status, body) = app
            .call(
                "GET",
                &format!("/api/gate/requests/x?{query}"),
                Some(&app.agent),
                None,
            )
            .await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("bad_request")),
            "{query}: {body}"
        );
    }
    // A wait above 60 s is capped, not refused: a final decision answers at once.
    let mut low = seed_gate_body();
    low["risk_level"] = "low".into();
    let (_, allowed) = app.call("POST", path, Some(&app.agent), Some(low)).await;
    let (status, body) = app
        .call(
            "GET",
            &format!(
                "/api/gate/requests/{}?wait=3600",
                allowed["id"].as_str().unwrap()
            ),
            Some(&app.agent),
            None,
        )
        .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("allow"))
    );
    let (status, _) = app
        .call("GET", "/api/gate/requests/dec_nope", Some(&app.agent), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // A wrong method is a 405 in the JSON error shape, saying what is allowed.
    let (status, headers, body) = app
        .call_raw("PUT", "/api/decide", Some(&app.agent), None, &[])
        .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{body}");
    assert_eq!(body["error"]["code"], "method_not_allowed");
    assert_eq!(headers["allow"], "POST");
    assert_eq!(
        app.call("GET", "/nowhere", None, None).await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn long_poll_returns_as_soon_as_the_review_lands() {
    let app = app().await;
    let id = pending(&app).await;
    let reviewer = app.reviewer.clone();
    let router = app.router.clone();
    let review_path = format!("/api/gate/requests/{id}/review");
    let started = Instant::now();
    let reviewer_task = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let req = axum::http::Request::builder()
            .method("POST")
            .uri(review_path)
            .header("authorization", format!("Bearer {reviewer}"))
            .header("content-type", "application/json")
            .body(axum::body::Body::from(
                r#"{"decision":"reject","comment":"no"}"#,
            ))
            .unwrap();
        tower::ServiceExt::oneshot(router, req)
            .await
            .unwrap()
            .status()
    });
    let (status, body) = app
        .call(
            "GET",
            &format!("/api/gate/requests/{id}?wait=20"),
            Some(&app.agent),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "rejected");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "long-poll should wake on review"
    );
    assert_eq!(reviewer_task.await.unwrap(), StatusCode::OK);
    // A wait on a pending request with no review returns pending after the wait.
    let other = pending(&app).await;
    let (_, body) = app
        .call(
            "GET",
            &format!("/api/gate/requests/{other}?wait=1"),
            Some(&app.agent),
            None,
        )
        .await;
    assert_eq!(body["status"], "pending_review");
}

#[tokio::test]
async fn pending_decisions_expire_and_cannot_be_approved_late() {
    let app = app_with(
        starter_files(),
        AppConfig {
            rate_limit_per_second: 0,
            default_review_timeout: Duration::from_millis(300),
            ..Default::default()
        },
    )
    .await;
    let id = pending(&app).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (_, body) = app
        .call(
            "GET",
            &format!("/api/gate/requests/{id}"),
            Some(&app.agent),
            None,
        )
        .await;
    assert_eq!(body["status"], "expired");
    assert_eq!(body["may_proceed"], false);
    let (status, body) = app
        .call(
            "POST",
            &format!("/api/gate/requests/{id}/review"),
            Some(&app.reviewer),
            Some(json!({"decision": "approve"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("expired"));
}

#[tokio::test]
async fn task_events_link_to_decisions() {
    let app = app().await;
    let id = pending(&app).await;
    let (status, event) = app
        .call(
            "POST",
            "/api/agent/tasks/t/events",
            Some(&app.agent),
            Some(json!({"kind": "action_executed", "decision_id": id, "message": "refund sent", "data": {"refund_id": "re_1"}})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{event}");
    let (status, _) = app
        .call(
            "POST",
            "/api/agent/tasks/other/events",
            Some(&app.agent),
            Some(json!({"kind": "x", "decision_id": id})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (_, list) = app
        .call(
            "GET",
            "/api/agent/tasks/t/events",
            Some(&app.reviewer),
            None,
        )
        .await;
    assert_eq!(list["items"][0]["decision_id"], id);
    assert_eq!(list["items"][0]["data"]["refund_id"], "re_1");
}

#[tokio::test]
async fn health_and_readiness() {
    let app = app().await;
    assert_eq!(
        app.call("GET", "/healthz", None, None).await.0,
        StatusCode::OK
    );
    let (status, ready) = app.call("GET", "/readyz", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ready["policy_version"], app.app.engine().version());
}

#[tokio::test]
async fn openapi_documents_every_route() {
    let app = app().await;
    let (status, doc) = app.call("GET", "/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    let paths = doc["paths"].as_object().expect("paths");
    let routes = [
        ("/healthz", "get"),
        ("/readyz", "get"),
        ("/openapi.json", "get"),
        ("/api/whoami", "get"),
        ("/api/agent/tasks/{task_id}/requests", "post"),
        ("/api/agent/tasks/{task_id}/events", "post"),
        ("/api/agent/tasks/{task_id}/events", "get"),
        ("/api/gate/requests", "post"),
        ("/api/gate/requests/{id}", "get"),
        ("/api/gate/requests/{id}/review", "post"),
        ("/api/decisions", "get"),
        ("/api/decide", "post"),
        ("/api/decision/{id}", "get"),
        ("/api/decision/{id}/review", "post"),
        ("/api/decision/{id}/verify", "get"),
        ("/api/decision/{id}/replay", "get"),
        ("/api/keys", "get"),
        ("/api/keys", "post"),
        ("/api/keys/{id}", "delete"),
        ("/api/log/checkpoint", "get"),
        ("/api/log/key", "get"),
        ("/api/log/proof/inclusion", "get"),
        ("/api/log/proof/consistency", "get"),
        ("/.well-known/jwks.json", "get"),
        ("/api/tokens/redeem", "post"),
        ("/api/decision/{id}/executions", "post"),
        ("/api/decision/{id}/executions", "get"),
        ("/api/decision/{id}/outcomes", "post"),
        ("/api/gate/requests/{id}/executions", "post"),
        ("/api/gate/requests/{id}/executions", "get"),
        ("/api/gate/requests/{id}/outcomes", "post"),
        ("/api/decision/{id}/packet", "get"),
    ];
    for (path, method) in routes {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} undocumented"
        );
    }
    assert_eq!(
        paths
            .values()
            .map(|p| p.as_object().unwrap().len())
            .sum::<usize>(),
        routes.len()
    );
}

#[tokio::test]
async fn hostile_inputs_never_produce_a_server_error() {
    let app = app_with(
        seed_policies(),
        AppConfig {
            rate_limit_per_second: 0,
            ..Default::default()
        },
    )
    .await;
    let deep = format!("{}{}", "[".repeat(300), "]".repeat(300));
    let bodies: Vec<(&str, String)> = vec![
        ("/api/agent/tasks/t/requests", "null".into()),
        ("/api/agent/tasks/t/requests", "[]".into()),
        ("/api/agent/tasks/t/requests", "\"str\"".into()),
        ("/api/agent/tasks/t/requests", format!(r#"{{"workflow_name":"w","tool_name":"t","subject":"s","risk_level":"low","payload":{deep}}}"#)),
        ("/api/agent/tasks/t/requests", r#"{"workflow_name":"w","tool_name":"issue_refund","subject":"s","risk_level":"low","payload":{"amount":1e400,"currency":"usd"}}"#.into()),
        ("/api/agent/tasks/t/requests", r#"{"workflow_name":"w","tool_name":"issue_refund","subject":"s","risk_level":"low","payload":{"amount":-9223372036854775808,"currency":"usd"}}"#.into()),
        ("/api/agent/tasks/t/requests", r#"{"workflow_name":"\u0000","tool_name":"t","subject":"s","risk_level":"low"}"#.into()),
        ("/api/agent/tasks/t/requests", r#"{"workflow_name":"w","tool_name":"Action::\"x\"","subject":"\"};","risk_level":"low"}"#.into()),
        ("/api/agent/tasks/t/requests", format!(r#"{{"workflow_name":"{}","tool_name":"t","subject":"s","risk_level":"low"}}"#, "w".repeat(5000))),
        ("/api/agent/tasks/t/requests", r#"{"workflow_name":"w","tool_name":"t","subject":"s","risk_level":"low","summary":[1,2]}"#.into()),
        ("/api/agent/tasks/t/requests", r#"{"workflow_name":"w","tool_name":"t","subject":"s","risk_level":"low","extra":1}"#.into()),
        ("/api/agent/tasks/%20/requests", r#"{"workflow_name":"w","tool_name":"t","subject":"s","risk_level":"low"}"#.into()),
        ("/api/agent/tasks/%E2%9C%93/requests", r#"{"workflow_name":"w","tool_name":"t","subject":"s","risk_level":"low"}"#.into()),
        ("/api/gate/requests", r#"{"agent":"a","action":"delete_record","risk":"low","subject":"s","context":{"local_hour":"x"}}"#.into()),
        ("/api/decide", r#"{"question":"q","context":{"workflow":"w","requested_action":"apply_discount","discount_percent":"15"}}"#.into()),
        ("/api/decide", r#"{"question":"q","context":{"workflow":"w","requested_action":"apply_discount","discount_percent":null}}"#.into()),
        ("/api/decide", r#"{"question":"q","context":{"workflow":1,"requested_action":"a"}}"#.into()),
        ("/api/decide", r#"{"question":"q","context":[]}"#.into()),
        ("/api/decide", r#"{"question":"q","context":{"workflow":"w","requested_action":"a","evidence":"x"}}"#.into()),
        ("/api/decide", "{\"question\": \"\u{fffd}\", \"context\": {}}".into()),
        ("/api/gate/requests/dec_x/review", r#"{"decision":"approve","comment":null}"#.into()),
        ("/api/agent/tasks/t/events", r#"{"kind":"","data":{}}"#.into()),
        ("/api/agent/tasks/t/events", r#"{"kind":"k","decision_id":"dec_missing"}"#.into()),
        ("/api/keys", r#"{"role":"superuser"}"#.into()),
    ];
    for (path, body) in bodies {
        for key in [&app.agent, &app.reviewer, &app.admin] {
            let (status, _, response) = app
                .call_raw("POST", path, Some(key), Some(body.clone()), &[])
                .await;
            assert!(
                !status.is_server_error(),
                "{path} {body:.80} → {status} {response}"
            );
            if !status.is_success() {
                assert!(
                    response["error"]["code"].is_string(),
                    "{path} {body:.80} → {response}"
                );
            }
            if status.is_success() && body.contains("\"amount\"") {
                assert_ne!(
                    response["status"], "allow",
                    "hostile amount was allowed: {body:.80}"
                );
            }
        }
    }
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

/// The packet carries the request as submitted, and the verifier checks it
/// is the request that was decided.
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
    let key = app.store.log_verifier_key().to_string();
    let mut parsed: gatehouse_log::packet::Packet = serde_json::from_value(packet).unwrap();
    let checks = gatehouse_log::packet::verify(&parsed, &key);
    assert!(checks.iter().all(|c| c.ok), "{checks:?}");
    assert!(checks.iter().any(|c| c.name == "request_binding"));
    // A payload shown to an auditor other than the one decided is caught.
    let request = parsed.request.as_mut().unwrap();
    request.payload.insert("amount".into(), json!(5));
    let parsed = parsed.seal();
    let failed: Vec<_> = gatehouse_log::packet::verify(&parsed, &key)
        .into_iter()
        .filter(|c| !c.ok)
        .map(|c| c.name)
        .collect();
    assert_eq!(failed, vec!["request_binding"]);
}
