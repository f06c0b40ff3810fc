//! What the proxy does with one `tools/call`: ask Gatehouse, hold it while a
//! person reviews it, redeem the approval token for exactly the approved
//! arguments, and afterwards report the receipt and the outcome. Anything
//! that goes wrong refuses the call: nothing is forwarded on an error.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use gatehouse_core::canonical::canonical_sha256_hex;
use reqwest::{Method, StatusCode};
use rmcp::model::ToolAnnotations;
use serde_json::{json, Map, Value};

use super::messages::{rejected_by_policy, rejected_by_reviewer, still_pending};
use crate::gate::ToolError;
use crate::remote::RemoteGate;

/// How many used decisions for the same arguments a call steps over before
/// it gives up (each step is one idempotent replay).
const MAX_GENERATIONS: u32 = 1_000;
/// The longest single long-poll while a call is held.
const MAX_POLL_SECONDS: u64 = 50;

/// The proxy's settings for deciding calls.
#[derive(Debug, Clone)]
pub struct GatingConfig {
    pub agent: String,
    /// The argument whose value is the decision's subject.
    pub subject_arg: Option<String>,
    /// How long a call waits for a review before it is answered.
    pub hold: Duration,
    /// Prefixes action names (`NAME.tool`) and names the subject.
    pub server_name: Option<String>,
    pub risk: String,
    /// Leave tools the policies always reject out of `tools/list`.
    pub hide_rejected: bool,
}

/// One `tools/call` as Gatehouse is asked about it.
#[derive(Debug, Clone)]
pub struct CallInfo {
    pub tool: String,
    pub arguments: Map<String, Value>,
    /// The upstream's annotations for the tool, if it listed them.
    pub hints: Option<ToolAnnotations>,
    /// The MCP client's name and version, as it introduced itself.
    pub client: Option<String>,
    /// The upstream server's name, as it introduced itself.
    pub upstream_name: Option<String>,
}

/// The call may run: with these arguments, on this decision.
#[derive(Debug, Clone)]
pub struct Approved {
    pub decision_id: String,
    pub token_jti: String,
    pub action: String,
    pub subject: String,
    pub arguments: Map<String, Value>,
    pub amended: bool,
}

/// What becomes of a call.
#[derive(Debug)]
pub enum Gated {
    Proceed(Approved),
    /// Not forwarded; the message tells the model why and what to do.
    Refuse(String),
}

#[derive(Debug, Default)]
struct Slot {
    generation: u32,
    body: Option<Value>,
}

pub struct Gating {
    pub config: GatingConfig,
    pub gate: RemoteGate,
    /// Per argument hash: the first generation not known to be used, and
    /// the request body asked with it.
    slots: Mutex<HashMap<String, Slot>>,
}

fn text(view: &Value, key: &str) -> String {
    view[key].as_str().unwrap_or_default().to_string()
}

impl Gating {
    pub fn new(config: GatingConfig, gate: RemoteGate) -> Self {
        Gating {
            config,
            gate,
            slots: Mutex::new(HashMap::new()),
        }
    }

    fn server(&self, call: &CallInfo) -> String {
        self.config
            .server_name
            .clone()
            .or_else(|| call.upstream_name.clone())
            .unwrap_or_else(|| "mcp".to_string())
    }

    pub fn action(&self, tool: &str) -> String {
        match &self.config.server_name {
            Some(server) => format!("{server}.{tool}"),
            None => tool.to_string(),
        }
    }

    fn subject(&self, call: &CallInfo) -> String {
        let named = self
            .config
            .subject_arg
            .as_ref()
            .and_then(|arg| call.arguments.get(arg))
            .map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .filter(|s| !s.trim().is_empty());
        named.unwrap_or_else(|| self.server(call))
    }

