// The offline checks of a Decision Packet: a port of `gatehouse verify`
// (crates/gatehouse-log/src/packet). The packet's entries are proven in a
// checkpoint signed by the key the auditor trusts; the decision's state is
// derived from those entries alone with the server's own rules; then every
// bound field of the packet is compared with that state. Each check says,
// in plain words (the CLI's words), what it compared and what differed.

import { actionHash, canonicalize, canonicalSha256Hex } from "../jcs.js";
import { decodeBase64, decodeHash, leafHash, verifyInclusion } from "../merkle.js";
import { CheckpointError, verifyCheckpoint, type VerifiedCheckpoint } from "../note.js";
import { claimsHash, commentHash, parseEntry, textHash } from "./entry.js";
import { Packet as PacketSpec, read, ShapeError } from "./serde.js";
import { tally, unix } from "./rules.js";
import { derive, votes, type DecisionState } from "./state.js";

export const PACKET_VERSION = "decision-packet/v2";

/** One check: its name, whether it passed, and what was compared. */
export interface PacketCheck {
  name: string;
  ok: boolean;
  detail: string;
}

/** What `verifyPacket` returns: the same as `gatehouse verify --json`. */
export interface PacketVerification {
  /** True only if every check passed. */
  verified: boolean;
  /** `verified: all N checks passed`, or `NOT verified: F of N checks failed`. */
  summary: string;
  checks: PacketCheck[];
}

export interface VerifyPacketOptions {
  /** The log's verifier key (`gatehouse log key`), obtained out of band: never one from the packet. */
  logKey: string;
}

// The packet has been read into the server's shapes (serde.ts) before any
// check runs, so its fields are known to be there and of the right types.
type Obj = Record<string, any>;

class Checks {
  readonly list: PacketCheck[] = [];
  add(name: string, ok: boolean, detail: string): void {
    this.list.push({ name, ok, detail });
  }
  /** Passes with `fine` when `problems` is empty; otherwise fails listing them. */
  all(name: string, problems: string[], fine: string): void {
    if (problems.length === 0) this.add(name, true, fine);
    else this.add(name, false, problems.join("; "));
  }
}

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const same = (a: unknown, b: unknown) => canonicalize(a ?? null) === canonicalize(b ?? null);

/** The entry's bytes if they decode and are proven in `cp`; otherwise why not. */
function proven(e: Obj, cp: VerifiedCheckpoint | null): Uint8Array | string {
  const bytes = decodeBase64(e.leaf);
  if (bytes === null) return "its leaf is not base64";
  const proof = (e.proof as string[]).map(decodeHash);
  const ok = cp !== null && proof.every((h) => h !== null) && verifyInclusion(proof as Uint8Array[], cp.size, cp.root, e.index, leafHash(bytes));
  return ok ? bytes : "its inclusion proof does not lead to the signed checkpoint's root";
}

function conclusion(checks: PacketCheck[]): PacketVerification {
  const failed = checks.filter((c) => !c.ok).length;
  const verified = failed === 0 && checks.length > 0;
  return {
    verified,
    summary: verified ? `verified: all ${checks.length} checks passed` : `NOT verified: ${failed} of ${checks.length} checks failed`,
    checks,
  };
}

/**
 * Runs every offline check of a Decision Packet (`GET /api/decision/{id}/packet`)
 * with `logKey`, the log's verifier key the auditor trusts. The packet is
 * verified only if every check passes. Never throws for a bad packet: a
 * packet that cannot be read fails the single check `packet`.
 */
export function verifyPacket(packet: unknown, options: VerifyPacketOptions): PacketVerification {
  if (!options || typeof options.logKey !== "string") {
    throw new TypeError("verifyPacket needs { logKey }: the log's verifier key (gatehouse log key)");
  }
  let p: Obj;
  try {
    const value = typeof packet === "string" ? JSON.parse(packet) : packet;
    p = read(PacketSpec, value) as Obj;
  } catch (e) {
    const why = e instanceof ShapeError || e instanceof SyntaxError ? e.message : String(e);
    return conclusion([{ name: "packet", ok: false, detail: `not a ${PACKET_VERSION} document: ${why}` }]);
  }
  return conclusion(checkAll(p, options.logKey.trim()));
}

