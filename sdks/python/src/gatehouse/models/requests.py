"""Request bodies, one model per OpenAPI request schema (same name, same
fields, same constraints; ``tests/test_openapi_models.py`` holds them to it)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field, JsonValue, StringConstraints

from ._base import (
    JWT_PATTERN,
    JsonObject,
    Key,
    LongText,
    Name,
    OutcomeStatus,
    RequestModel,
    ReviewChoice,
    Risk,
    Text,
)

__all__ = [
    "SdkGateBody",
    "GateBody",
    "DecideBody",
    "DecideContext",
    "ReviewBody",
    "ActionBody",
    "RedeemBody",
    "ExecutionBody",
    "OutcomeBody",
    "EventBody",
]

Summary = Annotated[list[LongText], Field(max_length=50)]
EventKind = Annotated[
    str, StringConstraints(min_length=1, max_length=100, pattern=r"^[^\u0000]*[^\s\u0000][^\u0000]*$")
]
Jwt = Annotated[str, StringConstraints(pattern=JWT_PATTERN)]


class SdkGateBody(RequestModel):
    """``POST /api/gate/requests``: a Gate request in the SDK's field names."""

    agent: Name
    action: Name
    risk: Risk
    subject: Name
    context: JsonObject | None = None
    """The action's arguments (the payload): policies see them as ``context.payload``."""
    task_id: Name | None = None
    summary: Summary | None = None
    owner: Name | None = None
    callback_url: Text | None = None
    idempotency_key: Key | None = None


class GateBody(RequestModel):
    """``POST /api/agent/tasks/{task_id}/requests``: the Gate API's request."""

    workflow_name: Name
    task_label: LongText | None = None
    tool_name: Name
    subject: Name
    preview: LongText | None = None
    risk_level: Risk
    summary: Summary | None = None
    payload: JsonObject | None = None
    owner: Name | None = None
    callback_url: Text | None = None
    idempotency_key: Key | None = None


class DecideContext(RequestModel):
    """The ``context`` of a Decide request. Fields beyond the named ones are
    guardrail fields: the payload the policies see."""

    # Guardrail fields are arbitrary JSON members beside the named ones.
    model_config = ConfigDict(extra="allow")

    workflow: Name
    requested_action: Name
    source_record_id: Name | None = None
    task_id: Name | None = None
    owner_rule: Text | None = None
    risk: Risk | None = None
    evidence: list[JsonValue] | None = None


class DecideBody(RequestModel):
    """``POST /api/decide``: the Decide API's request."""

    question: LongText
    mode: Literal["single"] | None = None
    context: DecideContext
    callback_url: Text | None = None
    idempotency_key: Key | None = None


class ReviewBody(RequestModel):
    """``POST /api/gate/requests/{id}/review``: approve, approve with changes, or reject."""

    decision: ReviewChoice
    comment: LongText | None = None
    amended_payload: JsonObject | None = None
    """Approve with changes: the payload approved instead of the proposed one."""


class ActionBody(RequestModel):
    """An action: what is about to run, or what ran."""

    tool_name: Text
    subject: Text
    payload: JsonObject | None = None


class RedeemBody(RequestModel):
    """``POST /api/tokens/redeem``."""

    token: Jwt
    action: ActionBody


class ExecutionBody(RequestModel):
    """``POST /api/gate/requests/{id}/executions``: what an executor did."""

    target_system: Text
    target_object: Text
    mutation: Text
    executor: Text
    state_before_hash: Text | None = None
    state_after_hash: Text | None = None
    token_jti: Text | None = None
    token: Text | None = None
    action: ActionBody | Text | None = None
    tool_name: Text | None = None
    subject: Text | None = None
    payload: JsonObject | None = None


class OutcomeBody(RequestModel):
    """``POST /api/gate/requests/{id}/outcomes``: what came of the action."""

    status: OutcomeStatus
    action_taken: LongText
    observed_metrics: JsonValue = None
    target_system: Text | None = None


class EventBody(RequestModel):
    """``POST /api/agent/tasks/{task_id}/events``: what happened around a task."""

    kind: EventKind
    message: LongText | None = None
    decision_id: Text | None = None
    data: JsonValue = None
