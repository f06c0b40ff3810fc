"""Small answers: identity, health, task events, and the error body."""

from __future__ import annotations

from pydantic import JsonValue

from ._base import ApiModel, Role
from .decisions import Reason

__all__ = ["WhoAmI", "Health", "Ready", "TaskEvent", "EventList", "ErrorDetail", "ErrorBody"]


class WhoAmI(ApiModel):
    key_id: str
    name: str
    role: Role


class Health(ApiModel):
    status: str


class Ready(ApiModel):
    status: str
    policy_version: str
    policies: int


class TaskEvent(ApiModel):
    id: str
    task_id: str
    decision_id: str | None = None
    kind: str
    message: str | None = None
    data: JsonValue = None
    created_by: str
    created_at: str


class EventList(ApiModel):
    items: list[TaskEvent]


class ErrorDetail(ApiModel):
    code: str
    message: str
    reasons: list[Reason] | None = None
    request_id: str | None = None


class ErrorBody(ApiModel):
    """``{"error": {"code", "message", "request_id"}}``: every error the server sends."""

    error: ErrorDetail
