//! End-to-end tests: the real `gatehouse` binary on port 0, driven over
//! HTTP and through its own CLI, on SQLite and on PostgreSQL.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_gatehouse");

fn examples(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/policies")
        .join(name)
}

/// A `gatehouse` command with no inherited GATEHOUSE_* settings.
fn gatehouse(args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("GATEHOUSE_") {
            cmd.env_remove(k);
        }
    }
    cmd
}

fn run(args: &[&str]) -> Output {
    gatehouse(args).output().expect("run gatehouse")
}

struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn start(storage: &[&str], extra: &[&str]) -> Server {
        let mut args = vec!["serve", "--listen", "127.0.0.1:0"];
        args.extend_from_slice(storage);
        args.extend_from_slice(extra);
        Server::spawn(gatehouse(&args))
    }

    /// Starts a prepared `serve` command and waits for its address.
    fn spawn(mut cmd: Command) -> Server {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn server");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("gatehouse listening on ") {
                    let _ = tx.send(url.to_string());
                }
            }
        });
        let url = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("server did not start");
        Server { child, url }
    }

    /// SIGKILL: no graceful shutdown, like a crash or a power cut.
    fn crash(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn create_key(storage: &[&str], role: &str) -> String {
    let mut args = vec!["keys", "create", "--role", role];
    args.extend_from_slice(storage);
    let out = run(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .to_string()
}

fn call(method: &str, url: &str, key: Option<&str>, body: Option<Value>) -> (u16, Value) {
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(90))
        .build()
        .unwrap();
    let mut req = client.request(method.parse().unwrap(), url);
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().expect("request");
    let status = resp.status().as_u16();
    (status, resp.json().unwrap_or(Value::Null))
}

fn deploy_body() -> Value {
    json!({"workflow_name": "GitHub Actions", "task_label": "Production deploy", "tool_name": "deploy_production",
           "subject": "Deploy main to production", "risk_level": "high", "payload": {"sha": "abc123"}})
}

/// The whole core lifecycle on one storage backend.
fn lifecycle(storage: &[&str]) {
    let agent = create_key(storage, "agent");
    let reviewer = create_key(storage, "reviewer");
    let server = Server::start(storage, &[]);
    let url = &server.url;

    // Gate API, seed 002's curl step: pending, then approved by a reviewer
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

/// Log and token key files shared by every process of one PostgreSQL
/// test, as replicas in production share them. Returns the flags.
fn shared_keys(dir: &Path) -> Vec<String> {
    let mut flags = Vec::new();
    for (flag, name, args) in [
        (
            "--log-key-file",
            "log.key",
            vec!["log", "keygen", "--origin", "gatehouse.test/log"],
        ),
        (
            "--token-key-file",
            "token.pem",
            vec!["log", "keygen", "--token"],
        ),
    ] {
        let out = run(&args);
        assert!(out.status.success());
        let path = dir.join(name);
        std::fs::write(&path, &out.stdout).unwrap();
        flags.push(flag.to_string());
        flags.push(path.to_str().unwrap().to_string());
    }
    flags
}

/// A PostgreSQL schema of the test's own, dropped when the test ends.
fn fresh_schema() -> gatehouse_store_postgres::testing::TestSchema {
    gatehouse_store_postgres::testing::TestSchema::create_blocking()
}

#[test]
fn lifecycle_on_postgres() {
    let schema = fresh_schema();
    let url = schema.url();
    let dir = tempfile::tempdir().unwrap();
    let keys = shared_keys(dir.path());
    let mut storage = vec!["--database-url", url.as_str()];
    storage.extend(keys.iter().map(String::as_str));
    lifecycle(&storage);
}

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
    let db = schema.url();
    let dir = tempfile::tempdir().unwrap();
    let keys = shared_keys(dir.path());
    let mut storage = vec!["--database-url", db.as_str()];
    storage.extend(keys.iter().map(String::as_str));
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

#[test]
fn request_command_exit_codes_gate_a_ci_step() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap().to_string();
    let storage = ["--data", data.as_str()];
    let agent = create_key(&storage, "agent");
    let reviewer = create_key(&storage, "reviewer");
    let server = Server::start(&storage, &["--review-timeout", "2s"]);
    let request = |extra: &[&str]| {
        let mut args = vec![
            "request",
            "--url",
            server.url.as_str(),
            "--workflow",
            "GitHub Actions",
            "--tool",
            "deploy_production",
            "--subject",
            "main",
        ];
        args.extend_from_slice(extra);
        gatehouse(&args)
            .env("GATEHOUSE_API_KEY", &agent)
            .output()
            .unwrap()
    };
    assert_eq!(
        request(&["--risk", "low"]).status.code(),
        Some(0),
        "allow exits 0"
    );
    assert_eq!(
        request(&["--risk", "high"]).status.code(),
        Some(2),
        "pending without --wait exits 2"
    );
    // Pending, then expired after the 2 s review timeout: exit 1.
    let out = request(&["--risk", "high", "--wait", "10"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("expired"));
    // Approved while waiting: exit 0.
    let url = server.url.clone();
    let reviewer2 = reviewer.clone();
    let approver = std::thread::spawn(move || {
        for _ in 0..50 {
            std::thread::sleep(Duration::from_millis(100));
            let (_, list) = call(
                "GET",
                &format!("{url}/api/decisions?status=pending_review"),
                Some(&reviewer2),
                None,
            );
            if let Some(id) = list["items"][0]["id"].as_str() {
                return call(
                    "POST",
                    &format!("{url}/api/gate/requests/{id}/review"),
                    Some(&reviewer2),
                    Some(json!({"decision": "approve"})),
                )
                .0;
            }
        }
        0
    });
    assert_eq!(
        request(&["--risk", "high", "--wait", "10"]).status.code(),
        Some(0)
    );
    assert_eq!(approver.join().unwrap(), 200);
    // Errors (bad key) exit 2.
    let out = gatehouse(&[
        "request",
        "--url",
        &server.url,
        "--workflow",
        "w",
        "--tool",
        "t",
        "--subject",
        "s",
        "--risk",
        "low",
    ])
    .env("GATEHOUSE_API_KEY", "gh_bad_key")
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unauthorized"));
}

/// `request --wait` says at once which decision it waits for (on stderr),
/// so a reviewer can act on the id while the CI step is still waiting.
#[test]
fn request_wait_names_the_decision_before_waiting() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap().to_string();
    let storage = ["--data", data.as_str()];
    let agent = create_key(&storage, "agent");
    let reviewer = create_key(&storage, "reviewer");
    let server = Server::start(&storage, &[]);
    let mut child = gatehouse(&[
        "request",
        "--url",
        &server.url,
        "--workflow",
        "GitHub Actions",
        "--tool",
        "deploy_production",
        "--subject",
        "main",
        "--risk",
        "high",
        "--wait",
        "60",
    ])
    .env("GATEHOUSE_API_KEY", &agent)
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut first = String::new();
    stderr.read_line(&mut first).unwrap();
    assert!(first.contains("pending_review"), "{first}");
    assert!(
        child.try_wait().unwrap().is_none(),
        "still waiting after printing"
    );
    let id = first.split_whitespace().next().unwrap();
    assert!(id.starts_with("dec_"), "{first}");
    let (status, _) = call(
        "POST",
        &format!("{}/api/gate/requests/{id}/review", server.url),
        Some(&reviewer),
        Some(json!({"decision": "approve"})),
    );
    assert_eq!(status, 200);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("approved"));
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

#[test]
fn policy_commands_check_and_test() {
    for set in ["starter", "seed-scenarios"] {
        let dir = examples(set);
        let check = run(&["policy", "check", dir.to_str().unwrap()]);
        assert!(
            check.status.success(),
            "{}",
            String::from_utf8_lossy(&check.stderr)
        );
        let cases = dir.join("cases.json");
        let test = run(&[
            "policy",
            "test",
            dir.to_str().unwrap(),
            cases.to_str().unwrap(),
        ]);
        assert!(
            test.status.success(),
            "{}",
            String::from_utf8_lossy(&test.stdout)
        );
        assert!(String::from_utf8_lossy(&test.stdout).contains(" 0 failed"));
    }
    let tmp = tempfile::tempdir().unwrap();
    let wrong = tmp.path().join("wrong.json");
    std::fs::write(&wrong, r#"[{"name": "wrong", "request": {"workflow_name": "w", "tool_name": "t", "subject": "s", "risk_level": "low"}, "expect": "reject"}]"#).unwrap();
    let test = run(&[
        "policy",
        "test",
        examples("starter").to_str().unwrap(),
        wrong.to_str().unwrap(),
    ]);
    assert_eq!(test.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&test.stdout).contains("FAIL  wrong"));
}

#[test]
fn keys_list_and_revoke_via_cli() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let secret = create_key(&["--data", data], "auditor");
    let listed = run(&["keys", "list", "--data", data]);
    let text = String::from_utf8_lossy(&listed.stdout).to_string();
    assert!(text.contains("auditor") && text.contains("active"));
    assert!(
        !text.contains(&secret[20..]),
        "secrets must never be listed"
    );
    let id = secret
        .strip_prefix("gh_")
        .unwrap()
        .split('_')
        .next()
        .unwrap();
    assert!(run(&["keys", "revoke", id, "--data", data])
        .status
        .success());
    assert!(
        String::from_utf8_lossy(&run(&["keys", "list", "--data", data]).stdout).contains("revoked")
    );
    assert_eq!(
        run(&["keys", "revoke", "nope", "--data", data])
            .status
            .code(),
        Some(2)
    );
    assert!(!Path::new(data).join("nothing").exists());
}