    /// Facts for the reviewer that are not the action: who asked through
    /// which client, and what the server claims about the tool. The hints
    /// are the upstream's word, so they are labelled as unverified.
    fn summary(&self, call: &CallInfo) -> Vec<String> {
        let mut lines = vec![format!("MCP server: {}", self.server(call))];
        if let Some(client) = &call.client {
            lines.push(format!("MCP client: {client}"));
        }
        match &call.hints {
            Some(h) => {
                let flag = |name: &str, v: Option<bool>| v.map(|b| format!("{name}={b}"));
                let hints: Vec<String> = [
                    flag("readOnlyHint", h.read_only_hint),
                    flag("destructiveHint", h.destructive_hint),
                    flag("idempotentHint", h.idempotent_hint),
                    flag("openWorldHint", h.open_world_hint),
                ]
                .into_iter()
                .flatten()
                .collect();
                if !hints.is_empty() {
                    lines.push(format!(
                        "Tool hints from the MCP server (unverified): {}",
                        hints.join(", ")
                    ));
                }
            }
            None => lines.push("Tool hints from the MCP server: none listed".to_string()),
        }
        lines
    }

    /// The generation to ask with, and the body: the one this process
    /// first asked with for these arguments, so a retry is the same request
    /// even if the tool's hints arrived in between.
    fn slot(&self, key: &str, fresh: &Value) -> (u32, Value) {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        let slot = slots.entry(key.to_string()).or_default();
        let body = slot.body.get_or_insert_with(|| fresh.clone()).clone();
        (slot.generation, body)
    }

    /// Generation `g` is used: later calls with these arguments ask anew.
    fn used(&self, key: &str, g: u32) {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        let slot = slots.entry(key.to_string()).or_default();
        if g >= slot.generation {
            slot.generation = g + 1;
            slot.body = None;
        }
    }

