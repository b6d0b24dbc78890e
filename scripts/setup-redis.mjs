#!/usr/bin/env node
// Makes Debian's redis-server available for the pub/sub tests and starts private instances.
//
// Invariants:
// - A machine that already has a redis-server >= 6.2 installs nothing (checked first, cheaply).
// - A missing redis-server is installed with apt-get (`apt-get update` once, then
//   `apt-get install redis-server`); when that is impossible it prints what failed and what to
//   do and throws. It never skips.
// - It never touches a system redis (the package may start one on 6379): `startRedis()` runs a
//   private instance on 127.0.0.1, on a port of its own, in a temp dir, without persistence
//   (unless asked for an fsync-always AOF), and the caller stops it by PID (`stop()`), which
//   also removes the dir.
//
// `node scripts/setup-redis.mjs` installs if needed and prints the binary and version;
// `node scripts/setup-redis.mjs --start [--port N]` also starts an instance and stays in the
// foreground until Ctrl+C (prints its REDIS_URL). Tests import `ensureRedis()` and `startRedis()`.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createConnection, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { aptInstall, which } from "./apt.mjs";

const knownPaths = ["/usr/bin/redis-server", "/usr/local/bin/redis-server"];

function log(msg) {
  console.error(`[setup-redis] ${msg}`);
}


function findRedis() {
  return which("redis-server") ?? knownPaths.find((p) => existsSync(p));
}

function fail(msg) {
  const text =
    `[setup-redis] ${msg}\n` +
    `The pub/sub tests need redis-server (6.2 or later, for XINFO STREAM's max-deleted-entry-id 7.0 is best). Install it with:\n` +
    `  sudo apt-get update && sudo apt-get install -y --no-install-recommends redis-server\n` +
    `(Debian/Ubuntu), or put any redis-server >= 6.2 on PATH.`;
  console.error(text);
  throw new Error(text);
}

/** The version of the redis-server at `bin`; throws when it is too old for Streams as used here. */
export function describeRedis(bin) {
  const r = spawnSync(bin, ["--version"], { encoding: "utf8", timeout: 10_000 });
  const m = /v=(\d+)\.(\d+)\.(\d+)/.exec(r.stdout ?? "");
  if (r.status !== 0 || m === null) fail(`\`${bin} --version\` did not report a version (exit ${r.status ?? r.signal}): ${r.stdout}${r.stderr}`);
  const version = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (version[0] < 6 || (version[0] === 6 && version[1] < 2)) fail(`${bin} is redis ${version.join(".")}; Rill's Redis log needs 6.2 or later (XADD MINID).`);
  return { version: version.join(".") };
}

function install() {
  aptInstall(["redis-server"], { log, fail });
  const bin = findRedis();
  if (bin === undefined) fail(`\`apt-get install redis-server\` succeeded but no redis-server is on PATH or in ${knownPaths.join(", ")}.`);
  return bin;
}

let pending;

/**
 * Returns the path of a redis-server binary, installing Debian's package first when there is
 * none. Throws (after printing what to do) when it cannot. Concurrent calls share one attempt.
 */
export function ensureRedis() {
  pending ??= (async () => {
    let bin = findRedis();
    if (bin === undefined) {
      log("redis-server not found; installing it with apt-get");
      bin = install();
    }
    describeRedis(bin);
    return bin;
  })();
  return pending;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function canConnect(port) {
  return new Promise((resolve) => {
    const sock = createConnection({ host: "127.0.0.1", port });
    sock.once("connect", () => {
      sock.destroy();
      resolve(true);
    });
    sock.once("error", () => resolve(false));
  });
}

/**
 * Starts a private redis-server on 127.0.0.1 (`port`, default a free one) in a fresh temp dir,
 * with no automatic persistence (an explicit SAVE still writes dump.rdb there). Resolves once it
 * accepts connections with `{ url, port, pid, dir, stop }`; `stop()` kills that PID (SIGKILL,
 * as a crash) and removes the dir. With `dir`, that dir is used (a dump.rdb in it is loaded, as
 * a restart from a snapshot does) and kept. With `appendonly: true`, it keeps an append-only
 * file fsynced before every reply (`--appendonly yes --appendfsync always`, no RDB snapshots):
 * restarted in the same dir it loses no acknowledged write. Rejects loudly if it exits or does
 * not come up within 10 s.
 */
export async function startRedis(options = {}) {
  const bin = await ensureRedis();
  const port = options.port ?? (await freePort());
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), "rill-redis-"));
  const child = spawn(
    bin,
    [
      "--bind", "127.0.0.1", "--port", String(port), "--dir", dir, "--save", "",
      ...(options.appendonly === true ? ["--appendonly", "yes", "--appendfsync", "always"] : ["--appendonly", "no"]),
      "--protected-mode", "yes", "--daemonize", "no", "--loglevel", "warning",
    ],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  let stderr = "";
  child.stderr.on("data", (d) => (stderr += d));
  let exited;
  const exitPromise = new Promise((resolve) => child.once("exit", (code, signal) => resolve((exited = `exit ${code ?? signal}`))));
  const stop = async () => {
    if (exited === undefined) {
      child.kill("SIGKILL");
      await exitPromise;
    }
    if (options.dir === undefined) rmSync(dir, { recursive: true, force: true });
  };
  const until = Date.now() + 10_000;
  while (!(await canConnect(port))) {
    if (exited !== undefined || Date.now() > until) {
      await stop();
      fail(`redis-server on 127.0.0.1:${port} did not start (${exited ?? "no answer within 10 s"}): ${stderr.trim()}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  child.stderr.unref?.();
  return { url: `redis://127.0.0.1:${port}`, port, pid: child.pid, dir, stop };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  try {
    const bin = await ensureRedis();
    console.log(`${bin} (redis ${describeRedis(bin).version})`);
    if (process.argv.includes("--start")) {
      const i = process.argv.indexOf("--port");
      const r = await startRedis(i > 0 ? { port: Number(process.argv[i + 1]) } : {});
      console.log(`REDIS_URL=${r.url} (pid ${r.pid}); Ctrl+C stops it`);
      const quit = () => void r.stop().then(() => process.exit(0));
      process.once("SIGINT", quit);
      process.once("SIGTERM", quit);
    }
  } catch {
    process.exit(1);
  }
}
