// Signed checkpoints: a C2SP tlog-checkpoint body inside a C2SP signed note,
// signed with Ed25519. This is a port of what the server's verifier does
// (the Rust `signed_note` and `tlog_tiles` crates, themselves ports of Go's
// golang.org/x/mod/sumdb/note): the same parsing limits, the same refusals,
// and the same messages, so an auditor sees the CLI's words.

import { createHash, createPublicKey, verify as edVerify } from "node:crypto";

import { decodeBase64, decodeHash } from "./merkle.js";

const MAX_NOTE_SIZE = 1_000_000;
const MAX_NOTE_SIGNATURES = 100;
const ALG_ED25519 = 1;

/** What a checkpoint signed by the trusted key commits the log to. */
export interface VerifiedCheckpoint {
  origin: string;
  size: number;
  root: Uint8Array;
}

/** Why a checkpoint was refused; `message` is the server's wording. */
export class CheckpointError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CheckpointError";
  }
}

function keyNameValid(name: string): boolean {
  return name.length > 0 && !/\s/u.test(name) && !name.includes("+");
}

function keyId(name: string, key: Uint8Array): number {
  const digest = createHash("sha256").update(name, "utf8").update("\n").update(key).digest();
  return digest.readUInt32BE(0);
}

interface Verifier {
  name: string;
  id: number;
  key: ReturnType<typeof createPublicKey>;
}

/** Parses a signed-note verifier key, `name+id+base64(0x01 ‖ public key)`. */
function parseVerifierKey(vkey: string): Verifier {
  const malformed = () => new CheckpointError("the verifier key is malformed: malformed verifier key");
  const plus = vkey.indexOf("+");
  if (plus < 0) throw malformed();
  const name = vkey.slice(0, plus);
  const rest = vkey.slice(plus + 1);
  const plus2 = rest.indexOf("+");
  if (plus2 < 0) throw malformed();
  const id16 = rest.slice(0, plus2);
  const key = decodeBase64(rest.slice(plus2 + 1));
  if (!/^[0-9a-fA-F]{8}$/.test(id16) || key === null || !keyNameValid(name) || key.length === 0) {
    throw malformed();
  }
  const id = parseInt(id16, 16);
  if (id !== keyId(name, key)) {
    throw new CheckpointError("the verifier key is malformed: invalid verifier ID");
  }
  if (key[0] !== ALG_ED25519) {
    throw new CheckpointError("the verifier key is malformed: unknown verifier algorithm");
  }
  const raw = key.subarray(1);
  if (raw.length !== 32) throw malformed();
  let publicKey;
  try {
    publicKey = createPublicKey({
      key: { kty: "OKP", crv: "Ed25519", x: Buffer.from(raw).toString("base64url") },
      format: "jwk",
    });
  } catch {
    throw malformed();
  }
  return { name, id, key: publicKey };
}

interface NoteSignature {
  name: string;
  id: number;
  sig: Uint8Array;
}

const MALFORMED = "the checkpoint is not a well-formed signed note";

function noControlCharacters(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 && c !== 0x0a) return false;
  }
  return true;
}

/** Splits a signed note into its text and signatures, or throws. */
function parseNote(msg: string): { text: string; sigs: NoteSignature[] } {
  if (Buffer.byteLength(msg, "utf8") > MAX_NOTE_SIZE || !noControlCharacters(msg)) {
    throw new CheckpointError(MALFORMED);
  }
  const split = msg.lastIndexOf("\n\n");
  if (split < 0) throw new CheckpointError(MALFORMED);
  const text = `${msg.slice(0, split)}\n`;
  const block = msg.slice(split + 2);
  if (!block.endsWith("\n")) throw new CheckpointError(MALFORMED);
  const sigs: NoteSignature[] = [];
  for (const line of block.slice(0, -1).split("\n")) {
    if (!line.startsWith("\u2014 ")) throw new CheckpointError(MALFORMED);
    const body = line.slice(2);
    const space = body.indexOf(" ");
    if (space < 0) throw new CheckpointError(MALFORMED);
    const name = body.slice(0, space);
    const b64 = body.slice(space + 1);
    const raw = decodeBase64(b64);
    if (raw === null || b64.length === 0 || raw.length < 5 || !keyNameValid(name)) {
      throw new CheckpointError(MALFORMED);
    }
    sigs.push({ name, id: Buffer.from(raw).readUInt32BE(0), sig: raw.subarray(4) });
    if (sigs.length > MAX_NOTE_SIGNATURES) throw new CheckpointError(MALFORMED);
  }
  if (Buffer.byteLength(text, "utf8") > MAX_NOTE_SIZE) throw new CheckpointError(MALFORMED);
  return { text, sigs };
}

/**
 * Parses a checkpoint body strictly: origin, decimal size and base64 root
 * hash on their own lines, then optional non-empty extension lines, and
 * nothing else.
 */
function parseCheckpointBody(text: string): VerifiedCheckpoint {
  if (!text.endsWith("\n")) throw new CheckpointError(MALFORMED);
  const lines = text.slice(0, -1).split("\n");
  if (lines.length < 3) throw new CheckpointError(MALFORMED);
  const [origin, sizeText, rootText, ...extensions] = lines as [string, string, string, ...string[]];
  if (extensions.some((l) => l.length === 0)) throw new CheckpointError(MALFORMED);
  if (origin.length === 0 || !/^(0|[1-9][0-9]*)$/.test(sizeText)) throw new CheckpointError(MALFORMED);
  const size = Number(sizeText);
  if (!Number.isSafeInteger(size)) throw new CheckpointError(MALFORMED);
  const root = decodeHash(rootText);
  if (root === null) throw new CheckpointError(MALFORMED);
  return { origin, size, root };
}

/**
 * Checks that a signed note carries a valid signature by `verifierKey`
 * (signed-note verifier format, `name+id+base64`) and returns its text.
 * Signatures by other keys are ignored; throws a `CheckpointError` when
 * the note is malformed or no signature by the key verifies.
 */
export function verifyNote(note: string, verifierKey: string): string {
  const verifier = parseVerifierKey(verifierKey.trim());
  const { text, sigs } = parseNote(note);
  let verified = 0;
  const seen = new Set<string>();
  for (const s of sigs) {
    if (s.name !== verifier.name || s.id !== verifier.id) continue;
    if (seen.has(`${s.name}+${s.id}`)) continue;
    seen.add(`${s.name}+${s.id}`);
    let ok = false;
    try {
      ok = s.sig.length === 64 && edVerify(null, Buffer.from(text, "utf8"), verifier.key, s.sig);
    } catch {
      ok = false;
    }
    if (!ok) throw new CheckpointError("the checkpoint is not signed by the given key");
    verified++;
  }
  if (verified === 0) throw new CheckpointError("the checkpoint is not signed by the given key");
  return text;
}

/**
 * Checks a signed checkpoint against a verifier key the caller trusts
 * (`gatehouse log key`, `GET /api/log/key`, obtained out of band), and that
 * the checkpoint's origin is that key's name. Throws a `CheckpointError`
 * naming what failed.
 */
export function verifyCheckpoint(note: string, verifierKey: string): VerifiedCheckpoint {
  const name = parseVerifierKey(verifierKey.trim()).name;
  const body = parseCheckpointBody(verifyNote(note, verifierKey));
  if (body.origin !== name) {
    throw new CheckpointError(
      `the checkpoint's origin ${JSON.stringify(body.origin)} is not the key's name ${JSON.stringify(name)}`,
    );
  }
  return body;
}
