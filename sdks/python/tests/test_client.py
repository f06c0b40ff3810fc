"""Every client call against the real server, with the sync and the async
client alike (each test runs once per kind)."""

from __future__ import annotations

import base64
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from conftest import AGENT, AUDITOR, OTHER_AGENT, REVIEWER, review_when_pending, unique
from gatehouse import (
    GateRequestError,
    Gatehouse,
    GateInvalidRequest,
    GateUnavailable,
    action_hash,
    verify_packet,
    verify_token,
)
from gatehouse.audit import leaf_hash, verify_consistency, verify_inclusion
from gatehouse.audit.checkpoint import verify_checkpoint
from gateserver import Server


def agent(server: Server, connect: Callable[..., Any], name: str = AGENT) -> Any:
    return connect(server.url, server.keys[name])


def test_request_allow_carries_a_token_bound_to_the_payload(server: Server, connect: Callable[..., Any]) -> None:
    gate = agent(server, connect)
    subject = unique()
    d = gate.request(agent="billing", action="issue_refund", risk="low", subject=subject,
                     context={"amount": 500, "currency": "usd"}, summary=["a small refund"])
    assert (d.status, d.verdict, d.may_proceed) == ("allow", "allow", True)
    assert d.id.startswith("dec_") and d.payload == {"amount": 500, "currency": "usd"}
    assert d.summary == ["a small refund"] and d.workflow_name == "billing" and d.tool_name == "issue_refund"
    assert d.approved_action is not None and d.approved_action.amended is False
    assert d.approved_action.action_hash == action_hash("issue_refund", subject, {"amount": 500, "currency": "usd"})
    claims = verify_token(d.approval_token, d.approved_action, jwks=gate.jwks())
    assert claims.sub == d.id and claims.act == d.approved_action.action_hash


def test_request_reject_and_pending(server: Server, connect: Callable[..., Any]) -> None:
    gate = agent(server, connect)
    rejected = gate.request(agent="ops", action="drop_database", risk="low", subject=unique("db"))
    assert (rejected.status, rejected.may_proceed, rejected.approval_token) == ("reject", False, None)
    assert rejected.evidence[0].policy_id == "drop-database-never"
    pending = gate.request(agent="ops", action="restart_service", risk="high", subject=unique("svc"), task_id="run-1")
    assert (pending.status, pending.may_proceed, pending.task_id) == ("pending_review", False, "run-1")
    assert pending.review_deadline is not None and pending.approval_token is None


def test_idempotency_returns_the_original_and_refuses_a_different_request(
    server: Server, connect: Callable[..., Any]
) -> None:
    gate = agent(server, connect)
    key, subject = unique("idem"), unique()
    first = gate.request(agent="billing", action="issue_refund", risk="low", subject=subject,
                         context={"amount": 100}, idempotency_key=key)
    again = gate.request(agent="billing", action="issue_refund", risk="low", subject=subject,
                         context={"amount": 100}, idempotency_key=key)
    assert again.id == first.id
    with pytest.raises(GateRequestError) as e:
        gate.request(agent="billing", action="issue_refund", risk="low", subject=subject,
                     context={"amount": 101}, idempotency_key=key)
    assert (e.value.status_code, e.value.code) == (409, "idempotency_conflict")


def test_get_and_record_and_wait_for_an_approval(server: Server, connect: Callable[..., Any]) -> None:
    gate = agent(server, connect)
    subject = unique()
    d = gate.request(agent="billing", action="issue_refund", risk="high", subject=subject, context={"amount": 50000})
    assert gate.get(d.id).status == "pending_review"
    reviewer = review_when_pending(server, subject, delay=1.0)
    started = time.monotonic()
    done = gate.wait_for(d.id, timeout=20)
    assert done.status == "approved" and done.may_proceed and time.monotonic() - started < 15
    assert done.review is not None and done.review.decision == "approve"
    reviewer.join()
    # Read by the reviewer: reviewers never hold the approval token.
    record = connect(server.url, server.keys[REVIEWER]).record(d.id)
    assert (record.decision_id, record.status, record.verdict) == (d.id, "approved", "review")
    assert record.request is not None and record.request.payload == {"amount": 50000}
    assert record.approval_token is None


