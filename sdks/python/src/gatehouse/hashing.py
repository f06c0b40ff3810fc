"""The hashes Gatehouse binds actions and records with, computed locally."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .jcs import canonical_sha256_hex

__all__ = ["action_hash"]


def action_hash(action: str, subject: str, payload: Mapping[str, Any] | None = None) -> str:
    """The action hash (README "Signed approval tokens"): ``sha256:`` and the
    hex SHA-256 of the canonical JSON of ``{"action", "payload", "subject"}``.

    Names are taken after trimming surrounding white space, as the server
    stores them. This is what an approval token's ``act`` claim, a record's
    ``action_hash`` and every receipt bind.
    """
    return raw_action_hash(action.strip(), subject.strip(), payload or {})


def raw_action_hash(action: str, subject: str, payload: Mapping[str, Any]) -> str:
    """:func:`action_hash` of names exactly as given (what the server's own
    verifier computes over stored, already trimmed, names)."""
    canonical = {"action": action, "payload": dict(payload), "subject": subject}
    return "sha256:" + canonical_sha256_hex(canonical)
