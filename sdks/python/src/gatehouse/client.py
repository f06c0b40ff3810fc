"""The synchronous client, :class:`Gatehouse`."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel

from . import _calls
from ._core import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
    ActionLike,
    Call,
    base_headers,
    build_request,
    never_sent,
    normalize_url,
    parse_response,
    retry_delay,
    settings_from_env,
    transport_error,
)
from ._wait import WaitPlan
from .errors import GateError
from .guard import DEFAULT_WAIT_TIMEOUT, Guard, _GuardSpec
from .models import (
    ConsistencyProofView,
    DecideContext,
    DecisionList,
    EventList,
    ExecutionsView,
    GateView,
    Health,
    InclusionProofView,
    JsonValue,
    Jwks,
    OutcomeCreated,
    OutcomeStatus,
    Packet,
    PoliciesParam,
    Ready,
    ReceiptCreated,
    RecordView,
    Redeemed,
    ReplayView,
    ReviewChoice,
    Risk,
    Status,
    TaskEvent,
    VerifyView,
    WhoAmI,
)

__all__ = ["Gatehouse", "Task"]

T = TypeVar("T")


class Gatehouse:
    """A Gatehouse client.

    ``Gatehouse("https://gate.internal", api_key=KEY, timeout=10)``. Every
    method returns a typed model or raises a :class:`~gatehouse.GateError`;
    nothing is ever treated as approved by default. Reads, and requests
    sent with an idempotency key, are retried (at most ``max_retries``
    times) when the server is unavailable; other calls are retried only
    when they certainly never reached it.
    """

    def __init__(
        self,
        url: str,
        *,
        api_key: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        headers: Mapping[str, str] | None = None,
        http_client: httpx.Client | None = None,
    ) -> None:
        self.url = normalize_url(url)
        self.timeout = timeout
        self.max_retries = max_retries
        self._headers = base_headers(api_key, headers)
        self._owns_client = http_client is None
        self._http = http_client or httpx.Client(follow_redirects=False)

    @classmethod
    def from_env(cls, *, timeout: float = DEFAULT_TIMEOUT, max_retries: int = DEFAULT_MAX_RETRIES) -> Gatehouse:
        """A client for ``GATEHOUSE_URL`` (default ``http://127.0.0.1:8080``)
        with the key in ``GATEHOUSE_API_KEY``, as the ``gatehouse`` CLI reads them."""
        url, key = settings_from_env(None, None)
        return cls(url, api_key=key, timeout=timeout, max_retries=max_retries)

    # -- plumbing ---------------------------------------------------------

    def _send(self, call: Call[T]) -> T:
        attempt = 0
        while True:
            request = build_request(self._http, self.url, self._headers, call, self.timeout)
            sent = True
            try:
                response = self._http.send(request)
            except httpx.HTTPError as e:
                sent = not never_sent(e)
                error: GateError = transport_error(call, e)
            else:
                try:
                    return parse_response(call, response)
                except GateError as e:
                    error = e
            delay = retry_delay(call, error, attempt, self.max_retries, sent)
            if delay is None:
                raise error
            time.sleep(delay)
            attempt += 1

    def close(self) -> None:
        """Closes the connections (only those of an HTTP client this object made)."""
        if self._owns_client:
            self._http.close()

    def __enter__(self) -> Gatehouse:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- asking -----------------------------------------------------------

    def request(
        self,
        *,
        agent: str,
        action: str,
        risk: Risk,
        subject: str,
        context: Mapping[str, Any] | None = None,
        task_id: str | None = None,
        idempotency_key: str | None = None,
        summary: Sequence[str] | None = None,
        owner: str | None = None,
        callback_url: str | None = None,
    ) -> GateView:
        """Asks for a decision (``POST /api/gate/requests``). ``context`` is the
        action's arguments: the payload policies see as ``context.payload``
        and the approval token binds. The same ``idempotency_key`` with the
        same request returns the original decision."""
        return self._send(
            _calls.gate_request(
                agent=agent,
                action=action,
                risk=risk,
                subject=subject,
                context=context,
                task_id=task_id,
                idempotency_key=idempotency_key,
                summary=summary,
                owner=owner,
                callback_url=callback_url,
            )
        )

    def tasks(self, task_id: str) -> Task:
        """The Gate API for one task: requests and events under ``/api/agent/tasks/{task_id}``."""
        return Task(self, task_id)

    def decide(
        self,
        *,
        question: str,
        context: DecideContext | Mapping[str, Any],
        idempotency_key: str | None = None,
        callback_url: str | None = None,
    ) -> RecordView:
        """Asks a question of the Decide API (``POST /api/decide``); ``context``
        needs ``workflow`` and ``requested_action``. Returns the Decision Record."""
        return self._send(
            _calls.decide(
                question=question, context=context, idempotency_key=idempotency_key, callback_url=callback_url
            )
        )

    def get(self, decision_id: str) -> GateView:
        """The decision now (``GET /api/gate/requests/{id}``)."""
        return self._send(_calls.get(decision_id))

    def wait_for(self, decision_id: str, *, timeout: float = DEFAULT_WAIT_TIMEOUT) -> GateView:
        """Long-polls while the decision is ``pending_review``, for at most
        ``timeout`` seconds, across as many server long-polls as that takes
        (the server holds one for at most 60 s). Returns the decision as it
        then is, which may still be pending."""
        plan = WaitPlan(timeout, time.monotonic)
        while True:
            wait = plan.next_wait()
            view = self._send(_calls.get(decision_id, wait))
            if view.status != "pending_review" or plan.done(wait):
                return view
            time.sleep(plan.pause())

    def record(self, decision_id: str) -> RecordView:
        """The Decision Record with its current state (``GET /api/decision/{id}``)."""
        return self._send(_calls.record(decision_id))

    def guard(
        self,
        *,
        agent: str,
        action: str,
        risk: Risk,
        subject: str,
        args: Mapping[str, Any] | BaseModel | None = None,
        wait_timeout: float = DEFAULT_WAIT_TIMEOUT,
        task_id: str | None = None,
        idempotency_key: str | None = None,
        summary: Sequence[str] | None = None,
        owner: str | None = None,
        executor: str | None = None,
        target_system: str | None = None,
        mutation: str | None = None,
    ) -> Guard:
        """A context manager that runs its block only when the action is
        allowed or approved, with the approved arguments, after redeeming
        the approval token, and then records the receipt and outcome::

            with gate.guard(agent="billing", action="issue_refund", risk="high",
                            subject="cus_1", args={"amount": 500}) as run:
                refund(**run.args)

        ``args`` is the request's payload (a mapping, or a Pydantic model,
        whose approved arguments are then also in ``run.model``). See
        :mod:`gatehouse.guard` for the steps and the errors."""
        spec = _GuardSpec(
            agent=agent,
            action=action,
            risk=risk,
            subject=subject,
            args=args,
            wait_timeout=wait_timeout,
            task_id=task_id,
            idempotency_key=idempotency_key,
            summary=summary,
            owner=owner,
            executor=executor,
            target_system=target_system,
            mutation=mutation,
        )
        return Guard(self, spec)

    # -- reviewing --------------------------------------------------------

    def review(
        self,
        decision_id: str,
        decision: ReviewChoice,
        *,
        comment: str | None = None,
        amended_payload: Mapping[str, Any] | None = None,
    ) -> GateView:
        """Approves, approves with changes (``amended_payload``), or rejects a
        pending decision (reviewer keys only)."""
        return self._send(_calls.review(decision_id, decision, comment=comment, amended_payload=amended_payload))

    def list_decisions(
        self,
        *,
        status: Status | None = None,
        task_id: str | None = None,
        before: str | None = None,
        limit: int | None = None,
    ) -> DecisionList:
        """Decisions, newest first (reviewers, auditors, admins)."""
        return self._send(_calls.list_decisions(status=status, task_id=task_id, before=before, limit=limit))

    # -- executing and reporting -----------------------------------------

    def redeem(self, token: str, action: ActionLike) -> Redeemed:
        """Redeems an approval token, once, for the action about to run."""
        return self._send(_calls.redeem(token, action))

    def report_execution(
        self,
        decision_id: str,
        *,
        target_system: str,
        target_object: str,
        mutation: str,
        executor: str,
        action: ActionLike | None = None,
        token: str | None = None,
        token_jti: str | None = None,
        state_before_hash: str | None = None,
        state_after_hash: str | None = None,
    ) -> ReceiptCreated:
        """Reports an executed action (an Action Execution Receipt)."""
        return self._send(
            _calls.report_execution(
                decision_id,
                target_system=target_system,
                target_object=target_object,
                mutation=mutation,
                executor=executor,
                action=action,
                token=token,
                token_jti=token_jti,
                state_before_hash=state_before_hash,
                state_after_hash=state_after_hash,
            )
        )

    def report_outcome(
        self,
        decision_id: str,
        *,
        status: OutcomeStatus,
        action_taken: str,
        observed_metrics: JsonValue = None,
        target_system: str | None = None,
    ) -> OutcomeCreated:
        """Reports what came of the action (an Outcome Record)."""
        return self._send(
            _calls.report_outcome(
                decision_id,
                status=status,
                action_taken=action_taken,
                observed_metrics=observed_metrics,
                target_system=target_system,
            )
        )

    def executions(self, decision_id: str) -> ExecutionsView:
        """A decision's receipts and outcomes, in the order they were recorded."""
        return self._send(_calls.executions(decision_id))

    # -- evidence ---------------------------------------------------------

    def packet(self, decision_id: str) -> Packet:
        """The Decision Packet; check it offline with :func:`gatehouse.verify_packet`."""
        return self._send(_calls.packet(decision_id))

    def verify(self, decision_id: str) -> VerifyView:
        """The server's own run of the packet checks (an offline run with a
        log key you obtained yourself is the one to trust)."""
        return self._send(_calls.verify(decision_id))

    def replay(self, decision_id: str, *, policies: PoliciesParam | None = None) -> ReplayView:
        """Evaluates a stored decision again, under its own policy version
        (default) or the policies in force now (``policies="current"``)."""
        return self._send(_calls.replay(decision_id, policies))

    def jwks(self) -> Jwks:
        """The public keys approval tokens are verified with."""
        return self._send(_calls.jwks())

    def log_key(self) -> str:
        """The transparency log's verifier key (obtain it out of band too)."""
        return self._send(_calls.log_key()).strip()

    def checkpoint(self) -> str:
        """The newest signed checkpoint (a C2SP signed note)."""
        return self._send(_calls.checkpoint())

    def inclusion_proof(self, index: int, size: int) -> InclusionProofView:
        return self._send(_calls.inclusion_proof(index, size))

    def consistency_proof(self, from_size: int, to_size: int) -> ConsistencyProofView:
        return self._send(_calls.consistency_proof(from_size, to_size))

    # -- service ----------------------------------------------------------

    def whoami(self) -> WhoAmI:
        return self._send(_calls.whoami())

    def health(self) -> Health:
        return self._send(_calls.health())

    def ready(self) -> Ready:
        return self._send(_calls.ready())


