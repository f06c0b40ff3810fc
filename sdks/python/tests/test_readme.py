"""The Python block of the repository README's "Quick start" must stay true.

The test takes that block from README.md exactly as written and runs it with
``exec`` against a real ``gatehouse serve`` that uses the built-in starter
policies. The only change made to the text is the server URL: the README
hard-codes http://127.0.0.1:8080 and the test's server listens on a free
port. What the snippet leaves to the reader comes from outside it: AGENT_KEY
in the environment, and a ``deploy(sha)`` in the namespace that records its
calls. While the snippet waits, a reviewer approves the request through the
HTTP API (once as asked, once with changes)."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateserver import REPO, Server, new_server

README = REPO / "README.md"
README_URL = "http://127.0.0.1:8080"
SUBJECT = "Deploy main to production"
ACTION = "deploy_production"
AGENT, REVIEWER = "ci-deployer", "rita"


def quick_start_block(lang: str, readme: Path = README) -> str:
    """The first ```<lang> block inside the README's "## Quick start" section, without its fences."""
    lines = readme.read_text(encoding="utf-8").split("\n")
    assert "## Quick start" in lines, 'README.md has no "## Quick start" section'
    start = lines.index("## Quick start")
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    fence = "```" + lang
    opening = next((i for i in range(start + 1, end) if lines[i].rstrip() == fence), None)
    assert opening is not None, f"the Quick start section has no {fence} block"
    closing = next((i for i in range(opening + 1, len(lines)) if lines[i].rstrip() == "```"), None)
    assert closing is not None and closing < end, f"the Quick start's {fence} block is not closed inside the section"
    return "\n".join(lines[opening + 1 : closing]) + "\n"


def with_server_url(snippet: str, url: str) -> str:
    """The snippet with the README's URL replaced by ``url``, after checking
    that the URL occurs exactly once and that nothing else differs."""
    assert snippet.count(README_URL) == 1, f"the snippet should name {README_URL} exactly once"
    changed = snippet.replace(README_URL, url)
    before, after = snippet.split("\n"), changed.split("\n")
    assert len(after) == len(before)
    differing = [i for i, (b, a) in enumerate(zip(before, after)) if b != a]
    assert len(differing) == 1, "exactly one line differs"
    (i,) = differing
    assert after[i] == before[i].replace(README_URL, url), "that line differs only by the URL"
    assert changed.replace(url, README_URL) == snippet, "undoing the substitution gives the README's text back"
    return changed


@pytest.fixture
def quick_start_server() -> Iterator[Server]:
    """A server of its own with the starter policies (no --policies), so the
    snippet's request is the only one and the policies are the README's."""
    s = new_server()
    s.key("agent", AGENT)
    s.key("reviewer", REVIEWER)
    s.start("--rate-limit", "0", policies=None)
    yield s
    s.remove()


