//! Action Execution Receipts and Outcome Records: what was
//! attempted against the target system, and what came of it. Both are
//! hashed over their RFC 8785 canonical form.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use crate::canonical::canonical_sha256_hex;
use crate::decision::rfc3339;

pub const RECEIPT_VERSION: &str = "action-execution-receipt/v1";
pub const OUTCOME_VERSION: &str = "outcome-record/v1";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ExecutionReceipt {
    pub receipt_version: String,
    pub execution_id: String,
    pub decision_id: String,
    pub target_system: String,
    pub target_object: String,
    pub mutation: String,
    pub executor: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_before_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_after_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_jti: Option<String>,
    /// `sha256:` of the action actually executed; equal to the decision's.
    pub action_hash: String,
    pub reported_by: String,
    pub executed_at: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeStatus {
    Succeeded,
    Failed,
    Review,
    Pending,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OutcomeRecord {
    pub record_version: String,
    pub outcome_id: String,
    pub decision_id: String,
    pub status: OutcomeStatus,
    pub action_taken: String,
    #[serde(default)]
    pub observed_metrics: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_system: Option<String>,
    pub reported_by: String,
    pub reported_at: String,
}

impl ExecutionReceipt {
    pub fn hash(&self) -> String {
        canonical_sha256_hex(self).unwrap_or_default()
    }
}

impl OutcomeRecord {
    pub fn hash(&self) -> String {
        canonical_sha256_hex(self).unwrap_or_default()
    }
}

pub fn timestamp(t: OffsetDateTime) -> String {
    rfc3339(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_change_with_any_field() {
        let r = ExecutionReceipt {
            receipt_version: RECEIPT_VERSION.into(),
            execution_id: "exe_1".into(),
            decision_id: "dec_1".into(),
            target_system: "stripe".into(),
            target_object: "re_1".into(),
            mutation: "create_refund".into(),
            executor: "worker".into(),
            state_before_hash: None,
            state_after_hash: Some("sha256:ab".into()),
            token_jti: Some("tok_1".into()),
            action_hash: "sha256:cd".into(),
            reported_by: "k1".into(),
            executed_at: "2026-01-01T00:00:00Z".into(),
        };
        let changed = ExecutionReceipt {
            target_object: "re_2".into(),
            ..r.clone()
        };
        assert_eq!(r.hash().len(), 64);
        assert_ne!(r.hash(), changed.hash());
    }
}
