"""Evidence: approval tokens, execution receipts, outcomes, Decision
Packets, the transparency log's proofs, and the server's own checks."""

from __future__ import annotations

from pydantic import Field, JsonValue

from ._base import ApiModel, JsonObject, OutcomeStatus, ReviewChoice
from .decisions import DecisionRecord

__all__ = [
    "Redeemed",
    "ExecutionReceipt",
    "ReceiptCreated",
    "ReceiptItem",
    "OutcomeRecord",
    "OutcomeCreated",
    "OutcomeItem",
    "ExecutionsView",
    "PacketRequest",
    "PacketReview",
    "TokenSummary",
    "PolicyText",
    "ChainEntry",
    "AuditChain",
    "PolicyIntelligence",
    "Packet",
    "Check",
    "VerifyView",
    "InclusionProofView",
    "ConsistencyProofView",
    "Jwks",
]

U64 = Field(ge=0, lt=2**64)


class Redeemed(ApiModel):
    """An approval token redeemed, once, for the action about to run."""

    redeemed: bool
    decision_id: str
    jti: str
    action_hash: str
    log_index: int = U64


class ExecutionReceipt(ApiModel):
    """Action Execution Receipt: what was attempted against the target system."""

    __serde_skip__ = {"state_before_hash": "none", "state_after_hash": "none", "token_jti": "none"}

    receipt_version: str
    execution_id: str
    decision_id: str
    target_system: str
    target_object: str
    mutation: str
    executor: str
    state_before_hash: str | None = None
    state_after_hash: str | None = None
    token_jti: str | None = None
    action_hash: str
    reported_by: str
    executed_at: str


class ReceiptCreated(ApiModel):
    receipt: ExecutionReceipt
    execution_hash: str
    log_index: int = U64


class ReceiptItem(ApiModel):
    execution_hash: str
    receipt: ExecutionReceipt


class OutcomeRecord(ApiModel):
    """Outcome Record: what came of the action."""

    __serde_skip__ = {"target_system": "none"}

    record_version: str
    outcome_id: str
    decision_id: str
    status: OutcomeStatus
    action_taken: str
    observed_metrics: JsonValue = None
    target_system: str | None = None
    reported_by: str
    reported_at: str


class OutcomeCreated(ApiModel):
    outcome: OutcomeRecord
    outcome_hash: str
    log_index: int = U64


class OutcomeItem(ApiModel):
    outcome_hash: str
    outcome: OutcomeRecord


class ExecutionsView(ApiModel):
    executions: list[ReceiptItem]
    outcomes: list[OutcomeItem]


class PacketRequest(ApiModel):
    """The action a decision is about: what its action hash binds."""

    workflow_name: str
    tool_name: str
    subject: str
    payload: JsonObject = Field(default_factory=dict)


class PacketReview(ApiModel):
    """One review, as its log entry records it."""

    __serde_skip__ = {
        "reviewer_name": "none",
        "comment": "none",
        "person": "none",
        "groups": "none",
        "action_hash": "none",
        "amended_payload": "none",
    }

    index: int = U64
    decision: ReviewChoice
    reviewer_key_id: str
    reviewer_name: str | None = None
    comment: str | None = None
    reviewed_at: str
    person: str | None = None
    groups: list[str] | None = None
    action_hash: str | None = None
    amended_payload: JsonObject | None = None


class TokenSummary(ApiModel):
    """An approval token's claims and key id (never the token itself)."""

    kid: str
    claims: JsonValue


class PolicyText(ApiModel):
    id: str
    text: str


class ChainEntry(ApiModel):
    """One log entry: its exact leaf bytes (base64) and inclusion proof."""

    index: int = U64
    leaf: str
    proof: list[str]


class AuditChain(ApiModel):
    checkpoint: str
    """One signed checkpoint every entry is proven against."""
    entries: list[ChainEntry]


class PolicyIntelligence(ApiModel):
    __serde_skip__ = {"entry": "none"}

    policy_version: str
    policies: list[PolicyText]
    entry: ChainEntry | None = None


class Packet(ApiModel):
    """A Decision Packet (``decision-packet/v2``): everything about one
    decision, with the exact log entries and proofs to one signed
    checkpoint. Check it offline with :func:`gatehouse.verify_packet`."""

    __serde_skip__ = {"request": "none", "approved_action_hash": "none", "packet_hash": "empty"}

    packet_version: str
    decision_id: str
    record: DecisionRecord
    record_hash: str
    request: PacketRequest | None = None
    status: str
    reviews: list[PacketReview] = Field(default_factory=list)
    approved_action_hash: str | None = None
    token: TokenSummary | None = None
    executions: list[ExecutionReceipt] = Field(default_factory=list)
    outcomes: list[OutcomeRecord] = Field(default_factory=list)
    policy: PolicyIntelligence
    audit_chain: AuditChain
    unverified: JsonValue
    """Hints and anything the log cannot bind; verification never reads it."""
    packet_hash: str = ""


class Check(ApiModel):
    """One check of a Decision Packet: its name, whether it passed, and what was compared."""

    name: str
    ok: bool
    detail: str


class VerifyView(ApiModel):
    """The server's own run of the packet checks (trust an offline run more)."""

    decision_id: str
    valid: bool
    checks: list[Check]


class InclusionProofView(ApiModel):
    index: int = U64
    size: int = U64
    leaf: str
    leaf_hash: str
    proof: list[str]


class ConsistencyProofView(ApiModel):
    from_: int = Field(alias="from", ge=0, lt=2**64)
    to: int = U64
    proof: list[str]


class Jwks(ApiModel):
    """The public keys approval tokens are verified with (RFC 7517)."""

    keys: list[JsonObject]
