// gate.guard against real servers: it runs the action only on allow or an
// approval (with the approved, possibly amended, arguments), after
// redeeming the token, and records the receipt and the outcome; every
// other path throws a typed error and never calls `run`.

import assert from "node:assert/strict";
import { createServer } from "node:net";
import { after, before, describe, test } from "node:test";

import {
  Gatehouse,
  GatePending,
  GateRejected,
  GateReportFailed,
  GateRequestError,
  GateUnavailable,
  verifyPacket,
} from "../dist/esm/index.js";
import { closedPort, startServer, TEST_POLICIES } from "./helpers/server.mjs";

let server;
let gate;
let reviewer;

before(async () => {
  // A 1 s long-poll limit makes every wait below span several polls.
  server = await startServer({
    keys: { agent: "agent", reviewer: "reviewer", auditor: "auditor" },
    policies: TEST_POLICIES,
    args: ["--max-wait", "1s"],
  });
  gate = new Gatehouse({ url: server.url, apiKey: server.keys.agent, timeoutMs: 10_000 });
  reviewer = new Gatehouse({ url: server.url, apiKey: server.keys.reviewer });
});
after(() => server?.stop());

/** A `run` that records its calls. */
function recorder(result = "done") {
  const calls = [];
  const run = async (args) => {
    calls.push(args);
    return typeof result === "function" ? result(args) : result;
  };
  return { run, calls };
}

const refund = (subject, amount) => ({
  agent: "billing-agent",
  action: "issue_refund",
  risk: "high",
  subject,
  args: { amount, currency: "usd" },
});

/** Reviews the pending decision `delayMs` after guard reports it. */
function reviewLater(input, delayMs = 1_500) {
  const seen = { id: undefined, error: undefined };
  const onPending = (d) => {
    seen.id = d.id;
    setTimeout(() => reviewer.review(d.id, input).catch((e) => (seen.error = e)), delayMs);
  };
  return { onPending, seen };
}

