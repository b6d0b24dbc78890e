import assert from "node:assert/strict";
import { describe, it, mock } from "node:test";
import { maxTimerDelayMs, startTimer } from "../../src/timer.js";

describe("long timers", () => {
  it("a delay past setTimeout's 2^31−1 ms limit fires at its time, not at once", () => {
    mock.timers.enable({ apis: ["setTimeout"] });
    try {
      let fired = false;
      const day = 24 * 60 * 60 * 1000;
      startTimer(25 * day, () => (fired = true));
      mock.timers.tick(1);
      assert.equal(fired, false);
      mock.timers.tick(maxTimerDelayMs);
      assert.equal(fired, false, "fired at the first link of the chain");
      mock.timers.tick(25 * day - maxTimerDelayMs - 10);
      assert.equal(fired, false);
      mock.timers.tick(10);
      assert.equal(fired, true);
    } finally {
      mock.timers.reset();
    }
  });

  it("cancel stops a chained timer, and Infinity never fires", () => {
    mock.timers.enable({ apis: ["setTimeout"] });
    try {
      let fired = 0;
      const t = startTimer(3 * maxTimerDelayMs, () => fired++);
      mock.timers.tick(maxTimerDelayMs + 5);
      t.cancel();
      mock.timers.tick(3 * maxTimerDelayMs);
      startTimer(Number.POSITIVE_INFINITY, () => fired++);
      mock.timers.tick(10 * maxTimerDelayMs);
      assert.equal(fired, 0);
    } finally {
      mock.timers.reset();
    }
  });
});
