// verifyToken on approval tokens issued by a real server: a good token
// passes; a tampered one, another action, another audience, a time
// outside its window, an unknown key, another type and garbage each fail
// the check that names them, with the words `gatehouse token verify` uses
// (compared with the CLI itself).

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { Gatehouse, TokenVerificationError, verifyToken } from "../dist/esm/index.js";
import { cli, startServer, tempFile, TEST_POLICIES } from "./helpers/server.mjs";

let server;
let gate;
let reviewer;
let jwks;
let decision;

before(async () => {
  server = await startServer({ policies: TEST_POLICIES });
  gate = new Gatehouse({ url: server.url, apiKey: server.keys.agent });
  reviewer = new Gatehouse({ url: server.url, apiKey: server.keys.reviewer });
  jwks = await gate.jwks();
  decision = await gate.request({ agent: "billing", action: "issue_refund", risk: "low", subject: "cus_1", context: { amount: 500, currency: "usd" } });
  assert.equal(decision.status, "allow");
});
after(() => server?.stop());

const action = () => ({ tool_name: "issue_refund", subject: "cus_1", payload: { currency: "usd", amount: 500 } });

/** Runs `gatehouse token verify` on the same input: its exit code and its FAIL line, if any. */
function cliVerify(token, act, keys = jwks, audience) {
  const args = ["token", "verify", token, "--action", tempFile("action.json", JSON.stringify(act)), "--jwks", tempFile("jwks.json", JSON.stringify(keys))];
  if (audience) args.push("--audience", audience);
  const r = cli(args, { allowFailure: true });
  if (typeof r === "string") return { status: 0, fail: undefined };
  const line = String(r.stdout).split("\n").find((l) => l.startsWith("FAIL  "));
  return { status: r.status, fail: line?.slice(6) };
}

/** Expects verifyToken to fail `check`, with the CLI failing the same way (same words). */
async function fails(check, token, act, options, cliArgs) {
  let message;
  await assert.rejects(verifyToken(token, act, options), (e) => {
    assert.ok(e instanceof TokenVerificationError, String(e));
    assert.equal(e.check, check, e.message);
    message = e.message;
    return true;
  });
  if (cliArgs) {
    const r = cliVerify(...cliArgs);
    assert.equal(r.status, 1);
    assert.equal(message, r.fail);
  }
  return message;
}

function b64url(obj) {
  return Buffer.from(JSON.stringify(obj)).toString("base64url");
}

