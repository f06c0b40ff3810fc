//! MCP end to end, against real peers: the reference filesystem server
//! (`@modelcontextprotocol/server-filesystem`, installed by `npm ci` in
//! `integrations/mcp`) behind `gatehouse mcp proxy`, and Gatehouse's own
//! tools at `/mcp` and on stdio (`gatehouse mcp serve`), all driven by the
//! `rmcp` client.

use std::path::{Path, PathBuf};
use std::thread;

use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::service::{RoleClient, RunningService};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::ServiceExt;
use serde_json::{json, Map, Value};

use crate::*;

type Client = RunningService<RoleClient, ()>;

fn filesystem_server() -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../integrations/mcp/node_modules/.bin/mcp-server-filesystem");
    assert!(
        path.exists(),
        "{} is missing: run `npm ci` in integrations/mcp (scripts/test does)",
        path.display()
    );
    path
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn args(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap()
}

fn text(result: &CallToolResult) -> String {
    serde_json::to_value(&result.content).unwrap().to_string()
}

fn is_error(result: &CallToolResult) -> bool {
    result.is_error == Some(true)
}

/// The mcp-filesystem example set, allowing `shared` instead of /srv/shared.
fn filesystem_policies(work: &Path, shared: &Path) -> PathBuf {
    let dir = work.join("policies");
    std::fs::create_dir_all(&dir).unwrap();
    for entry in std::fs::read_dir(examples("mcp-filesystem")).unwrap() {
        let entry = entry.unwrap();
        let body = std::fs::read_to_string(entry.path()).unwrap();
        let body = body.replace("/srv/shared", shared.to_str().unwrap());
        std::fs::write(dir.join(entry.file_name()), body).unwrap();
    }
    // One tool rejected whatever its arguments, for --hide-rejected.
    std::fs::write(
        dir.join("no-moves.cedar"),
        "@id(\"no-moves-here\")\n@reason(\"Files are never moved through this agent\")\n\
         forbid(principal, action == Action::\"move_file\", resource);\n",
    )
    .unwrap();
    dir
}

async fn proxy(url: &str, key: &str, hold: &str, shared: &Path, extra: &[&str]) -> Client {
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.args([
        "mcp",
        "proxy",
        "--agent",
        "fs-agent",
        "--subject-arg",
        "path",
        "--hold",
        hold,
    ])
    .args(extra)
    .arg("--")
    .arg(filesystem_server())
    .arg(shared)
    .env("GATEHOUSE_URL", url)
    .env("GATEHOUSE_API_KEY", key);
    let transport = TokioChildProcess::new(cmd).unwrap();
    ().serve(transport).await.expect("the proxy initializes")
}

async fn call_tool(client: &Client, name: &'static str, arguments: Value) -> CallToolResult {
    client
        .call_tool(CallToolRequestParams::new(name).with_arguments(args(arguments)))
        .await
        .expect("tools/call answers")
}

/// Approves, as `reviewer`, the first pending request for `path` that
/// appears within 20 s (with `amended` arguments if given).
fn approve_when_pending(
    url: String,
    reviewer: String,
    path: String,
    amended: Option<Value>,
) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let id = poll_until(
            "a pending request",
            || {
                let (_, list) = call(
                    "GET",
                    &format!("{url}/api/decisions?status=pending_review"),
                    Some(&reviewer),
                    None,
                );
                list["items"]
                    .as_array()
                    .and_then(|items| items.iter().find(|d| d["subject"] == path.as_str()))
                    .map(|d| d["id"].as_str().unwrap().to_string())
            },
            Option::is_some,
        )
        .unwrap();
        let mut body = json!({"decision": "approve", "comment": "fine"});
        if let Some(a) = amended {
            body["amended_payload"] = a;
        }
        let (code, view) = call(
            "POST",
            &format!("{url}/api/gate/requests/{id}/review"),
            Some(&reviewer),
            Some(body),
        );
        assert_eq!(code, 200, "{view}");
        id
    })
}

fn decisions_for(url: &str, reviewer: &str, subject: &str) -> Vec<Value> {
    let (_, list) = call(
        "GET",
        &format!("{url}/api/decisions?limit=200"),
        Some(reviewer),
        None,
    );
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["subject"] == subject)
        .cloned()
        .collect()
}

