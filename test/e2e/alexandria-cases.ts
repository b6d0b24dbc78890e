import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, afterEach, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Alexandria } from "../../gen/alexandria/alexandria_pb.js";
import { Agent } from "../../examples/alexandria/agent.js";
import type { Binding, LibraryEntry } from "../../examples/alexandria/domain.js";
import { alexandriaService } from "../../examples/alexandria/server.js";
import type { LibraryStore } from "../../examples/alexandria/store.js";
import { Code, createClient, RpcError } from "../../src/index.js";
import { chunkToProto, receiveChunks, sendChunks, type ChunkSink, type TransferProgress } from "../../src/transfer/index.js";
import { collect, useHarness } from "../support/harness.js";
import { startTcpProxy } from "../support/tcp-proxy.js";
import { rejectsWith } from "../support/assertions.js";

const MiB = 1024 * 1024;
const hex = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

/**
 * Every behaviour of the Alexandria example and of its store, run against the store `newStore`
 * makes (a fresh, empty one per call; closed after each test). alexandria.test.ts runs them on
 * the memory store, alexandria-redis.test.ts on the Redis store.
 */
export function alexandriaCases(storeName: string, newStore: () => Promise<LibraryStore>): void {
  describe(`alexandria example (${storeName} store)`, () => {
    let stores: LibraryStore[] = [];
    // Registered before the harness's hooks, so the stores' connections are closed before it
    // checks that the test left nothing open.
    afterEach(async () => {
      for (const s of stores) await s.close();
      stores = [];
    });
    const h = useHarness();
    let dir = "";
    const fresh = async () => {
      const s = await newStore();
      stores.push(s);
      return s;
    };
    const service = async () => alexandriaService({ store: await fresh() });
    before(async () => {
      dir = await mkdtemp(join(tmpdir(), "rill-alexandria-"));
    });
    after(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    storeContract(fresh);

    test("UpdateLibraryEntries acks arrive while the agent is still sending entries; a bad entry is refused in its ack", async () => {
      const svc = await service();
      const { target } = await h.server((s) => s.add(Alexandria, svc));
      const agent = new Agent(h.client(Alexandria, target), "alice");
      let firstAck!: () => void;
      const firstAckArrived = new Promise<void>((r) => (firstAck = r));
      let sendingFinished = false;
      let sentAtFirstAck = -1;
      let sent = 0;
      async function* entries(): AsyncGenerator<LibraryEntry> {
        yield { hash: hex(Buffer.from("one")), path: "one.txt", size: 3 };
        sent++;
        // Send nothing more until the first ack is back: only a stream that acks while the
        // request side is open gets past this.
        const timer = new AbortController();
        const timedOut = await Promise.race([
          firstAckArrived.then(() => false),
          sleep(5000, true, { signal: timer.signal }).catch(() => false),
        ]);
        timer.abort();
        assert.equal(timedOut, false, "no ack arrived while the entries were still being sent");
        for (const name of ["two", "three"]) {
          yield { hash: hex(Buffer.from(name)), path: `${name}.txt`, size: name.length };
          sent++;
        }
        yield { hash: "not-a-hash", path: "bad.txt", size: 1 };
        sendingFinished = true;
      }
      const acks = await agent.report(entries(), () => {
        if (sentAtFirstAck < 0) {
          sentAtFirstAck = sent;
          assert.equal(sendingFinished, false);
          firstAck();
        }
      });
      assert.equal(sentAtFirstAck, 1, "the first ack came after one entry, before the rest were sent");
      assert.deepEqual(acks.map((a) => a.saved), [true, true, true, false]);
      assert.match(acks[3]!.error!, /64 lowercase hex digits/);
    });

    test("UpdateLibraryEntries without the agent-id metadata fails with INVALID_ARGUMENT", async () => {
      const svc = await service();
      const { target } = await h.server((s) => s.add(Alexandria, svc));
      const client = h.client(Alexandria, target);
      async function* one() {
        yield { hash: hex(Buffer.from("x")), path: "x", size: 1n };
      }
      await assert.rejects(collect(client.updateLibraryEntries(one())), rejectsWith(Code.InvalidArgument, /agent-id/));
    });

    test("a lent file reaches the borrower: its watch stream gets the binding and the fetched copy is identical", async () => {
      const svc = await service();
      const { target } = await h.server((s) => s.add(Alexandria, svc));
      const client = h.client(Alexandria, target);
      const alice = new Agent(client, "alice");
      const bob = new Agent(client, "bob");
      const content = randomBytes(3 * MiB + 11);
      const file = join(dir, "film.mkv");
      await writeFile(file, content);

      const watching = new AbortController();
      const watched: Binding[] = [];
      const watch = (async () => {
        try {
          for await (const b of bob.bindings(true, watching.signal)) {
            watched.push(b);
            watching.abort();
          }
        } catch (e) {
          if (!(e instanceof RpcError && e.code === Code.Canceled)) throw e;
        }
      })();
      const progress: TransferProgress[] = [];
      const binding = await alice.lend(file, "bob", { onProgress: (p) => progress.push(p) });
      await watch;
      assert.deepEqual(watched, [binding]);
      assert.deepEqual([binding.hash, binding.path, binding.size, binding.lender, binding.borrower], [hex(content), "film.mkv", content.byteLength, "alice", "bob"]);
      assert.equal(progress.at(-1)?.bytes, content.byteLength);
      assert.deepEqual(await collect(alice.bindings()), [binding], "the lender sees the binding too");

      const into = join(dir, "bob");
      await mkdir(into);
      const path = await bob.fetch(binding, into);
      assert.ok((await readFile(path)).equals(content));
    });

    test("a lend cut off halfway resumes where the library stopped; a fetch resumes a partial file", async () => {
      const content = randomBytes(8 * MiB);
      const file = join(dir, "album.flac");
      await writeFile(file, content);
      let proxy: Awaited<ReturnType<typeof startTcpProxy>> | undefined;
      let cut = false;
      // The library's store, with the file sink cutting the connection once half the file is in.
      const base = await fresh();
      const sinks = new Map<string, ChunkSink>();
      const store: LibraryStore = {
        ...base,
        fileSink(hash) {
          let sink = sinks.get(hash);
          if (sink === undefined) {
            const inner = base.fileSink(hash);
            sink = {
              ...inner,
              async write(data) {
                await inner.write(data);
                if (!cut && (await inner.size()) >= content.byteLength / 2) {
                  cut = true;
                  proxy!.cut();
                }
              },
            };
            sinks.set(hash, sink);
          }
          return sink;
        },
      };
      const { port } = await h.server((s) => s.add(Alexandria, alexandriaService({ store })));
      proxy = await startTcpProxy(port);
      try {
        const client = h.client(Alexandria, proxy.target);
        const retries: unknown[] = [];
        const progress: TransferProgress[] = [];
        const binding = await new Agent(client, "alice").lend(file, "bob", {
          onProgress: (p) => progress.push(p),
          onRetry: (e) => retries.push(e),
        });
        assert.equal(retries.length, 1);
        assert.ok(retries[0] instanceof RpcError && retries[0].code === Code.Unavailable, String(retries[0]));
        // The resumed attempt's reports start past the half and count only what it sent.
        const resumed = progress.filter((p) => p.bytes - p.transferred >= content.byteLength / 2);
        const resumedAt = resumed[0]!.bytes - resumed[0]!.transferred;
        assert.equal(resumed.at(-1)!.transferred, content.byteLength - resumedAt);
        assert.equal(resumed.at(-1)!.done, true);

        // Bob already has the first 1 MiB from an earlier, interrupted fetch.
        const into = join(dir, "bob-resume");
        await mkdir(into);
        await writeFile(join(into, "album.flac.part"), content.subarray(0, MiB));
        const fetched: TransferProgress[] = [];
        const path = await new Agent(client, "bob").fetch(binding, into, { onProgress: (p) => fetched.push(p) });
        assert.equal(fetched.at(-1)!.transferred, content.byteLength - MiB, "only the missing bytes were fetched");
        assert.ok((await readFile(path)).equals(content));
      } finally {
        await proxy.close();
      }
    });

    test("lending a file the library already holds sends no bytes and gives back the same binding", async () => {
      const svc = await service();
      const { target } = await h.server((s) => s.add(Alexandria, svc));
      const alice = new Agent(h.client(Alexandria, target), "alice");
      const content = randomBytes(300_000);
      const file = join(dir, "again.bin");
      await writeFile(file, content);
      const first = await alice.lend(file, "bob");
      const progress: TransferProgress[] = [];
      const second = await alice.lend(file, "bob", { onProgress: (p) => progress.push(p) });
      assert.deepEqual(second, first);
      assert.deepEqual(progress.map((p) => [p.bytes, p.transferred]), [[content.byteLength, 0]]);
      const status = await h.client(Alexandria, target).getLendStatus({ hash: hex(content) });
      assert.deepEqual([status.offset, status.complete], [BigInt(content.byteLength), true]);
    });

    test("a lent file whose bytes do not match the offered hash fails with DATA_LOSS and makes no binding", async () => {
      const svc = await service();
      const { target } = await h.server((s) => s.add(Alexandria, svc));
      const client = createClient(Alexandria, h.channel(target));
      const offered = randomBytes(100_000);
      const sentBytes = randomBytes(100_000);
      async function* requests() {
        yield { kind: { case: "offer" as const, value: { hash: hex(offered), path: "x.bin", size: 100_000n, lender: "alice", borrower: "bob" } } };
        yield* sendChunks(sentBytes, { toMessage: (c) => ({ kind: { case: "chunk" as const, value: chunkToProto(c) } }) });
      }
      await assert.rejects(client.lendFile(requests()), rejectsWith(Code.DataLoss, /expected checksum is/));
      assert.deepEqual(await collect(new Agent(client, "bob").bindings()), []);
    });
  });
}

/** What every LibraryStore does, on the store itself. */
function storeContract(fresh: () => Promise<LibraryStore>): void {
  const binding = (n: number, lender = "alice", borrower = "bob") => ({ hash: hex(Buffer.from(`file ${n}`)), path: `f${n}.bin`, size: n, lender, borrower });

  test("store: an entry saved again under the same path replaces the first; each agent has its own entries", async () => {
    const store = await fresh();
    await store.saveEntry("alice", { hash: hex(Buffer.from("a")), path: "a.txt", size: 1 });
    await store.saveEntry("alice", { hash: hex(Buffer.from("b")), path: "b.txt", size: 1 });
    await store.saveEntry("alice", { hash: hex(Buffer.from("a2")), path: "a.txt", size: 2 });
    await store.saveEntry("bob", { hash: hex(Buffer.from("c")), path: "c.txt", size: 1 });
    const byPath = (es: LibraryEntry[]) => [...es].sort((x, y) => x.path.localeCompare(y.path));
    assert.deepEqual(byPath(await store.entries("alice")), [
      { hash: hex(Buffer.from("a2")), path: "a.txt", size: 2 },
      { hash: hex(Buffer.from("b")), path: "b.txt", size: 1 },
    ]);
    assert.deepEqual(await store.entries("bob"), [{ hash: hex(Buffer.from("c")), path: "c.txt", size: 1 }]);
    assert.deepEqual(await store.entries("carol"), []);
  });

  test("store: the same file, lender and borrower twice gives back the first binding; both parties list it, in order", async () => {
    const store = await fresh();
    const one = await store.addBinding(binding(1));
    const again = await store.addBinding({ ...binding(1), path: "renamed.bin" });
    const two = await store.addBinding(binding(2, "carol", "alice"));
    assert.deepEqual(again, one);
    assert.deepEqual({ ...one, id: "" }, { ...binding(1), id: "" });
    assert.notEqual(one.id, two.id);
    assert.deepEqual(await store.bindings("alice"), [one, two]);
    assert.deepEqual(await store.bindings("bob"), [one]);
    assert.deepEqual(await store.bindings("dave"), []);
    // Same lender and borrower, another file: a binding of its own.
    assert.notEqual((await store.addBinding(binding(3))).id, one.id);
  });

  test("store: a watcher gets the bindings of its agent made after it started, in order, and ends when aborted", async () => {
    const store = await fresh();
    const before = await store.addBinding(binding(1));
    const stop = new AbortController();
    const seen: Binding[] = [];
    const watching = (async () => {
      for await (const b of store.watchBindings("bob", stop.signal)) {
        seen.push(b);
        if (seen.length === 2) stop.abort();
      }
    })();
    const mine = [await store.addBinding(binding(2)), await store.addBinding(binding(3, "carol", "dave")), await store.addBinding(binding(4, "bob", "carol"))];
    await watching;
    assert.deepEqual(seen, [mine[0], mine[2]]);
    assert.ok(!seen.some((b) => b.id === before.id));
  });

  test("store: a file sink is one object per hash; the file is there only once whole and verified", async () => {
    const store = await fresh();
    const content = randomBytes(200_000);
    const hash = hex(content);
    assert.equal(store.fileSink(hash), store.fileSink(hash));
    assert.equal(await store.file(hash), undefined);
    const half = async function* () {
      for await (const c of sendChunks(content, { chunkSize: 16_384, toMessage: (c) => c })) if (c.offset < content.byteLength / 2 && !c.last) yield c;
    };
    const partial = await receiveChunks(half(), store.fileSink(hash), { fromMessage: (c) => c, totalSize: content.byteLength });
    assert.equal(partial.complete, false);
    assert.equal(await store.fileSink(hash).size(), partial.offset);
    assert.equal(await store.file(hash), undefined, "a partial file is not served");
    const rest = await receiveChunks(sendChunks(content, { offset: partial.offset, chunkSize: 16_384, toMessage: (c) => c }), store.fileSink(hash), {
      fromMessage: (c) => c,
      totalSize: content.byteLength,
      expectedSha256: Buffer.from(hash, "hex"),
    });
    assert.equal(rest.complete, true);
    const file = await store.file(hash);
    assert.ok(file !== undefined);
    const back: Uint8Array[] = [];
    for await (const c of sendChunks(file, { toMessage: (c) => c })) back.push(c.data);
    assert.ok(Buffer.concat(back).equals(content));
  });
}
