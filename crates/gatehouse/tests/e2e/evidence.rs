//! The evidence chain: log verification against edits behind the server's
//! back, tokens verified offline and redeemed once, and log consistency
//! (a packet's lifecycle and tampering are in `packets.rs`).

use serde_json::json;
use std::path::Path;

use crate::*;

fn some_activity(url: &str, agent: &str, reviewer: &str) -> Vec<String> {
    let mut ids = Vec::new();
    for risk in ["low", "high", "low"] {
        let mut body = deploy_body();
        body["risk_level"] = json!(risk);
        let (_, d) = call(
            "POST",
            &format!("{url}/api/agent/tasks/t/requests"),
            Some(agent),
            Some(body),
        );
        ids.push(d["id"].as_str().unwrap().to_string());
    }
    let (code, _) = call(
        "POST",
        &format!("{url}/api/gate/requests/{}/review", ids[1]),
        Some(reviewer),
        Some(json!({"decision": "approve"})),
    );
    assert_eq!(code, 200);
    ids
}

#[test]
fn log_verify_finds_rows_edited_behind_the_servers_back_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap().to_string();
    let storage = ["--data", data.as_str()];
    let agent = create_key(&storage, "agent");
    let reviewer = create_key(&storage, "reviewer");
    let server = Server::start(&storage, &[]);
    let ids = some_activity(&server.url, &agent, &reviewer);
    drop(server);
    let (code, out) = log_verify(&storage, &[]);
    assert_eq!(code, 0, "{out}");

    // Another log's key does not verify this log's checkpoints.
    let other = String::from_utf8(run(&["log", "keygen"]).stderr).unwrap();
    let other_key = other
        .trim()
        .strip_prefix("public key: ")
        .unwrap()
        .to_string();
    let (code, out) = log_verify(&storage, &["--log-key", &other_key]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("not signed by the given key"), "{out}");

    let db = rusqlite::Connection::open(dir.path().join("gatehouse.db")).unwrap();
    // Turn a decision that needed review into an allow by editing its row.
    db.execute(
        "UPDATE decisions SET body = replace(body, '\"verdict\":\"pending_review\"', '\"verdict\":\"allow\"') WHERE id = ?1",
        [&ids[1]],
    )
    .unwrap();
    let (code, out) = log_verify(&storage, &[]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!("decision {}", ids[1])),
        "the edited decision is named: {out}"
    );

    // Editing the log entry itself breaks the signed root and is named too.
    db.execute("UPDATE log_entries SET leaf = CAST(replace(CAST(leaf AS TEXT), 'pending_review', 'allow') AS BLOB) WHERE ref_id = ?1 AND kind = 'decision'", [&ids[1]])
        .unwrap();
    let (code, out) = log_verify(&storage, &[]);
    assert_eq!(code, 1);
    assert!(out.contains("do not produce the signed root"), "{out}");
    assert!(out.contains("log entry"), "{out}");

    // A leaf stored with another type or encoding is named by its index,
    // not reported as a database error.
    db.execute("UPDATE log_entries SET leaf = 'not json' WHERE idx = 2", [])
        .unwrap();
    db.execute("UPDATE log_entries SET leaf = 42 WHERE idx = 3", [])
        .unwrap();
    let (code, out) = log_verify(&storage, &[]);
    assert_eq!(code, 1);
    assert!(out.contains("FAIL  log entry 2: "), "{out}");
    assert!(out.contains("FAIL  log entry 3: "), "{out}");

    // Deleting an entry leaves a gap that is found.
    db.execute("DELETE FROM log_entries WHERE idx = 1", [])
        .unwrap();
    let (code, out) = log_verify(&storage, &[]);
    assert_eq!(code, 1);
    assert!(out.contains("log entry 1 is missing"), "{out}");
}

#[test]
fn log_verify_finds_edited_rows_on_postgres() {
    let schema = fresh_schema();
    let dir = tempfile::tempdir().unwrap();
    let flags = postgres_flags(&schema, dir.path());
    let storage: Vec<&str> = flags.iter().map(String::as_str).collect();
    let agent = create_key(&storage, "agent");
    let reviewer = create_key(&storage, "reviewer");
    let server = Server::start(&storage, &[]);
    let ids = some_activity(&server.url, &agent, &reviewer);
    drop(server);
    assert_eq!(log_verify(&storage, &[]).0, 0);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let pool = sqlx::PgPool::connect(&schema.url()).await.unwrap();
        sqlx::query("UPDATE decisions SET body = replace(body, '\"subject\":\"Deploy main to production\"', '\"subject\":\"Deploy evil\"') WHERE id = $1")
            .bind(&ids[0])
            .execute(&pool)
            .await
            .unwrap();
    });
    let (code, out) = log_verify(&storage, &[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains(&format!("decision {}", ids[0])), "{out}");
}

