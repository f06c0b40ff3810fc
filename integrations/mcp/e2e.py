#!/usr/bin/env python3
"""End-to-end tests of Gatehouse's MCP support, driven by the official Python
MCP SDK (the `mcp` package from PyPI), the client most Python agents use.

It mirrors crates/gatehouse/tests/e2e/mcp.rs, which drives the same peers
with the Rust `rmcp` client, so that both SDKs are known to work:

1. `gatehouse mcp proxy` in front of the reference filesystem server
   (@modelcontextprotocol/server-filesystem, installed by `npm ci` in this
   directory), gated by examples/policies/mcp-filesystem.
2. Gatehouse's own MCP tools, over stdio (`gatehouse mcp serve`) and over
   streamable HTTP (`/mcp`), with examples/policies/seed-scenarios.

The script is self-contained: it makes its own temporary directories, keys
and `gatehouse serve` processes, and stops them. Run it through test.sh, or

    GATEHOUSE_BIN=target/debug/gatehouse python integrations/mcp/e2e.py

with a Python that has .ci/requirements.txt installed. Each check prints
`ok    NAME` or `FAIL  NAME: details`; the last line is `# N passed, M
failed`, and the exit status is 1 if any check failed. KEEP_TMP=1 keeps the
temporary directory (with every server's and proxy's log) for a look
afterwards; VERBOSE=1 prints each failure's traceback.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import anyio
import httpx2
import jsonschema
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult, Tool

REPO = Path(__file__).resolve().parents[2]
BIN = str(Path(os.environ.get("GATEHOUSE_BIN") or REPO / "target/debug/gatehouse").resolve())
FILESYSTEM_SERVER = REPO / "integrations/mcp/node_modules/.bin/mcp-server-filesystem"
POLICIES = REPO / "examples/policies"

# The proxy holds a call that needs review for this long. Short, so that the
# "held past --hold" case costs seconds, yet long enough for the background
# reviewer, which polls every POLL seconds, to approve a call while it is held.
HOLD = "3s"
POLL = 0.1

AGENT_TOOLS = [
    "request_approval",
    "get_decision",
    "wait_for_decision",
    "redeem_token",
    "report_execution",
    "report_outcome",
]
REVIEWER_TOOLS = AGENT_TOOLS + ["list_pending", "review"]


# --- reporting -----------------------------------------------------------------


class CheckFailed(Exception):
    """A check's expectation did not hold; the message says what was seen."""


def expect(condition: bool, message: str) -> None:
    """Fails the current check with `message` unless `condition` holds."""
    if not condition:
        raise CheckFailed(message)


def short(value: Any, limit: int = 1500) -> str:
    """A value as compact text, cut so that one failure stays readable."""
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text) - limit} more characters)"


def describe(error: BaseException) -> str:
    """The failure's cause in one line. The SDK raises from task groups, so the
    leaves of an exception group are what name the actual problem."""
    if isinstance(error, CheckFailed):
        return str(error)
    # An exception group, told by its shape so that Python 3.10 (where the
    # type is not built in) reads it too.
    inner = getattr(error, "exceptions", None)
    if isinstance(inner, (list, tuple)) and inner:
        return "; ".join(describe(e) for e in inner)
    if isinstance(error, TimeoutError):
        return "timed out"
    if isinstance(error, AssertionError):
        return f"assertion failed: {error}"
    return f"{type(error).__name__}: {error}"


class Checks:
    """Runs named checks, each under its own time limit, and counts them."""

    def __init__(self) -> None:
        self.passed = 0
        self.failed: list[str] = []
        self.verbose = bool(os.environ.get("VERBOSE"))

    async def run(self, name: str, body: Callable[[], Awaitable[Any]], timeout: float = 30) -> bool:
        """Runs `body` as the check `name`; True when it passed. A check that
        fails does not stop the script: later checks say whether the rest still
        works."""
        try:
            with anyio.fail_after(timeout):
                await body()
        except Exception as error:  # Every failure is reported; none stops the script.
            self.failed.append(name)
            print(f"FAIL  {name}: {short(describe(error))}", flush=True)
            if self.verbose:
                traceback.print_exception(error)
            return False
        self.passed += 1
        print(f"ok    {name}", flush=True)
        return True

    def fail(self, name: str, details: str) -> None:
        """Records a failure found outside a check (e.g. a setup step)."""
        self.failed.append(name)
        print(f"FAIL  {name}: {short(details)}", flush=True)


