// Where things are, for tests that need no server.
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
export const SDK_ROOT = resolve(here, "..", "..");
export const REPO_ROOT = resolve(SDK_ROOT, "..", "..");
export const TEST_POLICIES = resolve(here, "..", "policies");
