// verifyPacket on Decision Packets produced by a real server, in every
// state a decision reaches (allowed and executed, approved with changes,
// approved by a quorum of a group, rejected, pending, expired, flagged,
// Decide API records), and on tampered copies of them: a changed byte in a
// field fails the check that binds that field. Every result is compared,
// check by check and word for word, with `gatehouse verify --json`.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import {
  decodeHash,
  Gatehouse,
  GateRequestError,
  leafHash,
  verifyCheckpoint,
  verifyConsistency,
  verifyInclusion,
  verifyPacket,
} from "../dist/esm/index.js";
import { cli, startServer, tempFile, TEST_POLICIES } from "./helpers/server.mjs";

let server;
let gate;
let logKey;
const packets = {};

/** `gatehouse verify --json` on the same packet and key. */
function cliVerify(packet, key = logKey) {
  const file = tempFile("packet.json", typeof packet === "string" ? packet : JSON.stringify(packet));
  const r = cli(["verify", file, "--log-key", key, "--json"], { allowFailure: true });
  return JSON.parse(typeof r === "string" ? r : r.stdout);
}

/** Verifies with the SDK and the CLI, and requires them to agree exactly. */
function both(packet, key = logKey) {
  const mine = verifyPacket(packet, { logKey: key });
  assert.deepEqual(mine, cliVerify(packet, key));
  return mine;
}

const failed = (report) => report.checks.filter((c) => !c.ok).map((c) => c.name);

before(async () => {
  server = await startServer({
    keys: { agent: "agent", reviewer: "reviewer", auditor: "auditor" },
    people: { ana: ["finance"], bo: ["finance"] },
    policies: TEST_POLICIES,
  });
  gate = new Gatehouse({ url: server.url, apiKey: server.keys.agent });
  const rev = (name) => new Gatehouse({ url: server.url, apiKey: server.keys[name] });
  const auditor = rev("auditor");
  logKey = cli(["log", "key", "--data", server.data]).trim();
  const refund = (subject, amount) => ({ agent: "billing", action: "issue_refund", risk: "high", subject, args: { amount, currency: "usd" } });
  const ids = {};

  await gate.guard(refund("cus_allow", 500), async () => "ok", { onDecision: (d) => (ids.allowed = d.id) });

  await gate.guard(refund("cus_amend", 50_000), async () => "ok", {
    onPending: (d) => {
      ids.amended = d.id;
      rev("reviewer").review(d.id, { decision: "approve", amendedPayload: { amount: 9_000, currency: "usd" }, comment: "cap at 90.00" });
    },
  });
  await gate.guard(refund("cus_quorum", 200_000), async () => "ok", {
    onPending: async (d) => {
      ids.quorum = d.id;
      await rev("ana").review(d.id, { decision: "approve", comment: "one" });
      await rev("bo").review(d.id, { decision: "approve", comment: "two" });
    },
  });
  const rejected = await gate.request({ agent: "billing", action: "issue_refund", risk: "high", subject: "cus_no", context: { amount: 20_000, currency: "usd" } });
  await rev("reviewer").review(rejected.id, { decision: "reject", comment: "no \u2014 not this one" });
  ids.rejected = rejected.id;
  ids.pending = (await gate.request({ agent: "billing", action: "issue_refund", risk: "high", subject: "cus_wait", context: { amount: 20_000, currency: "usd" } })).id;
  ids.refused = (await gate.request({ agent: "billing", action: "issue_refund", risk: "low", subject: "cus_zero", context: { amount: 0, currency: "usd" } })).id;
  ids.decided = (await gate.decide({ question: "Refund invoice 9?", context: { workflow: "billing", requested_action: "issue_refund", source_record_id: "inv_9", risk: "low", amount: 900, currency: "usd" } })).decision_id;

  // A receipt for another action is refused and flags the decision.
  const flagged = await gate.request({ agent: "ops", action: "restart", risk: "low", subject: "web-1", context: { n: 1 } });
  await assert.rejects(
    gate.recordExecution(flagged.id, { target_system: "k8s", target_object: "web-1", mutation: "restart", executor: "ops", action: { tool_name: "restart", subject: "web-1", payload: { n: 2 } } }),
    (e) => e instanceof GateRequestError && e.code === "execution_refused",
  );
  ids.flagged = flagged.id;

  // An auditor's copy of each, as an auditor would download it.
  for (const [name, id] of Object.entries(ids)) packets[name] = await auditor.packet(id);
});
after(() => server?.stop());

