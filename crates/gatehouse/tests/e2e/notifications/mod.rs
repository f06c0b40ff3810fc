//! Notifications against a real server and real receivers: Standard
//! Webhooks deliveries checked by the `standardwebhooks` package from PyPI
//! (an implementation independent of ours), retries, dead letters and
//! manual retry, callbacks and their allowlist, a crash during delivery,
//! and two PostgreSQL replicas sharing one outbox (the last three in
//! durability.rs).

use std::collections::{BTreeMap, BTreeSet};
use std::io::BufRead;
use std::path::PathBuf;

use super::*;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const CALLBACK_SECRET: &str = "whsec_C2FsbGJhY2sgc2VjcmV0IG9mIDMyIGJ5dGVzIQ==";

/// The Python with the test packages (scripts/test exports it).
pub(crate) fn python() -> PathBuf {
    if let Ok(p) = std::env::var("GATEHOUSE_TEST_PYTHON") {
        return PathBuf::from(p);
    }
    let venv =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/schemathesis-venv/bin/python");
    assert!(
        venv.exists(),
        "the notification tests need Python with standardwebhooks and aiosmtpd: run scripts/test, \
         or set GATEHOUSE_TEST_PYTHON"
    );
    venv
}

/// A receiver process (webhook_receiver.py) and the log it writes.
pub(crate) struct Receiver {
    child: Child,
    pub url: String,
    log: PathBuf,
}

impl Receiver {
    pub(crate) fn start(dir: &Path, name: &str, args: &[&str]) -> Receiver {
        let log = dir.join(format!("{name}.jsonl"));
        let script =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/py/webhook_receiver.py");
        let mut child = Command::new(python())
            .arg(script)
            .args(["--out", log.to_str().unwrap()])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the webhook receiver");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("receiver said {line:?}"))
            .to_string();
        Receiver { child, url, log }
    }

