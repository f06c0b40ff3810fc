"""Decisions as the server returns them: the Gate view, the Decision Record,
reviews and their progress. One model per OpenAPI response schema."""

from __future__ import annotations

from pydantic import Field, JsonValue

from ._base import ApiModel, JsonObject, ReviewChoice, Risk, Status, Verdict

__all__ = [
    "Reason",
    "ReviewView",
    "RequirementProgress",
    "ReviewEntry",
    "ReviewProgress",
    "ApprovedAction",
    "SubmittedRequest",
    "GateView",
    "DecisionList",
    "Requirement",
    "ReviewRule",
    "DecisionRecord",
    "RecordView",
    "VerdictView",
    "ReplayView",
]


class Reason(ApiModel):
    """One piece of evidence behind a verdict: which policy, and why."""

    __serde_skip__ = {"policy_id": "none"}

    code: str
    policy_id: str | None = None
    message: str


class ReviewView(ApiModel):
    """The review that resolved a decision."""

    decision: ReviewChoice
    reviewer: str
    reviewer_name: str | None = None
    comment: str | None = None
    reviewed_at: str


class RequirementProgress(ApiModel):
    groups: list[str]
    quorum: int
    approvals: int
    approved_by: list[str]
    met: bool
    escalate_to: str | None = None
    escalate_at: str | None = None
    policy_id: str | None = None


class ReviewEntry(ApiModel):
    decision: ReviewChoice
    reviewer: str
    reviewed_by: str
    groups: list[str] = Field(default_factory=list)
    comment: str | None = None
    reviewed_at: str
    action_hash: str | None = None
    amended_payload: JsonObject | None = None


class ReviewProgress(ApiModel):
    """For a decision that went to review: who must approve and who has."""

    requirements: list[RequirementProgress]
    complete: bool
    current_action_hash: str
    reviews: list[ReviewEntry]


class ApprovedAction(ApiModel):
    """Exactly what the agent may run once it may proceed: the proposed
    action, or the amendment the reviewers approved. The approval token,
    redemption and receipts bind it."""

    tool_name: str
    subject: str
    payload: JsonObject
    action_hash: str
    amended: bool
    """True when reviewers approved a changed payload."""


class SubmittedRequest(ApiModel):
    """The request as it was submitted, in the Gate API's names."""

    workflow_name: str
    tool_name: str
    subject: str
    risk_level: Risk
    task_id: str | None = None
    task_label: str | None = None
    preview: str | None = None
    summary: list[str] = Field(default_factory=list)
    payload: JsonObject = Field(default_factory=dict)
    question: str | None = None
    context: JsonObject | None = None


class GateView(SubmittedRequest):
    """A decision in the Gate API's shape: what ``request``, ``get`` and
    ``wait_for`` return. ``may_proceed`` is true only for ``allow`` and
    ``approved``."""

    id: str
    status: Status
    verdict: Verdict
    may_proceed: bool
    reasons: list[str]
    evidence: list[Reason]
    policy_version: str
    created_at: str
    review_deadline: str | None = None
    review: ReviewView | None = None
    resolved_at: str | None = None
    record_hash: str
    log_index: int | None = Field(default=None, ge=0)
    receipt_hash: str
    decision_url: str
    flagged_for_review: str | None = None
    approval_token: str | None = None
    review_progress: ReviewProgress | None = None
    approved_action: ApprovedAction | None = None


class DecisionList(ApiModel):
    items: list[GateView]
    next_before: str | None = None


class Requirement(ApiModel):
    """One requirement of a review rule: ``quorum`` distinct approvers from ``groups``."""

    __serde_skip__ = {"escalate_to": "none", "escalate_at": "none", "policy_id": "none"}

    groups: list[str]
    quorum: int = Field(ge=0)
    escalate_to: str | None = None
    escalate_at: str | None = None
    policy_id: str | None = None


class ReviewRule(ApiModel):
    """Who must approve a pending decision, fixed when it was created."""

    requester: str
    requirements: list[Requirement]


class DecisionRecord(ApiModel):
    """The hashed body of a Decision Record v1: ``record_hash`` is SHA-256 of
    its canonical JSON."""

    __serde_skip__ = {
        "question": "none",
        "source_record_id": "none",
        "owner_rule": "none",
        "caller_evidence": "empty",
        "review_deadline": "none",
        "review_rule": "none",
    }

    record_version: str
    request_id: str
    decision_id: str
    verdict: str
    action: str
    requested_action: str
    action_hash: str
    workflow: str
    subject: str
    question: str | None = None
    source_record_id: str | None = None
    owner_rule: str | None = None
    evidence: list[Reason]
    caller_evidence: list[JsonValue] = Field(default_factory=list)
    policy_version: str
    context: JsonValue
    created_at: str
    review_deadline: str | None = None
    review_rule: ReviewRule | None = None


class RecordView(DecisionRecord):
    """A Decision Record with its current state: what ``decide`` and ``record`` return."""

    record_hash: str
    log_index: int | None = Field(default=None, ge=0)
    receipt_hash: str
    checkpoint: str | None = None
    verify_url: str
    replay_url: str
    approval_token: str | None = None
    flagged_for_review: str | None = None
    status: Status
    review: ReviewView | None = None
    resolved_at: str | None = None
    request: SubmittedRequest | None = None
    review_progress: ReviewProgress | None = None
    approved_action: ApprovedAction | None = None


class VerdictView(ApiModel):
    verdict: Verdict
    reasons: list[Reason]


class ReplayView(ApiModel):
    """A stored decision evaluated again."""

    decision_id: str
    matches: bool
    policy_version: str
    replayed_policy_version: str
    original: VerdictView
    replayed: VerdictView
