"""``gate.guard(...)``: ask, wait while pending, run only when approved.

The order is fixed, and every step fails closed:

1. submit the request (the arguments are its payload, so policies see
   ``context.payload.<arg>``);
2. if it is pending, long-poll for a reviewer's decision, at most
   ``wait_timeout`` seconds (:class:`GatePending` after that);
3. go on only on ``allow`` or ``approved`` (:class:`GateRejected` otherwise),
   with the approved action: the arguments a reviewer amended, if one did;
4. redeem the approval token for exactly those arguments (once, online);
5. run the block, then report the execution receipt and the outcome
   (``succeeded``, or ``failed`` with the error, which is raised again).

Any error in steps 1 to 4 (network, timeout, 429, 5xx, a refusal, an answer
that does not add up) raises before the block runs.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from ._core import json_object
from .errors import GateError, GateInvalidRequest, GatePending, GateRejected, GateReportFailed, GateProtocolError
from .hashing import raw_action_hash
from .models import ApprovedAction, GateView, JsonValue, OutcomeStatus, Redeemed, Risk

if TYPE_CHECKING:
    from .aclient import AsyncGatehouse
    from .client import Gatehouse

__all__ = ["Guard", "AsyncGuard", "GuardRun"]

DEFAULT_WAIT_TIMEOUT = 60.0


@dataclass
class GuardRun:
    """What the guarded block gets: the approved arguments and the evidence.

    Set the receipt fields (``target_object``, ``state_after_hash``, …) and
    ``observed_metrics`` inside the block to make the records more precise;
    set ``result`` to what the action returned, so a failed report does not
    lose it (see :class:`GateReportFailed`).
    """

    decision: GateView
    """The decision that permitted the action."""
    approved_action: ApprovedAction
    """Exactly what may run: the tool, subject, approved payload and its hash."""
    args: dict[str, Any]
    """The approved arguments: the payload reviewers approved (amended, if
    ``amended``), exactly what the token was redeemed for."""
    amended: bool
    redemption: Redeemed
    model: BaseModel | None = None
    """With ``args`` given as a Pydantic model: the approved arguments
    validated into that model again."""
    target_system: str = ""
    target_object: str = ""
    mutation: str = ""
    executor: str = ""
    state_before_hash: str | None = None
    state_after_hash: str | None = None
    action_taken: str | None = None
    observed_metrics: JsonValue = None
    result: Any = None
    reported: list[Any] = field(default_factory=list)
    """The receipt and outcome the server recorded, once reported."""

    @property
    def decision_id(self) -> str:
        return self.decision.id


class _GuardSpec:
    """The guard's arguments, checked once, and the steps that need no I/O."""

    def __init__(
        self,
        *,
        agent: str,
        action: str,
        risk: Risk,
        subject: str,
        args: Mapping[str, Any] | BaseModel | None,
        wait_timeout: float,
        task_id: str | None,
        idempotency_key: str | None,
        summary: Sequence[str] | None,
        owner: str | None,
        executor: str | None,
        target_system: str | None,
        mutation: str | None,
    ) -> None:
        if wait_timeout < 0:
            raise GateInvalidRequest("wait_timeout must not be negative")
        self.model_type: type[BaseModel] | None = None
        if isinstance(args, BaseModel):
            self.model_type = type(args)
            payload: dict[str, Any] = args.model_dump(mode="json", by_alias=True)
        else:
            payload = json_object(args if args is not None else {}, "args")
        self.payload = payload
        self.request_args: dict[str, Any] = dict(
            agent=agent,
            action=action,
            risk=risk,
            subject=subject,
            context=payload,
            task_id=task_id,
            idempotency_key=idempotency_key,
            summary=summary,
            owner=owner,
            callback_url=None,
        )
        self.agent, self.action, self.subject = agent, action, subject
        self.wait_timeout = wait_timeout
        self.executor = executor or agent
        self.target_system = target_system or agent
        self.mutation = mutation or action

    def judge(self, view: GateView) -> tuple[ApprovedAction, str]:
        """The approved action and approval token of a decision that permits
        it; raises otherwise."""
        if view.status == "pending_review":
            raise GatePending(view, self.wait_timeout)
        if not (view.may_proceed and view.status in ("allow", "approved")):
            raise GateRejected(view)
        approved = view.approved_action
        if approved is None or not view.approval_token:
            raise GateProtocolError(
                f"decision {view.id} is {view.status} but carries no approved action or approval token "
                "(is this key the one that asked?)"
            )
        # The server trims names; compare what it stored with what was asked.
        if approved.tool_name != self.action.strip() or approved.subject != self.subject.strip():
            raise GateProtocolError(
                f"decision {view.id} approves {approved.tool_name} on {approved.subject}, "
                f"not {self.action} on {self.subject}"
            )
        local = raw_action_hash(approved.tool_name, approved.subject, approved.payload)
        if local != approved.action_hash:
            raise GateProtocolError(
                f"the approved action of decision {view.id} hashes to {local}, not the {approved.action_hash} "
                "the server states"
            )
        return approved, view.approval_token

    def validated(self, view: GateView, approved: ApprovedAction) -> BaseModel | None:
        """The approved arguments in the caller's model, checked to be exactly
        the approved payload (a model that drops or changes fields would run
        something other than what was approved)."""
        if self.model_type is None:
            return None
        try:
            model = self.model_type.model_validate(approved.payload)
        except ValidationError as e:
            raise GateProtocolError(
                f"the approved arguments of decision {view.id} do not fit {self.model_type.__name__}: {e}"
            ) from None
        if model.model_dump(mode="json", by_alias=True) != approved.payload:
            raise GateProtocolError(
                f"the approved arguments of decision {view.id} change when validated into "
                f"{self.model_type.__name__}; refusing to run anything but the approved payload"
            )
        return model

    def run(self, view: GateView, approved: ApprovedAction, redeemed: Redeemed, model: BaseModel | None) -> GuardRun:
        if redeemed.decision_id != view.id or redeemed.action_hash != approved.action_hash or not redeemed.redeemed:
            raise GateProtocolError(f"the token redemption does not match decision {view.id}'s approved action")
        return GuardRun(
            decision=view,
            approved_action=approved,
            args=copy.deepcopy(approved.payload),
            amended=approved.amended,
            redemption=redeemed,
            model=model,
            target_system=self.target_system,
            target_object=self.subject,
            mutation=self.mutation,
            executor=self.executor,
        )

    def receipt_args(self, run: GuardRun) -> dict[str, Any]:
        return dict(
            target_system=run.target_system,
            target_object=run.target_object,
            mutation=run.mutation,
            executor=run.executor,
            action=run.approved_action,
            token=None,
            token_jti=run.redemption.jti,
            state_before_hash=run.state_before_hash,
            state_after_hash=run.state_after_hash,
        )

    def outcome_args(self, run: GuardRun, error: BaseException | None) -> dict[str, Any]:
        status: OutcomeStatus
        if error is None:
            status = "succeeded"
            taken = run.action_taken or f"{self.action} on {self.subject} succeeded"
            metrics = run.observed_metrics
        else:
            status = "failed"
            taken = run.action_taken or f"{self.action} on {self.subject} failed: {type(error).__name__}: {error}"
            metrics = {"error_type": type(error).__name__, "error": str(error)[:2000]}
            if run.observed_metrics is not None:
                metrics["observed"] = run.observed_metrics
        return dict(status=status, action_taken=taken[:4000], observed_metrics=metrics, target_system=run.target_system)

    def report_failed(self, run: GuardRun, error: BaseException | None, cause: GateError) -> None:
        """After a failed report: raise :class:`GateReportFailed` when the block
        succeeded; when it failed, note the report failure on its error,
        which propagates unchanged."""
        if error is None:
            raise GateReportFailed(run.decision_id, run.result, cause) from cause
        note = getattr(error, "add_note", None)
        if note is not None:
            note(f"gatehouse: reporting the failure of decision {run.decision_id} failed too: {cause}")