function checkAll(p: Obj, logKey: string): PacketCheck[] {
  const c = new Checks();
  const id: string = p.decision_id;
  const { packet_hash: shownHash, ...unhashed } = p;
  c.add(
    "packet_hash",
    canonicalSha256Hex(unhashed) === (shownHash ?? ""),
    "SHA-256 of the canonical packet without packet_hash (a checksum; anyone can recompute it)",
  );
  c.add("packet_version", p.packet_version === PACKET_VERSION, `the packet is ${p.packet_version}; this verifier reads ${PACKET_VERSION}`);
  let cp: VerifiedCheckpoint | null = null;
  try {
    cp = verifyCheckpoint(p.audit_chain.checkpoint, logKey);
    c.add("checkpoint_signature", true, `the checkpoint of ${cp.origin} at size ${cp.size} is signed by the given key`);
  } catch (e) {
    c.add("checkpoint_signature", false, e instanceof CheckpointError ? e.message : String(e));
  }

  // Every entry is proven in the checkpoint and is about this decision.
  const leaves: Array<[number, Uint8Array]> = [];
  for (const e of p.audit_chain.entries as Obj[]) {
    const name = `entry_${e.index}`;
    const bytes = proven(e, cp);
    if (typeof bytes === "string") {
      c.add(name, false, `log entry ${e.index}: ${bytes}`);
      continue;
    }
    try {
      const entry = parseEntry(bytes);
      if (entry.id === id) c.add(name, true, `log entry ${e.index} is in the signed log and is about ${id}`);
      else c.add(name, false, `log entry ${e.index} is about another record`);
    } catch (err) {
      c.add(name, false, `log entry ${e.index}: ${(err as Error).message}`);
    }
    leaves.push([e.index, bytes]);
  }
  const inOrder = leaves.every((l, i) => i === 0 || leaves[i - 1]![0] < l[0]);
  const [state, chain] = derive(id, leaves);
  if (!inOrder) chain.push("the entries are not in log order");
  c.all(
    "chain",
    chain,
    `${leaves.length} entries form an unbroken chain from the decision's own entry, each allowed by the rules where it stands`,
  );
  if (state === null) {
    c.add("status", false, "no decision entry: no state can be derived");
    return c.list;
  }
  record(c, p, state);
  c.add("status", p.status === state.status, `the packet says ${p.status}; its log entries say ${state.status}`);
  c.all("reviews", reviews(p, state), `${state.reviews.length} reviews, each equal to its log entry`);
  reviewRule(c, p, state);
  token(c, p, state);
  evidence(c, p, state);
  policy(c, p, cp);
  return c.list;
}

/** The record and the request are the ones logged with the decision. */
function record(c: Checks, p: Obj, s: DecisionState): void {
  const wrong: string[] = [];
  if (p.record_hash !== s.recordHash) wrong.push(`record_hash ${p.record_hash} is not the logged ${s.recordHash}`);
  if (canonicalSha256Hex(p.record) !== p.record_hash) wrong.push("the record does not hash to record_hash");
  if (p.record.decision_id !== p.decision_id) wrong.push(`the record is about ${p.record.decision_id}`);
  if (p.record.action_hash !== s.actionHash) wrong.push("the record's action_hash is not the logged one");
  c.all("record", wrong, "the record hashes to the record_hash its decision entry logged");
  const r = p.request;
  if (r) {
    const hash = actionHash(r.tool_name, r.subject, r.payload);
    const bound = hash === p.record.action_hash && r.workflow_name === p.record.workflow && r.subject === p.record.subject;
    c.add(
      "request",
      bound,
      bound ? "the request's action hashes to the record's action_hash" : `the request's action hashes to ${hash}, not the record's`,
    );
  }
}

