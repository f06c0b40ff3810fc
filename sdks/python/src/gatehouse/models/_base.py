"""Shared building blocks of the models: base classes, JSON types, the
closed vocabularies (statuses, verdicts, risks) and the string constraints
the OpenAPI document declares for requests."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, JsonValue, StringConstraints

__all__ = [
    "ApiModel",
    "RequestModel",
    "JsonValue",
    "JsonObject",
    "Status",
    "Verdict",
    "Risk",
    "ReviewChoice",
    "OutcomeStatus",
    "Role",
    "PoliciesParam",
]

JsonObject = dict[str, JsonValue]
"""A JSON object: the shape of every payload, context and amendment."""

Status = Literal["allow", "reject", "pending_review", "approved", "rejected", "expired"]
"""Where a decision stands now. Only ``allow`` and ``approved`` permit the action."""

Verdict = Literal["allow", "reject", "pending_review"]
"""What the policies said at decision time. Never changes afterwards."""

Risk = Literal["low", "medium", "high"]

ReviewChoice = Literal["approve", "reject"]

OutcomeStatus = Literal["succeeded", "failed", "review", "pending"]

Role = Literal["agent", "reviewer", "admin", "auditor", "executor"]

PoliciesParam = Literal["recorded", "current"]

# The patterns below are the OpenAPI document's, character for character
# (the model check compares them): a name has no control characters and is
# not blank; any other text holds no NUL, which PostgreSQL cannot store.
NAME_PATTERN = (
    r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$"
)
NO_NUL_PATTERN = r"^[^\u0000]*$"
JWT_PATTERN = r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$"

Name = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=NAME_PATTERN)]
"""An agent, action, subject, task or group name."""
Text = Annotated[str, StringConstraints(pattern=NO_NUL_PATTERN)]
LongText = Annotated[str, StringConstraints(max_length=4000, pattern=NO_NUL_PATTERN)]
Key = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=NO_NUL_PATTERN)]
"""An idempotency key."""


class ApiModel(BaseModel):
    """Base of every model the server sends.

    Unknown fields are kept (``model_extra``) rather than refused, so a newer
    server that adds a field does not break an older SDK. Types are strict
    (no "5" for 5), as the server's own readers are: an answer that does not
    have the documented types is refused, never guessed at.

    ``__serde_skip__`` names the fields the server leaves out of its JSON when
    they are empty (``"none"``: when null; ``"empty"``: when an empty list or
    string). The offline verifiers recompute hashes over exactly the JSON the
    server hashed, which depends on that.
    """

    model_config = ConfigDict(extra="allow", populate_by_name=True, strict=True)

    __serde_skip__: ClassVar[dict[str, str]] = {}


class RequestModel(BaseModel):
    """Base of every request body: unknown fields are refused, as the server refuses them."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
