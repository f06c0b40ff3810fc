"""``verify_packet`` on Decision Packets the live server produced, for every
kind of decision, and on tampered copies: each tampering fails the check
that binds what was changed. Every verdict is also compared, check by check
and word for word, with ``gatehouse verify --json``."""

from __future__ import annotations

import base64
import copy
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import AGENT, AUDITOR, LEAD, REVIEWER, REVIEWER_2, review_when_pending, unique
from gatehouse import Gatehouse, verify_packet
from gatehouse.audit.packet import packet_hash
from gatehouse.models import Packet
from gateserver import Server, cli

Raw = dict[str, Any]


@pytest.fixture(scope="module")
def packets(server: Server) -> dict[str, Raw]:
    """One packet of each kind, as the server's JSON."""
    agent = Gatehouse(server.url, api_key=server.keys[AGENT])
    auditor = Gatehouse(server.url, api_key=server.keys[AUDITOR])
    ids: dict[str, str] = {}

    with agent.guard(agent="billing", action="issue_refund", risk="low", subject=unique(), args={"amount": 900}) as run:
        run.target_object = "re_1"
        run.observed_metrics = {"refunded": 900}
    ids["allowed_and_run"] = run.decision_id

    subject = unique()
    review_when_pending(server, subject, amended_payload={"amount": 20000, "currency": "usd"}, comment="cap it")
    with agent.guard(agent="billing", action="issue_refund", risk="high", subject=subject,
                     args={"amount": 50000, "currency": "usd"}, wait_timeout=20) as run:
        run.state_after_hash = "sha256:" + "ab" * 32
    ids["amended_and_run"] = run.decision_id

    subject = unique()
    review_when_pending(server, subject, "reject", comment="not today")
    d = agent.request(agent="ops", action="restart_service", risk="high", subject=subject)
    assert agent.wait_for(d.id, timeout=20).status == "rejected"
    ids["rejected_by_reviewer"] = d.id

    ids["rejected_by_policy"] = agent.request(agent="ops", action="drop_database", risk="low", subject=unique()).id
    ids["pending"] = agent.request(agent="ops", action="restart_service", risk="medium", subject=unique()).id

    subject = unique("wire")
    d = agent.request(agent="treasury", action="wire_transfer", risk="high", subject=subject, context={"amount": 7})
    review_when_pending(server, subject, delay=0).join()
    review_when_pending(server, subject, delay=0, reviewer=REVIEWER_2).join()
    assert agent.get(d.id).status == "approved"
    ids["two_approvals"] = d.id

    r = agent.decide(question="Refund this invoice?", context={
        "workflow": "billing", "requested_action": "issue_refund", "source_record_id": unique("inv"),
        "risk": "low", "amount": 5})
    ids["decide"] = r.decision_id

    # Only security may approve, until security-leads may too (after 1 s):
    # once the sweeper has logged the escalation, a lead approves.
    d = agent.request(agent="iam", action="grant_access", risk="high", subject=unique("user"))
    deadline = time.monotonic() + 15
    while not any(json.loads(base64.b64decode(e.leaf))["type"] == "escalation"
                  for e in agent.packet(d.id).audit_chain.entries):
        assert time.monotonic() < deadline, "the escalation was never logged"
        time.sleep(0.3)
    with Gatehouse(server.url, api_key=server.keys[LEAD]) as lead:
        lead.review(d.id, "approve", comment="escalated to me")
    ids["escalated"] = d.id

    # Nobody reviews it within its two seconds.
    d = agent.request(agent="ops", action="purge_cache", risk="high", subject=unique("cache"))
    deadline = time.monotonic() + 20
    while agent.wait_for(d.id, timeout=5).status == "pending_review" and time.monotonic() < deadline:
        pass
    ids["expired"] = d.id

    # The server's own JSON, exactly as an auditor downloads it.
    out = {
        name: httpx.get(f"{server.url}/api/decision/{i}/packet",
                        headers={"Authorization": f"Bearer {server.keys[AUDITOR]}"}).json()
        for name, i in ids.items()
    }
    agent.close()
    auditor.close()
    return out


@pytest.fixture(scope="module")
def log_key(server: Server) -> str:
    with Gatehouse(server.url) as gate:
        return gate.log_key()


def cli_report(packet: Raw, log_key: str, tmp: Path) -> Raw:
    path = tmp / "packet.json"
    path.write_text(json.dumps(packet))
    return json.loads(cli("verify", str(path), "--log-key", log_key, "--json", check=False))


def rehash(p: Raw) -> Raw:
    """The packet's checksum recomputed, as a forger would."""
    p["packet_hash"] = packet_hash(Packet.model_validate(p))
    return p


KINDS = ["allowed_and_run", "amended_and_run", "rejected_by_reviewer", "rejected_by_policy", "pending",
         "two_approvals", "decide", "escalated", "expired"]