#[test]
fn proxy_gates_the_reference_filesystem_server() {
    let work = tempfile::tempdir().unwrap();
    // The server resolves its allowed directory to a real path; so do we.
    let shared = work.path().join("shared");
    std::fs::create_dir_all(&shared).unwrap();
    let shared = shared.canonicalize().unwrap();
    std::fs::write(shared.join("notes.txt"), "hello from the share").unwrap();
    let policies = filesystem_policies(work.path(), &shared);
    let data = work.path().join("data");
    let storage = ["--data", data.to_str().unwrap()];
    let agent = create_key(&storage, "agent");
    let reviewer = create_key(&storage, "reviewer");
    let server = Server::start(&storage, &["--policies", policies.to_str().unwrap()]);
    let url = server.url.clone();
    let rt = runtime();
    let client = rt.block_on(proxy(&url, &agent, "4s", &shared, &[]));
    let path = |name: &str| shared.join(name).to_str().unwrap().to_string();

    // tools/list passes through.
    let tools = rt.block_on(client.list_all_tools()).unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    for expected in ["read_text_file", "write_file", "move_file"] {
        assert!(names.contains(&expected), "{names:?}");
    }
    // --hide-rejected leaves out what the policies always reject; calling
    // it anyway is still decided, and rejected.
    let hiding = rt.block_on(proxy(&url, &agent, "4s", &shared, &["--hide-rejected"]));
    let shown = rt.block_on(hiding.list_all_tools()).unwrap();
    let shown: Vec<&str> = shown.iter().map(|t| t.name.as_ref()).collect();
    assert!(!shown.contains(&"move_file"), "{shown:?}");
    assert_eq!(
        shown.len() + 1,
        names.len(),
        "only move_file is hidden: {shown:?}"
    );
    let moved = rt.block_on(call_tool(
        &hiding,
        "move_file",
        json!({"source": path("notes.txt"), "destination": path("moved.txt")}),
    ));
    assert!(
        is_error(&moved) && text(&moved).contains("never moved"),
        "{moved:?}"
    );
    assert!(shared.join("notes.txt").exists());
    rt.block_on(hiding.cancel()).ok();

    // A read is allowed and returns the file.
    let read = rt.block_on(call_tool(
        &client,
        "read_text_file",
        json!({"path": path("notes.txt")}),
    ));
    assert!(!is_error(&read), "{read:?}");
    assert!(text(&read).contains("hello from the share"), "{read:?}");

    // A write is held, approved while held, and then runs.
    let approver = approve_when_pending(url.clone(), reviewer.clone(), path("a.txt"), None);
    let write = rt.block_on(call_tool(
        &client,
        "write_file",
        json!({"path": path("a.txt"), "content": "A"}),
    ));
    approver.join().unwrap();
    assert!(!is_error(&write), "{write:?}");
    assert_eq!(std::fs::read_to_string(shared.join("a.txt")).unwrap(), "A");

    // Held past --hold: refused with the decision and what to do; approved
    // afterwards, the same call runs. This client calls before it lists
    // the tools, so the retry knows hints the first call did not: it is
    // still the same request.
    let fresh = rt.block_on(proxy(&url, &agent, "4s", &shared, &[]));
    let started = std::time::Instant::now();
    let held = rt.block_on(call_tool(
        &fresh,
        "write_file",
        json!({"path": path("b.txt"), "content": "B"}),
    ));
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(4),
        "held for all of --hold"
    );
    assert!(is_error(&held), "{held:?}");
    let message = text(&held);
    assert!(
        message.contains("Retry the same call") && message.contains("/console/decisions/"),
        "{message}"
    );
    assert!(!shared.join("b.txt").exists(), "nothing ran while held");
    let pending = decisions_for(&url, &reviewer, &path("b.txt"));
    assert_eq!(pending.len(), 1, "{pending:?}");
    let id = pending[0]["id"].as_str().unwrap();
    assert!(message.contains(id), "{message}");
    let (code, _) = call(
        "POST",
        &format!("{url}/api/gate/requests/{id}/review"),
        Some(&reviewer),
        Some(json!({"decision": "approve"})),
    );
    assert_eq!(code, 200);
    rt.block_on(fresh.list_all_tools()).unwrap();
    let retry = rt.block_on(call_tool(
        &fresh,
        "write_file",
        json!({"path": path("b.txt"), "content": "B"}),
    ));
    rt.block_on(fresh.cancel()).ok();
    assert!(!is_error(&retry), "{retry:?}");
    assert_eq!(std::fs::read_to_string(shared.join("b.txt")).unwrap(), "B");
    assert_eq!(
        decisions_for(&url, &reviewer, &path("b.txt")).len(),
        1,
        "the retry reused the decision"
    );

    // A reviewer's amended arguments are what runs.
    let approver = approve_when_pending(
        url.clone(),
        reviewer.clone(),
        path("c.txt"),
        Some(json!({"path": path("c.txt"), "content": "amended by the reviewer"})),
    );
    let amended = rt.block_on(call_tool(
        &client,
        "write_file",
        json!({"path": path("c.txt"), "content": "original"}),
    ));
    approver.join().unwrap();
    assert!(!is_error(&amended), "{amended:?}");
    assert_eq!(
        std::fs::read_to_string(shared.join("c.txt")).unwrap(),
        "amended by the reviewer"
    );

    // A rejected call never reaches the upstream.
    let outside = work.path().canonicalize().unwrap().join("outside.txt");
    let rejected = rt.block_on(call_tool(
        &client,
        "write_file",
        json!({"path": outside.to_str().unwrap(), "content": "no"}),
    ));
    assert!(is_error(&rejected), "{rejected:?}");
    assert!(text(&rejected).contains("rejected"), "{rejected:?}");
    assert!(!outside.exists());

    // Every executed call has a receipt and an outcome, and its packet
    // verifies offline.
    let mut key_args = vec!["log", "key"];
    key_args.extend_from_slice(&storage);
    let log_key = String::from_utf8(run(&key_args).stdout)
        .unwrap()
        .trim()
        .to_string();
    for name in ["notes.txt", "a.txt", "b.txt", "c.txt"] {
        let decisions = decisions_for(&url, &reviewer, &path(name));
        assert_eq!(decisions.len(), 1, "{name}: {decisions:?}");
        let id = decisions[0]["id"].as_str().unwrap();
        let (_, runs) = call(
            "GET",
            &format!("{url}/api/decision/{id}/executions"),
            Some(&reviewer),
            None,
        );
        assert_eq!(
            runs["executions"].as_array().map(Vec::len),
            Some(1),
            "{name}: {runs}"
        );
        assert_eq!(
            runs["outcomes"].as_array().map(Vec::len),
            Some(1),
            "{name}: {runs}"
        );
        assert_eq!(
            runs["outcomes"][0]["outcome"]["status"], "succeeded",
            "{runs}"
        );
        let (code, packet) = call(
            "GET",
            &format!("{url}/api/decision/{id}/packet"),
            Some(&reviewer),
            None,
        );
        assert_eq!(code, 200);
        let file = work.path().join(format!("{id}.json"));
        std::fs::write(&file, packet.to_string()).unwrap();
        let out = run(&["verify", file.to_str().unwrap(), "--log-key", &log_key]);
        let printed = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{printed}");
        assert!(printed.contains("ok    receipts: 1 receipts"), "{printed}");
    }
    let rejected = decisions_for(&url, &reviewer, outside.to_str().unwrap());
    let (_, runs) = call(
        "GET",
        &format!(
            "{url}/api/decision/{}/executions",
            rejected[0]["id"].as_str().unwrap()
        ),
        Some(&reviewer),
        None,
    );
    assert_eq!(runs["executions"], json!([]), "{runs}");

    // Gatehouse stopped: refused, never forwarded (fail closed).
    drop(server);
    let closed = rt.block_on(call_tool(
        &client,
        "read_text_file",
        json!({"path": path("notes.txt")}),
    ));
    assert!(is_error(&closed), "{closed:?}");
    assert!(text(&closed).contains("fail closed"), "{closed:?}");
    rt.block_on(client.cancel()).ok();
}