# --- processes -----------------------------------------------------------------


def clean_env() -> dict[str, str]:
    """This environment without GATEHOUSE_* settings, so that a variable the
    caller happens to have set (a database URL, a config file) cannot change
    the servers this script starts; they get exactly the flags below."""
    return {k: v for k, v in os.environ.items() if not k.startswith("GATEHOUSE_")}


def gatehouse(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Runs a short gatehouse command (keys, log key, verify)."""
    return subprocess.run(
        [BIN, *args], capture_output=True, text=True, env=clean_env(), timeout=timeout, check=False
    )


def create_key(data: Path, role: str) -> str:
    """A new API key of `role`; `keys create` prints it as its last line."""
    out = gatehouse("keys", "create", "--role", role, "--name", f"e2e-{role}", "--data", str(data))
    if out.returncode != 0 or not out.stdout.strip():
        raise RuntimeError(f"keys create --role {role} failed: {out.stderr.strip()}")
    return out.stdout.strip().splitlines()[-1]


class Server:
    """A `gatehouse serve` on a free port, with its log in the work directory."""

    def __init__(self, work: Path, name: str, policies: Path) -> None:
        self.data = work / f"{name}-data"
        self.policies = policies
        self.log_path = work / f"{name}-server.log"
        self.proc: subprocess.Popen[str] | None = None
        self.log: Any = None
        self.url = ""

    def start(self, timeout: float = 30) -> None:
        """Starts the server and waits (at most `timeout` seconds) for the line
        that names its address, since port 0 means only the server knows it."""
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [BIN, "serve", "--listen", "127.0.0.1:0", "--data", str(self.data), "--policies", str(self.policies)],
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            env=clean_env(),
        )
        found = threading.Event()
        stdout = self.proc.stdout
        assert stdout is not None

        def read() -> None:
            # Reads stdout until the address appears, then keeps draining it so
            # that a chatty server can never block on a full pipe.
            for line in stdout:
                if not found.is_set() and line.startswith("gatehouse listening on "):
                    self.url = line.split()[3]
                    found.set()

        threading.Thread(target=read, daemon=True).start()
        deadline = time.monotonic() + timeout
        while not found.wait(0.05):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"gatehouse serve did not start; its log: {self.log_path.read_text()[-2000:]}")

    def stop(self) -> None:
        """Stops the server: politely first, then for sure."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if self.log is not None:
            self.log.close()

    def log_key(self) -> str:
        """The log's verifier key, read from the data directory as an auditor
        would receive it, never from a packet."""
        out = gatehouse("log", "key", "--data", str(self.data))
        if out.returncode != 0:
            raise RuntimeError(f"log key failed: {out.stderr.strip()}")
        return out.stdout.strip()


# --- MCP helpers ---------------------------------------------------------------


async def stdio_session(stack: AsyncExitStack, args: list[str], env: dict[str, str], log: Path) -> ClientSession:
    """An MCP session with a command over stdio, not yet initialized. The
    command's stderr goes to `log`: the filesystem server and the proxy both
    write diagnostics there, and the test output should hold only the checks.

    Sessions are entered here, outside any check's time limit, and only
    initialized inside one: the transports run task groups that live as long
    as `stack`, and anyio forbids a cancel scope (the time limit) that ends
    while a task group entered inside it is still open."""
    errlog = stack.enter_context(open(log, "a"))
    params = StdioServerParameters(command=BIN, args=args, env=env)
    read, write = await stack.enter_async_context(stdio_client(params, errlog=errlog))
    return await stack.enter_async_context(ClientSession(read, write))


async def http_session(
    stack: AsyncExitStack, url: str, key: str, statuses: list[int] | None = None
) -> ClientSession:
    """An MCP session over streamable HTTP at `url`/mcp, not yet initialized
    (see stdio_session), sending the key as a bearer token. `statuses`, if
    given, collects the HTTP status of every response, so a caller can tell
    why a session could not start."""

    async def record(response: httpx2.Response) -> None:
        if statuses is not None:
            statuses.append(response.status_code)

    client = await stack.enter_async_context(
        httpx2.AsyncClient(
            headers={"Authorization": f"Bearer {key}"},
            timeout=httpx2.Timeout(30, read=120),
            event_hooks={"response": [record]},
        )
    )
    read, write = await stack.enter_async_context(streamable_http_client(f"{url}/mcp", http_client=client))
    return await stack.enter_async_context(ClientSession(read, write))


def text_of(result: CallToolResult) -> str:
    """All of a tool result's text content, for looking for words in it."""
    return "\n".join(getattr(block, "text", "") for block in result.content)


def error_code(result: CallToolResult) -> str | None:
    """The code of an isError result from Gatehouse's own tools, whose text is
    the HTTP API's error body {"error": {"code", "message"}}."""
    try:
        return json.loads(text_of(result))["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None


def schema_errors(schema: dict[str, Any], instance: Any) -> list[str]:
    """Every way `instance` breaks `schema`, checked with the draft the schema
    declares (Gatehouse's are 2020-12, with local $refs)."""
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in cls(schema).iter_errors(instance)]


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


# --- the gating proxy in front of the reference filesystem server --------------


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

    server = Server(work, "fs", policies)
    try:
        agent = create_key(server.data, "agent")
        reviewer = create_key(server.data, "reviewer")
        server.start()
    except Exception as error:  # Reported as a failed setup, not a traceback.
        t.fail("proxy: setup (keys, gatehouse serve)", describe(error))
        server.stop()
        return
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


# --- Gatehouse's own MCP tools, over stdio and streamable HTTP -----------------


async def tools_checks(t: Checks, work: Path) -> None:
    # The server reads a copy, like the proxy part's policies, so that a run
    # depends on no file in the source tree while it runs.
    policies = work / "seed-policies"
    shutil.copytree(POLICIES / "seed-scenarios", policies)
    server = Server(work, "seed", policies)
    try:
        agent = create_key(server.data, "agent")
        reviewer = create_key(server.data, "reviewer")
        server.start()
    except Exception as error:  # Reported as a failed setup, not a traceback.
        t.fail("gatehouse tools: setup (keys, gatehouse serve)", describe(error))
        server.stop()
        return
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


# --- main ----------------------------------------------------------------------


async def main() -> int:
    started = time.monotonic()
    t = Checks()
    if not os.access(BIN, os.X_OK):
        t.fail("setup", f"no gatehouse binary at {BIN} (build it, or set GATEHOUSE_BIN)")
    elif not FILESYSTEM_SERVER.exists():
        t.fail("setup", f"{FILESYSTEM_SERVER} is missing: run `npm ci` in integrations/mcp")
    else:
        work = Path(tempfile.mkdtemp(prefix="gatehouse-mcp-e2e."))
        try:
            for scenario, part in [(proxy_checks, "proxy"), (tools_checks, "gatehouse tools")]:
                # Checks catch their own failures; this catches what happens
                # between them (a process that cannot be spawned, a session
                # that does not close), so the summary line is always printed.
                try:
                    await scenario(t, work)
                except Exception as error:
                    t.fail(f"{part}: the scenario ran to its end", describe(error))
                    if t.verbose:
                        traceback.print_exception(error)
        finally:
            if os.environ.get("KEEP_TMP"):
                print(f"# kept {work}")
            else:
                shutil.rmtree(work, ignore_errors=True)
    print(f"# took {time.monotonic() - started:.1f} s")
    print(f"# {t.passed} passed, {len(t.failed)} failed")
    return 1 if t.failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
