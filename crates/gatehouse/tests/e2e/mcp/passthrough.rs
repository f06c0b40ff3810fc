//! Everything but `tools/call` passes through the proxy untouched: the
//! reference "everything" server's resources, prompts and progress, and a
//! held call the client cancels.

use rmcp::service::{RoleClient, RunningService};
use rmcp::transport::TokioChildProcess;
use rmcp::ServiceExt;
use serde_json::json;

use super::*;

/// A client that records the progress notifications it is sent.
#[derive(Clone, Default)]
struct Recorder {
    progress: std::sync::Arc<std::sync::Mutex<Vec<f64>>>,
}

impl rmcp::ClientHandler for Recorder {
    async fn on_progress(
        &self,
        params: rmcp::model::ProgressNotificationParam,
        _context: rmcp::service::NotificationContext<RoleClient>,
    ) {
        self.progress.lock().unwrap().push(params.progress);
    }
}

async fn everything_proxy(
    url: &str,
    key: &str,
    risk: &str,
    recorder: Recorder,
) -> RunningService<RoleClient, Recorder> {
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.args([
        "mcp",
        "proxy",
        "--agent",
        "demo-agent",
        "--risk",
        risk,
        "--hold",
        "30s",
        "--",
    ])
    .arg(npm_server("mcp-server-everything"))
    .arg("stdio")
    .env("GATEHOUSE_URL", url)
    .env("GATEHOUSE_API_KEY", key);
    recorder
        .serve(TokioChildProcess::new(cmd).unwrap())
        .await
        .expect("the proxy initializes")
}

#[test]
fn proxy_passes_the_rest_of_mcp_through() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let storage = ["--data", data.to_str().unwrap()];
    let agent = create_key(&storage, "agent");
    let reviewer = create_key(&storage, "reviewer");
    // The starter policies: low risk is allowed, medium waits for review.
    let server = Server::start(&storage, &[]);
    let url = server.url.clone();
    let rt = runtime();
    let recorder = Recorder::default();
    let client = rt.block_on(everything_proxy(&url, &agent, "low", recorder.clone()));

    // Resources and prompts are not gated and arrive as the server sent them.
    let resources = rt.block_on(client.list_all_resources()).unwrap();
    assert!(!resources.is_empty());
    let read = rt
        .block_on(
            client.read_resource(rmcp::model::ReadResourceRequestParams::new(
                resources[0].uri.clone(),
            )),
        )
        .unwrap();
    assert!(!read.contents.is_empty(), "{read:?}");
    let prompts = rt.block_on(client.list_all_prompts()).unwrap();
    assert!(
        prompts.iter().any(|p| p.name == "args-prompt"),
        "{prompts:?}"
    );
    let prompt = rt
        .block_on(
            client.get_prompt(
                rmcp::model::GetPromptRequestParams::new("args-prompt")
                    .with_arguments(args(json!({"city": "Lisbon"}))),
            ),
        )
        .unwrap();
    assert!(
        serde_json::to_string(&prompt).unwrap().contains("Lisbon"),
        "{prompt:?}"
    );
    let (_, none) = call(
        "GET",
        &format!("{url}/api/decisions"),
        Some(&reviewer),
        None,
    );
    assert_eq!(
        none["items"],
        json!([]),
        "reading resources and prompts decides nothing"
    );

    // An allowed call keeps its progress token: the server's progress
    // notifications reach the client.
    let mut long = CallToolRequestParams::new("trigger-long-running-operation")
        .with_arguments(args(json!({"duration": 1, "steps": 3})));
    long.meta = Some(rmcp::model::RequestMetaObject::with_progress_token(
        rmcp::model::ProgressToken(rmcp::model::NumberOrString::String("op-1".into())),
    ));
    let done = rt.block_on(client.call_tool(long)).unwrap();
    assert!(!is_error(&done), "{done:?}");
    assert!(
        !recorder.progress.lock().unwrap().is_empty(),
        "progress passed through"
    );

    // The upstream never sees the proxy's key.
    let env = rt.block_on(call_tool(&client, "get-env", json!({})));
    assert!(!is_error(&env), "{env:?}");
    let shown = text(&env);
    assert!(shown.contains("PATH"), "{shown}");
    assert!(
        !shown.contains(&agent) && !shown.contains("GATEHOUSE_API_KEY"),
        "{shown}"
    );

    // A held call the client cancels is dropped: never forwarded, even
    // once approved; the same call later runs on that approval.
    let holding = rt.block_on(everything_proxy(
        &url,
        &agent,
        "medium",
        Recorder::default(),
    ));
    let cancelled = rt.block_on(async {
        tokio::time::timeout(
            std::time::Duration::from_secs(2),
            call_tool(&holding, "echo", json!({"message": "held"})),
        )
        .await
    });
    assert!(cancelled.is_err(), "still held when the client gave up");
    let (_, pending) = call(
        "GET",
        &format!("{url}/api/decisions?status=pending_review"),
        Some(&reviewer),
        None,
    );
    let id = pending["items"][0]["id"]
        .as_str()
        .expect("the held call's decision")
        .to_string();
    approve(&url, &reviewer, &id);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let runs = executions(&url, &reviewer, &id);
    assert_eq!(
        runs["executions"],
        json!([]),
        "a cancelled call never ran: {runs}"
    );
    let echoed = rt.block_on(call_tool(&holding, "echo", json!({"message": "held"})));
    assert!(
        !is_error(&echoed) && text(&echoed).contains("held"),
        "{echoed:?}"
    );
    let runs = executions(&url, &reviewer, &id);
    assert_eq!(
        runs["executions"].as_array().map(Vec::len),
        Some(1),
        "{runs}"
    );
    for c in [client, holding] {
        rt.block_on(c.cancel()).ok();
    }
}

