"""``gate.guard(...)`` against the real server, sync and async: the block
runs only when allowed or approved, with the approved arguments, after the
token is redeemed; receipts and outcomes are recorded; everything else
raises and the block never runs."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import BaseModel

from conftest import AGENT, REVIEWER, review_when_pending, unique
from gatehouse import (
    AsyncGatehouse,
    Gatehouse,
    GateRequestError,
    GatePending,
    GateRejected,
    GateReportFailed,
    GateUnavailable,
    GuardRun,
    action_hash,
)
from gateserver import Server
from test_client import closed_port_url


class Calls:
    """Records whether, and with what, the guarded block ran."""

    def __init__(self, effect: Callable[[GuardRun], Any] | None = None) -> None:
        self.seen: list[dict[str, Any]] = []
        self.decisions: list[str] = []
        self.effect = effect

    def __call__(self, run: GuardRun) -> Any:
        self.seen.append(dict(run.args))
        self.decisions.append(run.decision_id)
        return self.effect(run) if self.effect else "done"


def guarded(kind: str, url: str, key: str, block: Calls, **kwargs: Any) -> GuardRun:
    """Runs ``block`` inside ``gate.guard(**kwargs)`` with a client of this kind."""
    if kind == "sync":
        with Gatehouse(url, api_key=key) as gate:
            with gate.guard(**kwargs) as run:
                run.result = block(run)
            return run

    async def main() -> GuardRun:
        async with AsyncGatehouse(url, api_key=key) as gate:
            async with gate.guard(**kwargs) as run:
                run.result = block(run)
            return run

    return asyncio.run(main())


def refund(subject: str, amount: int, **extra: Any) -> dict[str, Any]:
    return dict(agent="billing", action="issue_refund", risk="high", subject=subject,
                args={"amount": amount, "currency": "usd"}, **extra)


def reported(server: Server, decision_id: str) -> Any:
    with Gatehouse(server.url, api_key=server.keys[REVIEWER]) as gate:
        return gate.executions(decision_id)


def test_allow_runs_redeems_and_reports(server: Server, kind: str) -> None:
    block, subject = Calls(), unique()
    run = guarded(kind, server.url, server.keys[AGENT], block, **refund(subject, 500), target_system="stripe")
    assert block.seen == [{"amount": 500, "currency": "usd"}]
    assert (run.decision.status, run.amended, run.redemption.redeemed) == ("allow", False, True)
    seen = reported(server, run.decision_id)
    (receipt,) = seen.executions
    assert receipt.receipt.token_jti == run.redemption.jti and receipt.receipt.target_system == "stripe"
    assert receipt.receipt.action_hash == action_hash("issue_refund", subject, {"amount": 500, "currency": "usd"})
    assert [o.outcome.status for o in seen.outcomes] == ["succeeded"]


def test_reject_never_runs(server: Server, kind: str) -> None:
    block = Calls()
    with pytest.raises(GateRejected) as e:
        guarded(kind, server.url, server.keys[AGENT], block, **refund(unique(), 0))
    assert block.seen == [] and e.value.status == "reject"
    assert "positive" in str(e.value)


def test_pending_then_approved_while_waiting(server: Server, kind: str) -> None:
    block, subject = Calls(), unique()
    review_when_pending(server, subject, delay=1.0, comment="fine")
    run = guarded(kind, server.url, server.keys[AGENT], block, **refund(subject, 50000), wait_timeout=20)
    assert block.seen == [{"amount": 50000, "currency": "usd"}]
    assert run.decision.status == "approved" and not run.amended
    assert [o.outcome.status for o in reported(server, run.decision_id).outcomes] == ["succeeded"]


def test_approved_with_changes_runs_the_amended_arguments(server: Server, kind: str) -> None:
    block, subject = Calls(), unique()
    amended = {"amount": 20000, "currency": "usd"}
    review_when_pending(server, subject, amended_payload=amended, comment='{"amount": 1}')
    run = guarded(kind, server.url, server.keys[AGENT], block, **refund(subject, 50000), wait_timeout=20)
    assert block.seen == [amended] and run.args == amended and run.amended
    (receipt,) = reported(server, run.decision_id).executions
    assert receipt.receipt.action_hash == action_hash("issue_refund", subject, amended)


def test_rejected_by_the_reviewer_while_waiting(server: Server, kind: str) -> None:
    block, subject = Calls(), unique()
    review_when_pending(server, subject, "reject", comment="no")
    with pytest.raises(GateRejected) as e:
        guarded(kind, server.url, server.keys[AGENT], block, **refund(subject, 50000), wait_timeout=20)
    assert block.seen == [] and e.value.status == "rejected"


def test_wait_running_out_is_pending_and_never_runs(server: Server, kind: str) -> None:
    block, subject = Calls(), unique()
    started = time.monotonic()
    with pytest.raises(GatePending) as e:
        guarded(kind, server.url, server.keys[AGENT], block, **refund(subject, 50000), wait_timeout=1.5)
    assert block.seen == [] and 1.0 <= time.monotonic() - started < 10
    with Gatehouse(server.url, api_key=server.keys[REVIEWER]) as gate:
        assert gate.record(e.value.decision_id).status == "pending_review"
    with pytest.raises(GatePending):
        guarded(kind, server.url, server.keys[AGENT], block, **refund(unique(), 50000), wait_timeout=0)
    assert block.seen == []


def test_server_down_never_runs(kind: str) -> None:
    block = Calls()
    with pytest.raises(GateUnavailable):
        guarded(kind, closed_port_url(), "key", block, **refund(unique(), 500))
    assert block.seen == []


def test_rate_limited_never_runs(server_with: Callable[..., Server], kind: str) -> None:
    s = server_with("--rate-limit", "1", "--rate-burst", "1")
    with Gatehouse(s.url, api_key=s.keys[AGENT]) as gate:
        gate.whoami()  # spends the one request the bucket holds
    block = Calls()
    with pytest.raises(GateUnavailable) as e:
        guarded(kind, s.url, s.keys[AGENT], block, **refund(unique(), 500))
    assert block.seen == [] and e.value.status_code == 429


def test_a_failing_action_is_reported_and_raised_again(server: Server, kind: str) -> None:
    def boom(run: GuardRun) -> None:
        raise RuntimeError("card declined")

    block = Calls(boom)
    with pytest.raises(RuntimeError, match="card declined"):
        guarded(kind, server.url, server.keys[AGENT], block, **refund(unique(), 700))
    assert len(block.seen) == 1
    seen = reported(server, block.decisions[0])
    (outcome,) = seen.outcomes
    assert outcome.outcome.status == "failed" and "card declined" in outcome.outcome.action_taken
    assert outcome.outcome.observed_metrics == {"error_type": "RuntimeError", "error": "card declined"}
    assert len(seen.executions) == 1


def test_a_retry_with_the_same_key_picks_up_the_approval(server: Server, kind: str) -> None:
    subject, key = unique(), unique("idem")
    block = Calls()
    with pytest.raises(GatePending) as e:
        guarded(kind, server.url, server.keys[AGENT], block, **refund(subject, 50000), idempotency_key=key,
                wait_timeout=0)
    review_when_pending(server, subject, delay=0).join()
    run = guarded(kind, server.url, server.keys[AGENT], block, **refund(subject, 50000), idempotency_key=key)
    assert run.decision_id == e.value.decision_id and block.seen == [{"amount": 50000, "currency": "usd"}]
    # Once redeemed, the same request can never run the action again.
    with pytest.raises(GateRequestError) as again:
        guarded(kind, server.url, server.keys[AGENT], block, **refund(subject, 50000), idempotency_key=key)
    assert (again.value.status_code, again.value.code) == (409, "token_already_redeemed")
    assert len(block.seen) == 1


def test_a_model_argument_comes_back_validated(server: Server, kind: str) -> None:
    class Refund(BaseModel):
        amount: int
        currency: str

    block = Calls()
    run = guarded(kind, server.url, server.keys[AGENT], block, agent="billing", action="issue_refund", risk="low",
                  subject=unique(), args=Refund(amount=300, currency="eur"))
    assert run.model == Refund(amount=300, currency="eur") and block.seen == [{"amount": 300, "currency": "eur"}]


def test_a_report_that_fails_after_the_action_ran_keeps_its_result(
    server_with: Callable[..., Server], kind: str
) -> None:
    # Tokens live three seconds here: long enough to be redeemed on a busy CI
    # machine, and a receipt after that is refused (409), so the action ran
    # but cannot be recorded.
    s = server_with("--rate-limit", "0", "--token-ttl", "3s")
    block = Calls(lambda run: (time.sleep(4), "refund re_9")[1])
    with pytest.raises(GateReportFailed) as e:
        guarded(kind, s.url, s.keys[AGENT], block, **refund(unique(), 500))
    assert e.value.result == "refund re_9" and len(block.seen) == 1
    assert isinstance(e.value.cause, GateRequestError) and e.value.cause.code == "execution_refused"

    def slow_failure(run: GuardRun) -> None:
        time.sleep(4)
        raise ValueError("timeout at the bank")

    with pytest.raises(ValueError, match="timeout at the bank") as failed:
        guarded(kind, s.url, s.keys[AGENT], Calls(slow_failure), **refund(unique(), 500))
    assert any("reporting the failure" in n for n in getattr(failed.value, "__notes__", []))
