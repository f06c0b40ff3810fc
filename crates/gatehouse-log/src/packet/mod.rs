//! Decision Packet v2: everything about one decision, with the exact log
//! leaves and inclusion proofs to one signed checkpoint, so an auditor can
//! check it offline with a log key they trust — never one from the packet.
//!
//! Every field outside `unverified` is bound: it is a leaf's exact content,
//! or hashes to what a leaf recorded, and [`verify`] checks it against that
//! leaf. What the log cannot bind (hints, and for decisions logged before
//! entries version 2 the token's claims and the policy texts) is in
//! `unverified`, which verification never reads.

mod reviews;
mod verify;

use gatehouse_core::canonical::canonical_sha256_hex;
use gatehouse_core::execution::{ExecutionReceipt, OutcomeRecord};
use gatehouse_core::{DecisionRecord, ReviewChoice, SubmittedRequest};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use verify::verify;

pub const PACKET_VERSION: &str = "decision-packet/v2";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Packet {
    pub packet_version: String,
    pub decision_id: String,
    pub record: DecisionRecord,
    pub record_hash: String,
    /// The action requested, bound by `record.action_hash`. The rest of the
    /// request as submitted (preview, summary, task, risk, and for the
    /// Decide API its context) is in `unverified.request`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<PacketRequest>,
    /// The status the packet's log entries give.
    pub status: String,
    /// Every review, in log order, each equal to its review entry.
    #[serde(default)]
    pub reviews: Vec<PacketReview>,
    /// The action the agent may run: the proposed one, or the amendment
    /// the approvals approved (`sha256:`); what the token and receipts bind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_action_hash: Option<String>,
    /// The approval token's claims and key id, bound by the claims hash of
    /// its `token_issued` entry; never the token itself.
    #[serde(default)]
    pub token: Option<TokenSummary>,
    #[serde(default)]
    pub executions: Vec<ExecutionReceipt>,
    #[serde(default)]
    pub outcomes: Vec<OutcomeRecord>,
    pub policy: PolicyIntelligence,
    pub audit_chain: AuditChain,
    /// Not verified: hints (algorithms, key ids, URLs) and anything the log
    /// cannot bind. Verification never reads it.
    pub unverified: Value,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub packet_hash: String,
}

/// The action a decision is about: what its action hash binds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PacketRequest {
    pub workflow_name: String,
    pub tool_name: String,
    pub subject: String,
    #[serde(default)]
    pub payload: serde_json::Map<String, Value>,
}

impl From<&SubmittedRequest> for PacketRequest {
    fn from(r: &SubmittedRequest) -> Self {
        PacketRequest {
            workflow_name: r.workflow_name.clone(),
            tool_name: r.tool_name.clone(),
            subject: r.subject.clone(),
            payload: r.payload.clone(),
        }
    }
}

/// One review, as its log entry records it (the comment is checked against
/// the entry's comment hash).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PacketReview {
    /// The index of the review's log entry.
    pub index: u64,
    pub decision: ReviewChoice,
    pub reviewer_key_id: String,
    /// Absent for reviews logged before entries version 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reviewer_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    pub reviewed_at: String,
    /// Under a review rule: who reviewed (person, or key name) and their
    /// groups then, as the entry records them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub person: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<String>>,
    /// The action the review saw or approved, as the entry records it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action_hash: Option<String>,
    /// An approval with changes: the payload approved instead of the
    /// proposed one; with the request's tool and subject it hashes to
    /// `action_hash`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amended_payload: Option<serde_json::Map<String, Value>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TokenSummary {
    pub kid: String,
    pub claims: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PolicyIntelligence {
    pub policy_version: String,
    /// The text of the policies that determined the verdict, each hashing
    /// to what `entry` recorded for it.
    pub policies: Vec<PolicyText>,
    /// The `policy_version` log entry of `policy_version`, proven in the
    /// same checkpoint; present whenever `policies` is not empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry: Option<ChainEntry>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PolicyText {
    pub id: String,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditChain {
    /// One signed checkpoint every entry below is proven against.
    pub checkpoint: String,
    /// Every entry about the decision the checkpoint covers, in log order.
    pub entries: Vec<ChainEntry>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChainEntry {
    pub index: u64,
    /// The exact leaf bytes, base64.
    pub leaf: String,
    /// Inclusion proof (base64 hashes) to the checkpoint's root.
    pub proof: Vec<String>,
}

/// One check of a packet: its name, whether it passed, and what was
/// compared, in plain words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

impl Packet {
    /// SHA-256 of the canonical packet without `packet_hash`. An unsigned
    /// checksum against accidents: anyone can recompute it, so no check
    /// relies on it.
    pub fn compute_hash(&self) -> String {
        let mut unhashed = self.clone();
        unhashed.packet_hash = String::new();
        canonical_sha256_hex(&unhashed).unwrap_or_default()
    }

    pub fn seal(mut self) -> Self {
        self.packet_hash = self.compute_hash();
        self
    }
}

/// Whether every check passed, and the line that says so.
pub fn conclusion(checks: &[Check]) -> (bool, String) {
    let failed = checks.iter().filter(|c| !c.ok).count();
    if failed == 0 && !checks.is_empty() {
        (
            true,
            format!("verified: all {} checks passed", checks.len()),
        )
    } else {
        (
            false,
            format!("NOT verified: {failed} of {} checks failed", checks.len()),
        )
    }
}
