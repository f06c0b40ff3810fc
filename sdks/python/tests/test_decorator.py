"""``@require_approval`` on functions that take a Pydantic model, sync and
async, with an explicit client and with the one built from the
environment."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict

from conftest import AGENT, REVIEWER, review_when_pending, unique
from gatehouse import (
    AsyncGatehouse,
    GateError,
    GateInvalidRequest,
    Gatehouse,
    GatePending,
    GateRejected,
    GateProtocolError,
    require_approval,
)
from gateserver import Server


class RefundRequest(BaseModel):
    customer_id: str
    amount: int
    currency: str = "usd"


class LenientRefund(BaseModel):
    """A model that drops fields it does not know."""

    model_config = ConfigDict(extra="ignore")
    customer_id: str
    amount: int


LOOP = asyncio.new_event_loop()


def refund_function(kind: str, gate: Any, received: list[Any], **options: Any) -> Callable[[Any], Any]:
    """``issue_refund`` guarded by the decorator, sync or async, called
    synchronously (an async one on one event loop, as an application would:
    an async client belongs to the loop it first ran on)."""
    settings: dict[str, Any] = dict(agent="refund-agent", risk="high", subject=lambda req: req.customer_id)
    settings.update(options)
    if kind == "sync":

        @require_approval(gate, **settings)
        def issue_refund(req: RefundRequest) -> str:
            received.append(req)
            if req.amount == 13:
                raise RuntimeError("unlucky amount")
            return f"refunded {req.amount} to {req.customer_id}"

        return issue_refund

    @require_approval(gate, **settings)
    async def issue_refund(req: RefundRequest) -> str:  # type: ignore[no-redef]
        received.append(req)
        if req.amount == 13:
            raise RuntimeError("unlucky amount")
        return f"refunded {req.amount} to {req.customer_id}"

    return lambda arg: LOOP.run_until_complete(issue_refund(arg))


@pytest.fixture
def gate_for(kind: str) -> Iterator[Callable[[Server], Any]]:
    """An explicit client of this test's kind (async clients are made inside
    each call's event loop by the decorator's env path, so here: sync only,
    or None for the env-built client)."""
    made: list[Gatehouse] = []

    def make(server: Server) -> Any:
        if kind == "async":
            return AsyncGatehouse(server.url, api_key=server.keys[AGENT])
        client = Gatehouse(server.url, api_key=server.keys[AGENT])
        made.append(client)
        return client

    yield make
    for c in made:
        c.close()


def test_allowed_call_runs_with_the_validated_model(server: Server, kind: str, gate_for: Any) -> None:
    received: list[Any] = []
    fn = refund_function(kind, gate_for(server), received, risk="low")
    customer = unique()
    assert fn(RefundRequest(customer_id=customer, amount=500)) == f"refunded 500 to {customer}"
    # A mapping is validated into the model first.
    assert fn({"customer_id": customer, "amount": 600}) == f"refunded 600 to {customer}"
    assert received == [RefundRequest(customer_id=customer, amount=500), RefundRequest(customer_id=customer, amount=600)]
    with Gatehouse(server.url, api_key=server.keys[REVIEWER]) as reviewer:
        mine = [d for d in reviewer.list_decisions(limit=50).items if d.subject == customer]
        assert {d.tool_name for d in mine} == {"issue_refund"}  # the function's name is the action
        assert sorted(d.payload["amount"] for d in mine) == [500, 600]  # type: ignore[type-var]
        for d in mine:
            assert [o.outcome.status for o in reviewer.executions(d.id).outcomes] == ["succeeded"]


def test_the_env_built_client_is_the_default(
    server: Server, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GATEHOUSE_URL", server.url)
    monkeypatch.setenv("GATEHOUSE_API_KEY", server.keys[AGENT])
    received: list[Any] = []
    fn = refund_function(kind, None, received, action="issue_refund", risk="low")
    customer = unique()
    assert fn(RefundRequest(customer_id=customer, amount=250)) == f"refunded 250 to {customer}"
    monkeypatch.delenv("GATEHOUSE_API_KEY")
    with pytest.raises(GateError, match="GATEHOUSE_API_KEY"):
        fn(RefundRequest(customer_id=customer, amount=250))
    assert len(received) == 1


def test_runs_only_with_the_approved_arguments_never_the_comment(server: Server, kind: str, gate_for: Any) -> None:
    received: list[Any] = []
    fn = refund_function(kind, gate_for(server), received, action="issue_refund", wait_timeout=20)
    customer = unique()
    # Approved as proposed, with a comment that looks like other arguments.
    review_when_pending(server, customer, comment='{"amount": 1, "customer_id": "attacker"}')
    assert fn(RefundRequest(customer_id=customer, amount=50000)) == f"refunded 50000 to {customer}"
    # Approved with changes: the function gets the amended arguments.
    other = unique()
    review_when_pending(server, other, amended_payload={"customer_id": other, "amount": 20000, "currency": "usd"})
    assert fn(RefundRequest(customer_id=other, amount=50000)) == f"refunded 20000 to {other}"
    assert received == [RefundRequest(customer_id=customer, amount=50000), RefundRequest(customer_id=other, amount=20000)]


def test_rejected_pending_and_invalid_calls_never_run(server: Server, kind: str, gate_for: Any) -> None:
    received: list[Any] = []
    fn = refund_function(kind, gate_for(server), received, action="issue_refund", wait_timeout=1)
    with pytest.raises(GateRejected):
        fn(RefundRequest(customer_id=unique(), amount=-5))
    with pytest.raises(GatePending):
        fn(RefundRequest(customer_id=unique(), amount=50000))
    with pytest.raises(GateInvalidRequest):
        fn({"customer_id": unique(), "amount": "lots"})
    assert received == []


def test_an_amendment_the_model_would_change_is_refused_before_redeeming(server: Server, kind: str) -> None:
    received: list[Any] = []
    settings = dict(agent="refund-agent", action="issue_refund", risk="high", subject=lambda r: r.customer_id,
                    wait_timeout=20)
    customer = unique()
    review_when_pending(server, customer, amended_payload={"customer_id": customer, "amount": 20000, "note": "x"})
    if kind == "sync":
        gate = Gatehouse(server.url, api_key=server.keys[AGENT])

        @require_approval(gate, **settings)  # type: ignore[arg-type]
        def lenient(req: LenientRefund) -> None:
            received.append(req)

        with pytest.raises(GateProtocolError, match="change when validated"):
            lenient(LenientRefund(customer_id=customer, amount=50000))
        gate.close()
    else:

        @require_approval(AsyncGatehouse(server.url, api_key=server.keys[AGENT]), **settings)  # type: ignore[arg-type]
        async def lenient_async(req: LenientRefund) -> None:
            received.append(req)

        with pytest.raises(GateProtocolError, match="change when validated"):
            LOOP.run_until_complete(lenient_async(LenientRefund(customer_id=customer, amount=50000)))
    assert received == []
    with Gatehouse(server.url, api_key=server.keys[REVIEWER]) as reviewer:
        (d,) = [d for d in reviewer.list_decisions(limit=50).items if d.subject == customer]
        assert reviewer.executions(d.id).executions == []


def test_a_failing_function_raises_after_its_failure_is_recorded(server: Server, kind: str, gate_for: Any) -> None:
    received: list[Any] = []
    fn = refund_function(kind, gate_for(server), received, action="issue_refund", risk="low")
    customer = unique()
    with pytest.raises(RuntimeError, match="unlucky"):
        fn(RefundRequest(customer_id=customer, amount=13))
    assert len(received) == 1
    with Gatehouse(server.url, api_key=server.keys[REVIEWER]) as reviewer:
        (d,) = [d for d in reviewer.list_decisions(limit=50).items if d.subject == customer]
        (outcome,) = reviewer.executions(d.id).outcomes
        assert outcome.outcome.status == "failed" and "unlucky amount" in outcome.outcome.action_taken


def test_what_cannot_be_guarded_is_refused_when_decorated() -> None:
    gate = Gatehouse("http://127.0.0.1:9", api_key="k")
    with pytest.raises(TypeError, match="exactly one argument"):

        @require_approval(gate, agent="a", risk="low", subject="s")
        def two(a: RefundRequest, b: int) -> None: ...

    with pytest.raises(TypeError, match="Pydantic model"):

        @require_approval(gate, agent="a", risk="low", subject="s")
        def untyped(a: dict) -> None: ...  # type: ignore[type-arg]

    with pytest.raises(TypeError, match="AsyncGatehouse"):

        @require_approval(gate, agent="a", risk="low", subject="s")
        async def mismatched(a: RefundRequest) -> None: ...

    gate.close()
