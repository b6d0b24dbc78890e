import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { MessageQueue, defaultTurnBudget, type TurnBudget } from "../../src/stream/message-queue.js";
import type { Frame } from "../../src/protocol/frame.js";
import { createPushable } from "../../src/stream/pushable.js";
import { parseTarget } from "../../src/channel/target.js";

const frame = (n: number, size = 10): Frame => ({ compressed: false, data: new Uint8Array(size).fill(n) });

function queue(highWaterMark = 100, budget?: TurnBudget) {
  const log: string[] = [];
  const q = new MessageQueue<number>(
    (f) => {
      if (f.data[0] === 255) throw new Error("bad");
      return f.data[0]!;
    },
    { pause: () => log.push("pause"), resume: () => log.push("resume"), abandon: () => log.push("abandon") },
    highWaterMark,
    budget,
  );
  return { q, log };
}

/** A turn budget on a clock the test moves: `clock.ms` is what the reader has spent. */
function budgetOn(clock: { ms: number }, ms = defaultTurnBudget.ms): TurnBudget {
  return { ms, fromBytes: defaultTurnBudget.fromBytes, now: () => clock.ms };
}

/** Reads `q` to the end; `work(i)` runs per message. Returns the messages and how many had been read at each macrotask turn. */
async function readTurns(q: MessageQueue<number>, count: number, work: (i: number) => void = () => {}) {
  let read = 0;
  const readAtTurns: number[] = [];
  const tick = (): void => {
    readAtTurns.push(read);
    if (read < count) setImmediate(tick);
  };
  setImmediate(tick);
  const got: number[] = [];
  for await (const v of q) {
    work(read);
    got.push(v);
    read++;
  }
  return { got, readAtTurns };
}

describe("MessageQueue", () => {
  test("delivers queued messages in order, then done after end", async () => {
    const { q } = queue();
    q.push(frame(1));
    q.push(frame(2));
    q.end();
    const got: number[] = [];
    for await (const v of q) got.push(v);
    assert.deepEqual(got, [1, 2]);
  });

  test("wakes a waiting reader when a message arrives", async () => {
    const { q } = queue();
    const next = q.next();
    q.push(frame(7));
    assert.deepEqual(await next, { value: 7, done: false });
  });

  test("pauses the source above the high-water mark and resumes once drained to half", async () => {
    const { q, log } = queue(25);
    q.push(frame(1));
    q.push(frame(2));
    assert.deepEqual(log, []);
    q.push(frame(3));
    assert.deepEqual(log, ["pause"]);
    await q.next();
    assert.deepEqual(log, ["pause"]);
    await q.next();
    assert.deepEqual(log, ["pause", "resume"]);
  });

  test("a failure arrives after the messages queued before it, or at once when immediate", async () => {
    const a = queue().q;
    a.push(frame(1));
    a.fail(new Error("late"));
    assert.equal((await a.next()).value, 1);
    await assert.rejects(a.next(), /late/);
    const b = queue().q;
    b.push(frame(1));
    b.fail(new Error("now"), true);
    await assert.rejects(b.next(), /now/);
  });

  test("a decode error surfaces in order and ends the queue", async () => {
    const { q } = queue();
    q.push(frame(1));
    q.push(frame(255));
    q.push(frame(3));
    assert.equal((await q.next()).value, 1);
    await assert.rejects(q.next(), /bad/);
    await assert.rejects(q.next(), /bad/);
  });

  test("leaving early tells the source to abandon, once", async () => {
    const { q, log } = queue();
    q.push(frame(1));
    for await (const _ of q) break;
    await q.return();
    assert.deepEqual(log, ["abandon"]);
    assert.equal((await q.next()).done, true);
  });

  // A transfer's reader hashes each 64 KiB chunk; without a budget it drained everything queued
  // in one run of promise continuations, and node's socket reads (another stream's ping) waited.
  test("a reader busy with large messages lets the event loop turn once its budget is spent", async () => {
    const clock = { ms: 0 };
    const { q } = queue(64 * 1024 * 1024, budgetOn(clock));
    const chunk = 64 * 1024;
    const count = 32;
    for (let i = 0; i < count; i++) q.push(frame(i % 200, chunk));
    q.end();
    // Each message costs the reader 0.1 ms of (fake) time: three fill the 0.25 ms budget.
    const { got, readAtTurns } = await readTurns(q, count, () => (clock.ms += 0.1));
    assert.deepEqual(got, Array.from({ length: count }, (_, i) => i % 200), "every message, in order");
    assert.ok(readAtTurns[0]! < count, `a macrotask ran before the reader took all ${count} messages (at ${readAtTurns[0]})`);
    const perTurn = readAtTurns.map((n, i) => n - (readAtTurns[i - 1] ?? 0));
    assert.ok(Math.max(...perTurn) <= 3, `three messages' work per turn at most: ${perTurn.join(",")}`);
  });

  test("a reader that keeps up with large messages is not held back", async () => {
    const clock = { ms: 0 };
    const { q } = queue(64 * 1024 * 1024, budgetOn(clock));
    for (let i = 0; i < 16; i++) q.push(frame(i, 1024 * 1024));
    q.end();
    const { got, readAtTurns } = await readTurns(q, 16);
    assert.equal(got.length, 16);
    assert.deepEqual(readAtTurns, [], "16 MiB taken before any macrotask ran, by a reader that spent no time on them");
  });

  test("small messages are handed over without waiting for a turn", async () => {
    const { q } = queue(1024 * 1024);
    for (let i = 0; i < 2000; i++) q.push(frame(i % 200, 64));
    q.end();
    let turned = false;
    setImmediate(() => (turned = true));
    let n = 0;
    for await (const _ of q) n++;
    assert.equal(n, 2000);
    assert.equal(turned, false, "2000 × 64 B is under the budget: no deferral");
  });

  test("a message deferred to the next turn still ends, fails and returns like any other", async () => {
    const big = defaultTurnBudget.fromBytes;
    // A zero time allowance: one timed message per turn.
    const onePerTurn = budgetOn({ ms: 0 }, 0);
    const ended = queue(64 * 1024 * 1024, onePerTurn).q;
    for (let i = 0; i < 4; i++) ended.push(frame(i, big));
    ended.end();
    const got: number[] = [];
    for await (const v of ended) got.push(v);
    assert.deepEqual(got, [0, 1, 2, 3]);

    const failed = queue(64 * 1024 * 1024, onePerTurn).q;
    for (let i = 0; i < 4; i++) failed.push(frame(i, big));
    assert.equal((await failed.next()).value, 0);
    assert.equal((await failed.next()).value, 1);
    const deferred = failed.next();
    failed.fail(new Error("gone"), true);
    await assert.rejects(deferred, /gone/);

    const left = queue(64 * 1024 * 1024, onePerTurn).q;
    for (let i = 0; i < 4; i++) left.push(frame(i, big));
    await left.next();
    await left.next();
    const pending = left.next();
    await left.return();
    assert.deepEqual(await pending, { value: undefined, done: true });
  });

  // A peer that keeps sending to a reader whose messages are deferred must still be stopped:
  // deferred messages are queued bytes like any other.
  test("messages deferred to the next turn count against the high-water mark", async () => {
    const big = defaultTurnBudget.fromBytes * 4;
    const { q, log } = queue(big + big / 2, budgetOn({ ms: 0 }, 0));
    q.push(frame(1, big));
    assert.equal((await q.next()).value, 1);
    const waiting = q.next();
    q.push(frame(2, big));
    assert.deepEqual(log, [], "one deferred message is under the mark");
    q.push(frame(3, big));
    assert.deepEqual(log, ["pause"], "two deferred messages are over it: the source stops");
    assert.deepEqual(await waiting, { value: 2, done: false });
    assert.deepEqual(await q.next(), { value: 3, done: false });
    assert.deepEqual(log, ["pause", "resume"]);
  });

  test("a waiting reader gets a message pushed after its budget is spent in the next turn, not lost", async () => {
    const { q } = queue(64 * 1024 * 1024, budgetOn({ ms: 0 }, 0));
    const big = defaultTurnBudget.fromBytes;
    q.push(frame(1, big));
    q.push(frame(2, big));
    assert.equal((await q.next()).value, 1);
    assert.equal((await q.next()).value, 2);
    const waiting = q.next();
    q.push(frame(3, big));
    q.push(frame(4, big));
    q.end();
    assert.deepEqual(await waiting, { value: 3, done: false });
    assert.deepEqual(await q.next(), { value: 4, done: false });
    assert.deepEqual(await q.next(), { value: undefined, done: true });
  });
});