describe("packets the server produced verify, exactly as `gatehouse verify` says", () => {
  for (const name of ["allowed", "amended", "quorum", "rejected", "pending", "refused", "decided", "flagged"]) {
    test(name, () => {
      const report = both(packets[name]);
      assert.equal(report.verified, true, JSON.stringify(report.checks.filter((c) => !c.ok)));
      assert.match(report.summary, /^verified: all \d+ checks passed$/);
    });
  }

  test("the states the packets show are the ones the log gives", () => {
    const status = Object.fromEntries(Object.entries(packets).map(([k, p]) => [k, p.status]));
    assert.deepEqual(status, {
      allowed: "allow",
      amended: "approved",
      quorum: "approved",
      rejected: "rejected",
      pending: "pending_review",
      refused: "reject",
      decided: "allow",
      flagged: "allow",
    });
    assert.equal(packets.amended.reviews[0].amended_payload.amount, 9_000);
    assert.equal(packets.quorum.reviews.length, 2);
    assert.deepEqual(packets.quorum.record.review_rule.requirements.map((r) => [r.groups, r.quorum]), [[["finance"], 2]]);
    assert.equal(packets.allowed.executions.length, 1);
    assert.equal(packets.allowed.outcomes.length, 1);
  });

  test("a packet given as JSON text verifies the same", () => {
    assert.equal(verifyPacket(JSON.stringify(packets.allowed), { logKey }).verified, true);
  });

  test("a packet that expired while pending verifies as expired", async () => {
    const short = await startServer({ policies: TEST_POLICIES, args: ["--review-timeout", "1s"] });
    try {
      const g = new Gatehouse({ url: short.url, apiKey: short.keys.agent });
      const d = await g.request({ agent: "a", action: "deploy", risk: "high", subject: "prod" });
      assert.equal((await g.waitFor(d.id, { timeoutMs: 15_000 })).status, "expired");
      const report = both(await g.packet(d.id), cli(["log", "key", "--data", short.data]).trim());
      assert.equal(report.verified, true, JSON.stringify(report.checks));
      assert.match(report.checks.find((c) => c.name === "status").detail, /its log entries say expired/);
    } finally {
      await short.stop();
    }
  });
});

const clone = (p) => JSON.parse(JSON.stringify(p));

/** Flips one character of a string (the last one that is not padding). */
function flip(text) {
  const at = text.replace(/=+$/, "").length - 2;
  const c = text[at];
  return text.slice(0, at) + (c === "A" ? "B" : "A") + text.slice(at + 1);
}

