//! Decisions, reviews and the Decision Record v1 wire object.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;

use crate::canonical::canonical_sha256_hex;
use crate::request::{ActionRequest, Risk};
pub use crate::review::{Review, ReviewChoice};
use crate::review_rule::ReviewRule;

pub const RECORD_VERSION: &str = "decision-record/v1";

/// What the policies said at decision time. Never changes afterwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Allow,
    Reject,
    PendingReview,
}

impl Verdict {
    /// The Decide API's names: allow = yes, reject = no, pending_review = review.
    pub fn decide_name(self) -> &'static str {
        match self {
            Verdict::Allow => "yes",
            Verdict::Reject => "no",
            Verdict::PendingReview => "review",
        }
    }

    /// What the caller may do next, as a stable machine-readable word.
    pub fn route(self) -> &'static str {
        match self {
            Verdict::Allow => "proceed",
            Verdict::Reject => "block",
            Verdict::PendingReview => "route_to_owner",
        }
    }

    pub fn initial_status(self) -> Status {
        match self {
            Verdict::Allow => Status::Allow,
            Verdict::Reject => Status::Reject,
            Verdict::PendingReview => Status::PendingReview,
        }
    }
}

/// Where a decision stands now. Only `allow` and `approved` permit the action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Allow,
    Reject,
    PendingReview,
    Approved,
    Rejected,
    Expired,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Allow => "allow",
            Status::Reject => "reject",
            Status::PendingReview => "pending_review",
            Status::Approved => "approved",
            Status::Rejected => "rejected",
            Status::Expired => "expired",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "allow" => Status::Allow,
            "reject" => Status::Reject,
            "pending_review" => Status::PendingReview,
            "approved" => Status::Approved,
            "rejected" => Status::Rejected,
            "expired" => Status::Expired,
            _ => return None,
        })
    }

    /// The single place that answers "may the action run?". Everything that
    /// is not an explicit allow or approval is a no.
    pub fn permits_action(self) -> bool {
        matches!(self, Status::Allow | Status::Approved)
    }

    pub fn is_final(self) -> bool {
        self != Status::PendingReview
    }
}

/// One piece of evidence behind a verdict: which policy, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Reason {
    pub code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_id: Option<String>,
    pub message: String,
}

/// A stored decision: the request, what the policies said, and its current
/// state. `status`, `review` and `resolved_at` are the only mutable parts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub id: String,
    pub request_id: String,
    pub created_by: String,
    pub request: ActionRequest,
    pub verdict: Verdict,
    pub status: Status,
    pub reasons: Vec<Reason>,
    pub policy_version: String,
    /// The action name the policies evaluated; differs from the requested
    /// action only when an undeclared action fell back to `default`.
    pub evaluated_action: String,
    /// The Cedar context exactly as evaluated, so replay needs nothing else.
    pub context: Value,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub deadline: Option<OffsetDateTime>,
    /// The review that resolved the decision (the last approval that met
    /// the rule, or the reject).
    #[serde(default)]
    pub review: Option<Review>,
    /// Every review so far, in the order recorded (kept in their own
    /// column, like `review`; not part of the hashed record).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reviews: Vec<Review>,
    /// Who must approve, fixed at creation; `None` for decisions that need
    /// no review and for those recorded before review rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review_rule: Option<ReviewRule>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub resolved_at: Option<OffsetDateTime>,
    pub record_hash: String,
    #[serde(default)]
    pub idempotency_key: Option<String>,
    /// Hash of the normalised request, to tell an idempotent retry from a
    /// different request that reuses the key.
    pub request_hash: String,
    /// `sha256:` of the canonical action, computed once at decision time.
    pub action_hash: String,
    /// Lifetime of this decision's approval token when a policy set one
    /// (`@token_ttl`); otherwise the server's default applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_ttl_secs: Option<u64>,
    /// Why the decision was flagged for owner review, if it was (for example
    /// an execution that did not match what was approved).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flag: Option<String>,
    /// Position of the decision's entry in the transparency log, assigned
    /// by the store in the transaction that stores the decision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_index: Option<u64>,
}

