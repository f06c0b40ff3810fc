// Offline verification of approval tokens: the checks `gatehouse token
// verify` makes (signature, type, time window, audience, action binding),
// in the same order and with the same words. Single use cannot be checked
// offline; the server enforces it at POST /api/tokens/redeem.

import { actionHash } from "./jcs.js";

/** The `typ` every approval token carries. */
export const TOKEN_TYPE = "gate-approval+jwt";

/** The audience tokens are issued for unless the server sets `--token-audience`. */
export const DEFAULT_AUDIENCE = "gatehouse-executor";

/** The claims of an approval token. Times are Unix seconds. */
export interface ApprovalClaims {
  /** The decision id. */
  sub: string;
  /** `sha256:` action hash of the approved action. */
  act: string;
  /** Hex leaf hash of the decision's entry in the transparency log. */
  dec: string;
  /** The executor the token is meant for. */
  aud: string;
  jti: string;
  iat: number;
  nbf: number;
  exp: number;
}

/** A public key of the server's JWKS (`GET /.well-known/jwks.json`). */
export interface Jwk {
  kty?: string;
  crv?: string;
  x?: string;
  kid?: string;
  alg?: string;
  use?: string;
  [member: string]: unknown;
}

export interface VerifyTokenOptions {
  /** The server's public keys, as `GET /.well-known/jwks.json` returns them (`gate.jwks()`). */
  jwks: { keys: Jwk[] };
  /** The audience this executor expects; the server's `--token-audience`, by default `gatehouse-executor`. */
  audience?: string;
  /** The time to judge expiry by, as a Date or Unix seconds; now by default. */
  now?: Date | number;
}

/**
 * The action an executor is about to run, in the fields redemption takes:
 * `tool_name` (or `action`), `subject` and `payload`; or its `sha256:`
 * action hash.
 */
export type TokenAction =
  | string
  | {
      tool_name?: string;
      action?: string;
      subject: string;
      payload?: Record<string, unknown> | null;
    };

/** Which check an approval token failed. */
export type TokenCheck =
  | "format"
  | "type"
  | "key"
  | "signature"
  | "expiry"
  | "not_before"
  | "audience"
  | "action";

/** Thrown by `verifyToken` when a check fails; `check` says which, `message` says how. */
export class TokenVerificationError extends Error {
  readonly check: TokenCheck;
  constructor(check: TokenCheck, message: string) {
    super(message);
    this.name = "TokenVerificationError";
    this.check = check;
  }
}

/** The action hash of a `TokenAction`, as the CLI reads an action file. */
export function presentedActionHash(action: TokenAction): string {
  if (typeof action === "string") {
    if (!/^sha256:[0-9a-f]{64}$/.test(action)) {
      throw new TypeError("an action given as a string must be a sha256: action hash");
    }
    return action;
  }
  if (action === null || typeof action !== "object") {
    throw new TypeError("the action must be {tool_name, subject, payload} or a sha256: action hash");
  }
  const tool = [action.tool_name, action.action].find((v) => typeof v === "string");
  if (tool === undefined) throw new TypeError("the action needs tool_name or action");
  if (typeof action.subject !== "string") throw new TypeError("the action needs subject");
  const payload = action.payload;
  if (payload !== undefined && payload !== null && (typeof payload !== "object" || Array.isArray(payload))) {
    throw new TypeError("the action's payload must be a JSON object");
  }
  return actionHash(tool, action.subject, payload ?? {});
}

function isInt(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v);
}

function claimsOf(payload: Uint8Array): ApprovalClaims {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(payload));
  } catch {
    throw new TokenVerificationError("format", "the token is not a well-formed JWT");
  }
  const c = value as Record<string, unknown>;
  const strings = ["sub", "act", "dec", "aud", "jti"].every((k) => typeof c?.[k] === "string");
  const times = ["iat", "nbf", "exp"].every((k) => isInt(c?.[k]));
  if (value === null || typeof value !== "object" || Array.isArray(value) || !strings || !times) {
    throw new TokenVerificationError("format", "the token is not a well-formed JWT");
  }
  return c as unknown as ApprovalClaims;
}

/**
 * Verifies an approval token offline: its signature against `jwks`, its
 * type and algorithm, its time window, its audience and that it binds
 * exactly `action`. Resolves with the claims, or rejects with a
 * `TokenVerificationError` naming the first check that failed.
 */
export async function verifyToken(
  token: string,
  action: TokenAction,
  options: VerifyTokenOptions,
): Promise<ApprovalClaims> {
  const presented = presentedActionHash(action);
  if (!options || !options.jwks || !Array.isArray(options.jwks.keys)) {
    throw new TypeError("verifyToken needs { jwks } with the server's keys (GET /.well-known/jwks.json)");
  }
  const audience = options.audience ?? DEFAULT_AUDIENCE;
  const now =
    options.now instanceof Date
      ? Math.floor(options.now.getTime() / 1000)
      : typeof options.now === "number"
        ? Math.floor(options.now)
        : Math.floor(Date.now() / 1000);

  // jose is ESM-only; a dynamic import loads it from the CommonJS build too.
  const jose = await import("jose");
  if (typeof token !== "string" || token.split(".").length !== 3) {
    throw new TokenVerificationError("format", "the token is not a well-formed JWT");
  }
  let header: { typ?: unknown; alg?: unknown; kid?: unknown };
  try {
    header = jose.decodeProtectedHeader(token);
  } catch {
    throw new TokenVerificationError("format", "the token is not a well-formed JWT");
  }
  if (header.typ !== TOKEN_TYPE || header.alg !== "EdDSA") {
    throw new TokenVerificationError("type", `the token's type is not ${TOKEN_TYPE}`);
  }
  const kid = typeof header.kid === "string" ? header.kid : "";
  const jwk = options.jwks.keys.find((k) => k && k.kid === kid);
  if (!jwk) throw new TokenVerificationError("key", `the token was signed by an unknown key (${kid})`);
  let key;
  try {
    key = await jose.importJWK({ ...jwk, alg: "EdDSA" } as Parameters<typeof jose.importJWK>[0], "EdDSA");
  } catch {
    throw new TokenVerificationError("key", `the token was signed by an unknown key (${kid})`);
  }
  let payload: Uint8Array;
  try {
    ({ payload } = await jose.compactVerify(token, key, { algorithms: ["EdDSA"] }));
  } catch (e) {
    if (e instanceof jose.errors.JWSSignatureVerificationFailed) {
      throw new TokenVerificationError("signature", "the token's signature is invalid");
    }
    throw new TokenVerificationError("format", "the token is not a well-formed JWT");
  }
  const claims = claimsOf(payload);
  if (now >= claims.exp) {
    throw new TokenVerificationError("expiry", `the token expired at ${claims.exp}`);
  }
  if (now < claims.nbf) {
    throw new TokenVerificationError("not_before", `the token is not valid before ${claims.nbf}`);
  }
  if (claims.aud !== audience) {
    throw new TokenVerificationError(
      "audience",
      `the token is for audience ${JSON.stringify(claims.aud)}, not ${JSON.stringify(audience)}`,
    );
  }
  if (claims.act !== presented) {
    throw new TokenVerificationError(
      "action",
      `the action differs from the approved one (approved ${claims.act}, presented ${presented})`,
    );
  }
  return claims;
}
