/**
 * Proxy balancing through a real nginx (Debian's, installed by scripts/setup-nginx.mjs when
 * missing): one Rill channel holds one HTTP/2 connection to nginx, and nginx's `grpc_pass`
 * to an upstream of two Rill server processes balances every call, while a stream stays on
 * the backend it started on. The contrast: an L4 (TCP) round-robin forwarder in front of the
 * same two backends balances connections, so one channel's calls all land on one backend.
 *
 * Everything runs on 127.0.0.1 in processes this file starts and stops by PID: two
 * test/fault/fixtures/named-echo-server.js processes and one nginx (`master_process off`,
 * its own prefix, config, logs and temp paths in a temp dir; a system nginx is never touched).
 * Every wait is bounded. A machine where nginx cannot be installed fails the suite loudly.
 */
import { after, afterEach, before, beforeEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { connect, createServer, type AddressInfo, type Server as NetServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath, pathToFileURL } from "node:url";
import { createChannel, createClient, createPushable, silentLogger, type Channel } from "../../src/index.js";
import { Echo, type EchoRequestSchema } from "../../gen/echo/echo_pb.js";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { assertNoLeaks, census } from "../support/harness.js";
import { freePort } from "../support/ports.js";

const here = dirname(fileURLToPath(import.meta.url)); // dist/test/fault
const root = join(here, "..", "..", "..");
const backendProgram = join(here, "fixtures", "named-echo-server.js");
const callTimeoutMs = 5_000;

interface SetupNginx {
  ensureNginx(): Promise<string>;
  describeNginx(bin: string): { version: string; http2Directive: "listen" | "separate"; hasErrorLogFlag: boolean };
}

/** Bounds `p` by `ms`, failing with `what` when it takes longer. */
async function within<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  const ac = new AbortController();
  try {
    return await Promise.race([
      p,
      sleep(ms, undefined, { signal: ac.signal }).then(() => {
        throw new Error(`timed out after ${ms} ms: ${what}`);
      }),
    ]);
  } finally {
    ac.abort();
  }
}

/** Stops a child this file started: SIGTERM, then SIGKILL after 3 s; resolves when it exited. */
async function stopChild(child: ChildProcess | undefined): Promise<void> {
  if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill("SIGTERM");
  try {
    await within(3_000, `pid ${child.pid} to exit after SIGTERM`, exited);
  } catch {
    child.kill("SIGKILL");
    await within(3_000, `pid ${child.pid} to exit after SIGKILL`, exited);
  }
}

/** Children still alive if the runner exits abruptly: killed synchronously, by PID. */
const started = new Set<ChildProcess>();
process.on("exit", () => {
  for (const c of started) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
});

function track(child: ChildProcess): ChildProcess {
  started.add(child);
  child.once("exit", () => started.delete(child));
  return child;
}

interface Backend {
  name: string;
  port: number;
  process: ChildProcess;
}

/** Starts a named Echo server process and waits (≤ 10 s) for the port it prints. */
async function startBackend(name: string): Promise<Backend> {
  // stdin stays a pipe: the server exits when it closes, so it cannot outlive this runner.
  const child = track(spawn(process.execPath, [backendProgram, "--name", name, "--port", "0"], { stdio: ["pipe", "pipe", "pipe"] }));
  let stderr = "";
  child.stderr!.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  const ready = new Promise<number>((resolve, reject) => {
    let out = "";
    child.stdout!.setEncoding("utf8").on("data", (d: string) => {
      out += d;
      const nl = out.indexOf("\n");
      if (nl >= 0) resolve((JSON.parse(out.slice(0, nl)) as { port: number }).port);
    });
    child.once("exit", (code, signal) => reject(new Error(`backend ${name} exited (${code ?? signal}) before listening: ${stderr}`)));
    child.once("error", reject);
  });
  try {
    const port = await within(10_000, `backend ${name} to print its port`, ready);
    return { name, port, process: child };
  } catch (err) {
    await stopChild(child);
    throw err;
  }
}

/** Resolves once 127.0.0.1:port accepts a TCP connection; fails after `ms` or if `alive()` turns false. */
async function waitForPort(port: number, ms: number, alive: () => boolean): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, "127.0.0.1");
      s.setTimeout(500);
      s.once("connect", () => (s.destroy(), resolve(true)));
      s.once("error", () => (s.destroy(), resolve(false)));
      s.once("timeout", () => (s.destroy(), resolve(false)));
    });
    if (ok) return;
    if (!alive()) throw new Error(`the process meant to listen on ${port} exited`);
    if (Date.now() > until) throw new Error(`nothing accepted connections on 127.0.0.1:${port} within ${ms} ms`);
    await sleep(50);
  }
}

