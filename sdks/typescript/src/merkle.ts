// RFC 6962 / RFC 9162 Merkle tree hashing and proof checking, ported from
// Go's sumdb `tlog` (through the Rust `tlog_tiles` crate the server uses),
// plus the input bounds the server's verifier applies first. Sizes and
// indices are handled as BigInt so the arithmetic is exact for any log.

import { createHash } from "node:crypto";

/** Strict base64 (standard alphabet, canonical padding), as the server decodes it; null when malformed. */
export function decodeBase64(text: string): Uint8Array | null {
  if (typeof text !== "string" || text.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) {
    return null;
  }
  const bytes = Buffer.from(text, "base64");
  // Re-encoding catches non-zero trailing bits, which a strict decoder refuses.
  if (bytes.toString("base64") !== text) return null;
  return new Uint8Array(bytes);
}

/** A 32-byte hash from base64, or null when it is not exactly that. */
export function decodeHash(text: string): Uint8Array | null {
  const bytes = decodeBase64(text);
  return bytes && bytes.length === 32 ? bytes : null;
}

/** RFC 6962 leaf hash: SHA-256(0x00 ‖ bytes). */
export function leafHash(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(createHash("sha256").update(Uint8Array.of(0)).update(bytes).digest());
}

/** RFC 6962 interior node hash: SHA-256(0x01 ‖ left ‖ right). */
export function nodeHash(left: Uint8Array, right: Uint8Array): Uint8Array {
  return new Uint8Array(createHash("sha256").update(Uint8Array.of(1)).update(left).update(right).digest());
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** The largest power of two strictly below n (n >= 2). */
function maxpow2(n: bigint): bigint {
  let k = 1n;
  while (k * 2n < n) k *= 2n;
  return k;
}

class InvalidProof extends Error {}

function runRecordProof(p: Uint8Array[], lo: bigint, hi: bigint, n: bigint, leaf: Uint8Array): Uint8Array {
  if (lo + 1n === hi) {
    if (p.length !== 0) throw new InvalidProof();
    return leaf;
  }
  if (p.length === 0) throw new InvalidProof();
  const k = maxpow2(hi - lo);
  const last = p[p.length - 1]!;
  const rest = p.slice(0, -1);
  if (n < lo + k) {
    return nodeHash(runRecordProof(rest, lo, lo + k, n, leaf), last);
  }
  return nodeHash(last, runRecordProof(rest, lo + k, hi, n, leaf));
}

function runTreeProof(p: Uint8Array[], lo: bigint, hi: bigint, n: bigint, old: Uint8Array): [Uint8Array, Uint8Array] {
  if (n === hi) {
    if (lo === 0n) {
      if (p.length !== 0) throw new InvalidProof();
      return [old, old];
    }
    if (p.length !== 1) throw new InvalidProof();
    return [p[0]!, p[0]!];
  }
  if (p.length === 0) throw new InvalidProof();
  const k = maxpow2(hi - lo);
  const last = p[p.length - 1]!;
  const rest = p.slice(0, -1);
  if (n <= lo + k) {
    const [oh, th] = runTreeProof(rest, lo, lo + k, n, old);
    return [oh, nodeHash(th, last)];
  }
  const [oh, th] = runTreeProof(rest, lo + k, hi, n, old);
  return [nodeHash(last, oh), nodeHash(last, th)];
}

function big(n: number | bigint): bigint | null {
  if (typeof n === "bigint") return n >= 0n ? n : null;
  return Number.isSafeInteger(n) && n >= 0 ? BigInt(n) : null;
}

function hashes(list: Uint8Array[]): boolean {
  return list.every((h) => h instanceof Uint8Array && h.length === 32);
}

/**
 * Whether `leaf` (a leaf hash) is entry `index` of the tree of `size`
 * leaves whose root is `root`, by the inclusion proof `proof`.
 */
export function verifyInclusion(
  proof: Uint8Array[],
  size: number | bigint,
  root: Uint8Array,
  index: number | bigint,
  leaf: Uint8Array,
): boolean {
  const t = big(size);
  const n = big(index);
  if (t === null || n === null || n >= t) return false;
  // An inclusion proof holds at most one hash per tree level.
  if (proof.length > 64 || !hashes([...proof, root, leaf])) return false;
  try {
    return equal(runRecordProof(proof, 0n, t, n, leaf), root);
  } catch {
    return false;
  }
}

/**
 * Whether the tree (`newSize`, `newRoot`) extends the tree (`oldSize`,
 * `oldRoot`), by the consistency proof `proof`. Like the server, a proof
 * from the empty tree is refused (RFC 9162 calls such a request invalid).
 */
export function verifyConsistency(
  proof: Uint8Array[],
  oldSize: number | bigint,
  oldRoot: Uint8Array,
  newSize: number | bigint,
  newRoot: Uint8Array,
): boolean {
  const m = big(oldSize);
  const t = big(newSize);
  if (m === null || t === null || m > t || !hashes([...proof, oldRoot, newRoot])) return false;
  if (m === t) return proof.length === 0 && equal(oldRoot, newRoot);
  if (m === 0n || proof.length > 128) return false;
  try {
    const [oh, th] = runTreeProof(proof, 0n, t, m, oldRoot);
    return equal(th, newRoot) && equal(oh, oldRoot);
  } catch {
    return false;
  }
}
