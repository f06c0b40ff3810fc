// The TypeScript block of the repository README's "Quick start" must stay
// true. This test takes that block from README.md exactly as written,
// type-checks it against the built package, compiles it, and runs it against
// a real `gatehouse serve` that uses the starter policies. The only change
// made to the text is the server URL: the README hard-codes
// http://127.0.0.1:8080 and the test's server listens on a free port. The
// rest of what the snippet leaves to the reader is supplied from outside it:
// AGENT_KEY in the environment, and a global `deploy(sha)` that records its
// calls. While the snippet waits, a reviewer approves the request through
// the HTTP API (once as asked, once with changes).

import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { test } from "node:test";

import { REPO_ROOT, SDK_ROOT, startServer } from "./helpers/server.mjs";

const ts = createRequire(import.meta.url)("typescript");

const README_URL = "http://127.0.0.1:8080";
const SUBJECT = "Deploy main to production";
const ACTION = "deploy_production";

/** The first ```<lang> block inside the README's "## Quick start" section, without its fences. */
function quickStartBlock(lang) {
  const lines = readFileSync(join(REPO_ROOT, "README.md"), "utf8").split("\n");
  const start = lines.indexOf("## Quick start");
  assert.notEqual(start, -1, 'README.md has no "## Quick start" section');
  let end = lines.findIndex((l, i) => i > start && l.startsWith("## "));
  if (end === -1) end = lines.length;
  const open = lines.findIndex((l, i) => i > start && i < end && l.trimEnd() === "```" + lang);
  assert.notEqual(open, -1, `the Quick start section has no \`\`\`${lang} block`);
  const close = lines.findIndex((l, i) => i > open && l.trimEnd() === "```");
  assert.ok(close !== -1 && close < end, `the Quick start's \`\`\`${lang} block is not closed inside the section`);
  return `${lines.slice(open + 1, close).join("\n")}\n`;
}

/**
 * The snippet with the README's URL replaced by `url`, after checking that
 * the URL occurs exactly once and that no other character differs.
 */
function withServerUrl(snippet, url) {
  assert.equal(snippet.split(README_URL).length - 1, 1, `the snippet should name ${README_URL} exactly once`);
  const changed = snippet.replace(README_URL, url);
  const before = snippet.split("\n");
  const after = changed.split("\n");
  assert.equal(after.length, before.length);
  const differing = before.map((l, i) => (l === after[i] ? -1 : i)).filter((i) => i !== -1);
  assert.equal(differing.length, 1, "exactly one line differs");
  const i = differing[0];
  assert.equal(after[i], before[i].replace(README_URL, url), "that line differs only by the URL");
  assert.equal(changed.replace(url, README_URL), snippet, "undoing the substitution gives the README's text back");
  return changed;
}

/**
 * Writes the snippet as quickstart.mts in `dir` (a fresh directory) whose
 * node_modules/@gatehouse/sdk links to this package, so the import resolves
 * as it would for a user; type-checks it with the package's TypeScript (the
 * only declaration added is the reader's `deploy`); and emits
 * quickstart.mjs. Returns the emitted file's path.
 */
function compileSnippet(dir, text) {
  mkdirSync(join(dir, "node_modules", "@gatehouse"), { recursive: true });
  symlinkSync(SDK_ROOT, join(dir, "node_modules", "@gatehouse", "sdk"), "dir");
  const source = join(dir, "quickstart.mts");
  writeFileSync(source, text);
  assert.equal(readFileSync(source, "utf8"), text);
  // The reader's own function, declared beside the snippet rather than in it.
  const declarations = join(dir, "deploy.d.ts");
  writeFileSync(declarations, "declare function deploy(sha: string): Promise<void>;\n");
  const program = ts.createProgram([source, declarations], {
    target: ts.ScriptTarget.ES2022,
    lib: ["lib.es2022.d.ts"],
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    types: ["node"],
    typeRoots: [join(SDK_ROOT, "node_modules", "@types")],
    strict: true,
    skipLibCheck: true,
  });
  const diagnostics = ts.getPreEmitDiagnostics(program);
  const messages = diagnostics.map((d) => ts.flattenDiagnosticMessageText(d.messageText, "\n"));
  assert.deepEqual(messages, [], "the README's TypeScript block type-checks against the package");
  const emitted = program.emit();
  assert.equal(emitted.emitSkipped, false);
  return join(dir, "quickstart.mjs");
}

