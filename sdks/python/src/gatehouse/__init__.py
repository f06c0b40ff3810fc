"""Gatehouse SDK: ask before acting, run only when approved, prove it.

>>> from gatehouse import Gatehouse
>>> gate = Gatehouse("http://127.0.0.1:8080", api_key="...")
>>> decision = gate.request(agent="billing-agent", action="issue_refund",
...                         risk="high", subject="cus_1", context={"amount": 500})
>>> decision.status, decision.id
"""

from __future__ import annotations

from ._version import __version__
from .aclient import AsyncGatehouse, AsyncTask
from .client import Gatehouse, Task
from .decorator import require_approval
from .errors import (
    GateError,
    GateInvalidRequest,
    GatePending,
    GateProtocolError,
    GateRejected,
    GateReportFailed,
    GateRequestError,
    GateUnavailable,
    TokenVerificationError,
)
from .guard import AsyncGuard, Guard, GuardRun
from .hashing import action_hash
from .jcs import canonical_json
from .models import Decision
from .packets import PacketReport, verify_packet
from .tokens import TokenClaims, verify_token

__all__ = [
    "__version__",
    "Gatehouse",
    "AsyncGatehouse",
    "Task",
    "AsyncTask",
    "Guard",
    "AsyncGuard",
    "GuardRun",
    "require_approval",
    "verify_token",
    "TokenClaims",
    "verify_packet",
    "PacketReport",
    "action_hash",
    "canonical_json",
    "Decision",
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
