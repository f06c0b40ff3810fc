"""Offline checks of a Decision Packet: a port of ``gatehouse verify``
(the server's ``packet::verify`` and ``packet::reviews``).

The packet's entries are proven in a checkpoint signed by the key the
auditor trusts; the decision's state is derived from those entries alone,
with the same rules the server applies; then every bound field of the
packet is compared with that state. Each check says, in plain words, what
it compared and what differed; the names, order and words are the server's.
"""

from __future__ import annotations

import hashlib
from typing import Any

from .._text import b64decode_strict
from ..hashing import raw_action_hash
from ..jcs import canonical_sha256_hex
from ..models import ChainEntry, Check, Packet
from ._serde import serde_value
from .checkpoint import Checkpoint, CheckpointError, verify_checkpoint
from .entries import EntryError, parse_entry
from .merkle import leaf_hash, verify_inclusion
from .reviews import review_rule_check, reviews_check
from .rules import unix
from .state import DecisionState, derive

__all__ = ["PACKET_VERSION", "check_packet", "packet_hash", "record_hash", "conclusion"]

PACKET_VERSION = "decision-packet/v2"


class Checks:
    def __init__(self) -> None:
        self.items: list[Check] = []

    def add(self, name: str, ok: bool, detail: str) -> None:
        self.items.append(Check(name=name, ok=ok, detail=detail))

    def all(self, name: str, problems: list[str], fine: str) -> None:
        """Passes with ``fine`` when there are no problems, else fails listing them."""
        if problems:
            self.add(name, False, "; ".join(problems))
        else:
            self.add(name, True, fine)


def packet_hash(packet: Packet) -> str:
    """SHA-256 of the canonical packet without ``packet_hash`` (a checksum anyone can recompute)."""
    return canonical_sha256_hex(serde_value(packet.model_copy(update={"packet_hash": ""})))


def record_hash(packet: Packet) -> str:
    """SHA-256 of the canonical Decision Record."""
    return canonical_sha256_hex(serde_value(packet.record))


def _proven(e: ChainEntry, cp: Checkpoint | None) -> bytes | str:
    """The entry's bytes if they decode and are proven in ``cp``, else why not."""
    data = b64decode_strict(e.leaf)
    if data is None:
        return "its leaf is not base64"
    proof = [b64decode_strict(p) for p in e.proof]
    hashes = [p for p in proof if p is not None and len(p) == 32]
    ok = (
        cp is not None
        and len(hashes) == len(proof)
        and verify_inclusion(hashes, cp.size, cp.root, e.index, leaf_hash(data))
    )
    return data if ok else "its inclusion proof does not lead to the signed checkpoint's root"


def check_packet(packet: Packet, log_key: str) -> list[Check]:
    """Runs every offline check with ``log_key``, the verifier key the
    auditor trusts. The packet is verified only if every check is ok."""
    c = Checks()
    pid = packet.decision_id
    c.add(
        "packet_hash",
        packet_hash(packet) == packet.packet_hash,
        "SHA-256 of the canonical packet without packet_hash (a checksum; anyone can recompute it)",
    )
    c.add(
        "packet_version",
        packet.packet_version == PACKET_VERSION,
        f"the packet is {packet.packet_version}; this verifier reads {PACKET_VERSION}",
    )
    cp: Checkpoint | None
    try:
        cp = verify_checkpoint(packet.audit_chain.checkpoint, log_key)
        c.add("checkpoint_signature", True, f"the checkpoint of {cp.origin} at size {cp.size} is signed by the given key")
    except CheckpointError as e:
        cp = None
        c.add("checkpoint_signature", False, str(e))

    leaves: list[tuple[int, bytes]] = []
    for entry in packet.audit_chain.entries:
        name = f"entry_{entry.index}"
        proven = _proven(entry, cp)
        if isinstance(proven, str):
            c.add(name, False, f"log entry {entry.index}: {proven}")
            continue
        try:
            about = parse_entry(proven).id == pid
        except EntryError as err:
            c.add(name, False, f"log entry {entry.index}: {err}")
        else:
            if about:
                c.add(name, True, f"log entry {entry.index} is in the signed log and is about {pid}")
            else:
                c.add(name, False, f"log entry {entry.index} is about another record")
        leaves.append((entry.index, proven))
    in_order = all(a[0] < b[0] for a, b in zip(leaves, leaves[1:]))
    state, chain = derive(pid, leaves)
    if not in_order:
        chain.append("the entries are not in log order")
    c.all(
        "chain",
        chain,
        f"{len(leaves)} entries form an unbroken chain from the decision's own entry, "
        "each allowed by the rules where it stands",
    )
    if state is None:
        c.add("status", False, "no decision entry: no state can be derived")
        return c.items

    _record(c, packet, state)
    c.add(
        "status",
        packet.status == state.status,
        f"the packet says {packet.status}; its log entries say {state.status}",
    )
    c.all("reviews", reviews_check(packet, state.reviews), f"{len(state.reviews)} reviews, each equal to its log entry")
    review_rule_check(c, packet, state)
    _token(c, packet, state)
    _evidence(c, packet, state)
    _policy(c, packet, cp)
    return c.items


