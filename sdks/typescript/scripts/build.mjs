// Builds the two module formats from one source: CommonJS (tsconfig.json,
// NodeNext, so `import("jose")` stays a real dynamic import that loads the
// ESM-only jose on every Node 20) and ES modules (tsconfig.esm.json). Each
// output folder gets a package.json naming its format, so Node reads the
// .js files right whatever the root package.json says.
import { execFileSync } from "node:child_process";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");

rmSync(join(root, "dist"), { recursive: true, force: true });
for (const [config, dir, type] of [
  ["tsconfig.json", "cjs", "commonjs"],
  ["tsconfig.esm.json", "esm", "module"],
]) {
  execFileSync(process.execPath, [tsc, "-p", config], { cwd: root, stdio: "inherit" });
  mkdirSync(join(root, "dist", dir), { recursive: true });
  writeFileSync(join(root, "dist", dir, "package.json"), `${JSON.stringify({ type }, null, 2)}\n`);
}
console.log("built dist/cjs and dist/esm");
