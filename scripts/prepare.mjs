#!/usr/bin/env node
// Makes a fresh clone runnable: installs dependencies when they are missing or stale, then
// compiles TypeScript into dist/. `npm start` and `npm test` run this first, so neither needs
// another command before it.
import { execFileSync } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const npm = process.platform === "win32" ? "npm.cmd" : "npm";

function run(cmd, args, what) {
  console.error(`[prepare] ${what}...`);
  const t0 = Date.now();
  execFileSync(cmd, args, { cwd: root, stdio: ["ignore", "inherit", "inherit"] });
  console.error(`[prepare] ${what}: done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}

const installed = join(root, "node_modules", ".package-lock.json");
const newer = (file) => existsSync(file) && statSync(file).mtimeMs > statSync(installed).mtimeMs + 1000;
const stale = !existsSync(installed) || newer(join(root, "package-lock.json")) || newer(join(root, "package.json"));
if (stale) {
  // `npm install` honours package-lock.json; `npm ci` is avoided because npm 11 rejects a lock
  // whose optional platform packages (buf's per-OS binaries) were not installed on this OS.
  run(npm, ["install", "--no-audit", "--no-fund"], "installing dependencies");
}

try {
  run(process.execPath, [join(root, "node_modules", "typescript", "bin", "tsc"), "-p", "tsconfig.json"], "compiling TypeScript");
} catch {
  console.error("[prepare] TypeScript compilation failed; fix the errors above (npm run typecheck shows them again).");
  process.exit(1);
}
