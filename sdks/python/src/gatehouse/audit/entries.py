"""Transparency log entries: a leaf is the RFC 8785 canonical JSON of one
typed entry, ``{"v", "type", "id", "ts", ...}``. A port of the server's
``LogEntry::parse``: anything that is not exactly the canonical bytes of a
known entry of a readable version is refused."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..jcs import canonical_json

__all__ = ["LogEntry", "EntryError", "parse_entry", "CHAINED_KINDS"]

ENTRY_VERSION = 2
FIRST_VERSION = 1

# Field kinds, and how an absent value is written: "req" fields are always
# present; "null" fields are optional but always written (as null when
# absent); "skip" fields are optional and left out when absent.
_SPEC: dict[str, list[tuple[str, str, str]]] = {
    "decision": [
        ("request_id", "str", "req"),
        ("record_hash", "str", "req"),
        ("verdict", "verdict", "req"),
        ("policy_version", "str", "req"),
        ("action_hash", "str", "req"),
        ("created_by", "str", "req"),
        ("review_rule", "review_rule", "skip"),
    ],
    "review": [
        ("decision", "review_choice", "req"),
        ("reviewer", "str", "req"),
        ("reviewer_name", "str", "skip"),
        ("comment_hash", "str", "null"),
        ("person", "str", "skip"),
        ("groups", "str_list", "skip"),
        ("action_hash", "str", "skip"),
        ("resolves", "bool", "skip"),
    ],
    "escalation": [("group", "str", "req")],
    "expiry": [],
    "task_event": [
        ("task_id", "str", "req"),
        ("decision_id", "str", "null"),
        ("kind", "str", "req"),
        ("message_hash", "str", "null"),
        ("data_hash", "str", "req"),
        ("created_by", "str", "req"),
    ],
    "policy_version": [("files_hash", "str", "req"), ("policies", "str_map", "skip")],
    "token_issued": [
        ("jti", "str", "req"),
        ("kid", "str", "req"),
        ("exp", "str", "req"),
        ("claims_hash", "str", "skip"),
    ],
    "token_redeemed": [("jti", "str", "req"), ("redeemed_by", "str", "req")],
    "execution": [
        ("execution_id", "str", "req"),
        ("execution_hash", "str", "req"),
        ("action_hash", "str", "req"),
        ("token_jti", "str", "null"),
    ],
    "outcome": [("outcome_id", "str", "req"), ("outcome_hash", "str", "req"), ("status", "outcome_status", "req")],
    "flag": [("reason", "str", "req")],
    "key_event": [("event", "key_change", "req"), ("role", "str", "req")],
    "user_event": [("event", "user_change", "req"), ("role", "str", "req"), ("groups", "str_list", "skip")],
}

CHAINED_KINDS = frozenset(
    {"review", "escalation", "expiry", "token_issued", "token_redeemed", "execution", "outcome", "flag"}
)
"""Entries about a decision that follow an earlier one (they carry ``prev``)."""

# The fields that only version 2 entries have, all present or all absent.
_V2_FIELDS = {"review": "reviewer_name", "token_issued": "claims_hash", "policy_version": "policies"}

_ENUMS = {
    "verdict": ("allow", "reject", "pending_review"),
    "review_choice": ("approve", "reject"),
    "outcome_status": ("succeeded", "failed", "review", "pending"),
    "key_change": ("created", "revoked", "retired"),
    "user_change": ("created", "disabled", "groups_set", "password_set"),
}


class EntryError(Exception):
    """Why bytes are not a readable log entry (the message is the server's)."""


@dataclass(frozen=True)
class LogEntry:
    v: int
    id: str
    ts: str
    prev: str | None
    type: str
    fields: dict[str, Any]
    """The type's own fields, absent optional ones as None."""


class _Malformed(Exception):
    pass


def _str(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise _Malformed(f"invalid type for `{name}`, expected a string")
    return value


def _u64(value: Any, name: str, bits: int = 64) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**bits:
        raise _Malformed(f"invalid value for `{name}`, expected u{bits}")
    return value


def _value(kind: str, value: Any, name: str) -> Any:
    if kind == "str":
        return _str(value, name)
    if kind == "bool":
        if not isinstance(value, bool):
            raise _Malformed(f"invalid type for `{name}`, expected a boolean")
        return value
    if kind in _ENUMS:
        if value not in _ENUMS[kind] or not isinstance(value, str):
            raise _Malformed(f"unknown variant for `{name}`, expected one of {', '.join(_ENUMS[kind])}")
        return value
    if kind == "str_list":
        if not isinstance(value, list):
            raise _Malformed(f"invalid type for `{name}`, expected a sequence")
        return [_str(v, name) for v in value]
    if kind == "str_map":
        if not isinstance(value, dict):
            raise _Malformed(f"invalid type for `{name}`, expected a map")
        return {_str(k, name): _str(v, name) for k, v in value.items()}
    if kind == "review_rule":
        return _review_rule(value)
    raise AssertionError(kind)


def _review_rule(value: Any) -> dict[str, Any]:
    """A review rule as the server writes it (unknown members dropped, as
    the server's reader drops them; the byte comparison then notices)."""
    if not isinstance(value, dict):
        raise _Malformed("invalid type for `review_rule`, expected a map")
    if "requester" not in value or "requirements" not in value:
        raise _Malformed("missing field in `review_rule`")
    reqs = value["requirements"]
    if not isinstance(reqs, list):
        raise _Malformed("invalid type for `requirements`, expected a sequence")
    out = []
    for r in reqs:
        if not isinstance(r, dict) or "groups" not in r or "quorum" not in r:
            raise _Malformed("missing field in a requirement")
        req: dict[str, Any] = {
            "groups": _value("str_list", r["groups"], "groups"),
            "quorum": _u64(r["quorum"], "quorum", 32),
        }
        for opt in ("escalate_to", "escalate_at", "policy_id"):
            if r.get(opt) is not None:
                req[opt] = _str(r[opt], opt)
        out.append(req)
    return {"requester": _str(value["requester"], "requester"), "requirements": out}


def _serialise(entry: LogEntry) -> dict[str, Any]:
    obj: dict[str, Any] = {"v": entry.v, "id": entry.id, "ts": entry.ts, "type": entry.type}
    if entry.prev is not None:
        obj["prev"] = entry.prev
    for name, _, mode in _SPEC[entry.type]:
        value = entry.fields[name]
        if value is None and mode == "skip":
            continue
        obj[name] = value
    return obj


def parse_entry(data: bytes) -> LogEntry:
    """Reads a leaf's bytes into an entry, refusing anything that is not
    exactly the canonical bytes of a known entry of a readable version."""
    try:
        obj = json.loads(data.decode("utf-8"))
        if not isinstance(obj, dict):
            raise _Malformed("invalid type: expected a map")
        kind = obj.get("type")
        if not isinstance(kind, str) or kind not in _SPEC:
            raise _Malformed(f"unknown variant {kind!r} for `type`")
        for name in ("v", "id", "ts"):
            if name not in obj:
                raise _Malformed(f"missing field `{name}`")
        fields: dict[str, Any] = {}
        for name, field_kind, mode in _SPEC[kind]:
            value = obj.get(name)
            if value is None:
                if mode == "req":
                    raise _Malformed(f"missing field `{name}`")
                fields[name] = None
            else:
                fields[name] = _value(field_kind, value, name)
        prev = obj.get("prev")
        entry = LogEntry(
            v=_u64(obj["v"], "v"),
            id=_str(obj["id"], "id"),
            ts=_str(obj["ts"], "ts"),
            prev=None if prev is None else _str(prev, "prev"),
            type=kind,
            fields=fields,
        )
    except _Malformed as e:
        raise EntryError(f"not a log entry: {e}") from None
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise EntryError(f"not a log entry: {e}") from None
    if not FIRST_VERSION <= entry.v <= ENTRY_VERSION:
        raise EntryError(f"entry version {entry.v} is not supported")
    v2 = entry.v >= 2
    chain_ok = (entry.prev is not None) == (v2 and kind in CHAINED_KINDS)
    v2_field = _V2_FIELDS.get(kind)
    fields_ok = v2_field is None or (fields[v2_field] is not None) == v2
    if not chain_ok or not fields_ok:
        raise EntryError(f"a version {entry.v} entry of type {kind} lacks or has fields of another version")
    try:
        canonical = canonical_json(_serialise(entry))
    except ValueError:
        canonical = b""
    if canonical != data:
        raise EntryError("the bytes are not the canonical JSON of the entry they encode")
    return entry