describe("verifyToken", () => {
  test("a token the server issued verifies offline for exactly its action, as the CLI says", async () => {
    const claims = await verifyToken(decision.approval_token, action(), { jwks });
    assert.equal(claims.sub, decision.id);
    assert.equal(claims.act, decision.approved_action.action_hash);
    assert.equal(claims.dec, decision.receipt_hash);
    assert.equal(claims.aud, "gatehouse-executor");
    assert.ok(claims.exp > claims.nbf);
    // The same action by its other names, and by its hash.
    await verifyToken(decision.approval_token, { action: "issue_refund", subject: "cus_1", payload: { amount: 500, currency: "usd" } }, { jwks });
    await verifyToken(decision.approval_token, decision.approved_action.action_hash, { jwks });
    assert.equal(cliVerify(decision.approval_token, action()).status, 0);
  });

  test("another action: payload, subject or tool", async () => {
    const token = decision.approval_token;
    const msg = await fails("action", token, { ...action(), payload: { amount: 501, currency: "usd" } }, { jwks }, [token, { ...action(), payload: { amount: 501, currency: "usd" } }]);
    assert.match(msg, /^the action differs from the approved one \(approved sha256:[0-9a-f]{64}, presented sha256:[0-9a-f]{64}\)$/);
    await fails("action", token, { ...action(), subject: "cus_2" }, { jwks }, [token, { ...action(), subject: "cus_2" }]);
    await fails("action", token, { ...action(), tool_name: "issue_credit" }, { jwks });
    await fails("action", token, { ...action(), payload: null }, { jwks });
  });

  test("a tampered token fails its signature", async () => {
    const [h, p, s] = decision.approval_token.split(".");
    const claims = JSON.parse(Buffer.from(p, "base64url").toString());
    const forged = `${h}.${b64url({ ...claims, act: "sha256:" + "0".repeat(64) })}.${s}`;
    await fails("signature", forged, "sha256:" + "0".repeat(64), { jwks }, [forged, action()]);
    const sig = Buffer.from(s, "base64url");
    sig[10] ^= 1;
    const flipped = `${h}.${p}.${sig.toString("base64url")}`;
    await fails("signature", flipped, action(), { jwks }, [flipped, action()]);
  });

  test("the audience, and the time window", async () => {
    const token = decision.approval_token;
    await fails("audience", token, action(), { jwks, audience: "billing-executor" }, [token, action(), jwks, "billing-executor"]);
    const claims = await verifyToken(token, action(), { jwks });
    assert.equal(
      await fails("expiry", token, action(), { jwks, now: claims.exp }),
      `the token expired at ${claims.exp}`,
    );
    await fails("expiry", token, action(), { jwks, now: new Date((claims.exp + 60) * 1000) });
    assert.equal(await fails("not_before", token, action(), { jwks, now: claims.nbf - 1 }), `the token is not valid before ${claims.nbf}`);
    await verifyToken(token, action(), { jwks, now: claims.exp - 1 });
  });

  test("a key the JWKS does not list, another token type, and garbage", async () => {
    const other = await startServer({ policies: TEST_POLICIES });
    try {
      const theirs = await new Gatehouse({ url: other.url, apiKey: other.keys.agent }).jwks();
      const token = decision.approval_token;
      await fails("key", token, action(), { jwks: theirs }, [token, action(), theirs]);
      await fails("key", token, action(), { jwks: { keys: [] } });
    } finally {
      await other.stop();
    }
    const { SignJWT, exportJWK, generateKeyPair } = await import("jose");
    const { privateKey, publicKey } = await generateKeyPair("EdDSA", { crv: "Ed25519", extractable: true });
    const jwk = { ...(await exportJWK(publicKey)), kid: "local-key", alg: "EdDSA" };
    const now = Math.floor(Date.now() / 1000);
    const body = { sub: "dec_x", act: decision.approved_action.action_hash, dec: "00", aud: "gatehouse-executor", jti: "tok_x", iat: now, nbf: now, exp: now + 60 };
    const plainJwt = await new SignJWT(body).setProtectedHeader({ alg: "EdDSA", typ: "JWT", kid: "local-key" }).sign(privateKey);
    await fails("type", plainJwt, action(), { jwks: { keys: [jwk] } }, [plainJwt, action(), { keys: [jwk] }]);
    // The same claims with the right type verify with whatever key the caller trusts...
    const approval = await new SignJWT(body).setProtectedHeader({ alg: "EdDSA", typ: "gate-approval+jwt", kid: "local-key" }).sign(privateKey);
    assert.equal((await verifyToken(approval, action(), { jwks: { keys: [jwk] } })).sub, "dec_x");
    // ...but claims of the wrong types are not an approval token.
    const odd = await new SignJWT({ ...body, aud: ["gatehouse-executor"] })
      .setProtectedHeader({ alg: "EdDSA", typ: "gate-approval+jwt", kid: "local-key" })
      .sign(privateKey);
    await fails("format", odd, action(), { jwks: { keys: [jwk] } }, [odd, action(), { keys: [jwk] }]);
    await fails("format", "not.a.jwt", action(), { jwks }, ["not.a.jwt", action()]);
    await fails("format", "garbage", action(), { jwks });
  });

  test("an amended approval's token binds the amendment, not the proposal", async () => {
    const d = await gate.request({ agent: "billing", action: "issue_refund", risk: "high", subject: "cus_3", context: { amount: 50_000, currency: "usd" } });
    await reviewer.review(d.id, { decision: "approve", amendedPayload: { amount: 10_000, currency: "usd" } });
    const view = await gate.get(d.id);
    const amended = { tool_name: "issue_refund", subject: "cus_3", payload: { amount: 10_000, currency: "usd" } };
    await verifyToken(view.approval_token, amended, { jwks });
    await fails("action", view.approval_token, { ...amended, payload: { amount: 50_000, currency: "usd" } }, { jwks });
  });

  test("a Decide API token binds requested_action, source_record_id and the guardrail fields", async () => {
    const r = await gate.decide({
      question: "Refund?",
      context: { workflow: "billing", requested_action: "issue_refund", source_record_id: "inv_1", risk: "low", amount: 300, currency: "usd" },
    });
    assert.equal(r.verdict, "yes");
    await verifyToken(r.approval_token, { tool_name: "issue_refund", subject: "inv_1", payload: { amount: 300, currency: "usd" } }, { jwks });
  });

  test("bad arguments are a TypeError, not a verdict", async () => {
    await assert.rejects(verifyToken(decision.approval_token, { subject: "x" }, { jwks }), TypeError);
    await assert.rejects(verifyToken(decision.approval_token, "sha256:nothex", { jwks }), TypeError);
    await assert.rejects(verifyToken(decision.approval_token, action(), {}), TypeError);
    await assert.rejects(verifyToken(decision.approval_token, { ...action(), payload: [1] }, { jwks }), TypeError);
  });
});
