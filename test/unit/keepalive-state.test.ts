import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { KeepaliveState } from "../../src/channel/keepalive.js";

describe("the channel's keepalive state", () => {
  test("defaults: off (Infinity), 20 s timeout, no pings without calls", () => {
    const k = new KeepaliveState();
    assert.deepEqual([k.timeMs, k.timeoutMs, k.permitWithoutCalls], [Number.POSITIVE_INFINITY, 20_000, false]);
  });

  test("each too_many_pings doubles the interval, up to setTimeout's limit, where it stays", () => {
    const k = new KeepaliveState({ timeMs: 25 });
    const seen: number[] = [];
    for (let i = 0; i < 3; i++) {
      k.tooManyPings();
      seen.push(k.timeMs);
    }
    assert.deepEqual(seen, [50, 100, 200]);
    const big = new KeepaliveState({ timeMs: 2 ** 30 + 1 });
    big.tooManyPings();
    assert.equal(big.timeMs, 2 ** 31 - 1);
    big.tooManyPings();
    assert.equal(big.timeMs, 2 ** 31 - 1);
  });

  test("keepalive off stays off when a server complains anyway", () => {
    const k = new KeepaliveState();
    k.tooManyPings();
    assert.equal(k.timeMs, Number.POSITIVE_INFINITY);
  });

  test("a zero or negative time or timeout is refused", () => {
    assert.throws(() => new KeepaliveState({ timeMs: 0 }), /must be positive/);
    assert.throws(() => new KeepaliveState({ timeoutMs: -1 }), /must be positive/);
  });
});
