#!/usr/bin/env node
// Runs every *.test.js under dist/test with node's test runner, once per supported Node.js
// version (20, 22 and 24; binaries from the npm registry's `node` package, see
// node-versions.mjs). `npm test -- unit` (or e2e, interop, fault) runs one folder;
// RILL_NODE_VERSIONS=22 (or "20,24", or "current") picks the versions. Each suite that needs an
// outside peer sets it up itself and fails loudly when it cannot. Only *.test.js files are run:
// node would otherwise treat every .js file under a "test" folder (fixtures, helpers) as a test.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { nodeBinary, requestedMajors } from "./node-versions.mjs";

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

const majors = requestedMajors();
const scratch = mkdtempSync(join(tmpdir(), "rill-test-"));
const results = [];
for (const major of majors) {
  const t0 = Date.now();
  let bin;
  try {
    bin = nodeBinary(major);
  } catch (e) {
    console.error(`[test] Node ${major}: cannot get a binary: ${e.message}`);
    results.push({ major, version: `${major}.x`, pass: 0, fail: 1, status: 1, seconds: 0 });
    continue;
  }
  const version = spawnSync(bin, ["--version"], { encoding: "utf8" }).stdout.trim();
  console.log(`\n[test] ===== ${files.length} test files on Node ${version} =====\n`);
  const tap = join(scratch, `node-${major}.tap`);
  // TAP on stdout (as before) and into a file whose summary lines we add up below.
  const r = spawnSync(
    bin,
    ["--test", "--test-timeout=120000", "--test-reporter=tap", "--test-reporter-destination=stdout", "--test-reporter=tap", `--test-reporter-destination=${tap}`, ...files],
    { cwd: root, stdio: "inherit" },
  );
  let pass = 0;
  let fail = 0;
  try {
    const text = readFileSync(tap, "utf8");
    pass = Number(/^# pass (\d+)$/m.exec(text)?.[1] ?? 0);
    fail = Number(/^# fail (\d+)$/m.exec(text)?.[1] ?? 0);
  } catch {
    fail = 1;
  }
  if (r.status !== 0 && fail === 0) fail = 1; // a crash of the runner itself
  results.push({ major, version, pass, fail, status: r.status ?? 1, seconds: Math.round((Date.now() - t0) / 1000) });
}
rmSync(scratch, { recursive: true, force: true });

console.log("\n[test] ===== summary =====");
for (const r of results) console.log(`[test] Node ${r.version}: ${r.pass} passed, ${r.fail} failed (${Math.floor(r.seconds / 60)} min ${r.seconds % 60} s)`);
const pass = results.reduce((a, r) => a + r.pass, 0);
const fail = results.reduce((a, r) => a + r.fail, 0);
console.log(`${pass} passed, ${fail} failed`);
process.exit(results.every((r) => r.status === 0 && r.fail === 0) ? 0 : 1);
