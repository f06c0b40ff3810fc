//! Commands that talk to a running server over HTTP.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use gatehouse_api::views::{DecisionList, GateView};
use gatehouse_api::ErrorBody;
use serde::de::DeserializeOwned;
use serde_json::{json, Map, Value};

use crate::cli::{DecisionsCommand, RemoteArgs, RequestArgs, ReviewCommand};

struct Client {
    http: reqwest::Client,
    base: String,
    key: String,
}

impl Client {
    fn new(remote: &RemoteArgs) -> Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(75))
            .build()
            .context("cannot build the HTTP client")?;
        Ok(Client {
            http,
            base: remote.url.trim_end_matches('/').to_string(),
            key: remote.key.clone(),
        })
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Result<Value> {
        let response = req
            .bearer_auth(&self.key)
            .send()
            .await
            .with_context(|| format!("cannot reach {}", self.base))?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            match serde_json::from_value::<ErrorBody>(body) {
                Ok(e) => bail!(
                    "server answered {status}: {}: {}",
                    e.error.code,
                    e.error.message
                ),
                Err(_) => bail!("server answered {status} without an error body"),
            }
        }
        Ok(body)
    }

    async fn get(&self, path: &str) -> Result<Value> {
        self.send(self.http.get(format!("{}{path}", self.base)))
            .await
    }

    async fn post(&self, path: &str, body: &Value) -> Result<Value> {
        self.send(self.http.post(format!("{}{path}", self.base)).json(body))
            .await
    }
}

fn build_request_body(args: &RequestArgs) -> Result<(String, Value)> {
    let mut body: Map<String, Value> = match &args.file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            match serde_json::from_str(&text)
                .with_context(|| format!("{} is not JSON", path.display()))?
            {
                Value::Object(map) => map,
                _ => bail!("{} must contain a JSON object", path.display()),
            }
        }
        None => Map::new(),
    };
    let mut set = |key: &str, value: &Option<String>| {
        if let Some(v) = value {
            body.insert(key.into(), Value::String(v.clone()));
        }
    };
    set("workflow_name", &args.workflow);
    set("tool_name", &args.tool);
    set("subject", &args.subject);
    set("risk_level", &args.risk);
    set("task_label", &args.task_label);
    set("idempotency_key", &args.idempotency_key);
    if !args.summary.is_empty() {
        body.insert("summary".into(), json!(args.summary));
    }
    if let Some(p) = &args.payload {
        let payload: Value = serde_json::from_str(p).context("--payload is not valid JSON")?;
        if !payload.is_object() {
            bail!("--payload must be a JSON object");
        }
        body.insert("payload".into(), payload);
    }
    let task = match (&args.task, body.remove("task_id")) {
        (Some(t), _) => t.clone(),
        (None, Some(Value::String(t))) => t,
        _ => format!("cli-{}", gatehouse_core::ids::event_id()),
    };
    for required in ["workflow_name", "tool_name", "subject", "risk_level"] {
        if !body.contains_key(required) {
            bail!(
                "missing {required}: pass --{} or put it in --file",
                flag_for(required)
            );
        }
    }
    Ok((task, Value::Object(body)))
}

fn flag_for(field: &str) -> &'static str {
    match field {
        "workflow_name" => "workflow",
        "tool_name" => "tool",
        "subject" => "subject",
        _ => "risk",
    }
}

/// Exit codes a CI step can gate on: 0 may proceed, 1 must not, 2 unknown.
pub async fn request(args: RequestArgs) -> ExitCode {
    match request_inner(&args).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// The response as the API type, keeping the raw JSON for `--json`.
fn typed<T: DeserializeOwned>(raw: &Value) -> Result<T> {
    serde_json::from_value(raw.clone()).context("the server's answer is not the documented shape")
}

async fn request_inner(args: &RequestArgs) -> Result<ExitCode> {
    let (task, body) = build_request_body(args)?;
    let client = Client::new(&args.remote)?;
    let mut raw = client
        .post(&format!("/api/agent/tasks/{task}/requests"), &body)
        .await?;
    let mut decision: GateView = typed(&raw)?;
    if let Some(total) = args.wait {
        if decision.status == gatehouse_core::Status::PendingReview {
            // Say at once what is being waited for, so a CI log shows the
            // decision id a reviewer needs while the step is still waiting.
            eprintln!(
                "{} {} (waiting up to {total} s)",
                decision.id,
                decision.status.as_str()
            );
            for reason in &decision.reasons {
                eprintln!("  - {reason}");
            }
        }
        let started = Instant::now();
        while decision.status == gatehouse_core::Status::PendingReview {
            let left = Duration::from_secs(total).saturating_sub(started.elapsed());
            if left.is_zero() {
                break;
            }
            let wait = left.as_secs().clamp(1, 60);
            raw = client
                .get(&format!("/api/gate/requests/{}?wait={wait}", decision.id))
                .await?;
            decision = typed(&raw)?;
        }
    }
    let status = decision.status.as_str();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&raw)?);
    } else {
        println!("{} {}", decision.id, status);
        for reason in &decision.reasons {
            println!("  - {reason}");
        }
    }
    Ok(match status {
        "allow" | "approved" => ExitCode::SUCCESS,
        "reject" | "rejected" | "expired" => ExitCode::from(1),
        _ => {
            eprintln!("still {status}; not proceeding");
            ExitCode::from(2)
        }
    })
}

pub async fn review(cmd: ReviewCommand) -> Result<()> {
    let (id, comment, remote, decision) = match cmd {
        ReviewCommand::Approve {
            id,
            comment,
            remote,
        } => (id, comment, remote, "approve"),
        ReviewCommand::Reject {
            id,
            comment,
            remote,
        } => (id, comment, remote, "reject"),
    };
    let client = Client::new(&remote)?;
    let body = json!({"decision": decision, "comment": comment});
    let result: GateView = typed(
        &client
            .post(&format!("/api/gate/requests/{id}/review"), &body)
            .await?,
    )?;
    println!("{} {}", id, result.status.as_str());
    Ok(())
}

pub async fn decisions(cmd: DecisionsCommand) -> Result<()> {
    match cmd {
        DecisionsCommand::List {
            status,
            task,
            limit,
            remote,
        } => {
            let client = Client::new(&remote)?;
            let mut query = vec![format!("limit={limit}")];
            if let Some(s) = status {
                query.push(format!("status={s}"));
            }
            if let Some(t) = task {
                query.push(format!("task_id={t}"));
            }
            let list: DecisionList = typed(
                &client
                    .get(&format!("/api/decisions?{}", query.join("&")))
                    .await?,
            )?;
            println!(
                "{:<32} {:<15} {:<20} {:<7} SUBJECT",
                "ID", "STATUS", "TOOL", "RISK"
            );
            for d in &list.items {
                println!(
                    "{:<32} {:<15} {:<20} {:<7} {}",
                    d.id,
                    d.status.as_str(),
                    d.request.tool_name,
                    d.request.risk_level.as_str(),
                    d.request.subject
                );
            }
        }
        DecisionsCommand::Show { id, remote } => {
            let client = Client::new(&remote)?;
            let d = client.get(&format!("/api/decision/{id}")).await?;
            println!("{}", serde_json::to_string_pretty(&d)?);
        }
    }
    Ok(())
}
