//! One rule set: every refusal the server gives before it records a
//! redemption or a receipt is the refusal the verifier gives when such an
//! entry stands in the log. Each case is tried on both sides: through the
//! API (refused, nothing logged), and as a forged entry chained after the
//! decision's real entries (named by `derive`, which packets, `log verify`
//! and the server share).

mod common;

use std::time::Duration;

use axum::http::StatusCode;
use common::{app, app_with, low_risk, seed_gate_body, TestApp};
use gatehouse_core::decision::rfc3339;
use gatehouse_log::entry::{Leaf, LogEntry, LogEvent, ENTRY_VERSION};
use gatehouse_log::state::derive;
use serde_json::{json, Value};
use time::OffsetDateTime;

/// Creates a request; returns its id and, when allowed, its token's jti.
async fn request(app: &TestApp, body: &Value) -> (String, Option<String>, Option<String>) {
    let (status, d) = app
        .call(
            "POST",
            "/api/agent/tasks/t/requests",
            Some(&app.agent),
            Some(body.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{d}");
    let token = d["approval_token"].as_str().map(str::to_string);
    let jti = token.as_deref().map(|t| {
        jsonwebtoken::dangerous::insecure_decode::<Value>(t)
            .unwrap()
            .claims["jti"]
            .as_str()
            .unwrap()
            .to_string()
    });
    (d["id"].as_str().unwrap().to_string(), token, jti)
}

fn receipt(body: &Value, jti: Option<&str>) -> Value {
    let mut r = json!({
        "target_system": "stripe", "target_object": "re_1", "mutation": "create_refund",
        "executor": "worker", "tool_name": body["tool_name"], "subject": body["subject"],
        "payload": body["payload"]
    });
    if let Some(j) = jti {
        r["token_jti"] = json!(j);
    }
    r
}

/// The server's side: the receipt is refused with 409 and logs nothing.
async fn server_refuses_receipt(app: &TestApp, id: &str, input: Value, because: &str) {
    let before = app.store.log_entries_for(id).await.unwrap().len();
    let (status, answer) = app
        .call(
            "POST",
            &format!("/api/decision/{id}/executions"),
            Some(&app.agent),
            Some(input),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert_eq!(answer["error"]["code"], "execution_refused");
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(message.contains(because), "server: {message}");
    let entries = app.store.log_entries_for(id).await.unwrap();
    let kinds: Vec<String> = entries[before..]
        .iter()
        .map(|(_, leaf)| LogEntry::parse(leaf).unwrap().event.kind().to_string())
        .collect();
    assert!(
        kinds.iter().all(|k| k == "flag"),
        "only a flag may follow a refusal: {kinds:?}"
    );
}

/// The verifier's side: `event`, chained after the decision's real
/// entries as if the server had accepted it, is named for `because`.
async fn verifier_refuses(app: &TestApp, id: &str, event: LogEvent, because: &str) {
    let mut entries = app.store.log_entries_for(id).await.unwrap();
    let (last, leaf) = entries.last().unwrap().clone();
    let prev = Leaf {
        kind: "",
        id: String::new(),
        bytes: leaf,
    }
    .hash_hex();
    let forged = LogEntry {
        v: ENTRY_VERSION,
        id: id.to_string(),
        ts: rfc3339(gatehouse_core::decision::truncate_to_millis(
            OffsetDateTime::now_utc(),
        )),
        prev: Some(prev),
        event,
    };
    entries.push((last + 1, forged.to_bytes()));
    let (_, problems) = derive(id, &entries);
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with(&format!("log entry {}: ", last + 1)) && p.contains(because)),
        "verifier: {problems:?}"
    );
}

fn execution(action_hash: &str, jti: Option<&str>) -> LogEvent {
    LogEvent::Execution {
        execution_id: "exe_forged".into(),
        execution_hash: "0".repeat(64),
        action_hash: action_hash.into(),
        token_jti: jti.map(str::to_string),
    }
}

#[tokio::test]
async fn receipt_refusals_are_the_same_on_both_sides() {
    let app = app().await;
    let body = low_risk();
    let (id, _, jti) = request(&app, &body).await;
    let jti = jti.unwrap();

    // Another action than the approved one.
    let mut other = body.clone();
    other["payload"]["amount"] = json!(50_000);
    let because = "is not the approved one";
    server_refuses_receipt(&app, &id, receipt(&other, Some(&jti)), because).await;
    verifier_refuses(&app, &id, execution("sha256:other", Some(&jti)), because).await;

    // A token issued for another decision.
    let (_, _, foreign) = request(&app, &body).await;
    let foreign = foreign.unwrap();
    let because = "was not issued for this decision";
    server_refuses_receipt(&app, &id, receipt(&body, Some(&foreign)), because).await;
    let d = app.store.get_decision(&id).await.unwrap().unwrap();
    verifier_refuses(
        &app,
        &id,
        execution(&d.action_hash, Some(&foreign)),
        because,
    )
    .await;

    // A decision that authorised nothing (pending review).
    let (pending, _, _) = request(&app, &seed_gate_body()).await;
    let because = "so no action was authorised";
    server_refuses_receipt(&app, &pending, receipt(&seed_gate_body(), None), because).await;
    let p = app.store.get_decision(&pending).await.unwrap().unwrap();
    verifier_refuses(&app, &pending, execution(&p.action_hash, None), because).await;
}

#[tokio::test]
async fn receipts_after_the_token_expired_are_refused_on_both_sides() {
    let app = app_with(
        gatehouse_policy::starter_files(),
        gatehouse_app::AppConfig {
            rate_limit_per_second: 0,
            token_ttl: Duration::from_secs(1),
            ..Default::default()
        },
    )
    .await;
    let body = low_risk();
    let (with_jti, _, jti) = request(&app, &body).await;
    let (without_jti, _, _) = request(&app, &body).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let because = "after the approval token expired";
    let jti = jti.unwrap();
    server_refuses_receipt(&app, &with_jti, receipt(&body, Some(&jti)), because).await;
    server_refuses_receipt(&app, &without_jti, receipt(&body, None), because).await;
    let d = app.store.get_decision(&with_jti).await.unwrap().unwrap();
    verifier_refuses(
        &app,
        &with_jti,
        execution(&d.action_hash, Some(&jti)),
        because,
    )
    .await;
    verifier_refuses(&app, &without_jti, execution(&d.action_hash, None), because).await;
}

#[tokio::test]
async fn redemption_refusals_are_the_same_on_both_sides() {
    let app = app_with(
        gatehouse_policy::starter_files(),
        gatehouse_app::AppConfig {
            rate_limit_per_second: 0,
            token_ttl: Duration::from_secs(2),
            ..Default::default()
        },
    )
    .await;
    let body = low_risk();
    let action = json!({"tool_name": body["tool_name"], "subject": body["subject"], "payload": body["payload"]});
    let redeem = |token: String| {
        let action = action.clone();
        let app = &app;
        async move {
            app.call(
                "POST",
                "/api/tokens/redeem",
                Some(&app.agent),
                Some(json!({"token": token, "action": action})),
            )
            .await
        }
    };
    let redeemed = |jti: &str| LogEvent::TokenRedeemed {
        jti: jti.into(),
        redeemed_by: "key_forged".into(),
    };

    // A second redemption.
    let (id, token, jti) = request(&app, &body).await;
    let (token, jti) = (token.unwrap(), jti.unwrap());
    assert_eq!(redeem(token.clone()).await.0, StatusCode::OK);
    let (status, answer) = redeem(token).await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert_eq!(answer["error"]["code"], "token_already_redeemed");
    verifier_refuses(&app, &id, redeemed(&jti), gatehouse_log::rules::REDEEMED).await;

    // A token that is not the decision's.
    verifier_refuses(&app, &id, redeemed("jti_other"), "not the token issued").await;

    // A decision that authorised nothing has no token to redeem; a logged
    // redemption of one is refused all the same.
    let (pending, token, _) = request(&app, &seed_gate_body()).await;
    assert!(token.is_none());
    verifier_refuses(&app, &pending, redeemed("jti_any"), "is pending_review").await;

    // After the token expired: the server refuses it before anything else;
    // the verifier refuses a redemption logged after the expiry.
    let (late, token, jti) = request(&app, &body).await;
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let (status, answer) = redeem(token.unwrap()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(answer["error"]["code"], "token_rejected");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("expired"),
        "{answer}"
    );
    verifier_refuses(&app, &late, redeemed(&jti.unwrap()), "the token expired at").await;
}