function reviews(p: Obj, s: DecisionState): string[] {
  const shown = p.reviews as Obj[];
  const logged = s.reviews;
  const wrong: string[] = [];
  if (shown.length !== logged.length) wrong.push(`the packet shows ${shown.length} reviews; the log has ${logged.length}`);
  for (let i = 0; i < Math.min(shown.length, logged.length); i++) {
    const r = shown[i]!;
    const l = logged[i]!;
    const fields: string[] = [];
    if (r.index !== l.index) fields.push("index");
    if (r.decision !== l.item.decision) fields.push("decision");
    if (r.reviewer_key_id !== l.item.reviewer) fields.push("reviewer_key_id");
    // A version 2 entry records the name ("" for none); version 1 none.
    const nameOk = l.item.reviewer_name !== undefined ? (r.reviewer_name ?? "") === l.item.reviewer_name : r.reviewer_name === undefined;
    if (!nameOk) fields.push("reviewer_name");
    const ch = r.comment === undefined ? undefined : commentHash(r.comment);
    if (ch !== l.item.comment_hash) fields.push("comment");
    if (r.reviewed_at !== l.ts) fields.push("reviewed_at");
    if (r.person !== l.item.person) fields.push("person");
    if (!same(r.groups, l.item.groups)) fields.push("groups");
    if (r.action_hash !== l.item.action_hash) fields.push("action_hash");
    if (r.amended_payload !== undefined && p.request) {
      const hash = actionHash(p.request.tool_name, p.request.subject, r.amended_payload);
      if (hash !== l.item.action_hash) fields.push("amended_payload");
    }
    if (fields.length > 0) wrong.push(`the review shown for entry ${l.index} differs from it in: ${fields.join(", ")}`);
  }
  return wrong;
}

/** The record's review rule is the logged one, and an approved decision's approvals meet it. */
function reviewRule(c: Checks, p: Obj, s: DecisionState): void {
  if (!same(p.record.review_rule, s.rule)) {
    c.add("review_rule", false, "the record's review rule is not the one its decision entry logged");
    return;
  }
  const rule = s.rule;
  if (!rule) return;
  const t = tally(rule, votes(s), s.actionHash);
  const missing: string[] = [];
  if (p.status === "approved") {
    rule.requirements.forEach((req, n) => {
      const r = t.requirements[n]!;
      if (r.met) return;
      const groups = req.groups.length === 0 ? "any reviewer" : req.groups.join(" or ");
      const who = r.approvers.length === 0 ? "" : ` (${r.approvers.join(", ")})`;
      missing.push(`requirement ${n + 1} (${groups}) has ${r.approvers.length} of ${req.quorum} approvals from eligible people${who}`);
    });
  }
  if (p.approved_action_hash !== undefined && p.approved_action_hash !== s.approvedActionHash) {
    missing.push(`approved_action_hash is not the ${s.approvedActionHash} the approvals approved`);
  }
  const needs = rule.requirements
    .map((r) => `${r.quorum} of ${r.groups.length === 0 ? "any reviewer" : r.groups.join("/")}`)
    .join(" and ");
  c.all(
    "review_rule",
    missing,
    `the decision needed ${needs} and its reviews are judged by it: distinct eligible people, none of them the requester (${rule.requester === "" ? "unnamed" : rule.requester})`,
  );
}

/** The token's claims hash to what its entry logged, and name this decision, its action and the logged expiry. */
function token(c: Checks, p: Obj, s: DecisionState): void {
  const logged = s.token?.item;
  const shown = p.token as Obj | undefined | null;
  if (!shown) {
    const ok = !logged || logged.claims_hash === undefined;
    c.add(
      "token",
      ok,
      ok ? "no token claims are shown (none is bound by the log)" : "a token was logged with its claims' hash, but the packet shows no token",
    );
    return;
  }
  if (!logged) {
    c.add("token", false, "the packet shows a token no log entry records");
    return;
  }
  const claims = shown.claims;
  const claim = (k: string) => (claims !== null && typeof claims === "object" && !Array.isArray(claims) ? claims[k] : undefined);
  const str = (k: string) => (typeof claim(k) === "string" ? (claim(k) as string) : null);
  const int = (k: string) => (Number.isSafeInteger(claim(k)) ? (claim(k) as number) : null);
  const wrong: string[] = [];
  if (logged.claims_hash === undefined) {
    wrong.push("its entry was logged before claims were bound, so the claims cannot be verified");
  } else if (logged.claims_hash !== claimsHash(claims)) {
    wrong.push("the claims do not hash to the logged claims hash");
  }
  if (shown.kid !== logged.kid) wrong.push(`kid ${shown.kid} is not the logged ${logged.kid}`);
  if (str("jti") !== logged.jti) wrong.push(`jti is not the logged ${logged.jti}`);
  if (int("exp") !== unix(logged.exp)) wrong.push(`exp is not the logged expiry ${logged.exp}`);
  if (str("sub") !== p.decision_id) wrong.push("sub does not name this decision");
  if (str("dec") !== s.leafHash) wrong.push("dec is not the leaf hash of the decision's entry");
  if (str("act") !== s.approvedActionHash) wrong.push("act is not the approved action's hash");
  c.all(
    "token",
    wrong,
    `the token's claims hash to what log entry ${s.token?.index ?? 0} recorded and name this decision, its action and expiry`,
  );
}

