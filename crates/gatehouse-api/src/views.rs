//! Response bodies about decisions. Each API shape gets the fields its
//! callers rely on, and whoever may read a decision sees the whole request
//! as it was submitted.

use gatehouse_app::evidence::{Replay, Verdicts};
use gatehouse_core::decision::rfc3339;
use gatehouse_core::{
    Decision, DecisionRecord, Reason, Review, ReviewChoice, Status, SubmittedRequest, TaskEvent,
    Verdict,
};
use gatehouse_log::entry::LogEntry;
use gatehouse_log::packet::Check;

use crate::progress::{ApprovedAction, ReviewProgress};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The decision's leaf hash in the transparency log, hex: what an
/// inclusion proof for `log_index` proves was logged.
fn receipt_hash(d: &Decision) -> String {
    LogEntry::decision(d).leaf().hash_hex()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ReviewView {
    pub decision: ReviewChoice,
    /// The reviewer's key id.
    pub reviewer: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reviewer_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    pub reviewed_at: String,
}

impl From<&Review> for ReviewView {
    fn from(r: &Review) -> Self {
        ReviewView {
            decision: r.decision,
            reviewer: r.reviewer_key_id.clone(),
            reviewer_name: r.reviewer_name.clone(),
            comment: r.comment.clone(),
            reviewed_at: rfc3339(r.reviewed_at),
        }
    }
}

/// A decision in the Gate API's shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct GateView {
    pub id: String,
    pub status: Status,
    pub verdict: Verdict,
    /// True only for `allow` and `approved`: the one field a workflow needs.
    pub may_proceed: bool,
    /// The reasons' messages, for people.
    pub reasons: Vec<String>,
    pub evidence: Vec<Reason>,
    pub policy_version: String,
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review_deadline: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review: Option<ReviewView>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<String>,
    #[serde(flatten)]
    pub request: SubmittedRequest,
    pub record_hash: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_index: Option<u64>,
    /// The decision's leaf hash in the transparency log.
    pub receipt_hash: String,
    pub decision_url: String,
    /// Set when the decision was flagged for owner review, with the reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flagged_for_review: Option<String>,
    /// Signed approval token, for the agent that asked, once it may proceed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_token: Option<String>,
    /// For a decision that went to review: who must approve and who has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review_progress: Option<ReviewProgress>,
    /// Once it may proceed: the exact action to run (with the approved
    /// amendment, if reviewers changed it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_action: Option<ApprovedAction>,
}

impl From<&Decision> for GateView {
    fn from(d: &Decision) -> Self {
        GateView::with_receipt(d, receipt_hash(d))
    }
}

impl GateView {
    /// The view with the receipt hash already computed.
    pub fn with_receipt(d: &Decision, receipt_hash: String) -> Self {
        GateView {
            id: d.id.clone(),
            status: d.status,
            verdict: d.verdict,
            may_proceed: d.status.permits_action(),
            reasons: d.reasons.iter().map(|r| r.message.clone()).collect(),
            evidence: d.reasons.clone(),
            policy_version: d.policy_version.clone(),
            created_at: rfc3339(d.created_at),
            review_deadline: d.deadline.map(rfc3339),
            review: d.review.as_ref().map(ReviewView::from),
            resolved_at: d.resolved_at.map(rfc3339),
            request: SubmittedRequest::from(d),
            record_hash: d.record_hash.clone(),
            log_index: d.log_index,
            receipt_hash,
            decision_url: format!("/api/decision/{}", d.id),
            flagged_for_review: d.flag.clone(),
            approval_token: None,
            review_progress: ReviewProgress::of(d),
            approved_action: ApprovedAction::of(d),
        }
    }
}

/// Decision Record v1: the hashed body plus its handles and the current
/// state, which is outside the hash because it changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RecordView {
    #[serde(flatten)]
    pub record: DecisionRecord,
    /// SHA-256 of the RFC 8785 canonical JSON of the record body.
    pub record_hash: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_index: Option<u64>,
    pub receipt_hash: String,
    /// The newest signed checkpoint, which covers `log_index`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<String>,
    pub verify_url: String,
    pub replay_url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flagged_for_review: Option<String>,
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review: Option<ReviewView>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<String>,
    /// The request as submitted (outside the record hash, which binds its
    /// action through `action_hash`). On reads; the answer to the request
    /// itself does not repeat what the caller just sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<SubmittedRequest>,
    /// For a decision that went to review: who must approve and who has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review_progress: Option<ReviewProgress>,
    /// Once it may proceed: the exact action to run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_action: Option<ApprovedAction>,
}

impl RecordView {
    /// The record as a reader sees it, with the request as submitted.
    pub fn new(d: &Decision, checkpoint: Option<String>) -> Self {
        RecordView {
            request: Some(SubmittedRequest::from(d)),
            ..Self::created(d, checkpoint, receipt_hash(d))
        }
    }

    /// The answer to the request that made the decision, with the receipt
    /// hash already computed.
    pub fn created(d: &Decision, checkpoint: Option<String>, receipt_hash: String) -> Self {
        RecordView {
            record: d.record(),
            record_hash: d.record_hash.clone(),
            log_index: d.log_index,
            receipt_hash,
            checkpoint,
            verify_url: format!("/api/decision/{}/verify", d.id),
            replay_url: format!("/api/decision/{}/replay", d.id),
            approval_token: None,
            flagged_for_review: d.flag.clone(),
            status: d.status,
            review: d.review.as_ref().map(ReviewView::from),
            resolved_at: d.resolved_at.map(rfc3339),
            request: None,
            review_progress: ReviewProgress::of(d),
            approved_action: ApprovedAction::of(d),
        }
    }
}

/// What the policies said, then or now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct VerdictView {
    pub verdict: Verdict,
    pub reasons: Vec<Reason>,
}

impl From<Verdicts> for VerdictView {
    fn from(v: Verdicts) -> Self {
        VerdictView {
            verdict: v.verdict,
            reasons: v.reasons,
        }
    }
}

/// `GET /api/decision/{id}/replay`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ReplayView {
    pub decision_id: String,
    pub matches: bool,
    pub policy_version: String,
    pub replayed_policy_version: String,
    pub original: VerdictView,
    pub replayed: VerdictView,
}

impl From<Replay> for ReplayView {
    fn from(r: Replay) -> Self {
        ReplayView {
            matches: r.matches(),
            decision_id: r.decision_id,
            policy_version: r.policy_version,
            replayed_policy_version: r.replayed_policy_version,
            original: r.original.into(),
            replayed: r.replayed.into(),
        }
    }
}

/// `GET /api/decision/{id}/verify`: the Decision Packet's checks, run on
/// the server with its own log key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct VerifyView {
    pub decision_id: String,
    /// True only if every check passed.
    pub valid: bool,
    pub checks: Vec<Check>,
}

/// `GET /api/decisions`: newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DecisionList {
    pub items: Vec<GateView>,
    /// Pass as `before` for the next page; absent on the last page.
    #[serde(default)]
    pub next_before: Option<String>,
}

/// `GET /api/agent/tasks/{task_id}/events`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EventList {
    pub items: Vec<TaskEvent>,
}
