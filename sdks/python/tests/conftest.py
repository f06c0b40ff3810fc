"""Fixtures: one real Gatehouse server for the whole run (more for the tests
that need other flags), its keys, and each client built sync and async."""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from gatehouse import AsyncGatehouse, AsyncTask, Gatehouse
from gateserver import Server, new_server

AGENT, OTHER_AGENT, REVIEWER, REVIEWER_2, AUDITOR = "sdk-agent", "other-agent", "rita", "rob", "audrey"
LEAD = "lena"  # a person in the security-leads group (escalations)


@pytest.fixture(scope="session")
def server() -> Iterator[Server]:
    s = new_server()
    for role, name in [
        ("agent", AGENT),
        ("agent", OTHER_AGENT),
        ("reviewer", REVIEWER),
        ("reviewer", REVIEWER_2),
        ("auditor", AUDITOR),
    ]:
        s.key(role, name)
    s.user(LEAD, "security-leads")
    s.key("reviewer", LEAD, user=LEAD)
    s.start("--rate-limit", "0")
    yield s
    s.remove()


@pytest.fixture
def server_with() -> Iterator[Callable[..., Server]]:
    """Starts a server of its own with extra flags (and keys named as above)."""
    started: list[Server] = []

    def start(*flags: str) -> Server:
        s = new_server()
        for role, name in [("agent", AGENT), ("reviewer", REVIEWER), ("auditor", AUDITOR)]:
            s.key(role, name)
        started.append(s.start(*flags))
        return s

    yield start
    for s in started:
        s.remove()


def unique(prefix: str = "cus") -> str:
    """A subject no other test uses, so a reviewer thread finds the right request."""
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


class Synced:
    """An async client whose coroutines run to completion on one event loop,
    so a single test body checks the sync and the async client alike."""

    def __init__(self, target: Any, loop: asyncio.AbstractEventLoop) -> None:
        self._target = target
        self._loop = loop

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            result = attr(*args, **kwargs)
            if inspect.iscoroutine(result):
                result = self._loop.run_until_complete(result)
            if isinstance(result, AsyncTask):
                return Synced(result, self._loop)
            return result

        return call


@pytest.fixture(params=["sync", "async"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def connect(kind: str) -> Iterator[Callable[..., Any]]:
    """``connect(url, key, **options)``: a client of this test's kind."""
    loop = asyncio.new_event_loop()
    made: list[Any] = []

    def make(url: str, key: str | None, **options: Any) -> Any:
        if kind == "sync":
            client: Any = Gatehouse(url, api_key=key, **options)
            made.append(client)
            return client
        aclient = AsyncGatehouse(url, api_key=key, **options)
        made.append(aclient)
        return Synced(aclient, loop)

    yield make
    for c in made:
        if isinstance(c, Gatehouse):
            c.close()
        else:
            loop.run_until_complete(c.aclose())
    loop.close()


def review_when_pending(
    server: Server,
    subject: str,
    decision: str = "approve",
    *,
    reviewer: str = REVIEWER,
    delay: float = 0.5,
    amended_payload: dict[str, Any] | None = None,
    comment: str | None = None,
    timeout: float = 20.0,
) -> threading.Thread:
    """Starts a reviewer in the background: once a pending request about
    ``subject`` appears, it waits ``delay`` seconds and reviews it through
    the API with a reviewer key. ``thread.result`` is the review's answer."""

    def run() -> None:
        with Gatehouse(server.url, api_key=server.keys[reviewer]) as gate:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                pending = [d for d in gate.list_decisions(status="pending_review").items if d.subject == subject]
                if pending:
                    time.sleep(delay)
                    thread.result = gate.review(  # type: ignore[attr-defined]
                        pending[0].id, decision, comment=comment, amended_payload=amended_payload
                    )
                    return
                time.sleep(0.1)

    thread = threading.Thread(target=run, daemon=True)
    thread.result = None  # type: ignore[attr-defined]
    thread.start()
    return thread
