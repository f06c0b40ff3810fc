//! The served OpenAPI document against the server itself: schemathesis
//! generates requests from the document (valid and invalid ones) and
//! checks every answer: never a 5xx, every status and header documented,
//! every body as its schema says, invalid input refused, valid input
//! accepted, and every error in the API's error shape.
//!
//! `scripts/test` installs the pinned schemathesis (`.ci/requirements.txt`)
//! in a virtual environment and puts it on PATH; without it this test
//! fails, never skips. The rules the document cannot state are in
//! `schemathesis.toml` at the repository's root, each with its reason.

use std::process::Command;

use super::*;

/// Runs schemathesis with every check over the whole document, as `role`.
fn schemathesis(role: &str, examples: u32) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let storage = ["--data", data];
    let key = create_key(&storage, role);
    // Long-polls capped short, and no rate limit: the run is thousands of
    // requests from one key.
    let server = Server::start(&storage, &["--max-wait", "1s", "--rate-limit", "0"]);
    let config = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../schemathesis.toml");
    let out = Command::new("schemathesis")
        .arg("--config-file")
        .arg(&config)
        .args(["run", &format!("{}/openapi.json", server.url)])
        .args(["--checks", "all"])
        .args(["--max-examples", &examples.to_string()])
        // One worker: with more, CPython 3.11 (before 3.11.9) can fail
        // schemathesis's own run ("AST constructor recursion depth
        // mismatch": its AST recursion counter is not thread-safe).
        // Generous: the suite runs a release build and thousands of
        // connections beside this test on two cores.
        .args(["--workers", "1", "--request-timeout", "30"])
        .args(["--seed", "1"])
        .args(["--header", &format!("Authorization: Bearer {key}")])
        .args(["--suppress-health-check", "all"])
        .args(["--no-color"])
        .output()
        .expect("schemathesis is not installed: run the tests through scripts/test, or pip install -r .ci/requirements.txt");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis found failures as {role}:\n{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

// One test per role: each role meets different refusals (403s, what it
// may read), and the runs go in parallel with the other tests.

#[test]
fn schemathesis_finds_no_failure_as_an_agent() {
    schemathesis("agent", 40);
}

#[test]
fn schemathesis_finds_no_failure_as_a_reviewer() {
    schemathesis("reviewer", 25);
}

#[test]
fn schemathesis_finds_no_failure_as_an_admin() {
    schemathesis("admin", 25);
}

#[test]
fn schemathesis_finds_no_failure_as_an_auditor_or_executor() {
    schemathesis("auditor", 15);
    schemathesis("executor", 15);
}
