//! What the outbox keeps through failures: dead letters listed and retried
//! by hand, a SIGKILL during delivery, and two PostgreSQL replicas sharing
//! one outbox.

use super::*;

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
