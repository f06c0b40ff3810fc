// Log entries. A leaf is the RFC 8785 canonical JSON of one typed entry,
// `{"v":…,"type":…,"id":…,"ts":…,…}`; reading one refuses anything that is
// not exactly the canonical bytes of a known entry of a supported version
// (crates/gatehouse-log/src/entry/).

import { canonicalize, canonicalSha256Hex, sha256Hex } from "../jcs.js";
import { read, ReviewRule, S, ShapeError, type Field, type Spec } from "./serde.js";

export const ENTRY_VERSION = 2;
export const FIRST_VERSION = 1;

const opt = (name: string, spec: Spec = S.string): Field => ({ name, spec, option: true, skip: true });
const nullable = (name: string, spec: Spec = S.string): Field => ({ name, spec, option: true });
const req = (name: string, spec: Spec = S.string): Field => ({ name, spec });

/** Each entry type's own fields, besides `v`, `id`, `ts` and `prev`. */
const EVENTS: Record<string, readonly Field[]> = {
  decision: [
    req("request_id"),
    req("record_hash"),
    req("verdict", S.enum("allow", "reject", "pending_review")),
    req("policy_version"),
    req("action_hash"),
    req("created_by"),
    opt("review_rule", ReviewRule),
  ],
  review: [
    req("decision", S.enum("approve", "reject")),
    req("reviewer"),
    opt("reviewer_name"),
    nullable("comment_hash"),
    opt("person"),
    opt("groups", S.vec(S.string)),
    opt("action_hash"),
    opt("resolves", S.bool),
  ],
  escalation: [req("group")],
  expiry: [],
  task_event: [
    req("task_id"),
    nullable("decision_id"),
    req("kind"),
    nullable("message_hash"),
    req("data_hash"),
    req("created_by"),
  ],
  policy_version: [req("files_hash"), opt("policies", S.strmap)],
  token_issued: [req("jti"), req("kid"), req("exp"), opt("claims_hash")],
  token_redeemed: [req("jti"), req("redeemed_by")],
  execution: [req("execution_id"), req("execution_hash"), req("action_hash"), nullable("token_jti")],
  outcome: [req("outcome_id"), req("outcome_hash"), req("status", S.enum("succeeded", "failed", "review", "pending"))],
  flag: [req("reason")],
  key_event: [req("event", S.enum("created", "revoked", "retired")), req("role")],
  user_event: [
    req("event", S.enum("created", "disabled", "groups_set", "password_set")),
    req("role"),
    opt("groups", S.vec(S.string)),
  ],
};

/** Entry types about a decision that follow its first entry: version 2 chains them with `prev`. */
const CHAINED = new Set(["review", "escalation", "expiry", "token_issued", "token_redeemed", "execution", "outcome", "flag"]);

/** A parsed entry: the common fields, its type, and its own fields (absent options left out). */
export interface LogEntry {
  v: number;
  id: string;
  ts: string;
  prev?: string;
  type: string;
  [field: string]: unknown;
}

export class EntryError extends Error {}

/** Whether the version-2 fields of the entry are all present (`v2`) or all absent. */
function fieldsOfVersion(e: Record<string, unknown>, v2: boolean): boolean {
  const has = (k: string) => e[k] !== undefined && e[k] !== null;
  switch (e.type) {
    case "review":
      return has("reviewer_name") === v2;
    case "token_issued":
      return has("claims_hash") === v2;
    case "policy_version":
      return has("policies") === v2;
    default:
      return true;
  }
}

/** Reads a leaf's bytes back into an entry, or throws an `EntryError` saying why not. */
export function parseEntry(bytes: Uint8Array): LogEntry {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (e) {
    throw new EntryError(`not a log entry: ${(e as Error).message}`);
  }
  if (json === null || typeof json !== "object" || Array.isArray(json)) {
    throw new EntryError("not a log entry: expected a JSON object");
  }
  const obj = json as Record<string, unknown>;
  if (!Object.prototype.hasOwnProperty.call(obj, "type")) throw new EntryError("not a log entry: missing field `type`");
  const type = obj.type;
  const fields = typeof type === "string" ? EVENTS[type] : undefined;
  if (!fields) {
    throw new EntryError(`not a log entry: unknown variant ${JSON.stringify(type)}`);
  }
  let typed: Record<string, unknown>;
  try {
    typed = read(S.struct(req("v", S.u64), req("id"), req("ts"), opt("prev"), ...fields), obj) as Record<string, unknown>;
  } catch (e) {
    if (e instanceof ShapeError) throw new EntryError(`not a log entry: ${e.message}`);
    throw e;
  }
  typed.type = type;
  const v = typed.v as number;
  if (v < FIRST_VERSION || v > ENTRY_VERSION) throw new EntryError(`entry version ${v} is not supported`);
  const v2 = v >= 2;
  const chainOk = (typed.prev !== undefined) === (v2 && CHAINED.has(type as string));
  if (!chainOk || !fieldsOfVersion(typed, v2)) {
    throw new EntryError(`a version ${v} entry of type ${type} lacks or has fields of another version`);
  }
  let canonical: string;
  try {
    canonical = canonicalize(typed);
  } catch {
    throw new EntryError("the bytes are not the canonical JSON of the entry they encode");
  }
  if (Buffer.compare(Buffer.from(canonical, "utf8"), Buffer.from(bytes)) !== 0) {
    throw new EntryError("the bytes are not the canonical JSON of the entry they encode");
  }
  // Options written as null are "none" from here on, as for the server.
  for (const [k, val] of Object.entries(typed)) if (val === null) delete typed[k];
  return typed as LogEntry;
}

/** `sha256:` of a text's UTF-8 bytes (a policy's text). */
export function textHash(text: string): string {
  return `sha256:${sha256Hex(text)}`;
}

/** `sha256:` of a review comment as a canonical JSON string: what a review entry records. */
export function commentHash(comment: string): string {
  return `sha256:${canonicalSha256Hex(comment)}`;
}

/** `sha256:` of the canonical JSON of a token's claims: what a token_issued entry binds. */
export function claimsHash(claims: unknown): string {
  return `sha256:${canonicalSha256Hex(claims)}`;
}
