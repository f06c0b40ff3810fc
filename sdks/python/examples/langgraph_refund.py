"""LangGraph: a refund node that pauses the graph with ``interrupt`` while
a Gatehouse reviewer decides, and runs the refund with the approved
arguments when the graph is resumed. No language model is involved: the
graph is the agent's plan, and Gatehouse is the human in the loop.

    export GATEHOUSE_URL=http://127.0.0.1:8080
    export GATEHOUSE_API_KEY=...        # an agent key (runs the refund)
    export GATEHOUSE_WATCH_KEY=...      # optional: a read-only key that waits
    python examples/langgraph_refund.py cus_42 25000

Refunds over 100.00 go to review (examples/policies/seed-scenarios); approve
with ``gatehouse review approve DECISION_ID`` (or in the console), and the
graph resumes on its own.
"""

from __future__ import annotations

import os
import sys
import uuid
from typing import Any, TypedDict

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt

from gatehouse import Gatehouse, GatePending, GateRejected
from refunds import RefundRequest, pay_refund

AGENT = "langgraph-refund-agent"


class State(TypedDict, total=False):
    request: dict[str, Any]
    outcome: str


def build_graph(gate: Gatehouse) -> Any:
    """A one-node graph whose node issues the refund through ``gate.guard``."""

    def refund(state: State, config: RunnableConfig) -> State:
        req = RefundRequest.model_validate(state["request"])
        # LangGraph runs an interrupted node again from its start when the
        # graph resumes. The same idempotency key then returns the same
        # decision instead of asking again, and once its token is redeemed
        # the refund can never run twice.
        key = f"langgraph:{config['configurable']['thread_id']}:refund"
        while True:
            try:
                with gate.guard(agent=AGENT, action="issue_refund", risk="high", subject=req.customer_id,
                                args=req, idempotency_key=key, wait_timeout=0, target_system="ledger") as run:
                    approved = RefundRequest.model_validate(run.args)
                    run.target_object = pay_refund(approved)
                    return {"outcome": f"refunded {approved.amount} {approved.currency} to "
                                       f"{approved.customer_id} ({run.target_object})"}
            except GatePending as pending:
                # The first time, this stops the graph and saves its state; on
                # resume it returns, and the loop asks Gatehouse again (a
                # second interrupt if the decision is still pending).
                interrupt({"decision_id": pending.decision_id, "waiting_for": "a Gatehouse reviewer"})
            except GateRejected as rejected:
                return {"outcome": f"The refund was refused: {rejected}"}

    builder = StateGraph(State)
    builder.add_node("refund", refund)
    builder.add_edge(START, "refund")
    builder.add_edge("refund", END)
    return builder.compile(checkpointer=InMemorySaver())


def run_refund(graph: Any, request: dict[str, Any], watcher: Gatehouse, *, wait_timeout: float = 300,
               thread_id: str | None = None) -> str:
    """Runs the graph; whenever it pauses for a review, waits for the
    decision (with ``watcher``) and resumes it."""
    config: RunnableConfig = {"configurable": {"thread_id": thread_id or str(uuid.uuid4())}}
    result = graph.invoke({"request": request}, config)
    while "__interrupt__" in result:
        decision_id = result["__interrupt__"][0].value["decision_id"]
        print(f"waiting for a reviewer to decide {decision_id}", file=sys.stderr)
        if watcher.wait_for(decision_id, timeout=wait_timeout).status == "pending_review":
            return f"still pending review: {decision_id} (resume this thread later)"
        result = graph.invoke(Command(resume=decision_id), config)
    return str(result["outcome"])


def main() -> None:
    customer, amount = sys.argv[1], int(sys.argv[2])
    with Gatehouse.from_env() as gate:
        watch_key = os.environ.get("GATEHOUSE_WATCH_KEY")
        watcher = Gatehouse(gate.url, api_key=watch_key) if watch_key else gate
        print(run_refund(build_graph(gate), {"customer_id": customer, "amount": amount}, watcher))


if __name__ == "__main__":
    main()