    /// Every request received so far.
    pub(crate) fn received(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Waits until `done` holds for what was received.
    pub(crate) fn wait_for(&self, what: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        poll_until(what, || self.received(), |got| done(got))
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The events one decision got, in arrival order, de-duplicated by
/// `webhook-id` (retries of a failed attempt are the same message).
fn events_of(received: &[Value], id: &str) -> Vec<String> {
    let mut seen = BTreeSet::new();
    received
        .iter()
        .filter(|r| r["body"]["data"]["id"] == id && r["answered"].as_u64() < Some(300))
        .filter(|r| seen.insert(r["headers"]["webhook-id"].as_str().unwrap().to_string()))
        .map(|r| r["body"]["type"].as_str().unwrap().to_string())
        .collect()
}

fn write_config(dir: &Path, text: &str) -> String {
    let path = dir.join("gatehouse.toml");
    std::fs::write(&path, text).unwrap();
    let out = gatehouse(&["config", "check", path.to_str().unwrap()])
        .env("GH_TEST_WEBHOOK_SECRET", SECRET)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    path.to_str().unwrap().to_string()
}

fn ask(server: &Server, key: &str, body: Value) -> (u16, Value) {
    call(
        "POST",
        &format!("{}/api/agent/tasks/t/requests", server.url),
        Some(key),
        Some(body),
    )
}

fn low() -> Value {
    json!({"workflow_name": "Billing", "tool_name": "send_receipt", "subject": "cus_1",
           "risk_level": "low", "payload": {"n": 1}})
}

fn webhooks_and_callbacks(storage: &[&str], dir: &Path) {
    // The first answer is a 500: the outbox must try again.
    let hooks = Receiver::start(dir, "hooks", &["--secret", SECRET, "--fail-first", "1"]);
    let callbacks = Receiver::start(dir, "callbacks", &["--secret", CALLBACK_SECRET]);
    // Secrets by reference: one from a file, one from the environment.
    let secret_file = dir.join("callback.secret");
    std::fs::write(&secret_file, format!("{CALLBACK_SECRET}\n")).unwrap();
    let config = write_config(
        dir,
        &format!(
            r#"
[outbox]
backoff = "1s"
max_backoff = "2s"

[[webhooks]]
name = "ops"
url = "{hooks}/gatehouse"
secret = "env:GH_TEST_WEBHOOK_SECRET"
events = ["decision.created", "decision.pending_review", "decision.resolved"]

[callbacks]
allow = ["127.0.0.1"]
secret = "file:{secret}"
"#,
            hooks = hooks.url,
            secret = secret_file.display()
        ),
    );
    let agent = create_key(storage, "agent");
    let reviewer = create_key(storage, "reviewer");
    let admin = create_key(storage, "admin");
    let mut cmd = gatehouse(&["serve", "--listen", "127.0.0.1:0", "--config", &config]);
    cmd.args(storage).env("GH_TEST_WEBHOOK_SECRET", SECRET);
    let server = Server::spawn(cmd);

    // Refused callback URLs are a 400 with a stable code, and nothing is stored.
    for url in [
        "http://10.0.0.1/cb",
        "https://evil.example.com/cb",
        "http://[::1]:9/cb",
    ] {
        let mut body = deploy_body();
        body["callback_url"] = json!(url);
        let (status, out) = ask(&server, &agent, body);
        assert_eq!(
            (status, out["error"]["code"].as_str()),
            (400, Some("callback_not_allowed")),
            "{url}: {out}"
        );
    }

    let mut body = deploy_body();
    body["callback_url"] = json!(format!("{}/cb", callbacks.url));
    let (status, pending) = ask(&server, &agent, body);
    assert_eq!(status, 201, "{pending}");
    let id = pending["id"].as_str().unwrap().to_string();
    let (status, allowed) = ask(&server, &agent, low());
    assert_eq!(status, 201, "{allowed}");
    let allowed_id = allowed["id"].as_str().unwrap().to_string();
    let (status, out) = call(
        "POST",
        &format!("{}/api/gate/requests/{id}/review", server.url),
        Some(&reviewer),
        Some(json!({"decision": "approve", "comment": "ship it"})),
    );
    assert_eq!(status, 200, "{out}");

    let got = hooks.wait_for("every event of both decisions", |r| {
        events_of(r, &id).len() == 3 && events_of(r, &allowed_id).len() == 1
    });
    // In order per decision, each verified by the independent library.
    assert_eq!(
        events_of(&got, &id),
        [
            "decision.created",
            "decision.pending_review",
            "decision.resolved"
        ]
    );
    assert_eq!(events_of(&got, &allowed_id), ["decision.created"]);
    for r in &got {
        assert_eq!(r["verified"], true, "{r}");
        assert_eq!(r["path"], "/gatehouse");
    }
    // The first request failed and the same message came again.
    assert_eq!(got[0]["answered"], 500);
    let first_id = &got[0]["headers"]["webhook-id"];
    assert!(got[1..]
        .iter()
        .any(|r| &r["headers"]["webhook-id"] == first_id && r["answered"] == 204));
    let resolved = got
        .iter()
        .find(|r| r["body"]["type"] == "decision.resolved")
        .unwrap();
    let data = &resolved["body"]["data"];
    assert_eq!(data["status"], "approved");
    assert_eq!(data["resolution"], "approved");
    assert_eq!(data["workflow"], "GitHub Actions");
    assert_eq!(data["tool"], "deploy_production");
    assert_eq!(data["risk"], "high");
    assert!(data["links"]["console"]
        .as_str()
        .unwrap()
        .ends_with(&format!("/console/decisions/{id}")));
    assert!(resolved["body"]["timestamp"]
        .as_str()
        .unwrap()
        .ends_with('Z'));

    // The callback: only the resolution, signed with the callback secret.
    let cb = callbacks.wait_for("the callback", |r| !r.is_empty());
    assert_eq!(cb.len(), 1, "{cb:#?}");
    assert_eq!(cb[0]["verified"], true, "{}", cb[0]);
    assert_eq!(cb[0]["path"], "/cb");
    assert_eq!(cb[0]["body"]["type"], "decision.resolved");
    assert_eq!(cb[0]["body"]["data"]["id"], id.as_str());

    // Attempts are recorded (a moment after the receiver answered: they
    // are written in batches): the API and the CLI show them.
    // Four about the reviewed decision (three webhooks, one callback) and
    // one about the allowed one.
    poll_until(
        "every delivery recorded as delivered",
        || {
            call(
                "GET",
                &format!("{}/api/deliveries", server.url),
                Some(&admin),
                None,
            )
            .1
        },
        |list| {
            list["items"].as_array().is_some_and(|items| {
                items.len() == 5 && items.iter().all(|d| d["status"] == "delivered")
            })
        },
    );
    let (status, list) = call(
        "GET",
        &format!("{}/api/deliveries?decision_id={id}", server.url),
        Some(&admin),
        None,
    );
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["items"].as_array().unwrap().len(), 4, "{list}");
    // The one that was answered 500 first (about either decision).
    let (_, all) = call(
        "GET",
        &format!("{}/api/deliveries", server.url),
        Some(&admin),
        None,
    );
    let retried = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["attempts"] == 2)
        .expect("one delivery retried");
    assert_eq!(retried["id"], *first_id);
    let (_, detail) = call(
        "GET",
        &format!(
            "{}/api/deliveries/{}",
            server.url,
            retried["id"].as_str().unwrap()
        ),
        Some(&admin),
        None,
    );
    let attempts = detail["attempts"].as_array().unwrap();
    assert_eq!(attempts[0]["status_code"], 500, "{detail}");
    assert_eq!(attempts[1]["status_code"], 204, "{detail}");
    let (status, _) = call(
        "GET",
        &format!("{}/api/deliveries", server.url),
        Some(&agent),
        None,
    );
    assert_eq!(status, 403);
    let mut args = vec!["deliveries", "list", "--decision", &id];
    args.extend_from_slice(storage);
    let out = run(&args);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && table.contains("decision.resolved") && table.contains("callback"),
        "{table}"
    );
    // Paging: one at a time with --before walks every delivery once, and a
    // full page says how to ask for the next.
    let all = table.lines().count() - 1;
    let mut seen: Vec<String> = Vec::new();
    loop {
        let mut args = vec!["deliveries", "list", "--decision", &id, "--limit", "1"];
        let before = seen.last().cloned();
        if let Some(b) = &before {
            args.extend_from_slice(&["--before", b]);
        }
        args.push("--json");
        args.extend_from_slice(storage);
        let out = run(&args);
        assert!(out.status.success(), "{out:?}");
        let page = String::from_utf8_lossy(&out.stdout).to_string();
        let Some(line) = page.lines().next() else {
            break;
        };
        let d: Value = serde_json::from_str(line).unwrap();
        seen.push(d["id"].as_str().unwrap().to_string());
        assert!(seen.len() <= all, "paging went past the end: {seen:?}");
    }
    assert_eq!(seen.len(), all, "{seen:?}");
    let mut args = vec!["deliveries", "list", "--decision", &id, "--limit", "1"];
    args.extend_from_slice(storage);
    let out = run(&args);
    let hint = String::from_utf8_lossy(&out.stderr);
    assert!(hint.contains(&format!("--before {}", seen[0])), "{hint}");
    let mut args = vec!["deliveries", "list", "--limit", "0"];
    args.extend_from_slice(storage);
    assert!(!run(&args).status.success(), "--limit 0 is refused");
}

#[test]
fn webhooks_and_callbacks_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    webhooks_and_callbacks(&["--data", data.to_str().unwrap()], dir.path());
}

#[test]
fn webhooks_and_callbacks_on_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let schema = fresh_schema();
    let flags = postgres_flags(&schema, dir.path());
    let storage: Vec<&str> = flags.iter().map(String::as_str).collect();
    webhooks_and_callbacks(&storage, dir.path());
}

mod durability;
