// Starts real `gatehouse serve` processes for the tests: each in a fresh
// temporary data directory, on a free port of 127.0.0.1, with its keys
// created through the CLI first. The binary is GATEHOUSE_BIN (absolute
// path), or <repo>/target/debug/gatehouse when it is unset.

import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { REPO_ROOT } from "./paths.mjs";

export { REPO_ROOT, SDK_ROOT, TEST_POLICIES } from "./paths.mjs";
export const BIN = process.env.GATEHOUSE_BIN || join(REPO_ROOT, "target", "debug", "gatehouse");

if (!existsSync(BIN)) {
  throw new Error(`gatehouse binary not found at ${BIN}: build it or set GATEHOUSE_BIN to its absolute path`);
}

/** The environment for the binary: ours without any GATEHOUSE_* setting that could change the server. */
function cleanEnv(extra = {}) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("GATEHOUSE_")) env[k] = v;
  return { ...env, GATEHOUSE_LOG: "warn", ...extra };
}

/** Runs the CLI and returns its stdout; throws with its stderr when it fails. */
export function cli(args, { env = {}, allowFailure = false } = {}) {
  try {
    return execFileSync(BIN, args, { env: cleanEnv(env), encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  } catch (e) {
    if (allowFailure) return { status: e.status, stdout: e.stdout, stderr: e.stderr };
    throw new Error(`gatehouse ${args.join(" ")} failed (${e.status}): ${e.stderr}`);
  }
}

/** Creates a key with the CLI in `data`; returns its secret (the last line of output). */
export function createKey(data, role, name) {
  const out = cli(["keys", "create", "--role", role, "--name", name, "--data", data]).trim().split("\n");
  return out[out.length - 1].trim();
}

const running = new Set();

/** Creates a reviewer (a person in `groups`) and a reviewer key of theirs; returns the key's secret. */
function createReviewer(data, name, groups) {
  const groupArgs = groups.flatMap((g) => ["--group", g]);
  execFileSync(BIN, ["users", "create", name, ...groupArgs, "--password-stdin", "--data", data], {
    env: cleanEnv(),
    input: `correct horse battery staple ${name}\n`,
    stdio: ["pipe", "ignore", "pipe"],
  });
  const out = cli(["keys", "create", "--role", "reviewer", "--user", name, "--data", data]).trim().split("\n");
  return out[out.length - 1].trim();
}

/**
 * Starts a server. `keys` maps a name to a role and `people` a reviewer's
 * name to their groups; each key (and person, with a reviewer key of
 * theirs) is created before the server starts. Resolves with
 * { url, keys, data, stop, kill }.
 */
export async function startServer({ keys = { agent: "agent", reviewer: "reviewer" }, people = {}, args = [], policies } = {}) {
  const data = mkdtempSync(join(tmpdir(), "gatehouse-sdk-test-"));
  const secrets = {};
  for (const [name, role] of Object.entries(keys)) secrets[name] = createKey(data, role, name);
  for (const [name, groups] of Object.entries(people)) secrets[name] = createReviewer(data, name, groups);
  const argv = ["serve", "--listen", "127.0.0.1:0", "--data", data];
  if (!args.includes("--rate-limit")) argv.push("--rate-limit", "0");
  if (policies) argv.push("--policies", policies);
  argv.push(...args);
  const proc = spawn(BIN, argv, { env: cleanEnv(), stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  proc.stderr.on("data", (d) => {
    stderr += d;
    if (stderr.length > 100_000) stderr = stderr.slice(-50_000);
  });
  const url = await new Promise((resolveUrl, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`gatehouse serve did not start within 30 s:\n${stderr}`)), 30_000);
    proc.stdout.on("data", (d) => {
      out += d;
      const m = /gatehouse listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolveUrl(m[1]);
      }
    });
    proc.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`gatehouse serve exited (${code}) before listening:\n${stderr}`));
    });
  });
  const server = {
    url,
    keys: secrets,
    data,
    proc,
    get stderr() {
      return stderr;
    },
    /** Stops the server (SIGTERM, then SIGKILL after 10 s) and removes its data. */
    async stop() {
      running.delete(server);
      if (proc.exitCode === null && proc.signalCode === null) {
        const exited = new Promise((r) => proc.once("exit", r));
        proc.kill("SIGTERM");
        const timer = setTimeout(() => proc.kill("SIGKILL"), 10_000);
        await exited;
        clearTimeout(timer);
      }
      rmSync(data, { recursive: true, force: true });
    },
    /** Kills the process at once and waits for it to be gone (the data stays until stop). */
    async kill() {
      if (proc.exitCode === null && proc.signalCode === null) {
        const exited = new Promise((r) => proc.once("exit", r));
        proc.kill("SIGKILL");
        await exited;
      }
    },
  };
  running.add(server);
  return server;
}

const tempDirs = new Set();

// A test that fails before its own clean-up must not leave servers (or
// temporary files) behind.
process.on("exit", () => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  for (const s of running) {
    try {
      s.proc.kill("SIGKILL");
      rmSync(s.data, { recursive: true, force: true });
    } catch {
      // Best effort while the test process exits.
    }
  }
});

/** Writes `text` to a temporary file and returns its path. */
export function tempFile(name, text) {
  const dir = mkdtempSync(join(tmpdir(), "gatehouse-sdk-file-"));
  tempDirs.add(dir);
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

/** A port on 127.0.0.1 where nothing listens (bound, then released). */
export async function closedPort() {
  const net = await import("node:net");
  return new Promise((resolvePort, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolvePort(port));
    });
  });
}