/** Each tamper: the packet it starts from, the change, and the checks that must fail (besides packet_hash). */
const TAMPERS = [
  ["the packet hash alone", "allowed", (p) => (p.packet_hash = flip(p.packet_hash)), []],
  ["the record's subject", "allowed", (p) => (p.record.subject += "x"), ["record", "request"]],
  ["the record's context", "allowed", (p) => (p.record.context.payload = { amount: 1 }), ["record"]],
  ["the record hash", "allowed", (p) => (p.record_hash = flip(p.record_hash)), ["record"]],
  ["the status", "amended", (p) => (p.status = "rejected"), ["status"]],
  ["a review's comment", "amended", (p) => (p.reviews[0].comment += "!"), ["reviews"]],
  ["a review's amended payload", "amended", (p) => (p.reviews[0].amended_payload.amount = 9_001), ["reviews"]],
  ["a review's time", "quorum", (p) => (p.reviews[1].reviewed_at = "2020-01-01T00:00:00Z"), ["reviews"]],
  ["a reviewer's groups", "quorum", (p) => (p.reviews[0].groups = ["legal"]), ["reviews"]],
  ["a review left out", "quorum", (p) => p.reviews.pop(), ["reviews"]],
  ["the approved action hash", "amended", (p) => (p.approved_action_hash = p.record.action_hash), ["review_rule"]],
  ["the review rule", "quorum", (p) => (p.record.review_rule.requirements[0].quorum = 1), ["record", "review_rule"]],
  ["the requested payload", "allowed", (p) => (p.request.payload.amount = 501), ["request"]],
  ["a receipt's target", "allowed", (p) => (p.executions[0].target_object += "x"), ["receipts"]],
  ["a receipt left out", "allowed", (p) => p.executions.pop(), ["receipts"]],
  ["an outcome's status", "allowed", (p) => (p.outcomes[0].status = "failed"), ["outcomes"]],
  ["the token's expiry", "allowed", (p) => (p.token.claims.exp += 1), ["token"]],
  ["the token's action", "amended", (p) => (p.token.claims.act = p.record.action_hash), ["token"]],
  ["the token left out", "allowed", (p) => (p.token = null), ["token"]],
  ["a policy's text", "allowed", (p) => (p.policy.policies[0].text += " "), ["policy"]],
  ["the policy version", "allowed", (p) => (p.policy.policy_version += "x"), ["policy"]],
  ["a policy text left out", "quorum", (p) => p.policy.policies.pop(), ["policy"]],
]; // prettier-ignore

describe("tampered packets fail the check that binds the changed field, as `gatehouse verify` says", () => {
  for (const [what, from, change, expected] of TAMPERS) {
    test(what, () => {
      const p = clone(packets[from]);
      change(p);
      const report = both(p);
      assert.equal(report.verified, false);
      const names = failed(report).filter((n) => n !== "packet_hash");
      assert.deepEqual(names, expected);
      assert.ok(failed(report).includes("packet_hash"), "the checksum notices every change");
      assert.match(report.summary, /^NOT verified: \d+ of \d+ checks failed$/);
    });
  }

  test("a changed byte in a log entry: its inclusion proof fails and the chain breaks", () => {
    const p = clone(packets.amended);
    const e = p.audit_chain.entries[1];
    const bytes = Buffer.from(e.leaf, "base64");
    bytes[bytes.indexOf(Buffer.from('"approve"')) + 1] = "A".charCodeAt(0);
    e.leaf = bytes.toString("base64");
    p.packet_hash = undefined;
    const report = both(p);
    // Without the review entry the decision is still pending, so the token
    // and the receipt after it should have been refused; the outcome has no
    // precondition of its own.
    assert.deepEqual(failed(report), ["packet_hash", `entry_${e.index}`, "chain", "status", "reviews", "review_rule", "token", "receipts"]);
  });

  test("a leaf and its proof replaced by another decision's entry: about another record", () => {
    const p = clone(packets.allowed);
    p.audit_chain.entries[0] = clone(packets.refused.audit_chain.entries[0]);
    delete p.packet_hash;
    assert.ok(failed(both(p)).includes(`entry_${p.audit_chain.entries[0].index}`));
  });

  test("an entry removed from the middle of the chain", () => {
    const p = clone(packets.amended);
    p.audit_chain.entries.splice(1, 1);
    delete p.packet_hash;
    const report = both(p);
    assert.ok(failed(report).includes("chain"));
    assert.match(report.checks.find((c) => c.name === "chain").detail, /does not follow entry/);
  });

  test("entries out of log order", () => {
    const p = clone(packets.allowed);
    p.audit_chain.entries.reverse();
    delete p.packet_hash;
    assert.match(both(p).checks.find((c) => c.name === "chain").detail, /not in log order/);
  });

  test("a changed checkpoint: its signature fails and nothing is proven", () => {
    const p = clone(packets.allowed);
    p.audit_chain.checkpoint = p.audit_chain.checkpoint.replace(/\n(\d+)\n/, (_, n) => `\n${Number(n) + 1}\n`);
    delete p.packet_hash;
    const report = both(p);
    assert.equal(report.checks.find((c) => c.name === "checkpoint_signature").detail, "the checkpoint is not signed by the given key");
    assert.ok(report.checks.filter((c) => c.name.startsWith("entry_")).every((c) => !c.ok));
  });

  test("another log's key: the checkpoint is not signed by it", async () => {
    const other = await startServer({ policies: TEST_POLICIES });
    try {
      const theirKey = cli(["log", "key", "--data", other.data]).trim();
      const report = both(packets.allowed, theirKey);
      assert.equal(report.verified, false);
      assert.ok(failed(report).includes("checkpoint_signature"));
    } finally {
      await other.stop();
    }
    const report = both(packets.allowed, "not-a-key");
    assert.equal(report.checks.find((c) => c.name === "checkpoint_signature").detail, "the verifier key is malformed: malformed verifier key");
  });

  test("a document that is not a packet fails the single check `packet`", () => {
    for (const bad of [{}, { ...clone(packets.allowed), record: null }, "{not json", [1]]) {
      const mine = verifyPacket(bad, { logKey });
      assert.equal(mine.verified, false);
      assert.deepEqual(mine.checks.map((c) => [c.name, c.ok]), [["packet", false]]);
      assert.match(mine.checks[0].detail, /^not a decision-packet\/v2 document: /);
      const theirs = cliVerify(typeof bad === "string" ? bad : JSON.stringify(bad));
      assert.deepEqual(theirs.checks.map((c) => [c.name, c.ok]), [["packet", false]]);
      assert.equal(mine.summary, theirs.summary);
    }
  });

  test("unknown members are ignored, as the server's reader ignores them; `unverified` is only checksummed", () => {
    const p = clone(packets.allowed);
    p.extra = { anything: 1 };
    p.record.extra = "x";
    p.executions[0].extra = [];
    assert.equal(both(p).verified, true);
    p.unverified.hints = { changed: true };
    assert.deepEqual(failed(both(p)), ["packet_hash"]);
  });
});

