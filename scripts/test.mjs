#!/usr/bin/env node
// Runs every *.test.js under dist/test with node's test runner. `npm test -- unit` (or e2e,
// interop, fault) runs one folder. Each suite that needs an outside peer sets it up itself and
// fails loudly when it cannot. Only *.test.js files are run: node would otherwise treat every
// .js file under a "test" folder (fixtures, helpers) as a test file.
import { spawnSync } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const folders = process.argv.slice(2);
const roots = folders.length === 0 ? [join(root, "dist", "test")] : folders.map((f) => join(root, "dist", "test", f));

function testFiles(dir) {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return testFiles(p);
    return name.endsWith(".test.js") ? [p] : [];
  });
}

const files = roots.flatMap(testFiles).sort();
if (files.length === 0) {
  console.error(`no test files under ${roots.join(", ")}`);
  process.exit(1);
}
const r = spawnSync(process.execPath, ["--test", "--test-timeout=120000", ...files], { cwd: root, stdio: "inherit" });
process.exit(r.status ?? 1);
