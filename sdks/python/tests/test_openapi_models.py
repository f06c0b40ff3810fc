"""The models against the OpenAPI document (the same check test.sh runs
first), shown to fail on each kind of change; and the two clients' parity."""

from __future__ import annotations

import copy
import inspect
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))

import check_models  # noqa: E402

from gatehouse import AsyncGatehouse, AsyncTask, Gatehouse, Task  # noqa: E402

DOC = json.loads(check_models.DOCUMENT.read_text())


def test_the_committed_document_matches_the_models() -> None:
    assert check_models.check(DOC) == []


Schemas = dict[str, Any]
MUTATIONS: list[tuple[str, Callable[[Schemas, dict[str, Any]], None], str]] = [
    ("a field removed", lambda s, d: s["GateView"]["allOf"][1]["properties"].pop("may_proceed"), "may_proceed"),
    ("a field added", lambda s, d: s["Redeemed"]["properties"].update(extra={"type": "string"}), "extra"),
    ("a field made required", lambda s, d: s["ReviewBody"]["required"].append("comment"), "ReviewBody.comment"),
    ("a field made optional", lambda s, d: s["SdkGateBody"]["required"].remove("risk"), "SdkGateBody.risk"),
    ("a type changed", lambda s, d: s["Check"]["properties"]["ok"].update(type="string"), "Check.ok"),
    ("made nullable", lambda s, d: s["ApprovedAction"]["properties"]["payload"].update(type=["object", "null"]),
     "ApprovedAction.payload"),
    ("an enum value added", lambda s, d: s["Status"]["enum"].append("paused"), "Status"),
    ("an inline enum changed", lambda s, d: s["DecideBody"]["properties"]["context"]["properties"]["risk"].update(
        enum=["low", "high", None]), "DecideBody.context.risk"),
    ("a length changed", lambda s, d: s["SdkGateBody"]["properties"]["agent"].update(maxLength=100), "agent"),
    ("a pattern changed", lambda s, d: s["RedeemBody"]["properties"]["token"].update(pattern="^.*$"), "token"),
    ("unknown fields allowed", lambda s, d: s["GateBody"].update(additionalProperties=True), "GateBody"),
    ("a new schema", lambda s, d: s.update(NewThing={"type": "object"}), "NewThing"),
    ("a schema removed", lambda s, d: s.pop("Health"), "Health"),
    ("a route moved", lambda s, d: d["paths"].update({"/api/tokens/redeem2": d["paths"].pop("/api/tokens/redeem")}),
     "route redeem"),
    ("a route's answer changed", lambda s, d: d["paths"]["/api/decide"]["post"]["responses"]["201"]["content"][
        "application/json"]["schema"].update({"$ref": "#/components/schemas/GateView"}), "route decide"),
]


@pytest.mark.parametrize("what,mutate,named", MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_the_check_fails_when_the_document_changes(
    what: str, mutate: Callable[[Schemas, dict[str, Any]], None], named: str
) -> None:
    doc = copy.deepcopy(DOC)
    mutate(doc["components"]["schemas"], doc)
    problems = check_models.check(doc)
    assert problems and any(named in p for p in problems), problems


def public_methods(cls: type) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(fn)
        for name, fn in inspect.getmembers(cls, inspect.isfunction)
        if not name.startswith("_") and name not in ("close", "aclose")
    }


@pytest.mark.parametrize("sync,async_", [(Gatehouse, AsyncGatehouse), (Task, AsyncTask)])
def test_the_async_client_has_the_sync_clients_api(sync: type, async_: type) -> None:
    ours, theirs = public_methods(sync), public_methods(async_)
    assert ours.keys() == theirs.keys()
    for name, signature in ours.items():
        assert list(signature.parameters) == list(theirs[name].parameters), name
        coroutine = inspect.iscoroutinefunction(getattr(async_, name))
        assert coroutine == (name not in ("tasks", "guard", "from_env")), name
