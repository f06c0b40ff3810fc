// The Gatehouse client: one method per API call an agent, executor or
// reviewer makes, each returning the server's own types (generated from
// the OpenAPI document) or throwing a typed error. `guard` is in guard.ts.

import { GateProtocolError } from "./errors.js";
import { guard, type GuardInput, type GuardOptions } from "./guard.js";
import { send, type HttpRequest, type Transport } from "./http.js";
import type {
  ActionBody,
  CallOptions,
  DecideInput,
  EventBody,
  ExecutionBody,
  GateBody,
  GateRequestInput,
  GateView,
  IdempotentCallOptions,
  Jwks,
  OutcomeBody,
  OutcomeCreated,
  Packet,
  ReceiptCreated,
  RecordView,
  Redeemed,
  ReviewInput,
  TaskEvent,
  components,
} from "./types.js";

export interface GatehouseOptions {
  /** The server's base URL, e.g. `https://gate.internal` (a path prefix is kept). */
  url: string;
  /** An API key (`gatehouse keys create`), sent as `Authorization: Bearer`. */
  apiKey: string;
  /** How long one HTTP call may take before it fails with `GateUnavailable`; default 30 000 ms. Long polls get their wait on top. */
  timeoutMs?: number;
  /** A `fetch` implementation; the global one by default. */
  fetch?: typeof fetch;
  /** Sent as `User-Agent`. */
  userAgent?: string;
}

export interface WaitForOptions extends CallOptions {
  /** How long to wait in all, across as many long polls as it takes; default 60 000 ms. */
  timeoutMs?: number;
}

/** The longest long poll the server grants (`?wait=` above it waits this long). */
const SERVER_MAX_WAIT_SECONDS = 60;
/** A pending answer sooner than this after asking means the server will not hold the poll: pause before the next. */
const MIN_POLL_INTERVAL_MS = 250;

const seg = (s: string) => encodeURIComponent(s);

function nonEmpty(name: string, value: unknown): string {
  if (typeof value !== "string" || value.trim() === "") {
    throw new TypeError(`${name} must be a non-empty string`);
  }
  return value;
}

function idempotency(key: string | undefined): Record<string, string> | undefined {
  return key === undefined ? undefined : { "idempotency-key": nonEmpty("idempotencyKey", key) };
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}

/** Calls about one task: `gate.tasks(taskId)`. */
export class TaskClient {
  readonly taskId: string;
  readonly #gate: Gatehouse;

  constructor(gate: Gatehouse, taskId: string) {
    this.#gate = gate;
    this.taskId = nonEmpty("taskId", taskId);
  }

  /** Asks for a decision with the Gate API's fields (`POST /api/agent/tasks/{task_id}/requests`). */
  request(body: GateBody, options: IdempotentCallOptions = {}): Promise<GateView> {
    return this.#gate.send<GateView>({
      method: "POST",
      path: `/api/agent/tasks/${seg(this.taskId)}/requests`,
      body,
      headers: idempotency(options.idempotencyKey),
      signal: options.signal,
    });
  }

  /** Records what happened around the task (`POST /api/agent/tasks/{task_id}/events`). */
  event(body: EventBody, options: CallOptions = {}): Promise<TaskEvent> {
    return this.#gate.send<TaskEvent>({
      method: "POST",
      path: `/api/agent/tasks/${seg(this.taskId)}/events`,
      body,
      signal: options.signal,
    });
  }

  /** The task's events (`GET /api/agent/tasks/{task_id}/events`). */
  events(options: CallOptions = {}): Promise<components["schemas"]["EventList"]> {
    return this.#gate.send({ method: "GET", path: `/api/agent/tasks/${seg(this.taskId)}/events`, signal: options.signal });
  }
}

export class Gatehouse {
  readonly url: string;
  readonly timeoutMs: number;
  readonly #transport: Transport;