class Task:
    """The Gate API for one task (``/api/agent/tasks/{task_id}``)."""

    def __init__(self, client: Gatehouse, task_id: str) -> None:
        self._client = client
        self.task_id = task_id

    def request(
        self,
        *,
        workflow_name: str,
        tool_name: str,
        subject: str,
        risk_level: Risk,
        payload: Mapping[str, Any] | None = None,
        task_label: str | None = None,
        preview: str | None = None,
        summary: Sequence[str] | None = None,
        owner: str | None = None,
        callback_url: str | None = None,
        idempotency_key: str | None = None,
    ) -> GateView:
        """Asks for a decision in the Gate API's names."""
        return self._client._send(
            _calls.task_request(
                self.task_id,
                workflow_name=workflow_name,
                tool_name=tool_name,
                subject=subject,
                risk_level=risk_level,
                payload=payload,
                task_label=task_label,
                preview=preview,
                summary=summary,
                owner=owner,
                callback_url=callback_url,
                idempotency_key=idempotency_key,
            )
        )

    def event(
        self, kind: str, *, message: str | None = None, decision_id: str | None = None, data: JsonValue = None
    ) -> TaskEvent:
        """Records something that happened around the task."""
        return self._client._send(
            _calls.task_event(self.task_id, kind=kind, message=message, decision_id=decision_id, data=data)
        )

    def events(self) -> EventList:
        """The task's events, in order."""
        return self._client._send(_calls.task_events(self.task_id))
