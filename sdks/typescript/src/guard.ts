// `gate.guard(...)`: the whole fail-closed sequence around one action. Ask
// (the args are the payload), wait while a reviewer decides (bounded),
// check that what the gate approved is what was asked or what the reviewer
// amended, redeem the approval token for exactly that, run, and report the
// execution receipt and the outcome. Any other path throws a typed error
// before `run` is called: nothing but an explicit allow or approval runs it.

import type { Gatehouse } from "./client.js";
import {
  GateError,
  GatePending,
  GateProtocolError,
  GateRejected,
  GateReportFailed,
} from "./errors.js";
import { actionHash, canonicalize } from "./jcs.js";
import type { ExecutionBody, GateView, JsonObject, JsonValue, OutcomeBody, Risk } from "./types.js";

export interface GuardInput<A extends object> {
  agent: string;
  action: string;
  risk: Risk;
  subject: string;
  /** The action's arguments: the request's payload (the SDK shape's `context`); the token binds exactly these. */
  args: A;
  taskId?: string;
  summary?: string[];
  owner?: string;
  idempotencyKey?: string;
}

/** What the action did, for the receipt and the outcome. */
export type GuardOutcome<R> = { ok: true; result: R } | { ok: false; error: unknown };

/** Details `report` may add to the receipt and outcome. */
export interface GuardReport {
  target_object?: string;
  state_before_hash?: string;
  state_after_hash?: string;
  action_taken?: string;
  observed_metrics?: JsonValue;
}

export interface GuardOptions<R = unknown> {
  /** How long to wait for a reviewer while the decision is pending; default 60 000 ms. Then `GatePending`. */
  waitTimeoutMs?: number;
  /** Called once if the gate answers `pending_review`, before waiting: e.g. to tell a person who must approve. */
  onPending?: (decision: GateView) => void;
  /** Called once with the final decision (after any wait), before guard acts on it: e.g. to log its id. */
  onDecision?: (decision: GateView) => void;
  /** Aborts asking and waiting (never a running action); it then rejects with `GateUnavailable`. */
  signal?: AbortSignal;
  /** The receipt's `target_system`; default the agent's name. */
  targetSystem?: string;
  /** The receipt's `target_object`; default the subject. */
  targetObject?: string;
  /** The receipt's `mutation`; default the action's name. */
  mutation?: string;
  /** The receipt's `executor`; default the agent's name. */
  executor?: string;
  /** Adds details to the receipt and the outcome once the action has run (or failed). */
  report?: (outcome: GuardOutcome<R>) => GuardReport | undefined;
  /**
   * Called when the receipt or outcome could not be recorded after the
   * action ran. Without it, a successful run then rejects with
   * `GateReportFailed` (carrying the result); a failed run rethrows its own
   * error either way.
   */
  onReportError?: (error: unknown) => void;
}

const MAX_TEXT = 4000;