def test_the_agent_reads_an_approved_decision_more_than_once(server: Server, connect: Callable[..., Any]) -> None:
    # The first read after an approval issues the token; every later read
    # must return the same token (README: "reading the decision again
    # returns the same one"), through either API.
    gate = agent(server, connect)
    subject = unique()
    d = gate.request(agent="ops", action="restart_service", risk="high", subject=subject)
    review_when_pending(server, subject, delay=0.2).join()
    first = gate.get(d.id)
    assert first.status == "approved" and first.approval_token
    assert gate.get(d.id).approval_token == first.approval_token
    assert gate.record(d.id).approval_token == first.approval_token


def test_wait_for_returns_pending_when_the_wait_runs_out(server: Server, connect: Callable[..., Any]) -> None:
    gate = agent(server, connect)
    d = gate.request(agent="ops", action="restart_service", risk="high", subject=unique("svc"))
    started = time.monotonic()
    assert gate.wait_for(d.id, timeout=1.5).status == "pending_review"
    assert 0.9 <= time.monotonic() - started < 5


def test_wait_for_spans_several_server_long_polls(
    server_with: Callable[..., Server], kind: str, connect: Callable[..., Any]
) -> None:
    # The server holds a long-poll for 1 s at most; the approval comes after
    # about 3 s, so wait_for must ask again across the server's cap.
    s = server_with("--rate-limit", "0", "--max-wait", "1s")
    polls: list[str] = []

    def count(request: httpx.Request) -> None:
        if request.url.params.get("wait"):
            polls.append(request.url.params["wait"])

    async def acount(request: httpx.Request) -> None:
        count(request)

    http: Any = (
        httpx.Client(event_hooks={"request": [count]})
        if kind == "sync"
        else httpx.AsyncClient(event_hooks={"request": [acount]})
    )
    gate = connect(s.url, s.keys[AGENT], http_client=http)
    subject = unique()
    d = gate.request(agent="ops", action="restart_service", risk="high", subject=subject)
    review_when_pending(s, subject, delay=3.0)
    assert gate.wait_for(d.id, timeout=30).status == "approved"
    assert len(polls) >= 3, polls


def test_tasks_request_and_events(server: Server, connect: Callable[..., Any]) -> None:
    gate = agent(server, connect)
    task = gate.tasks(unique("run"))
    d = task.request(workflow_name="GitHub Actions", tool_name="run_tests", subject="main", risk_level="low",
                     payload={"sha": "abc123"}, task_label="CI", preview="run the tests", idempotency_key=unique())
    assert (d.status, d.task_id, d.task_label, d.preview) == ("allow", task.task_id, "CI", "run the tests")
    event = task.event("deployed", message="went out", decision_id=d.id, data={"ok": True})
    assert (event.kind, event.decision_id, event.data) == ("deployed", d.id, {"ok": True})
    assert [e.id for e in task.events().items] == [event.id]


def test_decide_returns_a_decision_record(server: Server, connect: Callable[..., Any]) -> None:
    gate = agent(server, connect)
    source = unique("inv")
    r = gate.decide(question="May we refund this invoice?", context={
        "workflow": "billing", "requested_action": "issue_refund", "source_record_id": source,
        "risk": "low", "amount": 700, "currency": "eur"})
    assert (r.verdict, r.status, r.subject, r.requested_action) == ("yes", "allow", source, "issue_refund")
    assert r.question == "May we refund this invoice?" and r.record_version == "decision-record/v1"
    assert r.action_hash == action_hash("issue_refund", source, {"amount": 700, "currency": "eur"})
    assert r.approval_token and r.approved_action is not None
    review = gate.decide(question="Drop it?", context={"workflow": "ops", "requested_action": "rotate_keys",
                                                      "risk": "high"}, idempotency_key=unique())
    assert (review.verdict, review.status) == ("review", "pending_review")


def test_review_with_amendment_and_the_approved_action(server: Server, connect: Callable[..., Any]) -> None:
    gate, reviewer = agent(server, connect), connect(server.url, server.keys[REVIEWER])
    subject = unique()
    d = gate.request(agent="billing", action="issue_refund", risk="high", subject=subject,
                     context={"amount": 50000, "currency": "usd"})
    listed = reviewer.list_decisions(status="pending_review", limit=500).items
    assert d.id in [x.id for x in listed]
    reviewed = reviewer.review(d.id, "approve", comment="cap it", amended_payload={"amount": 20000, "currency": "usd"})
    assert reviewed.status == "approved"
    view = gate.get(d.id)
    assert view.approved_action is not None and view.approved_action.amended
    assert view.approved_action.payload == {"amount": 20000, "currency": "usd"}
    assert view.payload == {"amount": 50000, "currency": "usd"}  # the proposal stays on record
    with pytest.raises(GateRequestError) as e:
        reviewer.review(d.id, "reject", comment="too late")
    assert (e.value.status_code, e.value.code) == (409, "not_pending")