describe("Pushable", () => {
  test("many concurrent producers keep each producer's order and every value whole", async () => {
    const p = createPushable<{ producer: number; seq: number; body: string }>({ highWaterMark: 4 });
    const producers = Array.from({ length: 8 }, async (_, producer) => {
      for (let seq = 0; seq < 200; seq++) await p.push({ producer, seq, body: `${producer}:${seq}`.repeat(10) });
    });
    void Promise.all(producers).then(() => p.end());
    const last = new Map<number, number>();
    let count = 0;
    for await (const v of p) {
      assert.equal(v.body, `${v.producer}:${v.seq}`.repeat(10));
      assert.equal(v.seq, (last.get(v.producer) ?? -1) + 1);
      last.set(v.producer, v.seq);
      count++;
    }
    assert.equal(count, 1600);
  });

  test("tryPush refuses when full and writable() resolves when there is room", async () => {
    const p = createPushable<number>({ highWaterMark: 2 });
    assert.equal(p.tryPush(1), true);
    assert.equal(p.tryPush(2), true);
    assert.equal(p.tryPush(3), false);
    let room = false;
    const w = p.writable().then(() => (room = true));
    await Promise.resolve();
    assert.equal(room, false);
    const it = p[Symbol.asyncIterator]();
    assert.equal((await it.next()).value, 1);
    await w;
    assert.equal(p.tryPush(3), true);
  });

  test("push rejects after the reader leaves, so producers stop", async () => {
    const p = createPushable<number>({ highWaterMark: 1 });
    const it = p[Symbol.asyncIterator]();
    await p.push(1);
    const blocked = p.push(2);
    await it.return!();
    await assert.rejects(blocked, /ended/);
    await assert.rejects(p.push(3), /ended/);
  });
});

describe("parseTarget", () => {
  const cases: Array<[string, string, number]> = [
    ["localhost:50051", "localhost", 50051],
    ["127.0.0.1:1", "127.0.0.1", 1],
    ["[::1]:8080", "::1", 8080],
    ["dns:///example.com:443", "example.com", 443],
    ["example.com", "example.com", 80],
  ];
  for (const [input, host, port] of cases) {
    test(`parses ${input}`, () => {
      const t = parseTarget(input);
      assert.equal(t.host, host);
      assert.equal(t.port, port);
    });
  }
  test("rejects garbage with a message naming the accepted forms", () => {
    assert.throws(() => parseTarget("a b c"), /host:port/);
    assert.throws(() => parseTarget("host:99999"), /port/);
  });
});