/// Runs `gatehouse log verify` and returns (exit code, stdout).
fn log_verify(storage: &[&str], extra: &[&str]) -> (i32, String) {
    let mut args = vec!["log", "verify"];
    args.extend_from_slice(storage);
    args.extend_from_slice(extra);
    let out = run(&args);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
    )
}

fn some_activity(url: &str, agent: &str, reviewer: &str) -> Vec<String> {
    let mut ids = Vec::new();
    for risk in ["low", "high", "low"] {
        let mut body = deploy_body();
        body["risk_level"] = json!(risk);
        let (_, d) = call(
            "POST",
            &format!("{url}/api/agent/tasks/t/requests"),
            Some(agent),
            Some(body),
        );
        ids.push(d["id"].as_str().unwrap().to_string());
    }
    let (code, _) = call(
        "POST",
        &format!("{url}/api/gate/requests/{}/review", ids[1]),
        Some(reviewer),
        Some(json!({"decision": "approve"})),
    );
    assert_eq!(code, 200);
    ids
}

#[test]
fn log_verify_finds_rows_edited_behind_the_servers_back_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap().to_string();
    let storage = ["--data", data.as_str()];
    let agent = create_key(&storage, "agent");
    let reviewer = create_key(&storage, "reviewer");
    let server = Server::start(&storage, &[]);
    let ids = some_activity(&server.url, &agent, &reviewer);
    drop(server);
    let (code, out) = log_verify(&storage, &[]);
    assert_eq!(code, 0, "{out}");

    // Another log's key does not verify this log's checkpoints.
    let other = String::from_utf8(run(&["log", "keygen"]).stderr).unwrap();
    let other_key = other
        .trim()
        .strip_prefix("public key: ")
        .unwrap()
        .to_string();
    let (code, out) = log_verify(&storage, &["--log-key", &other_key]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("not signed by the given key"), "{out}");

    let db = rusqlite::Connection::open(dir.path().join("gatehouse.db")).unwrap();
    // Turn a decision that needed review into an allow by editing its row.
    db.execute(
        "UPDATE decisions SET body = replace(body, '\"verdict\":\"pending_review\"', '\"verdict\":\"allow\"') WHERE id = ?1",
        [&ids[1]],
    )
    .unwrap();
    let (code, out) = log_verify(&storage, &[]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!("decision {}", ids[1])),
        "the edited decision is named: {out}"
    );

    // Editing the log entry itself breaks the signed root and is named too.
    db.execute("UPDATE log_entries SET leaf = CAST(replace(CAST(leaf AS TEXT), 'pending_review', 'allow') AS BLOB) WHERE ref_id = ?1 AND kind = 'decision'", [&ids[1]])
        .unwrap();
    let (code, out) = log_verify(&storage, &[]);
    assert_eq!(code, 1);
    assert!(out.contains("do not produce the signed root"), "{out}");
    assert!(out.contains("log entry"), "{out}");

    // Deleting an entry leaves a gap that is found.
    db.execute("DELETE FROM log_entries WHERE idx = 1", [])
        .unwrap();
    let (code, out) = log_verify(&storage, &[]);
    assert_eq!(code, 1);
    assert!(out.contains("log entry 1 is missing"), "{out}");
}

