// Every client call against a real `gatehouse serve`: asking in both
// shapes, idempotency, tasks, Decide, reading, long-polling across the
// server's own wait limit, reviewing, redeeming, receipts and outcomes,
// packets and keys, and the typed errors of refused calls.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { canonicalSha256Hex, Gatehouse, GateRequestError, GateUnavailable } from "../dist/esm/index.js";
import { cli, startServer, TEST_POLICIES } from "./helpers/server.mjs";

const KEYS = { agent: "agent", other: "agent", reviewer: "reviewer", auditor: "auditor" };
let server;
let gate;
let other;
let reviewer;

before(async () => {
  server = await startServer({ keys: KEYS, policies: TEST_POLICIES });
  gate = new Gatehouse({ url: server.url, apiKey: server.keys.agent, timeoutMs: 10_000 });
  other = new Gatehouse({ url: server.url, apiKey: server.keys.other });
  reviewer = new Gatehouse({ url: server.url, apiKey: server.keys.reviewer });
});
after(() => server?.stop());

const low = (subject, context = { n: 1 }) => ({ agent: "sdk-test", action: "send_email", risk: "low", subject, context });

describe("gate.request (SDK names)", () => {
  test("allow: may proceed, with a token bound to exactly the context sent", async () => {
    const d = await gate.request({
      ...low("ticket-1", { to: "a@example.com", body: "hi" }),
      taskId: "task-allow",
      summary: ["reply to the ticket"],
    });
    assert.equal(d.status, "allow");
    assert.equal(d.verdict, "allow");
    assert.equal(d.may_proceed, true);
    assert.match(d.id, /^dec_/);
    assert.equal(d.task_id, "task-allow");
    assert.deepEqual(d.summary, ["reply to the ticket"]);
    assert.deepEqual(d.payload, { to: "a@example.com", body: "hi" });
    assert.equal(typeof d.approval_token, "string");
    assert.deepEqual(d.approved_action.payload, { to: "a@example.com", body: "hi" });
    assert.equal(d.approved_action.amended, false);
  });

  test("reject: may not proceed and carries no token", async () => {
    const d = await gate.request({ agent: "sdk-test", action: "drop_database", risk: "low", subject: "prod" });
    assert.equal(d.status, "reject");
    assert.equal(d.may_proceed, false);
    assert.equal(d.approval_token ?? null, null);
    assert.deepEqual(d.reasons, ["Dropping a database is never allowed"]);
  });

  test("pending_review: a medium risk request waits for a reviewer", async () => {
    const d = await gate.request({ ...low("ticket-2"), risk: "medium" });
    assert.equal(d.status, "pending_review");
    assert.equal(d.may_proceed, false);
    assert.equal(typeof d.review_deadline, "string");
  });

  test("idempotency: the same key and body return the same decision; another body is a 409", async () => {
    const body = { ...low("ticket-3", { amount: 1 }), idempotencyKey: "idem-1" };
    const first = await gate.request(body);
    const again = await gate.request(body);
    assert.equal(again.id, first.id);
    const without = await gate.request({ ...body, idempotencyKey: undefined });
    assert.notEqual(without.id, first.id);
    await assert.rejects(gate.request({ ...body, context: { amount: 2 } }), (e) => {
      assert.ok(e instanceof GateRequestError);
      assert.equal(e.status, 409);
      assert.equal(e.code, "idempotency_conflict");
      assert.equal(typeof e.requestId, "string");
      return true;
    });
    // Keys are scoped per API key: another agent's same key is a new decision.
    const theirs = await other.request(body);
    assert.notEqual(theirs.id, first.id);
  });

  test("a request that breaks the policy schema is a GateRequestError with the server's code", async () => {
    await assert.rejects(
      gate.request({ agent: "a", action: "issue_refund", risk: "low", subject: "cus", context: { amount: 10.5, currency: "usd" } }),
      (e) => e instanceof GateRequestError && e.status === 400 && e.code === "schema_mismatch",
    );
    await assert.rejects(
      gate.request({ agent: "a", action: "x", risk: "extreme", subject: "s" }),
      (e) => e instanceof GateRequestError && e.status === 422 && e.code === "validation_failed",
    );
  });

  test("a wrong key is a 401 GateRequestError, never a decision", async () => {
    const stranger = new Gatehouse({ url: server.url, apiKey: "gh_nope_nope" });
    await assert.rejects(stranger.request(low("x")), (e) => e instanceof GateRequestError && e.status === 401 && e.code === "unauthorized");
  });
});