async fn http_proxy(url: &str, key: &str, upstream_key: Option<&str>) -> Result<Client, String> {
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.args(["mcp", "proxy", "--agent", "http-agent", "--risk", "low"])
        .args([
            "--upstream-url",
            &format!("{url}/mcp"),
            "--upstream-auth-env",
            "UPSTREAM_KEY",
        ])
        .env("GATEHOUSE_URL", url)
        .env("GATEHOUSE_API_KEY", key)
        .env("UPSTREAM_KEY", upstream_key.unwrap_or("gh_wrong_key"));
    ().serve(TokioChildProcess::new(cmd).unwrap())
        .await
        .map_err(|e| e.to_string())
}

/// `--upstream-url` wraps a streamable-HTTP server: here Gatehouse's own
/// `/mcp`, which wants a bearer key of its own.
#[test]
fn proxy_wraps_a_streamable_http_server() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let storage = ["--data", data.to_str().unwrap()];
    let agent = create_key(&storage, "agent");
    let upstream = create_key(&storage, "agent");
    let reviewer = create_key(&storage, "reviewer");
    let server = Server::start(&storage, &[]);
    let url = server.url.clone();
    let rt = runtime();

    let client = rt
        .block_on(http_proxy(&url, &agent, Some(&upstream)))
        .unwrap();
    let tools = rt.block_on(client.list_all_tools()).unwrap();
    assert!(
        tools.iter().any(|t| t.name == "request_approval"),
        "{tools:?}"
    );
    let asked = rt.block_on(call_tool(&client, "request_approval", serde_json::json!({
        "agent": "inner-agent", "action": "send_email", "risk": "low", "subject": "ana@example.com"})));
    assert!(!is_error(&asked), "{asked:?}");
    assert_eq!(
        asked.structured_content.as_ref().unwrap()["status"],
        "allow",
        "{asked:?}"
    );
    // The proxy's own decision about the call, with its receipt.
    let (_, list) = call(
        "GET",
        &format!("{url}/api/decisions?limit=10"),
        Some(&reviewer),
        None,
    );
    let outer = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["tool_name"] == "request_approval")
        .expect("the proxied call was decided")
        .clone();
    assert_eq!(outer["workflow_name"], "http-agent", "{outer}");
    let runs = executions(&url, &reviewer, outer["id"].as_str().unwrap());
    assert_eq!(
        runs["outcomes"][0]["outcome"]["status"], "succeeded",
        "{runs}"
    );
    rt.block_on(client.cancel()).ok();

    // The upstream refuses a wrong token, so no session starts.
    assert!(rt.block_on(http_proxy(&url, &agent, None)).is_err());
    // A named variable that is not set stops the proxy before it starts.
    let out = gatehouse(&[
        "mcp",
        "proxy",
        "--agent",
        "a",
        "--upstream-url",
        &format!("{url}/mcp"),
        "--upstream-auth-env",
        "GATEHOUSE_TEST_UNSET_VARIABLE",
    ])
    .env("GATEHOUSE_API_KEY", &agent)
    .stdin(std::process::Stdio::null())
    .output()
    .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("GATEHOUSE_TEST_UNSET_VARIABLE"));
}