#[test]
fn log_verify_finds_edited_rows_on_postgres() {
    let schema = fresh_schema();
    let db_url = schema.url();
    let dir = tempfile::tempdir().unwrap();
    let keys = shared_keys(dir.path());
    let mut storage = vec!["--database-url", db_url.as_str()];
    storage.extend(keys.iter().map(String::as_str));
    let agent = create_key(&storage, "agent");
    let reviewer = create_key(&storage, "reviewer");
    let server = Server::start(&storage, &[]);
    let ids = some_activity(&server.url, &agent, &reviewer);
    drop(server);
    assert_eq!(log_verify(&storage, &[]).0, 0);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let pool = sqlx::PgPool::connect(&db_url).await.unwrap();
        sqlx::query("UPDATE decisions SET body = replace(body, '\"subject\":\"Deploy main to production\"', '\"subject\":\"Deploy evil\"') WHERE id = $1")
            .bind(&ids[0])
            .execute(&pool)
            .await
            .unwrap();
    });
    let (code, out) = log_verify(&storage, &[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains(&format!("decision {}", ids[0])), "{out}");
}

#[test]
fn executor_verifies_a_token_offline_then_redeems_it_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let storage = ["--data", data];
    let agent = create_key(&storage, "agent");
    let server = Server::start(&storage, &[]);
    let mut body = deploy_body();
    body["risk_level"] = json!("low");
    let (_, d) = call(
        "POST",
        &format!("{}/api/agent/tasks/t/requests", server.url),
        Some(&agent),
        Some(body.clone()),
    );
    let token = d["approval_token"]
        .as_str()
        .expect("allow carries a token")
        .to_string();
    let action = json!({"tool_name": body["tool_name"], "subject": body["subject"], "payload": body["payload"]});
    let action_file = dir.path().join("action.json");
    std::fs::write(&action_file, action.to_string()).unwrap();
    let jwks = format!("{}/.well-known/jwks.json", server.url);

    let ok = run(&[
        "token",
        "verify",
        &token,
        "--action",
        action_file.to_str().unwrap(),
        "--jwks",
        &jwks,
    ]);
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );

    let mut changed = action.clone();
    changed["payload"]["sha"] = json!("evil");
    let changed_file = dir.path().join("changed.json");
    std::fs::write(&changed_file, changed.to_string()).unwrap();
    let bad = run(&[
        "token",
        "verify",
        &token,
        "--action",
        changed_file.to_str().unwrap(),
        "--jwks",
        &jwks,
    ]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stdout).contains("action differs"));

    let redeem = json!({"token": token, "action": action});
    let url = format!("{}/api/tokens/redeem", server.url);
    assert_eq!(
        call("POST", &url, Some(&agent), Some(redeem.clone())).0,
        200
    );
    assert_eq!(
        call("POST", &url, Some(&agent), Some(redeem)).0,
        409,
        "a token is single use"
    );
    // The token key was created beside the data with owner-only access.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for key in ["token-signing.pem", "log-signing.key"] {
            let mode = std::fs::metadata(dir.path().join("data").join(key))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{key}");
        }
    }
}

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
        "checkpoint_signature",
        "record_logged",
        "action_binding",
        "receipt_",
        "outcome_",
        "single_redemption",
        "token_logged",
    ] {
        assert!(out.contains(expected), "missing check {expected}: {out}");
    }

    // Another log's key.
    let other = String::from_utf8(run(&["log", "keygen"]).stderr).unwrap();
    let (code, out) = verify_packet(&packet, other.trim().strip_prefix("public key: ").unwrap());
    assert_eq!(code, 1);
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

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

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
    let url = schema.url();
    let dir = tempfile::tempdir().unwrap();
    let keys = shared_keys(dir.path());
    let mut storage = vec!["--database-url", url.as_str()];
    storage.extend(keys.iter().map(String::as_str));
    evidence_lifecycle(&storage, dir.path());
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

