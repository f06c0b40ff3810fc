//! Memory stays bounded under many open long-polls and many concurrent
//! packet reads, and returns towards its idle size afterwards.
//!
//! Measured on the release binary, the one users run: a debug build's
//! futures are several times larger (no local shares a slot), so its
//! memory says little about the product's. The test builds it.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::*;

/// The release binary, built now (a no-op when it is current).
fn release_binary() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "build",
            "--release",
            "-p",
            "gatehouse",
            "--bin",
            "gatehouse",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("run cargo build --release");
    assert!(status.success(), "cargo build --release failed");
    // The release directory beside the debug one this test was built in.
    let debug = PathBuf::from(BIN);
    let target = debug.parent().and_then(Path::parent).expect("target dir");
    let path = target.join("release").join("gatehouse");
    assert!(path.exists(), "{} was not built", path.display());
    path
}

/// A `gatehouse serve` of the release binary with no GATEHOUSE_* settings.
fn release_server(args: &[&str]) -> Server {
    let mut cmd = gatehouse_at(&release_binary(), &["serve", "--listen", "127.0.0.1:0"]);
    cmd.args(args);
    Server::spawn(cmd)
}

/// The server's resident memory, in MiB.
fn rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/PID/status");
    kib / 1024
}

/// The highest resident memory seen between `start` and `stop`, sampled
/// every 20 ms on a thread of its own.
struct Peak {
    peak: Arc<AtomicU64>,
    sampling: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl Peak {
    fn start(pid: u32, floor: u64) -> Peak {
        let peak = Arc::new(AtomicU64::new(floor));
        let sampling = Arc::new(AtomicBool::new(true));
        let (p, s) = (peak.clone(), sampling.clone());
        let thread = std::thread::spawn(move || {
            while s.load(Ordering::SeqCst) {
                p.fetch_max(rss_mib(pid), Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        Peak {
            peak,
            sampling,
            thread,
        }
    }

    fn stop(self) -> u64 {
        self.sampling.store(false, Ordering::SeqCst);
        self.thread.join().unwrap();
        self.peak.load(Ordering::SeqCst)
    }
}

/// Sends `count` copies of a GET without reading the answers.
fn send_gets(addr: &str, path: &str, key: &str, count: usize) -> Vec<TcpStream> {
    (0..count)
        .map(|_| {
            let mut s = TcpStream::connect(addr).expect("connect");
            write!(
                s,
                "GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n\r\n"
            )
            .unwrap();
            s
        })
        .collect()
}

/// Reads the status line of the answer on each stream (the body is not
/// needed; the connection is closed afterwards).
fn statuses(streams: &mut [TcpStream]) -> Vec<u16> {
    streams
        .iter_mut()
        .map(|s| {
            s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
            let mut head = [0u8; 12];
            s.read_exact(&mut head).expect("an answer");
            String::from_utf8_lossy(&head[9..12]).parse().unwrap()
        })
        .collect()
}

#[test]
fn memory_stays_bounded_under_3000_waiters_then_4000_packet_reads() {
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let storage = ["--data", data];
    let key = create_key(&storage, "agent");
    let server = release_server(&["--data", data, "--rate-limit", "0"]);
    let pid = server.child.id();
    let addr = server.url.trim_start_matches("http://").to_string();

    let (status, pending) = call(
        "POST",
        &format!("{}/api/agent/tasks/t/requests", server.url),
        Some(&key),
        Some(deploy_body()),
    );
    assert_eq!(status, 201, "{pending}");
    let pending = pending["id"].as_str().unwrap().to_string();
    let mut allowed = Vec::new();
    for i in 0..20 {
        let (status, d) = call(
            "POST",
            &format!("{}/api/decide", server.url),
            Some(&key),
            Some(
                json!({"question": "Apply?", "context": {"workflow": "billing",
                "requested_action": "apply_discount", "risk": "low", "discount_percent": i}}),
            ),
        );
        assert_eq!(status, 201, "{d}");
        allowed.push(d["decision_id"].as_str().unwrap().to_string());
    }
    // Warm up: every path once, so idle includes what a served request
    // leaves behind (caches, pools, allocator arenas).
    let mut warm = send_gets(
        &addr,
        &format!("/api/decision/{}/packet", allowed[0]),
        &key,
        50,
    );
    assert!(statuses(&mut warm).iter().all(|s| *s == 200));
    drop(warm);
    std::thread::sleep(Duration::from_secs(2));
    let idle = rss_mib(pid);

    // 3,000 long-polls at once: waits beyond the cap (2,048 by default)
    // are answered at once with the current state; the rest stay open.
    let sampler = Peak::start(pid, idle);
    let mut waiters = send_gets(
        &addr,
        &format!("/api/gate/requests/{pending}?wait=60"),
        &key,
        3000,
    );
    std::thread::sleep(Duration::from_secs(3));
    for w in &mut waiters {
        w.set_nonblocking(true).unwrap();
    }
    let mut answered_at_once = 0;
    for w in &mut waiters {
        if w.read(&mut [0u8; 1]).is_ok() {
            answered_at_once += 1;
        }
    }
    assert_eq!(answered_at_once, 3000 - 2048, "waits beyond the cap");
    let waiting_peak = sampler.stop();
    drop(waiters);

    // 4,000 packet reads at once; they queue for an evidence slot.
    let sampler = Peak::start(pid, idle);
    let mut reads = Vec::with_capacity(4000);
    for i in 0..4000 {
        let id = &allowed[i % allowed.len()];
        reads.extend(send_gets(
            &addr,
            &format!("/api/decision/{id}/packet"),
            &key,
            1,
        ));
    }
    let packet_statuses = statuses(&mut reads);
    assert!(
        packet_statuses.iter().all(|s| *s == 200),
        "packet reads failed: {:?}",
        packet_statuses
            .iter()
            .filter(|s| **s != 200)
            .take(5)
            .collect::<Vec<_>>()
    );
    let reading_peak = sampler.stop();
    println!("idle {idle} MiB, peak with waiters {waiting_peak} MiB, with packet reads {reading_peak} MiB");
    // The claim is that a load adds a bounded amount, so the bounds are on
    // what each load adds to the idle size. The idle size itself moves
    // with what the build loads at start and with how busy the machine is
    // during the warm-up (28 to 44 MiB seen), and an absolute bound failed
    // on that alone. Measured additions: about 66 to 70 MiB for the
    // waiters and 94 to 106 MiB for the packet reads.
    assert!(idle < 64, "idle RSS {idle} MiB");
    let (waiting_added, reading_added) = (waiting_peak - idle, reading_peak - idle);
    assert!(
        waiting_added < 100,
        "3,000 waiters added {waiting_added} MiB (idle {idle}, peak {waiting_peak} MiB)"
    );
    assert!(
        reading_added < 130,
        "4,000 packet reads added {reading_added} MiB (idle {idle}, peak {reading_peak} MiB)"
    );

    drop(reads);
    // Freed memory goes back to the system as the allocator next runs
    // (mimalloc purges freed pages a second after a free, and whole arena
    // ranges ten seconds after, each when next called): ordinary traffic.
    for _ in 0..15 {
        std::thread::sleep(Duration::from_millis(1100));
        for _ in 0..20 {
            call("GET", &format!("{}/healthz", server.url), None, None);
        }
    }
    let after = rss_mib(pid);
    println!("after {after} MiB");
    // At least two thirds of what the larger load added is given back.
    let kept = after.saturating_sub(idle);
    let added = waiting_added.max(reading_added);
    assert!(
        kept * 3 <= added,
        "RSS {after} MiB fifteen seconds after the load kept {kept} of the {added} MiB it added (idle {idle} MiB)"
    );
    let (status, _) = call("GET", &format!("{}/healthz", server.url), None, None);
    assert_eq!(status, 200);
}
