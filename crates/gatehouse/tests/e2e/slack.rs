//! Slack approvals against a real server. Slack cannot be reached from
//! here, so `[slack] api_base` points at a recorder that answers like the
//! Web API; the server's requests, their payloads and the interaction
//! signatures are Slack's real ones.

use std::sync::{Arc, Mutex};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::reviewing::{person, user};
use super::*;

const SIGNING_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";

/// Every Web API call: (method, Authorization header, JSON body).
type Calls = Arc<Mutex<Vec<(String, String, Value)>>>;

/// A stand-in for Slack's Web API: records every call and answers `ok`.
struct Recorder {
    url: String,
    calls: Calls,
}

impl Recorder {
    fn start() -> Recorder {
        use axum::extract::{Path as AxPath, State};
        let calls: Calls = Arc::default();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = calls.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let app = axum::Router::new()
                    .route(
                        "/api/{method}",
                        axum::routing::post(
                            |State(calls): State<Calls>,
                             AxPath(method): AxPath<String>,
                             headers: axum::http::HeaderMap,
                             axum::Json(body): axum::Json<Value>| async move {
                                let auth = headers
                                    .get("authorization")
                                    .and_then(|v| v.to_str().ok())
                                    .unwrap_or_default()
                                    .to_string();
                                let mut calls = calls.lock().unwrap();
                                calls.push((method.clone(), auth, body.clone()));
                                let answer = match method.as_str() {
                                    "chat.postMessage" => json!({"ok": true, "channel": body["channel"],
                                        "ts": format!("1700000000.{:06}", calls.len())}),
                                    "users.info" => json!({"ok": true, "user": {"id": body["user"],
                                        "profile": {"email": format!("{}@example.com",
                                            body["user"].as_str().unwrap_or_default().to_lowercase())}}}),
                                    _ => json!({"ok": true}),
                                };
                                axum::Json(answer)
                            },
                        ),
                    )
                    .with_state(state);
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                axum::serve(listener, app).await.unwrap();
            });
        });
        Recorder { url, calls }
    }

    fn calls(&self, method: &str) -> Vec<Value> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|(m, _, _)| m == method)
            .map(|(_, auth, body)| {
                assert_eq!(auth, "Bearer xoxb-test-token");
                body.clone()
            })
            .collect()
    }

    fn wait_for(&self, what: &str, done: impl Fn(&Recorder) -> bool) {
        poll_until(what, || self.calls.lock().unwrap().clone(), |_| done(self));
    }
}

