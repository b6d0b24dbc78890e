/**
 * Ranged transfers through the ready TransferService: parallel parts, from one server or two,
 * chunks damaged on the wire (a proxy flips a bit inside DATA frames: TCP's checksum would have
 * let it through) fetched again alone, a server lost mid-transfer, and a download resumed after
 * its process gave up.
 */
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { TransferService } from "../../gen/rill/transfer/v1/transfer_pb.js";
import { Code, RpcError } from "../../src/index.js";
import { chunkFromProto, chunkToProto, downloadRanges, downloadTransfer, memorySink, rangesFromProto, receiveChunks, sendRange, transferFetcher, transferService, uploadTransfer, type RangeFetcher } from "../../src/transfer/index.js";
import { startCorruptingProxy } from "../support/faults/corrupting-proxy.js";
import { collect, useHarness } from "../support/harness.js";
import { startTcpProxy } from "../support/tcp-proxy.js";
import { rejectsWith } from "../support/assertions.js";

const MiB = 1024 * 1024;
const CHUNK = 64 * 1024;
const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest();

/** Wraps a fetcher to record the offset of every chunk it delivers, and to run `onChunk` after each. */
function counted(fetch: RangeFetcher, seen: number[], onChunk?: (n: number) => void): RangeFetcher {
  return async function* (range, signal) {
    for await (const c of fetch(range, signal)) {
      seen.push(c.offset);
      yield c;
      onChunk?.(seen.length);
    }
  };
}

