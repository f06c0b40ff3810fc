//! Private hooks for no-code tools, through the router: created by an
//! admin, asked with the secret or a body signature, scoped to one
//! workflow's actions, rate-limited, revocable, and in the log.

mod common;

use axum::http::StatusCode;
use common::{app_with, seed_policies, TestApp};
use gatehouse_app::AppConfig;
use gatehouse_log::entry::{KeyChange, LogEntry, LogEvent};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

fn discount(percent: u32, risk: &str) -> Value {
    json!({"question": "Approve the discount?", "mode": "single", "context": {
        "requested_action": "apply_discount", "customer_id": "cus_1",
        "source_record_id": "sub_1", "owner_rule": "verified", "margin_floor": "passed",
        "discount_percent": percent, "risk": risk}})
}

/// A credit: an action the seed policies have no rule for, so a high risk
/// one goes to review.
fn credit(risk: &str) -> Value {
    json!({"question": "Issue the credit?", "context": {
        "requested_action": "issue_credit", "customer_id": "cus_1", "risk": risk}})
}

async fn hook(app: &TestApp, name: &str) -> (String, String) {
    let (status, created) = app
        .call(
            "POST",
            "/api/hooks",
            Some(&app.admin),
            Some(json!({"name": name, "workflow": "billing_discount_gate",
                        "actions": ["apply_discount", "issue_credit"]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(
        created["hook"]["path"],
        format!("/hooks/{}", created["hook"]["id"].as_str().unwrap())
    );
    (
        created["hook"]["id"].as_str().unwrap().to_string(),
        created["secret"].as_str().unwrap().to_string(),
    )
}

async fn ask(
    app: &TestApp,
    id: &str,
    body: &Value,
    headers: &[(&str, &str)],
) -> (StatusCode, Value) {
    let (status, _, json) = app
        .call_raw(
            "POST",
            &format!("/hooks/{id}"),
            None,
            Some(body.to_string()),
            headers,
        )
        .await;
    (status, json)
}

fn signature(secret: &str, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

async fn app() -> TestApp {
    app_with(
        seed_policies(),
        AppConfig {
            rate_limit_per_second: 0,
            ..Default::default()
        },
    )
    .await
}

#[tokio::test]
async fn a_hook_answers_with_a_route_and_the_decision_handles() {
    let app = app().await;
    let (id, secret) = hook(&app, "n8n-discounts").await;
    let with_secret = [("x-gatehouse-hook-secret", secret.as_str())];

    let (status, proceed) = ask(&app, &id, &discount(15, "low"), &with_secret).await;
    assert_eq!(status, StatusCode::OK, "{proceed}");
    assert_eq!(proceed["route"], "proceed");
    let decision_id = proceed["decision_id"].as_str().unwrap();
    // The handles are the decision's: the record an auditor reads back.
    let (_, record) = app
        .call(
            "GET",
            &format!("/api/decision/{decision_id}"),
            Some(&app.auditor),
            None,
        )
        .await;
    assert_eq!(record["verdict"], "yes");
    assert_eq!(
        record["workflow"], "billing_discount_gate",
        "the hook's workflow by default"
    );
    assert_eq!(proceed["record_hash"], record["record_hash"]);
    assert_eq!(proceed["request_id"], record["request_id"]);
    assert_eq!(proceed["verify_url"], record["verify_url"]);
    assert_eq!(proceed["replay_url"], record["replay_url"]);

    let (_, block) = ask(&app, &id, &discount(35, "low"), &with_secret).await;
    assert_eq!(block["route"], "block", "{block}");
    assert!(!block["reasons"].as_array().unwrap().is_empty());
    let (_, review) = ask(&app, &id, &credit("high"), &with_secret).await;
    assert_eq!(review["route"], "review", "{review}");

    // A signature of the exact body works instead of the secret; a
    // signature of another body does not.
    let body = discount(15, "low").to_string();
    let (status, _, signed) = app
        .call_raw(
            "POST",
            &format!("/hooks/{id}"),
            None,
            Some(body.clone()),
            &[("x-gatehouse-signature", &signature(&secret, &body))],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{signed}");
    assert_eq!(signed["route"], "proceed");
    let (status, _, refused) = app
        .call_raw(
            "POST",
            &format!("/hooks/{id}"),
            None,
            Some(body.replace("15", "16")),
            &[("x-gatehouse-signature", &signature(&secret, &body))],
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(refused["error"]["code"], "unauthorized");

    // A retried step with the same Idempotency-Key gets the same decision.
    let retry = [
        ("x-gatehouse-hook-secret", secret.as_str()),
        ("idempotency-key", "zap-run-7"),
    ];
    let (_, first) = ask(&app, &id, &credit("high"), &retry).await;
    let (_, again) = ask(&app, &id, &credit("high"), &retry).await;
    assert_eq!(first["decision_id"], again["decision_id"]);
    assert_eq!(again["route"], "review");
    // Once a reviewer approves, the same retried step learns it.
    let pending = first["decision_id"].as_str().unwrap();
    let (status, _) = app
        .call(
            "POST",
            &format!("/api/decision/{pending}/review"),
            Some(&app.reviewer),
            Some(json!({"decision": "approve"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, after) = ask(&app, &id, &credit("high"), &retry).await;
    assert_eq!(
        (after["decision_id"].as_str(), after["route"].as_str()),
        (Some(pending), Some("proceed"))
    );
}

#[tokio::test]
async fn a_hook_asks_only_within_its_scope_and_stores_nothing_else() {
    let app = app().await;
    let (id, secret) = hook(&app, "zapier").await;
    let with_secret = [("x-gatehouse-hook-secret", secret.as_str())];
    let size = app.store.log_size().await.unwrap();
    let mut other_action = discount(15, "low");
    other_action["context"]["requested_action"] = json!("delete_customer");
    let mut other_workflow = discount(15, "low");
    other_workflow["context"]["workflow"] = json!("payroll");
    for body in [other_action, other_workflow] {
        let (status, err) = ask(&app, &id, &body, &with_secret).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{err}");
        assert_eq!(err["error"]["code"], "out_of_scope");
    }
    assert_eq!(
        app.store.log_size().await.unwrap(),
        size,
        "nothing is stored or logged"
    );

    // Another action in scope is fine.
    let mut credit = discount(15, "low");
    credit["context"]["requested_action"] = json!("issue_credit");
    assert_eq!(
        ask(&app, &id, &credit, &with_secret).await.0,
        StatusCode::OK
    );

    // No secret, a wrong one, an unknown hook: 401 alike.
    for (hook_id, headers) in [
        (id.as_str(), vec![]),
        (id.as_str(), vec![("x-gatehouse-hook-secret", "ghh_wrong")]),
        (
            "hook_unknown",
            vec![("x-gatehouse-hook-secret", secret.as_str())],
        ),
    ] {
        let (status, err) = ask(&app, hook_id, &discount(15, "low"), &headers).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{hook_id}: {err}");
        assert_eq!(err["error"]["code"], "unauthorized");
    }
    // A hook's secret is not an API key.
    let (status, _) = app.call("GET", "/api/decisions", Some(&secret), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn hooks_are_admin_only_revocable_and_logged() {
    let app = app().await;
    let body = json!({"name": "make", "workflow": "w", "actions": ["a"]});
    for key in [&app.agent, &app.reviewer, &app.auditor] {
        let (status, _) = app
            .call("POST", "/api/hooks", Some(key), Some(body.clone()))
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
    let (id, secret) = hook(&app, "make").await;
    let (status, dup) = app
        .call(
            "POST",
            "/api/hooks",
            Some(&app.admin),
            Some(json!({"name": "make", "workflow": "w", "actions": ["a"]})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{dup}");
    let (status, bad) = app
        .call(
            "POST",
            "/api/hooks",
            Some(&app.admin),
            Some(json!({"name": "x y", "workflow": "w", "actions": []})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");

    let (_, listed) = app.call("GET", "/api/hooks", Some(&app.admin), None).await;
    let item = &listed["items"][0];
    assert_eq!(item["id"], id.as_str());
    assert!(item.get("secret").is_none(), "a secret is shown only once");
    assert!(!listed.to_string().contains(&secret));

    let (status, revoked) = app
        .call(
            "DELETE",
            &format!("/api/hooks/{id}"),
            Some(&app.admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{revoked}");
    assert!(revoked["revoked_at"].is_string());
    let (status, _) = ask(
        &app,
        &id,
        &discount(15, "low"),
        &[("x-gatehouse-hook-secret", secret.as_str())],
    )
    .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a revoked hook is refused"
    );
    let (status, _) = app
        .call("DELETE", "/api/hooks/hook_missing", Some(&app.admin), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Both changes are log entries with the hook's scope, never its secret.
    let size = app.store.log_size().await.unwrap();
    let leaves = app.store.log_leaves(0, size as u32).await.unwrap();
    let changes: Vec<KeyChange> = leaves
        .iter()
        .filter_map(|(_, bytes)| match LogEntry::parse(bytes).unwrap() {
            LogEntry {
                id: logged,
                event:
                    LogEvent::HookEvent {
                        event,
                        workflow,
                        actions,
                        ..
                    },
                ..
            } if logged == id => {
                assert_eq!(
                    (workflow.as_str(), actions),
                    (
                        "billing_discount_gate",
                        vec!["apply_discount".to_string(), "issue_credit".to_string()]
                    )
                );
                Some(event)
            }
            _ => None,
        })
        .collect();
    assert_eq!(changes, vec![KeyChange::Created, KeyChange::Revoked]);
    assert!(leaves
        .iter()
        .all(|(_, b)| !String::from_utf8_lossy(b).contains(&secret)));
}

#[tokio::test]
async fn each_hook_has_its_own_rate_limit() {
    let app = app_with(
        seed_policies(),
        AppConfig {
            rate_limit_per_second: 1,
            rate_limit_burst: 1,
            ..Default::default()
        },
    )
    .await;
    // Made in the store: the admin's own key is limited too.
    let mut made = Vec::new();
    for name in ["a", "b"] {
        let new = gatehouse_app::hooks::new_hook(
            name,
            "billing_discount_gate",
            &["apply_discount".to_string()],
            "test",
            1,
        )
        .unwrap();
        app.store.create_hook(&new.hook).await.unwrap();
        made.push((new.hook.id, new.secret));
    }
    let [(a, a_secret), (b, b_secret)] = <[_; 2]>::try_from(made).unwrap();
    let body = discount(15, "low");
    assert_eq!(
        ask(&app, &a, &body, &[("x-gatehouse-hook-secret", &a_secret)])
            .await
            .0,
        StatusCode::OK
    );
    let (status, limited) = ask(&app, &a, &body, &[("x-gatehouse-hook-secret", &a_secret)]).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{limited}");
    assert_eq!(limited["error"]["code"], "rate_limited");
    assert_eq!(
        ask(&app, &b, &body, &[("x-gatehouse-hook-secret", &b_secret)])
            .await
            .0,
        StatusCode::OK,
        "another hook has a bucket of its own"
    );
}