describe("gate.tasks(taskId)", () => {
  test("request takes the Gate API's fields and files the decision under the task", async () => {
    const task = gate.tasks("run-42");
    const d = await task.request(
      {
        workflow_name: "GitHub Actions",
        task_label: "Production deploy",
        tool_name: "deploy_production",
        subject: "Deploy main",
        preview: "Deploy abc123 to production",
        risk_level: "high",
        summary: ["sha abc123"],
        payload: { sha: "abc123" },
      },
      { idempotencyKey: "deploy-abc123" },
    );
    assert.equal(d.status, "pending_review");
    assert.equal(d.task_id, "run-42");
    assert.equal(d.task_label, "Production deploy");
    assert.equal(d.preview, "Deploy abc123 to production");
    assert.equal(d.tool_name, "deploy_production");
    assert.deepEqual(d.payload, { sha: "abc123" });
    const again = await task.request(
      { workflow_name: "GitHub Actions", tool_name: "deploy_production", subject: "Deploy main", risk_level: "high", task_label: "Production deploy", preview: "Deploy abc123 to production", summary: ["sha abc123"], payload: { sha: "abc123" } },
      { idempotencyKey: "deploy-abc123" },
    );
    assert.equal(again.id, d.id);
  });

  test("event records what happened and events lists it", async () => {
    const task = gate.tasks("run-43");
    const d = await task.request({ workflow_name: "ci", tool_name: "run_tests", subject: "main", risk_level: "low" });
    const e = await task.event({ kind: "started", message: "tests running", decision_id: d.id, data: { shard: 1 } });
    assert.equal(e.task_id, "run-43");
    assert.equal(e.kind, "started");
    assert.equal(e.decision_id, d.id);
    const list = await task.events();
    assert.deepEqual(list.items.map((i) => i.id), [e.id]);
  });

  test("an empty task id is refused before anything is sent", () => {
    assert.throws(() => gate.tasks(""), TypeError);
  });
});

describe("gate.decide", () => {
  const ctx = (amount) => ({
    workflow: "billing",
    requested_action: "issue_refund",
    source_record_id: "inv_7",
    risk: "low",
    amount,
    currency: "usd",
  });

  test("returns the Decision Record, whose record_hash anyone can recompute", async () => {
    const r = await gate.decide({ question: "Refund invoice 7?", context: ctx(500) });
    assert.equal(r.verdict, "yes");
    assert.equal(r.status, "allow");
    assert.equal(r.record_version, "decision-record/v1");
    assert.equal(r.requested_action, "issue_refund");
    assert.equal(r.subject, "inv_7");
    const body = {};
    for (const k of [
      "record_version", "request_id", "decision_id", "verdict", "action", "requested_action", "action_hash",
      "workflow", "subject", "question", "source_record_id", "owner_rule", "evidence", "caller_evidence",
      "policy_version", "context", "created_at", "review_deadline", "review_rule",
    ]) {
      if (r[k] !== undefined && r[k] !== null) body[k] = r[k];
    }
    assert.equal(canonicalSha256Hex(body), r.record_hash);
  });

  test("maps reject to no and review to review, and is idempotent with a key", async () => {
    assert.equal((await gate.decide({ question: "Refund 0?", context: ctx(0) })).verdict, "no");
    const first = await gate.decide({ question: "Refund 500.00?", context: ctx(50_000), idempotencyKey: "decide-1" });
    assert.equal(first.verdict, "review");
    assert.equal(first.status, "pending_review");
    const again = await gate.decide({ question: "Refund 500.00?", context: ctx(50_000), idempotencyKey: "decide-1" });
    assert.equal(again.decision_id, first.decision_id);
  });
});

describe("reading, waiting and reviewing", () => {
  test("get and getRecord show the same decision in both shapes", async () => {
    const d = await gate.request(low("ticket-4", { k: "v" }));
    const view = await gate.get(d.id);
    assert.equal(view.id, d.id);
    assert.equal(view.status, "allow");
    assert.equal(view.approval_token, d.approval_token);
    const record = await gate.getRecord(d.id);
    assert.equal(record.decision_id, d.id);
    assert.equal(record.record_hash, d.record_hash);
    assert.deepEqual(record.request.payload, { k: "v" });
    await assert.rejects(gate.get("dec_does_not_exist"), (e) => e instanceof GateRequestError && e.status === 404);
    // Another agent may not read this agent's decision: to it, the decision does not exist.
    await assert.rejects(other.get(d.id), (e) => e instanceof GateRequestError && e.status === 404);
  });

  test("waitFor returns at once for a decided request", async () => {
    const d = await gate.request(low("ticket-5"));
    const started = Date.now();
    assert.equal((await gate.waitFor(d.id, { timeoutMs: 30_000 })).status, "allow");
    assert.ok(Date.now() - started < 2_000);
  });

  test("review approves or rejects; the agent sees it; a second review is not_pending", async () => {
    const a = await gate.request({ ...low("ticket-6"), risk: "high" });
    const approved = await reviewer.review(a.id, { decision: "approve", comment: "fine" });
    assert.equal(approved.status, "approved");
    const seen = await gate.get(a.id);
    assert.equal(seen.status, "approved");
    assert.equal(seen.may_proceed, true);
    assert.equal(seen.review.comment, "fine");
    await assert.rejects(reviewer.review(a.id, { decision: "reject" }), (e) => e instanceof GateRequestError && e.status === 409 && e.code === "not_pending");

    const b = await gate.request({ ...low("ticket-7"), risk: "high" });
    assert.equal((await reviewer.review(b.id, { decision: "reject", comment: "no" })).status, "rejected");
    // An agent key may not review.
    const c = await gate.request({ ...low("ticket-8"), risk: "high" });
    await assert.rejects(other.review(c.id, { decision: "approve" }), (e) => e instanceof GateRequestError && e.status === 403);
  });

  test("review with an amended payload: the approved action is the amendment", async () => {
    const d = await gate.request({ agent: "billing", action: "issue_refund", risk: "high", subject: "cus_9", context: { amount: 50_000, currency: "usd" } });
    assert.equal(d.status, "pending_review");
    const v = await reviewer.review(d.id, { decision: "approve", amendedPayload: { amount: 9_000, currency: "usd" }, comment: "cap" });
    assert.equal(v.status, "approved");
    const seen = await gate.get(d.id);
    assert.equal(seen.approved_action.amended, true);
    assert.deepEqual(seen.approved_action.payload, { amount: 9_000, currency: "usd" });
    // An amendment the policies would reject is refused with their reasons.
    const e = await gate.request({ agent: "billing", action: "issue_refund", risk: "high", subject: "cus_10", context: { amount: 50_000, currency: "usd" } });
    await assert.rejects(reviewer.review(e.id, { decision: "approve", amendedPayload: { amount: 0, currency: "usd" } }), (err) => {
      assert.ok(err instanceof GateRequestError);
      assert.equal(err.code, "amendment_rejected");
      assert.ok(err.reasons.length > 0);
      return true;
    });
  });
});