/** The nginx.conf under test: h2c on 127.0.0.1:listenPort, grpc_pass round robin to the backends. */
function nginxConfig(dir: string, listenPort: number, backends: readonly Backend[], http2: "listen" | "separate"): string {
  const p = (name: string) => join(dir, name);
  const listen = http2 === "listen" ? `listen 127.0.0.1:${listenPort} http2;` : `listen 127.0.0.1:${listenPort};\n    http2 on;`;
  return `# Written by test/fault/nginx-proxy.test.ts; everything lives in ${dir}.
daemon off;
master_process off;
worker_processes 1;
pid ${p("nginx.pid")};
error_log ${p("error.log")} notice;
events { worker_connections 256; }
http {
  log_format calls '$connection $upstream_addr $status $request_uri';
  access_log ${p("access.log")} calls;
  client_body_temp_path ${p("client_body")};
  proxy_temp_path ${p("proxy")};
  fastcgi_temp_path ${p("fastcgi")};
  uwsgi_temp_path ${p("uwsgi")};
  scgi_temp_path ${p("scgi")};

  upstream backends {
    server 127.0.0.1:${backends[0]!.port};
    server 127.0.0.1:${backends[1]!.port};
    keepalive 8;
  }
  server {
    ${listen}
    location / {
      grpc_pass grpc://backends;
    }
  }
}
`;
}

interface Nginx {
  port: number;
  process: ChildProcess;
  version: string;
  accessLog: string;
}

/** Starts nginx on a fresh port with its own prefix and config; retries if the port was taken meanwhile. */
async function startNginx(dir: string, backends: readonly Backend[]): Promise<Nginx> {
  const setup = (await import(pathToFileURL(join(root, "scripts", "setup-nginx.mjs")).href)) as SetupNginx;
  const bin = await setup.ensureNginx();
  const { version, http2Directive, hasErrorLogFlag } = setup.describeNginx(bin);
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const conf = join(dir, "nginx.conf");
    writeFileSync(conf, nginxConfig(dir, port, backends, http2Directive));
    // -e: the error log before the config is read (else the system's /var/log/nginx/error.log).
    const args = ["-p", `${dir}/`, "-c", conf, ...(hasErrorLogFlag ? ["-e", join(dir, "error.log")] : [])];
    const child = track(spawn(bin, args, { stdio: ["ignore", "pipe", "pipe"] }));
    let output = "";
    child.stdout!.setEncoding("utf8").on("data", (d: string) => (output += d));
    child.stderr!.setEncoding("utf8").on("data", (d: string) => (output += d));
    const alive = () => child.exitCode === null && child.signalCode === null;
    try {
      await waitForPort(port, 10_000, alive);
      return { port, process: child, version, accessLog: join(dir, "access.log") };
    } catch (err) {
      await stopChild(child);
      const log = existsSync(join(dir, "error.log")) ? readFileSync(join(dir, "error.log"), "utf8") : "";
      lastError = new Error(`nginx ${version} did not start: ${(err as Error).message}\n${output}\n${log}`);
      if (!/Address already in use/.test(output + log)) break;
    }
  }
  throw lastError;
}

/** Access-log lines (`$connection $upstream_addr $status $request_uri`) from line `from` on, once there are `count` of them (≤ 3 s). */
async function accessLogLines(file: string, from: number, count: number): Promise<string[][]> {
  const read = () => (existsSync(file) ? readFileSync(file, "utf8").split("\n").filter((l) => l !== "") : []);
  const until = Date.now() + 3_000;
  let lines = read();
  while (lines.length < from + count && Date.now() < until) {
    await sleep(20);
    lines = read();
  }
  return lines.slice(from).map((l) => l.split(" "));
}

function countBy(names: readonly string[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const n of names) m.set(n, (m.get(n) ?? 0) + 1);
  return m;
}

/**
 * A TCP (L4) round-robin balancer: each new connection is forwarded, whole, to the next
 * backend in turn. It never looks inside the bytes, so it cannot see HTTP/2 streams.
 */
async function startL4RoundRobin(ports: readonly number[]): Promise<{ port: number; accepted: () => number; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  let next = 0;
  const server: NetServer = createServer((client) => {
    const upstream = connect(ports[next++ % ports.length]!, "127.0.0.1");
    for (const s of [client, upstream]) {
      s.setNoDelay(true); // as HTTP/2 peers do; with Nagle, every small frame waits for a delayed ACK
      sockets.add(s);
      s.once("close", () => sockets.delete(s));
    }
    client.pipe(upstream);
    upstream.pipe(client);
    const end = () => (client.destroy(), upstream.destroy());
    client.once("error", end).once("close", end);
    upstream.once("error", end).once("close", end);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as AddressInfo).port,
    accepted: () => next,
    close: async () => {
      for (const s of sockets) s.destroy();
      await within(3_000, "the L4 forwarder to close", new Promise<void>((resolve) => server.close(() => resolve())));
    },
  };
}

