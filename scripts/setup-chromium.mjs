#!/usr/bin/env node
// Makes Debian's chromium available for the headless-browser tests (test/browser/), which drive
// it with playwright-core.
//
// Invariants:
// - The browser is always the distribution's package, never a build downloaded by a tool
//   (`npx playwright install` and friends fetch from hosts that CI and the developers' machines
//   cannot reach, and an unpinned download would make runs differ between machines).
// - A machine that already has a chromium installs nothing (checked first, cheaply).
// - A missing chromium is installed with apt-get (`apt-get update` once, then
//   `apt-get install chromium`); when that is impossible it prints what failed and what to do
//   and throws. It never skips.
// - It never starts a browser: it only finds one and asks it for its version. The tests launch
//   their own, headless, with a profile of their own (test/support/browser.ts).
//
// `node scripts/setup-chromium.mjs` (`npm run setup-chromium`) installs if needed and prints the
// binary and its `--version`; tests import `ensureChromium()`.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { aptInstall, which } from "./apt.mjs";

// Debian's /usr/bin/chromium is a shell wrapper that sets up the environment and execs
// /usr/lib/chromium/chromium; it is the entry point to launch, not the binary behind it.
const knownPaths = ["/usr/bin/chromium"];

function log(msg) {
  console.error(`[setup-chromium] ${msg}`);
}

function findChromium() {
  return which("chromium") ?? knownPaths.find((p) => existsSync(p));
}

function fail(msg) {
  const text =
    `[setup-chromium] ${msg}\n` +
    `The browser tests need Debian's chromium (headless; driven by playwright-core, which downloads nothing). Install it with:\n` +
    `  sudo apt-get update && sudo apt-get install -y --no-install-recommends chromium\n` +
    `(Debian), or put a chromium on PATH. Do not run \`npx playwright install\`: the tests never\n` +
    `use the browser builds it downloads.`;
  console.error(text);
  throw new Error(text);
}

/** What `<bin> --version` prints (e.g. "Chromium 156.0.8078.114 built on Debian ..."), and the version in it. Throws when it prints none. */
export function describeChromium(bin) {
  const r = spawnSync(bin, ["--version"], { encoding: "utf8", timeout: 30_000 });
  const out = (r.stdout ?? "").trim();
  const m = /(\d+)\.(\d+)\.(\d+)\.(\d+)/.exec(out);
  if (r.status !== 0 || m === null) {
    fail(`\`${bin} --version\` did not report a version (${r.error?.message ?? `exit ${r.status ?? r.signal}`}): ${out}${(r.stderr ?? "").trim()}`);
  }
  return { text: out, version: m.slice(1).join("."), major: Number(m[1]) };
}

function install() {
  // --no-install-recommends, as the other setup scripts: the only recommendation is
  // chromium-sandbox (the setuid sandbox helper), which headless tests launched with
  // --no-sandbox do not use.
  aptInstall(["chromium"], { log, fail });
  const bin = findChromium();
  if (bin === undefined) fail(`\`apt-get install chromium\` succeeded but no chromium is on PATH or in ${knownPaths.join(", ")}.`);
  return bin;
}

let pending;

/**
 * Returns the path of a chromium executable (Debian's /usr/bin/chromium unless PATH has another),
 * installing Debian's package first when there is none. Throws (after printing what to do) when
 * it cannot. Concurrent calls in one process share one attempt.
 */
export function ensureChromium() {
  pending ??= (async () => {
    let bin = findChromium();
    if (bin === undefined) {
      log("chromium not found; installing it with apt-get");
      bin = install();
    }
    describeChromium(bin);
    return bin;
  })();
  return pending;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  try {
    const bin = await ensureChromium();
    console.log(bin);
    console.log(describeChromium(bin).text);
  } catch {
    process.exit(1);
  }
}
