// Who must approve a decision and whether its reviews meet that
// (crates/gatehouse-core/src/review_rule.rs), RFC 3339 times as the server
// reads them, and the rules for redemptions and receipts
// (crates/gatehouse-log/src/rules.rs). The verifier applies them to every
// logged entry exactly as the server did before it wrote the entry.

export interface Requirement {
  groups: string[];
  quorum: number;
  escalate_to?: string;
  escalate_at?: string;
  policy_id?: string;
}

export interface ReviewRule {
  requester: string;
  requirements: Requirement[];
}

export type Choice = "approve" | "reject";

/** One review as the rule sees it. */
export interface Vote {
  key: string;
  identity: string;
  groups: string[];
  choice: Choice;
  actionHash: string;
  /** Unix milliseconds. */
  atMs: number;
}

export interface Tally {
  outcome: "approved" | "rejected" | null;
  currentActionHash: string;
  requirements: Array<{ approvers: string[]; met: boolean }>;
}

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|([+-])(\d{2}):(\d{2}))$/;

/** Seconds and nanoseconds since the epoch of an RFC 3339 time, or null. */
function parse(ts: string): { secs: number; nanos: number } | null {
  const m = RFC3339.exec(ts);
  if (!m) return null;
  const [year, month, day, hour, minute] = [m[1], m[2], m[3], m[4], m[5]].map(Number) as [number, number, number, number, number];
  let second = Number(m[6]);
  let nanos = m[7] ? Number((m[7].slice(1) + "000000000").slice(0, 9)) : 0;
  const days = new Date(Date.UTC(year, month, 0)).getUTCDate();
  if (month < 1 || month > 12 || day < 1 || day > days || hour > 23 || minute > 59 || second > 60) return null;
  if (second === 60) {
    // A leap second reads as the last instant of the second before it.
    second = 59;
    nanos = 999_999_999;
  }
  let offset = 0;
  if (m[9]) {
    const oh = Number(m[10]);
    const om = Number(m[11]);
    if (oh > 23 || om > 59) return null;
    offset = (m[9] === "-" ? -1 : 1) * (oh * 3600 + om * 60);
  }
  const base = Date.UTC(year, month - 1, day, hour, minute, second);
  // Date.UTC maps years 0-99 to 1900-1999; such times never occur in a log.
  if (year < 100) return null;
  return { secs: base / 1000 - offset, nanos };
}

/** RFC 3339 to Unix seconds (whole seconds, truncated), or null. */
export function unix(ts: string): number | null {
  const t = parse(ts);
  return t === null ? null : Math.trunc(t.secs + t.nanos / 1e9);
}

/** RFC 3339 to Unix milliseconds (truncated), or null. */
export function unixMs(ts: string): number | null {
  const t = parse(ts);
  return t === null ? null : Math.trunc(t.secs * 1000 + t.nanos / 1e6);
}

function escalateAtMs(r: Requirement): number | null {
  return r.escalate_at === undefined ? null : unixMs(r.escalate_at);
}

/** Whether someone in `groups` may approve for `r` at `atMs`. */
export function admits(r: Requirement, groups: string[], atMs: number): boolean {
  if (r.groups.length === 0) return true;
  const when = escalateAtMs(r);
  const escalated = r.escalate_to !== undefined && when !== null && atMs >= when ? r.escalate_to : undefined;
  return groups.some((g) => r.groups.includes(g) || escalated === g);
}

export function eligibleGroups(rule: ReviewRule, atMs: number): string[] {
  const groups: string[] = [];
  for (const r of rule.requirements) {
    if (r.groups.length === 0) return [];
    groups.push(...r.groups);
    const when = escalateAtMs(r);
    if (r.escalate_to !== undefined && when !== null && atMs >= when) groups.push(r.escalate_to);
  }
  return [...new Set(groups)].sort();
}