#[test]
fn log_consistency_proves_growth_and_detects_a_fork() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    let a_str = a.to_str().unwrap().to_string();
    let agent = create_key(&["--data", &a_str], "agent");
    let reviewer = create_key(&["--data", &a_str], "reviewer");
    let server = Server::start(&["--data", &a_str], &[]);
    some_activity(&server.url, &agent, &reviewer);
    let checkpoint = |url: &str| {
        reqwest::blocking::get(format!("{url}/api/log/checkpoint"))
            .unwrap()
            .text()
            .unwrap()
    };
    let shared = dir.path().join("shared.checkpoint");
    std::fs::write(&shared, checkpoint(&server.url)).unwrap();
    drop(server);

    // A fork: a copy of the same log, with the same key, that diverges.
    let b = dir.path().join("b");
    copy_dir(&a, &b);
    let b_str = b.to_str().unwrap().to_string();

    let server = Server::start(&["--data", &a_str], &[]);
    some_activity(&server.url, &agent, &reviewer);
    let diverged = dir.path().join("diverged.checkpoint");
    std::fs::write(&diverged, checkpoint(&server.url)).unwrap();
    drop(server);
    let server = Server::start(&["--data", &b_str], &[]);
    some_activity(&server.url, &agent, &reviewer);
    some_activity(&server.url, &agent, &reviewer);
    drop(server);

    let consistency = |saved: &Path, data: &str| {
        let out = run(&[
            "log",
            "consistency",
            saved.to_str().unwrap(),
            "--data",
            data,
        ]);
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
        )
    };
    // Each log extends what was saved before the split...
    for data in [&a_str, &b_str] {
        let (code, out) = consistency(&shared, data);
        assert_eq!(code, Some(0), "{out}");
        assert!(out.contains("extends the saved checkpoint"), "{out}");
    }
    assert_eq!(consistency(&diverged, &a_str).0, Some(0));
    // ...but the copy cannot extend what A logged after the split.
    let (code, out) = consistency(&diverged, &b_str);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("does not extend"), "{out}");
}

