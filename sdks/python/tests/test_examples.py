"""The framework examples (examples/), run against the live server with
scripted models: LangGraph's ``interrupt`` and PydanticAI's deferred tools,
through allow, review (with and without changes) and reject; and each run
as a script, as its docstring says."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import AGENT, AUDITOR, review_when_pending, unique
from gatehouse import Gatehouse
from gateserver import Server

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
sys.path.insert(0, str(EXAMPLES))

import langgraph_refund  # noqa: E402
import pydantic_ai_refund  # noqa: E402
from refunds import LEDGER  # noqa: E402


@pytest.fixture
def clients(server: Server) -> Iterator[tuple[Gatehouse, Gatehouse]]:
    """The agent's client, and a read-only one (an auditor key) that waits."""
    with Gatehouse(server.url, api_key=server.keys[AGENT]) as gate, Gatehouse(
        server.url, api_key=server.keys[AUDITOR]
    ) as watcher:
        yield gate, watcher


def paid(customer: str) -> list[dict[str, object]]:
    return [entry for entry in LEDGER if entry["customer_id"] == customer]


def executions(server: Server, customer: str) -> list[str]:
    """The statuses of the outcomes recorded for the customer's decision."""
    with Gatehouse(server.url, api_key=server.keys[AUDITOR]) as gate:
        (d,) = [d for d in gate.list_decisions(limit=100).items if d.subject == customer]
        seen = gate.executions(d.id)
        assert len(seen.executions) == len(seen.outcomes)
        return [o.outcome.status for o in seen.outcomes]


def run_langgraph(clients: tuple[Gatehouse, Gatehouse], customer: str, amount: int) -> str:
    gate, watcher = clients
    return langgraph_refund.run_refund(
        langgraph_refund.build_graph(gate), {"customer_id": customer, "amount": amount}, watcher, wait_timeout=20
    )


def run_pydantic_ai(clients: tuple[Gatehouse, Gatehouse], customer: str, amount: int) -> str:
    gate, watcher = clients
    agent = pydantic_ai_refund.build_agent(gate, pydantic_ai_refund.scripted_model(customer, amount))
    return pydantic_ai_refund.run_refund(agent, watcher, wait_timeout=20)


RUNNERS = {"langgraph": run_langgraph, "pydantic_ai": run_pydantic_ai}


@pytest.mark.parametrize("framework", RUNNERS)
def test_an_allowed_refund_runs_at_once(framework: str, server: Server, clients: tuple[Gatehouse, Gatehouse]) -> None:
    customer = unique()
    out = RUNNERS[framework](clients, customer, 500)
    assert f"efunded 500 usd to {customer}" in out
    assert [e["amount"] for e in paid(customer)] == [500]
    assert executions(server, customer) == ["succeeded"]


@pytest.mark.parametrize("framework", RUNNERS)
def test_a_reviewed_refund_waits_then_runs_the_approved_amount(
    framework: str, server: Server, clients: tuple[Gatehouse, Gatehouse]
) -> None:
    customer = unique()
    review_when_pending(server, customer, delay=1.0,
                        amended_payload={"customer_id": customer, "amount": 20000, "currency": "usd"})
    out = RUNNERS[framework](clients, customer, 50000)
    assert f"efunded 20000 usd to {customer}" in out
    assert [e["amount"] for e in paid(customer)] == [20000]
    assert executions(server, customer) == ["succeeded"]


@pytest.mark.parametrize("framework", RUNNERS)
def test_refused_refunds_never_run(framework: str, server: Server, clients: tuple[Gatehouse, Gatehouse]) -> None:
    by_policy = unique()
    assert "refund was refused" in RUNNERS[framework](clients, by_policy, 0)
    by_reviewer = unique()
    review_when_pending(server, by_reviewer, "reject", comment="no")
    assert "refund was refused" in RUNNERS[framework](clients, by_reviewer, 50000)
    assert paid(by_policy) == [] and paid(by_reviewer) == []


@pytest.mark.parametrize("script", ["langgraph_refund.py", "pydantic_ai_refund.py"])
def test_each_example_runs_as_a_script(script: str, server: Server) -> None:
    customer = unique()
    review_when_pending(server, customer, delay=0.5)
    env = {
        **os.environ,
        "GATEHOUSE_URL": server.url,
        "GATEHOUSE_API_KEY": server.keys[AGENT],
        "GATEHOUSE_WATCH_KEY": server.keys[AUDITOR],
        "PYTHONPATH": os.pathsep.join([str(EXAMPLES), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run([sys.executable, str(EXAMPLES / script), customer, "25000"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert f"efunded 25000 usd to {customer}" in done.stdout