def test_redeem_report_and_read_executions(server: Server, connect: Callable[..., Any]) -> None:
    gate = agent(server, connect)
    subject = unique()
    d = gate.request(agent="billing", action="issue_refund", risk="low", subject=subject, context={"amount": 900})
    with pytest.raises(GateRequestError) as e:
        gate.redeem(d.approval_token, {"action": "issue_refund", "subject": subject, "payload": {"amount": 901}})
    assert e.value.code == "token_rejected"
    redeemed = gate.redeem(d.approval_token, {"action": "issue_refund", "subject": subject, "payload": {"amount": 900}})
    assert (redeemed.redeemed, redeemed.decision_id) == (True, d.id)
    with pytest.raises(GateRequestError) as e:
        gate.redeem(d.approval_token, d.approved_action)
    assert (e.value.status_code, e.value.code) == (409, "token_already_redeemed")
    receipt = gate.report_execution(d.id, target_system="stripe", target_object="re_1", mutation="create_refund",
                                    executor="worker", action=d.approved_action, token_jti=redeemed.jti,
                                    state_before_hash="sha256:00", state_after_hash="sha256:11")
    assert receipt.receipt.action_hash == d.approved_action.action_hash and receipt.receipt.token_jti == redeemed.jti
    outcome = gate.report_outcome(d.id, status="succeeded", action_taken="refund sent",
                                  observed_metrics={"amount": 900}, target_system="stripe")
    assert (outcome.outcome.status, outcome.outcome.observed_metrics) == ("succeeded", {"amount": 900})
    seen = gate.executions(d.id)
    assert [x.execution_hash for x in seen.executions] == [receipt.execution_hash]
    assert [x.outcome_hash for x in seen.outcomes] == [outcome.outcome_hash]
    with pytest.raises(GateRequestError) as e:
        gate.report_execution(d.id, target_system="stripe", target_object="re_2", mutation="create_refund",
                              executor="worker", action={"tool_name": "issue_refund", "subject": subject,
                                                         "payload": {"amount": 99999}}, token=d.approval_token)
    assert (e.value.status_code, e.value.code) == (409, "execution_refused")
    assert gate.get(d.id).flagged_for_review


def test_packet_verify_replay_and_log(server: Server, connect: Callable[..., Any]) -> None:
    gate, auditor = agent(server, connect), connect(server.url, server.keys[AUDITOR])
    d = gate.request(agent="billing", action="issue_refund", risk="low", subject=unique(), context={"amount": 5})
    packet = gate.packet(d.id)
    key = gate.log_key()
    assert verify_packet(packet, log_key=key).verified
    assert auditor.verify(d.id).valid
    replay = auditor.replay(d.id)
    assert (replay.matches, replay.original.verdict) == (True, "allow")
    assert auditor.replay(d.id, policies="current").replayed_policy_version == replay.policy_version
    checkpoint = gate.checkpoint()
    cp = verify_checkpoint(checkpoint, key)
    proof = gate.inclusion_proof(d.log_index, cp.size)
    leaf = base64.b64decode(proof.leaf)
    assert base64.b64decode(proof.leaf_hash) == leaf_hash(leaf) and leaf_hash(leaf).hex() == d.receipt_hash
    assert verify_inclusion([base64.b64decode(p) for p in proof.proof], cp.size, cp.root, d.log_index, leaf_hash(leaf))
    later = gate.request(agent="billing", action="issue_refund", risk="low", subject=unique(), context={"amount": 6})
    new_cp = verify_checkpoint(gate.checkpoint(), key)
    assert new_cp.size > cp.size and later.log_index is not None
    consistency = gate.consistency_proof(cp.size, new_cp.size)
    assert (consistency.from_, consistency.to) == (cp.size, new_cp.size)
    hashes = [base64.b64decode(p) for p in consistency.proof]
    assert verify_consistency(hashes, cp.size, cp.root, new_cp.size, new_cp.root)
    assert not verify_consistency(hashes, cp.size, new_cp.root, new_cp.size, cp.root)


