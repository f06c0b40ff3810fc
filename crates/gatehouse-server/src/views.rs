//! Response bodies. Each API shape gets the fields its documents promise.

use gatehouse_app::tokens::receipt_hash;
use gatehouse_core::decision::rfc3339;
use gatehouse_core::{Decision, DecisionRecord, Reason, Review, Status, Verdict};
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct ReviewView {
    pub decision: gatehouse_core::ReviewChoice,
    pub reviewer: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reviewer_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
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

/// The Gate API's view (seed pages 000–003).
#[derive(Debug, Serialize)]
pub struct GateView {
    pub id: String,
    pub status: Status,
    pub verdict: Verdict,
    /// True only for `allow` and `approved`: the one field a workflow needs.
    pub may_proceed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    pub reasons: Vec<String>,
    pub evidence: Vec<Reason>,
    pub policy_version: String,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub review_deadline: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub review: Option<ReviewView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<String>,
    pub workflow_name: String,
    pub tool_name: String,
    pub subject: String,
    pub risk_level: &'static str,
    pub record_hash: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_index: Option<u64>,
    pub receipt_hash: String,
    pub decision_url: String,
    /// Set when the decision was flagged for owner review, with the reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flagged_for_review: Option<String>,
    /// Signed approval token, for the agent that asked, once it may proceed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval_token: Option<String>,
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
            task_id: d.request.task_id.clone(),
            reasons: d.reasons.iter().map(|r| r.message.clone()).collect(),
            evidence: d.reasons.clone(),
            policy_version: d.policy_version.clone(),
            created_at: rfc3339(d.created_at),
            review_deadline: d.deadline.map(rfc3339),
            review: d.review.as_ref().map(ReviewView::from),
            resolved_at: d.resolved_at.map(rfc3339),
            workflow_name: d.request.agent.clone(),
            tool_name: d.request.action.clone(),
            subject: d.request.subject.clone(),
            risk_level: d.request.risk.as_str(),
            record_hash: d.record_hash.clone(),
            log_index: d.log_index,
            receipt_hash,
            decision_url: format!("/api/decision/{}", d.id),
            flagged_for_review: d.flag.clone(),
            approval_token: None,
        }
    }
}

/// Decision Record v1 (seed page 004): the hashed body plus its handles and
/// the current state, which is outside the hash because it changes.
#[derive(Debug, Serialize)]
pub struct RecordView {
    #[serde(flatten)]
    pub record: DecisionRecord,
    pub record_hash: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_index: Option<u64>,
    pub receipt_hash: String,
    /// The newest signed checkpoint, which covers `log_index`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<String>,
    pub verify_url: String,
    pub replay_url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flagged_for_review: Option<String>,
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub review: Option<ReviewView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<String>,
}

impl RecordView {
    pub fn new(d: &Decision, checkpoint: Option<String>) -> Self {
        Self::with_receipt(d, checkpoint, receipt_hash(d))
    }

    /// [`RecordView::new`] with the receipt hash already computed.
    pub fn with_receipt(d: &Decision, checkpoint: Option<String>, receipt_hash: String) -> Self {
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
        }
    }
}

/// What the policies said, then or now.
#[derive(Debug, Serialize)]
pub struct VerdictView {
    pub verdict: Verdict,
    pub reasons: Vec<Reason>,
}

impl From<gatehouse_app::evidence::Verdicts> for VerdictView {
    fn from(v: gatehouse_app::evidence::Verdicts) -> Self {
        VerdictView {
            verdict: v.verdict,
            reasons: v.reasons,
        }
    }
}

/// `GET /api/decision/{id}/replay`.
#[derive(Debug, Serialize)]
pub struct ReplayView {
    pub decision_id: String,
    pub matches: bool,
    pub policy_version: String,
    pub replayed_policy_version: String,
    pub original: VerdictView,
    pub replayed: VerdictView,
}

impl From<gatehouse_app::evidence::Replay> for ReplayView {
    fn from(r: gatehouse_app::evidence::Replay) -> Self {
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