  constructor(options: GatehouseOptions) {
    if (!options || typeof options !== "object") throw new TypeError("new Gatehouse({ url, apiKey, timeoutMs })");
    const url = new URL(nonEmpty("url", options.url));
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      throw new TypeError(`url must be http or https (got ${url.protocol})`);
    }
    const timeoutMs = options.timeoutMs ?? 30_000;
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw new TypeError("timeoutMs must be a positive number");
    const fetchImpl = options.fetch ?? globalThis.fetch;
    if (typeof fetchImpl !== "function") throw new TypeError("no fetch implementation: use Node 20+ or pass { fetch }");
    this.url = url.href.replace(/\/+$/, "");
    this.timeoutMs = timeoutMs;
    this.#transport = {
      url: this.url,
      apiKey: nonEmpty("apiKey", options.apiKey),
      timeoutMs,
      fetch: fetchImpl,
      userAgent: options.userAgent ?? "gatehouse-sdk-typescript/0.1.0",
    };
  }

  /** @internal One HTTP call through this client's transport. */
  send<T>(req: HttpRequest): Promise<T> {
    return send<T>(this.#transport, req);
  }

  /**
   * Asks for a decision with the SDK's names (`POST /api/gate/requests`):
   * `context` is the payload the approval token binds. Resolves with the
   * decision: `status` is `allow`, `reject` or `pending_review`.
   */
  request(input: GateRequestInput, options: CallOptions = {}): Promise<GateView> {
    const body = {
      agent: input.agent,
      action: input.action,
      risk: input.risk,
      subject: input.subject,
      context: input.context ?? undefined,
      task_id: input.taskId,
      summary: input.summary,
      owner: input.owner,
      callback_url: input.callbackUrl,
    };
    return this.send<GateView>({
      method: "POST",
      path: "/api/gate/requests",
      body,
      headers: idempotency(input.idempotencyKey),
      signal: options.signal,
    });
  }

  /** Calls about one task; `.request({...})` takes the Gate API's fields. */
  tasks(taskId: string): TaskClient {
    return new TaskClient(this, taskId);
  }

  /** Asks the Decide API (`POST /api/decide`); resolves with the Decision Record. */
  decide(input: DecideInput, options: CallOptions = {}): Promise<RecordView> {
    return this.send<RecordView>({
      method: "POST",
      path: "/api/decide",
      body: { question: input.question, context: input.context, callback_url: input.callbackUrl },
      headers: idempotency(input.idempotencyKey),
      signal: options.signal,
    });
  }

  /** A decision now (`GET /api/gate/requests/{id}`); `wait` long-polls up to that many seconds while it is pending. */
  get(id: string, options: CallOptions & { wait?: number } = {}): Promise<GateView> {
    const wait = options.wait;
    if (wait !== undefined && (!Number.isInteger(wait) || wait < 0)) {
      throw new TypeError("wait must be a whole number of seconds");
    }
    return this.send<GateView>({
      method: "GET",
      path: `/api/gate/requests/${seg(nonEmpty("id", id))}`,
      query: { wait },
      timeoutMs: this.timeoutMs + (wait ?? 0) * 1000,
      signal: options.signal,
      decisionId: id,
    });
  }

  /** The Decision Record and its state (`GET /api/decision/{id}`). */
  getRecord(id: string, options: CallOptions = {}): Promise<RecordView> {
    return this.send<RecordView>({
      method: "GET",
      path: `/api/decision/${seg(nonEmpty("id", id))}`,
      signal: options.signal,
      decisionId: id,
    });
  }

  /**
   * Waits until the decision leaves `pending_review` or `timeoutMs` runs
   * out, long-polling again whenever the server's own limit (60 s, or its
   * `--max-wait`) ends a poll first. Resolves with the decision as it then
   * is: check `status` (it is still `pending_review` if the time ran out).
   */
  async waitFor(id: string, options: WaitForOptions = {}): Promise<GateView> {
    const timeoutMs = options.timeoutMs ?? 60_000;
    if (!Number.isFinite(timeoutMs) || timeoutMs < 0) throw new TypeError("timeoutMs must be a number >= 0");
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      // Whole seconds only, rounded down, so a poll never outlasts the
      // deadline; the last part of a second is covered by short polls.
      const remaining = deadline - Date.now();
      const wait = Math.min(SERVER_MAX_WAIT_SECONDS, Math.max(0, Math.floor(remaining / 1000)));
      const asked = Date.now();
      const view = await this.get(id, { wait, signal: options.signal });
      if (view.status !== "pending_review" || Date.now() >= deadline) return view;
      if (Date.now() - asked < MIN_POLL_INTERVAL_MS) {
        await sleep(Math.min(MIN_POLL_INTERVAL_MS, Math.max(0, deadline - Date.now())), options.signal);
      }
    }
  }

  /** Approves or rejects a pending decision; reviewer keys only (`POST /api/gate/requests/{id}/review`). */
  review(id: string, input: ReviewInput, options: CallOptions = {}): Promise<GateView> {
    return this.send<GateView>({
      method: "POST",
      path: `/api/gate/requests/${seg(nonEmpty("id", id))}/review`,
      body: { decision: input.decision, comment: input.comment, amended_payload: input.amendedPayload },
      signal: options.signal,
      decisionId: id,
    });
  }

  /** Redeems an approval token, once, for exactly `action` (`POST /api/tokens/redeem`). */
  redeem(token: string, action: ActionBody, options: CallOptions = {}): Promise<Redeemed> {
    return this.send<Redeemed>({
      method: "POST",
      path: "/api/tokens/redeem",
      body: { token: nonEmpty("token", token), action },
      signal: options.signal,
    });
  }

  /** Reports what an executor did (`POST /api/gate/requests/{id}/executions`). */
  recordExecution(id: string, body: ExecutionBody, options: CallOptions = {}): Promise<ReceiptCreated> {
    return this.send<ReceiptCreated>({
      method: "POST",
      path: `/api/gate/requests/${seg(nonEmpty("id", id))}/executions`,
      body,
      signal: options.signal,
      decisionId: id,
    });
  }

  /** Reports what came of the action (`POST /api/gate/requests/{id}/outcomes`). */
  recordOutcome(id: string, body: OutcomeBody, options: CallOptions = {}): Promise<OutcomeCreated> {
    return this.send<OutcomeCreated>({
      method: "POST",
      path: `/api/gate/requests/${seg(nonEmpty("id", id))}/outcomes`,
      body,
      signal: options.signal,
      decisionId: id,
    });
  }

  /** A decision's receipts and outcomes, in the order recorded (`GET /api/gate/requests/{id}/executions`). */
  executions(id: string, options: CallOptions = {}): Promise<components["schemas"]["ExecutionsView"]> {
    return this.send({
      method: "GET",
      path: `/api/gate/requests/${seg(nonEmpty("id", id))}/executions`,
      signal: options.signal,
      decisionId: id,
    });
  }

  /** The Decision Packet, to verify offline with `verifyPacket` (`GET /api/decision/{id}/packet`). */
  packet(id: string, options: CallOptions = {}): Promise<Packet> {
    return this.send<Packet>({
      method: "GET",
      path: `/api/decision/${seg(nonEmpty("id", id))}/packet`,
      signal: options.signal,
      decisionId: id,
    });
  }

  /** The keys approval tokens are verified with (`GET /.well-known/jwks.json`), for `verifyToken`. */
  jwks(options: CallOptions = {}): Promise<Jwks> {
    return this.send<Jwks>({ method: "GET", path: "/.well-known/jwks.json", auth: false, signal: options.signal });
  }

  /**
   * The key checkpoints are signed with (`GET /api/log/key`). An auditor
   * should obtain it out of band too: a packet is only as trustworthy as
   * the key it is checked with.
   */
  async logKey(options: CallOptions = {}): Promise<string> {
    const text = await this.send<string>({
      method: "GET",
      path: "/api/log/key",
      auth: false,
      text: true,
      signal: options.signal,
    });
    const key = text.trim();
    if (!/^[^+\s]+\+[0-9a-f]{8}\+[A-Za-z0-9+/=]+$/.test(key)) {
      throw new GateProtocolError(`GET /api/log/key: the answer is not a signed-note verifier key`);
    }
    return key;
  }

  /**
   * Runs `run(args)` only if the gate allows or a reviewer approves it,
   * with the approved arguments; see `guard` in the README.
   */
  guard<A extends object, R>(
    input: GuardInput<A>,
    run: (args: A) => R | Promise<R>,
    options: GuardOptions<R> = {},
  ): Promise<R> {
    return guard(this, input, run, options);
  }
}