describe("runs only on allow or approval", () => {
  test("allow: runs once with the args, redeems the token, records receipt and outcome", async () => {
    const { run, calls } = recorder((args) => ({ refunded: args.amount }));
    let pending = false;
    let decided;
    const result = await gate.guard(refund("cus_1", 500), run, {
      onPending: () => (pending = true),
      onDecision: (d) => (decided = d),
      executor: "worker-7",
    });
    assert.deepEqual(result, { refunded: 500 });
    assert.deepEqual(calls, [{ amount: 500, currency: "usd" }]);
    assert.equal(pending, false);
    assert.equal(decided.status, "allow");
    assert.equal(decided.id, await lastDecisionId("cus_1"));

    const list = await gate.executions(decided.id);
    assert.equal(list.executions.length, 1);
    const receipt = list.executions[0].receipt;
    assert.equal(receipt.executor, "worker-7");
    assert.equal(receipt.target_system, "billing-agent");
    assert.equal(receipt.target_object, "cus_1");
    assert.equal(receipt.mutation, "issue_refund");
    assert.match(receipt.token_jti, /^tok_/);
    assert.equal(list.outcomes.length, 1);
    assert.equal(list.outcomes[0].outcome.status, "succeeded");
  });

  test("the packet of a guarded action verifies, with its receipt and outcome bound by the log", async () => {
    const { run } = recorder();
    await gate.guard(refund("cus_packet", 700), run);
    const id = await lastDecisionId("cus_packet");
    const report = verifyPacket(await gate.packet(id), { logKey: await gate.logKey() });
    assert.equal(report.verified, true, JSON.stringify(report.checks.filter((c) => !c.ok)));
    const byName = Object.fromEntries(report.checks.map((c) => [c.name, c.detail]));
    assert.match(byName.receipts, /^1 receipts/);
    assert.match(byName.outcomes, /^1 outcomes/);
  });

  test("a failing action: its error is rethrown after a failed outcome is recorded", async () => {
    const boom = new Error("card declined");
    const run = async () => {
      throw boom;
    };
    await assert.rejects(gate.guard(refund("cus_2", 600), run), (e) => e === boom);
    const list = await gate.executions(await lastDecisionId("cus_2"));
    assert.equal(list.executions.length, 1);
    assert.equal(list.outcomes[0].outcome.status, "failed");
    assert.match(list.outcomes[0].outcome.action_taken, /card declined/);
  });

  test("reject: GateRejected, and run is never called", async () => {
    const { run, calls } = recorder();
    await assert.rejects(gate.guard(refund("cus_3", 0), run), (e) => {
      assert.ok(e instanceof GateRejected);
      assert.equal(e.status, "reject");
      assert.deepEqual(e.reasons, ["A refund amount must be a positive number of minor units"]);
      assert.match(e.decisionId, /^dec_/);
      return true;
    });
    assert.equal(calls.length, 0);
  });

  test("pending, then approved while guard waits: runs with the args", async () => {
    const { run, calls } = recorder();
    const { onPending, seen } = reviewLater({ decision: "approve", comment: "ok" });
    const started = Date.now();
    assert.equal(await gate.guard(refund("cus_4", 20_000), run, { waitTimeoutMs: 20_000, onPending }), "done");
    assert.ok(Date.now() - started >= 1_400, "it waited for the reviewer");
    assert.equal(seen.error, undefined);
    assert.deepEqual(calls, [{ amount: 20_000, currency: "usd" }]);
    assert.equal((await gate.get(seen.id)).status, "approved");
  });

  test("approved with changes: run receives the amended args, and the receipt binds them", async () => {
    const { run, calls } = recorder();
    const { onPending, seen } = reviewLater({ decision: "approve", amendedPayload: { amount: 9_000, currency: "usd" }, comment: "cap" });
    await gate.guard(refund("cus_5", 25_000), run, { waitTimeoutMs: 20_000, onPending });
    assert.deepEqual(calls, [{ amount: 9_000, currency: "usd" }]);
    const list = await gate.executions(seen.id);
    const view = await gate.get(seen.id);
    assert.equal(list.executions[0].receipt.action_hash, view.approved_action.action_hash);
    const report = verifyPacket(await gate.packet(seen.id), { logKey: await gate.logKey() });
    assert.equal(report.verified, true, JSON.stringify(report.checks.filter((c) => !c.ok)));
  });

  test("pending, then rejected while guard waits: GateRejected, run never called", async () => {
    const { run, calls } = recorder();
    const { onPending } = reviewLater({ decision: "reject", comment: "no" }, 500);
    await assert.rejects(gate.guard(refund("cus_6", 30_000), run, { waitTimeoutMs: 20_000, onPending }), (e) => e instanceof GateRejected && e.status === "rejected");
    assert.equal(calls.length, 0);
  });

  test("the wait runs out: GatePending with the decision id, run never called; the decision can be resumed", async () => {
    const { run, calls } = recorder();
    const started = Date.now();
    let error;
    await assert.rejects(gate.guard(refund("cus_7", 40_000), run, { waitTimeoutMs: 2_500 }), (e) => {
      error = e;
      return e instanceof GatePending && e.decision.status === "pending_review";
    });
    const waited = Date.now() - started;
    assert.ok(waited >= 2_500 && waited < 6_000, `waited ${waited} ms`);
    assert.equal(calls.length, 0);
    await reviewer.review(error.decisionId, { decision: "approve" });
    assert.equal((await gate.waitFor(error.decisionId, { timeoutMs: 5_000 })).status, "approved");
  });

  test("the same idempotency key twice: the second guard cannot redeem the token again and does not run", async () => {
    const { run, calls } = recorder();
    const input = { ...refund("cus_8", 100), idempotencyKey: "guard-once" };
    await gate.guard(input, run);
    await assert.rejects(gate.guard(input, run), (e) => e instanceof GateRequestError && e.code === "token_already_redeemed");
    assert.equal(calls.length, 1);
  });

  test("args that are not a plain JSON object are refused before asking", async () => {
    const { run, calls } = recorder();
    await assert.rejects(gate.guard({ ...refund("cus_9", 1), args: [1, 2] }, run), TypeError);
    await assert.rejects(gate.guard({ ...refund("cus_9", 1), args: null }, run), TypeError);
    assert.equal(calls.length, 0);
  });
});

