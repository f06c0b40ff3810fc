//! Where a pending decision's reviews stand, and the action an approved
//! one lets the agent run.

use gatehouse_core::decision::rfc3339;
use gatehouse_core::{Decision, Review, ReviewChoice};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// One requirement of the decision's review rule and how far it is met.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RequirementProgress {
    /// Groups whose members may approve; empty: any reviewer.
    pub groups: Vec<String>,
    /// Distinct approvers needed.
    pub quorum: u32,
    /// Distinct eligible people who approved the current action so far.
    pub approvals: u32,
    /// Who they are (person, or key name for a key without one).
    pub approved_by: Vec<String>,
    pub met: bool,
    /// A group that may review too from `escalate_at` on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalate_to: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalate_at: Option<String>,
    /// The review policy that set the requirement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_id: Option<String>,
}

/// One review, with who made it and what it approved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ReviewEntry {
    pub decision: ReviewChoice,
    /// The reviewer's key id.
    pub reviewer: String,
    /// The person, or the key's name for a key without one.
    pub reviewed_by: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    pub reviewed_at: String,
    /// The action the review approved or saw (`sha256:`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action_hash: Option<String>,
    /// Approve with changes: the payload approved instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub amended_payload: Option<Map<String, Value>>,
}

impl From<&Review> for ReviewEntry {
    fn from(r: &Review) -> Self {
        ReviewEntry {
            decision: r.decision,
            reviewer: r.reviewer_key_id.clone(),
            reviewed_by: r.identity().to_string(),
            groups: r.groups.clone(),
            comment: r.comment.clone(),
            reviewed_at: rfc3339(r.reviewed_at),
            action_hash: r.action_hash.clone(),
            amended_payload: r.amended_payload.clone(),
        }
    }
}

/// `review_progress`: every requirement, the reviews so far, and the
/// action approvals currently count for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ReviewProgress {
    pub requirements: Vec<RequirementProgress>,
    /// True once every requirement is met.
    pub complete: bool,
    /// The action approvals count for now: the proposed one, or the latest
    /// amendment (an amendment restarts the count).
    pub current_action_hash: String,
    /// Every review so far, oldest first.
    pub reviews: Vec<ReviewEntry>,
}

impl ReviewProgress {
    /// The progress of a decision that went to review; `None` otherwise.
    pub fn of(d: &Decision) -> Option<ReviewProgress> {
        if d.verdict != gatehouse_core::Verdict::PendingReview {
            return None;
        }
        let rule = d.rule();
        let tally = d.tally();
        let requirements = rule
            .requirements
            .iter()
            .zip(&tally.requirements)
            .map(|(r, t)| RequirementProgress {
                groups: r.groups.clone(),
                quorum: r.quorum,
                approvals: t.approvers.len() as u32,
                approved_by: t.approvers.clone(),
                met: t.met,
                escalate_to: r.escalate_to.clone(),
                escalate_at: r.escalate_at.clone(),
                policy_id: r.policy_id.clone(),
            })
            .collect::<Vec<_>>();
        // Decisions recorded before review rules keep only their resolving review.
        let reviews: Vec<&Review> = if d.reviews.is_empty() {
            d.review.iter().collect()
        } else {
            d.reviews.iter().collect()
        };
        Some(ReviewProgress {
            complete: requirements.iter().all(|r| r.met),
            requirements,
            current_action_hash: tally.current_action_hash,
            reviews: reviews.into_iter().map(ReviewEntry::from).collect(),
        })
    }
}

/// `approved_action`: exactly what the agent may run once it may proceed
/// (the proposed action, or the amendment the reviewers approved); what
/// the approval token, redemption and receipts bind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ApprovedAction {
    pub tool_name: String,
    pub subject: String,
    #[schema(value_type = Object)]
    pub payload: Map<String, Value>,
    pub action_hash: String,
    /// True when reviewers approved a changed payload.
    pub amended: bool,
}

impl ApprovedAction {
    pub fn of(d: &Decision) -> Option<ApprovedAction> {
        if !d.status.permits_action() {
            return None;
        }
        let action_hash = d.approved_action_hash();
        Some(ApprovedAction {
            tool_name: d.request.action.clone(),
            subject: d.request.subject.clone(),
            payload: d.approved_payload().clone(),
            amended: action_hash != d.action_hash,
            action_hash,
        })
    }
}
