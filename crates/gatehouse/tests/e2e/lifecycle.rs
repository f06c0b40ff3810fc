//! The whole lifecycle on both stores, policies served end to end, rate
//! limits, and refusing to start on invalid policies.

use serde_json::{json, Value};
use std::time::Duration;

use crate::*;

/// The whole core lifecycle on one storage backend.
fn lifecycle(storage: &[&str]) {
    let agent = create_key(storage, "agent");
    let reviewer = create_key(storage, "reviewer");
    let server = Server::start(storage, &[]);
    let url = &server.url;

    // The Gate API as a GitHub Actions curl step calls it: pending, then approved by a reviewer
    // through the CLI, observed by a long-polling workflow.
    let (status, created) = call(
        "POST",
        &format!("{url}/api/agent/tasks/run-1/requests"),
        Some(&agent),
        Some(deploy_body()),
    );
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["status"], "pending_review");
    let id = created["id"].as_str().unwrap().to_string();
    let poll_url = format!("{url}/api/gate/requests/{id}?wait=30");
    let agent_clone = agent.clone();
    let poller = std::thread::spawn(move || call("GET", &poll_url, Some(&agent_clone), None));
    std::thread::sleep(Duration::from_millis(300));
    let out = gatehouse(&[
        "review",
        "approve",
        &id,
        "--comment",
        "change window open",
        "--url",
        url,
    ])
    .env("GATEHOUSE_API_KEY", &reviewer)
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (_, polled) = poller.join().unwrap();
    assert_eq!(polled["status"], "approved");

    // Decide API.
    let (status, record) = call(
        "POST",
        &format!("{url}/api/decide"),
        Some(&agent),
        Some(
            json!({"question": "Apply?", "context": {"workflow": "billing", "requested_action": "apply_discount", "risk": "low", "discount_percent": 10}}),
        ),
    );
    assert_eq!(status, 201);
    assert_eq!(record["verdict"], "yes");
    let (_, replay) = call(
        "GET",
        &format!("{url}{}", record["replay_url"].as_str().unwrap()),
        Some(&reviewer),
        None,
    );
    assert_eq!(replay["matches"], true);

    // Idempotency over real HTTP: same key and body → the original (200);
    // same key, different body → 409.
    let mut idem = deploy_body();
    idem["idempotency_key"] = json!("run-1-deploy");
    let (s1, first) = call(
        "POST",
        &format!("{url}/api/agent/tasks/run-1/requests"),
        Some(&agent),
        Some(idem.clone()),
    );
    let (s2, again) = call(
        "POST",
        &format!("{url}/api/agent/tasks/run-1/requests"),
        Some(&agent),
        Some(idem.clone()),
    );
    assert_eq!((s1, s2), (201, 200));
    assert_eq!(first["id"], again["id"]);
    idem["subject"] = json!("Deploy a different commit");
    let (s3, conflict) = call(
        "POST",
        &format!("{url}/api/agent/tasks/run-1/requests"),
        Some(&agent),
        Some(idem),
    );
    assert_eq!(
        (s3, conflict["error"]["code"].as_str()),
        (409, Some("idempotency_conflict"))
    );

    // Bad input gets a stable error code, not a 500.
    let (code, bad) = call(
        "POST",
        &format!("{url}/api/agent/tasks/run-1/requests"),
        Some(&agent),
        Some(json!({"tool_name": 5})),
    );
    assert_eq!(
        (code, bad["error"]["code"].as_str()),
        (422, Some("validation_failed"))
    );

    // Auth failures.
    assert_eq!(
        call("POST", &format!("{url}/api/decide"), None, Some(json!({}))).0,
        401
    );
    assert_eq!(
        call(
            "POST",
            &format!("{url}/api/decide"),
            Some("gh_x_y"),
            Some(json!({}))
        )
        .0,
        401
    );

    // Crash and restart: every acknowledged decision is still there.
    let mut acknowledged = vec![(id.clone(), "approved".to_string())];
    for i in 0..20 {
        let mut body = deploy_body();
        body["risk_level"] = json!(if i % 2 == 0 { "low" } else { "high" });
        let (status, d) = call(
            "POST",
            &format!("{url}/api/agent/tasks/run-2/requests"),
            Some(&agent),
            Some(body),
        );
        assert_eq!(status, 201);
        acknowledged.push((
            d["id"].as_str().unwrap().to_string(),
            d["status"].as_str().unwrap().to_string(),
        ));
    }
    server.crash();
    let server = Server::start(storage, &[]);
    for (id, status) in &acknowledged {
        let (code, d) = call(
            "GET",
            &format!("{}/api/gate/requests/{id}", server.url),
            Some(&agent),
            None,
        );
        assert_eq!(code, 200, "decision {id} lost after a crash");
        assert_eq!(d["status"], status.as_str());
    }
    // A pending decision from before the crash can still be reviewed.
    let pending = acknowledged
        .iter()
        .find(|(_, s)| s == "pending_review")
        .unwrap();
    let (code, _) = call(
        "POST",
        &format!("{}/api/gate/requests/{}/review", server.url, pending.0),
        Some(&reviewer),
        Some(json!({"decision": "reject"})),
    );
    assert_eq!(code, 200);
}

