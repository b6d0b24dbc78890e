#!/usr/bin/env node
// Runs every test under dist/test with node's test runner. `npm test -- unit` (or e2e, interop)
// runs one folder. Each suite that needs an outside peer sets it up itself and fails loudly
// when it cannot.
import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const folders = process.argv.slice(2);
const targets = folders.length === 0 ? [join(root, "dist", "test")] : folders.map((f) => join(root, "dist", "test", f));
const r = spawnSync(process.execPath, ["--test", "--test-timeout=120000", ...targets], { cwd: root, stdio: "inherit" });
process.exit(r.status ?? 1);