fn sign(timestamp: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SIGNING_SECRET.as_bytes()).unwrap();
    mac.update(format!("v0:{timestamp}:{body}").as_bytes());
    format!("v0={}", hex_of(&mac.finalize().into_bytes()))
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Posts an interaction payload the way Slack does (form-encoded
/// `payload`, signed), with the given timestamp and signature override.
fn interact(server: &Server, payload: &Value, ts: i64, signature: Option<&str>) -> (u16, String) {
    let body: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("payload", &payload.to_string())
        .finish();
    let sig = signature
        .map(str::to_string)
        .unwrap_or_else(|| sign(ts, &body));
    let resp = reqwest::blocking::Client::new()
        .post(format!("{}/integrations/slack/interactions", server.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-slack-request-timestamp", ts.to_string())
        .header("x-slack-signature", sig)
        .body(body)
        .send()
        .unwrap();
    (resp.status().as_u16(), resp.text().unwrap())
}

fn click(action: &str, decision: &str, slack_user: &str) -> Value {
    json!({"type": "block_actions", "user": {"id": slack_user}, "trigger_id": "trig.1",
           "channel": {"id": "CFIN"}, "message": {"ts": "1700000000.000001"},
           "actions": [{"action_id": action, "value": decision, "block_id": "gatehouse"}]})
}

/// The CSRF token of the first form on a console page.
pub(crate) fn csrf_of(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a CSRF field") + 19;
    html[at..at + html[at..].find('"').unwrap()].to_string()
}

fn cookie_of(resp: &reqwest::blocking::Response, name: &str) -> String {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with(&format!("{name}=")))
        .map(|c| c.split(';').next().unwrap().to_string())
        .unwrap_or_else(|| panic!("no {name} cookie"))
}

/// Signs in to the console with its login form (cookies and CSRF tokens
/// by hand); returns a client that does not follow redirects and the
/// session cookie.
pub(crate) fn console_sign_in(server: &Server, name: &str) -> (reqwest::blocking::Client, String) {
    let client = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = client
        .get(format!("{}/console/login", server.url))
        .send()
        .unwrap();
    let login_cookie = cookie_of(&page, "gh_login");
    let csrf = csrf_of(&page.text().unwrap());
    let signed_in = client
        .post(format!("{}/console/login", server.url))
        .header("cookie", login_cookie)
        .form(&[
            ("username", name),
            ("password", "a long enough password"),
            ("csrf", &csrf),
        ])
        .send()
        .unwrap();
    let session = cookie_of(&signed_in, "gh_session");
    (client, session)
}

/// Approves through the decision page's form in the console.
fn approve_in_console(server: &Server, name: &str, id: &str) {
    let (client, session) = console_sign_in(server, name);
    let page = client
        .get(format!("{}/console/decisions/{id}", server.url))
        .header("cookie", &session)
        .send()
        .unwrap()
        .text()
        .unwrap();
    let csrf = csrf_of(&page);
    let reviewed = client
        .post(format!("{}/console/decisions/{id}/review", server.url))
        .header("cookie", &session)
        .form(&[("csrf", csrf.as_str()), ("decision", "approve")])
        .send()
        .unwrap();
    assert!(
        reviewed.status().is_redirection() || reviewed.status().is_success(),
        "{}",
        reviewed.status()
    );
}

fn slack_flow(storage: &[&str], dir: &Path) {
    let slack = Recorder::start();
    let config = dir.join("gatehouse.toml");
    std::fs::write(
        &config,
        format!(
            r#"
public_url = "https://gate.example.com"

[outbox]
backoff = "1s"

[slack]
bot_token = "xoxb-test-token"
signing_secret = "{SIGNING_SECRET}"
api_base = "{}/api"

[groups.finance]
slack_channel = "CFIN"
"#,
            slack.url
        ),
    )
    .unwrap();
    user(storage, "ana", &["finance"]);
    user(storage, "bo", &["finance"]);
    user(storage, "lee", &["legal"]);
    // ana is linked by her Slack id; cy only has the address Slack's
    // users.info reports for U0CY (the recorder says u0cy@example.com).
    let mut link = vec!["users", "link-slack", "ana", "U0ANA"];
    link.extend_from_slice(storage);
    assert!(run(&link).status.success());
    person(
        storage,
        "cy",
        &["finance"],
        "reviewer",
        Some("u0cy@example.com"),
    );
    let agent = create_key(storage, "agent");
    let policies = examples("review-routing");
    let server = Server::start(
        storage,
        &[
            "--policies",
            policies.to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
        ],
    );
    let ask = |amount: i64| {
        let (status, out) = call(
            "POST",
            &format!("{}/api/agent/tasks/t/requests", server.url),
            Some(&agent),
            Some(
                json!({"workflow_name": "Customer Support", "tool_name": "issue_refund", "subject": "cus_7",
                        "risk_level": "high", "payload": {"amount": amount, "currency": "usd"}}),
            ),
        );
        assert_eq!(status, 201, "{out}");
        out["id"].as_str().unwrap().to_string()
    };
    let id = ask(50_000);
    slack.wait_for("the message", |s| !s.calls("chat.postMessage").is_empty());
    let posted = &slack.calls("chat.postMessage")[0];
    assert_eq!(posted["channel"], "CFIN");
    let blocks = posted["blocks"].to_string();
    for expected in [
        "issue_refund",
        "cus_7",
        "Customer Support",
        "high",
        "0/2 from finance",
        "amount",
        "50000",
        "gatehouse_approve",
        "gatehouse_reject",
        "Open in console",
        "Refunds over 100.00",
    ] {
        assert!(
            blocks.contains(expected),
            "{expected} missing from {blocks}"
        );
    }

    // Bad and stale signatures are refused before anything else.
    let (status, body) = interact(
        &server,
        &click("gatehouse_approve", &id, "U0ANA"),
        now(),
        Some("v0=00"),
    );
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("\"unauthorized\""), "{body}");
    let (status, _) = interact(
        &server,
        &click("gatehouse_approve", &id, "U0ANA"),
        now() - 400,
        None,
    );
    assert_eq!(status, 401);

    // Someone unknown, and someone not in finance, are refused with an
    // explanation only they see; nothing is recorded.
    let (status, _) = interact(
        &server,
        &click("gatehouse_approve", &id, "U0NOBODY"),
        now(),
        None,
    );
    assert_eq!(status, 200);
    let mut link_lee = vec!["users", "link-slack", "lee", "U0LEE"];
    link_lee.extend_from_slice(storage);
    assert!(run(&link_lee).status.success());
    let (status, _) = interact(
        &server,
        &click("gatehouse_approve", &id, "U0LEE"),
        now(),
        None,
    );
    assert_eq!(status, 200);
    slack.wait_for("two explanations", |s| {
        s.calls("chat.postEphemeral").len() == 2
    });
    let told = slack.calls("chat.postEphemeral");
    assert_eq!(told[0]["user"], "U0NOBODY");
    assert!(
        told[0]["text"].as_str().unwrap().contains("not linked"),
        "{}",
        told[0]
    );
    assert_eq!(told[1]["user"], "U0LEE");
    assert!(
        told[1]["text"].as_str().unwrap().contains("not recorded"),
        "{}",
        told[1]
    );

    // ana approves in Slack, durably before the answer.
    let (status, _) = interact(
        &server,
        &click("gatehouse_approve", &id, "U0ANA"),
        now(),
        None,
    );
    assert_eq!(status, 200);
    let (_, d) = call(
        "GET",
        &format!("{}/api/gate/requests/{id}", server.url),
        Some(&agent),
        None,
    );
    assert_eq!(d["status"], "pending_review", "{d}");
    assert_eq!(
        d["review_progress"]["requirements"][0]["approved_by"],
        json!(["ana"]),
        "{d}"
    );
    slack.wait_for("the message updated with 1/2", |s| {
        s.calls("chat.update")
            .iter()
            .any(|u| u["blocks"].to_string().contains("1/2 from finance"))
    });
    // The second approval comes from the console: quorum across both.
    approve_in_console(&server, "bo", &id);
    slack.wait_for("the message updated as approved", |s| {
        s.calls("chat.update").iter().any(|u| {
            let b = u["blocks"].to_string();
            b.contains("Approved")
                && b.contains("ana")
                && b.contains("bo")
                && !b.contains("gatehouse_approve")
        })
    });
    let update = slack.calls("chat.update").pop().unwrap();
    assert_eq!(update["channel"], "CFIN");
    assert_eq!(update["ts"], posted_ts(&slack));

    // Reject opens a modal; the reason submitted there rejects.
    let id2 = ask(60_000);
    slack.wait_for("the second message", |s| {
        s.calls("chat.postMessage").len() == 2
    });
    let (status, _) = interact(
        &server,
        &click("gatehouse_reject", &id2, "U0CY"),
        now(),
        None,
    );
    assert_eq!(status, 200);
    slack.wait_for("the modal", |s| !s.calls("views.open").is_empty());
    let view = slack.calls("views.open")[0]["view"].clone();
    assert_eq!(view["callback_id"], "gatehouse_reject");
    let mut submission = json!({"type": "view_submission", "user": {"id": "U0CY"},
        "view": {"callback_id": "gatehouse_reject", "private_metadata": view["private_metadata"],
                 "state": {"values": {"reason": {"reason": {"type": "plain_text_input", "value": ""}}}}}});
    let (status, body) = interact(&server, &submission, now(), None);
    assert_eq!(status, 200);
    assert!(
        body.contains("\"errors\""),
        "an empty reason is refused in the modal: {body}"
    );
    submission["view"]["state"]["values"]["reason"]["reason"]["value"] =
        json!("amount looks wrong");
    let (status, body) = interact(&server, &submission, now(), None);
    assert_eq!((status, body.as_str()), (200, ""));
    let (_, d2) = call(
        "GET",
        &format!("{}/api/gate/requests/{id2}", server.url),
        Some(&agent),
        None,
    );
    assert_eq!(d2["status"], "rejected", "{d2}");
    assert_eq!(
        d2["review_progress"]["reviews"][0]["reviewed_by"], "cy",
        "{d2}"
    );
    slack.wait_for("the second message updated as rejected", |s| {
        s.calls("chat.update").iter().any(|u| {
            let b = u["blocks"].to_string();
            b.contains("Rejected") && b.contains("cy") && b.contains("amount looks wrong")
        })
    });
}

fn posted_ts(slack: &Recorder) -> String {
    // The recorder numbers ts by call count: the first message's.
    let calls = slack.calls.lock().unwrap();
    let n = calls
        .iter()
        .position(|(m, _, _)| m == "chat.postMessage")
        .unwrap()
        + 1;
    format!("1700000000.{n:06}")
}

#[test]
fn slack_approvals_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    slack_flow(&["--data", data.to_str().unwrap()], dir.path());
}

#[test]
fn slack_approvals_on_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let schema = fresh_schema();
    let flags = postgres_flags(&schema, dir.path());
    let storage: Vec<&str> = flags.iter().map(String::as_str).collect();
    slack_flow(&storage, dir.path());
}
