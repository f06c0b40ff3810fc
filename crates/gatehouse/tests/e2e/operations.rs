//! What operators rely on: metrics on a private address, structured logs
//! that carry the request id, and plain text logs when not on a terminal.

use std::process::Command;

use serde_json::Value;

use crate::*;

/// A `serve` command logging at `filter`.
fn serve(args: &[&str], filter: &str) -> Command {
    let mut cmd = gatehouse(args);
    cmd.env("GATEHOUSE_LOG", filter);
    cmd
}

#[test]
fn metrics_on_a_private_address_and_json_logs_with_request_ids() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap().to_string();
    let agent = create_key(&["--data", &data], "agent");
    let log = dir.path().join("server.log");
    let cmd = serve(
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data",
            &data,
            "--metrics-listen",
            "127.0.0.1:0",
            "--log-format",
            "json",
        ],
        "info,gatehouse_server=debug",
    );
    let server = Server::spawn_logging(cmd, std::fs::File::create(&log).unwrap());
    let metrics_url = server
        .early
        .iter()
        .find_map(|l| l.strip_prefix("gatehouse metrics on "))
        .expect("the metrics address is printed")
        .to_string();
    let (status, _) = call(
        "POST",
        &format!("{}/api/agent/tasks/t/requests", server.url),
        Some(&agent),
        Some(deploy_body()),
    );
    assert_eq!(status, 201);
    // A failed request with the caller's own id, to find in the log.
    let client = reqwest::blocking::Client::new();
    let denied = client
        .get(format!("{}/api/decisions", server.url))
        .header("x-request-id", "e2e-trace-7")
        .send()
        .unwrap();
    assert_eq!(denied.status(), 401);
    // No key needed on the private address; none accepted on the main one.
    let page = reqwest::blocking::get(&metrics_url).unwrap();
    assert_eq!(page.status(), 200);
    let text = page.text().unwrap();
    assert!(
        text.contains("gatehouse_decisions_total{verdict=\"pending_review\",action=\"default\"} 1"),
        "{text}"
    );
    assert!(text.contains("gatehouse_pending_reviews 1"), "{text}");
    assert_eq!(
        call("GET", &format!("{}/metrics", server.url), None, None).0,
        401
    );
    drop(server);

    let lines: Vec<Value> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(!lines.is_empty());
    let traced: Vec<&Value> = lines
        .iter()
        .filter(|l| l["span"]["request_id"] == "e2e-trace-7")
        .collect();
    assert!(
        !traced.is_empty(),
        "no log line carries the request id: {lines:?}"
    );
    assert!(
        traced.iter().any(|l| l["fields"]["status"] == "401"),
        "{traced:?}"
    );
}

#[test]
fn text_logs_have_no_colour_codes_when_not_on_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap().to_string();
    let log = dir.path().join("server.log");
    let cmd = serve(
        &["serve", "--listen", "127.0.0.1:0", "--data", &data],
        "debug,sqlx=warn",
    );
    let server = Server::spawn_logging(cmd, std::fs::File::create(&log).unwrap());
    call("GET", &format!("{}/healthz", server.url), None, None);
    drop(server);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("listening"), "{text}");
    assert!(!text.contains('\u{1b}'), "colour codes in a file:\n{text}");
}

/// Keys the binary creates by itself (SQLite's default key files) are for
/// their owner only.
#[test]
fn key_files_the_binary_creates_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap().to_string();
    let server = Server::start(&["--data", &data], &[]);
    drop(server);
    for name in ["log-signing.key", "token-signing.pem"] {
        let mode = std::fs::metadata(dir.path().join(name))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{name}");
    }
}
