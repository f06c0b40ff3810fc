"""Gatehouse's own MCP tools, over stdio (`gatehouse mcp serve`) and over
streamable HTTP (`/mcp`), with a copy of examples/policies/seed-scenarios:
the tool lists and their schemas, the whole review flow with an agent on one
transport and a reviewer on the other, and bad keys on both."""

from __future__ import annotations

import json
import shutil
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import anyio
import httpx2
import jsonschema
from mcp import ClientSession
from mcp.types import CallToolResult, Tool

from .harness import (
    POLICIES,
    CheckFailed,
    Checks,
    error_code,
    expect,
    gatehouse,
    http_session,
    schema_errors,
    start_server,
    stdio_session,
    text_of,
)

AGENT_TOOLS = [
    "request_approval",
    "get_decision",
    "wait_for_decision",
    "redeem_token",
    "report_execution",
    "report_outcome",
]
REVIEWER_TOOLS = AGENT_TOOLS + ["list_pending", "review"]


class Tools:
    """A session, the key it was opened with, and its tool list (fetched
    once) for output-schema checks."""

    def __init__(self, session: ClientSession, key: str) -> None:
        self.session = session
        self.key = key
        self.tools: dict[str, Tool] = {}

    async def list(self) -> list[Tool]:
        listed = await self.session.list_tools()
        self.tools = {t.name: t for t in listed.tools}
        return listed.tools

    async def call(self, name: str, arguments: dict[str, Any]) -> CallToolResult:
        return await self.session.call_tool(name, arguments)

    async def structured(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """Calls a tool that must succeed and returns its structured output,
        after checking it against the tool's own outputSchema. The SDK checks
        this as well, but only when a schema is listed; checking here makes a
        missing schema or missing structured content a failure too."""
        if name not in self.tools:
            await self.list()
        tool = self.tools.get(name)
        if tool is None:
            raise CheckFailed(f"{name} is not listed")
        result = await self.call(name, arguments)
        expect(not result.is_error, f"{name} answered isError: {text_of(result)}")
        output = result.structured_content
        if output is None:
            raise CheckFailed(f"{name} returned no structured content: {result}")
        if tool.output_schema is None:
            raise CheckFailed(f"{name} lists no outputSchema")
        errors = schema_errors(tool.output_schema, output)
        expect(not errors, f"{name} output does not fit its outputSchema: {errors}; output: {json.dumps(output)}")
        # Clients that predate structured output read the text instead: it
        # must be the same JSON.
        try:
            as_text = json.loads(text_of(result))
        except ValueError:
            as_text = None
        expect(as_text == output, f"{name}'s text content is not its structured content: {text_of(result)}")
        return output


async def tools_checks(t: Checks, work: Path) -> None:
    # The server reads a copy, like the proxy part's policies, so that a run
    # depends on no file in the source tree while it runs.
    policies = work / "seed-policies"
    shutil.copytree(POLICIES / "seed-scenarios", policies)
    started = start_server(t, work, "seed", policies, "gatehouse tools")
    if started is None:
        return
    server, agent, reviewer = started
    url = server.url
    log_key = server.log_key()

    async with AsyncExitStack() as stack:
        stack.callback(server.stop)
        sessions: dict[tuple[str, str], Tools] = {}

        async def open_session(transport: str, role: str) -> Tools:
            key = agent if role == "agent" else reviewer
            if transport == "HTTP":
                session = await http_session(stack, url, key)
            else:
                env = {"GATEHOUSE_URL": url, "GATEHOUSE_API_KEY": key}
                session = await stdio_session(stack, ["mcp", "serve"], env, work / f"serve-{role}.log")
            return Tools(session, key)

        for transport in ["HTTP", "stdio"]:
            for role, expected in [("agent", AGENT_TOOLS), ("reviewer", REVIEWER_TOOLS)]:
                tools = await open_session(transport, role)

                async def lists(tools: Tools = tools, expected: list[str] = expected) -> None:
                    await tools.session.initialize()
                    listed = await tools.list()
                    names = [tool.name for tool in listed]
                    expect(names == expected, f"listed {names}")
                    for tool in listed:
                        a = tool.annotations
                        expect(
                            a is not None and a.read_only_hint is not None and a.destructive_hint is not None,
                            f"{tool.name} lacks readOnlyHint/destructiveHint: {a}",
                        )
                        expect(tool.input_schema.get("type") == "object", f"{tool.name} input is not an object")
                        for kind, schema in [("input", tool.input_schema), ("output", tool.output_schema)]:
                            expect(schema is not None, f"{tool.name} has no {kind} schema")
                            try:
                                jsonschema.validators.validator_for(schema).check_schema(schema)
                            except jsonschema.SchemaError as error:
                                raise CheckFailed(f"{tool.name}'s {kind} schema is invalid: {error.message}")
                    get = next(tool for tool in listed if tool.name == "get_decision")
                    expect(get.annotations is not None and get.annotations.read_only_hint is True, "get_decision")

                article = "an" if role == "agent" else "a"
                if await t.run(
                    f"gatehouse tools over {transport}: {article} {role} key lists {len(expected)} tools with valid schemas",
                    lists,
                ):
                    sessions[(transport, role)] = tools

        # The whole review flow twice, so that every tool runs over both
        # transports: the agent on one, the reviewer on the other.
        for agent_via, reviewer_via, sha in [("HTTP", "stdio", "abc123"), ("stdio", "HTTP", "def456")]:
            a = sessions.get((agent_via, "agent"))
            r = sessions.get((reviewer_via, "reviewer"))
            flow = f"gatehouse tools, agent over {agent_via} and reviewer over {reviewer_via}"
            if a is None or r is None:
                t.fail(f"{flow}: sessions", "a session above did not start")
                continue
            await review_flow(t, flow, a, r, sha, url, log_key, work)

        async def http_bad_key() -> None:
            statuses: list[int] = []
            try:
                async with AsyncExitStack() as bad:
                    session = await http_session(bad, url, "ghk_not_a_key", statuses)
                    await session.initialize()
            except Exception:  # Failing to initialize is what this check expects.
                pass
            else:
                raise CheckFailed("a session initialized with a bad key")
            expect(401 in statuses, f"no HTTP 401 among the answers: {statuses}")
            async with httpx2.AsyncClient(timeout=30) as raw:
                response = await raw.post(
                    f"{url}/mcp",
                    headers={"Authorization": "Bearer ghk_not_a_key", "Accept": "application/json, text/event-stream"},
                    json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                )
            expect(response.status_code == 401, f"a raw tools/list got HTTP {response.status_code}")
            expect(response.json()["error"]["code"] == "unauthorized", f"body: {response.text}")

        await t.run("gatehouse tools over HTTP: a bad key cannot initialize (HTTP 401 unauthorized)", http_bad_key)

        async def stdio_bad_key() -> None:
            async with AsyncExitStack() as bad:
                env = {"GATEHOUSE_URL": url, "GATEHOUSE_API_KEY": "ghk_not_a_key"}
                stranger = await stdio_session(bad, ["mcp", "serve"], env, work / "serve-stranger.log")
                await stranger.initialize()
                calls: list[tuple[str, dict[str, Any]]] = [
                    ("get_decision", {"id": "dec_01NOSUCHDECISION"}),
                    (
                        "request_approval",
                        {"agent": "x", "action": "deploy_production", "risk": "high", "subject": "main", "context": {}},
                    ),
                ]
                for name, arguments in calls:
                    result = await stranger.call_tool(name, arguments)
                    expect(result.is_error is True, f"{name} is not isError: {text_of(result)}")
                    expect("unauthorized" in text_of(result), f"{name}: {text_of(result)}")

        await t.run("gatehouse tools over stdio: a bad key gets isError unauthorized", stdio_bad_key)


async def review_flow(
    t: Checks, flow: str, a: Tools, r: Tools, sha: str, url: str, log_key: str, work: Path
) -> None:
    """request_approval → review → wait_for_decision → redeem_token →
    report_execution → report_outcome, as an agent (`a`) and a reviewer
    (`r`), each result checked against its tool's outputSchema. `sha` (the
    commit deployed) differs between flows, so each asks its own question."""
    action = {"tool_name": "deploy_production", "subject": "main", "payload": {"sha": sha}}
    request = {
        "agent": "release-bot",
        "action": "deploy_production",
        "risk": "high",
        "subject": "main",
        "context": {"sha": sha},
        "idempotency_key": f"deploy-{sha}",
    }
    state: dict[str, Any] = {}

    async def ask() -> None:
        asked = await a.structured("request_approval", request)
        expect(asked["status"] == "pending_review", f"status {asked['status']}: {asked}")
        expect(asked["may_proceed"] is False, f"may proceed before review: {asked}")
        again = await a.structured("request_approval", request)
        expect(again["id"] == asked["id"], f"the idempotency key gave another decision: {again['id']}")
        state["id"] = asked["id"]

    if not await t.run(f"{flow}: request_approval needs review, idempotently", ask):
        return
    decision_id = state["id"]

    async def review() -> None:
        pending = await r.structured("list_pending", {})
        expect(any(d["id"] == decision_id for d in pending["items"]), f"not pending: {pending}")
        refused = await a.call("review", {"decision_id": decision_id, "decision": "approve"})
        expect(refused.is_error is True and error_code(refused) == "forbidden", f"agent review: {text_of(refused)}")
        reviewed = await r.structured(
            "review", {"decision_id": decision_id, "decision": "approve", "comment": "ship it"}
        )
        expect(reviewed["status"] == "approved", f"status {reviewed['status']}")
        twice = await r.call("review", {"decision_id": decision_id, "decision": "approve"})
        expect(twice.is_error is True and error_code(twice) == "not_pending", f"second review: {text_of(twice)}")

    if not await t.run(f"{flow}: the reviewer lists and approves it with review (the agent may not)", review):
        return

    async def wait_and_redeem() -> None:
        waited = await a.structured("wait_for_decision", {"id": decision_id, "timeout_seconds": 5})
        expect(waited["status"] == "approved" and waited["may_proceed"] is True, f"waited: {waited}")
        token = waited.get("approval_token")
        expect(isinstance(token, str) and token.count(".") == 2, f"no approval token: {waited}")
        redeemed = await a.structured("redeem_token", {"token": token, "action": action})
        expect(redeemed["redeemed"] is True and redeemed["decision_id"] == decision_id, f"redeemed: {redeemed}")
        again = await a.call("redeem_token", {"token": token, "action": action})
        expect(
            again.is_error is True and error_code(again) == "token_already_redeemed",
            f"second redemption: {text_of(again)}",
        )
        state["jti"] = redeemed["jti"]

    if not await t.run(f"{flow}: wait_for_decision gives an approval token that redeem_token redeems once", wait_and_redeem):
        return

    async def report() -> None:
        receipt = await a.structured(
            "report_execution",
            {
                "decision_id": decision_id,
                "receipt": {
                    "target_system": "github",
                    "target_object": "main",
                    "mutation": "deploy",
                    "executor": "release-bot",
                    "token_jti": state["jti"],
                    "action": action,
                },
            },
        )
        expect(isinstance(receipt.get("execution_hash"), str), f"receipt: {receipt}")
        outcome = await a.structured(
            "report_outcome",
            {"decision_id": decision_id, "outcome": {"status": "succeeded", "action_taken": f"deployed {sha}"}},
        )
        expect(isinstance(outcome.get("outcome_hash"), str), f"outcome: {outcome}")
        got = await r.structured("get_decision", {"id": decision_id})
        expect(got["status"] == "approved", f"get_decision: {got}")
        # The reviewer reads the packet over HTTP, as an auditor would, and it
        # verifies offline with the receipt the agent reported.
        async with httpx2.AsyncClient(timeout=30) as api:
            response = await api.get(
                f"{url}/api/decision/{decision_id}/packet",
                headers={"Authorization": f"Bearer {r.key}"},
            )
        expect(response.status_code == 200, f"packet: HTTP {response.status_code}")
        packet = work / f"{decision_id}.json"
        packet.write_text(response.text)
        out = await anyio.to_thread.run_sync(lambda: gatehouse("verify", str(packet), "--log-key", log_key))
        expect(out.returncode == 0 and "ok    receipts: 1 receipts" in out.stdout, f"verify: {out.stdout}{out.stderr}")

    await t.run(f"{flow}: report_execution and report_outcome are recorded; the packet verifies", report)

    async def bad_input() -> None:
        bad = await a.call("request_approval", {"agent": "x"})
        expect(bad.is_error is True and error_code(bad) == "validation_failed", f"bad input: {text_of(bad)}")
        missing = await a.call("get_decision", {"id": "dec_01NOSUCHDECISION"})
        expect(missing.is_error is True and error_code(missing) == "not_found", f"missing: {text_of(missing)}")

    await t.run(f"{flow}: bad input and unknown ids are isError results with the API's error codes", bad_input)