async fn over_http(url: &str, key: &str) -> Result<Client, String> {
    let config =
        StreamableHttpClientTransportConfig::with_uri(format!("{url}/mcp")).auth_header(key);
    let transport = StreamableHttpClientTransport::from_config(config);
    ().serve(transport).await.map_err(|e| e.to_string())
}

async fn over_stdio(url: &str, key: &str) -> Client {
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.args(["mcp", "serve"])
        .env("GATEHOUSE_URL", url)
        .env("GATEHOUSE_API_KEY", key);
    ().serve(TokioChildProcess::new(cmd).unwrap())
        .await
        .expect("mcp serve initializes")
}

/// Calls a Gatehouse tool and checks its structured output against the
/// tool's own output schema; returns the output.
async fn structured(client: &Client, name: &'static str, arguments: Value) -> Value {
    let tools = client.list_all_tools().await.unwrap();
    let tool = tools
        .iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("{name} is listed"));
    let result = call_tool(client, name, arguments).await;
    assert!(!is_error(&result), "{name}: {result:?}");
    let output = result
        .structured_content
        .clone()
        .expect("structured output");
    let schema = Value::Object((*tool.output_schema.clone().expect("an output schema")).clone());
    let validator = jsonschema::validator_for(&schema).expect("the output schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(&output)
        .map(|e| e.to_string())
        .collect();
    assert!(
        errors.is_empty(),
        "{name} output does not fit its schema: {errors:?}\n{output}"
    );
    output
}