/** Where `votes`, in order, leave a decision whose proposed action hashes to `proposed`. */
export function tally(rule: ReviewRule, votes: Vote[], proposed: string): Tally {
  const lastApproval = [...votes].reverse().find((v) => v.choice === "approve");
  const current = lastApproval ? lastApproval.actionHash : proposed;
  const requirements = rule.requirements.map((r) => {
    const approvers: string[] = [];
    for (const v of votes) {
      const counts = v.choice === "approve" && v.actionHash === current && admits(r, v.groups, v.atMs);
      if (counts && !approvers.includes(v.identity)) approvers.push(v.identity);
    }
    return { approvers, met: approvers.length >= r.quorum };
  });
  let outcome: Tally["outcome"] = null;
  if (votes.some((v) => v.choice === "reject")) outcome = "rejected";
  else if (requirements.every((r) => r.met) && votes.length > 0) outcome = "approved";
  return { outcome, currentActionHash: current, requirements };
}

/** Why `vote` may not follow `prior` on a decision asked for by key `requesterKey`; null when it may. */
export function refusal(rule: ReviewRule, requesterKey: string, prior: Vote[], vote: Vote): string | null {
  if (vote.key === requesterKey || (rule.requester !== "" && vote.identity === rule.requester)) {
    return "the requester may not review their own request";
  }
  if (!rule.requirements.some((r) => admits(r, vote.groups, vote.atMs))) {
    return `${vote.identity} is not in a group that may review this request (eligible: ${eligibleGroups(rule, vote.atMs).join(", ")})`;
  }
  if (vote.choice === "approve") {
    const current = tally(rule, prior, vote.actionHash).currentActionHash;
    const again = prior.some(
      (p) =>
        p.identity === vote.identity &&
        p.choice === "approve" &&
        p.actionHash === vote.actionHash &&
        vote.actionHash === current,
    );
    if (again) return `${vote.identity} has already approved this action; one person counts once`;
  }
  return null;
}

/** The rule of a decision recorded before rules existed: any reviewer, one approval. */
export const LEGACY_RULE: ReviewRule = { requester: "", requirements: [{ groups: [], quorum: 1 }] };

/** The parts of a decision's derived state the redemption and receipt rules read. */
export interface RuleState {
  decisionId: string;
  status: string;
  approvedActionHash: string;
  token: { item: { jti: string; exp: string } } | null;
  redemptions: Array<{ item: { jti: string } }>;
}

export function permitsAction(status: string): boolean {
  return status === "allow" || status === "approved";
}

/** Why a redemption of token `jti` at `at` (Unix seconds) may not follow; null when it may. */
export function redemptionRefusal(s: RuleState, jti: string, at: number | null): string | null {
  if (!permitsAction(s.status)) return `decision ${s.decisionId} is ${s.status}`;
  if (!s.token) return "no approval token was issued for the decision";
  if (s.token.item.jti !== jti) return "this is not the token issued for the decision";
  if (s.redemptions.some((r) => r.item.jti === jti)) return "the token was already redeemed";
  const exp = unix(s.token.item.exp);
  if (at !== null && exp !== null && at < exp) return null;
  return `the token expired at ${s.token.item.exp}`;
}

/** Why a receipt for `actionHash`, naming `tokenJti`, reported at `at` may not follow; null when it may. */
export function receiptRefusal(s: RuleState, actionHash: string, tokenJti: string | undefined, at: number | null): string | null {
  if (!permitsAction(s.status)) return `the decision is ${s.status}, so no action was authorised`;
  if (actionHash !== s.approvedActionHash) {
    return `the executed action (${actionHash}) is not the approved one (${s.approvedActionHash})`;
  }
  const issued = s.token?.item;
  if (tokenJti !== undefined && issued?.jti !== tokenJti) return `token ${tokenJti} was not issued for this decision`;
  if (issued) {
    const exp = unix(issued.exp);
    if (!(at !== null && exp !== null && at <= exp)) {
      return `the receipt comes after the approval token expired at ${issued.exp}`;
    }
  }
  return null;
}