def _record(c: Checks, packet: Packet, state: DecisionState) -> None:
    wrong = []
    if packet.record_hash != state.record_hash:
        wrong.append(f"record_hash {packet.record_hash} is not the logged {state.record_hash}")
    if record_hash(packet) != packet.record_hash:
        wrong.append("the record does not hash to record_hash")
    if packet.record.decision_id != packet.decision_id:
        wrong.append(f"the record is about {packet.record.decision_id}")
    if packet.record.action_hash != state.action_hash:
        wrong.append("the record's action_hash is not the logged one")
    c.all("record", wrong, "the record hashes to the record_hash its decision entry logged")
    r = packet.request
    if r is not None:
        digest = raw_action_hash(r.tool_name, r.subject, r.payload)
        bound = (
            digest == packet.record.action_hash
            and r.workflow_name == packet.record.workflow
            and r.subject == packet.record.subject
        )
        c.add(
            "request",
            bound,
            "the request's action hashes to the record's action_hash"
            if bound
            else f"the request's action hashes to {digest}, not the record's",
        )


def _as_i64(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or not -(2**63) <= value < 2**63:
        return None
    return value


def _token(c: Checks, packet: Packet, state: DecisionState) -> None:
    logged = state.token.item if state.token is not None else None
    shown = packet.token
    if shown is None:
        ok = logged is None or logged["claims_hash"] is None
        c.add(
            "token",
            ok,
            "no token claims are shown (none is bound by the log)"
            if ok
            else "a token was logged with its claims' hash, but the packet shows no token",
        )
        return
    if logged is None or state.token is None:
        c.add("token", False, "the packet shows a token no log entry records")
        return
    claims = shown.claims if isinstance(shown.claims, dict) else {}
    wrong = []
    claims_hash = "sha256:" + canonical_sha256_hex(shown.claims)
    if logged["claims_hash"] is None:
        wrong.append("its entry was logged before claims were bound, so the claims cannot be verified")
    elif logged["claims_hash"] != claims_hash:
        wrong.append("the claims do not hash to the logged claims hash")
    if shown.kid != logged["kid"]:
        wrong.append(f"kid {shown.kid} is not the logged {logged['kid']}")
    if claims.get("jti") != logged["jti"] or not isinstance(claims.get("jti"), str):
        wrong.append(f"jti is not the logged {logged['jti']}")
    if _as_i64(claims.get("exp")) != unix(logged["exp"]):
        wrong.append(f"exp is not the logged expiry {logged['exp']}")
    if claims.get("sub") != packet.decision_id or not isinstance(claims.get("sub"), str):
        wrong.append("sub does not name this decision")
    if claims.get("dec") != state.leaf_hash or not isinstance(claims.get("dec"), str):
        wrong.append("dec is not the leaf hash of the decision's entry")
    if claims.get("act") != state.approved_action_hash or not isinstance(claims.get("act"), str):
        wrong.append("act is not the approved action's hash")
    c.all(
        "token",
        wrong,
        f"the token's claims hash to what log entry {state.token.index} recorded and name this decision, "
        "its action and expiry",
    )


def _evidence(c: Checks, packet: Packet, state: DecisionState) -> None:
    decided = unix(state.created_at)
    wrong = []
    if len(packet.executions) != len(state.executions):
        wrong.append(f"the packet shows {len(packet.executions)} receipts; the log has {len(state.executions)}")
    for r, entry in zip(packet.executions, state.executions):
        executed = unix(r.executed_at)
        after = executed is not None and decided is not None and executed >= decided
        if r.execution_id != entry.item["execution_id"] or canonical_sha256_hex(serde_value(r)) != entry.item[
            "execution_hash"
        ]:
            wrong.append(f"receipt {r.execution_id} is not the one log entry {entry.index} recorded")
        elif r.decision_id != packet.decision_id or not after:
            wrong.append(f"receipt {r.execution_id} is for another decision or dated before it")
    c.all("receipts", wrong, f"{len(state.executions)} receipts, each equal to its log entry")
    wrong = []
    if len(packet.outcomes) != len(state.outcomes):
        wrong.append(f"the packet shows {len(packet.outcomes)} outcomes; the log has {len(state.outcomes)}")
    for o, entry in zip(packet.outcomes, state.outcomes):
        if (
            o.outcome_id != entry.item["outcome_id"]
            or canonical_sha256_hex(serde_value(o)) != entry.item["outcome_hash"]
            or o.decision_id != packet.decision_id
        ):
            wrong.append(f"outcome {o.outcome_id} is not the one log entry {entry.index} recorded")
    c.all("outcomes", wrong, f"{len(state.outcomes)} outcomes, each equal to its log entry")


def _policy(c: Checks, packet: Packet, cp: Checkpoint | None) -> None:
    p = packet.policy
    wrong = []
    if p.policy_version != packet.record.policy_version:
        wrong.append(f"policy_version {p.policy_version} is not the record's {packet.record.policy_version}")
    recorded: dict[str, str] | None = None
    if p.entry is None:
        if p.policies:
            wrong.append("policy texts are shown without their policy_version entry")
    else:
        proven = _proven(p.entry, cp)
        if isinstance(proven, str):
            wrong.append(f"policy entry {p.entry.index}: {proven}")
        else:
            try:
                entry = parse_entry(proven)
            except EntryError as err:
                wrong.append(f"policy entry {p.entry.index}: {err}")
            else:
                if entry.type == "policy_version" and entry.id == p.policy_version:
                    recorded = entry.fields["policies"]
                else:
                    wrong.append(
                        f"log entry {p.entry.index} is not the entry of policy version {p.policy_version}"
                    )
    if p.entry is not None and recorded is None and not wrong:
        wrong.append("the policy version was logged without per-policy hashes")
    if p.entry is not None:
        # The texts shown are those of every policy the record names as
        # evidence for its verdict: none left out, none added.
        named = sorted({r.policy_id for r in packet.record.evidence if r.policy_id is not None})
        shown = sorted({t.id for t in p.policies})
        if named != shown:
            wrong.append(
                f"the texts shown ({', '.join(shown)}) are not those of the policies the record names "
                f"({', '.join(named)})"
            )
    for text in p.policies:
        if recorded is not None and recorded.get(text.id) != "sha256:" + _sha256_text(text.text):
            wrong.append(f"the text of policy {text.id} is not the one its version recorded")
    c.all(
        "policy",
        wrong,
        f"{len(p.policies)} policy texts, each hashing to what policy version {p.policy_version} recorded",
    )


def _sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def conclusion(checks: list[Check]) -> tuple[bool, str]:
    """Whether every check passed, and the line that says so."""
    failed = sum(1 for ch in checks if not ch.ok)
    if failed == 0 and checks:
        return True, f"verified: all {len(checks)} checks passed"
    return False, f"NOT verified: {failed} of {len(checks)} checks failed"
