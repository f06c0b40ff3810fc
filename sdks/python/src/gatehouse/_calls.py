"""Every API call the clients make, described once (method, path, body,
answer model). ``tests/test_openapi_models.py`` checks each against the
OpenAPI document's paths."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel

from ._core import ActionLike, Call, action_body, body, json_object, path
from .models import (
    ConsistencyProofView,
    DecideBody,
    DecideContext,
    DecisionList,
    EventBody,
    EventList,
    ExecutionBody,
    ExecutionsView,
    GateBody,
    GateView,
    Health,
    InclusionProofView,
    JsonValue,
    Jwks,
    OutcomeBody,
    OutcomeCreated,
    OutcomeStatus,
    Packet,
    PoliciesParam,
    Ready,
    ReceiptCreated,
    RecordView,
    RedeemBody,
    Redeemed,
    ReplayView,
    ReviewBody,
    ReviewChoice,
    Risk,
    SdkGateBody,
    Status,
    TaskEvent,
    VerifyView,
    WhoAmI,
)

T = TypeVar("T")


@dataclass(frozen=True)
class Route:
    """One endpoint: method, path template, request body model, answer model."""

    method: str
    path: str
    request: type[BaseModel] | None
    response: type[Any]


ROUTES: dict[str, Route] = {
    "gate_request": Route("POST", "/api/gate/requests", SdkGateBody, GateView),
    "task_request": Route("POST", "/api/agent/tasks/{task_id}/requests", GateBody, GateView),
    "task_event": Route("POST", "/api/agent/tasks/{task_id}/events", EventBody, TaskEvent),
    "task_events": Route("GET", "/api/agent/tasks/{task_id}/events", None, EventList),
    "decide": Route("POST", "/api/decide", DecideBody, RecordView),
    "get": Route("GET", "/api/gate/requests/{id}", None, GateView),
    "record": Route("GET", "/api/decision/{id}", None, RecordView),
    "review": Route("POST", "/api/gate/requests/{id}/review", ReviewBody, GateView),
    "redeem": Route("POST", "/api/tokens/redeem", RedeemBody, Redeemed),
    "report_execution": Route("POST", "/api/gate/requests/{id}/executions", ExecutionBody, ReceiptCreated),
    "report_outcome": Route("POST", "/api/gate/requests/{id}/outcomes", OutcomeBody, OutcomeCreated),
    "executions": Route("GET", "/api/gate/requests/{id}/executions", None, ExecutionsView),
    "packet": Route("GET", "/api/decision/{id}/packet", None, Packet),
    "verify": Route("GET", "/api/decision/{id}/verify", None, VerifyView),
    "replay": Route("GET", "/api/decision/{id}/replay", None, ReplayView),
    "list_decisions": Route("GET", "/api/decisions", None, DecisionList),
    "jwks": Route("GET", "/.well-known/jwks.json", None, Jwks),
    "log_key": Route("GET", "/api/log/key", None, str),
    "checkpoint": Route("GET", "/api/log/checkpoint", None, str),
    "inclusion_proof": Route("GET", "/api/log/proof/inclusion", None, InclusionProofView),
    "consistency_proof": Route("GET", "/api/log/proof/consistency", None, ConsistencyProofView),
    "whoami": Route("GET", "/api/whoami", None, WhoAmI),
    "health": Route("GET", "/healthz", None, Health),
    "ready": Route("GET", "/readyz", None, Ready),
}
"""Every endpoint the clients call; the model check compares each with the
OpenAPI document's paths (method, request body and answer schemas)."""


def _call(route: str, response: type[T], *, ids: dict[str, str] | None = None, **options: Any) -> Call[T]:
    r = ROUTES[route]
    assert r.response is response, f"{route} answers {r.response}, not {response}"
    return Call(r.method, path(r.path, **(ids or {})), response, **options)


def _idempotency(key: str | None) -> dict[str, str]:
    return {"Idempotency-Key": key} if key is not None else {}


def gate_request(
    *,
    agent: str,
    action: str,
    risk: Risk,
    subject: str,
    context: Mapping[str, Any] | None,
    task_id: str | None,
    idempotency_key: str | None,
    summary: Sequence[str] | None,
    owner: str | None,
    callback_url: str | None,
) -> Call[GateView]:
    b = body(
        SdkGateBody,
        agent=agent,
        action=action,
        risk=risk,
        subject=subject,
        context=None if context is None else json_object(context, "context"),
        task_id=task_id,
        summary=None if summary is None else list(summary),
        owner=owner,
        callback_url=callback_url,
        idempotency_key=idempotency_key,
    )
    # The key travels as the Idempotency-Key header (the body field means
    # the same; sending it once avoids any doubt about which one counts).
    return _call(
        "gate_request",
        GateView,
        body=b.model_copy(update={"idempotency_key": None}),
        headers=_idempotency(idempotency_key),
        retry_safe=idempotency_key is not None,
    )


def task_request(
    task_id: str,
    *,
    workflow_name: str,
    tool_name: str,
    subject: str,
    risk_level: Risk,
    payload: Mapping[str, Any] | None,
    task_label: str | None,
    preview: str | None,
    summary: Sequence[str] | None,
    owner: str | None,
    callback_url: str | None,
    idempotency_key: str | None,
) -> Call[GateView]:
    b = body(
        GateBody,
        workflow_name=workflow_name,
        tool_name=tool_name,
        subject=subject,
        risk_level=risk_level,
        payload=None if payload is None else json_object(payload, "payload"),
        task_label=task_label,
        preview=preview,
        summary=None if summary is None else list(summary),
        owner=owner,
        callback_url=callback_url,
        idempotency_key=idempotency_key,
    )
    return _call(
        "task_request",
        GateView,
        ids={"task_id": task_id},
        body=b.model_copy(update={"idempotency_key": None}),
        headers=_idempotency(idempotency_key),
        retry_safe=idempotency_key is not None,
    )