@pytest.mark.parametrize("name", KINDS)
def test_every_kind_of_packet_verifies_as_the_cli_says(
    name: str, packets: dict[str, Raw], log_key: str, tmp_path: Path
) -> None:
    packet = packets[name]
    report = verify_packet(packet, log_key=log_key)
    assert report.verified, report.failed
    assert report.model_dump() == cli_report(packet, log_key, tmp_path)
    # The same result from the JSON text, from the parsed model, and with the key in a file.
    assert verify_packet(json.dumps(packet), log_key=log_key) == report
    assert verify_packet(Packet.model_validate(packet), log_key=log_key) == report
    (tmp_path / "log.key").write_text(log_key + "\n")
    assert verify_packet(packet, log_key=tmp_path / "log.key") == report


def test_packets_bind_what_happened(packets: dict[str, Raw]) -> None:
    amended = Packet.model_validate(packets["amended_and_run"])
    assert amended.status == "approved" and amended.reviews[0].amended_payload == {"amount": 20000, "currency": "usd"}
    assert amended.reviews[0].comment == "cap it" and len(amended.executions) == len(amended.outcomes) == 1
    assert amended.approved_action_hash == amended.executions[0].action_hash != amended.record.action_hash
    assert Packet.model_validate(packets["two_approvals"]).reviews[1].person == REVIEWER_2
    assert Packet.model_validate(packets["rejected_by_reviewer"]).status == "rejected"
    assert Packet.model_validate(packets["pending"]).token is None
    escalated = Packet.model_validate(packets["escalated"])
    assert escalated.status == "approved" and escalated.reviews[0].groups == ["security-leads"]
    kinds = [json.loads(base64.b64decode(e.leaf))["type"] for e in escalated.audit_chain.entries]
    assert kinds[:3] == ["decision", "escalation", "review"]
    assert Packet.model_validate(packets["expired"]).status == "expired"


def entry_index(p: Raw, kind: str) -> int:
    """The position in the chain of the first entry of ``kind``."""
    for i, e in enumerate(p["audit_chain"]["entries"]):
        if json.loads(base64.b64decode(e["leaf"]))["type"] == kind:
            return i
    raise AssertionError(f"no {kind} entry")


def edit_leaf(p: Raw, kind: str, change: Callable[[Raw], None]) -> Raw:
    i = entry_index(p, kind)
    leaf = json.loads(base64.b64decode(p["audit_chain"]["entries"][i]["leaf"]))
    change(leaf)
    text = json.dumps(leaf, separators=(",", ":"), sort_keys=True).encode()
    p["audit_chain"]["entries"][i]["leaf"] = base64.b64encode(text).decode()
    return p


def entry_names(p: Raw) -> set[str]:
    return {f"entry_{e['index']}" for e in p["audit_chain"]["entries"]}


# Each tampering, the packet it applies to, and exactly the checks it must
# fail (a set), or at least these (a frozenset, when a change ripples on).
Tamper = Callable[[Raw], Raw]
CASES: list[tuple[str, str, Tamper, set[str] | frozenset[str]]] = [
    ("unverified hint changed", "amended_and_run",
     lambda p: {**p, "unverified": {"forged": True}}, {"packet_hash"}),
    ("packet version", "amended_and_run",
     lambda p: rehash({**p, "packet_version": "decision-packet/v9"}), {"packet_version"}),
    ("checkpoint size", "amended_and_run",
     lambda p: rehash({**p, "audit_chain": {**p["audit_chain"], "checkpoint": p["audit_chain"]["checkpoint"].replace(
         "\n", "\n9", 1)}}), frozenset({"checkpoint_signature", "chain", "status"})),
    ("a leaf's bytes", "amended_and_run",
     lambda p: rehash(edit_leaf(p, "review", lambda leaf: leaf.update(reviewer="forged"))), frozenset({"chain"})),
    ("a proof hash", "amended_and_run",
     lambda p: rehash(_set(p, ["audit_chain", "entries", 0, "proof", 0], base64.b64encode(b"\0" * 32).decode())),
     frozenset({"chain"})),
    ("an entry removed", "amended_and_run",
     lambda p: rehash(_drop(p, ["audit_chain", "entries"], entry_index(p, "token_redeemed"))), frozenset({"chain"})),
    ("entries reordered", "amended_and_run",
     lambda p: rehash(_swap_last(p)), frozenset({"chain"})),
    ("record evidence", "amended_and_run",
     lambda p: rehash(_set(p, ["record", "evidence", 0, "message"], "all fine")), {"record"}),
    ("record hash", "amended_and_run",
     lambda p: rehash({**p, "record_hash": "00" * 32}), {"record"}),
    ("request payload", "amended_and_run",
     lambda p: rehash(_set(p, ["request", "payload", "amount"], 1)), {"request"}),
    ("status", "amended_and_run",
     lambda p: rehash({**p, "status": "rejected"}), {"status"}),
    ("review comment", "amended_and_run",
     lambda p: rehash(_set(p, ["reviews", 0, "comment"], "approved in full")), {"reviews"}),
    ("review amendment", "amended_and_run",
     lambda p: rehash(_set(p, ["reviews", 0, "amended_payload", "amount"], 50000)), {"reviews"}),
    ("review removed", "two_approvals",
     lambda p: rehash(_drop(p, ["reviews"], 1)), {"reviews"}),
    ("approved action hash", "amended_and_run",
     lambda p: rehash({**p, "approved_action_hash": p["record"]["action_hash"]}), {"review_rule"}),
    ("review rule quorum", "two_approvals",
     lambda p: rehash(_set(p, ["record", "review_rule", "requirements", 0, "quorum"], 1)), {"record", "review_rule"}),
    ("token expiry", "amended_and_run",
     lambda p: rehash(_set(p, ["token", "claims", "exp"], p["token"]["claims"]["exp"] + 3600)), {"token"}),
    ("token hidden", "amended_and_run",
     lambda p: rehash({**p, "token": None}), {"token"}),
    ("receipt target", "amended_and_run",
     lambda p: rehash(_set(p, ["executions", 0, "target_object"], "re_forged")), {"receipts"}),
    ("receipts hidden", "allowed_and_run",
     lambda p: rehash({**p, "executions": []}), {"receipts"}),
    ("outcome status", "allowed_and_run",
     lambda p: rehash(_set(p, ["outcomes", 0, "status"], "failed")), {"outcomes"}),
    ("policy text", "amended_and_run",
     lambda p: rehash(_set(p, ["policy", "policies", 0, "text"], "permit(principal, action, resource);")), {"policy"}),
    ("policy entry hidden", "amended_and_run",
     lambda p: rehash(_set(p, ["policy", "entry"], None)), {"policy"}),
    ("an escalation removed", "escalated",
     lambda p: rehash(_drop(p, ["audit_chain", "entries"], entry_index(p, "escalation"))), frozenset({"chain"})),
    ("reviewer's groups", "escalated",
     lambda p: rehash(_set(p, ["reviews", 0, "groups"], ["security"])), {"reviews"}),
    ("expired shown as approved", "expired",
     lambda p: rehash({**p, "status": "approved"}), {"status", "review_rule"}),
    ("not a packet", "allowed_and_run",
     lambda p: {k: v for k, v in p.items() if k != "record"}, {"packet"}),
]


