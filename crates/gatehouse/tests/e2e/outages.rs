//! Storage outages: a full disk under SQLite and PostgreSQL becoming
//! unreachable. Requests are answered 503 `unavailable` with Retry-After,
//! never allowed and never 500; `/readyz` says not ready; the server
//! recovers by itself; and the failures are logged once per interval.

use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::*;

/// A request that is stored: a low-risk decision.
fn decide(url: &str, key: &str) -> (u16, Value, Option<String>) {
    let resp = reqwest::blocking::Client::new()
        .post(format!("{url}/api/decide"))
        .bearer_auth(key)
        .timeout(Duration::from_secs(30))
        .json(
            &json!({"question": "Apply?", "context": {"workflow": "billing",
               "requested_action": "apply_discount", "risk": "low", "discount_percent": 10}}),
        )
        .send()
        .expect("an answer, not a dropped connection");
    let status = resp.status().as_u16();
    let retry = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    (status, resp.json().unwrap_or(Value::Null), retry)
}

fn ready(url: &str) -> u16 {
    call("GET", &format!("{url}/readyz"), None, None).0
}

/// Polls `/readyz` until it answers `status` (the server recovers, or
/// notices, without a restart).
fn until_ready_is(url: &str, status: u16, within: Duration) {
    let started = Instant::now();
    while ready(url) != status {
        assert!(
            started.elapsed() < within,
            "/readyz did not become {status}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// An outage answer: 503, the stable code, a delay to retry after.
fn assert_outage(status: u16, body: &Value, retry: Option<&str>) {
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "unavailable", "{body}");
    assert!(body["error"]["request_id"].is_string(), "{body}");
    assert_eq!(retry, Some("5"));
}

/// A small tmpfs of the test's own, unmounted when dropped. Mounting needs
/// root, which the test machines and CI have; without it the test fails.
struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("run mount");
        assert!(
            status.success(),
            "cannot mount a tmpfs (the test needs root)"
        );
        Tmpfs(dir)
    }

    fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.0.path()).status();
    }
}

/// Fills the file system holding `dir` until a write fails.
fn fill(dir: &Path) -> PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    let chunk = vec![7u8; 64 * 1024];
    while f.write_all(&chunk).and_then(|()| f.sync_all()).is_ok() {}
    path
}

#[test]
fn a_full_disk_makes_sqlite_unready_and_writes_503_then_it_recovers() {
    let disk = Tmpfs::mount("24m");
    let data = disk.path().join("data");
    let data = data.to_str().unwrap();
    let storage = ["--data", data];
    let key = create_key(&storage, "agent");
    let server = Server::start(&storage, &[]);
    let (status, first, _) = decide(&server.url, &key);
    assert_eq!(status, 201, "{first}");
    assert_eq!(ready(&server.url), 200);

    let filler = fill(disk.path());
    let (status, body) = call("GET", &format!("{}/readyz", server.url), None, None);
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "unavailable");

    // Writes go on while SQLite still has room in its write-ahead log;
    // once it has none, every one is an outage answer, never a 500.
    let mut stored = vec![first["decision_id"].as_str().unwrap().to_string()];
    let mut refused = 0;
    for _ in 0..3000 {
        let (status, body, retry) = decide(&server.url, &key);
        if status == 201 {
            stored.push(body["decision_id"].as_str().unwrap().to_string());
            continue;
        }
        assert_outage(status, &body, retry.as_deref());
        refused += 1;
        if refused == 20 {
            break;
        }
    }
    assert_eq!(refused, 20, "a full disk never refused a write");

    std::fs::remove_file(filler).unwrap();
    until_ready_is(&server.url, 200, Duration::from_secs(10));
    let (status, body, _) = decide(&server.url, &key);
    assert_eq!(status, 201, "{body}");
    stored.push(body["decision_id"].as_str().unwrap().to_string());
    // Nothing that was answered "stored" was lost.
    for id in &stored {
        let (status, _) = call(
            "GET",
            &format!("{}/api/decision/{id}", server.url),
            Some(&key),
            None,
        );
        assert_eq!(status, 200, "{id}");
    }
    drop(server);
    let (code, out) = log_verify(&storage, &[]);
    assert_eq!(code, 0, "{out}");
}

