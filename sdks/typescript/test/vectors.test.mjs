// Known-answer tests that need no server: RFC 8785 canonical JSON and RFC
// 6962 proofs from the vectors in <repo>/testdata, the signed-note vectors
// of Go's note package (which the server's `signed_note` crate also
// tests), the action hash example of the README, log entry bytes from the
// server's own tests, and the review rule's cases.

import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";

import {
  actionHash,
  canonicalize,
  CheckpointError,
  decodeHash,
  leafHash,
  verifyConsistency,
  verifyInclusion,
  verifyNote,
} from "../dist/esm/index.js";
import { parseEntry } from "../dist/esm/packet/entry.js";
import { refusal, tally, unix, unixMs } from "../dist/esm/packet/rules.js";
import { REPO_ROOT } from "./helpers/paths.mjs";

const TESTDATA = join(REPO_ROOT, "testdata");

test("RFC 8785: every input of testdata/jcs canonicalizes to exactly its expected bytes", () => {
  const dir = join(TESTDATA, "jcs");
  const names = readdirSync(join(dir, "input")).filter((n) => n.endsWith(".json"));
  assert.equal(names.length, 6);
  for (const name of names) {
    const input = JSON.parse(readFileSync(join(dir, "input", name), "utf8"));
    const expected = readFileSync(join(dir, "output", name));
    const actual = Buffer.from(canonicalize(input), "utf8");
    assert.equal(actual.toString("utf8"), expected.toString("utf8"), `vector ${name}`);
    const hex = readFileSync(join(dir, "outhex", name.replace(".json", ".txt")), "utf8").split(/\s+/).join("");
    assert.equal(actual.toString("hex"), hex, `hex vector ${name}`);
  }
});

test("RFC 8785: refuses what has no canonical form", () => {
  assert.throws(() => canonicalize({ a: NaN }), /NaN/);
  assert.throws(() => canonicalize({ a: Infinity }), /NaN or infinite/);
  assert.throws(() => canonicalize("\ud800"), /lone UTF-16 surrogate/);
  assert.throws(() => canonicalize(new Date(0)), /plain objects/);
  assert.equal(canonicalize({ b: 1, a: [true, null, -0], c: undefined }), '{"a":[true,null,0],"b":1}');
});