function clip(text: string): string {
  return text.length > MAX_TEXT ? `${text.slice(0, MAX_TEXT - 1)}…` : text;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== "object" || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function errorText(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  try {
    return String(error);
  } catch {
    return "a non-Error value was thrown";
  }
}

/** The decision must permit the action, by an allow or an approval; anything else throws. */
function permitted(view: GateView, waitedMs: number): void {
  switch (view.status) {
    case "allow":
    case "approved":
      if (view.may_proceed !== true) {
        throw new GateProtocolError(`decision ${view.id} is ${view.status} but may_proceed is not true`, {
          decisionId: view.id,
        });
      }
      return;
    case "pending_review":
      throw new GatePending(view, waitedMs);
    case "reject":
    case "rejected":
    case "expired":
      throw new GateRejected(view);
    default:
      throw new GateProtocolError(`decision ${view.id} has an unknown status ${JSON.stringify(view.status)}`, {
        decisionId: view.id,
      });
  }
}

/** What the gate approved, checked against what was asked; the arguments to run with. */
function approvedArgs<A extends object>(view: GateView, input: GuardInput<A>, sent: JsonObject) {
  const fail = (why: string) => new GateProtocolError(`decision ${view.id}: ${why}; the action was not run`, { decisionId: view.id });
  const approved = view.approved_action;
  const token = view.approval_token;
  if (!approved) throw fail(`it is ${view.status} but names no approved_action`);
  if (typeof token !== "string" || token === "") throw fail(`it is ${view.status} but carries no approval token`);
  // Reviewers may amend the arguments, never the action or its subject.
  if (approved.tool_name !== input.action.trim() || approved.subject !== input.subject.trim()) {
    throw fail(`the approved action (${approved.tool_name} on ${approved.subject}) is not the one asked for`);
  }
  if (!isPlainObject(approved.payload)) throw fail("the approved payload is not a JSON object");
  if (actionHash(approved.tool_name, approved.subject, approved.payload) !== approved.action_hash) {
    throw fail("the approved action does not hash to its action_hash");
  }
  if (!approved.amended && canonicalize(approved.payload) !== canonicalize(sent)) {
    throw fail("the approved payload is not the one sent, yet it is not marked as amended");
  }
  return {
    approved,
    token,
    args: (approved.amended ? approved.payload : input.args) as A,
  };
}

export async function guard<A extends object, R>(
  gate: Gatehouse,
  input: GuardInput<A>,
  run: (args: A) => R | Promise<R>,
  options: GuardOptions<R> = {},
): Promise<R> {
  if (typeof run !== "function") throw new TypeError("guard needs the action to run as its second argument");
  if (!isPlainObject(input?.args)) throw new TypeError("guard's args must be a plain JSON object");
  const waitTimeoutMs = options.waitTimeoutMs ?? 60_000;
  // The payload exactly as it goes over the wire: what the token will bind.
  const sent = JSON.parse(JSON.stringify(input.args)) as JsonObject;
  canonicalize(sent);

  let view = await gate.request(
    {
      agent: input.agent,
      action: input.action,
      risk: input.risk,
      subject: input.subject,
      context: sent,
      taskId: input.taskId,
      summary: input.summary,
      owner: input.owner,
      idempotencyKey: input.idempotencyKey,
    },
    { signal: options.signal },
  );
  if (view.status === "pending_review") {
    options.onPending?.(view);
    view = await gate.waitFor(view.id, { timeoutMs: waitTimeoutMs, signal: options.signal });
  }
  options.onDecision?.(view);
  permitted(view, waitTimeoutMs);
  const { approved, token, args } = approvedArgs(view, input, sent);
  const action = { tool_name: approved.tool_name, subject: approved.subject, payload: approved.payload };

  const redeemed = await gate.redeem(token, action, { signal: options.signal });
  if (redeemed.redeemed !== true || redeemed.decision_id !== view.id || redeemed.action_hash !== approved.action_hash) {
    throw new GateProtocolError(`decision ${view.id}: the redemption does not confirm this token for this action`, {
      decisionId: view.id,
    });
  }

  let outcome: GuardOutcome<R>;
  try {
    outcome = { ok: true, result: await run(args) };
  } catch (error) {
    outcome = { ok: false, error };
  }

  try {
    await report(gate, view.id, input, options, outcome, action, redeemed.jti);
  } catch (error) {
    if (options.onReportError) {
      options.onReportError(error);
    } else if (outcome.ok) {
      throw new GateReportFailed(
        `decision ${view.id}: the action ran, but its receipt or outcome could not be recorded (${errorText(error)}); do not run it again`,
        { cause: error, decisionId: view.id, result: outcome.result },
      );
    }
  }
  if (!outcome.ok) throw outcome.error;
  return outcome.result;
}

async function report<A extends object, R>(
  gate: Gatehouse,
  id: string,
  input: GuardInput<A>,
  options: GuardOptions<R>,
  outcome: GuardOutcome<R>,
  action: NonNullable<ExecutionBody["action"]>,
  jti: string,
): Promise<void> {
  let extra: GuardReport = {};
  try {
    extra = options.report?.(outcome) ?? {};
  } catch (error) {
    throw new GateError(`the report callback failed: ${errorText(error)}`, { cause: error, decisionId: id });
  }
  const targetSystem = options.targetSystem ?? input.agent;
  const receipt: ExecutionBody = {
    target_system: targetSystem,
    target_object: extra.target_object ?? options.targetObject ?? input.subject,
    mutation: options.mutation ?? input.action,
    executor: options.executor ?? input.agent,
    state_before_hash: extra.state_before_hash,
    state_after_hash: extra.state_after_hash,
    token_jti: jti,
    action,
  };
  // No abort signal here: once the action has run, its receipt must be sent.
  await gate.recordExecution(id, receipt);
  const body: OutcomeBody = outcome.ok
    ? {
        status: "succeeded",
        action_taken: clip(extra.action_taken ?? `${input.action} on ${input.subject}`),
        observed_metrics: extra.observed_metrics,
        target_system: targetSystem,
      }
    : {
        status: "failed",
        action_taken: clip(extra.action_taken ?? `${input.action} on ${input.subject} failed: ${errorText(outcome.error)}`),
        observed_metrics: extra.observed_metrics ?? { error: clip(errorText(outcome.error)) },
        target_system: targetSystem,
      };
  await gate.recordOutcome(id, body);
}