describe("tokens, receipts, outcomes and evidence", () => {
  test("redeem once for exactly the approved action; then record the receipt and the outcome", async () => {
    const d = await gate.request(low("ticket-9", { n: 9 }));
    const action = { tool_name: d.approved_action.tool_name, subject: d.approved_action.subject, payload: d.approved_action.payload };
    await assert.rejects(gate.redeem(d.approval_token, { ...action, payload: { n: 10 } }), (e) => {
      assert.ok(e instanceof GateRequestError);
      assert.equal(e.status, 400);
      assert.equal(e.code, "token_rejected");
      return true;
    });
    const r = await gate.redeem(d.approval_token, action);
    assert.equal(r.redeemed, true);
    assert.equal(r.decision_id, d.id);
    assert.equal(r.action_hash, d.approved_action.action_hash);
    await assert.rejects(gate.redeem(d.approval_token, action), (e) => e instanceof GateRequestError && e.code === "token_already_redeemed");

    const receipt = await gate.recordExecution(d.id, {
      target_system: "mail",
      target_object: "msg_1",
      mutation: "send",
      executor: "worker-1",
      token_jti: r.jti,
      action,
    });
    assert.equal(receipt.receipt.decision_id, d.id);
    assert.equal(receipt.receipt.action_hash, d.approved_action.action_hash);
    const outcome = await gate.recordOutcome(d.id, { status: "succeeded", action_taken: "mail sent", observed_metrics: { ms: 12 } });
    assert.equal(outcome.outcome.status, "succeeded");
    const list = await gate.executions(d.id);
    assert.deepEqual(list.executions.map((e) => e.execution_hash), [receipt.execution_hash]);
    assert.deepEqual(list.outcomes.map((o) => o.outcome_hash), [outcome.outcome_hash]);
    // A receipt for another action is refused and flags the decision.
    await assert.rejects(
      gate.recordExecution(d.id, { target_system: "mail", target_object: "m", mutation: "send", executor: "w", action: { ...action, payload: { n: 11 } } }),
      (e) => e instanceof GateRequestError && e.status === 409 && e.code === "execution_refused",
    );
  });

  test("packet, jwks and logKey: the evidence an auditor checks offline", async () => {
    const d = await gate.request(low("ticket-10"));
    const p = await gate.packet(d.id);
    assert.equal(p.packet_version, "decision-packet/v2");
    assert.equal(p.decision_id, d.id);
    const jwks = await gate.jwks();
    assert.equal(jwks.keys.length, 1);
    assert.equal(jwks.keys[0].kty, "OKP");
    const key = await gate.logKey();
    assert.equal(key, cli(["log", "key", "--data", server.data]).trim());
  });
});

describe("the client itself", () => {
  test("refuses a bad configuration before sending anything", () => {
    assert.throws(() => new Gatehouse({ url: "ftp://x", apiKey: "k" }), TypeError);
    assert.throws(() => new Gatehouse({ url: "http://127.0.0.1:1", apiKey: "" }), TypeError);
    assert.throws(() => new Gatehouse({ url: "http://127.0.0.1:1", apiKey: "k", timeoutMs: 0 }), TypeError);
    assert.throws(() => gate.get(""), TypeError);
    assert.throws(() => gate.get("x", { wait: 1.5 }), TypeError);
  });

  test("an aborted call rejects with GateUnavailable", async () => {
    const d = await gate.request({ ...low("ticket-11"), risk: "high" });
    const controller = new AbortController();
    const pending = gate.get(d.id, { wait: 30, signal: controller.signal });
    setTimeout(() => controller.abort(), 200);
    await assert.rejects(pending, (e) => e instanceof GateUnavailable && /aborted by the caller/.test(e.message));
  });
});
