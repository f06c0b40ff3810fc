//! Notifications against a real server and real receivers: Standard
//! Webhooks deliveries checked by the `standardwebhooks` package from PyPI
//! (an implementation independent of ours), retries, dead letters and
//! manual retry, callbacks and their allowlist, a crash during delivery,
//! and two PostgreSQL replicas sharing one outbox.

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

/// A receiver that is down: deliveries die after their attempts, are
/// listed as failed, and a manual retry delivers them once it is back.
#[test]
fn dead_letters_are_listed_and_retried() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let storage = ["--data", data.to_str().unwrap()];
    // A port nothing listens on (yet).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = write_config(
        dir.path(),
        &format!(
            r#"
[outbox]
max_attempts = 2
backoff = "1s"

[[webhooks]]
url = "http://127.0.0.1:{port}/down"
secret = "{SECRET}"
events = ["decision.pending_review"]
"#
        ),
    );
    let agent = create_key(&storage, "agent");
    let server = Server::start(&storage, &["--config", &config]);
    let (_, pending) = ask(&server, &agent, deploy_body());
    let id = pending["id"].as_str().unwrap().to_string();
    let mut list = vec!["deliveries", "list", "--failed", "--json"];
    list.extend_from_slice(&storage);
    let mut dead = Vec::new();
    for _ in 0..100 {
        dead = String::from_utf8(run(&list).stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .collect();
        if !dead.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0]["decision_id"], id.as_str());
    assert_eq!(dead[0]["attempts"], 2);
    assert!(
        dead[0]["last_error"].as_str().unwrap().contains("onnect"),
        "{}",
        dead[0]
    );

    // Admins see the dead letter in the console, with the decision's
    // notifications on its page.
    super::reviewing::person(&storage, "adm", &[], "admin", None);
    let (console, session) = super::slack::console_sign_in(&server, "adm");
    let delivery = dead[0]["id"].as_str().unwrap();
    let get = |path: &str| {
        console
            .get(format!("{}{path}", server.url))
            .header("cookie", &session)
            .send()
            .unwrap()
            .text()
            .unwrap()
    };
    let page = get("/console/deliveries");
    assert!(page.contains(delivery) && page.contains("Retry"), "{page}");
    let decision_page = get(&format!("/console/decisions/{id}"));
    assert!(
        decision_page.contains("Notifications")
            && decision_page.contains("decision.pending_review")
    );
    // A form without its token is refused and retries nothing.
    let refused = console
        .post(format!(
            "{}/console/deliveries/{delivery}/retry",
            server.url
        ))
        .header("cookie", &session)
        .form(&[("csrf", "wrong")])
        .send()
        .unwrap();
    assert_eq!(refused.status(), 403);

    // The receiver comes back on the same address; a retry delivers.
    let hooks = Receiver::start(
        dir.path(),
        "hooks",
        &["--secret", SECRET, "--port", &port.to_string()],
    );
    let mut retry = vec!["deliveries", "retry", delivery];
    retry.extend_from_slice(&storage);
    assert!(run(&retry).status.success());
    let got = hooks.wait_for("the retried delivery", |r| !r.is_empty());
    assert_eq!(got[0]["headers"]["webhook-id"], delivery);
    assert_eq!(got[0]["verified"], true);
    // A delivered one cannot be retried (once its attempt is recorded).
    let mut show = vec!["deliveries", "show", delivery];
    show.extend_from_slice(&storage);
    poll_until(
        "the retried delivery recorded",
        || String::from_utf8_lossy(&run(&show).stdout).to_string(),
        |out| out.contains("\"status\": \"delivered\""),
    );
    let out = run(&retry);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("delivered"));
    // Nor through the console's button.
    let again = console
        .post(format!(
            "{}/console/deliveries/{delivery}/retry",
            server.url
        ))
        .header("cookie", &session)
        .form(&[("csrf", super::slack::csrf_of(&page).as_str())])
        .send()
        .unwrap();
    assert_eq!(again.status(), 409);
}