describe("the log's proofs from the live server", () => {
  const get = async (path) => {
    const res = await fetch(`${server.url}${path}`, { headers: { authorization: `Bearer ${server.keys.auditor}` } });
    assert.equal(res.status, 200, path);
    return res.headers.get("content-type")?.startsWith("text/plain") ? res.text() : res.json();
  };

  test("a packet's old checkpoint is consistent with today's, and a changed root is not", async () => {
    const old = verifyCheckpoint(packets.allowed.audit_chain.checkpoint, logKey);
    await gate.request({ agent: "a", action: "noop", risk: "low", subject: "grow-the-log" });
    const now = verifyCheckpoint(await get("/api/log/checkpoint"), logKey);
    assert.ok(now.size > old.size);
    const { proof } = await get(`/api/log/proof/consistency?from=${old.size}&to=${now.size}`);
    const hashes = proof.map(decodeHash);
    assert.equal(verifyConsistency(hashes, old.size, old.root, now.size, now.root), true);
    const wrong = Uint8Array.from(old.root);
    wrong[0] ^= 1;
    assert.equal(verifyConsistency(hashes, old.size, wrong, now.size, now.root), false);
    assert.equal(verifyConsistency(hashes, old.size, old.root, now.size, wrong), false);
    assert.equal(verifyConsistency(hashes.slice(1), old.size, old.root, now.size, now.root), false);
  });

  test("an inclusion proof from the API leads to the signed root", async () => {
    const now = verifyCheckpoint(await get("/api/log/checkpoint"), logKey);
    const index = packets.allowed.audit_chain.entries[0].index;
    const p = await get(`/api/log/proof/inclusion?index=${index}&size=${now.size}`);
    const leaf = leafHash(Buffer.from(p.leaf, "base64"));
    assert.deepEqual(Buffer.from(leaf).toString("base64"), p.leaf_hash);
    assert.equal(verifyInclusion(p.proof.map(decodeHash), now.size, now.root, index, leaf), true);
    assert.equal(verifyInclusion(p.proof.map(decodeHash), now.size, now.root, index + 1, leaf), false);
  });
});
