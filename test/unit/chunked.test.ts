import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { describe, test } from "node:test";
import { Code, RpcError } from "../../src/index.js";
import { memorySink, receiveChunks, sendChunks, withResume, chunkFromProto, type TransferChunk } from "../../src/transfer/index.js";
import { ChunkSequence } from "../../src/transfer/chunk-sequence.js";
import { RateMeter } from "../../src/transfer/rate-meter.js";
import { rechunk } from "../../src/transfer/rechunk.js";
import { fakeClock } from "../support/fake-clock.js";
import { collect } from "../support/harness.js";

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest();
const identity = (c: TransferChunk) => c;

async function* from<T>(items: T[]) {
  yield* items;
}

function rpcCode(code: Code, pattern: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof RpcError, String(e));
    assert.equal(e.code, code, e.message);
    assert.match(e.rawMessage, pattern);
    return true;
  };
}

describe("rechunk", () => {
  test("re-cuts pieces of any size into chunks of exactly the size, the last one shorter", async () => {
    const bytes = randomBytes(1000);
    const cuts = [0, 1, 7, 300, 301, 999, 1000];
    const pieces = cuts.slice(1).map((end, i) => bytes.subarray(cuts[i], end));
    const out = await collect(rechunk(from(pieces), 64));
    assert.deepEqual(out.map((c) => c.byteLength), [...Array(15).fill(64), 40]);
    assert.ok(Buffer.concat(out).equals(bytes));
  });

  test("passes pieces of the right size through without copying and yields nothing for an empty stream", async () => {
    const piece = new Uint8Array(64);
    const [out] = await collect(rechunk(from([piece]), 64));
    assert.equal(out!.buffer, piece.buffer);
    assert.deepEqual(await collect(rechunk(from([]), 64)), []);
    assert.deepEqual(await collect(rechunk(from([new Uint8Array(0)]), 64)), []);
  });

  test("a yielded chunk is never written again by later pieces", async () => {
    const out = await collect(rechunk(from([Buffer.from("ab"), Buffer.from("cd"), Buffer.from("ef")]), 3));
    assert.deepEqual(out.map((c) => Buffer.from(c).toString()), ["abc", "def"]);
  });

  test("rejects a chunk size that is not a positive integer", async () => {
    await assert.rejects(collect(rechunk(from([]), 0)), RangeError);
    await assert.rejects(collect(rechunk(from([]), 1.5)), RangeError);
  });
});