def call(server: Server, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    """One HTTP call with the reviewer's key; the answer must be a 200."""
    res = httpx.request(method, server.url + path, json=body, timeout=30,
                        headers={"Authorization": f"Bearer {server.keys[REVIEWER]}"})
    assert res.status_code == 200, f"{method} {path}: {res.status_code} {res.text}"
    return res.json()


class Reviewer(threading.Thread):
    """Waits for the snippet's request to be pending, then reviews it
    through the API with the reviewer's key. ``sent`` turns true just before
    the review is sent, so ``deploy`` can tell it ran only after it."""

    def __init__(self, server: Server, review: dict[str, Any]) -> None:
        super().__init__(daemon=True)
        self.server, self.review = server, review
        self.sent = False
        self.pending: dict[str, Any] | None = None
        self.reviewed: dict[str, Any] | None = None
        self.error: BaseException | None = None
        # Set once the snippet has ended, so a failed run does not wait out the poll.
        self.snippet_ended = threading.Event()

    def run(self) -> None:
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not self.snippet_ended.is_set():
                items = call(self.server, "GET", "/api/decisions?status=pending_review")["items"]
                if items:
                    assert len(items) == 1, "the snippet asked once"
                    self.pending = items[0]
                    self.sent = True
                    self.reviewed = call(self.server, "POST", f"/api/gate/requests/{items[0]['id']}/review",
                                         self.review)
                    return
                time.sleep(0.1)
            raise AssertionError("the snippet's request never appeared as pending_review")
        except BaseException as e:  # reported by the test, not lost in the thread
            self.error = e


def run_quick_start(server: Server, review: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> tuple[
    Reviewer, list[tuple[str, bool]]
]:
    """Runs the README's Python block, unchanged but for the URL, while a reviewer reviews."""
    snippet = quick_start_block("python")
    assert "gate.guard(" in snippet
    code = with_server_url(snippet, server.url)
    monkeypatch.setenv("AGENT_KEY", server.keys[AGENT])
    reviewer = Reviewer(server, review)
    calls: list[tuple[str, bool]] = []

    def deploy(sha: str) -> None:
        calls.append((sha, reviewer.sent))

    namespace: dict[str, Any] = {"__name__": "readme_quick_start", "deploy": deploy}
    reviewer.start()
    try:
        exec(compile(code, f"{README} (Quick start, python block)", "exec"), namespace)
    finally:
        reviewer.snippet_ended.set()
        if "gate" in namespace:
            namespace["gate"].close()  # the snippet leaves its client open; the test tidies up
        reviewer.join(timeout=30)
    assert reviewer.error is None, f"the reviewer failed: {reviewer.error!r}"
    assert reviewer.pending is not None and reviewer.reviewed is not None
    assert reviewer.pending["status"] == "pending_review", "the starter policies send a high-risk deploy to review"
    assert (reviewer.pending["tool_name"], reviewer.pending["subject"]) == (ACTION, SUBJECT)
    assert reviewer.pending["payload"] == {"sha": "abc123"}
    assert reviewer.reviewed["status"] == "approved"
    return reviewer, calls


def assert_recorded(server: Server, decision_id: str, sha: str, amended: bool) -> None:
    """Approved, its token redeemed once, one receipt binding the approved action, one succeeded outcome."""
    assert [d["id"] for d in call(server, "GET", "/api/decisions")["items"]] == [decision_id], \
        "the snippet made exactly one request"

    record = call(server, "GET", f"/api/decision/{decision_id}")
    assert record["status"] == "approved"
    approved = record["approved_action"]
    assert (approved["tool_name"], approved["subject"]) == (ACTION, SUBJECT)
    assert approved["payload"] == {"sha": sha} and approved["amended"] is amended

    packet = call(server, "GET", f"/api/decision/{decision_id}/packet")
    assert packet["token"], "an approval token was issued"
    claims = packet["token"]["claims"]
    assert claims["act"] == approved["action_hash"], "the token binds the approved action"
    entries = [json.loads(base64.b64decode(e["leaf"])) for e in packet["audit_chain"]["entries"]]
    assert [e["jti"] for e in entries if e["type"] == "token_redeemed"] == [claims["jti"]], \
        "the approval token was redeemed, once"

    seen = call(server, "GET", f"/api/decision/{decision_id}/executions")
    assert len(seen["executions"]) == 1, "one execution receipt"
    receipt = seen["executions"][0]["receipt"]
    assert receipt["decision_id"] == decision_id
    assert receipt["token_jti"] == claims["jti"], "the receipt names the redeemed token"
    assert receipt["action_hash"] == approved["action_hash"], "the receipt binds the approved action"
    assert [o["outcome"]["status"] for o in seen["outcomes"]] == ["succeeded"]


@pytest.mark.parametrize(
    ("review", "sha", "amended"),
    [
        ({"decision": "approve", "comment": "window open"}, "abc123", False),
        ({"decision": "approve", "comment": "deploy the hotfix instead", "amended_payload": {"sha": "def456"}},
         "def456", True),
    ],
    ids=["approved", "approved-with-changes"],
)
def test_readme_quick_start_python_block(
    quick_start_server: Server, monkeypatch: pytest.MonkeyPatch, review: dict[str, Any], sha: str, amended: bool
) -> None:
    reviewer, calls = run_quick_start(quick_start_server, review, monkeypatch)
    assert calls == [(sha, True)], "deploy ran exactly once, after the review, with the approved sha"
    assert reviewer.pending is not None
    assert_recorded(quick_start_server, reviewer.pending["id"], sha, amended)