describe("ranged transfer (TransferService)", () => {
  const h = useHarness();
  let dir = "";
  let payloads = "";
  const payload = randomBytes(6 * MiB + 12345);
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "rill-ranged-"));
    payloads = join(dir, "served");
    await mkdir(payloads);
    await writeFile(join(payloads, "movie"), payload);
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test("a payload downloads in 4 parallel parts, verified, every chunk fetched once", async () => {
    const { target } = await h.server((s) => s.add(TransferService, transferService({ dir: payloads })));
    const client = h.client(TransferService, target);
    const dest = join(dir, "four-parts");
    const seen: number[] = [];
    const report = await downloadRanges({ sources: [counted(transferFetcher(client, "movie"), seen)], dest, totalSize: payload.byteLength, sha256: sha256(payload), parts: 4 });
    assert.deepEqual(await readFile(dest), payload);
    assert.equal(report.written, payload.byteLength);
    assert.equal(seen.length, new Set(seen).size, "a chunk was fetched twice");
    assert.equal(seen.length, Math.ceil(payload.byteLength / CHUNK), "parts are cut on chunk boundaries");
    await assert.rejects(stat(`${dest}.part.json`), { code: "ENOENT" });
  });

  test("Download serves a range: every chunk has its CRC32C, only the one ending the payload is last with the SHA-256", async () => {
    const { target } = await h.server((s) => s.add(TransferService, transferService({ dir: payloads })));
    const client = h.client(TransferService, target);
    const chunks = [];
    for await (const r of client.download({ transferId: "movie", offset: 100n, length: 200_000n })) chunks.push(chunkFromProto(r.chunk));
    assert.equal(chunks[0]!.offset, 100);
    assert.equal(chunks.reduce((n, c) => n + c.data.byteLength, 0), 200_000);
    assert.ok(chunks.every((c) => c.crc32c !== undefined && !c.last));
    const tail = [];
    for await (const r of client.download({ transferId: "movie", offset: BigInt(payload.byteLength - 10) })) tail.push(chunkFromProto(r.chunk));
    assert.equal(tail.length, 1);
    assert.ok(tail[0]!.last);
    assert.deepEqual(Buffer.from(tail[0]!.sha256!), sha256(payload));
    await assert.rejects(collect(client.download({ transferId: "movie", offset: BigInt(payload.byteLength + 1) })), rejectsWith(Code.OutOfRange));
    await assert.rejects(collect(client.download({ transferId: "../etc/passwd" })), rejectsWith(Code.InvalidArgument));
    await assert.rejects(collect(client.download({ transferId: "nothing" })), rejectsWith(Code.NotFound));
  });

  test("a chunk damaged on the wire is fetched again alone; the chunks after it on its stream are kept", async () => {
    const { port } = await h.server((s) => s.add(TransferService, transferService({ dir: payloads })));
    const proxy = await startCorruptingProxy(port, { direction: "toClient" });
    try {
      const client = h.client(TransferService, `127.0.0.1:${proxy.port}`);
      // Frames of 16 KiB: the 10th large DATA frame lies inside the 3rd chunk.
      proxy.corruptDataFrames([10]);
      const seen: number[] = [];
      const dest = join(dir, "damaged");
      const report = await downloadRanges({ sources: [counted(transferFetcher(client, "movie"), seen)], dest, totalSize: payload.byteLength, sha256: sha256(payload), parts: 1 });
      assert.equal(proxy.corrupted, 1);
      assert.equal(report.refetchedChunks, 1);
      assert.deepEqual(await readFile(dest), payload);
      const twice = seen.filter((o, i) => seen.indexOf(o) !== i);
      assert.equal(twice.length, 1, `chunks fetched twice: ${twice.join(", ")}`);
      assert.equal(seen.length, Math.ceil(payload.byteLength / CHUNK) + 1);
    } finally {
      await proxy.close();
    }
  });

  test("the sequential receiver stops at a damaged chunk with DATA_LOSS naming it, and a resume sends from there", async () => {
    const { port } = await h.server((s) => s.add(TransferService, transferService({ dir: payloads })));
    const proxy = await startCorruptingProxy(port, { direction: "toClient" });
    try {
      const client = h.client(TransferService, `127.0.0.1:${proxy.port}`);
      proxy.corruptDataFrames([10]);
      const sink = memorySink();
      const err = await receiveChunks(client.download({ transferId: "movie" }), sink, { fromMessage: (m) => chunkFromProto(m.chunk) }).catch((e: unknown) => e);
      assert.ok(err instanceof RpcError && err.code === Code.DataLoss, String(err));
      assert.match(err.message, /offset 131072 .*damaged/);
      assert.equal(await sink.size(), 2 * CHUNK);
      const rest = await receiveChunks(client.download({ transferId: "movie", offset: BigInt(2 * CHUNK) }), sink, { fromMessage: (m) => chunkFromProto(m.chunk) });
      assert.ok(rest.complete);
      assert.deepEqual(Buffer.from(sink.bytes()), payload);
    } finally {
      await proxy.close();
    }
  });

  test("two servers: one lost mid-transfer, the other finishes its parts, and no chunk already received is fetched again", async () => {
    const a = await h.server((s) => s.add(TransferService, transferService({ dir: payloads })));
    const b = await h.server((s) => s.add(TransferService, transferService({ dir: payloads })));
    const proxyB = await startTcpProxy(b.port);
    const clientA = h.client(TransferService, a.target);
    const clientB = h.client(TransferService, `127.0.0.1:${proxyB.port}`);
    const seenA: number[] = [];
    const seenB: number[] = [];
    // Server B "dies" (every connection reset, none accepted again) after it delivered 20 chunks.
    let killed = false;
    const kill = (n: number) => {
      if (n >= 20 && !killed) {
        killed = true;
        proxyB.reset();
        void proxyB.close();
      }
    };
    const dest = join(dir, "failover");
    const report = await downloadRanges({
      sources: [counted(transferFetcher(clientA, "movie"), seenA), counted(transferFetcher(clientB, "movie"), seenB, kill)],
      dest,
      totalSize: payload.byteLength,
      sha256: sha256(payload),
      parts: 4,
    });
    assert.ok(killed);
    assert.ok(report.failovers >= 1);
    assert.deepEqual(await readFile(dest), payload);
    const all = [...seenA, ...seenB];
    assert.equal(all.length, new Set(all).size, "a chunk received from one server was fetched again");
    assert.equal(new Set(all).size, Math.ceil(payload.byteLength / CHUNK));
    assert.ok(seenB.length >= 20);
  });

  test("a download stopped part-way keeps its ranges beside the file and the next one fetches only the rest", async () => {
    const { target } = await h.server((s) => s.add(TransferService, transferService({ dir: payloads })));
    const client = h.client(TransferService, target);
    const dest = join(dir, "resumed");
    const ac = new AbortController();
    const first: number[] = [];
    // At or past 40: parts share the count, so another part may have moved it past 40 before
    // this one looks.
    const stopAt = (n: number) => n >= 40 && !ac.signal.aborted && ac.abort(new Error("the user stopped it"));
    await assert.rejects(
      downloadRanges({ sources: [counted(transferFetcher(client, "movie"), first, stopAt)], dest, totalSize: payload.byteLength, sha256: sha256(payload), parts: 3, signal: ac.signal }),
    );
    const held = JSON.parse(await readFile(`${dest}.part.json`, "utf8")) as Array<[number, number]>;
    const heldBytes = held.reduce((n, [s, e]) => n + e - s, 0);
    assert.ok(heldBytes >= 30 * CHUNK, `held ${heldBytes}`);
    const report = await downloadTransfer([client], "movie", dest, { parts: 3 });
    assert.equal(report.written, payload.byteLength - heldBytes);
    assert.deepEqual(await readFile(dest), payload);
  });

  test("a payload that does not match the expected SHA-256 is discarded with DATA_LOSS", async () => {
    const { target } = await h.server((s) => s.add(TransferService, transferService({ dir: payloads })));
    const client = h.client(TransferService, target);
    const dest = join(dir, "wrong-hash");
    const err = await downloadRanges({ sources: [transferFetcher(client, "movie")], dest, totalSize: payload.byteLength, sha256: Buffer.alloc(32), parts: 2 }).catch((e: unknown) => e);
    assert.ok(err instanceof RpcError && err.code === Code.DataLoss, String(err));
    await assert.rejects(stat(`${dest}.part`), { code: "ENOENT" });
  });
});

