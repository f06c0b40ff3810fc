//! Gatehouse's own MCP tools at `/mcp` (streamable HTTP) and on stdio
//! (`gatehouse mcp serve`), driven by the rmcp client.

use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::ServiceExt;
use serde_json::{json, Value};

use super::*;

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

/// One JSON-RPC message POSTed to `/mcp`, with extra headers.
fn post_mcp(url: &str, key: &str, headers: &[(&str, &str)], message: Value) -> Value {
    let mut request = reqwest::blocking::Client::new()
        .post(format!("{url}/mcp"))
        .bearer_auth(key)
        .header("Accept", "application/json, text/event-stream")
        .json(&message);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().unwrap();
    assert_eq!(response.status().as_u16(), 200);
    response.json().unwrap()
}

#[test]
fn mcp_endpoint_speaks_the_protocol_versions_clients_use() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let storage = ["--data", data.to_str().unwrap()];
    let agent = create_key(&storage, "agent");
    let server = Server::start(&storage, &[]);
    // The versions with an initialize handshake answer with the version
    // asked for.
    for version in ["2025-03-26", "2025-06-18", "2025-11-25"] {
        let answer = post_mcp(
            &server.url,
            &agent,
            &[],
            json!({
            "jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": version, "capabilities": {},
                       "clientInfo": {"name": "e2e", "version": "1"}}}),
        );
        assert_eq!(answer["result"]["protocolVersion"], version, "{answer}");
        assert_eq!(
            answer["result"]["serverInfo"]["name"], "gatehouse",
            "{answer}"
        );
    }
    // The newest the crate supports has no handshake: each request names
    // its version and the client, and is answered on its own.
    let newest = "2026-07-28";
    let answer = post_mcp(
        &server.url,
        &agent,
        &[
            ("MCP-Protocol-Version", newest),
            ("Mcp-Method", "tools/list"),
        ],
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {"_meta": {
            "io.modelcontextprotocol/protocolVersion": newest,
            "io.modelcontextprotocol/clientCapabilities": {},
            "io.modelcontextprotocol/clientInfo": {"name": "e2e", "version": "1"}}}}),
    );
    let tools = answer["result"]["tools"].as_array().expect("a tool list");
    assert_eq!(tools.len(), 6, "{answer}");
}
