//! Rotating the approval-token key while servers run.

use serde_json::json;
use std::process::Command;
use std::time::Duration;

use crate::*;

/// The kids the JWKS publishes, the key in force first.
fn published_kids(url: &str) -> Vec<String> {
    let (_, jwks) = call("GET", &format!("{url}/.well-known/jwks.json"), None, None);
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_string())
        .collect()
}

fn token_kid(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

/// Waits up to ten seconds for the server to sign with a key other than
/// `old`; returns the new key's kid.
fn wait_for_new_key(url: &str, old: &str) -> String {
    for _ in 0..100 {
        let kids = published_kids(url);
        if kids[0] != old {
            return kids[0].clone();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("the server still signs with {old}");
}

fn rotate(data: &str) {
    let out = run(&["keys", "rotate", "--data", data]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn rotated_token_keys_are_used_without_a_restart_and_stay_published() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap().to_string();
    let storage = ["--data", data.as_str()];
    let agent = create_key(&storage, "agent");
    let mut body = deploy_body();
    body["risk_level"] = json!("low");
    let request = |url: &str| {
        let (code, out) = call(
            "POST",
            &format!("{url}/api/agent/tasks/t/requests"),
            Some(&agent),
            Some(body.clone()),
        );
        assert_eq!(code, 201, "{out}");
        out["approval_token"].as_str().unwrap().to_string()
    };

    // Rotation while serving, picked up on SIGHUP.
    let server = Server::start(&storage, &["--token-key-reload", "off"]);
    let old_token = request(&server.url);
    let first_kid = token_kid(&old_token);
    rotate(&data);
    assert_eq!(published_kids(&server.url)[0], first_kid, "not re-read yet");
    let hangup = Command::new("kill")
        .args(["-HUP", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(hangup.success());
    let second_kid = wait_for_new_key(&server.url, &first_kid);
    assert_eq!(
        published_kids(&server.url),
        [second_kid.clone(), first_kid.clone()],
        "the new key, and the old one, whose token is still valid"
    );
    assert_eq!(
        token_kid(&request(&server.url)),
        second_kid,
        "new tokens use the new key"
    );
    // A token signed before the rotation still redeems.
    let action = json!({"tool_name": body["tool_name"], "subject": body["subject"], "payload": body["payload"]});
    let (code, out) = call(
        "POST",
        &format!("{}/api/tokens/redeem", server.url),
        Some(&agent),
        Some(json!({"token": old_token, "action": action})),
    );
    assert_eq!(code, 200, "{out}");

    // A key file that cannot be used leaves the key in force.
    let key_file = dir.path().join("data").join("token-signing.pem");
    let good_key = std::fs::read_to_string(&key_file).unwrap();
    std::fs::write(&key_file, "not a key").unwrap();
    Command::new("kill")
        .args(["-HUP", &server.child.id().to_string()])
        .status()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(token_kid(&request(&server.url)), second_kid);
    std::fs::write(&key_file, good_key).unwrap();
    drop(server);

    // Rotation picked up by the periodic re-read.
    let server = Server::start(&storage, &["--token-key-reload", "1s"]);
    rotate(&data);
    let third_kid = wait_for_new_key(&server.url, &second_kid);
    assert_eq!(token_kid(&request(&server.url)), third_kid);
    // The key in force, then every retired key with a live token, by kid.
    let mut retired = vec![first_kid, second_kid];
    retired.sort();
    let mut expected = vec![third_kid];
    expected.extend(retired);
    assert_eq!(published_kids(&server.url), expected);
    drop(server);
    assert_eq!(
        log_verify(&storage, &[]).0,
        0,
        "the rotations are logged consistently"
    );
}
