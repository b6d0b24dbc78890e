import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ByteRanges } from "../../src/transfer/byte-ranges.js";

describe("ByteRanges", () => {
  test("adjacent and overlapping ranges merge; disjoint ones stay apart, in order", () => {
    const r = new ByteRanges();
    r.add(10, 20);
    r.add(30, 40);
    r.add(20, 25); // touches [10, 20)
    assert.deepEqual(r.ranges(), [[10, 25], [30, 40]]);
    r.add(24, 31); // bridges both
    assert.deepEqual(r.ranges(), [[10, 40]]);
    r.add(0, 5);
    r.add(50, 60);
    assert.deepEqual(r.ranges(), [[0, 5], [10, 40], [50, 60]]);
    r.add(0, 100);
    assert.deepEqual(r.ranges(), [[0, 100]]);
    assert.equal(r.bytes, 100);
    assert.equal(r.prefix, 100);
  });

  test("has answers for whole ranges only; missing lists the gaps within a window", () => {
    const r = new ByteRanges([[0, 10], [20, 30]]);
    assert.ok(r.has(0, 10));
    assert.ok(r.has(22, 28));
    assert.ok(!r.has(5, 25));
    assert.ok(!r.has(30, 31));
    assert.ok(r.has(7, 7));
    assert.deepEqual(r.missing(0, 40), [[10, 20], [30, 40]]);
    assert.deepEqual(r.missing(5, 25), [[10, 20]]);
    assert.deepEqual(r.missing(0, 10), []);
    assert.deepEqual(new ByteRanges().missing(0, 5), [[0, 5]]);
    assert.equal(r.prefix, 10);
    assert.equal(new ByteRanges([[1, 2]]).prefix, 0);
  });

  test("ranges added in random order end up as the union, whatever the order", () => {
    const chunks = Array.from({ length: 200 }, (_, i) => [i * 10, i * 10 + 10] as const).sort(() => Math.random() - 0.5);
    const r = new ByteRanges();
    for (const [s, e] of chunks.slice(0, 150)) r.add(s, e);
    assert.equal(r.bytes, 1500);
    for (const [s, e] of chunks.slice(150)) r.add(s, e);
    assert.deepEqual(r.ranges(), [[0, 2000]]);
  });

  test("a bad range is a RangeError", () => {
    assert.throws(() => new ByteRanges().add(5, 4), RangeError);
    assert.throws(() => new ByteRanges().add(-1, 4), RangeError);
    assert.throws(() => new ByteRanges().add(0.5, 4), RangeError);
  });
});
