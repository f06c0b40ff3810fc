"""The SDK's exceptions. Every failure is a :class:`GateError`, and none of
them means "go ahead": a guarded action runs only after an explicit
``allow`` or ``approved`` and a successful token redemption."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .models import GateView, Reason

__all__ = [
    "GateError",
    "GateInvalidRequest",
    "GateRejected",
    "GatePending",
    "GateUnavailable",
    "GateRequestError",
    "GateProtocolError",
    "GateReportFailed",
    "TokenVerificationError",
]


class GateError(Exception):
    """Base of every SDK error."""


class GateInvalidRequest(GateError, ValueError):
    """The call's arguments do not fit the API; found before anything was
    sent (the server would refuse them too)."""


class GateRejected(GateError):
    """The decision does not permit the action: ``reject``, ``rejected`` or
    ``expired`` (an expired request counts as rejected)."""

    def __init__(self, decision: GateView) -> None:
        self.decision = decision
        self.decision_id = decision.id
        self.status = decision.status
        reasons = "; ".join(decision.reasons) or "no reason given"
        super().__init__(f"decision {decision.id} is {decision.status}: {reasons}")


class GatePending(GateError):
    """The decision is still ``pending_review`` when the wait ran out. The
    request stays open: a reviewer may still decide it, and the same call
    with the same idempotency key picks it up again."""

    def __init__(self, decision: GateView, waited: float) -> None:
        self.decision = decision
        self.decision_id = decision.id
        self.waited = waited
        super().__init__(
            f"decision {decision.id} is still pending review after waiting {waited:g}s"
        )


class _HttpError(GateError):
    """An error with the server's answer attached, when there was one."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        reasons: list[Reason] | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.status_code = status_code
        self.code = code
        self.request_id = request_id
        self.reasons = reasons or []
        self.retry_after = retry_after
        super().__init__(message)


class GateUnavailable(_HttpError):
    """Gatehouse could not give an answer: a network error, a timeout, 408,
    429 (``rate_limited``) or a 5xx. Nothing was approved; the call may be
    retried (``retry_after`` says when, if the server said)."""


class GateRequestError(_HttpError):
    """The server refused the call with a 4xx other than 408 and 429.
    ``code`` is the server's stable error code (``validation_failed``,
    ``forbidden``, ``token_already_redeemed``, …) and ``message`` its words."""


class GateProtocolError(GateError):
    """The server's answer is not what the API promises (not JSON, or not the
    documented shape), or not what was asked for (another decision, another
    action). Treated as a refusal."""


class GateReportFailed(GateError):
    """The guarded action ran, but its execution receipt or outcome could not
    be recorded. ``result`` is what the action returned, so a caller that
    catches this does not run the action again; ``cause`` is the error."""

    def __init__(self, decision_id: str, result: Any, cause: BaseException) -> None:
        self.decision_id = decision_id
        self.result = result
        self.cause = cause
        super().__init__(
            f"the action of decision {decision_id} ran, but reporting it failed: {cause}"
        )


class TokenVerificationError(GateError):
    """An approval token failed an offline check. ``check`` names which:
    ``malformed``, ``type``, ``unknown_key``, ``signature``, ``expired``,
    ``not_yet_valid``, ``audience`` or ``action``."""

    def __init__(self, check: str, message: str) -> None:
        self.check = check
        super().__init__(message)