def _set(p: Raw, path: list[Any], value: Any) -> Raw:
    target: Any = p
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return p


def _drop(p: Raw, path: list[str], index: int) -> Raw:
    target: Any = p
    for step in path:
        target = target[step]
    del target[index]
    return p


def _swap_last(p: Raw) -> Raw:
    entries = p["audit_chain"]["entries"]
    entries[-1], entries[-2] = entries[-2], entries[-1]
    return p


@pytest.mark.parametrize("what,kind,tamper,expected", CASES, ids=[c[0] for c in CASES])
def test_each_tampering_fails_its_check(
    what: str, kind: str, tamper: Tamper, expected: set[str] | frozenset[str],
    packets: dict[str, Raw], log_key: str, tmp_path: Path,
) -> None:
    packet = tamper(copy.deepcopy(packets[kind]))
    report = verify_packet(packet, log_key=log_key)
    failed = {c.name for c in report.failed}
    assert not report.verified
    if isinstance(expected, frozenset):
        assert expected <= failed, report.failed
    else:
        assert failed == expected, report.failed
    theirs = cli_report(packet, log_key, tmp_path)
    assert [(c["name"], c["ok"]) for c in theirs["checks"]] == [(c.name, c.ok) for c in report.checks]
    if what != "not a packet":  # the parser's own words differ; the verdict does not
        assert report.model_dump() == theirs


def test_a_key_the_auditor_does_not_trust_fails(
    packets: dict[str, Raw], server_with: Callable[..., Server], tmp_path: Path
) -> None:
    other = server_with()
    with Gatehouse(other.url) as gate:
        other_key = gate.log_key()
    packet = packets["amended_and_run"]
    report = verify_packet(packet, log_key=other_key)
    assert not report.verified and not report.check("checkpoint_signature").ok  # type: ignore[union-attr]
    assert entry_names(packet) <= {c.name for c in report.failed}
    assert report.model_dump() == cli_report(packet, other_key, tmp_path)
    for bad in ["not a key", other_key.replace("+", "-", 1), other_key[:-4] + "AAA="]:
        report = verify_packet(packet, log_key=bad)
        assert not report.check("checkpoint_signature").ok  # type: ignore[union-attr]
        assert report.model_dump() == cli_report(packet, bad, tmp_path)


def test_the_servers_own_checks_agree(server: Server, packets: dict[str, Raw], log_key: str) -> None:
    with Gatehouse(server.url, api_key=server.keys[REVIEWER]) as gate:
        for name in KINDS:
            packet = packets[name]
            ours = [(c.name, c.ok, c.detail) for c in verify_packet(packet, log_key=log_key).checks]
            theirs = [(c.name, c.ok, c.detail) for c in gate.verify(packet["decision_id"]).checks]
            # The server adds stored_rows; its checks may run on a newer checkpoint.
            names = {n for n, _, _ in ours}
            assert all(ok for n, ok, _ in theirs if n in names | {"stored_rows"})
            assert names <= {n for n, _, _ in theirs}

