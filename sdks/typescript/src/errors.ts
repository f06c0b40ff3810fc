// The SDK's typed errors. Every failure is one of these, and none of them
// ever means "go ahead": `guard` runs the action only after an explicit
// allow or approval, so whatever goes wrong on the way fails closed.

import type { GateView, Reason } from "./types.js";

/** Base class of every error the SDK throws about the gate. */
export class GateError extends Error {
  /** The decision this error is about, when one exists. */
  readonly decisionId: string | undefined;
  constructor(message: string, options?: { cause?: unknown; decisionId?: string | undefined }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.decisionId = options?.decisionId;
  }
}

/** The server's error body, `{"error": {"code", "message", "request_id", "reasons"}}`. */
export interface ServerError {
  code: string;
  message: string;
  request_id?: string | null;
  reasons?: Reason[] | null;
}

/**
 * The gate could not be asked or did not answer: a network error, a
 * timeout, 429 (rate limited) or a 5xx. Nothing was approved; the request
 * may be retried later (`retryAfterMs` says when, if the server said).
 */
export class GateUnavailable extends GateError {
  /** The HTTP status, when the server answered (429 or 5xx). */
  readonly status: number | undefined;
  /** The server's error code (`rate_limited`, `unavailable`, `internal`, ...), when it sent one. */
  readonly code: string | undefined;
  /** The server's request id, to find its log lines. */
  readonly requestId: string | undefined;
  /** Milliseconds the server asked to wait (`Retry-After`), if it did. */
  readonly retryAfterMs: number | undefined;
  constructor(
    message: string,
    options?: {
      cause?: unknown;
      status?: number;
      code?: string;
      requestId?: string;
      retryAfterMs?: number;
      decisionId?: string;
    },
  ) {
    super(message, options);
    this.status = options?.status;
    this.code = options?.code;
    this.requestId = options?.requestId;
    this.retryAfterMs = options?.retryAfterMs;
  }
}

/**
 * The server refused the call itself (a 4xx other than 429): a bad or
 * forbidden request, an unknown decision, an idempotency conflict, a
 * token that failed redemption, and so on. `code` is the server's stable
 * error code.
 */
export class GateRequestError extends GateError {
  readonly status: number;
  readonly code: string;
  readonly requestId: string | undefined;
  /** With `amendment_rejected`: the policy reasons. */
  readonly reasons: Reason[] | undefined;
  constructor(status: number, error: ServerError, decisionId?: string) {
    super(`${status} ${error.code}: ${error.message}`, { decisionId });
    this.status = status;
    this.code = error.code;
    this.requestId = error.request_id ?? undefined;
    this.reasons = error.reasons ?? undefined;
  }
}

/** The decision does not permit the action: `reject`, `rejected` or `expired`. */
export class GateRejected extends GateError {
  /** The decision as the server last showed it. */
  readonly decision: GateView;
  readonly status: GateView["status"];
  /** The reasons, for people. */
  readonly reasons: string[];
  constructor(decision: GateView) {
    const why = decision.reasons?.length ? `: ${decision.reasons.join("; ")}` : "";
    super(`decision ${decision.id} is ${decision.status}${why}`, { decisionId: decision.id });
    this.decision = decision;
    this.status = decision.status;
    this.reasons = decision.reasons ?? [];
  }
}

/**
 * The decision is still `pending_review` and the wait ran out. Nothing
 * ran; ask again later with `gate.waitFor(error.decisionId)`.
 */
export class GatePending extends GateError {
  readonly decision: GateView;
  constructor(decision: GateView, waitedMs: number) {
    super(`decision ${decision.id} is still pending review after waiting ${waitedMs} ms`, {
      decisionId: decision.id,
    });
    this.decision = decision;
  }
}

/**
 * The gate answered with something that cannot be trusted to permit the
 * action (an unknown status, an approval without a token, an approved
 * action that is not the one asked for, a body that is not JSON). Nothing ran.
 */
export class GateProtocolError extends GateError {}

/**
 * The action ran, but reporting its execution receipt or outcome to the
 * gate failed. `result` is what the action returned: do not run it again.
 */
export class GateReportFailed extends GateError {
  readonly result: unknown;
  constructor(message: string, options: { cause: unknown; decisionId: string; result: unknown }) {
    super(message, options);
    this.result = options.result;
  }
}