/** Receipts and outcomes, in log order, each equal to its entry. */
function evidence(c: Checks, p: Obj, s: DecisionState): void {
  const decided = unix(s.createdAt);
  const executions = p.executions as Obj[];
  let wrong: string[] = [];
  if (executions.length !== s.executions.length) {
    wrong.push(`the packet shows ${executions.length} receipts; the log has ${s.executions.length}`);
  }
  for (let i = 0; i < Math.min(executions.length, s.executions.length); i++) {
    const r = executions[i]!;
    const l = s.executions[i]!;
    const at = unix(r.executed_at);
    const after = at !== null && decided !== null && at >= decided;
    if (r.execution_id !== l.item.execution_id || canonicalSha256Hex(r) !== l.item.execution_hash) {
      wrong.push(`receipt ${r.execution_id} is not the one log entry ${l.index} recorded`);
    } else if (r.decision_id !== p.decision_id || !after) {
      wrong.push(`receipt ${r.execution_id} is for another decision or dated before it`);
    }
  }
  c.all("receipts", wrong, `${s.executions.length} receipts, each equal to its log entry`);
  const outcomes = p.outcomes as Obj[];
  wrong = [];
  if (outcomes.length !== s.outcomes.length) {
    wrong.push(`the packet shows ${outcomes.length} outcomes; the log has ${s.outcomes.length}`);
  }
  for (let i = 0; i < Math.min(outcomes.length, s.outcomes.length); i++) {
    const o = outcomes[i]!;
    const l = s.outcomes[i]!;
    if (o.outcome_id !== l.item.outcome_id || canonicalSha256Hex(o) !== l.item.outcome_hash || o.decision_id !== p.decision_id) {
      wrong.push(`outcome ${o.outcome_id} is not the one log entry ${l.index} recorded`);
    }
  }
  c.all("outcomes", wrong, `${s.outcomes.length} outcomes, each equal to its log entry`);
}

/** Each policy text hashes to what the policy version's entry recorded. */
function policy(c: Checks, p: Obj, cp: VerifiedCheckpoint | null): void {
  const pol = p.policy as Obj;
  const wrong: string[] = [];
  if (pol.policy_version !== p.record.policy_version) {
    wrong.push(`policy_version ${pol.policy_version} is not the record's ${p.record.policy_version}`);
  }
  let recorded: Record<string, string> | undefined;
  if (pol.entry === undefined) {
    if (pol.policies.length > 0) wrong.push("policy texts are shown without their policy_version entry");
  } else {
    const bytes = proven(pol.entry, cp);
    if (typeof bytes === "string") {
      wrong.push(`policy entry ${pol.entry.index}: ${bytes}`);
    } else {
      try {
        const entry = parseEntry(bytes);
        if (entry.type === "policy_version" && entry.id === pol.policy_version) {
          recorded = entry.policies as Record<string, string> | undefined;
        } else {
          wrong.push(`log entry ${pol.entry.index} is not the entry of policy version ${pol.policy_version}`);
        }
      } catch (err) {
        wrong.push(`policy entry ${pol.entry.index}: ${(err as Error).message}`);
      }
    }
  }
  if (pol.entry !== undefined && recorded === undefined && wrong.length === 0) {
    wrong.push("the policy version was logged without per-policy hashes");
  }
  // The texts shown are those of every policy the record names as
  // evidence for its verdict: none left out, none added.
  if (pol.entry !== undefined) {
    const named = [...new Set((p.record.evidence as Obj[]).map((r) => r.policy_id).filter((x) => typeof x === "string"))].sort();
    const shown = [...new Set((pol.policies as Obj[]).map((t) => t.id as string))].sort();
    if (!same(named, shown)) {
      wrong.push(`the texts shown (${shown.join(", ")}) are not those of the policies the record names (${named.join(", ")})`);
    }
  }
  for (const text of pol.policies as Obj[]) {
    const logged = recorded !== undefined && Object.hasOwn(recorded, text.id) ? recorded[text.id] : undefined;
    if (recorded !== undefined && logged !== textHash(text.text)) {
      wrong.push(`the text of policy ${text.id} is not the one its version recorded`);
    }
  }
  c.all("policy", wrong, `${pol.policies.length} policy texts, each hashing to what policy version ${pol.policy_version} recorded`);
}
