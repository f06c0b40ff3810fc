//! The single internal [`ActionRequest`] every wire shape normalises into
//! (the shapes themselves are in `gatehouse-api`), and the action hash.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::ValidationError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Risk {
    Low,
    Medium,
    High,
}

impl Risk {
    pub fn as_str(self) -> &'static str {
        match self {
            Risk::Low => "low",
            Risk::Medium => "medium",
            Risk::High => "high",
        }
    }

    pub fn parse(field: &str, raw: &str) -> Result<Self, ValidationError> {
        match raw {
            "low" => Ok(Risk::Low),
            "medium" => Ok(Risk::Medium),
            "high" => Ok(Risk::High),
            other => Err(ValidationError::new(
                field,
                format!("must be one of low, medium, high (got {other:?})"),
            )),
        }
    }
}

/// The one model every endpoint feeds. Field names follow the Gate API; the
/// Decide API's names map onto them (workflow → agent, requested_action →
/// action, source_record_id → subject, guardrail fields → payload).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionRequest {
    pub agent: String,
    pub action: String,
    pub subject: String,
    pub risk: Risk,
    #[serde(default)]
    pub summary: Vec<String>,
    #[serde(default)]
    pub payload: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_record_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub question: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<Value>,
    /// Where the resolution is POSTed (checked against the callback
    /// allowlist when the request is made).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_url: Option<String>,
}

impl ActionRequest {
    /// `sha256:` of the canonical action (tool/action, subject, payload):
    /// the value approval tokens and execution receipts bind to.
    pub fn action_hash(&self) -> String {
        action_hash(&self.action, &self.subject, &self.payload)
    }
}

/// See [`ActionRequest::action_hash`]; also used for the action an executor
/// presents when it redeems a token.
pub fn action_hash(action: &str, subject: &str, payload: &Map<String, Value>) -> String {
    /// `{"action","payload","subject"}`, borrowed rather than copied into a
    /// JSON value: the payload can be large and this runs on every decide.
    #[derive(Serialize)]
    struct Action<'a> {
        action: &'a str,
        payload: &'a Map<String, Value>,
        subject: &'a str,
    }
    let canonical = Action {
        action,
        payload,
        subject,
    };
    format!(
        "sha256:{}",
        crate::canonical::canonical_sha256_hex(&canonical).unwrap_or_default()
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    /// The action hash is the SHA-256 of exactly this canonical JSON, and
    /// ignores the payload's key order but nothing else.
    #[test]
    fn action_hash_ignores_key_order_but_not_content() {
        let hash = |payload: serde_json::Value, subject: &str| {
            super::action_hash("issue_refund", subject, payload.as_object().unwrap())
        };
        let a = hash(json!({"amount": 5, "currency": "usd"}), "cus_1");
        let bytes = br#"{"action":"issue_refund","payload":{"amount":5,"currency":"usd"},"subject":"cus_1"}"#;
        assert_eq!(a, format!("sha256:{}", crate::canonical::sha256_hex(bytes)));
        assert_eq!(a, hash(json!({"currency": "usd", "amount": 5}), "cus_1"));
        assert_ne!(a, hash(json!({"amount": 6, "currency": "usd"}), "cus_1"));
        assert_ne!(a, hash(json!({"amount": 5, "currency": "usd"}), "cus_2"));
    }
}
