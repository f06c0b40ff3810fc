"""This module holds what both parts of the end-to-end script share: the check
runner and its output lines, `gatehouse serve` processes with their keys, MCP
sessions over stdio and streamable HTTP, schema validation, and the run
itself (its temporary directory and its summary). integrations/mcp/e2e.py
says what the script tests and how to run it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
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
from mcp.types import CallToolResult

# This file is integrations/mcp/e2e/harness.py.
REPO = Path(__file__).resolve().parents[3]
BIN = str(Path(os.environ.get("GATEHOUSE_BIN") or REPO / "target/debug/gatehouse").resolve())
FILESYSTEM_SERVER = REPO / "integrations/mcp/node_modules/.bin/mcp-server-filesystem"
POLICIES = REPO / "examples/policies"


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


def start_server(t: Checks, work: Path, name: str, policies: Path, part: str) -> tuple[Server, str, str] | None:
    """Makes an agent key and a reviewer key in a new data directory, then
    starts a `gatehouse serve` on it with `policies`. Returns the running
    server and the two keys; on failure records the check `PART: setup
    (keys, gatehouse serve)` and returns None, with no server left running."""
    server = Server(work, name, policies)
    try:
        agent = create_key(server.data, "agent")
        reviewer = create_key(server.data, "reviewer")
        server.start()
    except Exception as error:  # Reported as a failed setup, not a traceback.
        t.fail(f"{part}: setup (keys, gatehouse serve)", describe(error))
        server.stop()
        return None
    return server, agent, reviewer


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


# --- running the scenarios -----------------------------------------------------

Scenario = Callable[[Checks, Path], Awaitable[None]]


async def run(scenarios: list[tuple[Scenario, str]]) -> int:
    """Runs each scenario (paired with the name its failures are reported
    under) in one temporary directory, prints the summary lines and returns
    the exit status: 1 if any check failed."""
    started = time.monotonic()
    t = Checks()
    if not os.access(BIN, os.X_OK):
        t.fail("setup", f"no gatehouse binary at {BIN} (build it, or set GATEHOUSE_BIN)")
    elif not FILESYSTEM_SERVER.exists():
        t.fail("setup", f"{FILESYSTEM_SERVER} is missing: run `npm ci` in integrations/mcp")
    else:
        work = Path(tempfile.mkdtemp(prefix="gatehouse-mcp-e2e."))
        try:
            for scenario, part in scenarios:
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
