#!/usr/bin/env node
// Makes Debian's nginx available for the proxy-balancing test (test/fault/nginx-proxy.test.ts).
//
// Invariants:
// - A machine that already has an nginx with HTTP/2 and gRPC proxying installs nothing
//   (checked first, cheaply).
// - A missing nginx is installed with apt-get (`apt-get update` once, then one install of the
//   first of `nginx`, `nginx-light`, `nginx-core` that Debian's apt has a candidate for); when
//   that is impossible, it prints what failed and what to do and throws. It never skips.
// - It never starts, stops or configures a system nginx. If the package's own scripts start a
//   daemon on port 80, that one is left alone: the test runs its own nginx with its own
//   prefix, config and ports.
//
// `node scripts/setup-nginx.mjs` runs it (prints the binary and version); the test imports
// `ensureNginx()`.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { aptInstall, aptUpdate, which } from "./apt.mjs";

/** Debian package names in order of preference (bookworm: `nginx` holds the binary). */
const packageCandidates = ["nginx", "nginx-light", "nginx-core"];
const knownPaths = ["/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx"];

function log(msg) {
  console.error(`[setup-nginx] ${msg}`);
}


function findNginx() {
  return which("nginx") ?? knownPaths.find((p) => existsSync(p));
}

function fail(msg) {
  const text =
    `[setup-nginx] ${msg}\n` +
    `The proxy-balancing test needs nginx with the HTTP/2 and gRPC proxy modules. Install it with:\n` +
    `  sudo apt-get update && sudo apt-get install -y --no-install-recommends nginx\n` +
    `(Debian/Ubuntu; on Debian before bookworm the package is nginx-light or nginx-core),\n` +
    `or put any nginx >= 1.13.10 built with --with-http_v2_module on PATH.`;
  console.error(text);
  throw new Error(text);
}

/**
 * The version and configure arguments of the nginx at `bin` (`nginx -V` prints to stderr).
 * Throws when it lacks HTTP/2 or grpc_pass.
 */
export function describeNginx(bin) {
  const r = spawnSync(bin, ["-V"], { encoding: "utf8", timeout: 10_000 });
  const out = `${r.stdout ?? ""}${r.stderr ?? ""}`;
  const m = /nginx version: \S*?\/(\d+)\.(\d+)\.(\d+)/.exec(out);
  if (r.status !== 0 || m === null) fail(`\`${bin} -V\` did not report a version (exit ${r.status ?? r.signal}): ${out.trim()}`);
  const version = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (!out.includes("--with-http_v2_module")) fail(`${bin} (${version.join(".")}) was built without --with-http_v2_module.`);
  if (out.includes("--without-http_grpc_module")) fail(`${bin} (${version.join(".")}) was built without the gRPC proxy module.`);
  const atLeast = (a, b, c) => version[0] !== a ? version[0] > a : version[1] !== b ? version[1] > b : version[2] >= c;
  if (!atLeast(1, 13, 10)) fail(`${bin} is nginx ${version.join(".")}; grpc_pass needs 1.13.10 or later.`);
  return {
    version: version.join("."),
    /** nginx 1.25.1 deprecated `listen ... http2` in favour of the `http2 on;` directive. */
    http2Directive: atLeast(1, 25, 1) ? "separate" : "listen",
    /** `-e file` (the error log before the config is read) exists since 1.19.5. */
    hasErrorLogFlag: atLeast(1, 19, 5),
  };
}

/** The first package of `packageCandidates` with an install candidate in apt's lists. */
function aptCandidate() {
  for (const name of packageCandidates) {
    const r = spawnSync("apt-cache", ["policy", name], { encoding: "utf8" });
    const m = /Candidate:\s*(\S+)/.exec(r.stdout ?? "");
    if (r.status === 0 && m !== null && m[1] !== "(none)") return name;
  }
  return undefined;
}

function install() {
  // Which package to install depends on the lists, so update before asking.
  aptUpdate({ log, fail });
  const pkg = aptCandidate();
  if (pkg === undefined) fail(`apt has no install candidate for any of ${packageCandidates.join(", ")} (see \`apt-cache policy nginx\`).`);
  aptInstall([pkg], { log, fail, update: false });
  const bin = findNginx();
  if (bin === undefined) fail(`\`apt-get install ${pkg}\` succeeded but no nginx binary is on PATH or in ${knownPaths.join(", ")}.`);
  return bin;
}

let pending;

/**
 * Returns the path of an nginx binary that can proxy gRPC over HTTP/2, installing Debian's
 * package first when there is none. Throws (after printing what to do) when it cannot.
 * Concurrent calls in one process share one attempt.
 */
export function ensureNginx() {
  pending ??= (async () => {
    let bin = findNginx();
    if (bin === undefined) {
      log("nginx not found; installing it with apt-get");
      bin = install();
    }
    describeNginx(bin);
    return bin;
  })();
  return pending;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  try {
    const bin = await ensureNginx();
    console.log(`${bin} (nginx ${describeNginx(bin).version})`);
  } catch {
    process.exit(1);
  }
}
