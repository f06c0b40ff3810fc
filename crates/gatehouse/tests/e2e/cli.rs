//! The CLI as a CI step and as an operator uses it.

use serde_json::json;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use crate::*;

#[test]
fn request_command_exit_codes_gate_a_ci_step() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap().to_string();
    let storage = ["--data", data.as_str()];
    let agent = create_key(&storage, "agent");
    let reviewer = create_key(&storage, "reviewer");
    let server = Server::start(&storage, &["--review-timeout", "2s"]);
    let request = |extra: &[&str]| {
        let mut args = vec![
            "request",
            "--url",
            server.url.as_str(),
            "--workflow",
            "GitHub Actions",
            "--tool",
            "deploy_production",
            "--subject",
            "main",
        ];
        args.extend_from_slice(extra);
        gatehouse(&args)
            .env("GATEHOUSE_API_KEY", &agent)
            .output()
            .unwrap()
    };
    assert_eq!(
        request(&["--risk", "low"]).status.code(),
        Some(0),
        "allow exits 0"
    );
    assert_eq!(
        request(&["--risk", "high"]).status.code(),
        Some(2),
        "pending without --wait exits 2"
    );
    // Pending, then expired after the 2 s review timeout: exit 1.
    let out = request(&["--risk", "high", "--wait", "10"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("expired"));
    // Approved while waiting: exit 0.
    let url = server.url.clone();
    let reviewer2 = reviewer.clone();
    let approver = std::thread::spawn(move || {
        for _ in 0..50 {
            std::thread::sleep(Duration::from_millis(100));
            let (_, list) = call(
                "GET",
                &format!("{url}/api/decisions?status=pending_review"),
                Some(&reviewer2),
                None,
            );
            if let Some(id) = list["items"][0]["id"].as_str() {
                return call(
                    "POST",
                    &format!("{url}/api/gate/requests/{id}/review"),
                    Some(&reviewer2),
                    Some(json!({"decision": "approve"})),
                )
                .0;
            }
        }
        0
    });
    assert_eq!(
        request(&["--risk", "high", "--wait", "10"]).status.code(),
        Some(0)
    );
    assert_eq!(approver.join().unwrap(), 200);
    // Errors (bad key) exit 2.
    let out = gatehouse(&[
        "request",
        "--url",
        &server.url,
        "--workflow",
        "w",
        "--tool",
        "t",
        "--subject",
        "s",
        "--risk",
        "low",
    ])
    .env("GATEHOUSE_API_KEY", "gh_bad_key")
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unauthorized"));
}

/// `request --wait` says at once which decision it waits for (on stderr),
/// so a reviewer can act on the id while the CI step is still waiting.
#[test]
fn request_wait_names_the_decision_before_waiting() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap().to_string();
    let storage = ["--data", data.as_str()];
    let agent = create_key(&storage, "agent");
    let reviewer = create_key(&storage, "reviewer");
    let server = Server::start(&storage, &[]);
    let mut child = gatehouse(&[
        "request",
        "--url",
        &server.url,
        "--workflow",
        "GitHub Actions",
        "--tool",
        "deploy_production",
        "--subject",
        "main",
        "--risk",
        "high",
        "--wait",
        "60",
    ])
    .env("GATEHOUSE_API_KEY", &agent)
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut first = String::new();
    stderr.read_line(&mut first).unwrap();
    assert!(first.contains("pending_review"), "{first}");
    assert!(
        child.try_wait().unwrap().is_none(),
        "still waiting after printing"
    );
    let id = first.split_whitespace().next().unwrap();
    assert!(id.starts_with("dec_"), "{first}");
    let (status, _) = call(
        "POST",
        &format!("{}/api/gate/requests/{id}/review", server.url),
        Some(&reviewer),
        Some(json!({"decision": "approve"})),
    );
    assert_eq!(status, 200);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("approved"));
}

#[test]
fn policy_commands_check_and_test() {
    for set in ["starter", "seed-scenarios"] {
        let dir = examples(set);
        let check = run(&["policy", "check", dir.to_str().unwrap()]);
        assert!(
            check.status.success(),
            "{}",
            String::from_utf8_lossy(&check.stderr)
        );
        let cases = dir.join("cases.json");
        let test = run(&[
            "policy",
            "test",
            dir.to_str().unwrap(),
            cases.to_str().unwrap(),
        ]);
        assert!(
            test.status.success(),
            "{}",
            String::from_utf8_lossy(&test.stdout)
        );
        assert!(String::from_utf8_lossy(&test.stdout).contains(" 0 failed"));
    }
    let tmp = tempfile::tempdir().unwrap();
    let wrong = tmp.path().join("wrong.json");
    std::fs::write(&wrong, r#"[{"name": "wrong", "request": {"workflow_name": "w", "tool_name": "t", "subject": "s", "risk_level": "low"}, "expect": "reject"}]"#).unwrap();
    let test = run(&[
        "policy",
        "test",
        examples("starter").to_str().unwrap(),
        wrong.to_str().unwrap(),
    ]);
    assert_eq!(test.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&test.stdout).contains("FAIL  wrong"));

    // A directory with a schema and no .cedar file: the error names the
    // directory, and the schema it did find.
    let only_schema = tmp.path().join("only-schema");
    std::fs::create_dir(&only_schema).unwrap();
    std::fs::copy(
        examples("starter").join("schema.cedarschema"),
        only_schema.join("schema.cedarschema"),
    )
    .unwrap();
    for args in [
        vec!["policy", "check", only_schema.to_str().unwrap()],
        vec![
            "serve",
            "--policies",
            only_schema.to_str().unwrap(),
            "--data",
            tmp.path().to_str().unwrap(),
        ],
    ] {
        let out = run(&args);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("the policies in {}", only_schema.display()))
                && err.contains("schema.cedarschema")
                && err.contains("no .cedar policy file"),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn keys_list_and_revoke_via_cli() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let secret = create_key(&["--data", data], "auditor");
    let listed = run(&["keys", "list", "--data", data]);
    let text = String::from_utf8_lossy(&listed.stdout).to_string();
    assert!(text.contains("auditor") && text.contains("active"));
    assert!(
        !text.contains(&secret[20..]),
        "secrets must never be listed"
    );
    let id = secret
        .strip_prefix("gh_")
        .unwrap()
        .split('_')
        .next()
        .unwrap();
    assert!(run(&["keys", "revoke", id, "--data", data])
        .status
        .success());
    assert!(
        String::from_utf8_lossy(&run(&["keys", "list", "--data", data]).stdout).contains("revoked")
    );
    assert_eq!(
        run(&["keys", "revoke", "nope", "--data", data])
            .status
            .code(),
        Some(2)
    );
    assert!(!Path::new(data).join("nothing").exists());
}