describe("ranged upload (TransferService)", () => {
  const h = useHarness();
  let dir = "";
  const payload = randomBytes(5 * MiB + 777);
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "rill-ranged-up-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function served(name: string, partials?: Parameters<typeof transferService>[0]["partials"]) {
    const root = join(dir, name);
    await mkdir(root);
    const { target, port } = await h.server((s) => s.add(TransferService, transferService({ dir: root, ...(partials ? { partials } : {}) })));
    return { root, target, port, client: h.client(TransferService, target) };
  }

  test("a payload uploads in 4 parallel parts, is verified and then served; uploading it again sends nothing", async () => {
    const { root, client } = await served("four");
    const report = await uploadTransfer([client], "clip", payload, { parts: 4 });
    assert.ok(report.status.complete);
    assert.equal(report.sent, payload.byteLength);
    assert.equal(report.rounds, 1);
    assert.deepEqual(await readFile(join(root, "clip")), payload);
    assert.deepEqual(Buffer.from(report.status.sha256), sha256(payload));
    const again = await uploadTransfer([client], "clip", payload);
    assert.equal(again.sent, 0);
    assert.ok(again.status.complete);
  });

  test("a chunk damaged on its way to the server is named in the status and only it is sent again", async () => {
    const { port, root } = await served("damaged");
    const proxy = await startCorruptingProxy(port, { direction: "toServer" });
    try {
      const client = h.client(TransferService, `127.0.0.1:${proxy.port}`);
      proxy.corruptDataFrames([7]);
      const report = await uploadTransfer([client], "clip", payload, { parts: 2 });
      assert.equal(proxy.corrupted, 1);
      assert.ok(report.status.complete);
      assert.equal(report.rounds, 2);
      assert.equal(report.sent, payload.byteLength + CHUNK, "one chunk sent twice");
      assert.deepEqual(await readFile(join(root, "clip")), payload);
    } finally {
      await proxy.close();
    }
  });

  test("an interrupted upload is listed with its ranges, resumes with only the rest, and Abort discards one", async () => {
    const { client } = await served("resume");
    // One part of three, then the stream ends: the server keeps it as a partial upload.
    await client.upload(sendRange(payload, { offset: 0, length: 2 * MiB, sha256: sha256(payload), toMessage: (c) => ({ transferId: "clip", chunk: chunkToProto(c) }) }));
    const { status } = await client.getStatus({ transferId: "clip" });
    assert.equal(status?.complete, false);
    assert.equal(status?.offset, BigInt(2 * MiB));
    assert.deepEqual(rangesFromProto(status!.held), [[0, 2 * MiB]]);
    assert.ok(status!.expiresAtMs > BigInt(Date.now()));
    const listed = await client.listPartial({});
    assert.deepEqual(listed.partial.map((p) => p.transferId), ["clip"]);
    const report = await uploadTransfer([client], "clip", payload, { parts: 2 });
    assert.equal(report.sent, payload.byteLength - 2 * MiB);
    assert.ok(report.status.complete);
    assert.deepEqual((await client.listPartial({})).partial, []);

    await client.upload(sendRange(payload, { offset: 0, length: MiB, sha256: sha256(payload), toMessage: (c) => ({ transferId: "other", chunk: chunkToProto(c) }) }));
    await client.abort({ transferId: "other" });
    assert.equal((await client.getStatus({ transferId: "other" })).status?.offset, 0n);
    await assert.rejects(client.abort({ transferId: "other" }), rejectsWith(Code.NotFound));
  });

  test("an upload larger than the partial store's disk budget is refused before a byte is written", async () => {
    const { client } = await served("budget", { dir: join(dir, "budget-partials"), maxBytes: 2 * MiB });
    const err = await uploadTransfer([client], "big", payload, { attempts: 1 }).catch((e: unknown) => e);
    assert.ok(err instanceof RpcError && err.code === Code.ResourceExhausted, String(err));
    assert.match(err.message, /maxBytes/);
  });

  test("a sender whose final chunk states another SHA-256 has its upload discarded with DATA_LOSS", async () => {
    const { client } = await served("lying");
    const err = await client
      .upload(sendRange(payload, { sha256: Buffer.alloc(32, 7), toMessage: (c) => ({ transferId: "clip", chunk: chunkToProto(c) }) }))
      .catch((e: unknown) => e);
    assert.ok(err instanceof RpcError && err.code === Code.DataLoss, String(err));
    assert.equal((await client.getStatus({ transferId: "clip" })).status?.offset, 0n);
  });
});
