// A decision's state derived from its log entries alone, with the rules
// the server applied before it wrote each one (crates/gatehouse-log/src/state.rs).

import { leafHash } from "../merkle.js";
import { parseEntry, type LogEntry } from "./entry.js";
import {
  LEGACY_RULE,
  permitsAction,
  receiptRefusal,
  redemptionRefusal,
  refusal,
  tally,
  unix,
  unixMs,
  type Choice,
  type ReviewRule,
  type Vote,
} from "./rules.js";

export interface Logged<T> {
  index: number;
  ts: string;
  item: T;
}

export interface LoggedReview {
  decision: Choice;
  reviewer: string;
  reviewer_name?: string;
  comment_hash?: string;
  person?: string;
  groups?: string[];
  action_hash?: string;
}

export interface DecisionState {
  decisionId: string;
  index: number;
  createdAt: string;
  verdict: string;
  recordHash: string;
  /** The decision entry's leaf hash (hex): what its token's `dec` names. */
  leafHash: string;
  actionHash: string;
  policyVersion: string;
  createdBy: string;
  rule: ReviewRule | undefined;
  status: string;
  resolved: Logged<null> | null;
  reviews: Array<Logged<LoggedReview>>;
  escalations: Array<Logged<string>>;
  approvedActionHash: string;
  token: Logged<{ jti: string; kid: string; exp: string; claims_hash?: string }> | null;
  redemptions: Array<Logged<{ jti: string; redeemed_by: string }>>;
  executions: Array<Logged<{ execution_id: string; execution_hash: string; action_hash: string; token_jti?: string }>>;
  outcomes: Array<Logged<{ outcome_id: string; outcome_hash: string; status: string }>>;
  flags: Array<Logged<string>>;
  chained: boolean;
  last: [number, string];
}

function vote(r: LoggedReview, proposed: string, ts: string): Vote {
  return {
    key: r.reviewer,
    identity: r.person ?? r.reviewer_name ?? r.reviewer,
    groups: r.groups ?? [],
    choice: r.decision,
    actionHash: r.action_hash ?? proposed,
    atMs: unixMs(ts) ?? Number.MIN_SAFE_INTEGER,
  };
}

/** The reviews as the rule sees them, in log order. */
export function votes(s: DecisionState): Vote[] {
  return s.reviews.map((r) => vote(r.item, s.actionHash, r.ts));
}

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");

function first(index: number, e: LogEntry, hash: string): DecisionState | string {
  if (e.type !== "decision") return `log entry ${index} (${e.type}) comes before the decision's own entry`;
  const actionHash = e.action_hash as string;
  return {
    decisionId: e.id,
    index,
    createdAt: e.ts,
    verdict: e.verdict as string,
    recordHash: e.record_hash as string,
    leafHash: hash,
    actionHash,
    policyVersion: e.policy_version as string,
    createdBy: e.created_by as string,
    rule: e.review_rule as ReviewRule | undefined,
    status: e.verdict as string,
    resolved: null,
    reviews: [],
    escalations: [],
    approvedActionHash: actionHash,
    token: null,
    redemptions: [],
    executions: [],
    outcomes: [],
    flags: [],
    chained: e.v >= 2,
    last: [index, hash],
  };
}

