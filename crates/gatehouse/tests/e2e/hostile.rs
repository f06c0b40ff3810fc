//! Hostile clients: thousands of sockets trickling headers, idle
//! keep-alive connections, bodies that never finish, more connections than
//! the server accepts, and text a database cannot store.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::*;

fn host_port(server: &Server) -> String {
    server.url.trim_start_matches("http://").to_string()
}

/// Whether the server has closed `stream`: a read sees end of file or a
/// reset (anything it may have sent first, such as a 408, is read past).
fn closed_by_server(stream: &mut TcpStream) -> bool {
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return false
            }
            Err(_) => return true,
        }
    }
}

/// Reads one HTTP/1.1 answer (headers and a `content-length` body).
fn read_answer(stream: &mut TcpStream) -> (u16, String, Value) {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).expect("read an answer");
        assert!(
            n > 0,
            "closed before answering: {:?}",
            String::from_utf8_lossy(&raw)
        );
        raw.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&raw).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let head = text[..end].to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().unwrap());
            if raw.len() >= end + 4 + length {
                let status = head[9..12].parse().unwrap();
                let body = serde_json::from_slice(&raw[end + 4..end + 4 + length]).unwrap();
                return (status, head, body);
            }
        }
    }
}

#[test]
fn thousands_of_slow_header_connections_neither_block_requests_nor_stay_open() {
    const HEADER_TIMEOUT: Duration = Duration::from_secs(8);
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let storage = ["--data", data];
    let key = create_key(&storage, "agent");
    let server = Server::start(&storage, &["--header-timeout", "8s"]);
    let addr = host_port(&server);
    let whoami = format!("{}/api/whoami", server.url);

    // Each slow client starts a request and then sends one more header
    // line now and then, never finishing.
    let mut slow: Vec<TcpStream> = (0..3000)
        .map(|_| {
            let mut s = TcpStream::connect(&addr).expect("open a slow connection");
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
                .unwrap();
            s
        })
        .collect();
    // Connections are accepted in order: once this one is answered, the
    // server holds all 3,000 (a debug build takes a few seconds for them).
    let (status, _) = call("GET", &whoami, Some(&key), None);
    assert_eq!(status, 200);
    let all_held = Instant::now();
    let mut answered = 0;
    while all_held.elapsed() < HEADER_TIMEOUT / 2 {
        for s in &mut slow {
            // A socket the server closed already may refuse the write.
            let _ = s.write_all(b"X-Slow: 1\r\n");
        }
        let asked = Instant::now();
        let (status, body) = call("GET", &whoami, Some(&key), None);
        assert_eq!(status, 200, "{body}");
        assert!(
            asked.elapsed() < Duration::from_secs(1),
            "a normal request took {:?} beside 3,000 slow connections",
            asked.elapsed()
        );
        answered += 1;
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(answered >= 5, "only {answered} normal requests answered");
    // However busy they keep, the slow connections had HEADER_TIMEOUT for
    // their headers; each is closed by the server once it has passed.
    std::thread::sleep(HEADER_TIMEOUT.saturating_sub(all_held.elapsed()) + Duration::from_secs(2));
    let mut still_open = 0;
    for s in &mut slow {
        if !closed_by_server(s) {
            still_open += 1;
        }
    }
    assert_eq!(
        still_open, 0,
        "slow connections still open after the header timeout"
    );
    let (status, _) = call("GET", &whoami, Some(&key), None);
    assert_eq!(status, 200);
}

#[test]
fn idle_keep_alive_connections_are_closed_after_the_header_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        &["--data", dir.path().to_str().unwrap()],
        &["--header-timeout", "2s"],
    );
    let mut s = TcpStream::connect(host_port(&server)).unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let (status, _, _) = read_answer(&mut s);
    assert_eq!(status, 200);
    assert!(!closed_by_server(&mut s), "closed right after answering");
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        closed_by_server(&mut s),
        "an idle keep-alive connection stayed open"
    );
}

