//! Private hooks for no-code tools, end to end: `gatehouse hooks create`
//! prints a URL and a secret, a tool posts to the URL of a running server
//! with the secret (the way an n8n HTTP Request node does), `hooks revoke`
//! shuts it out at once, and `log verify` accepts the hook's entries; on
//! SQLite and on PostgreSQL.

use serde_json::{json, Value};

use crate::*;

/// Creates a hook with the CLI; returns (id, secret, stdout).
fn create_hook(storage: &[&str], name: &str) -> (String, String, String) {
    let mut args = vec![
        "hooks",
        "create",
        "--name",
        name,
        "--workflow",
        "billing_discount_gate",
        "--actions",
        "apply_discount,issue_credit",
        "--url",
        "https://gate.example.com/",
    ];
    args.extend_from_slice(storage);
    let out = run(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let url = stdout
        .lines()
        .find_map(|l| l.strip_prefix("hook URL: "))
        .expect("the hook's URL is printed");
    let id = url
        .strip_prefix("https://gate.example.com/hooks/")
        .expect("the URL is the public URL and /hooks/{id}")
        .to_string();
    let secret = stdout.lines().last().unwrap().to_string();
    assert!(secret.starts_with("ghh_"), "{stdout}");
    (id, secret, stdout)
}

fn ask(url: &str, id: &str, secret: &str, context: Value) -> (u16, Value) {
    let resp = reqwest::blocking::Client::new()
        .post(format!("{url}/hooks/{id}"))
        .header("X-Gatehouse-Hook-Secret", secret)
        .json(&json!({"question": "Apply the discount?", "context": context}))
        .send()
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().unwrap_or(Value::Null))
}

fn hooks_flow(storage: &[&str]) {
    let (id, secret, _) = create_hook(storage, "n8n-discounts");
    // The name is unique; a name that is not one is refused with a message.
    for bad in [["--name", "n8n-discounts"], ["--name", "has space"]] {
        let mut args = vec![
            "hooks",
            "create",
            bad[0],
            bad[1],
            "--workflow",
            "w",
            "--actions",
            "a",
        ];
        args.extend_from_slice(storage);
        let out = run(&args);
        assert!(!out.status.success());
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("error"),
            "{out:?}"
        );
    }
    let server = Server::start(storage, &[]);
    let (status, proceed) = ask(
        &server.url,
        &id,
        &secret,
        json!({"requested_action": "apply_discount", "source_record_id": "sub_1", "discount_percent": 10, "risk": "low"}),
    );
    assert_eq!(status, 200, "{proceed}");
    assert_eq!(proceed["route"], "proceed");
    assert!(proceed["record_hash"].as_str().unwrap().len() == 64);
    let (_, review) = ask(
        &server.url,
        &id,
        &secret,
        json!({"requested_action": "issue_credit", "source_record_id": "sub_2", "risk": "high"}),
    );
    assert_eq!(review["route"], "review", "{review}");
    let (status, scope) = ask(
        &server.url,
        &id,
        &secret,
        json!({"requested_action": "delete_account", "risk": "low"}),
    );
    assert_eq!(
        (status, scope["error"]["code"].as_str()),
        (403, Some("out_of_scope"))
    );

    let mut list = vec!["hooks", "list", "--json"];
    list.extend_from_slice(storage);
    let listed = String::from_utf8(run(&list).stdout).unwrap();
    let hook: Value = serde_json::from_str(listed.lines().next().unwrap()).unwrap();
    assert_eq!(hook["id"], id.as_str());
    assert_eq!(hook["actions"], json!(["apply_discount", "issue_credit"]));
    assert!(!listed.contains(&secret), "never the secret");

    let mut revoke = vec!["hooks", "revoke", id.as_str()];
    revoke.extend_from_slice(storage);
    assert!(run(&revoke).status.success());
    let (status, _) = ask(
        &server.url,
        &id,
        &secret,
        json!({"requested_action": "apply_discount", "risk": "low"}),
    );
    assert_eq!(status, 401, "a revoked hook is refused at once");
    let mut missing = vec!["hooks", "revoke", "hook_missing"];
    missing.extend_from_slice(storage);
    assert!(!run(&missing).status.success());
    drop(server);

    // The hook's entries are part of a log that verifies.
    let (code, out) = log_verify(storage, &[]);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn hooks_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    hooks_flow(&["--data", data.to_str().unwrap()]);
}

#[test]
fn hooks_on_postgres() {
    let schema = fresh_schema();
    let dir = tempfile::tempdir().unwrap();
    let flags = postgres_flags(&schema, dir.path());
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    hooks_flow(&flags);
}
