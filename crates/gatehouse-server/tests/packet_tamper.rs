//! The tamper sweep: a Decision Packet from a real server, with a review,
//! a token, a redemption, a receipt, an outcome and policy texts, edited in
//! every field, with entries removed and reordered. Each edit is sealed
//! again (`packet_hash` is only a checksum) and must fail verification,
//! naming the check that failed.

mod common;

use axum::http::StatusCode;
use common::{app, seed_gate_body, TestApp};
use gatehouse_log::packet::{verify, Packet};
use serde_json::{json, Value};

/// A decision taken through its whole life, and its packet as JSON.
async fn full_packet(app: &TestApp) -> Value {
    let body = seed_gate_body();
    let (_, d) = app
        .call(
            "POST",
            "/api/agent/tasks/t/requests",
            Some(&app.agent),
            Some(body.clone()),
        )
        .await;
    assert_eq!(d["status"], "pending_review", "{d}");
    let id = d["id"].as_str().unwrap().to_string();
    let (status, _) = app
        .call(
            "POST",
            &format!("/api/gate/requests/{id}/review"),
            Some(&app.reviewer),
            Some(json!({"decision": "approve", "comment": "tracking checked"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, d) = app
        .call(
            "GET",
            &format!("/api/gate/requests/{id}"),
            Some(&app.agent),
            None,
        )
        .await;
    let token = d["approval_token"].as_str().unwrap();
    let action = json!({"tool_name": body["tool_name"], "subject": body["subject"], "payload": body["payload"]});
    let (status, redeemed) = app
        .call(
            "POST",
            "/api/tokens/redeem",
            Some(&app.agent),
            Some(json!({"token": token, "action": action})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{redeemed}");
    for (what, input) in [
        (
            "executions",
            json!({"target_system": "stripe", "target_object": "re_8821", "mutation": "create_refund",
                   "executor": "billing-worker", "token_jti": redeemed["jti"], "tool_name": body["tool_name"],
                   "subject": body["subject"], "payload": body["payload"]}),
        ),
        (
            "outcomes",
            json!({"status": "succeeded", "action_taken": "refund sent", "observed_metrics": {"amount": 500}}),
        ),
    ] {
        let (status, answer) = app
            .call(
                "POST",
                &format!("/api/decision/{id}/{what}"),
                Some(&app.agent),
                Some(input),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
    }
    let (status, packet) = app
        .call(
            "GET",
            &format!("/api/decision/{id}/packet"),
            Some(&app.auditor),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{packet}");
    packet
}

/// Verifies an edited packet after sealing it again. `None` when the edit
/// no longer reads as a packet (the verifier refuses it outright);
/// otherwise the names of the checks that failed.
fn failed_checks(edited: &Value, key: &str) -> Option<Vec<String>> {
    let packet: Packet = serde_json::from_value(edited.clone()).ok()?;
    let sealed = packet.seal();
    Some(
        verify(&sealed, key)
            .into_iter()
            .filter(|c| !c.ok)
            .map(|c| format!("{}: {}", c.name, c.detail))
            .collect(),
    )
}

/// Every path to a scalar, except the checksum and the unverified section.
fn scalar_paths(v: &Value, path: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                if path.is_empty() && (k == "packet_hash" || k == "unverified") {
                    continue;
                }
                path.push(k.clone());
                scalar_paths(child, path, out);
                path.pop();
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                path.push(i.to_string());
                scalar_paths(child, path, out);
                path.pop();
            }
        }
        Value::Null => {}
        _ => out.push(path.clone()),
    }
}

fn at<'a>(v: &'a mut Value, path: &[String]) -> &'a mut Value {
    path.iter().fold(v, |v, p| match v {
        Value::Array(a) => &mut a[p.parse::<usize>().unwrap()],
        other => &mut other[p.as_str()],
    })
}

/// Other values of the same kind: a changed string (or, for enumerations,
/// the other member), a number plus one, the other boolean.
fn alternatives(v: &Value) -> Vec<Value> {
    match v {
        Value::String(s) => {
            let swapped = match s.as_str() {
                "approve" => "reject",
                "reject" => "approve",
                "succeeded" => "failed",
                "approved" => "rejected",
                "high" => "low",
                "pending_review" => "allow",
                "allow" => "pending_review",
                _ => "",
            };
            let mut out = vec![json!(format!("{s}x"))];
            if !swapped.is_empty() {
                out.insert(0, json!(swapped));
            }
            if let Some(last) = s.chars().last() {
                // A same-length change keeps base64 and hashes well-formed.
                let flipped = if last == 'A' { 'B' } else { 'A' };
                out.push(json!(format!(
                    "{}{flipped}",
                    &s[..s.len() - last.len_utf8()]
                )));
            }
            out
        }
        Value::Number(n) => vec![json!(n.as_i64().unwrap_or(0) + 1)],
        Value::Bool(b) => vec![json!(!b)],
        _ => vec![],
    }
}

#[tokio::test]
async fn every_edit_to_a_packet_fails_and_names_its_check() {
    let app = app().await;
    let packet = full_packet(&app).await;
    let key = app.store.log_verifier_key().to_string();
    assert_eq!(
        failed_checks(&packet, &key),
        Some(vec![]),
        "the honest packet verifies"
    );
    for field in ["reviews", "executions", "outcomes", "token"] {
        assert!(
            !packet[field].is_null() && packet[field] != json!([]),
            "the sweep needs a {field}: {packet}"
        );
    }
    assert!(!packet["policy"]["policies"].as_array().unwrap().is_empty());
    let entries = packet["audit_chain"]["entries"].as_array().unwrap().len();
    assert!(
        entries >= 6,
        "decision, review, token, redemption, receipt, outcome"
    );

    let mut paths = Vec::new();
    scalar_paths(&packet, &mut Vec::new(), &mut paths);
    let mut passed = Vec::new();
    let mut tried = 0;
    for path in &paths {
        let original = at(&mut packet.clone(), path).clone();
        let mut edited_once = false;
        for other in alternatives(&original) {
            let mut edited = packet.clone();
            *at(&mut edited, path) = other.clone();
            if let Some(failed) = failed_checks(&edited, &key) {
                edited_once = true;
                tried += 1;
                if failed.is_empty() {
                    passed.push(format!("{} = {other}", path.join(".")));
                }
            }
        }
        assert!(
            edited_once,
            "no edit of {} reads as a packet",
            path.join(".")
        );
    }
    assert!(
        passed.is_empty(),
        "{} of {tried} edits still verify:\n{}",
        passed.len(),
        passed.join("\n")
    );

    // Removals: each entry, each review, receipt, outcome, policy text,
    // the token, the policy entry.
    let mut removals: Vec<(String, Value)> = Vec::new();
    for list in [
        vec!["audit_chain", "entries"],
        vec!["reviews"],
        vec!["executions"],
        vec!["outcomes"],
        vec!["policy", "policies"],
    ] {
        let path: Vec<String> = list.iter().map(|s| s.to_string()).collect();
        let len = at(&mut packet.clone(), &path).as_array().unwrap().len();
        for i in 0..len {
            let mut edited = packet.clone();
            at(&mut edited, &path).as_array_mut().unwrap().remove(i);
            removals.push((format!("{}[{i}] removed", list.join(".")), edited));
        }
    }
    let mut no_token = packet.clone();
    no_token["token"] = Value::Null;
    removals.push(("token removed".into(), no_token));
    let mut no_policy_entry = packet.clone();
    no_policy_entry["policy"]
        .as_object_mut()
        .unwrap()
        .remove("entry");
    removals.push(("policy entry removed".into(), no_policy_entry));
    // Reordering: each pair of neighbouring entries swapped.
    for i in 0..entries - 1 {
        let mut edited = packet.clone();
        edited["audit_chain"]["entries"]
            .as_array_mut()
            .unwrap()
            .swap(i, i + 1);
        removals.push((format!("entries {i} and {} swapped", i + 1), edited));
    }
    for (what, edited) in removals {
        let failed = failed_checks(&edited, &key).expect("still a packet");
        assert!(!failed.is_empty(), "{what} still verifies");
    }
}

#[tokio::test]
async fn a_missing_entry_in_the_middle_is_named() {
    let app = app().await;
    let packet = full_packet(&app).await;
    let key = app.store.log_verifier_key().to_string();
    let mut edited = packet.clone();
    let review = edited["audit_chain"]["entries"][1]["index"].clone();
    edited["audit_chain"]["entries"]
        .as_array_mut()
        .unwrap()
        .remove(1);
    let failed = failed_checks(&edited, &key).unwrap();
    assert!(
        failed
            .iter()
            .any(|c| c.starts_with("chain: ") && c.contains("does not follow entry")),
        "the broken chain is named after entry {review}: {failed:?}"
    );
    assert!(
        failed.iter().any(|c| c.starts_with("status: ")),
        "without the review the status is not supported: {failed:?}"
    );
}
