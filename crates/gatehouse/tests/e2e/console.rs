//! The reviewer console in a real browser: Debian's Chromium driven by
//! chromedriver over WebDriver (fantoccini), against a real server. Two
//! people in two browser sessions meet a quorum of two; a request created
//! through the API appears in an open queue without a reload; a reject
//! needs a reason; an approval with changes binds the amended payload; a
//! POST without the CSRF token is refused; signing out ends the session.
//! Screenshots of the queue and a decision page are saved under
//! `target/console-screenshots/` (the README's come from there).

use std::net::TcpListener;
use std::process::Child;

use fantoccini::{Client, ClientBuilder, Locator};

use super::*;
use crate::reviewing::user;

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn chromedriver() -> Driver {
    assert!(
        Path::new(CHROMEDRIVER).exists() && Path::new(CHROMIUM).exists(),
        "browser tests need Debian's chromium and chromium-driver (.ci/run installs them)"
    );
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let url = format!("http://127.0.0.1:{port}");
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Driver { child, url };
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("chromedriver did not start");
}

async fn browser(driver: &Driver) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({"binary": CHROMIUM, "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
            "--disable-gpu", "--window-size=1280,1000"]}),
    );
    // chromedriver is on loopback: plain HTTP, no TLS stack needed.
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a browser session")
}

/// The button whose visible label is exactly `label`.
async fn button(c: &Client, label: &str) -> fantoccini::elements::Element {
    c.find(Locator::XPath(&format!(
        "//button[normalize-space()='{label}']"
    )))
    .await
    .unwrap_or_else(|e| panic!("no button {label:?}: {e}"))
}

async fn sign_in(c: &Client, base: &str, name: &str) {
    c.goto(&format!("{base}/console")).await.unwrap();
    // Not signed in: the console sends the browser to the sign-in page.
    assert!(c
        .current_url()
        .await
        .unwrap()
        .path()
        .ends_with("/console/login"));
    c.find(Locator::Css("input[name=username]"))
        .await
        .unwrap()
        .send_keys(name)
        .await
        .unwrap();
    c.find(Locator::Css("input[name=password]"))
        .await
        .unwrap()
        .send_keys("a long enough password")
        .await
        .unwrap();
    button(c, "Sign in").await.click().await.unwrap();
    c.wait()
        .for_element(Locator::Css("table#queue"))
        .await
        .unwrap();
}