/// The kids the JWKS publishes, the key in force first.
fn published_kids(url: &str) -> Vec<String> {
    let (_, jwks) = call("GET", &format!("{url}/.well-known/jwks.json"), None, None);
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_string())
        .collect()
}

fn token_kid(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

/// Waits up to ten seconds for the server to sign with a key other than
/// `old`; returns the new key's kid.
fn wait_for_new_key(url: &str, old: &str) -> String {
    for _ in 0..100 {
        let kids = published_kids(url);
        if kids[0] != old {
            return kids[0].clone();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("the server still signs with {old}");
}

fn rotate(data: &str) {
    let out = run(&["keys", "rotate", "--data", data]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn rotated_token_keys_are_used_without_a_restart_and_stay_published() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap().to_string();
    let storage = ["--data", data.as_str()];
    let agent = create_key(&storage, "agent");
    let mut body = deploy_body();
    body["risk_level"] = json!("low");
    let request = |url: &str| {
        let (code, out) = call(
            "POST",
            &format!("{url}/api/agent/tasks/t/requests"),
            Some(&agent),
            Some(body.clone()),
        );
        assert_eq!(code, 201, "{out}");
        out["approval_token"].as_str().unwrap().to_string()
    };

    // Rotation while serving, picked up on SIGHUP.
    let server = Server::start(&storage, &["--token-key-reload", "off"]);
    let old_token = request(&server.url);
    let first_kid = token_kid(&old_token);
    rotate(&data);
    assert_eq!(published_kids(&server.url)[0], first_kid, "not re-read yet");
    let hangup = Command::new("kill")
        .args(["-HUP", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(hangup.success());
    let second_kid = wait_for_new_key(&server.url, &first_kid);
    assert_eq!(
        published_kids(&server.url),
        [second_kid.clone(), first_kid.clone()],
        "the new key, and the old one, whose token is still valid"
    );
    assert_eq!(
        token_kid(&request(&server.url)),
        second_kid,
        "new tokens use the new key"
    );
    // A token signed before the rotation still redeems.
    let action = json!({"tool_name": body["tool_name"], "subject": body["subject"], "payload": body["payload"]});
    let (code, out) = call(
        "POST",
        &format!("{}/api/tokens/redeem", server.url),
        Some(&agent),
        Some(json!({"token": old_token, "action": action})),
    );
    assert_eq!(code, 200, "{out}");

    // A key file that cannot be used leaves the key in force.
    let key_file = dir.path().join("data").join("token-signing.pem");
    let good_key = std::fs::read_to_string(&key_file).unwrap();
    std::fs::write(&key_file, "not a key").unwrap();
    Command::new("kill")
        .args(["-HUP", &server.child.id().to_string()])
        .status()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(token_kid(&request(&server.url)), second_kid);
    std::fs::write(&key_file, good_key).unwrap();
    drop(server);

    // Rotation picked up by the periodic re-read.
    let server = Server::start(&storage, &["--token-key-reload", "1s"]);
    rotate(&data);
    let third_kid = wait_for_new_key(&server.url, &second_kid);
    assert_eq!(token_kid(&request(&server.url)), third_kid);
    // The key in force, then every retired key with a live token, by kid.
    let mut retired = vec![first_kid, second_kid];
    retired.sort();
    let mut expected = vec![third_kid];
    expected.extend(retired);
    assert_eq!(published_kids(&server.url), expected);
    drop(server);
    assert_eq!(
        log_verify(&storage, &[]).0,
        0,
        "the rotations are logged consistently"
    );
}
