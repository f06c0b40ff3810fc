//! A Decision Packet from one whole lifecycle (decide → review → token →
//! redeem → receipt → outcome) verifies offline, and every edit an
//! attacker might make to it fails verification, on both stores.

use serde_json::{json, Value};
use std::path::Path;

use crate::*;

/// decide → review → token → redeem → receipt → outcome → packet → offline
/// verify, then every tamper case must fail verification.
fn evidence_lifecycle(storage: &[&str], work: &Path) {
    let agent = create_key(storage, "agent");
    let reviewer = create_key(storage, "reviewer");
    let server = Server::start(storage, &[]);
    let url = &server.url;
    let body = json!({"workflow_name": "Customer Support", "tool_name": "issue_refund", "subject": "cus_99",
                      "risk_level": "high", "payload": {"amount": 500, "currency": "usd"}});
    let (_, d) = call(
        "POST",
        &format!("{url}/api/agent/tasks/r1/requests"),
        Some(&agent),
        Some(body.clone()),
    );
    assert_eq!(d["status"], "pending_review");
    let id = d["id"].as_str().unwrap().to_string();
    call(
        "POST",
        &format!("{url}/api/gate/requests/{id}/review"),
        Some(&reviewer),
        Some(json!({"decision": "approve"})),
    );
    let (_, approved) = call(
        "GET",
        &format!("{url}/api/gate/requests/{id}"),
        Some(&agent),
        None,
    );
    let token = approved["approval_token"]
        .as_str()
        .expect("token once approved")
        .to_string();
    let action = json!({"tool_name": "issue_refund", "subject": "cus_99", "payload": {"amount": 500, "currency": "usd"}});
    let (code, redeemed) = call(
        "POST",
        &format!("{url}/api/tokens/redeem"),
        Some(&agent),
        Some(json!({"token": token, "action": action})),
    );
    assert_eq!(code, 200, "{redeemed}");
    let (code, _) = call(
        "POST",
        &format!("{url}/api/tokens/redeem"),
        Some(&agent),
        Some(json!({"token": token, "action": action})),
    );
    assert_eq!(code, 409, "a replayed token is refused");
    let (code, exe) = call(
        "POST",
        &format!("{url}/api/decision/{id}/executions"),
        Some(&agent),
        Some(
            json!({"target_system": "stripe", "target_object": "re_1", "mutation": "create_refund", "executor": "worker",
                    "token_jti": redeemed["jti"], "action": "issue_refund", "subject": "cus_99",
                    "payload": {"amount": 500, "currency": "usd"}}),
        ),
    );
    assert_eq!(code, 201, "{exe}");
    let (code, _) = call(
        "POST",
        &format!("{url}/api/decision/{id}/outcomes"),
        Some(&agent),
        Some(
            json!({"status": "succeeded", "action_taken": "refund sent", "observed_metrics": {"amount": 500}}),
        ),
    );
    assert_eq!(code, 201);
    let (code, packet) = call(
        "GET",
        &format!("{url}/api/decision/{id}/packet"),
        Some(&reviewer),
        None,
    );
    assert_eq!(code, 200, "{packet}");
    assert!(
        packet.get("approval_token").is_none() && !packet.to_string().contains(&token),
        "a packet never carries the token"
    );
    let (_, server_verify) = call(
        "GET",
        &format!("{url}/api/decision/{id}/verify"),
        Some(&reviewer),
        None,
    );
    assert_eq!(server_verify["valid"], true, "{server_verify}");

    let mut key_args = vec!["log", "key"];
    key_args.extend_from_slice(storage);
    let key = String::from_utf8(run(&key_args).stdout)
        .unwrap()
        .trim()
        .to_string();
    let verify_packet = |p: &Value, key: &str| {
        let path = work.join("packet.json");
        std::fs::write(&path, serde_json::to_vec_pretty(p).unwrap()).unwrap();
        let out = run(&["verify", path.to_str().unwrap(), "--log-key", key]);
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).to_string(),
        )
    };
    let (code, out) = verify_packet(&packet, &key);
    assert_eq!(code, 0, "{out}");
    for expected in [
        "ok    checkpoint_signature: ",
        "ok    chain: ",
        "ok    record: ",
        "ok    request: ",
        "ok    status: ",
        "ok    reviews: ",
        "ok    token: ",
        "ok    receipts: 1 receipts",
        "ok    outcomes: 1 outcomes",
        "ok    policy: ",
    ] {
        assert!(out.contains(expected), "missing check {expected}: {out}");
    }
    assert!(
        out.trim_end()
            .lines()
            .last()
            .unwrap()
            .starts_with("verified: all "),
        "{out}"
    );
    // Plain words, not Rust's debug output.
    assert!(!out.contains("Some(") && !out.contains("{}"), "{out}");
    let path = work.join("packet.json");
    let json_out = run(&[
        "verify",
        path.to_str().unwrap(),
        "--log-key",
        &key,
        "--json",
    ]);
    assert!(json_out.status.success());
    let report: Value = serde_json::from_slice(&json_out.stdout).unwrap();
    assert_eq!(report["verified"], true, "{report}");
    assert!(report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["ok"] == true));

    // Another log's key.
    let other = String::from_utf8(run(&["log", "keygen"]).stderr).unwrap();
    let (code, out) = verify_packet(&packet, other.trim().strip_prefix("public key: ").unwrap());
    assert_eq!(code, 1);
    assert!(out.contains("\nNOT verified: "), "{out}");
    let path = work.join("packet.json");
    let other_key = other.trim().strip_prefix("public key: ").unwrap();
    let json_out = run(&[
        "verify",
        path.to_str().unwrap(),
        "--log-key",
        other_key,
        "--json",
    ]);
    assert_eq!(json_out.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&json_out.stdout).unwrap();
    assert_eq!(report["verified"], false, "{report}");
    assert!(out.contains("FAIL  checkpoint_signature"), "{out}");

    // A flipped byte in fields across the packet; each must fail, even with
    // packet_hash recomputed, because the signed log disagrees.
    let tampers: Vec<(&str, Tamper)> = vec![
        (
            "record subject",
            Box::new(|p: &mut Value| p["record"]["subject"] = json!("cus_98")),
        ),
        (
            "record verdict",
            Box::new(|p: &mut Value| p["record"]["verdict"] = json!("yes")),
        ),
        (
            "receipt target",
            Box::new(|p: &mut Value| p["executions"][0]["target_object"] = json!("re_2")),
        ),
        (
            "outcome status",
            Box::new(|p: &mut Value| p["outcomes"][0]["status"] = json!("failed")),
        ),
        (
            "token act",
            Box::new(|p: &mut Value| p["token"]["claims"]["act"] = json!("sha256:00")),
        ),
        (
            "leaf byte",
            Box::new(|p: &mut Value| {
                let leaf = p["audit_chain"]["entries"][0]["leaf"]
                    .as_str()
                    .unwrap()
                    .to_string();
                let mut bytes = base64_decode(&leaf);
                bytes[10] ^= 1;
                p["audit_chain"]["entries"][0]["leaf"] = json!(base64_encode(&bytes));
            }),
        ),
        (
            "removed receipt entry",
            Box::new(|p: &mut Value| {
                let entries = p["audit_chain"]["entries"].as_array_mut().unwrap();
                let at = entries
                    .iter()
                    .position(|e| {
                        String::from_utf8_lossy(&base64_decode(e["leaf"].as_str().unwrap()))
                            .contains("\"type\":\"execution\"")
                    })
                    .unwrap();
                entries.remove(at);
            }),
        ),
    ];
    for (name, tamper) in tampers {
        let mut changed = packet.clone();
        tamper(&mut changed);
        let (code, out) = verify_packet(&changed, &key);
        assert_eq!(code, 1, "{name} must fail: {out}");
        // Recomputing packet_hash does not help.
        let sealed = reseal(&changed);
        let (code, out) = verify_packet(&sealed, &key);
        assert_eq!(
            code, 1,
            "{name} must fail even with a recomputed packet_hash: {out}"
        );
    }
}

/// An edit an attacker might make to a packet.
type Tamper = Box<dyn Fn(&mut Value)>;

fn base64_encode(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(b)
}

fn reseal(p: &Value) -> Value {
    let packet: gatehouse_log::packet::Packet = serde_json::from_value(p.clone()).unwrap();
    serde_json::to_value(packet.seal()).unwrap()
}

#[test]
fn evidence_lifecycle_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    evidence_lifecycle(&["--data", data.to_str().unwrap()], dir.path());
}

#[test]
fn evidence_lifecycle_on_postgres() {
    let schema = fresh_schema();
    let dir = tempfile::tempdir().unwrap();
    let flags = postgres_flags(&schema, dir.path());
    let storage: Vec<&str> = flags.iter().map(String::as_str).collect();
    evidence_lifecycle(&storage, dir.path());
}