describe("ChunkSequence", () => {
  const digest = new Uint8Array(32);
  const chunk = (offset: number, n: number, extra: Partial<TransferChunk> = {}): TransferChunk => ({ offset, data: new Uint8Array(n), last: false, ...extra });

  test("accepts contiguous chunks from the resume offset and ends on the last", () => {
    const s = new ChunkSequence(100);
    s.accept(chunk(100, 10));
    s.accept(chunk(110, 5, { last: true, sha256: digest }));
    assert.equal(s.offset, 115);
    assert.equal(s.complete, true);
  });

  const cases: Array<[string, (s: ChunkSequence) => void, Code, RegExp]> = [
    ["a first chunk at another offset than the held bytes", (s) => s.accept(chunk(0, 1)), Code.FailedPrecondition, /must resume at offset 100/],
    ["a gap", (s) => (s.accept(chunk(100, 10)), s.accept(chunk(120, 1))), Code.InvalidArgument, /gap.*expected offset 110, got 120 \(10 bytes missing\)/],
    ["an overlap", (s) => (s.accept(chunk(100, 10)), s.accept(chunk(105, 1))), Code.InvalidArgument, /overlap.*expected offset 110, got 105 \(5 bytes repeated\)/],
    ["a chunk after the last", (s) => (s.accept(chunk(100, 1, { last: true, sha256: digest })), s.accept(chunk(101, 1))), Code.InvalidArgument, /after the last chunk/],
    ["a last chunk without a checksum", (s) => s.accept(chunk(100, 1, { last: true })), Code.InvalidArgument, /32-byte SHA-256, got 0/],
    ["an empty chunk before the last", (s) => s.accept(chunk(100, 0)), Code.InvalidArgument, /only the last chunk may be empty/],
    ["a chunk past the total size", (s) => s.accept(chunk(100, 11, { totalSize: 110 })), Code.InvalidArgument, /past the payload's total size of 110/],
    ["a last chunk short of the total size", (s) => s.accept(chunk(100, 5, { totalSize: 110, last: true, sha256: digest })), Code.InvalidArgument, /short of the payload's total size/],
    ["a total size that changes", (s) => (s.accept(chunk(100, 1, { totalSize: 200 })), s.accept(chunk(101, 1, { totalSize: 300 }))), Code.InvalidArgument, /changed from 200 to 300/],
    ["a negative offset", (s) => s.accept(chunk(-1, 1)), Code.InvalidArgument, /invalid chunk offset/],
  ];
  for (const [name, run, code, pattern] of cases) {
    test(`rejects ${name}`, () => {
      assert.throws(() => run(new ChunkSequence(100)), rpcCode(code, pattern));
    });
  }
});

describe("RateMeter", () => {
  test("reports bytes per second over the last second", () => {
    const clock = fakeClock(0);
    const m = new RateMeter(clock.now);
    clock.advance(500); // 500
    assert.equal(m.add(1000), 2000);
    clock.advance(500); // 1000
    assert.equal(m.add(1000), 2000);
    // Two seconds later at a lower rate: the old samples have left the window.
    clock.advance(2000); // 3000
    m.add(100);
    clock.advance(500); // 3500
    assert.equal(Math.round(m.add(100)), 200 / 2.5);
    clock.advance(500); // 4000
    assert.equal(Math.round(m.add(100)), 200);
  });
});

describe("sendChunks", () => {
  const payload = randomBytes(200 * 1024 + 17);

  test("cuts every kind of source into the same chunks and puts the payload's SHA-256 on the last", async () => {
    const dir = await mkdtemp(join(tmpdir(), "rill-chunked-unit-"));
    try {
      const path = join(dir, "p.bin");
      await writeFile(path, payload);
      const sources = { file: path, blob: new Blob([payload]), bytes: payload, readable: Readable.from([payload]), iterable: from([payload]) };
      for (const [name, source] of Object.entries(sources)) {
        const chunks = await collect(sendChunks(source, { toMessage: identity, chunkSize: 64 * 1024 }));
        assert.ok(Buffer.concat(chunks.map((c) => c.data)).equals(payload), name);
        assert.deepEqual(Buffer.from(chunks.at(-1)!.sha256!), sha(payload), name);
        assert.ok(chunks.slice(0, -1).every((c) => !c.last && c.sha256 === undefined), name);
        assert.deepEqual(chunks.map((c) => c.offset).slice(0, 4), [0, 65536, 131072, 196608], name);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test("a known size marks the last data chunk final; an unknown size ends with an empty final chunk", async () => {
    const known = await collect(sendChunks(payload, { toMessage: identity }));
    assert.equal(known.length, 4);
    assert.equal(known.at(-1)!.data.byteLength, payload.byteLength - 3 * 65536);
    const unknown = await collect(sendChunks(from([payload]), { toMessage: identity }));
    assert.equal(unknown.length, 5);
    assert.deepEqual([unknown.at(-1)!.data.byteLength, unknown.at(-1)!.offset, unknown.at(-1)!.totalSize], [0, payload.byteLength, payload.byteLength]);
  });

  test("an empty payload is one final chunk with the SHA-256 of nothing", async () => {
    const chunks = await collect(sendChunks(new Uint8Array(0), { toMessage: identity }));
    assert.equal(chunks.length, 1);
    assert.deepEqual(Buffer.from(chunks[0]!.sha256!), sha(new Uint8Array(0)));
  });

  test("resuming at an offset sends only the rest but still hashes the whole payload", async () => {
    for (const source of [payload, from([payload.subarray(0, 1000), payload.subarray(1000)])]) {
      const chunks = await collect(sendChunks(source, { toMessage: identity, offset: 70_000 }));
      assert.equal(chunks[0]!.offset, 70_000);
      assert.ok(Buffer.concat(chunks.map((c) => c.data)).equals(payload.subarray(70_000)));
      assert.deepEqual(Buffer.from(chunks.at(-1)!.sha256!), sha(payload));
    }
  });

  test("fails with FAILED_PRECONDITION when the source is shorter than the offset or than its announced size", async () => {
    await assert.rejects(collect(sendChunks(payload, { toMessage: identity, offset: payload.byteLength + 1 })), rpcCode(Code.FailedPrecondition, /has only/));
    await assert.rejects(collect(sendChunks(from([payload]), { toMessage: identity, offset: payload.byteLength + 1 })), rpcCode(Code.FailedPrecondition, /ended after/));
    await assert.rejects(collect(sendChunks(from([payload]), { toMessage: identity, totalSize: payload.byteLength + 1 })), rpcCode(Code.FailedPrecondition, /short of its announced size/));
    await assert.rejects(collect(sendChunks(from([payload]), { toMessage: identity, totalSize: 10 })), rpcCode(Code.FailedPrecondition, /longer than its announced size/));
  });

  test("reads a source only as fast as the chunks are taken", async () => {
    let pulled = 0;
    async function* counted() {
      for (let i = 0; i < 100; i++) {
        pulled++;
        yield new Uint8Array(1024);
      }
    }
    const it = sendChunks(counted(), { toMessage: identity, chunkSize: 1024 })[Symbol.asyncIterator]();
    await it.next();
    await it.next();
    assert.equal(pulled, 2);
    await it.return?.();
  });
});

describe("receiveChunks", () => {
  const payload = randomBytes(150 * 1024);

  test("a mismatching checksum is DATA_LOSS and empties the sink; a clean early end keeps the bytes", async () => {
    const chunks = await collect(sendChunks(payload, { toMessage: identity }));
    const sink = memorySink();
    const bad = [...chunks.slice(0, -1), { ...chunks.at(-1)!, sha256: new Uint8Array(32) }];
    await assert.rejects(receiveChunks(from(bad), sink, { fromMessage: identity }), rpcCode(Code.DataLoss, /SHA-256 mismatch/));
    assert.equal(await sink.size(), 0);
    const partial = await receiveChunks(from(chunks.slice(0, 2)), sink, { fromMessage: identity });
    assert.deepEqual([partial.complete, partial.offset, await sink.size()], [false, 128 * 1024, 128 * 1024]);
    // The rest, from the held offset: the prefix is re-hashed from the sink and the whole verifies.
    const rest = await receiveChunks(from(chunks.slice(2)), sink, { fromMessage: identity });
    assert.deepEqual([rest.complete, rest.transferred], [true, payload.byteLength - 128 * 1024]);
    assert.ok(Buffer.from(sink.bytes()).equals(payload));
  });

  test("an expected checksum that differs from the payload's is DATA_LOSS", async () => {
    const chunks = await collect(sendChunks(payload, { toMessage: identity }));
    await assert.rejects(
      receiveChunks(from(chunks), memorySink(), { fromMessage: identity, expectedSha256: new Uint8Array(32) }),
      rpcCode(Code.DataLoss, /expected checksum/),
    );
  });

  test("a sink that cannot read back its bytes refuses to resume", async () => {
    const sink = { size: async () => 10, write: async () => {} };
    await assert.rejects(receiveChunks(from([]), sink, { fromMessage: identity }), rpcCode(Code.FailedPrecondition, /cannot read them back/));
  });

  test("chunkFromProto rejects a message without a chunk", () => {
    assert.throws(() => chunkFromProto(undefined), rpcCode(Code.InvalidArgument, /carries no chunk/));
  });
});

describe("withResume", () => {
  test("retries UNAVAILABLE until an attempt succeeds and gives up on other codes at once", async () => {
    let n = 0;
    const result = await withResume(
      async () => {
        if (++n < 3) throw new RpcError(Code.Unavailable, "cut");
        return "done";
      },
      { delayMs: () => 0 },
    );
    assert.deepEqual([result, n], ["done", 3]);
    let m = 0;
    await assert.rejects(
      withResume(async () => {
        m++;
        throw new RpcError(Code.DataLoss, "bad");
      }),
      rpcCode(Code.DataLoss, /bad/),
    );
    assert.equal(m, 1);
    await assert.rejects(
      withResume(async () => {
        throw new RpcError(Code.Unavailable, "down");
      }, { attempts: 2, delayMs: () => 0 }),
      rpcCode(Code.Unavailable, /down/),
    );
  });
});
