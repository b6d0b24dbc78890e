import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { formatProgress } from "../../examples/alexandria/progress-bar.js";

describe("alexandria progress bar", () => {
  test("draws the share done, the bytes and the rate when the total is known", () => {
    const line = formatProgress("lend a.bin", { bytes: 5e6, transferred: 5e6, total: 20e6, bytesPerSecond: 12.34e6, done: false }, 8);
    assert.equal(line, "lend a.bin [##------] 25% 5.0/20.0 MB 12.3 MB/s");
  });

  test("shows bytes and rate alone when the total is unknown", () => {
    const line = formatProgress("fetch", { bytes: 1.5e6, transferred: 1.5e6, total: undefined, bytesPerSecond: 0, done: false });
    assert.equal(line, "fetch 1.5 MB 0.0 MB/s");
  });
});
