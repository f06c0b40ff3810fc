//! MCP end to end, against real peers: the reference filesystem server
//! (`@modelcontextprotocol/server-filesystem`, installed by `npm ci` in
//! `integrations/mcp`) behind `gatehouse mcp proxy`, and Gatehouse's own
//! tools at `/mcp` and on stdio (`gatehouse mcp serve`), all driven by the
//! `rmcp` client.

use std::path::PathBuf;

use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::service::{RoleClient, RunningService};
use serde_json::{Map, Value};

use crate::*;

mod filesystem;
mod passthrough;
mod tools;

type Client = RunningService<RoleClient, ()>;

/// A server installed by `npm ci` in `integrations/mcp`.
fn npm_server(bin: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../integrations/mcp/node_modules/.bin")
        .join(bin);
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

async fn call_tool(
    client: &rmcp::service::Peer<RoleClient>,
    name: &'static str,
    arguments: Value,
) -> CallToolResult {
    client
        .call_tool(CallToolRequestParams::new(name).with_arguments(args(arguments)))
        .await
        .expect("tools/call answers")
}

/// A decision's receipts and outcomes, as a reviewer reads them.
fn executions(url: &str, reviewer: &str, id: &str) -> Value {
    let (code, runs) = call(
        "GET",
        &format!("{url}/api/decision/{id}/executions"),
        Some(reviewer),
        None,
    );
    assert_eq!(code, 200, "{runs}");
    runs
}

/// Approves decision `id` as `reviewer`.
fn approve(url: &str, reviewer: &str, id: &str) {
    let (code, view) = call(
        "POST",
        &format!("{url}/api/gate/requests/{id}/review"),
        Some(reviewer),
        Some(serde_json::json!({"decision": "approve"})),
    );
    assert_eq!(code, 200, "{view}");
}
