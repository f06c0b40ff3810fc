// The one place the SDK talks HTTP: it adds the key, applies the timeout,
// and turns every failure into a typed error. Network errors, timeouts,
// 429 and 5xx are `GateUnavailable`; other 4xx are `GateRequestError` with
// the server's stable code; a 2xx whose body is not JSON is a protocol
// error. Nothing here ever turns a failure into a value.

import { GateProtocolError, GateRequestError, GateUnavailable, type ServerError } from "./errors.js";

export interface Transport {
  /** Base URL without a trailing slash. */
  url: string;
  apiKey: string;
  timeoutMs: number;
  fetch: typeof fetch;
  userAgent: string;
}

export interface HttpRequest {
  method: "GET" | "POST" | "PUT" | "DELETE";
  path: string;
  query?: Record<string, string | number | undefined>;
  body?: unknown;
  headers?: Record<string, string>;
  /** Overrides the client's timeout (long polls need the wait on top). */
  timeoutMs?: number;
  signal?: AbortSignal | undefined;
  /** Whether the answer is text rather than JSON. */
  text?: boolean;
  /** Whether to send the API key (public endpoints need none). */
  auth?: boolean;
  /** The decision the call is about, carried into errors. */
  decisionId?: string | undefined;
}

function retryAfterMs(header: string | null): number | undefined {
  if (header === null) return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

function serverError(body: string, status: number): ServerError {
  try {
    const parsed = JSON.parse(body) as { error?: ServerError };
    if (parsed && typeof parsed.error?.code === "string") {
      return {
        code: parsed.error.code,
        message: typeof parsed.error.message === "string" ? parsed.error.message : "",
        request_id: parsed.error.request_id ?? null,
        reasons: parsed.error.reasons ?? null,
      };
    }
  } catch {
    // Not Gatehouse's error body (a proxy's page, say): described below.
  }
  const excerpt = body.length > 200 ? `${body.slice(0, 200)}…` : body;
  return { code: `http_${status}`, message: excerpt || `HTTP ${status}` };
}

/**
 * A signal that aborts when either does, and a function that detaches it
 * again (AbortSignal.any needs Node 20.3, and a caller's long-lived signal
 * must not collect one listener per call).
 */
function anySignal(a: AbortSignal, b: AbortSignal): { signal: AbortSignal; dispose: () => void } {
  const both = new AbortController();
  const listeners: Array<[AbortSignal, () => void]> = [];
  for (const s of [a, b]) {
    if (s.aborted) {
      both.abort(s.reason);
      break;
    }
    const onAbort = () => both.abort(s.reason);
    s.addEventListener("abort", onAbort, { once: true });
    listeners.push([s, onAbort]);
  }
  return {
    signal: both.signal,
    dispose: () => listeners.forEach(([s, f]) => s.removeEventListener("abort", f)),
  };
}

/** Sends one request and returns its parsed answer, or throws a typed error. */
export async function send<T>(t: Transport, req: HttpRequest): Promise<T> {
  const url = new URL(t.url + req.path);
  for (const [k, v] of Object.entries(req.query ?? {})) {
    if (v !== undefined) url.searchParams.set(k, String(v));
  }
  const headers: Record<string, string> = { accept: "application/json", "user-agent": t.userAgent, ...req.headers };
  if (req.auth !== false) headers.authorization = `Bearer ${t.apiKey}`;
  let body: string | undefined;
  if (req.body !== undefined) {
    headers["content-type"] = "application/json";
    body = JSON.stringify(req.body);
  }
  const timeoutMs = req.timeoutMs ?? t.timeoutMs;
  const timeout = AbortSignal.timeout(timeoutMs);
  const combined = req.signal ? anySignal(timeout, req.signal) : { signal: timeout, dispose: () => {} };
  const signal = combined.signal;
  const where = `${req.method} ${req.path}`;

  let res: Response;
  let text: string;
  try {
    res = await t.fetch(url, { method: req.method, headers, body, signal, redirect: "error" });
    text = await res.text();
  } catch (e) {
    if (timeout.aborted) {
      throw new GateUnavailable(`${where}: no answer within ${timeoutMs} ms`, { cause: e, decisionId: req.decisionId });
    }
    if (req.signal?.aborted) {
      throw new GateUnavailable(`${where}: aborted by the caller`, { cause: e, decisionId: req.decisionId });
    }
    const reason = (e as { cause?: { code?: string; message?: string } })?.cause;
    const detail = reason?.code ?? reason?.message ?? (e as Error)?.message ?? String(e);
    throw new GateUnavailable(`${where}: the gate at ${t.url} could not be reached (${detail})`, {
      cause: e,
      decisionId: req.decisionId,
    });
  } finally {
    combined.dispose();
  }

  if (res.status === 429 || res.status >= 500) {
    const err = serverError(text, res.status);
    throw new GateUnavailable(`${where}: ${res.status} ${err.code}: ${err.message}`, {
      status: res.status,
      code: err.code,
      requestId: err.request_id ?? res.headers.get("x-request-id") ?? undefined,
      retryAfterMs: retryAfterMs(res.headers.get("retry-after")),
      decisionId: req.decisionId,
    });
  }
  if (res.status < 200 || res.status >= 300) {
    throw new GateRequestError(res.status, serverError(text, res.status), req.decisionId);
  }
  if (req.text) return text as T;
  if (res.status === 204) return undefined as T;
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new GateProtocolError(`${where}: the answer (${res.status}) is not JSON`, {
      cause: e,
      decisionId: req.decisionId,
    });
  }
}
