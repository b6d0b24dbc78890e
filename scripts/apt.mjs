// One way for every setup script to install Debian packages: as root or through password-less
// sudo, non-interactive, `apt-get update` before the install (a fresh container has no lists),
// and waiting on another apt/dpkg's lock (a concurrent setup script) instead of failing on it.
import { spawnSync } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { delimiter, join } from "node:path";

/** The absolute path of `cmd` on PATH, or undefined. */
export function which(cmd) {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (dir === "") continue;
    const p = join(dir, cmd);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return undefined;
}

function aptGet(args, { log, fail }) {
  if (which("apt-get") === undefined) fail("apt-get is not available on this machine.");
  const asRoot = typeof process.getuid === "function" && process.getuid() === 0;
  const prefix = asRoot ? [] : which("sudo") !== undefined ? ["sudo", "-n"] : undefined;
  if (prefix === undefined) fail(`\`apt-get ${args[0]}\` needs root (or password-less sudo).`);
  const full = ["apt-get", "-o", "DPkg::Lock::Timeout=300", ...args];
  log(`running: ${full.join(" ")}`);
  const [cmd, ...rest] = [...prefix, ...full];
  const r = spawnSync(cmd, rest, {
    stdio: ["ignore", "inherit", "inherit"],
    env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
    timeout: 600_000,
  });
  if (r.status !== 0) fail(`\`${full.join(" ")}\` failed (${r.error?.message ?? `exit ${r.status ?? r.signal}`}).`);
}

/** `apt-get update`. `fail(message)` must throw; `log` reports the command. */
export function aptUpdate(io) {
  aptGet(["update"], io);
}

/** `apt-get install` of `packages`, after an update unless `update: false`. `fail(message)` must throw. */
export function aptInstall(packages, { log, fail, update = true }) {
  if (update) aptUpdate({ log, fail });
  aptGet(["install", "-y", "--no-install-recommends", ...packages], { log, fail });
}
