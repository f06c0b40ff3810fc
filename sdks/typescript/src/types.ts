// Friendly names for the wire types, all taken from the types generated
// from the committed OpenAPI document (src/generated/openapi.ts), so they
// follow the server's contract. Only the SDK's own input shapes (camelCase
// options around the wire bodies) are written here by hand.

import type { components } from "./generated/openapi.js";

type Schemas = components["schemas"];

export type { components, operations, paths } from "./generated/openapi.js";

/** Any JSON value. */
export type JsonValue = Schemas["JsonValue"];
/** A JSON object: a payload, a context, amended arguments. */
export type JsonObject = { [key: string]: JsonValue };

export type Risk = Schemas["Risk"];
export type Status = Schemas["Status"];
export type Verdict = Schemas["Verdict"];
export type Reason = Schemas["Reason"];

/** A decision in the Gate API's shape (`POST /api/gate/requests`, `GET /api/gate/requests/{id}`). */
export type GateView = Schemas["GateView"];
/** A Decision Record v1 with its handles and current state (`POST /api/decide`, `GET /api/decision/{id}`). */
export type RecordView = Schemas["RecordView"];
/** Once a decision permits the action: exactly what to run. */
export type ApprovedAction = Schemas["ApprovedAction"];

/** The Gate API's request body (`POST /api/agent/tasks/{task_id}/requests`). */
export type GateBody = Schemas["GateBody"];
/** The SDK-named request body (`POST /api/gate/requests`). */
export type SdkGateBody = Schemas["SdkGateBody"];
/** The Decide API's request body (`POST /api/decide`). */
export type DecideBody = Schemas["DecideBody"];
export type ReviewBody = Schemas["ReviewBody"];
export type RedeemBody = Schemas["RedeemBody"];
export type Redeemed = Schemas["Redeemed"];
export type ActionBody = Schemas["ActionBody"];
export type ExecutionBody = Schemas["ExecutionBody"];
export type ReceiptCreated = Schemas["ReceiptCreated"];
export type OutcomeBody = Schemas["OutcomeBody"];
export type OutcomeCreated = Schemas["OutcomeCreated"];
export type OutcomeStatus = Schemas["OutcomeStatus"];
export type EventBody = Schemas["EventBody"];
export type TaskEvent = Schemas["TaskEvent"];
export type Packet = Schemas["Packet"];
export type Jwks = Schemas["Jwks"];

/** `gate.request(...)`: the product pages' SDK shape. */
export interface GateRequestInput {
  /** Stable name of the agent or workflow asking (policies see it as the principal). */
  agent: string;
  /** The action about to run, e.g. `issue_refund` (policies see it as the action). */
  action: string;
  risk: Risk;
  /** The customer, ticket, repository, ... the action touches. */
  subject: string;
  /** The action's arguments and reviewable facts: the payload the approval token binds (policies see `context.payload`). */
  context?: JsonObject | null;
  /** The task this request belongs to. */
  taskId?: string;
  /** Retry safely: the same key and body return the original decision. Sent as the `Idempotency-Key` header. */
  idempotencyKey?: string;
  /** Short facts for the reviewer, at most 50. */
  summary?: string[];
  /** The group that owns the request (routes its review when no policy names reviewers). */
  owner?: string;
  /** Where to POST the resolution once decided after a review (must be on the server's allowlist). */
  callbackUrl?: string;
}

/** `gate.decide(...)`. */
export interface DecideInput {
  question: string;
  /** `workflow` and `requested_action` are required; every other field but the ones with a place of their own is a guardrail field (the payload). */
  context: DecideBody["context"];
  callbackUrl?: string;
  idempotencyKey?: string;
}

/** Options of one call. */
export interface CallOptions {
  /** Aborts the call; it then rejects with `GateUnavailable`. */
  signal?: AbortSignal;
}

/** Options of calls that create something and may be retried safely. */
export interface IdempotentCallOptions extends CallOptions {
  /** Sent as the `Idempotency-Key` header. */
  idempotencyKey?: string;
}

/** `gate.review(id, ...)`: a reviewer's approval or rejection. */
export interface ReviewInput {
  decision: "approve" | "reject";
  comment?: string;
  /** Approve with changes: the payload approved instead of the proposed one. */
  amendedPayload?: JsonObject;
}
