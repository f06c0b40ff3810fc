//! Routing, quorum, separation of duties and approve-with-changes through
//! the router, under `examples/policies/review-routing`.

mod common;
use axum::http::StatusCode;

use common::{app_with, TestApp};
use gatehouse_app::AppConfig;
use gatehouse_policy::read_policy_dir;
use serde_json::{json, Value};

async fn routing_app() -> TestApp {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/policies/review-routing");
    let app = app_with(
        read_policy_dir(&dir).unwrap(),
        AppConfig {
            rate_limit_per_second: 0,
            ..Default::default()
        },
    )
    .await;
    for (name, groups) in [
        ("ana", vec!["finance"]),
        ("bo", vec!["finance"]),
        ("lee", vec!["legal"]),
        ("eve", vec!["marketing"]),
        ("sam", vec!["sre"]),
    ] {
        let body = json!({"name": name, "groups": groups, "password": "long enough password"});
        let (status, out) = app
            .call("POST", "/api/users", Some(&app.admin), Some(body))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{out}");
    }
    app
}

/// A new key of `role` belonging to `user`.
async fn key_of(app: &TestApp, user: &str, role: &str) -> String {
    let (status, out) = app
        .call(
            "POST",
            "/api/keys",
            Some(&app.admin),
            Some(json!({"role": role, "user": user})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{out}");
    out["secret"].as_str().unwrap().to_string()
}

fn refund(amount: i64) -> Value {
    json!({"workflow_name": "Customer Support", "tool_name": "issue_refund", "subject": "cus_42",
        "risk_level": "high", "payload": {"amount": amount, "currency": "usd"}})
}

async fn ask(app: &TestApp, key: &str, body: Value) -> Value {
    let (status, out) = app
        .call(
            "POST",
            "/api/agent/tasks/t1/requests",
            Some(key),
            Some(body),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{out}");
    out
}

async fn review(app: &TestApp, key: &str, id: &str, body: Value) -> (StatusCode, Value) {
    app.call(
        "POST",
        &format!("/api/gate/requests/{id}/review"),
        Some(key),
        Some(body),
    )
    .await
}

fn approve() -> Value {
    json!({"decision": "approve"})
}

#[tokio::test]
async fn two_of_finance_and_all_of_two_groups() {
    let app = routing_app().await;
    let (ana, bo, lee, eve) = (
        key_of(&app, "ana", "reviewer").await,
        key_of(&app, "bo", "reviewer").await,
        key_of(&app, "lee", "reviewer").await,
        key_of(&app, "eve", "reviewer").await,
    );
    let created = ask(&app, &app.agent, refund(25_000)).await;
    let id = created["id"].as_str().unwrap();
    let progress = &created["review_progress"];
    assert_eq!(
        progress["requirements"][0]["groups"],
        json!(["finance"]),
        "{created}"
    );
    assert_eq!(progress["requirements"][0]["quorum"], 2);
    assert_eq!(created["record_hash"].as_str().map(str::len), Some(64));

    let (status, out) = review(&app, &eve, id, approve()).await;
    assert_eq!(
        (status, out["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("not_eligible")),
        "{out}"
    );
    assert!(
        out["error"]["message"]
            .as_str()
            .unwrap()
            .contains("finance"),
        "{out}"
    );
    // A reviewer key without a person has no groups: not eligible either.
    let (status, _) = review(&app, &app.reviewer, id, approve()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (status, out) = review(&app, &ana, id, approve()).await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(out["status"], "pending_review");
    assert_eq!(out["review_progress"]["requirements"][0]["approvals"], 1);
    assert_eq!(
        out["review_progress"]["requirements"][0]["approved_by"],
        json!(["ana"])
    );
    // The same person with another key counts once.
    let ana2 = key_of(&app, "ana", "reviewer").await;
    let (status, out) = review(&app, &ana2, id, approve()).await;
    assert_eq!(
        (status, out["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("already_reviewed")),
        "{out}"
    );
    let (status, out) = review(&app, &bo, id, approve()).await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(
        (out["status"].as_str(), out["may_proceed"].as_bool()),
        (Some("approved"), Some(true))
    );
    assert_eq!(out["approved_action"]["payload"]["amount"], 25_000);
    assert_eq!(out["approved_action"]["amended"], false);

    // Above 1,000.00: two of finance and one of legal.
    let created = ask(&app, &app.agent, refund(250_000)).await;
    let id = created["id"].as_str().unwrap();
    assert_eq!(
        created["review_progress"]["requirements"]
            .as_array()
            .unwrap()
            .len(),
        2,
        "{created}"
    );
    for key in [&ana, &bo] {
        let (status, out) = review(&app, key, id, approve()).await;
        assert_eq!(
            (status, out["status"].as_str()),
            (StatusCode::OK, Some("pending_review")),
            "{out}"
        );
    }
    let (_, out) = review(&app, &lee, id, approve()).await;
    assert_eq!(out["status"], "approved", "{out}");

    // One reject by an eligible reviewer rejects at once.
    let created = ask(&app, &app.agent, refund(250_000)).await;
    let id = created["id"].as_str().unwrap();
    review(&app, &ana, id, approve()).await;
    let (_, out) = review(
        &app,
        &lee,
        id,
        json!({"decision": "reject", "comment": "no"}),
    )
    .await;
    assert_eq!(out["status"], "rejected", "{out}");
    assert_eq!(
        out["review_progress"]["reviews"].as_array().unwrap().len(),
        2
    );
}

#[tokio::test]
async fn the_requester_never_reviews_and_owners_route() {
    let app = routing_app().await;
    // ana asks with an agent key of her own, then tries to approve.
    let ana_agent = key_of(&app, "ana", "agent").await;
    let ana = key_of(&app, "ana", "reviewer").await;
    let created = ask(&app, &ana_agent, refund(25_000)).await;
    let id = created["id"].as_str().unwrap();
    assert_eq!(created["record_hash"].as_str().map(str::len), Some(64));
    let (status, out) = review(&app, &ana, id, approve()).await;
    assert_eq!(
        (status, out["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("self_review_forbidden")),
        "{out}"
    );

    // No @reviewers: the owner group routes, if it exists.
    let owned = json!({"workflow_name": "ops", "tool_name": "rotate_keys", "subject": "prod",
        "risk_level": "high", "owner": "sre"});
    let created = ask(&app, &app.agent, owned.clone()).await;
    assert_eq!(
        created["review_progress"]["requirements"][0]["groups"],
        json!(["sre"]),
        "{created}"
    );
    let id = created["id"].as_str().unwrap();
    let (status, _) = review(&app, &ana, id, approve()).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "finance may not review what sre owns"
    );
    let sam = key_of(&app, "sam", "reviewer").await;
    let (_, out) = review(&app, &sam, id, approve()).await;
    assert_eq!(out["status"], "approved", "{out}");
    // An owner that names no group leaves it to any reviewer.
    let mut unowned = owned;
    unowned["owner"] = json!("nobody-like-this");
    let created = ask(&app, &app.agent, unowned).await;
    assert_eq!(
        created["review_progress"]["requirements"][0]["groups"],
        json!([]),
        "{created}"
    );
    // A caller's owner never widens a policy's own route.
    let mut wider = refund(25_000);
    wider["owner"] = json!("marketing");
    let created = ask(&app, &app.agent, wider).await;
    assert_eq!(
        created["review_progress"]["requirements"][0]["groups"],
        json!(["finance"])
    );
}

#[tokio::test]
async fn approve_with_changes_binds_the_token_to_the_amended_action() {
    let app = routing_app().await;
    let (ana, bo) = (
        key_of(&app, "ana", "reviewer").await,
        key_of(&app, "bo", "reviewer").await,
    );
    let created = ask(&app, &app.agent, refund(25_000)).await;
    let id = created["id"].as_str().unwrap();

    // An amendment the policies would reject is refused, with the reasons.
    let (status, out) = review(
        &app,
        &ana,
        id,
        json!({"decision": "approve", "amended_payload": {"amount": -5, "currency": "usd"}}),
    )
    .await;
    assert_eq!(
        (status, out["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("amendment_rejected")),
        "{out}"
    );
    assert_eq!(
        out["error"]["reasons"][0]["policy_id"],
        "refund-amount-not-positive"
    );
    // One that breaks the schema is a 400; a reject cannot carry one.
    let (status, out) = review(
        &app,
        &ana,
        id,
        json!({"decision": "approve", "amended_payload": {"amount": "lots", "currency": "usd"}}),
    )
    .await;
    assert_eq!(
        (status, out["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("schema_mismatch")),
        "{out}"
    );
    let (status, _) = review(
        &app,
        &ana,
        id,
        json!({"decision": "reject", "amended_payload": {"amount": 1, "currency": "usd"}}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    // ana approves as proposed, then bo amends: the count restarts.
    review(&app, &ana, id, approve()).await;
    let amended = json!({"amount": 20_000, "currency": "usd"});
    let (status, out) = review(
        &app,
        &bo,
        id,
        json!({"decision": "approve", "amended_payload": amended, "comment": "100 less"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(
        out["status"], "pending_review",
        "earlier approvals of another payload do not count"
    );
    assert_eq!(
        out["review_progress"]["requirements"][0]["approved_by"],
        json!(["bo"])
    );
    let (_, out) = review(&app, &ana, id, approve()).await;
    assert_eq!(out["status"], "approved", "{out}");
    assert_eq!(out["approved_action"]["payload"], amended);
    assert_eq!(out["approved_action"]["amended"], true);
    let amended_hash = out["approved_action"]["action_hash"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(
        amended_hash,
        created["review_progress"]["current_action_hash"]
            .as_str()
            .unwrap()
    );

    // The token binds the amended action: the original payload is refused.
    let (_, polled) = app
        .call(
            "GET",
            &format!("/api/gate/requests/{id}"),
            Some(&app.agent),
            None,
        )
        .await;
    let token = polled["approval_token"].as_str().unwrap().to_string();
    let action = |payload: Value| json!({"tool_name": "issue_refund", "subject": "cus_42", "payload": payload});
    let (status, out) = app
        .call("POST", "/api/tokens/redeem", Some(&app.agent),
            Some(json!({"token": token, "action": action(json!({"amount": 25_000, "currency": "usd"}))})))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{out}");
    let (status, out) = app
        .call(
            "POST",
            "/api/tokens/redeem",
            Some(&app.agent),
            Some(json!({"token": token, "action": action(amended.clone())})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(out["action_hash"], amended_hash);

    // A receipt for the original payload is refused (and flags the
    // decision); one for the amended payload is recorded.
    let receipt = |payload: Value| {
        json!({"target_system": "stripe", "target_object": "re_1", "mutation": "create_refund",
            "executor": "billing-worker", "tool_name": "issue_refund", "subject": "cus_42", "payload": payload})
    };
    let executions = format!("/api/decision/{id}/executions");
    let (status, out) = app
        .call(
            "POST",
            &executions,
            Some(&app.agent),
            Some(receipt(json!({"amount": 25_000, "currency": "usd"}))),
        )
        .await;
    assert_eq!(
        (status, out["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("execution_refused")),
        "{out}"
    );
    let (status, out) = app
        .call(
            "POST",
            &executions,
            Some(&app.agent),
            Some(receipt(amended.clone())),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{out}");

    // The packet carries both reviews and the amendment, and verifies
    // offline; without the approval that met the quorum it does not.
    let (_, packet) = app
        .call(
            "GET",
            &format!("/api/decision/{id}/packet"),
            Some(&app.auditor),
            None,
        )
        .await;
    let key = app.store.log_verifier_key().to_string();
    let parsed: gatehouse_log::packet::Packet = serde_json::from_value(packet).unwrap();
    assert_eq!(parsed.reviews.len(), 3);
    assert_eq!(parsed.executions.len(), 1);
    assert_eq!(
        parsed.approved_action_hash.as_deref(),
        Some(amended_hash.as_str())
    );
    let checks = gatehouse_log::packet::verify(&parsed, &key);
    assert!(checks.iter().all(|c| c.ok), "{checks:?}");
    let last_review = parsed.reviews[2].index;
    let mut cut = parsed.clone();
    cut.reviews.pop();
    cut.audit_chain.entries.retain(|e| e.index != last_review);
    let failed: Vec<_> = gatehouse_log::packet::verify(&cut, &key)
        .into_iter()
        .filter(|c| !c.ok)
        .collect();
    let quorum = failed
        .iter()
        .find(|c| c.name == "review_rule")
        .expect("the rule check fails");
    assert!(quorum.detail.contains("1 of 2"), "{failed:?}");
}
