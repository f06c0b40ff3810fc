//! The README's quick start, run as written: its shell blocks, in order, in
//! one bash in an empty directory, against the real binary. Three things
//! differ, and only these: the build line is skipped and `target/release`
//! is the directory of the binary cargo built for this test, and the
//! server listens on a free port instead of 8080 (so runs never collide).

use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_gatehouse");
const BUILD_LINE: &str = "cargo build --release -p gatehouse";
const PATH_LINE: &str = r#"export PATH="$PWD/target/release:$PATH""#;

/// The shell blocks of the README's "Quick start" section.
fn quick_start_blocks(readme: &str) -> Vec<String> {
    let start = readme
        .find("## Quick start")
        .expect("the README has a Quick start");
    let section = &readme[start..];
    let end = section[3..].find("\n## ").map_or(section.len(), |i| i + 3);
    section[..end]
        .split("```sh\n")
        .skip(1)
        .map(|block| block.split("\n```").next().unwrap_or_default().to_string())
        .collect()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn the_quick_start_runs_as_written() {
    let readme_path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../README.md");
    let readme = std::fs::read_to_string(&readme_path).unwrap();
    let blocks = quick_start_blocks(&readme);
    assert!(
        blocks.len() >= 4,
        "the quick start has its blocks: {blocks:?}"
    );
    let script = blocks.join("\n");
    assert!(script.contains(BUILD_LINE) && script.contains(PATH_LINE));
    let port = free_port();
    let bin_dir = Path::new(BIN).parent().unwrap().to_str().unwrap();
    let script = script
        .replace(BUILD_LINE, ": the test runs the binary cargo built for it")
        .replace(PATH_LINE, &format!("export PATH=\"{bin_dir}:$PATH\""))
        .replace("127.0.0.1:8080", &format!("127.0.0.1:{port}"));
    // Stop the background server even when a line fails.
    let script =
        format!("set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n{script}\n");
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new("bash");
    cmd.arg("-c").arg(&script).current_dir(dir.path());
    for (k, _) in std::env::vars() {
        if k.starts_with("GATEHOUSE_") {
            cmd.env_remove(k);
        }
    }
    let out = cmd
        .env("GATEHOUSE_LISTEN", format!("127.0.0.1:{port}"))
        .env("GATEHOUSE_URL", format!("http://127.0.0.1:{port}"))
        .output()
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the quick start failed ({}):\n--- script\n{script}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
    for expected in [
        "\"status\":\"pending_review\"",
        "\"status\":\"approved\"",
        " allow",
        "ok: the log and every decision check out",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
}