def task_event(
    task_id: str, *, kind: str, message: str | None, decision_id: str | None, data: JsonValue
) -> Call[TaskEvent]:
    b = body(EventBody, kind=kind, message=message, decision_id=decision_id, data=data)
    return _call("task_event", TaskEvent, ids={"task_id": task_id}, body=b)


def task_events(task_id: str) -> Call[EventList]:
    return _call("task_events", EventList, ids={"task_id": task_id}, retry_safe=True)


def decide(
    *,
    question: str,
    context: DecideContext | Mapping[str, Any],
    idempotency_key: str | None,
    callback_url: str | None,
) -> Call[RecordView]:
    ctx = context.model_dump(exclude_none=True) if isinstance(context, DecideContext) else json_object(
        context, "context"
    )
    b = body(DecideBody, question=question, context=ctx, callback_url=callback_url, idempotency_key=idempotency_key)
    return _call(
        "decide",
        RecordView,
        body=b.model_copy(update={"idempotency_key": None}),
        headers=_idempotency(idempotency_key),
        retry_safe=idempotency_key is not None,
    )


def get(decision_id: str, wait: int | None = None) -> Call[GateView]:
    params = {"wait": wait} if wait is not None else {}
    return _call(
        "get",
        GateView,
        ids={"id": decision_id},
        params=params,
        retry_safe=True,
        long_poll=float(wait or 0),
    )


def record(decision_id: str) -> Call[RecordView]:
    return _call("record", RecordView, ids={"id": decision_id}, retry_safe=True)


def review(
    decision_id: str, decision: ReviewChoice, *, comment: str | None, amended_payload: Mapping[str, Any] | None
) -> Call[GateView]:
    b = body(
        ReviewBody,
        decision=decision,
        comment=comment,
        amended_payload=None if amended_payload is None else json_object(amended_payload, "amended_payload"),
    )
    return _call("review", GateView, ids={"id": decision_id}, body=b)


def redeem(token: str, action: ActionLike) -> Call[Redeemed]:
    b = body(RedeemBody, token=token, action=action_body(action))
    return _call("redeem", Redeemed, body=b)


def report_execution(
    decision_id: str,
    *,
    target_system: str,
    target_object: str,
    mutation: str,
    executor: str,
    action: ActionLike | None,
    token: str | None,
    token_jti: str | None,
    state_before_hash: str | None,
    state_after_hash: str | None,
) -> Call[ReceiptCreated]:
    b = body(
        ExecutionBody,
        target_system=target_system,
        target_object=target_object,
        mutation=mutation,
        executor=executor,
        action=None if action is None else action_body(action),
        token=token,
        token_jti=token_jti,
        state_before_hash=state_before_hash,
        state_after_hash=state_after_hash,
    )
    return _call("report_execution", ReceiptCreated, ids={"id": decision_id}, body=b)


def report_outcome(
    decision_id: str,
    *,
    status: OutcomeStatus,
    action_taken: str,
    observed_metrics: JsonValue,
    target_system: str | None,
) -> Call[OutcomeCreated]:
    b = body(
        OutcomeBody,
        status=status,
        action_taken=action_taken,
        observed_metrics=observed_metrics,
        target_system=target_system,
    )
    return _call("report_outcome", OutcomeCreated, ids={"id": decision_id}, body=b)


def executions(decision_id: str) -> Call[ExecutionsView]:
    return _call("executions", ExecutionsView, ids={"id": decision_id}, retry_safe=True)


def packet(decision_id: str) -> Call[Packet]:
    return _call("packet", Packet, ids={"id": decision_id}, retry_safe=True)


def verify(decision_id: str) -> Call[VerifyView]:
    return _call("verify", VerifyView, ids={"id": decision_id}, retry_safe=True)


def replay(decision_id: str, policies: PoliciesParam | None) -> Call[ReplayView]:
    params = {"policies": policies} if policies is not None else {}
    return _call("replay", ReplayView, ids={"id": decision_id}, params=params, retry_safe=True)


def list_decisions(
    *, status: Status | None, task_id: str | None, before: str | None, limit: int | None
) -> Call[DecisionList]:
    params: dict[str, Any] = {
        k: v for k, v in {"status": status, "task_id": task_id, "before": before, "limit": limit}.items() if v is not None
    }
    return _call("list_decisions", DecisionList, params=params, retry_safe=True)


def jwks() -> Call[Jwks]:
    return _call("jwks", Jwks, retry_safe=True)


def log_key() -> Call[str]:
    return _call("log_key", str, retry_safe=True)


def checkpoint() -> Call[str]:
    return _call("checkpoint", str, retry_safe=True)


def inclusion_proof(index: int, size: int) -> Call[InclusionProofView]:
    return _call("inclusion_proof", InclusionProofView, params={"index": index, "size": size}, retry_safe=True)


def consistency_proof(from_size: int, to_size: int) -> Call[ConsistencyProofView]:
    return _call(
        "consistency_proof", ConsistencyProofView, params={"from": from_size, "to": to_size}, retry_safe=True
    )


def whoami() -> Call[WhoAmI]:
    return _call("whoami", WhoAmI, retry_safe=True)


def health() -> Call[Health]:
    return _call("health", Health, retry_safe=True)


def ready() -> Call[Ready]:
    return _call("ready", Ready, retry_safe=True)