/** Applies one entry to the state if the rules allow it to follow; otherwise returns why not. */
function apply(s: DecisionState, index: number, e: LogEntry): string | null {
  const ts = e.ts;
  const when = unix(ts);
  const f = e as Record<string, unknown>;
  switch (e.type) {
    case "decision":
      return "a second decision entry";
    case "review": {
      if (s.status !== "pending_review") return `a review of a decision that is ${s.status}`;
      const review: LoggedReview = {
        decision: f.decision as Choice,
        reviewer: f.reviewer as string,
        reviewer_name: f.reviewer_name as string | undefined,
        comment_hash: f.comment_hash as string | undefined,
        person: f.person as string | undefined,
        groups: f.groups as string[] | undefined,
        action_hash: f.action_hash as string | undefined,
      };
      const prior = votes(s);
      const v = vote(review, s.actionHash, ts);
      if (s.rule) {
        if (review.person === undefined || review.groups === undefined || review.action_hash === undefined) {
          return "a review of a decision with a review rule names no person, groups or action";
        }
        const why = refusal(s.rule, s.createdBy, prior, v);
        if (why !== null) return `a review that should have been refused: ${why}`;
      }
      s.reviews.push({ index, ts, item: review });
      const t = tally(s.rule ?? LEGACY_RULE, [...prior, v], s.actionHash);
      const resolves = f.resolves as boolean | undefined;
      if (resolves !== undefined && resolves !== (t.outcome !== null)) {
        return `a review that claims it ${t.outcome !== null ? "left pending" : "resolved"} the decision, which its rule says it does not`;
      }
      if (t.outcome !== null) {
        s.status = t.outcome;
        s.resolved = { index, ts, item: null };
        if (t.outcome === "approved") s.approvedActionHash = t.currentActionHash;
      }
      return null;
    }
    case "escalation": {
      if (s.status !== "pending_review") return `an escalation of a decision that is ${s.status}`;
      const group = f.group as string;
      const at = unixMs(ts);
      const scheduled = (s.rule?.requirements ?? []).some((q) => {
        const due = q.escalate_at === undefined ? null : unixMs(q.escalate_at);
        return q.escalate_to === group && due !== null && at !== null && at >= due;
      });
      if (!scheduled) return `an escalation to ${group} that the decision's rule does not schedule by then`;
      s.escalations.push({ index, ts, item: group });
      return null;
    }
    case "expiry":
      if (s.status !== "pending_review") return `an expiry of a decision that is ${s.status}`;
      s.status = "expired";
      s.resolved = { index, ts, item: null };
      return null;
    case "token_issued":
      if (!permitsAction(s.status)) return `a token for a decision that is ${s.status}`;
      if (s.token) return "a second approval token";
      s.token = {
        index,
        ts,
        item: {
          jti: f.jti as string,
          kid: f.kid as string,
          exp: f.exp as string,
          claims_hash: f.claims_hash as string | undefined,
        },
      };
      return null;
    case "token_redeemed": {
      const why = redemptionRefusal(s, f.jti as string, when);
      if (why !== null) return why;
      s.redemptions.push({ index, ts, item: { jti: f.jti as string, redeemed_by: f.redeemed_by as string } });
      return null;
    }
    case "execution": {
      const id = f.execution_id as string;
      const why = receiptRefusal(s, f.action_hash as string, f.token_jti as string | undefined, when);
      if (why !== null) return `receipt ${id} should have been refused: ${why}`;
      s.executions.push({
        index,
        ts,
        item: {
          execution_id: id,
          execution_hash: f.execution_hash as string,
          action_hash: f.action_hash as string,
          token_jti: f.token_jti as string | undefined,
        },
      });
      return null;
    }
    case "outcome":
      s.outcomes.push({
        index,
        ts,
        item: { outcome_id: f.outcome_id as string, outcome_hash: f.outcome_hash as string, status: f.status as string },
      });
      return null;
    case "flag":
      s.flags.push({ index, ts, item: f.reason as string });
      return null;
    default:
      return `a ${e.type} entry is not about a decision`;
  }
}

/**
 * Derives the state of `decisionId` from its entries (index, exact leaf
 * bytes), in log order. Every problem is named with its entry's index; a
 * state is returned whenever the first entry is the decision's.
 */
export function derive(decisionId: string, entries: Array<[number, Uint8Array]>): [DecisionState | null, string[]] {
  const problems: string[] = [];
  let state: DecisionState | null = null;
  for (const [index, bytes] of entries) {
    let entry: LogEntry;
    try {
      entry = parseEntry(bytes);
    } catch (e) {
      problems.push(`log entry ${index}: ${(e as Error).message}`);
      continue;
    }
    if (entry.id !== decisionId) {
      problems.push(`log entry ${index} is about ${entry.id}, not ${decisionId}`);
      continue;
    }
    const hash = hex(leafHash(bytes));
    if (state === null) {
      const s = first(index, entry, hash);
      if (typeof s === "string") problems.push(s);
      else state = s;
      continue;
    }
    // The chain: a version 2 entry names the one before it; after a
    // version 2 decision, every entry does.
    if (entry.prev !== undefined && entry.prev !== state.last[1]) {
      problems.push(
        `log entry ${index} does not follow entry ${state.last[0]} (an entry about the decision is missing or was replaced)`,
      );
    } else if (entry.prev === undefined && state.chained) {
      problems.push(`log entry ${index} names no previous entry although the decision's entries are chained`);
    }
    state.last = [index, hash];
    const why = apply(state, index, entry);
    if (why !== null) problems.push(`log entry ${index}: ${why}`);
  }
  if (state === null && problems.length === 0) problems.push(`no log entry records decision ${decisionId}`);
  return [state, problems];
}
