import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Alexandria } from "../../gen/alexandria/alexandria_pb.js";
import { Agent } from "../../examples/alexandria/agent.js";
import type { Binding, LibraryEntry } from "../../examples/alexandria/domain.js";
import { alexandriaService } from "../../examples/alexandria/server.js";
import { memoryStore, type LibraryStore } from "../../examples/alexandria/store.js";
import { Code, createClient, RpcError } from "../../src/index.js";
import { chunkToProto, sendChunks, type ChunkSink, type TransferProgress } from "../../src/transfer/index.js";
import { collect, useHarness } from "../support/harness.js";
import { startTcpProxy } from "../support/tcp-proxy.js";
import { rejectsWith } from "../support/assertions.js";

const MiB = 1024 * 1024;
const hex = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

describe("alexandria example", () => {
  const h = useHarness();
  let dir = "";
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "rill-alexandria-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test("UpdateLibraryEntries acks arrive while the agent is still sending entries; a bad entry is refused in its ack", async () => {
    const { target } = await h.server((s) => s.add(Alexandria, alexandriaService()));
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
    const { target } = await h.server((s) => s.add(Alexandria, alexandriaService()));
    const client = h.client(Alexandria, target);
    async function* one() {
      yield { hash: hex(Buffer.from("x")), path: "x", size: 1n };
    }
    await assert.rejects(collect(client.updateLibraryEntries(one())), rejectsWith(Code.InvalidArgument, /agent-id/));
  });

  test("a lent file reaches the borrower: its watch stream gets the binding and the fetched copy is identical", async () => {
    const { target } = await h.server((s) => s.add(Alexandria, alexandriaService()));
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
    const base = memoryStore();
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

  test("a lent file whose bytes do not match the offered hash fails with DATA_LOSS and makes no binding", async () => {
    const { target } = await h.server((s) => s.add(Alexandria, alexandriaService()));
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
