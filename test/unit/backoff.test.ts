import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ConnectionBackoff } from "../../src/channel/backoff.js";
import { fakeClock } from "../support/fake-clock.js";

describe("connection backoff (gRPC connection-backoff spec)", () => {
  test("uses the spec's defaults", () => {
    const b = new ConnectionBackoff();
    assert.deepEqual([b.initialMs, b.multiplier, b.jitter, b.maxMs, b.minConnectTimeoutMs], [1000, 1.6, 0.2, 120_000, 20_000]);
  });

  test("gives each attempt at least the minimum connect timeout", () => {
    const clock = fakeClock();
    const b = new ConnectionBackoff({ random: () => 0.5 }, clock);
    assert.equal(b.begin(), 20_000);
  });

  test("a fast failure waits until the first deadline, exactly INITIAL_BACKOFF after the start, with no jitter", () => {
    const clock = fakeClock(1000);
    const b = new ConnectionBackoff({ random: () => 0.99 }, clock);
    b.begin();
    clock.advance(100);
    assert.equal(b.fail(), 900);
  });

  test("grows by the multiplier up to the maximum, with jitter of ±20% from the random source", () => {
    const clock = fakeClock();
    // random() = 0.5 means zero jitter, so the sequence is exact.
    const b = new ConnectionBackoff({ random: () => 0.5 }, clock);
    const waits: number[] = [];
    for (let i = 0; i < 14; i++) {
      b.begin();
      const w = b.fail(); // fails instantly
      waits.push(Math.round(w));
      clock.advance(w);
    }
    const expected = [1000];
    let cur = 1000;
    for (let i = 1; i < 14; i++) {
      cur = Math.min(cur * 1.6, 120_000);
      expected.push(Math.round(cur));
    }
    assert.deepEqual(waits, expected);
    assert.equal(waits.at(-1), 120_000);
  });

  test("jitter stays within ±JITTER of the current backoff", () => {
    for (const r of [0, 0.25, 0.75, 0.999999]) {
      const clock = fakeClock();
      const b = new ConnectionBackoff({ random: () => r }, clock);
      b.begin();
      clock.advance(b.fail()); // 1000, then backoff becomes 1600 ± 320
      b.begin();
      const w = b.fail();
      assert.ok(w >= 1600 - 320 && w <= 1600 + 320, `wait ${w} for random ${r}`);
      assert.ok(Math.abs(w - (1600 + (r * 2 - 1) * 320)) < 1e-6);
    }
  });

  test("a slow failure (past the deadline) retries at once, and the next attempt gets the grown timeout", () => {
    const clock = fakeClock();
    const b = new ConnectionBackoff({ random: () => 0.5, minConnectTimeoutMs: 100 }, clock);
    assert.equal(b.begin(), 1000);
    clock.advance(5000);
    assert.equal(b.fail(), 0);
    assert.equal(b.begin(), 1600);
  });

  test("reset starts over at the initial backoff", () => {
    const clock = fakeClock();
    const b = new ConnectionBackoff({ random: () => 0.5 }, clock);
    for (let i = 0; i < 5; i++) {
      b.begin();
      clock.advance(b.fail());
    }
    b.reset();
    b.begin();
    assert.equal(Math.round(b.fail()), 1000);
  });

  test("rejects nonsense options", () => {
    assert.throws(() => new ConnectionBackoff({ multiplier: 0.5 }), /multiplier/);
    assert.throws(() => new ConnectionBackoff({ jitter: 1.5 }), /jitter/);
  });
});
