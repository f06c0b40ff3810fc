//! Several replicas on one PostgreSQL database, keys from the environment,
//! and a graceful stop.

use serde_json::json;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::*;

/// Keys injected as environment variables (a secret store's way) replace
/// the key files; without either, PostgreSQL refuses to start and says how.
#[test]
fn signing_keys_from_the_environment_on_postgres() {
    let schema = fresh_schema();
    let url = schema.url();
    let storage = ["--database-url", url.as_str()];
    let refused = run(&["keys", "create", "--role", "agent", "--database-url", &url]);
    assert!(!refused.status.success());
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(message.contains("GATEHOUSE_LOG_SIGNING_KEY"), "{message}");

    let keygen = |extra: &[&str]| {
        let mut args = vec!["log", "keygen"];
        args.extend_from_slice(extra);
        let out = run(&args);
        assert!(out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        (String::from_utf8(out.stdout).unwrap(), stderr)
    };
    let (log_key, log_info) = keygen(&[]);
    let (token_key, token_info) = keygen(&["--token"]);
    let with_keys = |args: &[&str]| {
        let mut cmd = gatehouse(args);
        cmd.env("GATEHOUSE_LOG_SIGNING_KEY", &log_key)
            .env("GATEHOUSE_TOKEN_SIGNING_KEY", &token_key);
        cmd
    };
    let out = with_keys(&["log", "key", "--database-url", &url])
        .output()
        .unwrap();
    assert!(out.status.success());
    let verifier = String::from_utf8(out.stdout).unwrap();
    assert!(
        log_info.contains(verifier.trim()),
        "{log_info} / {verifier}"
    );

    let out = with_keys(&["keys", "create", "--role", "agent", "--database-url", &url])
        .output()
        .unwrap();
    assert!(out.status.success());
    let agent = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .to_string();
    let mut serve = with_keys(&["serve", "--listen", "127.0.0.1:0"]);
    serve.args(storage);
    let server = Server::spawn(serve);
    let (code, jwks) = call(
        "GET",
        &format!("{}/.well-known/jwks.json", server.url),
        None,
        None,
    );
    assert_eq!(code, 200);
    let kid = jwks["keys"][0]["kid"].as_str().unwrap().to_string();
    assert!(token_info.contains(&kid), "{token_info} / {kid}");
    let (code, decided) = call(
        "POST",
        &format!("{}/api/decide", server.url),
        Some(&agent),
        Some(json!({
            "question": "Approve annual-plan discount exception before billing update?",
            "mode": "single",
            "context": {
                "workflow": "billing_discount_gate", "customer_id": "cus_1",
                "invoice_or_subscription_id": "sub_1", "requested_action": "apply_discount",
                "discount_percent": 15, "margin_floor": "passed", "owner_rule": "verified",
                "risk": "low"
            }
        })),
    );
    assert_eq!(code, 201, "{decided}");
    assert!(decided["approval_token"].is_string(), "{decided}");
    assert!(decided["checkpoint"]
        .as_str()
        .unwrap()
        .contains(verifier.split('+').next().unwrap()));

    // A key from the environment cannot be rotated in place.
    let out = with_keys(&["keys", "rotate", "--database-url", &url])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("GATEHOUSE_TOKEN_SIGNING_KEY"));
}

#[test]
fn two_replicas_share_postgres() {
    let schema = fresh_schema();
    let dir = tempfile::tempdir().unwrap();
    let flags = postgres_flags(&schema, dir.path());
    let storage: Vec<&str> = flags.iter().map(String::as_str).collect();
    let agent = create_key(&storage, "agent");
    let reviewer = create_key(&storage, "reviewer");
    let a = Server::start(&storage, &[]);
    let b = Server::start(&storage, &[]);
    let (_, created) = call(
        "POST",
        &format!("{}/api/agent/tasks/t/requests", a.url),
        Some(&agent),
        Some(deploy_body()),
    );
    let id = created["id"].as_str().unwrap().to_string();
    let poll = format!("{}/api/gate/requests/{id}?wait=20", a.url);
    let agent2 = agent.clone();
    let poller = std::thread::spawn(move || {
        let started = Instant::now();
        (call("GET", &poll, Some(&agent2), None), started.elapsed())
    });
    std::thread::sleep(Duration::from_millis(300));
    let (code, _) = call(
        "POST",
        &format!("{}/api/gate/requests/{id}/review", b.url),
        Some(&reviewer),
        Some(json!({"decision": "approve"})),
    );
    assert_eq!(code, 200);
    let ((_, polled), took) = poller.join().unwrap();
    assert_eq!(polled["status"], "approved");
    assert!(
        took < Duration::from_secs(5),
        "replica A should see B's review within a poll interval"
    );
    let (code, _) = call(
        "POST",
        &format!("{}/api/gate/requests/{id}/review", a.url),
        Some(&reviewer),
        Some(json!({"decision": "reject"})),
    );
    assert_eq!(code, 409);
}

/// SIGTERM answers open long-polls at once with the current state instead
/// of holding the shutdown for up to a minute.
#[test]
fn sigterm_ends_open_long_polls_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap().to_string();
    let storage = ["--data", data.as_str()];
    let agent = create_key(&storage, "agent");
    let mut server = Server::start(&storage, &[]);
    let (_, pending) = call(
        "POST",
        &format!("{}/api/agent/tasks/t/requests", server.url),
        Some(&agent),
        Some(deploy_body()),
    );
    let poll = format!(
        "{}/api/gate/requests/{}?wait=60",
        server.url,
        pending["id"].as_str().unwrap()
    );
    let waiter = std::thread::spawn(move || {
        let started = Instant::now();
        let answer = call("GET", &poll, Some(&agent), None);
        (answer, started.elapsed())
    });
    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    let killed = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let ((status, body), waited) = waiter.join().unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "pending_review");
    assert!(
        waited < Duration::from_secs(10),
        "the poll waited {waited:?}"
    );
    let exit = server.child.wait().unwrap();
    assert!(exit.success(), "a graceful stop exits 0: {exit:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
}
