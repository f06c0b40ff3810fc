// The CommonJS build, loaded with require() through the package's own
// "exports" (a self-reference to @gatehouse/sdk), against a real server:
// a guarded action, an offline token check (jose is ESM-only and is loaded
// with a dynamic import from this build) and a packet check.

const assert = require("node:assert/strict");
const { after, before, test } = require("node:test");

const sdk = require("@gatehouse/sdk");

let server;
before(async () => {
  const { startServer, TEST_POLICIES } = await import("./helpers/server.mjs");
  server = await startServer({ policies: TEST_POLICIES });
});
after(() => server?.stop());

test("require('@gatehouse/sdk') is the CommonJS build, and import() the ES module build", async () => {
  assert.match(require.resolve("@gatehouse/sdk"), /dist[\\/]cjs[\\/]index\.js$/);
  const esm = await import("@gatehouse/sdk");
  assert.notEqual(esm.Gatehouse, sdk.Gatehouse);
  assert.deepEqual(Object.keys(esm).sort(), Object.keys(sdk).sort());
});

test("the CommonJS build guards, verifies tokens and verifies packets", async () => {
  const gate = new sdk.Gatehouse({ url: server.url, apiKey: server.keys.agent });
  let decision;
  const result = await gate.guard(
    { agent: "cjs", action: "issue_refund", risk: "low", subject: "cus_cjs", args: { amount: 100, currency: "usd" } },
    async (args) => args.amount * 2,
    { onDecision: (d) => (decision = d) },
  );
  assert.equal(result, 200);
  const jwks = await gate.jwks();
  const claims = await sdk.verifyToken(decision.approval_token, decision.approved_action, { jwks });
  assert.equal(claims.sub, decision.id);
  await assert.rejects(
    sdk.verifyToken(decision.approval_token, { ...decision.approved_action, payload: { amount: 1 } }, { jwks }),
    (e) => e instanceof sdk.TokenVerificationError && e.check === "action",
  );
  const report = sdk.verifyPacket(await gate.packet(decision.id), { logKey: await gate.logKey() });
  assert.equal(report.verified, true, JSON.stringify(report.checks));
  await assert.rejects(
    gate.guard({ agent: "cjs", action: "issue_refund", risk: "low", subject: "cus_cjs", args: { amount: 0, currency: "usd" } }, async () => assert.fail("ran")),
    (e) => e instanceof sdk.GateRejected && e instanceof sdk.GateError,
  );
});
