"""The gating proxy: `gatehouse mcp proxy` in front of the reference filesystem
server, gated by a copy of examples/policies/mcp-filesystem, with a reviewer
that approves over the HTTP API."""

from __future__ import annotations

import asyncio
import os
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import anyio
import httpx2
from mcp.types import CallToolResult

from .harness import FILESYSTEM_SERVER, POLICIES, Checks, expect, gatehouse, start_server, stdio_session, text_of

# The proxy holds a call that needs review for this long. Short, so that the
# "held past --hold" case costs seconds, yet long enough for the background
# reviewer, which polls every POLL seconds, to approve a call while it is held.
HOLD = "3s"
POLL = 0.1


async def proxy_checks(t: Checks, work: Path) -> None:
    # The filesystem server resolves its allowed directory to a real path,
    # and the policies compare paths as written, so both use the real one.
    shared = Path(os.path.realpath(work / "shared"))
    shared.mkdir()
    (shared / "notes.txt").write_text("hello from the share")
    policies = work / "fs-policies"
    policies.mkdir()
    for source in (POLICIES / "mcp-filesystem").iterdir():
        (policies / source.name).write_text(source.read_text().replace("/srv/shared", str(shared)))

    started = start_server(t, work, "fs", policies, "proxy")
    if started is None:
        return
    server, agent, reviewer = started
    url = server.url

    def path(name: str) -> str:
        return str(shared / name)

    async with AsyncExitStack() as stack, httpx2.AsyncClient(
        base_url=url, headers={"Authorization": f"Bearer {reviewer}"}, timeout=30
    ) as api:
        stack.callback(server.stop)

        async def decisions_for(subject: str) -> list[dict[str, Any]]:
            response = await api.get("/api/decisions", params={"limit": 200})
            response.raise_for_status()
            return [d for d in response.json()["items"] if d["subject"] == subject]

        async def approve(decision_id: str, amended: dict[str, Any] | None = None) -> None:
            body: dict[str, Any] = {"decision": "approve", "comment": "fine"}
            if amended is not None:
                body["amended_payload"] = amended
            response = await api.post(f"/api/gate/requests/{decision_id}/review", json=body)
            expect(response.status_code == 200, f"review answered {response.status_code}: {response.text}")

        async def approve_when_pending(subject: str, amended: dict[str, Any] | None = None) -> str:
            """Plays the reviewer in the background: approves the first pending
            request for `subject` as soon as it appears (within 20 s)."""
            with anyio.fail_after(20):
                while True:
                    response = await api.get("/api/decisions", params={"status": "pending_review"})
                    response.raise_for_status()
                    found = [d for d in response.json()["items"] if d["subject"] == subject]
                    if found:
                        await approve(found[0]["id"], amended)
                        return found[0]["id"]
                    await anyio.sleep(POLL)

        async def call_with_reviewer(
            tool: str, arguments: dict[str, Any], amended: dict[str, Any] | None = None
        ) -> CallToolResult:
            """Makes a call while a reviewer approves it in the background, and
            fails if the reviewer never saw it."""
            reviewer_task = asyncio.ensure_future(approve_when_pending(arguments["path"], amended))
            try:
                result = await proxy.call_tool(tool, arguments)
            finally:
                # A reviewer still polling when the call has been answered
                # never found it; it is stopped, and awaited either way so that
                # its own error is never left unretrieved.
                reviewer_task.cancel()
                (reviewed,) = await asyncio.gather(reviewer_task, return_exceptions=True)
            expect(not isinstance(reviewed, asyncio.CancelledError), "the reviewer never saw the call")
            if isinstance(reviewed, BaseException):
                raise reviewed
            return result

        env = {"GATEHOUSE_URL": url, "GATEHOUSE_API_KEY": agent}
        args = ["mcp", "proxy", "--agent", "fs-agent", "--subject-arg", "path", "--hold", HOLD, "--"]
        args += [str(FILESYSTEM_SERVER), str(shared)]
        proxy = await stdio_session(stack, args, env, work / "proxy.log")

        async def initializes() -> None:
            await proxy.initialize()

        if not await t.run("proxy: initializes in front of the filesystem server", initializes):
            return

        async def lists_tools() -> None:
            names = [tool.name for tool in (await proxy.list_tools()).tools]
            for expected in ["read_text_file", "write_file", "move_file"]:
                expect(expected in names, f"{expected} is not listed: {names}")

        await t.run("proxy: tools/list passes the upstream's tools through", lists_tools)

        async def read_allowed() -> None:
            result = await proxy.call_tool("read_text_file", {"path": path("notes.txt")})
            expect(not result.is_error, f"isError: {text_of(result)}")
            expect("hello from the share" in text_of(result), f"not the file: {text_of(result)}")

        await t.run("proxy: a read inside the share is allowed and returns the file", read_allowed)

        async def write_approved_while_held() -> None:
            result = await call_with_reviewer("write_file", {"path": path("a.txt"), "content": "A"})
            expect(not result.is_error, f"isError: {text_of(result)}")
            expect((shared / "a.txt").read_text() == "A", "a.txt does not hold what was written")

        await t.run("proxy: a write is held, approved while held, then runs", write_approved_while_held)

        async def held_past_hold() -> None:
            arguments = {"path": path("b.txt"), "content": "B"}
            held = await proxy.call_tool("write_file", arguments)
            message = text_of(held)
            expect(held.is_error is True, f"not isError: {message}")
            expect("Retry the same call" in message, f"no retry advice: {message}")
            expect("/console/decisions/" in message, f"no console link: {message}")
            expect(not (shared / "b.txt").exists(), "b.txt was written while the call was held")
            pending = await decisions_for(path("b.txt"))
            expect(len(pending) == 1, f"expected one decision for b.txt: {pending}")
            decision_id = pending[0]["id"]
            expect(pending[0]["status"] == "pending_review", f"not pending: {pending[0]}")
            expect(decision_id in message, f"the message does not name {decision_id}: {message}")
            expect(f"{url}/console/decisions/{decision_id}" in message, f"not this decision's link: {message}")
            await approve(decision_id)
            retry = await proxy.call_tool("write_file", arguments)
            expect(not retry.is_error, f"the retry answered isError: {text_of(retry)}")
            expect((shared / "b.txt").read_text() == "B", "b.txt does not hold what was written")
            after = await decisions_for(path("b.txt"))
            expect([d["id"] for d in after] == [decision_id], f"the retry did not reuse the decision: {after}")

        await t.run(
            f"proxy: a write held past --hold {HOLD} is refused with its decision; approved, the retry runs on it",
            held_past_hold,
        )

        async def amended_runs() -> None:
            amended = {"path": path("c.txt"), "content": "amended by the reviewer"}
            result = await call_with_reviewer("write_file", {"path": path("c.txt"), "content": "original"}, amended)
            expect(not result.is_error, f"isError: {text_of(result)}")
            content = (shared / "c.txt").read_text()
            expect(content == "amended by the reviewer", f"c.txt holds {content!r}")

        await t.run("proxy: a reviewer's amended arguments are what runs", amended_runs)

        outside = Path(os.path.realpath(work)) / "outside.txt"

        async def outside_rejected() -> None:
            result = await proxy.call_tool("write_file", {"path": str(outside), "content": "no"})
            expect(result.is_error is True, f"not isError: {text_of(result)}")
            expect("rejected" in text_of(result), f"does not say rejected: {text_of(result)}")
            expect("outside the allowed directory" in text_of(result), f"no policy reason: {text_of(result)}")
            expect(not outside.exists(), f"{outside} was written")
            decisions = await decisions_for(str(outside))
            expect(len(decisions) == 1 and decisions[0]["status"] == "reject", f"decisions: {decisions}")
            runs = (await api.get(f"/api/decision/{decisions[0]['id']}/executions")).json()
            expect(runs["executions"] == [], f"a rejected call has executions: {runs}")

        await t.run("proxy: a write outside the share is rejected and never reaches the server", outside_rejected)

        for name in ["notes.txt", "a.txt", "b.txt", "c.txt"]:

            async def receipts_and_packet(name: str = name) -> None:
                decisions = await decisions_for(path(name))
                expect(len(decisions) == 1, f"expected one decision: {decisions}")
                decision_id = decisions[0]["id"]
                runs = (await api.get(f"/api/decision/{decision_id}/executions")).json()
                expect(len(runs.get("executions") or []) == 1, f"not one receipt: {runs}")
                expect(len(runs.get("outcomes") or []) == 1, f"not one outcome: {runs}")
                status = runs["outcomes"][0]["outcome"]["status"]
                expect(status == "succeeded", f"outcome {status}: {runs}")
                response = await api.get(f"/api/decision/{decision_id}/packet")
                expect(response.status_code == 200, f"packet: HTTP {response.status_code} {response.text}")
                packet = work / f"{decision_id}.json"
                packet.write_text(response.text)
                out = await anyio.to_thread.run_sync(
                    lambda: gatehouse("verify", str(packet), "--log-key", server.log_key())
                )
                expect(out.returncode == 0, f"verify exited {out.returncode}: {out.stdout}{out.stderr}")
                expect("ok    receipts: 1 receipts" in out.stdout, f"verify printed: {out.stdout}")

            await t.run(
                f"proxy: the call on {name} has one receipt and one outcome, and its packet verifies offline",
                receipts_and_packet,
            )

        async def fail_closed() -> None:
            await anyio.to_thread.run_sync(server.stop)
            result = await proxy.call_tool("read_text_file", {"path": path("notes.txt")})
            expect(result.is_error is True, f"not isError: {text_of(result)}")
            expect("fail closed" in text_of(result), f"does not say fail closed: {text_of(result)}")

        await t.run("proxy: with Gatehouse stopped a read is refused (fail closed)", fail_closed)