/// Killed with SIGKILL while a receiver is slow: after a restart every
/// event still arrives (at least once).
fn crash_during_delivery(storage: &[&str], dir: &Path) {
    let hooks = Receiver::start(dir, "hooks", &["--secret", SECRET, "--delay", "1"]);
    let config = write_config(
        dir,
        &format!(
            r#"
[outbox]
timeout = "3s"
backoff = "1s"

[[webhooks]]
url = "{}/slow"
secret = "{SECRET}"
events = ["decision.pending_review"]
"#,
            hooks.url
        ),
    );
    let agent = create_key(storage, "agent");
    let server = Server::start(storage, &["--config", &config]);
    let ids: Vec<String> = (0..5)
        .map(|_| {
            ask(&server, &agent, deploy_body()).1["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    hooks.wait_for("a delivery in flight", |r| !r.is_empty());
    server.crash();
    let _server = Server::start(storage, &["--config", &config]);
    let got = hooks.wait_for("every event after the restart", |r| {
        ids.iter()
            .all(|id| events_of(r, id) == ["decision.pending_review"])
    });
    assert!(got.iter().all(|r| r["verified"] == true));
}

#[test]
fn crash_during_delivery_loses_nothing_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    crash_during_delivery(&["--data", data.to_str().unwrap()], dir.path());
}

#[test]
fn crash_during_delivery_loses_nothing_on_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let schema = fresh_schema();
    let flags = postgres_flags(&schema, dir.path());
    let storage: Vec<&str> = flags.iter().map(String::as_str).collect();
    crash_during_delivery(&storage, dir.path());
}

/// Two replicas on one database: each event is delivered once (the
/// receiver never fails, so there is no retry to count), and nothing is
/// sent for requests that were refused before they committed.
#[test]
fn two_postgres_replicas_deliver_each_event_once() {
    let dir = tempfile::tempdir().unwrap();
    let schema = fresh_schema();
    let flags = postgres_flags(&schema, dir.path());
    let storage: Vec<&str> = flags.iter().map(String::as_str).collect();
    let hooks = Receiver::start(dir.path(), "hooks", &["--secret", SECRET]);
    let config = write_config(
        dir.path(),
        &format!(
            r#"
[[webhooks]]
url = "{}/x"
secret = "{SECRET}"
events = ["decision.created", "decision.pending_review"]
"#,
            hooks.url
        ),
    );
    let agent = create_key(&storage, "agent");
    let a = Server::start(&storage, &["--config", &config]);
    let b = Server::start(&storage, &["--config", &config]);
    let mut ids = Vec::new();
    for i in 0..30 {
        let server = if i % 2 == 0 { &a } else { &b };
        let (status, out) = ask(server, &agent, deploy_body());
        assert_eq!(status, 201, "{out}");
        ids.push(out["id"].as_str().unwrap().to_string());
    }
    // Refused before committing: an idempotency key reused with another
    // body, and a body that breaks the schema.
    let mut first = deploy_body();
    first["idempotency_key"] = json!("same");
    assert_eq!(ask(&a, &agent, first.clone()).0, 201);
    let mut other = first.clone();
    other["payload"] = json!({"sha": "different"});
    assert_eq!(ask(&b, &agent, other).0, 409);
    let kept = {
        let (_, out) = ask(&a, &agent, first);
        out["id"].as_str().unwrap().to_string()
    };
    ids.push(kept);
    let got = hooks.wait_for("60 + 2 events", |r| r.len() >= 62);
    std::thread::sleep(Duration::from_secs(3));
    let got_now = hooks.received();
    assert_eq!(
        got_now.len(),
        got.len().max(62),
        "more deliveries arrived late"
    );
    let mut per_id: BTreeMap<String, usize> = BTreeMap::new();
    for r in &got_now {
        *per_id
            .entry(r["headers"]["webhook-id"].as_str().unwrap().to_string())
            .or_default() += 1;
        assert_eq!(r["verified"], true);
    }
    assert!(
        per_id.values().all(|n| *n == 1),
        "a delivery was sent twice: {per_id:?}"
    );
    for id in &ids {
        assert_eq!(
            events_of(&got_now, id),
            ["decision.created", "decision.pending_review"],
            "{id}"
        );
    }
    let decisions: BTreeSet<&str> = got_now
        .iter()
        .map(|r| r["body"]["data"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        decisions.len(),
        ids.len(),
        "an event for a request that never committed"
    );
}
