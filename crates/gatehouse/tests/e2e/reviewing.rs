//! People, groups, quorum, escalation and amendments against a real
//! server, on SQLite and on PostgreSQL: users made with the CLI, reviews
//! over HTTP, and the Decision Packet verified offline with `gatehouse
//! verify`, which fails naming the missing approval once one is removed.

use std::io::Write;
use std::process::Stdio;

use super::*;

/// Creates a reviewer with the CLI, the password on standard input.
pub(crate) fn user(storage: &[&str], name: &str, groups: &[&str]) {
    person(storage, name, groups, "reviewer", None);
}

/// Creates a person of any role, with an email address if given.
pub(crate) fn person(
    storage: &[&str],
    name: &str,
    groups: &[&str],
    role: &str,
    email: Option<&str>,
) {
    let mut args = vec!["users", "create", name, "--password-stdin", "--role", role];
    for g in groups {
        args.extend(["--group", g]);
    }
    if let Some(e) = email {
        args.extend(["--email", e]);
    }
    args.extend_from_slice(storage);
    let mut child = gatehouse(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"a long enough password\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A reviewer key that belongs to `name`.
fn key_of(storage: &[&str], name: &str) -> String {
    create_key_for(storage, "reviewer", Some(name))
}

fn refund(amount: i64) -> Value {
    json!({"workflow_name": "Customer Support", "tool_name": "issue_refund", "subject": "cus_7",
        "risk_level": "high", "payload": {"amount": amount, "currency": "usd"}})
}

fn flow(storage: &[&str], dir: &Path) {
    for (name, groups) in [
        ("ana", vec!["finance"]),
        ("bo", vec!["finance"]),
        ("lee", vec!["legal"]),
    ] {
        user(storage, name, &groups);
    }
    let agent = create_key(storage, "agent");
    let (ana, bo, lee) = (
        key_of(storage, "ana"),
        key_of(storage, "bo"),
        key_of(storage, "lee"),
    );
    let policies = examples("review-routing");
    let server = Server::start(storage, &["--policies", policies.to_str().unwrap()]);
    let ask = |body: Value| {
        let (status, out) = call(
            "POST",
            &format!("{}/api/agent/tasks/t/requests", server.url),
            Some(&agent),
            Some(body),
        );
        assert_eq!(status, 201, "{out}");
        out["id"].as_str().unwrap().to_string()
    };
    let review = |key: &str, id: &str, body: Value| {
        call(
            "POST",
            &format!("{}/api/gate/requests/{id}/review", server.url),
            Some(key),
            Some(body),
        )
    };

    // Two of finance and one of legal, with an amendment in between.
    let id = ask(refund(250_000));
    let (status, out) = review(&lee, &id, json!({"decision": "approve"}));
    assert_eq!(
        (status, out["status"].as_str()),
        (200, Some("pending_review")),
        "{out}"
    );
    let (status, out) = review(
        &ana,
        &id,
        json!({"decision": "approve",
        "amended_payload": {"amount": 200_000, "currency": "usd"}, "comment": "cap at 2,000"}),
    );
    assert_eq!(status, 200, "{out}");
    assert_eq!(
        out["review_progress"]["requirements"][1]["approvals"], 0,
        "legal's approval was of the old payload"
    );
    let (status, out) = review(&ana, &id, json!({"decision": "approve"}));
    assert_eq!(
        (status, out["error"]["code"].as_str()),
        (409, Some("already_reviewed")),
        "{out}"
    );
    review(&bo, &id, json!({"decision": "approve"}));
    let (_, out) = review(&lee, &id, json!({"decision": "approve"}));
    assert_eq!(out["status"], "approved", "{out}");
    assert_eq!(out["approved_action"]["payload"]["amount"], 200_000);

    // The packet verifies offline; without one approval it fails, naming it.
    let (_, packet) = call(
        "GET",
        &format!("{}/api/decision/{id}/packet", server.url),
        Some(&agent),
        None,
    );
    let key = String::from_utf8(run(&[&["log", "key"], storage].concat()).stdout).unwrap();
    let packet_file = dir.join("packet.json");
    std::fs::write(&packet_file, packet.to_string()).unwrap();
    let verify = |file: &Path| run(&["verify", file.to_str().unwrap(), "--log-key", key.trim()]);
    let ok = verify(&packet_file);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    let mut cut = packet.clone();
    let last = cut["reviews"].as_array_mut().unwrap().pop().unwrap();
    cut["audit_chain"]["entries"]
        .as_array_mut()
        .unwrap()
        .retain(|e| e["index"] != last["index"]);
    let cut_file = dir.join("cut.json");
    std::fs::write(&cut_file, cut.to_string()).unwrap();
    let failed = verify(&cut_file);
    let text = String::from_utf8_lossy(&failed.stdout).to_string();
    assert!(!failed.status.success(), "{text}");
    assert!(
        text.contains("0 of 1 approvals") && text.contains("legal"),
        "{text}"
    );
    drop(server);
    let (code, out) = log_verify(storage, &[]);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn quorum_amendment_and_offline_verification_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    flow(&["--data", data.to_str().unwrap()], dir.path());
}

#[test]
fn quorum_amendment_and_offline_verification_on_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let schema = fresh_schema();
    let flags = postgres_flags(&schema, dir.path());
    let storage: Vec<&str> = flags.iter().map(String::as_str).collect();
    flow(&storage, dir.path());
}

#[test]
fn escalation_widens_who_may_review_and_is_logged() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let storage = ["--data", data.to_str().unwrap()];
    let policies = dir.path().join("policies");
    std::fs::create_dir(&policies).unwrap();
    std::fs::copy(
        examples("review-routing").join("schema.cedarschema"),
        policies.join("schema.cedarschema"),
    )
    .unwrap();
    std::fs::write(
        policies.join("policies.cedar"),
        r#"@id("allow") permit(principal, action, resource);
@id("deploy") @tier("review") @reviewers("sre") @escalate_after("2s") @escalate_to("sre-leads")
forbid(principal, action == Action::"deploy_production", resource);"#,
    )
    .unwrap();
    user(&storage, "lu", &["sre-leads"]);
    let agent = create_key(&storage, "agent");
    let lu = key_of(&storage, "lu");
    let server = Server::start(&storage, &["--policies", policies.to_str().unwrap()]);
    let (_, created) = call(
        "POST",
        &format!("{}/api/agent/tasks/t/requests", server.url),
        Some(&agent),
        Some(deploy_body()),
    );
    let id = created["id"].as_str().unwrap().to_string();
    let review_url = format!("{}/api/gate/requests/{id}/review", server.url);
    let (status, out) = call(
        "POST",
        &review_url,
        Some(&lu),
        Some(json!({"decision": "approve"})),
    );
    assert_eq!(
        (status, out["error"]["code"].as_str()),
        (403, Some("not_eligible")),
        "{out}"
    );
    std::thread::sleep(Duration::from_millis(3500));
    let (status, out) = call(
        "POST",
        &review_url,
        Some(&lu),
        Some(json!({"decision": "approve"})),
    );
    assert_eq!(
        (status, out["status"].as_str()),
        (200, Some("approved")),
        "{out}"
    );
    let (_, packet) = call(
        "GET",
        &format!("{}/api/decision/{id}/packet", server.url),
        Some(&agent),
        None,
    );
    let kinds: Vec<String> = packet["audit_chain"]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            use base64::Engine as _;
            let leaf = base64::engine::general_purpose::STANDARD
                .decode(e["leaf"].as_str().unwrap())
                .unwrap();
            serde_json::from_slice::<Value>(&leaf).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        &kinds[..3],
        ["decision", "escalation", "review"],
        "{kinds:?}"
    );
}