/// A TCP relay to PostgreSQL that the test can cut, as a network outage
/// or a database restart would, and restore.
struct Relay {
    addr: String,
    down: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl Relay {
    fn start(upstream: String) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let down = Arc::new(AtomicBool::new(false));
        let open = Arc::new(Mutex::new(Vec::new()));
        let (d, o) = (down.clone(), open.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().map_while(Result::ok) {
                if d.load(Ordering::SeqCst) {
                    continue; // dropped: the connection is refused
                }
                let Ok(server) = TcpStream::connect(&upstream) else {
                    continue;
                };
                let mut list = o.lock().unwrap();
                list.push(client.try_clone().unwrap());
                list.push(server.try_clone().unwrap());
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(Shutdown::Both);
                    });
                }
            }
        });
        Relay { addr, down, open }
    }

    fn cut(&self) {
        self.down.store(true, Ordering::SeqCst);
        for s in self.open.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    fn restore(&self) {
        self.down.store(false, Ordering::SeqCst);
    }
}

/// `url` with its host and port replaced by `addr`.
fn through(url: &str, addr: &str) -> (String, String) {
    let start = url
        .find('@')
        .map(|i| i + 1)
        .unwrap_or(url.find("://").unwrap() + 3);
    let end = start + url[start..].find(['/', '?']).unwrap_or(url.len() - start);
    let upstream = url[start..end].to_string();
    let upstream = if upstream.contains(':') {
        upstream
    } else {
        format!("{upstream}:5432")
    };
    (format!("{}{addr}{}", &url[..start], &url[end..]), upstream)
}

#[test]
fn postgres_unreachable_answers_503_and_logs_once_then_recovers() {
    let schema = fresh_schema();
    let direct = schema.url();
    let keys_dir = tempfile::tempdir().unwrap();
    let flags = postgres_flags(&schema, keys_dir.path());
    let storage: Vec<&str> = flags.iter().map(String::as_str).collect();
    let key = create_key(&storage, "agent");

    let (relayed, upstream) = through(&direct, "RELAY");
    let relay = Relay::start(upstream);
    let relayed = relayed.replace("RELAY", &relay.addr);
    let mut serve_flags: Vec<&str> = storage.clone();
    let pos = serve_flags.iter().position(|f| *f == direct).unwrap();
    serve_flags[pos] = &relayed;
    let log_path = keys_dir.path().join("server.log");
    let mut args = vec!["serve", "--listen", "127.0.0.1:0"];
    args.extend_from_slice(&serve_flags);
    let server = Server::spawn_logging(gatehouse(&args), std::fs::File::create(&log_path).unwrap());
    let (status, stored, _) = decide(&server.url, &key);
    assert_eq!(status, 201, "{stored}");
    let id = stored["decision_id"].as_str().unwrap();

    relay.cut();
    for _ in 0..30 {
        let (status, body, retry) = decide(&server.url, &key);
        assert_outage(status, &body, retry.as_deref());
    }
    let (status, body) = call(
        "GET",
        &format!("{}/api/decision/{id}", server.url),
        Some(&key),
        None,
    );
    assert_eq!(status, 503, "{body}");
    assert_eq!(ready(&server.url), 503);
    let log = std::fs::read_to_string(&log_path).unwrap();
    let lines = log
        .lines()
        .filter(|l| l.contains("storage unavailable"))
        .count();
    assert!(
        (1..=3).contains(&lines),
        "30 identical failures logged {lines} times:\n{log}"
    );

    relay.restore();
    until_ready_is(&server.url, 200, Duration::from_secs(20));
    let (status, body, _) = decide(&server.url, &key);
    assert_eq!(status, 201, "{body}");
    let (status, _) = call(
        "GET",
        &format!("{}/api/decision/{id}", server.url),
        Some(&key),
        None,
    );
    assert_eq!(status, 200);
}
