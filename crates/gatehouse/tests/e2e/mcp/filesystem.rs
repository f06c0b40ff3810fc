//! The reference filesystem server behind `gatehouse mcp proxy`, driven by
//! the rmcp client: reads, held and amended writes, rejections, receipts
//! and packets, and fail closed.

use std::path::{Path, PathBuf};
use std::thread;

use rmcp::transport::TokioChildProcess;
use rmcp::ServiceExt;
use serde_json::{json, Value};

use super::*;

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
    .arg(npm_server("mcp-server-filesystem"))
    .arg(shared)
    .env("GATEHOUSE_URL", url)
    .env("GATEHOUSE_API_KEY", key);
    let transport = TokioChildProcess::new(cmd).unwrap();
    ().serve(transport).await.expect("the proxy initializes")
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
    approve(&url, &reviewer, id);
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
        let runs = executions(&url, &reviewer, id);
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
    let runs = executions(&url, &reviewer, rejected[0]["id"].as_str().unwrap());
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
