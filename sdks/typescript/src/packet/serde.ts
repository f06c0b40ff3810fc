// The server hashes typed values: it reads JSON into Rust structs (serde),
// then writes them back out canonically. Unknown members are dropped,
// absent optional members are left out or written as null depending on
// the field, and a value of the wrong type is an error. To recompute the
// same hashes the verifier must read the same way, so each struct the
// packet carries is described here field by field, and `read` returns
// exactly the JSON the server's serializer would write for it.

export type Spec =
  | { t: "string" }
  | { t: "u64" }
  | { t: "u32" }
  | { t: "bool" }
  | { t: "value" }
  | { t: "map" }
  | { t: "strmap" }
  | { t: "enum"; values: readonly string[] }
  | { t: "vec"; of: Spec }
  | { t: "struct"; fields: readonly Field[] };

export interface Field {
  name: string;
  spec: Spec;
  /** `Option<T>`: absent or null reads as none. */
  option?: boolean;
  /** `#[serde(default)]` on a non-option field: absent reads as the empty value. */
  default?: boolean;
  /** `skip_serializing_if`: none for options; empty for vectors and strings. */
  skip?: boolean;
}

/** Why JSON is not a value of the expected type; the message names the path. */
export class ShapeError extends Error {}

export const S = {
  string: { t: "string" } as Spec,
  u64: { t: "u64" } as Spec,
  u32: { t: "u32" } as Spec,
  bool: { t: "bool" } as Spec,
  value: { t: "value" } as Spec,
  map: { t: "map" } as Spec,
  strmap: { t: "strmap" } as Spec,
  enum: (...values: string[]): Spec => ({ t: "enum", values }),
  vec: (of: Spec): Spec => ({ t: "vec", of }),
  struct: (...fields: Field[]): Spec => ({ t: "struct", fields }),
};

function kind(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "a sequence";
  if (typeof v === "object") return "a map";
  return `a ${typeof v}`;
}

function emptyOf(spec: Spec): unknown {
  switch (spec.t) {
    case "vec":
      return [];
    case "map":
    case "strmap":
      return {};
    case "string":
      return "";
    case "value":
      return null;
    default:
      throw new ShapeError("no default");
  }
}

function isEmpty(v: unknown): boolean {
  return v === undefined || v === "" || (Array.isArray(v) && v.length === 0);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

/** Reads `value` as `spec` and returns what the server would write for it; throws `ShapeError`. */
export function read(spec: Spec, value: unknown, path = "$"): unknown {
  const wrong = (want: string) => new ShapeError(`${path}: invalid type: ${kind(value)}, expected ${want}`);
  switch (spec.t) {
    case "string":
      if (typeof value !== "string") throw wrong("a string");
      return value;
    case "bool":
      if (typeof value !== "boolean") throw wrong("a boolean");
      return value;
    case "u64":
      if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) throw wrong("u64");
      return value;
    case "u32":
      if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > 0xffffffff) throw wrong("u32");
      return value;
    case "value":
      return value;
    case "map":
      if (!isObject(value)) throw wrong("a map");
      return value;
    case "strmap":
      if (!isObject(value)) throw wrong("a map");
      for (const [k, v] of Object.entries(value)) {
        if (typeof v !== "string") throw new ShapeError(`${path}.${k}: invalid type: ${kind(v)}, expected a string`);
      }
      return value;
    case "enum":
      if (typeof value !== "string" || !spec.values.includes(value)) {
        throw new ShapeError(`${path}: unknown variant ${JSON.stringify(value)}, expected one of ${spec.values.join(", ")}`);
      }
      return value;
    case "vec":
      if (!Array.isArray(value)) throw wrong("a sequence");
      return value.map((item, i) => read(spec.of, item, `${path}[${i}]`));
    case "struct": {
      if (!isObject(value)) throw wrong("a struct");
      const out: Record<string, unknown> = {};
      for (const f of spec.fields) {
        // A member set to undefined is absent, as JSON.stringify would leave it out.
        const raw = Object.prototype.hasOwnProperty.call(value, f.name) ? value[f.name] : undefined;
        const present = raw !== undefined;
        let v: unknown;
        if (f.option) {
          v = raw === undefined || raw === null ? undefined : read(f.spec, raw, `${path}.${f.name}`);
        } else if (!present) {
          if (!f.default) throw new ShapeError(`${path}: missing field \`${f.name}\``);
          v = emptyOf(f.spec);
        } else {
          v = read(f.spec, raw, `${path}.${f.name}`);
        }
        // An option is skipped only when it is none (`Some([])` is written
        // as `[]`); other skipped fields when they are empty.
        if (f.skip && (f.option ? v === undefined : isEmpty(v))) continue;
        out[f.name] = v === undefined ? null : v;
      }
      return out;
    }
  }
}

