// RFC 8785 (JSON Canonicalization Scheme) and the digests Gatehouse builds
// on it. Every hash the server publishes (record hash, action hash, receipt
// and outcome hashes, log leaves) is the SHA-256 of these bytes, so the SDK
// must produce exactly the same bytes to check them.

import { createHash } from "node:crypto";

/** A JSON value as `JSON.parse` returns it. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Thrown when a value has no canonical JSON form (NaN, a function, a lone surrogate, ...). */
export class CanonicalizationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CanonicalizationError";
  }
}

// A lone UTF-16 surrogate cannot be encoded as UTF-8, so the server (whose
// strings are UTF-8) could never have hashed it: refuse rather than produce
// bytes no one else would.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function str(s: string): string {
  if (LONE_SURROGATE.test(s)) {
    throw new CanonicalizationError("a string holds a lone UTF-16 surrogate, which has no UTF-8 form");
  }
  // ECMAScript's JSON string escaping is exactly what RFC 8785 §3.2.2.2 asks
  // for: the two-character escapes, \u00xx in lower case for other control
  // characters, and everything else as it is.
  return JSON.stringify(s);
}

function num(n: number): string {
  if (!Number.isFinite(n)) {
    throw new CanonicalizationError("RFC 8785 has no NaN or infinite numbers");
  }
  // RFC 8785 §3.2.2.3 is ECMAScript's Number.prototype.toString; -0 is "0".
  return Object.is(n, -0) ? "0" : String(n);
}

function write(value: unknown, out: string[]): void {
  if (value === null) {
    out.push("null");
    return;
  }
  switch (typeof value) {
    case "boolean":
      out.push(value ? "true" : "false");
      return;
    case "number":
      out.push(num(value));
      return;
    case "string":
      out.push(str(value));
      return;
    case "object":
      break;
    default:
      throw new CanonicalizationError(`a ${typeof value} has no JSON form`);
  }
  if (Array.isArray(value)) {
    out.push("[");
    value.forEach((item, i) => {
      if (i > 0) out.push(",");
      write(item === undefined ? null : item, out);
    });
    out.push("]");
    return;
  }
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) {
    throw new CanonicalizationError("only plain objects, arrays, strings, numbers, booleans and null have a canonical form");
  }
  // Members whose value is undefined are left out, as JSON.stringify does.
  // The default sort compares UTF-16 code units, the order RFC 8785 §3.2.3 asks for.
  const keys = Object.keys(value as object)
    .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
    .sort();
  out.push("{");
  keys.forEach((k, i) => {
    if (i > 0) out.push(",");
    out.push(str(k), ":");
    write((value as Record<string, unknown>)[k], out);
  });
  out.push("}");
}

/** The RFC 8785 canonical JSON text of `value`. */
export function canonicalize(value: unknown): string {
  const out: string[] = [];
  write(value, out);
  return out.join("");
}

/** Lower-case hex SHA-256 of bytes or of a string's UTF-8 bytes. */
export function sha256Hex(data: Uint8Array | string): string {
  return createHash("sha256").update(data).digest("hex");
}

/** Lower-case hex SHA-256 of the canonical JSON of `value`. */
export function canonicalSha256Hex(value: unknown): string {
  return sha256Hex(canonicalize(value));
}

/**
 * The action hash that binds approval tokens, records and receipts to one
 * action: `sha256:` + hex SHA-256 of the canonical JSON of
 * `{"action", "payload", "subject"}` (README, "The action hash").
 * Pass the names exactly as the server stored them (they are trimmed on
 * the way in); `approved_action` in a decision carries them.
 */
export function actionHash(action: string, subject: string, payload?: Record<string, unknown> | null): string {
  return `sha256:${canonicalSha256Hex({ action, payload: payload ?? {}, subject })}`;
}