/// The hashed body of a Decision Record v1. Everything here is fixed at
/// decision time; the current status and review live outside the hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DecisionRecord {
    pub record_version: String,
    pub request_id: String,
    pub decision_id: String,
    pub verdict: String,
    pub action: String,
    pub requested_action: String,
    /// Binds the record to the exact action: see `ActionRequest::action_hash`.
    pub action_hash: String,
    pub workflow: String,
    pub subject: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub question: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_record_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_rule: Option<String>,
    pub evidence: Vec<Reason>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub caller_evidence: Vec<Value>,
    pub policy_version: String,
    pub context: Value,
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review_deadline: Option<String>,
    /// Who must approve (pending decisions created with review rules).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review_rule: Option<ReviewRule>,
}

pub fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

/// Timestamps are kept at millisecond precision everywhere so that a value
/// read back from either database serialises to the same bytes it hashed to.
pub fn truncate_to_millis(t: OffsetDateTime) -> OffsetDateTime {
    let ms = t.unix_timestamp_nanos() / 1_000_000;
    OffsetDateTime::from_unix_timestamp_nanos(ms * 1_000_000).unwrap_or(t)
}

pub fn to_unix_millis(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

/// The current time in Unix milliseconds, the unit stored timestamps use.
pub fn now_unix_millis() -> i64 {
    to_unix_millis(OffsetDateTime::now_utc())
}

pub fn from_unix_millis(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

impl DecisionRecord {
    /// SHA-256 over the RFC 8785 canonical form of this body.
    pub fn hash(&self) -> String {
        // Serialising plain strings, vectors and JSON values cannot fail.
        canonical_sha256_hex(self).unwrap_or_default()
    }
}

impl Decision {
    /// The hashed Decision Record v1 body of this decision.
    pub fn record(&self) -> DecisionRecord {
        DecisionRecord {
            record_version: RECORD_VERSION.to_string(),
            request_id: self.request_id.clone(),
            decision_id: self.id.clone(),
            verdict: self.verdict.decide_name().to_string(),
            action: self.verdict.route().to_string(),
            requested_action: self.request.action.clone(),
            action_hash: self.action_hash.clone(),
            workflow: self.request.agent.clone(),
            subject: self.request.subject.clone(),
            question: self.request.question.clone(),
            source_record_id: self.request.source_record_id.clone(),
            owner_rule: self.request.owner.clone(),
            evidence: self.reasons.clone(),
            caller_evidence: self.request.evidence.clone(),
            policy_version: self.policy_version.clone(),
            context: self.context.clone(),
            created_at: rfc3339(self.created_at),
            review_deadline: self.deadline.map(rfc3339),
            review_rule: self.review_rule.clone(),
        }
    }

    /// The rule reviews are judged by: the one fixed at creation, or any
    /// reviewer and one approval for decisions recorded before rules.
    pub fn rule(&self) -> ReviewRule {
        self.review_rule.clone().unwrap_or_else(ReviewRule::legacy)
    }

    /// When the sweeper must next escalate this pending decision (Unix
    /// ms), the first escalation after `after_ms`.
    pub fn next_escalation_ms(&self, after_ms: i64) -> Option<i64> {
        if self.status != Status::PendingReview {
            return None;
        }
        self.review_rule
            .as_ref()
            .and_then(|r| r.next_escalation_after(after_ms))
    }

    /// Where the reviews so far leave this decision.
    pub fn tally(&self) -> crate::review_rule::Tally {
        let votes: Vec<_> = self
            .reviews
            .iter()
            .map(|r| r.vote(&self.action_hash))
            .collect();
        self.rule().tally(&votes, &self.action_hash)
    }

    /// The action the agent may run: the proposed one, or the amendment
    /// the approving reviews approved.
    pub fn approved_payload(&self) -> &Map<String, Value> {
        if self.status == Status::Approved {
            let current = self.tally().current_action_hash;
            if let Some(amended) = self
                .reviews
                .iter()
                .rev()
                .filter(|r| r.action_hash.as_deref() == Some(current.as_str()))
                .find_map(|r| r.amended_payload.as_ref())
            {
                return amended;
            }
        }
        &self.request.payload
    }

    /// `sha256:` of the action the agent may run (see [`Decision::approved_payload`]).
    pub fn approved_action_hash(&self) -> String {
        if self.status == Status::Approved
            && self.reviews.iter().any(|r| r.amended_payload.is_some())
        {
            crate::request::action_hash(
                &self.request.action,
                &self.request.subject,
                self.approved_payload(),
            )
        } else {
            self.action_hash.clone()
        }
    }

    /// Fills in `record_hash` from the other fields; call once at creation.
    pub fn seal(mut self) -> Self {
        self.record_hash = self.record().hash();
        self
    }

    /// True when the stored hash still matches the stored fields.
    pub fn record_hash_matches(&self) -> bool {
        self.record().hash() == self.record_hash
    }
}

/// The request as it was submitted, in the Gate API's names; a Decide
/// request also carries its question and its whole context.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SubmittedRequest {
    pub workflow_name: String,
    pub tool_name: String,
    pub subject: String,
    pub risk_level: Risk,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview: Option<String>,
    #[serde(default)]
    pub summary: Vec<String>,
    /// The action's arguments: what the approval token binds.
    #[serde(default)]
    pub payload: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub question: Option<String>,
    /// Decide requests only: the context as submitted (a risk the request
    /// left out shows as the `medium` it was evaluated with).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<Map<String, Value>>,
}

impl From<&Decision> for SubmittedRequest {
    fn from(d: &Decision) -> Self {
        let r = &d.request;
        // Only the Decide API has a question; its context is the payload
        // (the guardrail fields) plus the keys that have places of their own.
        let context = r.question.as_ref().map(|_| {
            let mut context = r.payload.clone();
            let mut put = |key: &str, value: Option<Value>| {
                if let Some(v) = value {
                    context.insert(key.to_string(), v);
                }
            };
            put("workflow", Some(Value::String(r.agent.clone())));
            put("requested_action", Some(Value::String(r.action.clone())));
            put("risk", Some(Value::String(r.risk.as_str().to_string())));
            put(
                "source_record_id",
                r.source_record_id.clone().map(Value::String),
            );
            put("owner_rule", r.owner.clone().map(Value::String));
            put("task_id", r.task_id.clone().map(Value::String));
            put(
                "evidence",
                (!r.evidence.is_empty()).then(|| Value::Array(r.evidence.clone())),
            );
            context
        });
        SubmittedRequest {
            workflow_name: r.agent.clone(),
            tool_name: r.action.clone(),
            subject: r.subject.clone(),
            risk_level: r.risk,
            task_id: r.task_id.clone(),
            task_label: r.task_label.clone(),
            preview: r.preview.clone(),
            summary: r.summary.clone(),
            payload: r.payload.clone(),
            question: r.question.clone(),
            context,
        }
    }
}

/// Something the caller reports happened around an action (before or after
/// it ran), so reviewers and auditors see the whole story.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TaskEvent {
    pub id: String,
    pub task_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision_id: Option<String>,
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default)]
    pub data: Value,
    pub created_by: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_allow_and_approved_permit_the_action() {
        let permitted: Vec<_> = [
            Status::Allow,
            Status::Reject,
            Status::PendingReview,
            Status::Approved,
            Status::Rejected,
            Status::Expired,
        ]
        .into_iter()
        .filter(|s| s.permits_action())
        .collect();
        assert_eq!(permitted, vec![Status::Allow, Status::Approved]);
    }

    #[test]
    fn status_names_round_trip() {
        for s in [
            "allow",
            "reject",
            "pending_review",
            "approved",
            "rejected",
            "expired",
        ] {
            assert_eq!(Status::parse(s).unwrap().as_str(), s);
        }
        assert!(Status::parse("maybe").is_none());
    }

    #[test]
    fn millis_round_trip_is_exact() {
        let t = truncate_to_millis(OffsetDateTime::now_utc());
        assert_eq!(from_unix_millis(to_unix_millis(t)), t);
    }
}