async fn status_on_page(c: &Client) -> String {
    c.find(Locator::Css("h1 .status"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn open(c: &Client, base: &str, id: &str) {
    c.goto(&format!("{base}/console/decisions/{id}"))
        .await
        .unwrap();
    c.wait()
        .for_element(Locator::Css("h1 .status"))
        .await
        .unwrap();
}

/// [`call`] from inside the browser test's runtime (the blocking client
/// makes a runtime of its own, which may not be dropped on an async worker).
fn api(method: &str, url: &str, key: Option<&str>, body: Option<Value>) -> (u16, Value) {
    tokio::task::block_in_place(|| call(method, url, key, body))
}

async fn save_screenshot(c: &Client, name: &str) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/console-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    let png = c.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
    std::fs::write(dir.join(name), png).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reviewers_work_in_the_browser() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let storage = ["--data", data.to_str().unwrap()];
    user(&storage, "ana", &["finance"]);
    user(&storage, "bo", &["finance"]);
    let agent = create_key(&storage, "agent");
    let policies = examples("review-routing");
    let server = Server::start(&storage, &["--policies", policies.to_str().unwrap()]);
    let base = server.url.clone();
    let ask = |amount: i64| {
        let body = json!({"workflow_name": "Customer Support", "tool_name": "issue_refund",
            "subject": "cus_42", "risk_level": "high", "task_label": "Refund for order 1042",
            "preview": "Refund the customer for a damaged delivery",
            "summary": ["Order 1042 arrived broken", "Customer since 2019"],
            "payload": {"amount": amount, "currency": "usd", "order": "1042"}});
        let (status, out) = api(
            "POST",
            &format!("{base}/api/agent/tasks/t-1042/requests"),
            Some(&agent),
            Some(body),
        );
        assert_eq!(status, 201, "{out}");
        out["id"].as_str().unwrap().to_string()
    };
    let driver = chromedriver();
    let a = browser(&driver).await;
    let b = browser(&driver).await;

    // A request made through the API appears in an open queue, no reload.
    sign_in(&a, &base, "ana").await;
    let first = ask(25_000);
    let row = format!("tr[data-id='{first}']");
    a.wait()
        .at_most(Duration::from_secs(15))
        .for_element(Locator::Css(&row))
        .await
        .expect("the new request appears in the queue without a reload");
    assert!(a.current_url().await.unwrap().path().ends_with("/console"));
    let progress = a
        .find(Locator::Css(&format!("{row} td.progress")))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(progress, "0 of 2");
    ask(40_000);
    a.wait()
        .for_element(Locator::Css("tbody#queue-rows tr:nth-child(2)"))
        .await
        .unwrap();
    save_screenshot(&a, "console-queue.png").await;

    // Two reviewers in two sessions meet a quorum of two.
    open(&a, &base, &first).await;
    save_screenshot(&a, "console-decision.png").await;
    button(&a, "Approve").await.click().await.unwrap();
    a.wait().for_element(Locator::Css("p.flash")).await.unwrap();
    assert_eq!(status_on_page(&a).await, "pending_review");
    sign_in(&b, &base, "bo").await;
    open(&b, &base, &first).await;
    button(&b, "Approve").await.click().await.unwrap();
    b.wait().for_element(Locator::Css("p.flash")).await.unwrap();
    assert_eq!(status_on_page(&b).await, "approved");

    // A reject needs a reason.
    let second = ask(30_000);
    open(&a, &base, &second).await;
    button(&a, "Reject").await.click().await.unwrap();
    let error = a
        .wait()
        .for_element(Locator::Css("p.error"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(error.contains("reason"), "{error}");
    assert_eq!(status_on_page(&a).await, "pending_review");
    a.find(Locator::Css("textarea[name=comment]"))
        .await
        .unwrap()
        .send_keys("duplicate of an earlier refund")
        .await
        .unwrap();
    button(&a, "Reject").await.click().await.unwrap();
    a.wait().for_element(Locator::Css("p.flash")).await.unwrap();
    assert_eq!(status_on_page(&a).await, "rejected");

    // Approve with changes: ana lowers the amount, bo approves that.
    let third = ask(50_000);
    open(&a, &base, &third).await;
    a.find(Locator::Css("details summary"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let area = a
        .find(Locator::Css("textarea[name=amended_payload]"))
        .await
        .unwrap();
    area.clear().await.unwrap();
    area.send_keys("{\"amount\": 20000, \"currency\": \"usd\", \"order\": \"1042\"}")
        .await
        .unwrap();
    button(&a, "Approve with changes")
        .await
        .click()
        .await
        .unwrap();
    a.wait().for_element(Locator::Css("p.flash")).await.unwrap();
    assert!(
        a.find(Locator::Css("table.diff tr.changed")).await.is_ok(),
        "the diff shows the change"
    );
    open(&b, &base, &third).await;
    button(&b, "Approve").await.click().await.unwrap();
    b.wait().for_element(Locator::Css("p.flash")).await.unwrap();
    assert_eq!(status_on_page(&b).await, "approved");
    let (_, shown) = api(
        "GET",
        &format!("{base}/api/gate/requests/{third}"),
        Some(&agent),
        None,
    );
    assert_eq!(
        shown["approved_action"]["payload"]["amount"], 20_000,
        "{shown}"
    );

    // A POST without the CSRF token is refused, even with the session cookie.
    let fourth = ask(60_000);
    open(&a, &base, &fourth).await;
    let status = a
        .execute_async(
            "const done = arguments[arguments.length - 1];
             fetch(arguments[0], {method: 'POST', body: new URLSearchParams({decision: 'approve'})})
               .then(r => done(r.status));",
            vec![json!(format!("/console/decisions/{fourth}/review"))],
        )
        .await
        .unwrap();
    assert_eq!(status, json!(403));
    let (_, shown) = api(
        "GET",
        &format!("{base}/api/gate/requests/{fourth}"),
        Some(&agent),
        None,
    );
    assert_eq!(shown["status"], "pending_review", "nothing was recorded");

    // Signing out ends the session.
    button(&a, "Sign out").await.click().await.unwrap();
    a.wait()
        .for_element(Locator::Css("input[name=username]"))
        .await
        .unwrap();
    a.goto(&format!("{base}/console")).await.unwrap();
    assert!(a
        .current_url()
        .await
        .unwrap()
        .path()
        .ends_with("/console/login"));

    a.close().await.unwrap();
    b.close().await.unwrap();
}
