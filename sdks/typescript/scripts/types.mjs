// Generates the request and response types from the committed OpenAPI
// document with openapi-typescript (`write`), or checks that the committed
// file is exactly what the generator makes from the document now (`check`),
// so the SDK's types cannot drift from the server's contract. The check
// regenerates into a temporary file and compares bytes; it exits non-zero
// on any difference.
//
// The generator runs through its Node API, as its CLI does, with two
// deterministic adjustments the document needs today:
// - Operation ids must be unique (OpenAPI 3.1 §4.8.10), but the document
//   repeats `list` and `review`; a repeated id is given its method and path
//   here so the generated `operations` interface has no duplicate members.
//   When the server makes them unique this step changes nothing.
// - `JsonValue` is recursive through an array; an indexed access type
//   cannot refer to itself that way in TypeScript, so it is generated as a
//   reference to a recursive type alias with the same meaning.
import { mkdtempSync, readFileSync, rmSync, existsSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import openapiTS, { astToString, COMMENT_HEADER } from "openapi-typescript";
import ts from "typescript";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
// The document is referenced by its path relative to this package.
const spec = "../../openapi/gatehouse.json";
const committed = join(root, "src", "generated", "openapi.ts");

const JSON_VALUE = "#/components/schemas/JsonValue";
const JSON_VALUE_ALIAS =
  "/** Any JSON value (the document's recursive `JsonValue`). */\n" +
  "export type JsonValue = string | number | boolean | null | JsonValue[] | {\n" +
  "    [key: string]: JsonValue;\n" +
  "};";

function uniqueOperationIds(doc) {
  const seen = new Map();
  const ops = [];
  for (const [path, item] of Object.entries(doc.paths ?? {})) {
    for (const method of ["get", "put", "post", "delete", "options", "head", "patch", "trace"]) {
      const op = item?.[method];
      if (op?.operationId) {
        ops.push({ op, method, path });
        seen.set(op.operationId, (seen.get(op.operationId) ?? 0) + 1);
      }
    }
  }
  for (const { op, method, path } of ops) {
    if (seen.get(op.operationId) > 1) {
      const slug = path.replace(/[{}]/g, "").split("/").filter(Boolean).join("_");
      op.operationId = `${op.operationId}__${method}_${slug}`;
    }
  }
  return doc;
}

async function generate() {
  const file = join(root, spec);
  if (!existsSync(file)) throw new Error(`the OpenAPI document ${spec} does not exist (looked from ${root})`);
  const doc = uniqueOperationIds(JSON.parse(readFileSync(file, "utf8")));
  const ast = await openapiTS(doc, {
    inject: JSON_VALUE_ALIAS,
    transform(_schema, options) {
      if (options.path === JSON_VALUE) return ts.factory.createTypeReferenceNode("JsonValue");
      return undefined;
    },
  });
  return `${COMMENT_HEADER}${astToString(ast)}`;
}

const mode = process.argv[2];
if (mode === "write") {
  writeFileSync(committed, await generate());
  console.log(`wrote ${relative(root, committed)} from ${spec}`);
} else if (mode === "check") {
  const dir = mkdtempSync(join(tmpdir(), "gatehouse-sdk-types-"));
  try {
    const fresh = join(dir, "openapi.ts");
    writeFileSync(fresh, await generate());
    const want = readFileSync(fresh, "utf8");
    const have = existsSync(committed) ? readFileSync(committed, "utf8") : "";
    if (want !== have) {
      const a = have.split("\n");
      const b = want.split("\n");
      let line = 0;
      while (line < Math.max(a.length, b.length) && a[line] === b[line]) line++;
      console.error(
        `${relative(root, committed)} is out of date with ${spec} (first difference at line ${line + 1}).\n` +
          `  committed: ${JSON.stringify(a[line] ?? "<end of file>")}\n` +
          `  generated: ${JSON.stringify(b[line] ?? "<end of file>")}\n` +
          "Run `npm run generate:types` and commit the result.",
      );
      // exitCode rather than exit(): the finally below still removes the
      // temporary directory.
      process.exitCode = 1;
    } else {
      console.log(`${relative(root, committed)} is current with ${spec}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
} else {
  console.error("usage: node scripts/types.mjs write|check");
  process.exit(2);
}