class Guard:
    """The context manager :meth:`Gatehouse.guard` returns; see the module doc."""

    def __init__(self, client: Gatehouse, spec: _GuardSpec) -> None:
        self._client = client
        self._spec = spec
        self._run: GuardRun | None = None

    def __enter__(self) -> GuardRun:
        spec, client = self._spec, self._client
        view = client.request(**spec.request_args)
        if view.status == "pending_review" and spec.wait_timeout > 0:
            view = client.wait_for(view.id, timeout=spec.wait_timeout)
        approved, token = spec.judge(view)
        model = spec.validated(view, approved)
        redeemed = client.redeem(token, approved)
        self._run = spec.run(view, approved, redeemed, model)
        return self._run

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        # Returns None: the block's own error always propagates.
        run, spec = self._run, self._spec
        if run is None:
            return
        try:
            run.reported.append(self._client.report_execution(run.decision_id, **spec.receipt_args(run)))
        except GateError as e:
            # Still record what came of it, then say the receipt failed.
            self._outcome(run, exc)
            spec.report_failed(run, exc, e)
            return
        try:
            self._outcome(run, exc, raise_errors=True)
        except GateError as e:
            spec.report_failed(run, exc, e)
            return

    def _outcome(self, run: GuardRun, exc: BaseException | None, raise_errors: bool = False) -> None:
        try:
            run.reported.append(self._client.report_outcome(run.decision_id, **self._spec.outcome_args(run, exc)))
        except GateError:
            if raise_errors:
                raise


class AsyncGuard:
    """The async context manager :meth:`AsyncGatehouse.guard` returns."""

    def __init__(self, client: AsyncGatehouse, spec: _GuardSpec) -> None:
        self._client = client
        self._spec = spec
        self._run: GuardRun | None = None

    async def __aenter__(self) -> GuardRun:
        spec, client = self._spec, self._client
        view = await client.request(**spec.request_args)
        if view.status == "pending_review" and spec.wait_timeout > 0:
            view = await client.wait_for(view.id, timeout=spec.wait_timeout)
        approved, token = spec.judge(view)
        model = spec.validated(view, approved)
        redeemed = await client.redeem(token, approved)
        self._run = spec.run(view, approved, redeemed, model)
        return self._run

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        run, spec = self._run, self._spec
        if run is None:
            return
        try:
            run.reported.append(await self._client.report_execution(run.decision_id, **spec.receipt_args(run)))
        except GateError as e:
            await self._outcome(run, exc)
            spec.report_failed(run, exc, e)
            return
        try:
            await self._outcome(run, exc, raise_errors=True)
        except GateError as e:
            spec.report_failed(run, exc, e)
            return

    async def _outcome(self, run: GuardRun, exc: BaseException | None, raise_errors: bool = False) -> None:
        try:
            run.reported.append(
                await self._client.report_outcome(run.decision_id, **self._spec.outcome_args(run, exc))
            )
        except GateError:
            if raise_errors:
                raise
