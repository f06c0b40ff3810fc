// Compiled into each test binary, which uses only part of it.
#![allow(dead_code)]

//! In-process test app: a real SQLite store in a temporary directory, the
//! real policy engine, and the router driven with `oneshot`. Every response
//! is checked against the generated OpenAPI document ([`contract`]).

pub mod contract;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use gatehouse_app::{access, App, AppConfig};
use gatehouse_policy::{read_policy_dir, starter_files, Engine, EngineOptions, PolicyFile};
use gatehouse_server::{router, ServerConfig};
use gatehouse_store::{Role, Store};
use gatehouse_store_sqlite::SqliteStore;
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

pub struct TestApp {
    pub router: Router,
    pub app: Arc<App>,
    pub store: Arc<dyn Store>,
    pub agent: String,
    pub agent2: String,
    pub reviewer: String,
    pub reviewer_id: String,
    pub admin: String,
    pub auditor: String,
    /// An executor key named for the default token audience.
    pub executor: String,
    /// An executor key for some other audience.
    pub other_executor: String,
    _dir: tempfile::TempDir,
}

pub fn seed_policies() -> Vec<PolicyFile> {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/policies/seed-scenarios");
    read_policy_dir(&dir).unwrap()
}

pub async fn app() -> TestApp {
    app_with(
        starter_files(),
        AppConfig {
            rate_limit_per_second: 0,
            ..Default::default()
        },
    )
    .await
}

pub async fn app_with(files: Vec<PolicyFile>, config: AppConfig) -> TestApp {
    app_with_http(files, config, ServerConfig::default()).await
}

pub async fn app_with_http(
    files: Vec<PolicyFile>,
    config: AppConfig,
    http: ServerConfig,
) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(dir.path(), gatehouse_store::conformance::test_signer()).unwrap(),
    );
    let mut secrets = Vec::new();
    let mut reviewer_id = String::new();
    for (role, name) in [
        (Role::Agent, "agent"),
        (Role::Agent, "agent2"),
        (Role::Reviewer, "Rita"),
        (Role::Admin, "admin"),
        (Role::Auditor, "auditor"),
        (Role::Executor, "gatehouse-executor"),
        (Role::Executor, "billing-executor"),
    ] {
        let new = access::generate_key(role, name, time::OffsetDateTime::now_utc());
        store.create_key(&new.key).await.unwrap();
        if role == Role::Reviewer {
            reviewer_id = new.key.id.clone();
        }
        secrets.push(new.secret);
    }
    let options = EngineOptions::default();
    let engine = Engine::compile(files, options).unwrap();
    let tokens = Arc::new(gatehouse_token::TokenSigner::generate().unwrap().1);
    let app = App::new(store.clone(), engine, options, config, tokens)
        .await
        .unwrap();
    TestApp {
        router: router(app.clone(), http),
        app,
        store,
        agent: secrets[0].clone(),
        agent2: secrets[1].clone(),
        reviewer: secrets[2].clone(),
        reviewer_id,
        admin: secrets[3].clone(),
        auditor: secrets[4].clone(),
        executor: secrets[5].clone(),
        other_executor: secrets[6].clone(),
        _dir: dir,
    }
}

impl TestApp {
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let (status, _, json) = self
            .call_raw(method, path, key, body.map(|b| b.to_string()), &[])
            .await;
        (status, json)
    }

    pub async fn call_raw(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<String>,
        headers: &[(&str, &str)],
    ) -> (StatusCode, axum::http::HeaderMap, Value) {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(k) = key {
            req = req.header("authorization", format!("Bearer {k}"));
        }
        if body.is_some() {
            req = req.header("content-type", "application/json");
        }
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let req = req
            .body(body.map(Body::from).unwrap_or_else(Body::empty))
            .unwrap();
        let response = self.router.clone().oneshot(req).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let json = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::Null)
        };
        let content_type = headers.get("content-type").and_then(|v| v.to_str().ok());
        contract::check(method, path, status.as_u16(), content_type, &json);
        (status, headers, json)
    }
}

pub fn seed_gate_body() -> Value {
    serde_json::json!({
        "workflow_name": "Customer Support",
        "task_label": "Refund request for order #8821",
        "tool_name": "issue_refund",
        "subject": "Issue a $500 refund to customer cus_99",
        "preview": "Agent proposes a refund because shipment has no tracking movement.",
        "risk_level": "high",
        "summary": ["Customer requested refund", "Order placed 14 days ago", "No tracking movement found"],
        "payload": {"amount": 500, "currency": "usd", "customer_id": "cus_99"}
    })
}

/// The seed request at low risk: allowed under the starter policies.
pub fn low_risk() -> Value {
    let mut body = seed_gate_body();
    body["risk_level"] = serde_json::json!("low");
    body
}

/// A pending decision (the seed request under the starter policies).
pub async fn pending(app: &TestApp) -> String {
    let (_, body) = app
        .call(
            "POST",
            "/api/agent/tasks/t/requests",
            Some(&app.agent),
            Some(seed_gate_body()),
        )
        .await;
    body["id"].as_str().unwrap().to_string()
}
