"""PydanticAI deferred tools: the model asks for a refund, the tool defers
it (``ApprovalRequired``) while Gatehouse decides, and the run continues with
the reviewer's answer. The refund then runs with the approved arguments,
after its approval token is redeemed.

The model here is PydanticAI's ``FunctionModel`` scripted to call the tool
once and then report what the tool said, so the example (and its test) needs
no model provider. Replace it with any model:

    export GATEHOUSE_URL=http://127.0.0.1:8080
    export GATEHOUSE_API_KEY=...        # an agent key (runs the refund)
    export GATEHOUSE_WATCH_KEY=...      # optional: a read-only key that waits
    python examples/pydantic_ai_refund.py cus_42 25000
"""

from __future__ import annotations

import os
import sys

from pydantic_ai import (
    Agent,
    ApprovalRequired,
    DeferredToolRequests,
    DeferredToolResults,
    RunContext,
    ToolApproved,
    ToolDenied,
)
from pydantic_ai.messages import ModelMessage, ModelRequest, ModelResponse, TextPart, ToolCallPart, ToolReturnPart
from pydantic_ai.models import Model
from pydantic_ai.models.function import AgentInfo, FunctionModel

from gatehouse import Gatehouse, GatePending, GateRejected
from refunds import RefundRequest, pay_refund

AGENT = "pydantic-ai-refund-agent"


def build_agent(gate: Gatehouse, model: Model) -> Agent[None, str | DeferredToolRequests]:
    agent: Agent[None, str | DeferredToolRequests] = Agent(
        model,
        output_type=[str, DeferredToolRequests],
        instructions="Issue refunds with the issue_refund tool; amounts are in cents.",
    )

    @agent.tool
    def issue_refund(ctx: RunContext[None], customer_id: str, amount: int, currency: str = "usd") -> str:
        """Refund a customer. Gatehouse decides whether it may run."""
        req = RefundRequest(customer_id=customer_id, amount=amount, currency=currency)
        # The tool runs again once the deferred call is answered; keyed by
        # the tool call, that asks for the same decision, not a new one.
        # Gatehouse, not the approval flag, decides: the guard runs the
        # refund only when the decision permits it, with the arguments
        # reviewers approved (which may differ from the model's).
        try:
            with gate.guard(agent=AGENT, action="issue_refund", risk="high", subject=customer_id, args=req,
                            idempotency_key=f"pydantic-ai:{ctx.tool_call_id}", wait_timeout=0,
                            target_system="ledger") as run:
                approved = RefundRequest.model_validate(run.args)
                run.target_object = pay_refund(approved)
                return f"Refunded {approved.amount} {approved.currency} to {approved.customer_id} ({run.target_object})."
        except GatePending as pending:
            raise ApprovalRequired(metadata={"decision_id": pending.decision_id}) from None
        except GateRejected as rejected:
            return f"The refund was refused: {rejected}"

    return agent


def scripted_model(customer_id: str, amount: int) -> FunctionModel:
    """A model that calls issue_refund once, then repeats what the tool said."""

    def respond(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        last = messages[-1]
        if isinstance(last, ModelRequest):
            for part in last.parts:
                if isinstance(part, ToolReturnPart):
                    return ModelResponse(parts=[TextPart(str(part.content))])
        if any(isinstance(m, ModelResponse) for m in messages):
            return ModelResponse(parts=[TextPart("The refund was not made.")])
        return ModelResponse(
            parts=[ToolCallPart("issue_refund", {"customer_id": customer_id, "amount": amount})]
        )

    return FunctionModel(respond)


def answer_deferred(requests: DeferredToolRequests, watcher: Gatehouse, wait_timeout: float) -> DeferredToolResults | None:
    """Waits for Gatehouse to decide each deferred call; None while any is still pending."""
    results = DeferredToolResults()
    for call in requests.approvals:
        decision = watcher.wait_for(requests.metadata[call.tool_call_id]["decision_id"], timeout=wait_timeout)
        if decision.status == "pending_review":
            return None
        # No override_args: the tool asks Gatehouse again with the model's
        # own arguments (the same request, so the same decision) and runs
        # the approved ones, amendments included.
        results.approvals[call.tool_call_id] = (
            ToolApproved()
            if decision.may_proceed
            else ToolDenied(f"The refund was refused: Gatehouse says {decision.status}.")
        )
    return results


def run_refund(agent: Agent[None, str | DeferredToolRequests], watcher: Gatehouse, *, wait_timeout: float = 300) -> str:
    result = agent.run_sync("Refund the customer, please.")
    while isinstance(result.output, DeferredToolRequests):
        answers = answer_deferred(result.output, watcher, wait_timeout)
        if answers is None:
            return "still pending review (answer the deferred call later)"
        result = agent.run_sync(message_history=result.all_messages(), deferred_tool_results=answers)
    return result.output


def main() -> None:
    customer, amount = sys.argv[1], int(sys.argv[2])
    with Gatehouse.from_env() as gate:
        watch_key = os.environ.get("GATEHOUSE_WATCH_KEY")
        watcher = Gatehouse(gate.url, api_key=watch_key) if watch_key else gate
        print(run_refund(build_agent(gate, scripted_model(customer, amount)), watcher))


if __name__ == "__main__":
    main()
