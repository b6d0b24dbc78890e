import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { JsonObjectSplitter, splitJsonObjects } from "../../src/cli/json-stream.js";
import { latencyStats } from "../../src/cli/latency-stats.js";
import { CliError } from "../../src/cli/output.js";
import { parseDuration } from "../../src/cli/options.js";

describe("JSON object splitter", () => {
  test("yields each object as its closing brace arrives, across chunks, lines and commas", () => {
    const s = new JsonObjectSplitter();
    assert.deepEqual(s.push('{"a":'), []);
    assert.deepEqual(s.push('1}\n{"b":"}{\\"'), ['{"a":1}']);
    assert.deepEqual(s.push('x"}, {"c":[{"d":2}]} '), ['{"b":"}{\\"x"}', '{"c":[{"d":2}]}']);
    s.end();
  });

  test("rejects text between objects and an unfinished object at the end", () => {
    assert.throws(() => splitJsonObjects('{"a":1} nope'), (e: unknown) => e instanceof CliError && /expected a JSON object at input offset 8/.test(e.message));
    assert.throws(() => splitJsonObjects('{"a":{'), (e: unknown) => e instanceof CliError && /ended inside a JSON object/.test(e.message));
  });
});

describe("latency statistics", () => {
  test("percentiles by nearest rank, extremes, mean, and a histogram that counts every call", () => {
    const values = Array.from({ length: 100 }, (_, i) => i + 1);
    const s = latencyStats(values);
    assert.equal(s.fastestMs, 1);
    assert.equal(s.slowestMs, 100);
    assert.equal(s.averageMs, 50.5);
    assert.deepEqual(s.percentiles.map((p) => p.latencyMs), [10, 25, 50, 75, 90, 95, 99, 100]);
    assert.equal(s.histogram.reduce((a, b) => a + b.count, 0), 100);
  });

  test("equal latencies fall in one bucket; no latencies give zeros", () => {
    assert.deepEqual(latencyStats([3, 3, 3]).histogram, [{ markMs: 3, count: 3, frequency: 1 }]);
    assert.equal(latencyStats([]).count, 0);
  });
});

describe("durations", () => {
  test("accepts ms, s, m, h and bare seconds; refuses anything else", () => {
    assert.deepEqual(["500ms", "10s", "2m", "1h", "1.5"].map((t) => parseDuration(t, "--timeout")), [500, 10_000, 120_000, 3_600_000, 1500]);
    assert.throws(() => parseDuration("soon", "--timeout"), /--timeout takes a duration/);
  });
});
