//! End-to-end tests: the real `gatehouse` binary on port 0, driven over
//! HTTP and through its own CLI, on SQLite and on PostgreSQL. This file
//! holds what every group shares: starting servers, keys, HTTP calls.

mod cli;
mod console;
mod contract;
mod email;
mod evidence;
mod hooks;
mod hostile;
mod keys;
mod lifecycle;
mod mcp;
mod notifications;
mod operations;
mod outages;
mod packets;
mod replicas;
mod resources;
mod reviewing;
mod secrets;
mod slack;
mod tamper;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_gatehouse");

fn examples(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/policies")
        .join(name)
}

/// A `gatehouse` command with no inherited GATEHOUSE_* settings.
fn gatehouse(args: &[&str]) -> Command {
    gatehouse_at(Path::new(BIN), args)
}

/// [`gatehouse`] for a given build of the binary.
fn gatehouse_at(bin: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(bin);
    cmd.args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("GATEHOUSE_") {
            cmd.env_remove(k);
        }
    }
    cmd
}

fn run(args: &[&str]) -> Output {
    gatehouse(args).output().expect("run gatehouse")
}

struct Server {
    child: Child,
    url: String,
    /// What the server printed on stdout before its address (e.g. the
    /// metrics address).
    early: Vec<String>,
}

impl Server {
    fn start(storage: &[&str], extra: &[&str]) -> Server {
        let mut args = vec!["serve", "--listen", "127.0.0.1:0"];
        args.extend_from_slice(storage);
        args.extend_from_slice(extra);
        Server::spawn(gatehouse(&args))
    }

    /// Starts a prepared `serve` command and waits for its address.
    fn spawn(cmd: Command) -> Server {
        Server::spawn_logging(cmd, Stdio::null())
    }

    /// [`Server::spawn`] with the server's log (stderr) going to `log`.
    fn spawn_logging(mut cmd: Command, log: impl Into<Stdio>) -> Server {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("spawn server");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut early = Vec::new();
        loop {
            let Ok(line) = rx.recv_timeout(Duration::from_secs(30)) else {
                let _ = child.kill();
                let _ = child.wait();
                panic!("server did not start");
            };
            if let Some(url) = line.strip_prefix("gatehouse listening on ") {
                return Server {
                    child,
                    url: url.to_string(),
                    early,
                };
            }
            early.push(line);
        }
    }

    /// SIGKILL: no graceful shutdown, like a crash or a power cut.
    fn crash(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn create_key(storage: &[&str], role: &str) -> String {
    create_key_for(storage, role, None)
}

/// A new key of `role`, belonging to `user` if one is named.
fn create_key_for(storage: &[&str], role: &str, user: Option<&str>) -> String {
    let mut args = vec!["keys", "create", "--role", role];
    if let Some(u) = user {
        args.extend(["--user", u]);
    }
    args.extend_from_slice(storage);
    let out = run(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .to_string()
}

fn call(method: &str, url: &str, key: Option<&str>, body: Option<Value>) -> (u16, Value) {
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(90))
        .build()
        .unwrap();
    let mut req = client.request(method.parse().unwrap(), url);
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().expect("request");
    let status = resp.status().as_u16();
    (status, resp.json().unwrap_or(Value::Null))
}

fn deploy_body() -> Value {
    json!({"workflow_name": "GitHub Actions", "task_label": "Production deploy", "tool_name": "deploy_production",
           "subject": "Deploy main to production", "risk_level": "high", "payload": {"sha": "abc123"}})
}

/// Log and token key files shared by every process of one PostgreSQL
/// test, as replicas in production share them. Returns the flags.
fn shared_keys(dir: &Path) -> Vec<String> {
    let mut flags = Vec::new();
    for (flag, name, args) in [
        (
            "--log-key-file",
            "log.key",
            vec!["log", "keygen", "--origin", "gatehouse.test/log"],
        ),
        (
            "--token-key-file",
            "token.pem",
            vec!["log", "keygen", "--token"],
        ),
    ] {
        let path = dir.join(name);
        let mut args = args;
        args.extend(["--out", path.to_str().unwrap()]);
        let out = run(&args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Private keys are written for their owner only.
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{name}");
        // An existing key is never overwritten.
        assert!(!run(&args).status.success(), "{name} written twice");
        flags.push(flag.to_string());
        flags.push(path.to_str().unwrap().to_string());
    }
    flags
}

/// Storage flags for a PostgreSQL test: `schema`'s URL and a log key and
/// token key written to `dir`.
fn postgres_flags(
    schema: &gatehouse_store_postgres::testing::TestSchema,
    dir: &Path,
) -> Vec<String> {
    let mut flags = shared_keys(dir);
    flags.extend(["--database-url".to_string(), schema.url()]);
    flags
}

/// A PostgreSQL schema of the test's own, dropped when the test ends.
fn fresh_schema() -> gatehouse_store_postgres::testing::TestSchema {
    gatehouse_store_postgres::testing::TestSchema::create_blocking()
}

/// Runs `gatehouse log verify` and returns (exit code, stdout).
fn log_verify(storage: &[&str], extra: &[&str]) -> (i32, String) {
    let mut args = vec!["log", "verify"];
    args.extend_from_slice(storage);
    args.extend_from_slice(extra);
    let out = run(&args);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
    )
}

/// Reads `read()` every 100 ms until `done` holds for it (at most 30 s),
/// and returns it; panics with `what` and the last reading otherwise.
fn poll_until<T: std::fmt::Debug>(
    what: &str,
    read: impl Fn() -> T,
    done: impl Fn(&T) -> bool,
) -> T {
    for _ in 0..300 {
        let got = read();
        if done(&got) {
            return got;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting for {what}; last seen: {:#?}", read())
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}
