/**
 * The partial store on a real directory: one writer per id, expiry on a fake clock, the two disk
 * budgets, abort that cuts off a holder, ids from the network, and what a restart finds.
 */
import assert from "node:assert/strict";
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Code, RpcError } from "../../src/index.js";
import { createPartialStore, type PartialStoreOptions } from "../../src/transfer/partial-store.js";
import { fakeClock } from "../support/fake-clock.js";

const HOUR = 3600_000;

function rejectsWith(code: Code, message?: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof RpcError, `expected an RpcError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (message !== undefined) assert.match(e.message, message);
    return true;
  };
}

describe("partial store", () => {
  let root: string;
  let n = 0;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), "rill-partials-"));
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });
  const fresh = () => join(root, `s${++n}`);
  const make = (o: Partial<PartialStoreOptions> = {}) => createPartialStore({ dir: fresh(), sweepIntervalMs: 0, ...o });

  test("a partial reopened by a new store (a restart) has its state, bytes and sizes", async () => {
    const clock = fakeClock(1_000);
    const dir = fresh();
    const a = await createPartialStore({ dir, clock, sweepIntervalMs: 0 });
    const p = await a.open("upload-1", { totalSize: 10 });
    p.reserve(6);
    await writeFile(p.path, "abcdef");
    p.state = { held: [[0, 6]] };
    await p.release();
    a.close();

    clock.advance(5_000);
    const b = await createPartialStore({ dir, clock, sweepIntervalMs: 0 });
    assert.deepEqual(b.usage(), { transfers: 1, bytes: 6, maxBytes: 10 * 1024 ** 3 });
    const [info] = await b.list();
    assert.deepEqual(info, { id: "upload-1", bytes: 6, totalSize: 10, createdAt: 1_000, updatedAt: 1_000, expiresAt: 1_000 + 24 * HOUR });
    const q = await b.open("upload-1");
    assert.deepEqual(q.state, { held: [[0, 6]] });
    assert.equal(await readFile(q.path, "utf8"), "abcdef");
    b.close();
  });

  test("a partial not touched for maxAgeMs expires; one touched, or held by its writer, does not", async () => {
    const clock = fakeClock(0);
    const dir = fresh();
    const s = await createPartialStore({ dir, clock, maxAgeMs: HOUR, sweepIntervalMs: 0 });
    await (await s.open("idle")).release();
    const touched = await s.open("touched");
    await touched.release();
    const held = await s.open("held");

    clock.advance(HOUR - 1);
    const again = await s.open("touched");
    again.reserve(1); // activity moves its expiry
    await again.release();
    assert.deepEqual(await s.sweep(), []);

    clock.advance(1);
    assert.equal((await s.get("idle")) === undefined, true, "get() treats an expired partial as gone");
    assert.deepEqual(await s.sweep(), []);
    assert.deepEqual((await s.list()).map((p) => [p.id, p.expiresAt]), [
      ["held", 2 * HOUR],
      ["touched", 2 * HOUR - 1],
    ]);

    clock.advance(HOUR);
    assert.deepEqual(await s.sweep(), ["touched"]);
    held.reserve(1);
    await held.release();
    clock.advance(HOUR);
    assert.deepEqual(await s.sweep(), ["held"]);
    assert.deepEqual(await readdir(dir), [], "files of expired partials are deleted");
    assert.deepEqual(s.usage().transfers, 0);
    s.close();
  });

  test("an expired partial opened again starts empty", async () => {
    const clock = fakeClock(0);
    const s = await make({ clock, maxAgeMs: 1_000 });
    const p = await s.open("x", { totalSize: 3 });
    p.reserve(3);
    await writeFile(p.path, "old");
    p.state = "old";
    await p.release();
    clock.advance(1_000);
    const q = await s.open("x");
    assert.equal(q.state, undefined);
    assert.equal((await stat(q.path)).size, 0);
    assert.equal(s.usage().bytes, 0);
    s.close();
  });

  test("the sweep timer removes expired partials by itself", async () => {
    const clock = fakeClock(0);
    const s = await make({ clock, maxAgeMs: 10, sweepIntervalMs: 5 });
    await (await s.open("soon")).release();
    clock.advance(10);
    for (let i = 0; i < 200 && s.usage().transfers > 0; i++) await sleep(5);
    assert.equal(s.usage().transfers, 0);
    s.close();
  });

  test("reserve past maxTransferBytes or maxBytes is RESOURCE_EXHAUSTED naming the option, and accounts nothing", async () => {
    const s = await make({ maxBytes: 100, maxTransferBytes: 60 });
    const a = await s.open("a");
    a.reserve(50);
    assert.throws(() => a.reserve(11), rejectsWith(Code.ResourceExhausted, /maxTransferBytes \(60\)/));
    const b = await s.open("b");
    b.reserve(50);
    assert.throws(() => b.reserve(1), rejectsWith(Code.ResourceExhausted, /maxBytes \(100\).*abort some, or raise maxBytes/));
    assert.deepEqual(s.usage(), { transfers: 2, bytes: 100, maxBytes: 100 });
    await assert.rejects(s.open("c", { totalSize: 61 }), rejectsWith(Code.ResourceExhausted, /maxTransferBytes/));
    assert.equal(await s.abort("a"), true);
    b.reserve(10);
    assert.deepEqual(s.usage(), { transfers: 1, bytes: 60, maxBytes: 100 });
    s.close();
  });

  test("without maxTransferBytes, one transfer over the budget is refused naming maxBytes", async () => {
    const s = await make({ maxBytes: 1024 });
    await assert.rejects(s.open("big", { totalSize: 2048 }), rejectsWith(Code.ResourceExhausted, /maxBytes \(1024\)/));
    const p = await s.open("big");
    assert.throws(() => p.reserve(1025), rejectsWith(Code.ResourceExhausted, /maxBytes/));
    s.close();
  });

  test("a second writer of one id is ABORTED until the first releases it", async () => {
    const s = await make();
    const results = await Promise.allSettled([s.open("same"), s.open("same")]);
    assert.deepEqual(results.map((r) => r.status).sort(), ["fulfilled", "rejected"]);
    const rejected = results.find((r) => r.status === "rejected") as PromiseRejectedResult;
    rejectsWith(Code.Aborted, /being written by another stream/)(rejected.reason);
    const first = (results.find((r) => r.status === "fulfilled") as PromiseFulfilledResult<Awaited<ReturnType<typeof s.open>>>).value;
    assert.equal(await s.get("same"), first, "get() of a held partial is its holder's handle");
    first.state = 41;
    await first.release();
    const second = await s.open("same");
    assert.equal(second.state, 41);
    assert.throws(() => first.reserve(1), rejectsWith(Code.Aborted));
    s.close();
  });

  test("abort cuts off the holder: its saves and reservations fail and the files are gone", async () => {
    const s = await make();
    const p = await s.open("doomed");
    p.reserve(4);
    await writeFile(p.path, "data");
    assert.equal(await s.abort("doomed"), true);
    await assert.rejects(p.save(), rejectsWith(Code.Aborted));
    assert.throws(() => p.reserve(1), rejectsWith(Code.Aborted));
    await assert.rejects(p.complete(join(root, "never")), rejectsWith(Code.Aborted));
    await p.abort(); // a no-op now
    assert.equal(await s.abort("doomed"), false);
    assert.equal(await s.get("doomed"), undefined);
    assert.deepEqual(s.usage().bytes, 0);
    s.close();
  });

  test("a view from get() shows the saved state and can abort, but cannot write", async () => {
    const s = await make();
    const p = await s.open("v");
    p.state = { a: 1 };
    await p.release();
    const view = await s.get("v");
    assert.deepEqual(view?.state, { a: 1 });
    assert.throws(() => view!.reserve(1), rejectsWith(Code.FailedPrecondition, /open\(\) it/));
    await view!.abort();
    assert.equal(await s.get("v"), undefined);
    s.close();
  });

  test("complete moves the data to its final path and forgets the partial", async () => {
    const s = await make();
    const p = await s.open("done");
    p.reserve(5);
    await writeFile(p.path, "hello");
    const to = join(root, "final-file");
    await p.complete(to);
    assert.equal(await readFile(to, "utf8"), "hello");
    assert.deepEqual(await s.list(), []);
    assert.deepEqual(s.usage(), { transfers: 0, bytes: 0, maxBytes: 10 * 1024 ** 3 });
    assert.equal(await s.abort("done"), false);
    s.close();
  });

  test("ids that could leave the directory or are not plain names are INVALID_ARGUMENT", async () => {
    const s = await make();
    for (const id of ["", "../etc", "a/b", ".hidden", "..", "a\\b", "x".repeat(201), "nul\0", "sp ace"]) {
      await assert.rejects(s.open(id), rejectsWith(Code.InvalidArgument), JSON.stringify(id));
      await assert.rejects(s.get(id), rejectsWith(Code.InvalidArgument));
      await assert.rejects(s.abort(id), rejectsWith(Code.InvalidArgument));
    }
    await (await s.open("ok.id_-1")).release();
    assert.deepEqual((await s.list()).map((p) => p.id), ["ok.id_-1"]);
    s.close();
  });

  test("a restart cleans up after a crash: orphan data, unreadable sidecars and temp files go; a lost data file comes back empty", async () => {
    const dir = fresh();
    const a = await createPartialStore({ dir, sweepIntervalMs: 0 });
    const kept = await a.open("kept");
    kept.reserve(2); // accounted 2, but 5 bytes reached the disk before the crash
    await writeFile(kept.path, "12345");
    await kept.save();
    const lost = await a.open("lost");
    await lost.save();
    a.close();
    await rm(join(dir, "lost.part"));
    await writeFile(join(dir, "orphan.part"), "x");
    await writeFile(join(dir, "broken.json"), "{not json");
    await writeFile(join(dir, "broken.part"), "y");
    await writeFile(join(dir, "kept.json.tmp"), "half");

    const b = await createPartialStore({ dir, sweepIntervalMs: 0 });
    assert.deepEqual((await readdir(dir)).sort(), ["kept.json", "kept.part", "lost.json", "lost.part"]);
    assert.deepEqual((await b.list()).map((p) => [p.id, p.bytes]).sort(), [
      ["kept", 5],
      ["lost", 0],
    ]);
    assert.equal(b.usage().bytes, 5);
    b.close();
  });

  test("options are checked once, at creation", async () => {
    await assert.rejects(createPartialStore({ dir: "" }), TypeError);
    await assert.rejects(createPartialStore({ dir: fresh(), maxBytes: 0 }), /maxBytes must be positive/);
    await assert.rejects(createPartialStore({ dir: fresh(), maxAgeMs: -1 }), /maxAgeMs/);
    await assert.rejects(createPartialStore({ dir: fresh(), sweepIntervalMs: -5 }), /sweepIntervalMs/);
  });
});