test("the README's action hash example hashes exactly the bytes it shows", async () => {
  const { createHash } = await import("node:crypto");
  const bytes = '{"action":"issue_refund","payload":{"amount":5,"currency":"usd"},"subject":"cus_1"}';
  const want = `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
  assert.equal(actionHash("issue_refund", "cus_1", { currency: "usd", amount: 5 }), want);
  assert.notEqual(actionHash("issue_refund", "cus_1", { currency: "usd", amount: 6 }), want);
  assert.notEqual(actionHash("issue_refund", "cus_2", { currency: "usd", amount: 5 }), want);
  assert.equal(actionHash("x", "y"), actionHash("x", "y", {}));
});

function files(dir) {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? files(p) : p.endsWith(".json") ? [p] : [];
  });
}

// Like the server, only 32-byte SHA-256 hashes are accepted, so the one
// vector whose roots are not 32 bytes (and expects success) must fail.
const NON_32_BYTE_ROOTS = "sizes-are-equal-one-and-proof-is-empty.json";

function hash(v) {
  if (v === null || v === undefined) return new Uint8Array(0);
  return typeof v === "string" ? decodeHash(v) ?? new Uint8Array(0) : new Uint8Array(0);
}

function runMerkle(kind, check) {
  let good = 0;
  let bad = 0;
  for (const path of files(join(TESTDATA, "merkle", kind))) {
    const v = JSON.parse(readFileSync(path, "utf8"));
    const verified = check(v);
    if (path.endsWith(NON_32_BYTE_ROOTS)) {
      assert.equal(verified, false, `${path}: non-32-byte roots must be rejected`);
      continue;
    }
    assert.equal(verified, !v.wantErr, `${path}: ${v.desc}`);
    if (v.wantErr) bad++;
    else good++;
  }
  assert.ok(good >= 5 && bad >= 50, `${kind}: only ${good} good and ${bad} bad vectors ran`);
}

test("RFC 6962: every inclusion vector of testdata/merkle verifies or is rejected as expected", () => {
  runMerkle("inclusion", (v) => {
    const proof = (v.proof ?? []).map(hash);
    if (!Number.isSafeInteger(v.leafIdx) || !Number.isSafeInteger(v.treeSize)) return false;
    return verifyInclusion(proof, v.treeSize, hash(v.root), v.leafIdx, hash(v.leafHash));
  });
});

test("RFC 6962: every consistency vector of testdata/merkle verifies or is rejected as expected", () => {
  runMerkle("consistency", (v) => {
    const proof = (v.proof ?? []).map(hash);
    if (!Number.isSafeInteger(v.size1) || !Number.isSafeInteger(v.size2)) return false;
    return verifyConsistency(proof, v.size1, hash(v.root1), v.size2, hash(v.root2));
  });
});

test("RFC 6962: a one-leaf tree's root is its leaf hash", () => {
  const leaf = leafHash(Buffer.from("hello"));
  assert.equal(verifyInclusion([], 1, leaf, 0, leaf), true);
  assert.equal(verifyInclusion([], 1, leaf, 1, leaf), false);
  assert.equal(verifyInclusion([leaf], 1, leaf, 0, leaf), false);
});

// Go's golang.org/x/mod/sumdb/note test vectors.
const PETER_KEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
const ENOCH_KEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop";
const TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
const PETER_SIG =
  "\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
const ENOCH_SIG =
  "\u2014 EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n";

test("signed notes: the note package's vectors verify with their keys and only with them", () => {
  const note = `${TEXT}\n${PETER_SIG}${ENOCH_SIG}`;
  assert.equal(verifyNote(note, PETER_KEY), TEXT);
  assert.equal(verifyNote(note, ENOCH_KEY), TEXT);
  assert.throws(() => verifyNote(`${TEXT}\n${ENOCH_SIG}`, PETER_KEY), /not signed by the given key/);
  // A changed text, a changed signature, a key with a wrong id, 101 signatures.
  assert.throws(() => verifyNote(note.replace("answer", "Answer"), PETER_KEY), /not signed by the given key/);
  const broken = PETER_SIG.slice(0, 60) + (PETER_SIG[60] === "A" ? "B" : "A") + PETER_SIG.slice(61);
  assert.throws(() => verifyNote(`${TEXT}\n${broken}`, PETER_KEY), /not signed by the given key/);
  assert.throws(() => verifyNote(note, PETER_KEY.replace("c74f20a3", "c74f20a4")), /invalid verifier ID/);
  assert.throws(() => verifyNote(note, "no-plus-signs"), /malformed verifier key/);
  assert.throws(() => verifyNote(`${TEXT}\n${PETER_SIG.repeat(101)}`, PETER_KEY), /well-formed signed note/);
  assert.throws(() => verifyNote(`${TEXT}\n`, PETER_KEY), /well-formed signed note/);
  assert.throws(() => verifyNote(`${TEXT}\r\n${PETER_SIG}`, PETER_KEY), CheckpointError);
});

// The bytes the server's tests pin for log entries (crates/gatehouse-log/src/entry.rs).
const V1 = [
  '{"comment_hash":null,"decision":"approve","id":"dec_1","reviewer":"k2","ts":"1970-01-01T00:00:00Z","type":"review","v":1}',
  '{"id":"dec_1","ts":"1970-01-01T00:00:00Z","type":"expiry","v":1}',
  '{"event":"retired","id":"kid1","role":"token-signing","ts":"1970-01-01T00:00:00Z","type":"key_event","v":1}',
  '{"exp":"1970-01-01T00:00:00Z","id":"dec_1","jti":"tok_1","kid":"kid1","ts":"1970-01-01T00:00:00Z","type":"token_issued","v":1}',
  '{"event":"created","id":"k1","role":"agent","ts":"1970-01-01T00:00:00Z","type":"key_event","v":2}',
];

test("log entries: the server's known leaf bytes read back, anything else is refused with the server's reason", () => {
  for (const text of V1) assert.equal(parseEntry(Buffer.from(text)).id.length > 0, true, text);
  const review = parseEntry(Buffer.from(V1[0]));
  assert.equal(review.type, "review");
  assert.equal(review.comment_hash, undefined);
  const refused = (text, re) => assert.throws(() => parseEntry(Buffer.from(text)), re, text);
  refused('{"id":"dec_1", "ts":"1970-01-01T00:00:00Z","type":"expiry","v":1}', /not the canonical JSON/);
  refused('{"id":"dec_1","ts":"1970-01-01T00:00:00Z","type":"expiry","v":3}', /entry version 3 is not supported/);
  refused('{"extra":1,"id":"dec_1","ts":"1970-01-01T00:00:00Z","type":"expiry","v":1}', /not the canonical JSON/);
  refused('{"id":"dec_1","ts":"1970-01-01T00:00:00Z","type":"expiry","v":2}', /version 2 entry of type expiry lacks/);
  refused('{"id":"dec_1","prev":"ab","ts":"1970-01-01T00:00:00Z","type":"expiry","v":1}', /version 1 entry of type expiry/);
  refused('{"type":"unknown"}', /not a log entry/);
  refused('{"decision":"approve","id":"dec_1","reviewer":"k2","ts":"1970-01-01T00:00:00Z","type":"review","v":1}', /not the canonical JSON/);
  refused('{"comment_hash":null,"decision":"maybe","id":"dec_1","reviewer":"k2","ts":"1970-01-01T00:00:00Z","type":"review","v":1}', /not a log entry/);
});

test("RFC 3339 times read as the server reads them", () => {
  assert.equal(unix("1970-01-01T00:00:00Z"), 0);
  assert.equal(unixMs("2026-01-02T03:04:05.678Z"), Date.UTC(2026, 0, 2, 3, 4, 5, 678));
  assert.equal(unix("2026-01-02T03:04:05+01:00"), Date.UTC(2026, 0, 2, 2, 4, 5) / 1000);
  assert.equal(unix("2026-02-30T00:00:00Z"), null);
  assert.equal(unix("2026-01-02 03:04:05Z"), null);
  assert.equal(unix("yesterday"), null);
});

// The review rule's cases from crates/gatehouse-core/src/review_rule.rs.
const vote = (who, groups, choice, hash, atMs) => ({ key: `key-${who}`, identity: who, groups, choice, actionHash: hash, atMs });
const req = (groups, quorum) => ({ groups, quorum });

test("review rules: quorum of distinct people, every requirement, one reject, eligibility, escalation, amendments", () => {
  const two = { requester: "agent", requirements: [req(["finance"], 2)] };
  const ana = vote("ana", ["finance"], "approve", "h", 0);
  assert.equal(tally(two, [ana], "h").outcome, null);
  assert.match(refusal(two, "k", [ana], ana), /already approved/);
  const bo = vote("bo", ["finance"], "approve", "h", 1);
  assert.equal(refusal(two, "k", [ana], bo), null);
  assert.equal(tally(two, [ana, bo], "h").outcome, "approved");

  const both = { requester: "agent", requirements: [req(["finance"], 1), req(["legal"], 1)] };
  assert.match(refusal(both, "k", [], vote("eve", ["marketing"], "approve", "h", 0)), /not in a group/);
  const t = tally(both, [ana], "h");
  assert.deepEqual([t.outcome, t.requirements[0].met, t.requirements[1].met], [null, true, false]);
  const lee = vote("lee", ["legal"], "approve", "h", 0);
  assert.equal(tally(both, [ana, lee], "h").outcome, "approved");
  assert.equal(tally(both, [ana, vote("lee", ["legal"], "reject", "h", 0)], "h").outcome, "rejected");

  const esc = {
    requester: "ana",
    requirements: [{ groups: ["finance"], quorum: 1, escalate_to: "finance-leads", escalate_at: "1970-01-01T00:00:10Z" }],
  };
  assert.match(refusal(esc, "k", [], vote("ana", ["finance"], "approve", "h", 0)), /requester/);
  assert.match(refusal(esc, "k", [], { ...vote("bo", ["finance"], "approve", "h", 0), key: "k" }), /requester/);
  assert.match(refusal(esc, "k", [], vote("lu", ["finance-leads"], "approve", "h", 9_999)), /not in a group/);
  const lead = vote("lu", ["finance-leads"], "approve", "h", 10_000);
  assert.equal(refusal(esc, "k", [], lead), null);
  assert.equal(tally(esc, [lead], "h").outcome, "approved");

  const a1 = vote("ana", ["finance"], "approve", "original", 0);
  const b2 = vote("bo", ["finance"], "approve", "amended", 1);
  const amended = tally(two, [a1, b2], "original");
  assert.deepEqual([amended.outcome, amended.currentActionHash], [null, "amended"]);
  const a3 = vote("ana", ["finance"], "approve", "amended", 2);
  assert.equal(refusal(two, "k", [a1, b2], a3), null);
  assert.equal(tally(two, [a1, b2, a3], "original").outcome, "approved");
});