    /// Of `tools`, those the policies in force reject for this agent
    /// whatever the arguments.
    pub async fn always_rejected(&self, tools: &[String]) -> Result<Vec<String>, ToolError> {
        let actions: Vec<String> = tools.iter().map(|t| self.action(t)).collect();
        let body = json!({"agent": self.config.agent, "actions": actions});
        let (_, answer) = self
            .gate
            .send(
                Method::POST,
                "/api/policies/always-rejected",
                &[],
                Some(&body),
                None,
            )
            .await?;
        let rejected: Vec<&str> = answer["always_rejected"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        Ok(tools
            .iter()
            .filter(|t| rejected.contains(&self.action(t).as_str()))
            .cloned()
            .collect())
    }

    /// Decide `call`: ask, hold, redeem. Never returns `Proceed` unless
    /// Gatehouse allowed or approved exactly the arguments it returns and
    /// the token was redeemed for them.
    pub async fn decide(&self, call: &CallInfo) -> Result<Gated, ToolError> {
        let server = self.server(call);
        let action = self.action(&call.tool);
        let subject = self.subject(call);
        // The same server, tool and arguments are one slot, so a retry finds
        // the decision its first attempt made.
        let args_key = canonical_sha256_hex(&json!({
            "server": server,
            "tool": call.tool,
            "arguments": call.arguments,
        }))
        .map_err(|e| ToolError::new("validation_failed", e.to_string()))?;
        let fresh = json!({
            "agent": self.config.agent,
            "action": action,
            "risk": self.config.risk,
            "subject": subject,
            "context": call.arguments,
            "summary": self.summary(call),
        });
        for _ in 0..MAX_GENERATIONS {
            let (g, body) = self.slot(&args_key, &fresh);
            // The key covers the whole body, so a request that differs in
            // anything (another client, new hints) is a new decision rather
            // than a conflict that would refuse these arguments for good.
            let body_hash = canonical_sha256_hex(&body)
                .map_err(|e| ToolError::new("validation_failed", e.to_string()))?;
            let key = format!("mcp-{body_hash}-{g}");
            let (status, view) = self
                .gate
                .send(
                    Method::POST,
                    "/api/gate/requests",
                    &[],
                    Some(&body),
                    Some(&key),
                )
                .await?;
            let replayed = status == StatusCode::OK;
            let view = match text(&view, "status").as_str() {
                "pending_review" => self.hold(view).await?,
                _ => view,
            };
            let id = text(&view, "id");
            match text(&view, "status").as_str() {
                "allow" | "approved" => match self.redeem(&view).await {
                    Ok(approved) => {
                        self.used(&args_key, g);
                        return Ok(Gated::Proceed(approved));
                    }
                    // A replay of a decision whose token an earlier call
                    // used, or that expired unused: these arguments need a
                    // new decision.
                    Err(e)
                        if replayed
                            && matches!(
                                e.code.as_str(),
                                "token_already_redeemed" | "token_rejected"
                            ) =>
                    {
                        self.used(&args_key, g);
                    }
                    Err(e) => return Err(e),
                },
                "reject" => {
                    // Policies may have changed since: a later call asks again.
                    self.used(&args_key, g);
                    if !replayed {
                        return Ok(Gated::Refuse(rejected_by_policy(&id, &view)));
                    }
                }
                "rejected" => return Ok(Gated::Refuse(rejected_by_reviewer(&id, &view))),
                "expired" => {
                    self.used(&args_key, g);
                    if !replayed {
                        return Ok(Gated::Refuse(format!(
                            "Gatehouse: the review of this call (decision {id}) expired without a \
                             decision, so the tool was not run. Call it again to ask for a new review."
                        )));
                    }
                }
                "pending_review" => {
                    let link = format!("{}/console/decisions/{id}", self.gate.base());
                    return Ok(Gated::Refuse(still_pending(&id, &link)));
                }
                other => {
                    return Err(ToolError::new(
                        "unexpected_status",
                        format!("decision {id} has status {other:?}"),
                    ))
                }
            }
        }
        Err(ToolError::new(
            "too_many_decisions",
            format!("more than {MAX_GENERATIONS} earlier decisions for the same arguments"),
        ))
    }

    /// Wait for a review for up to `--hold`, then answer with the decision
    /// as it stands.
    async fn hold(&self, mut view: Value) -> Result<Value, ToolError> {
        let deadline = Instant::now() + self.config.hold;
        let id = text(&view, "id");
        while text(&view, "status") == "pending_review" {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            // Whole seconds, rounded up: the hold is at least what was asked.
            let wait = left
                .as_millis()
                .div_ceil(1000)
                .min(MAX_POLL_SECONDS as u128);
            view = self
                .gate
                .send(
                    Method::GET,
                    &format!("/api/gate/requests/{id}"),
                    &[("wait", wait.to_string())],
                    None,
                    None,
                )
                .await?
                .1;
        }
        Ok(view)
    }

    /// Redeem the decision's token for the approved action, exactly.
    async fn redeem(&self, view: &Value) -> Result<Approved, ToolError> {
        let id = text(view, "id");
        let token = view["approval_token"].as_str().ok_or_else(|| {
            ToolError::new(
                "no_token",
                format!("decision {id} permits the action but no approval token was handed out"),
            )
        })?;
        let approved = &view["approved_action"];
        let (action, subject, arguments, amended) = match approved {
            Value::Object(a) => (
                a.get("tool_name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                a.get("subject")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                a.get("payload")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default(),
                a.get("amended").and_then(Value::as_bool).unwrap_or(false),
            ),
            _ => (
                text(view, "tool_name"),
                text(view, "subject"),
                view["payload"].as_object().cloned().unwrap_or_default(),
                false,
            ),
        };
        let body = json!({
            "token": token,
            "action": {"tool_name": action, "subject": subject, "payload": arguments},
        });
        let (_, redeemed) = self
            .gate
            .send(Method::POST, "/api/tokens/redeem", &[], Some(&body), None)
            .await?;
        Ok(Approved {
            decision_id: id,
            token_jti: text(&redeemed, "jti"),
            action,
            subject,
            arguments,
            amended,
        })
    }
}