#[test]
fn a_body_that_does_not_arrive_in_time_is_answered_408_and_closed() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let key = create_key(&["--data", data], "agent");
    let server = Server::start(&["--data", data], &["--body-timeout", "2s"]);
    let mut s = TcpStream::connect(host_port(&server)).unwrap();
    let started = Instant::now();
    write!(
        s,
        "POST /api/decide HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"question\""
    )
    .unwrap();
    let (status, head, body) = read_answer(&mut s);
    assert_eq!(status, 408, "{body}");
    assert_eq!(body["error"]["code"], "request_timeout");
    assert!(body["error"]["request_id"].is_string(), "{body}");
    assert!(head.contains("connection: close"), "{head}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(closed_by_server(&mut s));
}

#[test]
fn connections_beyond_the_maximum_are_answered_503_in_the_error_shape() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let server = Server::start(&["--data", data], &["--max-connections", "20"]);
    let addr = host_port(&server);
    let held: Vec<TcpStream> = (0..20)
        .map(|_| TcpStream::connect(&addr).unwrap())
        .collect();
    // The accept loop takes the held connections in order; give it a moment.
    std::thread::sleep(Duration::from_millis(300));
    let mut extra = TcpStream::connect(&addr).unwrap();
    extra
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let (status, head, body) = read_answer(&mut extra);
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "too_many_connections");
    assert!(body["error"]["request_id"].is_string(), "{body}");
    assert!(head.contains("retry-after: 1"), "{head}");
    drop(held);
    std::thread::sleep(Duration::from_millis(300));
    let (status, _) = call("GET", &format!("{}/healthz", server.url), None, None);
    assert_eq!(status, 200, "connections freed are accepted again");
}

/// The finding: PostgreSQL answered 500 to NUL in ids, query parameters,
/// idempotency keys, key names and event fields. Each is a 400 before the
/// store, and the literal text `\u0000` (a backslash and five characters)
/// is stored as sent.
#[test]
fn nul_characters_are_400_on_postgres_and_stored_data_is_untouched() {
    let schema = fresh_schema();
    let keys_dir = tempfile::tempdir().unwrap();
    let flags = postgres_flags(&schema, keys_dir.path());
    let storage: Vec<&str> = flags.iter().map(String::as_str).collect();
    let agent = create_key(&storage, "agent");
    let admin = create_key(&storage, "admin");
    let server = Server::start(&storage, &[]);
    let url = &server.url;
    let request = |body: Value| {
        call(
            "POST",
            &format!("{url}/api/agent/tasks/t/requests"),
            Some(&agent),
            Some(body),
        )
    };
    let mut in_id = deploy_body();
    in_id["idempotency_key"] = json!("k\u{0}");
    let mut in_payload = deploy_body();
    in_payload["payload"]["deep"] = json!([{"x": "a\u{0}b"}]);
    let mut in_key = deploy_body();
    in_key["payload"] = json!({"k\u{0}": 1});
    for body in [in_id, in_payload, in_key] {
        let (status, answer) = request(body);
        assert_eq!(status, 400, "{answer}");
        assert_eq!(answer["error"]["code"], "bad_request");
    }
    let (status, answer) = call(
        "POST",
        &format!("{url}/api/agent/tasks/t/events"),
        Some(&agent),
        Some(json!({"kind": "note", "message": "a\u{0}"})),
    );
    assert_eq!(status, 400, "{answer}");
    let (status, answer) = call(
        "POST",
        &format!("{url}/api/keys"),
        Some(&admin),
        Some(json!({"role": "agent", "name": "a\u{0}"})),
    );
    assert_eq!(status, 400, "{answer}");
    for path in [
        "/api/gate/requests/dec_%00",
        "/api/decisions?task_id=t%00",
        "/api/agent/tasks/t%00/events",
    ] {
        let (status, answer) = call("GET", &format!("{url}{path}"), Some(&admin), None);
        assert_eq!(status, 400, "{path}: {answer}");
    }
    let mut literal = deploy_body();
    literal["payload"]["note"] = json!("\\u0000");
    let (status, stored) = request(literal);
    assert_eq!(status, 201, "{stored}");
    let id = stored["id"].as_str().unwrap();
    let (status, read) = call(
        "GET",
        &format!("{url}/api/gate/requests/{id}"),
        Some(&agent),
        None,
    );
    assert_eq!(status, 200);
    assert_eq!(read["payload"]["note"], "\\u0000");
}
