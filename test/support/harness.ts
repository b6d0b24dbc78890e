/**
 * Shared e2e plumbing: real servers on 127.0.0.1 port 0, channels to them, and a leak check
 * after every test. The check counts the process's live sockets, servers and timers before
 * and after a test (once its servers and channels are closed) and fails the test that left
 * one behind.
 */
import { afterEach, beforeEach } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import {
  createChannel,
  createClient,
  createInProcessChannel,
  createServer,
  silentLogger,
  type Channel,
  type ChannelOptions,
  type ListenOptions,
  type Server,
  type ServerOptions,
} from "../../src/index.js";
import type { DescService } from "@bufbuild/protobuf";

const watched = new Set(["TCPSocketWrap", "TCPServerWrap", "Timeout", "PipeWrap", "PipeServerWrap"]);

/** Counts the process's live sockets, servers, pipes and timers by kind: take one before a test, then `assertNoLeaks(it)` after. */
export function census(): Map<string, number> {
  const counts = new Map<string, number>();
  for (const r of process.getActiveResourcesInfo()) if (watched.has(r)) counts.set(r, (counts.get(r) ?? 0) + 1);
  return counts;
}

function excess(before: Map<string, number>): string[] {
  const now = census();
  const out: string[] = [];
  for (const [k, n] of now) if (n > (before.get(k) ?? 0)) out.push(`${k} ×${n - (before.get(k) ?? 0)}`);
  return out;
}

/** Fails when resources opened since `before` are still alive after `graceMs`. */
export async function assertNoLeaks(before: Map<string, number>, graceMs = 2000): Promise<void> {
  const until = Date.now() + graceMs;
  let left = excess(before);
  while (left.length > 0 && Date.now() < until) {
    await sleep(10);
    left = excess(before);
  }
  if (left.length > 0) throw new Error(`the test left resources open: ${left.join(", ")}`);
}

export interface Harness {
  /** Starts a server with `setup` applied, on an ephemeral port (with `listen` options such as `tls`); closed after the test. */
  server(
    setup: (s: Server) => void,
    options?: ServerOptions,
    listen?: Omit<ListenOptions, "host" | "port">,
  ): Promise<{ server: Server; port: number; target: string }>;
  /** A channel to `target`; closed after the test. */
  channel(target: string | readonly string[], options?: ChannelOptions): Channel;
  /** A typed client on a fresh channel to `target`. */
  client<S extends DescService>(service: S, target: string, options?: ChannelOptions): ReturnType<typeof createClient<S>>;
}

/** How a suite's clients reach its servers: real HTTP/2 over TCP, or the in-process transport. */
export type TestTransport = "http2" | "in-process";

/** Both transports, for suites that run once over each (`for (const t of transports) describe(...)`). */
export const transports: readonly TestTransport[] = ["http2", "in-process"];

/**
 * Registers beforeEach/afterEach hooks for the enclosing suite and returns the per-test factory.
 * With `transport: "in-process"`, servers do not listen and their targets ("in-process:N") name
 * them to `channel()`, which wires a channel straight to the server: no socket, no HTTP/2.
 * RILL_TEST_TRANSPORT=in-process makes it the default for every suite: a way to see which
 * tests depend on sockets (raw HTTP/2 peers, proxies, ports), not part of `npm test`.
 */
export function useHarness(options: { transport?: TestTransport } = {}): Harness {
  const inProcess = (options.transport ?? process.env.RILL_TEST_TRANSPORT) === "in-process";
  const byTarget = new Map<string, Server>();
  let servers: Server[] = [];
  let channels: Channel[] = [];
  let before = new Map<string, number>();
  beforeEach(() => {
    before = census();
  });
  afterEach(async () => {
    for (const c of channels) c.close();
    await Promise.all(servers.map((s) => s.shutdown({ graceMs: 1000 })));
    servers = [];
    channels = [];
    byTarget.clear();
    await assertNoLeaks(before);
  });
  const h: Harness = {
    async server(setup, options, listen) {
      const server = createServer({ logger: silentLogger, ...options });
      setup(server);
      if (inProcess) {
        servers.push(server);
        const target = `in-process:${servers.length}`;
        byTarget.set(target, server);
        return { server, port: 0, target };
      }
      const { port } = await server.listen({ ...listen, host: "127.0.0.1", port: 0 });
      servers.push(server);
      return { server, port, target: `127.0.0.1:${port}` };
    },
    channel(target, options) {
      const inProcessServer = typeof target === "string" ? byTarget.get(target) : undefined;
      if (inProcess && inProcessServer === undefined) throw new Error(`no in-process server is named ${String(target)}`);
      const ch =
        inProcessServer !== undefined
          ? createInProcessChannel(inProcessServer, { logger: silentLogger, ...options })
          : createChannel(target, { logger: silentLogger, ...options });
      channels.push(ch);
      return ch;
    },
    client(service, target, options) {
      return createClient(service, h.channel(target, options));
    },
  };
  return h;
}

/** Collects an async iterable into an array. */
export async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const v of it) out.push(v);
  return out;
}

/** Yields the given values, optionally pausing between them. */
export async function* from<T>(values: Iterable<T>, delayMs = 0): AsyncGenerator<T> {
  for (const v of values) {
    if (delayMs > 0) await sleep(delayMs);
    yield v;
  }
}

/** Resolves when `predicate` holds, polling every 5 ms; rejects after `timeoutMs`. */
export async function eventually(predicate: () => boolean, timeoutMs = 2000, what = "condition"): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(5);
  }
}

/**
 * Resolves with `read()` once it has not changed for `quietMs` (polling every 5 ms): for waiting
 * until something stops (a producer held back by flow control) where no event says it has. The
 * quiet time must also span ten polls, so that a pause of the whole process (which stops what is
 * watched as well) does not pass for quiet. Rejects when it is still changing after `timeoutMs`.
 */
export async function steady<T>(read: () => T, quietMs: number, timeoutMs = 5000, what = "value"): Promise<T> {
  const until = Date.now() + timeoutMs;
  let value = read();
  let since = Date.now();
  let polls = 0;
  for (;;) {
    await sleep(5);
    const now = Date.now();
    const next = read();
    if (next !== value) {
      value = next;
      since = now;
      polls = 0;
    } else if (++polls >= 10 && now - since >= quietMs) {
      return value;
    }
    if (now > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} to stay unchanged for ${quietMs} ms (last: ${String(value)})`);
  }
}
