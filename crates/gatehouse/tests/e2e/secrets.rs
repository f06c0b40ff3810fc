//! A copy of the database holds no approval token anyone can present: the
//! stores keep a token without its signature, and the server signs it
//! again (the same bytes) when the agent reads it, also after a restart
//! and a key rotation.

use serde_json::{json, Value};

use crate::*;

/// A low-risk request: allowed at once, with an approval token.
fn allowed(url: &str, agent: &str) -> (String, String, Value) {
    let mut body = deploy_body();
    body["risk_level"] = json!("low");
    let (code, out) = call(
        "POST",
        &format!("{url}/api/agent/tasks/t/requests"),
        Some(agent),
        Some(body.clone()),
    );
    assert_eq!(code, 201, "{out}");
    let action = json!({"tool_name": body["tool_name"], "subject": body["subject"], "payload": body["payload"]});
    (
        out["id"].as_str().unwrap().to_string(),
        out["approval_token"].as_str().unwrap().to_string(),
        action,
    )
}

fn token_again(url: &str, agent: &str, id: &str) -> String {
    let (code, out) = call(
        "GET",
        &format!("{url}/api/gate/requests/{id}"),
        Some(agent),
        None,
    );
    assert_eq!(code, 200, "{out}");
    out["approval_token"].as_str().unwrap().to_string()
}

/// Every byte of the database's files, as text where it is text.
fn database_bytes(data: &Path) -> String {
    let mut all = Vec::new();
    for name in ["gatehouse.db", "gatehouse.db-wal"] {
        if let Ok(bytes) = std::fs::read(data.join(name)) {
            all.extend(bytes);
        }
    }
    String::from_utf8_lossy(&all).into_owned()
}

#[test]
fn the_sqlite_file_holds_no_usable_token_and_agents_still_read_theirs() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let storage = ["--data", data.to_str().unwrap()];
    let agent = create_key(&storage, "agent");
    let server = Server::start(&storage, &[]);
    let (id, token, action) = allowed(&server.url, &agent);
    assert_eq!(
        token_again(&server.url, &agent, &id),
        token,
        "the same token on every read"
    );
    drop(server);

    let (unsigned, signature) = token.rsplit_once('.').unwrap();
    let bytes = database_bytes(&data);
    assert!(bytes.contains(unsigned), "the token's claims are stored");
    assert!(
        !bytes.contains(signature),
        "the token's signature is in the database file"
    );
    let db = rusqlite::Connection::open(data.join("gatehouse.db")).unwrap();
    let whole: i64 = db
        .query_row(
            "SELECT count(*) FROM approval_tokens WHERE token LIKE '%.%.%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(whole, 0, "a stored token has three segments");

    // After a restart and a key rotation the agent reads the same token
    // (signed again by the previous key, kept beside the new one), and it
    // still redeems.
    let out = run(&["keys", "rotate", "--data", data.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let previous = data.join("token-signing.pem.previous");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&previous).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let server = Server::start(&storage, &[]);
    assert_eq!(token_again(&server.url, &agent, &id), token);
    let (code, out) = call(
        "POST",
        &format!("{}/api/tokens/redeem", server.url),
        Some(&agent),
        Some(json!({"token": token, "action": action})),
    );
    assert_eq!(code, 200, "{out}");

    // Without the previous key the token cannot be shown again: the
    // server says so and shows nothing else.
    drop(server);
    std::fs::remove_file(&previous).unwrap();
    let server = Server::start(&storage, &[]);
    let (code, out) = call(
        "GET",
        &format!("{}/api/gate/requests/{id}", server.url),
        Some(&agent),
        None,
    );
    assert_eq!(code, 500, "{out}");
    assert!(out.to_string().find(signature).is_none());
}

#[test]
fn postgres_keeps_no_token_signature() {
    let schema = fresh_schema();
    let keys_dir = tempfile::tempdir().unwrap();
    let flags = postgres_flags(&schema, keys_dir.path());
    let storage: Vec<&str> = flags.iter().map(String::as_str).collect();
    let agent = create_key(&storage, "agent");
    let server = Server::start(&storage, &[]);
    let (id, token, _) = allowed(&server.url, &agent);
    assert_eq!(token_again(&server.url, &agent, &id), token);
    drop(server);

    let stored: Vec<String> = std::thread::spawn(move || {
        tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(async move {
                let pool = sqlx::PgPool::connect_with(schema.options()).await.unwrap();
                sqlx::query_scalar("SELECT token FROM approval_tokens")
                    .fetch_all(&pool)
                    .await
                    .unwrap()
            })
    })
    .join()
    .unwrap();
    let (unsigned, _) = token.rsplit_once('.').unwrap();
    assert_eq!(stored, [unsigned.to_string()]);
}
