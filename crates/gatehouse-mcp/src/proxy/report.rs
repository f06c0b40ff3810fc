//! After a forwarded call: its execution receipt and its outcome.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use super::gating::{Approved, Gating};
use crate::gate::ToolError;

impl Gating {
    /// Record what ran and how it went. `result` is the upstream's answer
    /// (a tool result, or a JSON-RPC error as `{"error": …}`).
    pub async fn report(
        &self,
        approved: &Approved,
        tool: &str,
        server: &str,
        result: &Value,
        took: Duration,
    ) -> Result<(), ToolError> {
        let target = format!("mcp:{server}");
        // What the call touched: the subject argument as it ran (a reviewer
        // may have amended it), else the decision's subject.
        let object = self
            .config
            .subject_arg
            .as_ref()
            .and_then(|arg| approved.arguments.get(arg))
            .and_then(Value::as_str)
            .filter(|s| !s.trim().is_empty())
            .unwrap_or(&approved.subject);
        let receipt = json!({
            "target_system": target,
            "target_object": object,
            "mutation": tool,
            "executor": format!("gatehouse mcp proxy ({})", self.config.agent),
            "token_jti": approved.token_jti,
            "action": {
                "tool_name": approved.action,
                "subject": approved.subject,
                "payload": approved.arguments,
            },
        });
        let id = &approved.decision_id;
        self.gate
            .send(
                Method::POST,
                &format!("/api/decision/{id}/executions"),
                &[],
                Some(&receipt),
                None,
            )
            .await?;
        let failed = result.get("error").is_some()
            || result.get("isError").and_then(Value::as_bool) == Some(true);
        let outcome = json!({
            "status": if failed { "failed" } else { "succeeded" },
            "action_taken": format!("called the MCP tool {tool} on {server}"),
            "observed_metrics": {
                "duration_ms": took.as_millis() as u64,
                "is_error": failed,
                "amended": approved.amended,
            },
            "target_system": target,
        });
        self.gate
            .send(
                Method::POST,
                &format!("/api/decision/{id}/outcomes"),
                &[],
                Some(&outcome),
                None,
            )
            .await?;
        Ok(())
    }
}
