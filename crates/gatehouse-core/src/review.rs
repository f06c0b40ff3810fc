//! A reviewer's approval or rejection of a pending decision.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;

use crate::decision::{to_unix_millis, Status};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReviewChoice {
    Approve,
    Reject,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Review {
    pub decision: ReviewChoice,
    pub reviewer_key_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reviewer_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub reviewed_at: OffsetDateTime,
    /// The person who reviewed, when the key (or console session) belongs
    /// to one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reviewer_user: Option<String>,
    /// The reviewer's groups when they reviewed (what made them eligible).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// The action this review saw (`sha256:`): for an approval, the action
    /// it approves. Absent on reviews recorded before review rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action_hash: Option<String>,
    /// An approval with changes: the payload the reviewer approved instead
    /// of the proposed one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amended_payload: Option<Map<String, Value>>,
}

impl Review {
    /// Who reviewed, for quorum and separation of duties: the person, or
    /// the key's name for a key without one.
    pub fn identity(&self) -> &str {
        self.reviewer_user
            .as_deref()
            .or(self.reviewer_name.as_deref())
            .unwrap_or(&self.reviewer_key_id)
    }

    /// This review as the review rule sees it; `proposed` is the action
    /// hash of the decision, for reviews recorded before they carried one.
    pub fn vote(&self, proposed: &str) -> crate::review_rule::Vote {
        crate::review_rule::Vote {
            key: self.reviewer_key_id.clone(),
            identity: self.identity().to_string(),
            groups: self.groups.clone(),
            choice: self.decision,
            action_hash: self
                .action_hash
                .clone()
                .unwrap_or_else(|| proposed.to_string()),
            at_ms: to_unix_millis(self.reviewed_at),
        }
    }

    pub fn resulting_status(&self) -> Status {
        match self.decision {
            ReviewChoice::Approve => Status::Approved,
            ReviewChoice::Reject => Status::Rejected,
        }
    }
}