describe("waitFor across the server's wait limit", () => {
  test("keeps long-polling until the reviewer decides, well past the server's 1 s limit", async () => {
    const d = await gate.request({ agent: "a", action: "deploy", risk: "high", subject: "main" });
    const polls = () => metricsCount(d.id);
    const before = await polls();
    setTimeout(() => reviewer.review(d.id, { decision: "approve" }), 3_500);
    const started = Date.now();
    const view = await gate.waitFor(d.id, { timeoutMs: 15_000 });
    const waited = Date.now() - started;
    assert.equal(view.status, "approved");
    assert.ok(waited >= 3_400 && waited < 8_000, `waited ${waited} ms`);
    assert.ok((await polls()) - before >= 3, "it polled again after each capped wait");
  });

  test("returns the still-pending decision when its own timeout runs out", async () => {
    const d = await gate.request({ agent: "a", action: "deploy", risk: "high", subject: "main-2" });
    const started = Date.now();
    const view = await gate.waitFor(d.id, { timeoutMs: 2_200 });
    const waited = Date.now() - started;
    assert.equal(view.status, "pending_review");
    assert.ok(waited >= 2_200 && waited < 5_000, `waited ${waited} ms`);
  });
});

describe("fails closed when the gate cannot answer", () => {
  test("nothing listening: GateUnavailable, run never called", async () => {
    const { run, calls } = recorder();
    const down = new Gatehouse({ url: `http://127.0.0.1:${await closedPort()}`, apiKey: "k" });
    await assert.rejects(down.guard(refund("cus_10", 1), run), (e) => e instanceof GateUnavailable && e.status === undefined && /could not be reached/.test(e.message));
    assert.equal(calls.length, 0);
  });

  test("the server dies while guard waits for a reviewer: GateUnavailable, run never called", async () => {
    const doomed = await startServer({ policies: TEST_POLICIES, args: ["--max-wait", "1s"] });
    try {
      const g = new Gatehouse({ url: doomed.url, apiKey: doomed.keys.agent });
      const { run, calls } = recorder();
      const onPending = () => setTimeout(() => doomed.kill(), 300);
      await assert.rejects(g.guard(refund("cus_11", 50_000), run, { waitTimeoutMs: 20_000, onPending }), (e) => e instanceof GateUnavailable && typeof e.decisionId === "string");
      assert.equal(calls.length, 0);
    } finally {
      await doomed.stop();
    }
  });

  test("no answer in time (a peer that accepts and stays silent): GateUnavailable, run never called", async () => {
    const sockets = new Set();
    const silent = createServer((socket) => sockets.add(socket));
    await new Promise((r) => silent.listen(0, "127.0.0.1", r));
    try {
      const g = new Gatehouse({ url: `http://127.0.0.1:${silent.address().port}`, apiKey: "k", timeoutMs: 300 });
      const { run, calls } = recorder();
      await assert.rejects(g.guard(refund("cus_12", 1), run), (e) => e instanceof GateUnavailable && /no answer within 300 ms/.test(e.message));
      assert.equal(calls.length, 0);
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise((r) => silent.close(r));
    }
  });

  test("429 rate limited: GateUnavailable with the status, code and Retry-After, run never called", async () => {
    const limited = await startServer({ policies: TEST_POLICIES, args: ["--rate-limit", "1", "--rate-burst", "1"] });
    try {
      const g = new Gatehouse({ url: limited.url, apiKey: limited.keys.agent });
      const { run, calls } = recorder();
      // Use up the key's one token (more than once, so a slow machine cannot refill it in between).
      await Promise.allSettled([1, 2, 3].map(() => g.request({ agent: "a", action: "noop", risk: "low", subject: "s" })));
      await assert.rejects(g.guard(refund("cus_13", 1), run), (e) => {
        assert.ok(e instanceof GateUnavailable, String(e));
        assert.equal(e.status, 429);
        assert.equal(e.code, "rate_limited");
        assert.ok(e.retryAfterMs > 0);
        return true;
      });
      assert.equal(calls.length, 0);
    } finally {
      await limited.stop();
    }
  });

  test("503 (connections exhausted): GateUnavailable with the status, run never called", async () => {
    const full = await startServer({ policies: TEST_POLICIES, args: ["--max-connections", "1"] });
    const holder = new AbortController();
    try {
      const g = new Gatehouse({ url: full.url, apiKey: full.keys.agent });
      const d = await g.request({ agent: "a", action: "deploy", risk: "high", subject: "s" });
      // One long poll holds the only connection the server allows.
      const held = g.get(d.id, { wait: 30, signal: holder.signal }).catch(() => {});
      await new Promise((r) => setTimeout(r, 300));
      const { run, calls } = recorder();
      await assert.rejects(g.guard(refund("cus_14", 1), run), (e) => {
        assert.ok(e instanceof GateUnavailable, String(e));
        assert.equal(e.status, 503);
        assert.equal(e.code, "too_many_connections");
        return true;
      });
      assert.equal(calls.length, 0);
      holder.abort();
      await held;
    } finally {
      holder.abort();
      await full.stop();
    }
  });

  test("a pending request that expires while guard waits: GateRejected (expired), run never called", async () => {
    const short = await startServer({ policies: TEST_POLICIES, args: ["--review-timeout", "2s", "--max-wait", "1s"] });
    try {
      const g = new Gatehouse({ url: short.url, apiKey: short.keys.agent });
      const { run, calls } = recorder();
      await assert.rejects(g.guard(refund("cus_15", 50_000), run, { waitTimeoutMs: 20_000 }), (e) => e instanceof GateRejected && e.status === "expired");
      assert.equal(calls.length, 0);
    } finally {
      await short.stop();
    }
  });
});

