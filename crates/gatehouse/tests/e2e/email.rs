//! Email against a real SMTP server on loopback (aiosmtpd, from PyPI):
//! reviewers get a summary and a one-time sign-in link that a GET does not
//! use up, the escalation group gets the escalation and the expiry.

use std::io::BufRead;
use std::path::PathBuf;

use super::notifications::python;
use super::reviewing::person;
use super::*;

/// smtp_sink.py: each message lands in `dir` as NNNN.json.
struct Sink {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Sink {
    fn start(dir: &Path) -> Sink {
        let dir = dir.join("mail");
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/py/smtp_sink.py");
        let mut child = Command::new(python())
            .arg(script)
            .args(["--dir", dir.to_str().unwrap()])
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the SMTP server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .rsplit(':')
            .next()
            .unwrap()
            .parse()
            .unwrap_or_else(|_| panic!("sink said {line:?}"));
        Sink { child, port, dir }
    }

    fn mails(&self) -> Vec<Value> {
        let mut names: Vec<_> = std::fs::read_dir(&self.dir)
            .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default();
        names.retain(|p: &PathBuf| p.extension().is_some_and(|e| e == "json"));
        names.sort();
        names
            .iter()
            .map(|p| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap())
            .collect()
    }

    fn wait_for(&self, what: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        poll_until(what, || self.mails(), |got| done(got))
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn to(mail: &Value) -> String {
    mail["rcpt_tos"][0].as_str().unwrap().to_string()
}

/// The raw message with quoted-printable soft line breaks undone.
fn text_of(mail: &Value) -> String {
    mail["data"]
        .as_str()
        .unwrap()
        .replace("=\r\n", "")
        .replace("=3D", "=")
}

fn email_flow(storage: &[&str], dir: &Path) {
    let sink = Sink::start(dir);
    let policies = dir.join("policies");
    std::fs::create_dir(&policies).unwrap();
    std::fs::copy(
        examples("review-routing").join("schema.cedarschema"),
        policies.join("schema.cedarschema"),
    )
    .unwrap();
    std::fs::write(
        policies.join("policies.cedar"),
        r#"@id("allow") permit(principal, action, resource);
@id("deploy") @tier("review") @reviewers("finance") @escalate_after("2s") @escalate_to("leads") @review_timeout("5s")
@reason("Deploys need finance")
forbid(principal, action == Action::"deploy_production", resource);"#,
    )
    .unwrap();
    let config = dir.join("gatehouse.toml");
    std::fs::write(
        &config,
        format!(
            r#"
public_url = "https://gate.example.com"

[outbox]
backoff = "1s"

[smtp]
url = "smtp://127.0.0.1:{}"
from = "Gatehouse <gatehouse@example.com>"
link_ttl = "1h"

[groups.leads]
emails = ["leads@example.com"]
"#,
            sink.port
        ),
    )
    .unwrap();
    person(
        storage,
        "ana",
        &["finance"],
        "reviewer",
        Some("ana@example.com"),
    );
    person(
        storage,
        "bo",
        &["finance"],
        "reviewer",
        Some("bo@example.com"),
    );
    person(
        storage,
        "lee",
        &["legal"],
        "reviewer",
        Some("lee@example.com"),
    );
    let agent = create_key(storage, "agent");
    let server = Server::start(
        storage,
        &[
            "--policies",
            policies.to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
        ],
    );
    let (status, created) = call(
        "POST",
        &format!("{}/api/agent/tasks/t/requests", server.url),
        Some(&agent),
        Some(deploy_body()),
    );
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_string();

    // The eligible reviewers, and only they, get a summary and a link.
    let mails = sink.wait_for("two review mails", |m| m.len() >= 2);
    let mut rcpts: Vec<String> = mails[..2].iter().map(to).collect();
    rcpts.sort();
    assert_eq!(rcpts, ["ana@example.com", "bo@example.com"]);
    let ana = mails.iter().find(|m| to(m) == "ana@example.com").unwrap();
    let text = text_of(ana);
    for expected in [
        "Subject: Approval needed: deploy_production",
        "From: Gatehouse <gatehouse@example.com>",
        "text/plain",
        "text/html",
        "GitHub Actions",
        "Deploys need finance",
        "sha: abc123",
    ] {
        assert!(text.contains(expected), "{expected} missing from {text}");
    }
    let at = text
        .find("https://gate.example.com/console/link/")
        .expect("a sign-in link");
    let path: String = text[at + "https://gate.example.com".len()..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '/')
        .collect();

    // A GET (a mail scanner) shows a button and uses nothing up.
    let client = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for _ in 0..2 {
        let page = client.get(format!("{}{path}", server.url)).send().unwrap();
        assert_eq!(page.status(), 200);
        assert!(page.headers().get("set-cookie").is_none());
        assert!(page.text().unwrap().contains("Continue"));
    }
    // The button signs ana in and opens the request; a second use fails.
    let used = client.post(format!("{}{path}", server.url)).send().unwrap();
    assert_eq!(used.status(), 303);
    assert_eq!(
        used.headers()["location"],
        format!("/console/decisions/{id}").as_str()
    );
    let session = used
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_string())
        .find(|c| c.starts_with("gh_session="))
        .expect("a session");
    let page = client
        .get(format!("{}/console/decisions/{id}", server.url))
        .header("cookie", &session)
        .send()
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().unwrap().contains("ana"));
    assert_eq!(
        client
            .post(format!("{}{path}", server.url))
            .send()
            .unwrap()
            .status(),
        401
    );
    let (_, still) = call(
        "GET",
        &format!("{}/api/gate/requests/{id}", server.url),
        Some(&agent),
        None,
    );
    assert_eq!(
        still["status"], "pending_review",
        "opening the link approved nothing"
    );

    // The escalation group hears of the escalation, then of the expiry.
    let mails = sink.wait_for("escalation and expiry mails", |m| {
        m.iter().filter(|x| to(x) == "leads@example.com").count() == 2
    });
    let leads: Vec<String> = mails
        .iter()
        .filter(|x| to(x) == "leads@example.com")
        .map(text_of)
        .collect();
    assert!(
        leads[0].contains("Subject: Escalated: deploy_production"),
        "{}",
        leads[0]
    );
    assert!(
        leads[1].contains("Subject: Expired: deploy_production"),
        "{}",
        leads[1]
    );
    assert!(leads[1].contains(&format!("https://gate.example.com/console/decisions/{id}")));
    assert!(mails.iter().all(|m| to(m) != "lee@example.com"));
}

#[test]
fn email_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    email_flow(&["--data", data.to_str().unwrap()], dir.path());
}

#[test]
fn email_on_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let schema = fresh_schema();
    let flags = postgres_flags(&schema, dir.path());
    let storage: Vec<&str> = flags.iter().map(String::as_str).collect();
    email_flow(&storage, dir.path());
}