describe("load balancing through an nginx gRPC proxy", { timeout: 120_000 }, () => {
  let dir = "";
  let backends: Backend[] = [];
  let nginx: Nginx | undefined;
  let channels: Channel[] = [];
  let resourcesBefore = new Map<string, number>();

  const channel = (target: string): Channel => {
    const ch = createChannel(target, { logger: silentLogger });
    channels.push(ch);
    return ch;
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "rill-nginx-"));
    // One by one, so a failure leaves `backends` listing exactly what `after` must stop.
    for (const name of ["alpha", "beta"]) backends.push(await startBackend(name));
    nginx = await startNginx(dir, backends);
  });

  after(async () => {
    // Only the PIDs this file started, nginx first so it stops talking to the backends.
    await stopChild(nginx?.process);
    await Promise.all(backends.map((b) => stopChild(b.process)));
    if (dir !== "") rmSync(dir, { recursive: true, force: true });
  });

  beforeEach(() => {
    resourcesBefore = census();
  });

  // Leak check (the harness's): the sockets and timers a test opens (channels, forwarders) are
  // gone after it. The children's pipes are opened in before(), so they are in every census.
  afterEach(async () => {
    for (const c of channels) c.close();
    channels = [];
    await assertNoLeaks(resourcesBefore);
  });

  test("nginx balances each unary call of one HTTP/2 connection across both backends", async () => {
    const client = createClient(Echo, channel(`127.0.0.1:${nginx!.port}`));
    const logFrom = (await accessLogLines(nginx!.accessLog, 0, 0)).length;
    const names: string[] = [];
    for (let i = 0; i < 100; i++) names.push((await client.unaryEcho({ message: `call ${i}` }, { timeoutMs: callTimeoutMs })).message);

    const counts = countBy(names);
    assert.deepEqual([...counts.keys()].sort(), ["alpha", "beta"], `calls landed on ${JSON.stringify([...counts])}`);
    for (const [name, n] of counts) assert.ok(n >= 30 && n <= 70, `${name} served ${n} of 100 calls; expected 30..70`);

    // nginx's own view: all 100 calls arrived on ONE client connection and went to both upstreams.
    const lines = (await accessLogLines(nginx!.accessLog, logFrom, 100)).filter((f) => f[3] === "/grpc.examples.echo.Echo/UnaryEcho");
    assert.equal(lines.length, 100, "nginx logged every call");
    assert.equal(new Set(lines.map((f) => f[0])).size, 1, "one client connection carried every call");
    assert.deepEqual(
      [...new Set(lines.map((f) => f[1]))].sort(),
      backends.map((b) => `127.0.0.1:${b.port}`).sort(),
      "nginx sent calls to both upstreams",
    );
  });

  test("a bidi stream through nginx stays on one backend while unary calls on the same channel move", async () => {
    const client = createClient(Echo, channel(`127.0.0.1:${nginx!.port}`));
    const requests = createPushable<MessageInitShape<typeof EchoRequestSchema>>();
    const ac = new AbortController();
    const responses = client.bidirectionalStreamingEcho(requests, { signal: ac.signal, timeoutMs: 30_000 })[Symbol.asyncIterator]();
    const streamNames: string[] = [];
    const unaryNames: string[] = [];
    try {
      for (let i = 0; i < 20; i++) {
        await within(callTimeoutMs, `push of stream message ${i}`, requests.push({ message: `stream ${i}` }));
        const r = await within(callTimeoutMs, `stream answer ${i}`, responses.next());
        assert.equal(r.done, false, `the stream ended after ${i} answers`);
        streamNames.push(r.value!.message);
        // A unary call between stream messages, on the same channel (same HTTP/2 connection).
        unaryNames.push((await client.unaryEcho({ message: `between ${i}` }, { timeoutMs: callTimeoutMs })).message);
      }
      requests.end();
      const last = await within(callTimeoutMs, "the stream to end", responses.next());
      assert.equal(last.done, true);
    } finally {
      requests.end();
      ac.abort();
    }

    assert.equal(streamNames.length, 20);
    assert.equal(new Set(streamNames).size, 1, `the stream moved between backends: ${streamNames.join(",")}`);
    assert.ok(["alpha", "beta"].includes(streamNames[0]!));
    assert.deepEqual([...new Set(unaryNames)].sort(), ["alpha", "beta"], "the interleaved unary calls were balanced");
  });

  test("an L4 round-robin balancer in front of one HTTP/2 connection sends every call to one backend", async () => {
    const l4 = await startL4RoundRobin(backends.map((b) => b.port));
    try {
      const client = createClient(Echo, channel(`127.0.0.1:${l4.port}`));
      const names: string[] = [];
      for (let i = 0; i < 100; i++) names.push((await client.unaryEcho({ message: `call ${i}` }, { timeoutMs: callTimeoutMs })).message);
      assert.equal(l4.accepted(), 1, "one channel opened one TCP connection");
      const counts = countBy(names);
      assert.equal(counts.size, 1, `calls landed on ${JSON.stringify([...counts])}`);
      const first = names[0]!;

      // The balancer did balance — connections: a second channel lands on the other backend.
      const other = createClient(Echo, channel(`127.0.0.1:${l4.port}`));
      const otherNames: string[] = [];
      for (let i = 0; i < 20; i++) otherNames.push((await other.unaryEcho({ message: `other ${i}` }, { timeoutMs: callTimeoutMs })).message);
      assert.equal(l4.accepted(), 2);
      assert.deepEqual([...new Set(otherNames)], [first === "alpha" ? "beta" : "alpha"]);
    } finally {
      for (const c of channels) c.close();
      channels = [];
      await l4.close();
    }
  });
});
