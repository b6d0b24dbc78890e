#!/usr/bin/env node
// Makes the `openssl` command available for the TLS tests, which generate their certificates
// (CA, server, client) at test time.
//
// Invariants:
// - A machine that has openssl installs nothing (checked first, cheaply).
// - Otherwise Debian's `openssl` package is installed with apt-get (update once, then install);
//   when that is impossible it prints what to do and fails. It never skips.
//
// `node scripts/setup-openssl.mjs` runs it; test/support/certs.ts imports `setupOpenssl()`.
import { spawnSync } from "node:child_process";
import { pathToFileURL } from "node:url";
import { aptInstall, which } from "./apt.mjs";

function log(msg) {
  console.error(`[setup-openssl] ${msg}`);
}


function fail(msg) {
  throw new Error(`${msg}\nThe TLS tests generate certificates with openssl. Install it with:\n  sudo apt-get update && sudo apt-get install -y openssl`);
}

/** Returns the path of `openssl`, installing Debian's package first if needed. Throws with instructions on failure. */
export function setupOpenssl() {
  const found = which("openssl");
  if (found !== undefined) return found;
  log("openssl is missing; installing it with apt-get");
  aptInstall(["openssl"], { log, fail });
  const installed = which("openssl");
  if (installed === undefined) fail("openssl is still missing after apt-get install.");
  return installed;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  try {
    log(`ready: ${setupOpenssl()}`);
  } catch (e) {
    console.error(`[setup-openssl] ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  }
}
