//! What a tool call asks of Gatehouse, and the two ways to ask it: in
//! process through `App` (the `/mcp` endpoint of a running server), or over
//! the HTTP API (`gatehouse mcp serve` on stdio, and the proxy).

use async_trait::async_trait;
use gatehouse_app::AppError;
use gatehouse_core::Role;
use serde_json::{Map, Value};

/// A failure a tool reports to its caller: the API's stable code and a
/// message for people. Internal causes never appear in it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ToolError {
    pub code: String,
    pub message: String,
}

impl ToolError {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        ToolError {
            code: code.into(),
            message: message.into(),
        }
    }

    /// The arguments do not fit the tool's input schema.
    pub fn arguments(e: impl std::fmt::Display) -> Self {
        ToolError::new("validation_failed", format!("invalid arguments: {e}"))
    }

    /// The error body the API would answer, as JSON.
    pub fn body(&self) -> Value {
        serde_json::json!({"error": {"code": self.code, "message": self.message}})
    }
}

impl From<AppError> for ToolError {
    fn from(e: AppError) -> Self {
        if let AppError::Internal(cause) = &e {
            tracing::error!(%cause, "MCP tool call failed");
        }
        ToolError::new(e.code(), e.public_message())
    }
}

/// One tool call, its arguments parsed as far as both backends need.
#[derive(Debug)]
pub enum Call {
    /// The SDK request shape, as sent (`POST /api/gate/requests`).
    RequestApproval(Map<String, Value>),
    GetDecision {
        id: String,
    },
    WaitForDecision {
        id: String,
        seconds: u64,
    },
    /// `{token, action}` (`POST /api/tokens/redeem`).
    RedeemToken(Map<String, Value>),
    ReportExecution {
        id: String,
        receipt: Map<String, Value>,
    },
    ReportOutcome {
        id: String,
        outcome: Map<String, Value>,
    },
    ListPending {
        limit: u32,
        before: Option<String>,
    },
    Review {
        id: String,
        body: Map<String, Value>,
    },
}

/// Gatehouse as a tool call sees it. Every answer is the JSON the HTTP API
/// answers for the same request, so the tools and the API agree.
#[async_trait]
pub trait Gate: Send + Sync {
    /// The caller's role, which decides the tools it is offered.
    async fn role(&self) -> Result<Role, ToolError>;

    async fn call(&self, call: Call) -> Result<Value, ToolError>;
}