/** One HTTP call to the server with a key; returns the status and the parsed body. */
async function api(server, key, method, path, body) {
  const res = await fetch(`${server.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body ? { "content-type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

async function ok(server, key, method, path, body) {
  const res = await api(server, key, method, path, body);
  assert.equal(res.status, 200, `${method} ${path}: ${JSON.stringify(res.body)}`);
  return res.body;
}

/** Polls the reviewer's pending list until the snippet's request is there, or the snippet has ended. */
async function pendingRequest(server, reviewerKey, snippetEnded) {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline && !snippetEnded()) {
    const page = await ok(server, reviewerKey, "GET", "/api/decisions?status=pending_review");
    if (page.items.length > 0) {
      assert.equal(page.items.length, 1, "the snippet asked once");
      return page.items[0];
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return undefined;
}

/** The log entries of a decision's Decision Packet, decoded from their leaf bytes. */
function chainEntries(packet) {
  return packet.audit_chain.entries.map((e) => JSON.parse(Buffer.from(e.leaf, "base64").toString("utf8")));
}

/**
 * Runs the README's TypeScript block against a fresh server; the reviewer
 * approves with `review` once the request is pending. Returns what the test
 * asserts on.
 */
async function runQuickStart(review) {
  const snippet = quickStartBlock("ts");
  assert.match(snippet, /gate\.guard\(/);
  const server = await startServer({ keys: { "ci-deployer": "agent", rita: "reviewer" } });
  const dir = mkdtempSync(join(tmpdir(), "gatehouse-readme-ts-"));
  const deployCalls = [];
  let reviewSent = false;
  const savedKey = process.env.AGENT_KEY;
  try {
    const compiled = compileSnippet(dir, withServerUrl(snippet, server.url));
    process.env.AGENT_KEY = server.keys["ci-deployer"];
    globalThis.deploy = async (sha) => {
      deployCalls.push({ sha, afterReview: reviewSent });
    };
    let ended = false;
    // Importing the compiled module runs it; its top-level await resolves
    // the import once guard has finished.
    const run = import(pathToFileURL(compiled).href).then(
      () => ({ error: undefined }),
      (error) => ({ error }),
    ).finally(() => (ended = true));
    const pending = await pendingRequest(server, server.keys.rita, () => ended);
    if (pending === undefined) {
      const { error } = await run;
      assert.fail(`the snippet ended before its request was pending: ${error ?? "without an error"}`);
    }
    assert.equal(pending.status, "pending_review", "the starter policies send a high-risk deploy to review");
    assert.equal(pending.tool_name, ACTION);
    assert.equal(pending.subject, SUBJECT);
    assert.deepEqual(pending.payload, { sha: "abc123" });
    assert.equal(deployCalls.length, 0, "nothing is deployed while the request waits for review");
    reviewSent = true;
    const reviewed = await ok(server, server.keys.rita, "POST", `/api/gate/requests/${pending.id}/review`, review);
    assert.equal(reviewed.status, "approved");
    const { error } = await run;
    assert.equal(error, undefined, `the snippet threw: ${error?.stack ?? error}`);
    return { server, id: pending.id, deployCalls };
  } catch (e) {
    await server.stop();
    throw e;
  } finally {
    process.env.AGENT_KEY = savedKey;
    if (savedKey === undefined) delete process.env.AGENT_KEY;
    delete globalThis.deploy;
    rmSync(dir, { recursive: true, force: true });
  }
}

/** What the server recorded after the snippet ran: approved, redeemed once, one receipt, one succeeded outcome. */
async function assertRecorded(server, id, sha, amended) {
  const key = server.keys.rita;
  const all = await ok(server, key, "GET", "/api/decisions");
  assert.deepEqual(all.items.map((d) => d.id), [id], "the snippet made exactly one request");

  const record = await ok(server, key, "GET", `/api/decision/${id}`);
  assert.equal(record.status, "approved");
  assert.equal(record.approved_action.tool_name, ACTION);
  assert.equal(record.approved_action.subject, SUBJECT);
  assert.deepEqual(record.approved_action.payload, { sha });
  assert.equal(record.approved_action.amended, amended);

  const packet = await ok(server, key, "GET", `/api/decision/${id}/packet`);
  assert.ok(packet.token, "an approval token was issued");
  assert.equal(packet.token.claims.act, record.approved_action.action_hash, "the token binds the approved action");
  const jti = packet.token.claims.jti;
  const redemptions = chainEntries(packet).filter((e) => e.type === "token_redeemed");
  assert.deepEqual(redemptions.map((e) => e.jti), [jti], "the approval token was redeemed, once");

  const seen = await ok(server, key, "GET", `/api/decision/${id}/executions`);
  assert.equal(seen.executions.length, 1, "one execution receipt");
  const receipt = seen.executions[0].receipt;
  assert.equal(receipt.decision_id, id);
  assert.equal(receipt.token_jti, jti, "the receipt names the redeemed token");
  assert.equal(receipt.action_hash, record.approved_action.action_hash, "the receipt binds the approved action");
  assert.deepEqual(seen.outcomes.map((o) => o.outcome.status), ["succeeded"]);
}

test("README quick start (TypeScript): approved as asked, deploy runs once with abc123", { timeout: 90_000 }, async () => {
  const { server, id, deployCalls } = await runQuickStart({ decision: "approve", comment: "window open" });
  try {
    assert.deepEqual(deployCalls, [{ sha: "abc123", afterReview: true }]);
    await assertRecorded(server, id, "abc123", false);
  } finally {
    await server.stop();
  }
});

test("README quick start (TypeScript): approved with changes, deploy runs once with def456", { timeout: 90_000 }, async () => {
  const { server, id, deployCalls } = await runQuickStart({
    decision: "approve",
    comment: "deploy the hotfix instead",
    amended_payload: { sha: "def456" },
  });
  try {
    assert.deepEqual(deployCalls, [{ sha: "def456", afterReview: true }]);
    await assertRecorded(server, id, "def456", true);
  } finally {
    await server.stop();
  }
});