// The structs of a Decision Packet, field for field as the server
// declares them (crates/gatehouse-core and crates/gatehouse-log).

const opt = (name: string, spec: Spec = S.string): Field => ({ name, spec, option: true, skip: true });
const req = (name: string, spec: Spec = S.string): Field => ({ name, spec });

export const Reason = S.struct(req("code"), opt("policy_id"), req("message"));

export const Requirement = S.struct(
  req("groups", S.vec(S.string)),
  req("quorum", S.u32),
  opt("escalate_to"),
  opt("escalate_at"),
  opt("policy_id"),
);

export const ReviewRule = S.struct(req("requester"), req("requirements", S.vec(Requirement)));

export const DecisionRecord = S.struct(
  req("record_version"),
  req("request_id"),
  req("decision_id"),
  req("verdict"),
  req("action"),
  req("requested_action"),
  req("action_hash"),
  req("workflow"),
  req("subject"),
  opt("question"),
  opt("source_record_id"),
  opt("owner_rule"),
  req("evidence", S.vec(Reason)),
  { name: "caller_evidence", spec: S.vec(S.value), default: true, skip: true },
  req("policy_version"),
  req("context", S.value),
  req("created_at"),
  opt("review_deadline"),
  opt("review_rule", ReviewRule),
);

export const ExecutionReceipt = S.struct(
  req("receipt_version"),
  req("execution_id"),
  req("decision_id"),
  req("target_system"),
  req("target_object"),
  req("mutation"),
  req("executor"),
  opt("state_before_hash"),
  opt("state_after_hash"),
  opt("token_jti"),
  req("action_hash"),
  req("reported_by"),
  req("executed_at"),
);

export const OutcomeRecord = S.struct(
  req("record_version"),
  req("outcome_id"),
  req("decision_id"),
  req("status", S.enum("succeeded", "failed", "review", "pending")),
  req("action_taken"),
  { name: "observed_metrics", spec: S.value, default: true },
  opt("target_system"),
  req("reported_by"),
  req("reported_at"),
);

export const ChainEntry = S.struct(req("index", S.u64), req("leaf"), req("proof", S.vec(S.string)));

export const PacketRequest = S.struct(
  req("workflow_name"),
  req("tool_name"),
  req("subject"),
  { name: "payload", spec: S.map, default: true },
);

export const PacketReview = S.struct(
  req("index", S.u64),
  req("decision", S.enum("approve", "reject")),
  req("reviewer_key_id"),
  opt("reviewer_name"),
  opt("comment"),
  req("reviewed_at"),
  opt("person"),
  opt("groups", S.vec(S.string)),
  opt("action_hash"),
  opt("amended_payload", S.map),
);

export const Packet = S.struct(
  req("packet_version"),
  req("decision_id"),
  req("record", DecisionRecord),
  req("record_hash"),
  opt("request", PacketRequest),
  req("status"),
  { name: "reviews", spec: S.vec(PacketReview), default: true },
  opt("approved_action_hash"),
  { name: "token", spec: S.struct(req("kid"), req("claims", S.value)), option: true },
  { name: "executions", spec: S.vec(ExecutionReceipt), default: true },
  { name: "outcomes", spec: S.vec(OutcomeRecord), default: true },
  req(
    "policy",
    S.struct(
      req("policy_version"),
      req("policies", S.vec(S.struct(req("id"), req("text")))),
      opt("entry", ChainEntry),
    ),
  ),
  req("audit_chain", S.struct(req("checkpoint"), req("entries", S.vec(ChainEntry)))),
  req("unverified", S.value),
  { name: "packet_hash", spec: S.string, default: true, skip: true },
);