describe("reporting after the action ran", () => {
  test("the gate is gone when the receipt is due: GateReportFailed carries the result; onReportError may take it instead", async () => {
    const fragile = await startServer({ policies: TEST_POLICIES });
    try {
      const g = new Gatehouse({ url: fragile.url, apiKey: fragile.keys.agent, timeoutMs: 2_000 });
      let ran = 0;
      const run = async (args) => {
        ran++;
        await fragile.kill();
        return { refunded: args.amount };
      };
      await assert.rejects(g.guard(refund("cus_16", 5), run), (e) => {
        assert.ok(e instanceof GateReportFailed, String(e));
        assert.deepEqual(e.result, { refunded: 5 });
        assert.ok(e.cause instanceof GateUnavailable);
        assert.match(e.message, /do not run it again/);
        return true;
      });
      assert.equal(ran, 1);
    } finally {
      await fragile.stop();
    }

    const fragile2 = await startServer({ policies: TEST_POLICIES });
    try {
      const g = new Gatehouse({ url: fragile2.url, apiKey: fragile2.keys.agent, timeoutMs: 2_000 });
      const reported = [];
      const result = await g.guard(
        refund("cus_17", 6),
        async (args) => {
          await fragile2.kill();
          return args.amount;
        },
        { onReportError: (e) => reported.push(e) },
      );
      assert.equal(result, 6);
      assert.equal(reported.length, 1);
      assert.ok(reported[0] instanceof GateUnavailable);
    } finally {
      await fragile2.stop();
    }
  });

  test("report() adds details to the receipt and the outcome", async () => {
    await gate.guard(refund("cus_18", 42), async () => ({ id: "re_42" }), {
      targetSystem: "stripe",
      report: (o) => (o.ok ? { target_object: o.result.id, action_taken: "refund re_42 created", observed_metrics: { amount: 42 } } : undefined),
    });
    const list = await gate.executions(await lastDecisionId("cus_18"));
    assert.equal(list.executions[0].receipt.target_system, "stripe");
    assert.equal(list.executions[0].receipt.target_object, "re_42");
    assert.equal(list.outcomes[0].outcome.action_taken, "refund re_42 created");
    assert.deepEqual(list.outcomes[0].outcome.observed_metrics, { amount: 42 });
  });
});

/** The newest decision about `subject`, as a reviewer lists them. */
async function lastDecisionId(subject) {
  const res = await fetch(`${server.url}/api/decisions?limit=50`, { headers: { authorization: `Bearer ${server.keys.reviewer}` } });
  assert.equal(res.status, 200);
  const { items } = await res.json();
  const match = items.find((d) => d.subject === subject);
  assert.ok(match, `no decision about ${subject}`);
  return match.id;
}

/** How many times GET /api/gate/requests/{id} has been answered (from the server's metrics). */
async function metricsCount() {
  const res = await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${server.keys.auditor}` } });
  assert.equal(res.status, 200, await res.clone().text());
  const text = await res.text();
  let total = 0;
  for (const line of text.split("\n")) {
    if (line.startsWith("gatehouse_http_requests_total{") && line.includes('method="GET"') && line.includes('route="/api/gate/requests/{id}"')) {
      total += Number(line.split(" ").pop());
    }
  }
  return total;
}