#[test]
fn lifecycle_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap().to_string();
    lifecycle(&["--data", &data]);
}

#[test]
fn lifecycle_on_postgres() {
    let schema = fresh_schema();
    let dir = tempfile::tempdir().unwrap();
    let flags = postgres_flags(&schema, dir.path());
    let storage: Vec<&str> = flags.iter().map(String::as_str).collect();
    lifecycle(&storage);
}

#[test]
fn seed_scenario_policies_served_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap().to_string();
    let storage = ["--data", data.as_str()];
    let agent = create_key(&storage, "agent");
    let policies = examples("seed-scenarios");
    let server = Server::start(&storage, &["--policies", policies.to_str().unwrap()]);
    let post = |tool: &str, payload: Value| {
        let body = json!({"workflow_name": "w", "tool_name": tool, "subject": "s", "risk_level": "medium", "payload": payload});
        call(
            "POST",
            &format!("{}/api/agent/tasks/t/requests", server.url),
            Some(&agent),
            Some(body),
        )
    };
    assert_eq!(
        post("issue_refund", json!({"amount": 500, "currency": "usd"})).1["status"],
        "allow"
    );
    assert_eq!(
        post("issue_refund", json!({"amount": 10001, "currency": "usd"})).1["status"],
        "pending_review"
    );
    assert_eq!(
        post("apply_discount", json!({"discount_percent": 25})).1["status"],
        "reject"
    );
    assert_eq!(
        post("deploy_production", json!({})).1["status"],
        "pending_review"
    );
    let (code, body) = post("issue_refund", json!({"amount": 1.5, "currency": "usd"}));
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (400, Some("schema_mismatch"))
    );
}

#[test]
fn rate_limit_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap().to_string();
    let storage = ["--data", data.as_str()];
    let agent = create_key(&storage, "agent");
    let server = Server::start(&storage, &["--rate-limit", "1", "--rate-burst", "1"]);
    let codes: Vec<u16> = (0..3)
        .map(|_| {
            call(
                "GET",
                &format!("{}/api/whoami", server.url),
                Some(&agent),
                None,
            )
            .0
        })
        .collect();
    assert_eq!(codes[0], 200);
    assert!(codes[1..].contains(&429), "{codes:?}");
}

#[test]
fn invalid_policies_refuse_to_start_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("schema.cedarschema"), "entity Agent; entity Subject;\naction \"default\" appliesTo { principal: Agent, resource: Subject, context: { risk: String } };").unwrap();
    std::fs::write(dir.path().join("rules.cedar"), "permit(principal, action, resource);\nforbid(principal, action, resource) when { context.rsk == \"high\" };").unwrap();
    let data = tempfile::tempdir().unwrap();
    let out = run(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--data",
        data.path().to_str().unwrap(),
        "--policies",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("rules.cedar:2:"), "{stderr}");
    let check = run(&["policy", "check", dir.path().to_str().unwrap()]);
    assert!(!check.status.success());
}
