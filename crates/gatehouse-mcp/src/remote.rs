//! Tool calls answered over the HTTP API of a Gatehouse server
//! (`GATEHOUSE_URL`, with `GATEHOUSE_API_KEY`): used by `gatehouse mcp serve`
//! on stdio and by the gating proxy.

use std::time::Duration;

use async_trait::async_trait;
use gatehouse_core::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Map, Value};

use crate::gate::{Call, Gate, ToolError};

/// Code of a failure to reach the server at all.
pub const UNREACHABLE: &str = "gatehouse_unreachable";

/// A Gatehouse server reached over HTTP with one API key.
#[derive(Clone)]
pub struct RemoteGate {
    base: String,
    key: String,
    http: reqwest::Client,
}

impl std::fmt::Debug for RemoteGate {
    // The key is a secret: never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteGate")
            .field("base", &self.base)
            .finish()
    }
}

impl RemoteGate {
    /// `base` is the server's URL (`http://127.0.0.1:8080`); every request
    /// gives up after `timeout`.
    pub fn new(base: &str, key: &str, timeout: Duration) -> Result<Self, ToolError> {
        let url = reqwest::Url::parse(base).map_err(|e| {
            ToolError::new("bad_configuration", format!("GATEHOUSE_URL {base:?}: {e}"))
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(ToolError::new(
                "bad_configuration",
                format!("GATEHOUSE_URL must be an http or https URL, not {base:?}"),
            ));
        }
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(5))
            // The API key goes only to the configured server.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ToolError::new("bad_configuration", e.to_string()))?;
        Ok(RemoteGate {
            base: base.trim_end_matches('/').to_string(),
            key: key.to_string(),
            http,
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// One API request; a non-2xx answer becomes its error body's code and
    /// message, and anything else that goes wrong is `gatehouse_unreachable`.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
        idempotency_key: Option<&str>,
    ) -> Result<(StatusCode, Value), ToolError> {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.key)
            .query(query);
        // A long-poll may take its whole wait; anything else gets the
        // client's own, shorter timeout.
        if let Some((_, secs)) = query.iter().find(|(k, _)| *k == "wait") {
            let secs: u64 = secs.parse().unwrap_or(0);
            request = request.timeout(Duration::from_secs(secs + 10));
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        if let Some(key) = idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        let unreachable = |e: reqwest::Error| {
            ToolError::new(
                UNREACHABLE,
                format!(
                    "Gatehouse at {} could not be reached: {}",
                    self.base,
                    without_url(&e)
                ),
            )
        };
        let response = request.send().await.map_err(unreachable)?;
        let status = response.status();
        let text = response.text().await.map_err(unreachable)?;
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if status.is_success() {
            return Ok((status, value));
        }
        let error = &value["error"];
        Err(match (error["code"].as_str(), error["message"].as_str()) {
            (Some(code), Some(message)) => ToolError::new(code, message),
            _ => ToolError::new(
                UNREACHABLE,
                format!("Gatehouse at {} answered HTTP {status}", self.base),
            ),
        })
    }

    async fn get(&self, path: &str, query: &[(&str, String)]) -> Result<Value, ToolError> {
        Ok(self.send(Method::GET, path, query, None, None).await?.1)
    }

    async fn post(&self, path: &str, body: Value) -> Result<Value, ToolError> {
        Ok(self
            .send(Method::POST, path, &[], Some(&body), None)
            .await?
            .1)
    }
}

/// reqwest's errors name the URL; the message says the base already.
fn without_url(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "connection refused or failed".into()
    } else {
        e.to_string()
    }
}

fn segment(id: &str) -> String {
    // Decision ids are ULIDs; percent-encoding anything else keeps an id
    // from changing the path it is put in.
    id.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[async_trait]
impl Gate for RemoteGate {
    async fn role(&self) -> Result<Role, ToolError> {
        let who = self.get("/api/whoami", &[]).await?;
        serde_json::from_value(who["role"].clone())
            .map_err(|_| ToolError::new(UNREACHABLE, "Gatehouse's /api/whoami named no role"))
    }

    async fn call(&self, call: Call) -> Result<Value, ToolError> {
        match call {
            Call::RequestApproval(args) => {
                self.post("/api/gate/requests", Value::Object(args)).await
            }
            Call::GetDecision { id } => {
                self.get(&format!("/api/gate/requests/{}", segment(&id)), &[])
                    .await
            }
            Call::WaitForDecision { id, seconds } => {
                self.get(
                    &format!("/api/gate/requests/{}", segment(&id)),
                    &[("wait", seconds.to_string())],
                )
                .await
            }
            Call::RedeemToken(args) => self.post("/api/tokens/redeem", Value::Object(args)).await,
            Call::ReportExecution { id, receipt } => {
                self.post(
                    &format!("/api/decision/{}/executions", segment(&id)),
                    Value::Object(receipt),
                )
                .await
            }
            Call::ReportOutcome { id, outcome } => {
                self.post(
                    &format!("/api/decision/{}/outcomes", segment(&id)),
                    Value::Object(outcome),
                )
                .await
            }
            Call::ListPending { limit, before } => {
                let mut query = vec![
                    ("status", "pending_review".to_string()),
                    ("limit", limit.to_string()),
                ];
                if let Some(b) = before {
                    query.push(("before", b));
                }
                self.get("/api/decisions", &query).await
            }
            Call::Review { id, body } => {
                self.post(
                    &format!("/api/gate/requests/{}/review", segment(&id)),
                    Value::Object(body),
                )
                .await
            }
        }
    }
}

/// `args` as a JSON object, or the error a tool answers.
pub fn object(args: Value) -> Result<Map<String, Value>, ToolError> {
    match args {
        Value::Object(m) => Ok(m),
        Value::Null => Ok(Map::new()),
        other => Err(ToolError::arguments(format!(
            "expected an object, got {other}"
        ))),
    }
}