#[test]
fn executor_verifies_a_token_offline_then_redeems_it_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let storage = ["--data", data];
    let agent = create_key(&storage, "agent");
    let server = Server::start(&storage, &[]);
    let mut body = deploy_body();
    body["risk_level"] = json!("low");
    let (_, d) = call(
        "POST",
        &format!("{}/api/agent/tasks/t/requests", server.url),
        Some(&agent),
        Some(body.clone()),
    );
    let token = d["approval_token"]
        .as_str()
        .expect("allow carries a token")
        .to_string();
    let action = json!({"tool_name": body["tool_name"], "subject": body["subject"], "payload": body["payload"]});
    let action_file = dir.path().join("action.json");
    std::fs::write(&action_file, action.to_string()).unwrap();
    let jwks = format!("{}/.well-known/jwks.json", server.url);

    let ok = run(&[
        "token",
        "verify",
        &token,
        "--action",
        action_file.to_str().unwrap(),
        "--jwks",
        &jwks,
    ]);
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );

    let mut changed = action.clone();
    changed["payload"]["sha"] = json!("evil");
    let changed_file = dir.path().join("changed.json");
    std::fs::write(&changed_file, changed.to_string()).unwrap();
    let bad = run(&[
        "token",
        "verify",
        &token,
        "--action",
        changed_file.to_str().unwrap(),
        "--jwks",
        &jwks,
    ]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stdout).contains("action differs"));

    let redeem = json!({"token": token, "action": action});
    let url = format!("{}/api/tokens/redeem", server.url);
    assert_eq!(
        call("POST", &url, Some(&agent), Some(redeem.clone())).0,
        200
    );
    assert_eq!(
        call("POST", &url, Some(&agent), Some(redeem)).0,
        409,
        "a token is single use"
    );
    // The keys and the database (with its WAL) were created beside the
    // data with owner-only access: a database holds approval tokens.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for key in [
            "token-signing.pem",
            "log-signing.key",
            "gatehouse.db",
            "gatehouse.db-wal",
        ] {
            let mode = std::fs::metadata(dir.path().join("data").join(key))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{key}");
        }
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

#[test]
fn log_consistency_proves_growth_and_detects_a_fork() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    let a_str = a.to_str().unwrap().to_string();
    let agent = create_key(&["--data", &a_str], "agent");
    let reviewer = create_key(&["--data", &a_str], "reviewer");
    let server = Server::start(&["--data", &a_str], &[]);
    some_activity(&server.url, &agent, &reviewer);
    let checkpoint = |url: &str| {
        reqwest::blocking::get(format!("{url}/api/log/checkpoint"))
            .unwrap()
            .text()
            .unwrap()
    };
    let shared = dir.path().join("shared.checkpoint");
    std::fs::write(&shared, checkpoint(&server.url)).unwrap();
    drop(server);

    // A fork: a copy of the same log, with the same key, that diverges.
    let b = dir.path().join("b");
    copy_dir(&a, &b);
    let b_str = b.to_str().unwrap().to_string();

    let server = Server::start(&["--data", &a_str], &[]);
    some_activity(&server.url, &agent, &reviewer);
    let diverged = dir.path().join("diverged.checkpoint");
    std::fs::write(&diverged, checkpoint(&server.url)).unwrap();
    drop(server);
    let server = Server::start(&["--data", &b_str], &[]);
    some_activity(&server.url, &agent, &reviewer);
    some_activity(&server.url, &agent, &reviewer);
    drop(server);

    let consistency = |saved: &Path, data: &str| {
        let out = run(&[
            "log",
            "consistency",
            saved.to_str().unwrap(),
            "--data",
            data,
        ]);
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
        )
    };
    // Each log extends what was saved before the split...
    for data in [&a_str, &b_str] {
        let (code, out) = consistency(&shared, data);
        assert_eq!(code, Some(0), "{out}");
        assert!(out.contains("extends the saved checkpoint"), "{out}");
    }
    assert_eq!(consistency(&diverged, &a_str).0, Some(0));
    // ...but the copy cannot extend what A logged after the split.
    let (code, out) = consistency(&diverged, &b_str);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("does not extend"), "{out}");
}