def test_identity_health_and_readiness(server: Server, connect: Callable[..., Any]) -> None:
    gate = agent(server, connect)
    me = gate.whoami()
    assert (me.name, me.role) == (AGENT, "agent")
    assert gate.health().status == "ok"
    assert gate.ready().policies == 8


def test_server_refusals_are_typed_with_their_code(server: Server, connect: Callable[..., Any]) -> None:
    gate, other = agent(server, connect), agent(server, connect, OTHER_AGENT)
    d = gate.request(agent="billing", action="issue_refund", risk="low", subject=unique(), context={"amount": 5})
    with pytest.raises(GateRequestError) as e:
        other.get(d.id)  # another agent's decision is not shown to exist
    assert (e.value.status_code, e.value.code) == (404, "not_found") and e.value.request_id
    with pytest.raises(GateRequestError) as e:
        other.review(d.id, "approve")
    assert (e.value.status_code, e.value.code) == (403, "forbidden")
    with pytest.raises(GateRequestError) as e:
        gate.get("dec_does_not_exist")
    assert (e.value.status_code, e.value.code) == (404, "not_found")
    with pytest.raises(GateRequestError) as e:
        gate.request(agent="billing", action="issue_refund", risk="low", subject=unique(), context={"amount": "five"})
    assert (e.value.status_code, e.value.code) == (400, "schema_mismatch")
    with pytest.raises(GateRequestError) as e:
        connect(server.url, "not-a-key").whoami()
    assert (e.value.status_code, e.value.code) == (401, "unauthorized")
    with pytest.raises(GateInvalidRequest):
        gate.request(agent=" ", action="issue_refund", risk="low", subject="x")
    with pytest.raises(GateInvalidRequest):
        gate.request(agent="a", action="issue_refund", risk="extreme", subject="x")  # type: ignore[arg-type]


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_server_down_is_unavailable(connect: Callable[..., Any]) -> None:
    gate = connect(closed_port_url(), "any-key", max_retries=1)
    started = time.monotonic()
    with pytest.raises(GateUnavailable) as e:
        gate.request(agent="billing", action="issue_refund", risk="low", subject="x", context={"amount": 1})
    assert e.value.status_code is None and time.monotonic() - started < 10
    with pytest.raises(GateUnavailable):
        gate.get("dec_x")


def test_rate_limits_are_unavailable_and_retried_when_safe(
    server_with: Callable[..., Server], connect: Callable[..., Any]
) -> None:
    s = server_with("--rate-limit", "1", "--rate-burst", "1")
    impatient = connect(s.url, s.keys[AGENT], max_retries=0)
    impatient.whoami()
    with pytest.raises(GateUnavailable) as e:
        impatient.whoami()
    assert (e.value.status_code, e.value.code) == (429, "rate_limited") and e.value.retry_after is not None
    # A read is safe to repeat: the client waits as told and tries again.
    patient = connect(s.url, s.keys[AGENT], max_retries=3)
    assert patient.whoami().name == AGENT
    assert patient.whoami().name == AGENT
    # A request without an idempotency key is never sent twice.
    time.sleep(1.1)
    patient.whoami()
    with pytest.raises(GateUnavailable):
        patient.request(agent="billing", action="issue_refund", risk="low", subject="x", context={"amount": 1})
    time.sleep(1.1)
    patient.whoami()
    d = patient.request(agent="billing", action="issue_refund", risk="low", subject="x", context={"amount": 1},
                        idempotency_key=unique())
    assert d.status == "allow"


def test_too_many_connections_is_unavailable(
    server_with: Callable[..., Server], connect: Callable[..., Any]
) -> None:
    # With room for one connection, a second one while a long-poll holds
    # the first is answered 503 by the real server.
    s = server_with("--rate-limit", "0", "--max-connections", "1")
    holder = Gatehouse(s.url, api_key=s.keys[AGENT])
    d = holder.request(agent="ops", action="restart_service", risk="high", subject=unique("svc"))
    t = threading.Thread(target=lambda: holder.wait_for(d.id, timeout=3), daemon=True)
    t.start()
    time.sleep(0.5)
    with pytest.raises(GateUnavailable) as e:
        connect(s.url, s.keys[AGENT], max_retries=0).get(d.id)
    assert e.value.status_code == 503
    t.join()
    holder.close()