fn names(client: &Client, rt: &tokio::runtime::Runtime) -> Vec<String> {
    rt.block_on(client.list_all_tools())
        .unwrap()
        .iter()
        .map(|t| t.name.to_string())
        .collect()
}

#[test]
fn gatehouse_tools_over_streamable_http_and_stdio() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let storage = ["--data", data.to_str().unwrap()];
    let agent = create_key(&storage, "agent");
    let reviewer = create_key(&storage, "reviewer");
    let server = Server::start(
        &storage,
        &["--policies", examples("seed-scenarios").to_str().unwrap()],
    );
    let url = server.url.clone();
    let rt = runtime();

    // An agent over streamable HTTP sees the agent's tools, each with its
    // annotations and schemas.
    let agent_http = rt.block_on(over_http(&url, &agent)).unwrap();
    let agent_tools = rt.block_on(agent_http.list_all_tools()).unwrap();
    let listed: Vec<&str> = agent_tools.iter().map(|t| t.name.as_ref()).collect();
    assert_eq!(
        listed,
        [
            "request_approval",
            "get_decision",
            "wait_for_decision",
            "redeem_token",
            "report_execution",
            "report_outcome"
        ]
    );
    for tool in &agent_tools {
        let a = tool.annotations.as_ref().expect("annotations");
        assert!(
            a.read_only_hint.is_some() && a.destructive_hint.is_some(),
            "{tool:?}"
        );
        assert_eq!(
            tool.input_schema.get("type"),
            Some(&json!("object")),
            "{tool:?}"
        );
        jsonschema::validator_for(&Value::Object((*tool.input_schema).clone()))
            .expect("input schema compiles");
    }
    let get = agent_tools
        .iter()
        .find(|t| t.name == "get_decision")
        .unwrap();
    assert_eq!(get.annotations.as_ref().unwrap().read_only_hint, Some(true));

    // A request that needs review, reviewed by a reviewer over stdio.
    let asked = rt.block_on(structured(
        &agent_http,
        "request_approval",
        json!({
        "agent": "release-bot", "action": "deploy_production", "risk": "high",
        "subject": "main", "context": {"sha": "abc123"}, "idempotency_key": "deploy-abc123"}),
    ));
    assert_eq!(asked["status"], "pending_review", "{asked}");
    let id = asked["id"].as_str().unwrap().to_string();
    let again = rt.block_on(structured(
        &agent_http,
        "request_approval",
        json!({
        "agent": "release-bot", "action": "deploy_production", "risk": "high",
        "subject": "main", "context": {"sha": "abc123"}, "idempotency_key": "deploy-abc123"}),
    ));
    assert_eq!(
        again["id"],
        id.as_str(),
        "the idempotency key gives the same decision"
    );

    let reviewer_stdio = rt.block_on(over_stdio(&url, &reviewer));
    let reviewer_tools = names(&reviewer_stdio, &rt);
    assert!(
        reviewer_tools.contains(&"list_pending".to_string())
            && reviewer_tools.contains(&"review".to_string())
    );
    let pending = rt.block_on(structured(&reviewer_stdio, "list_pending", json!({})));
    assert!(
        pending["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["id"] == id.as_str()),
        "{pending}"
    );
    // The agent may not review, whatever it calls.
    let refused = rt.block_on(call_tool(
        &agent_http,
        "review",
        json!({"decision_id": id, "decision": "approve"}),
    ));
    assert!(
        is_error(&refused) && text(&refused).contains("forbidden"),
        "{refused:?}"
    );
    let reviewed = rt.block_on(structured(
        &reviewer_stdio,
        "review",
        json!({"decision_id": id, "decision": "approve", "comment": "ship it"}),
    ));
    assert_eq!(reviewed["status"], "approved", "{reviewed}");
    let twice = rt.block_on(call_tool(
        &reviewer_stdio,
        "review",
        json!({"decision_id": id, "decision": "approve"}),
    ));
    assert!(
        is_error(&twice) && text(&twice).contains("not_pending"),
        "{twice:?}"
    );

    // The agent waits, redeems, and reports.
    let waited = rt.block_on(structured(
        &agent_http,
        "wait_for_decision",
        json!({"id": id, "timeout_seconds": 5}),
    ));
    assert_eq!(waited["status"], "approved");
    let token = waited["approval_token"]
        .as_str()
        .expect("a token for the agent")
        .to_string();
    let redeemed = rt.block_on(structured(&agent_http, "redeem_token", json!({"token": token,
        "action": {"tool_name": "deploy_production", "subject": "main", "payload": {"sha": "abc123"}}})));
    assert_eq!(redeemed["redeemed"], true);
    let again = rt.block_on(call_tool(&agent_http, "redeem_token", json!({"token": token,
        "action": {"tool_name": "deploy_production", "subject": "main", "payload": {"sha": "abc123"}}})));
    assert!(
        is_error(&again) && text(&again).contains("token_already_redeemed"),
        "{again:?}"
    );
    let receipt = rt.block_on(structured(&agent_http, "report_execution", json!({"decision_id": id, "receipt": {
        "target_system": "github", "target_object": "main", "mutation": "deploy", "executor": "release-bot",
        "token_jti": redeemed["jti"], "action": {"tool_name": "deploy_production", "subject": "main", "payload": {"sha": "abc123"}}}})));
    assert!(receipt["execution_hash"].is_string(), "{receipt}");
    let outcome = rt.block_on(structured(
        &agent_http,
        "report_outcome",
        json!({"decision_id": id,
        "outcome": {"status": "succeeded", "action_taken": "deployed abc123"}}),
    ));
    assert!(outcome["outcome_hash"].is_string(), "{outcome}");
    let got = rt.block_on(structured(
        &reviewer_stdio,
        "get_decision",
        json!({"id": id}),
    ));
    assert_eq!(got["status"], "approved");

    // Bad input is a tool error the model can read, not a protocol error.
    let bad = rt.block_on(call_tool(
        &agent_http,
        "request_approval",
        json!({"agent": "x"}),
    ));
    assert!(
        is_error(&bad) && text(&bad).contains("validation_failed"),
        "{bad:?}"
    );
    let missing = rt.block_on(call_tool(
        &agent_http,
        "get_decision",
        json!({"id": "01NOSUCHDECISION"}),
    ));
    assert!(
        is_error(&missing) && text(&missing).contains("not_found"),
        "{missing:?}"
    );

    // Without a valid key: no session over HTTP (401 with the API's error
    // body), and nothing but errors over stdio.
    assert!(rt.block_on(over_http(&url, "ghk_not_a_key")).is_err());
    let (code, body) = call(
        "POST",
        &format!("{url}/mcp"),
        Some("ghk_not_a_key"),
        Some(json!({
        "jsonrpc": "2.0", "id": 1, "method": "tools/list"})),
    );
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (401, Some("unauthorized")),
        "{body}"
    );
    let stranger = rt.block_on(over_stdio(&url, "ghk_not_a_key"));
    let denied = rt.block_on(call_tool(&stranger, "get_decision", json!({"id": id})));
    assert!(
        is_error(&denied) && text(&denied).contains("unauthorized"),
        "{denied:?}"
    );
    for client in [agent_http, reviewer_stdio, stranger] {
        rt.block_on(client.cancel()).ok();
    }
}
