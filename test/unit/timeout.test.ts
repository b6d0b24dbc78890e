import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { Code, formatTimeout, parseTimeout } from "../../src/protocol/index.js";
import { RpcError } from "../../src/protocol/errors.js";

describe("parseTimeout", () => {
  const valid: Array<[string, number]> = [
    ["1H", 3_600_000],
    ["2M", 120_000],
    ["3S", 3_000],
    ["4m", 4],
    ["5000u", 5],
    ["6000000n", 6],
    ["1u", 0.001],
    ["1n", 0.000001],
    ["0S", 0],
    ["0n", 0],
    ["00000001m", 1],
    ["99999999n", 99.999999],
    ["99999999u", 99_999.999],
    ["99999999m", 99_999_999],
    ["99999999S", 99_999_999_000],
    ["99999999M", 5_999_999_940_000],
    ["99999999H", 359_999_996_400_000],
  ];
  for (const [value, ms] of valid) {
    test(`reads ${value} as ${ms} ms`, () => {
      assert.equal(parseTimeout(value), ms);
    });
  }

  const invalid = [
    "",
    "S",
    "1",
    "100000000S", // 9 digits
    "123456789m",
    "-1S",
    "+1S",
    "1.5S",
    " 1S",
    "1S ",
    "1 S",
    "1s", // units are case-sensitive: "s" is not a unit
    "1h",
    "1x",
    "1SS",
    "1e3m",
    "0x10m",
    "１S", // a full-width digit
    "1\nS",
  ];
  for (const value of invalid) {
    test(`rejects ${JSON.stringify(value)} with INTERNAL`, () => {
      assert.throws(
        () => parseTimeout(value),
        (e: unknown) => e instanceof RpcError && e.code === Code.Internal && e.rawMessage === `malformed grpc-timeout "${value}"`,
      );
    });
  }
});

describe("formatTimeout", () => {
  const cases: Array<[number, string]> = [
    [0.000001, "1n"],
    [1, "1000000n"],
    [99.999999, "99999999n"],
    [100, "100000u"],
    [99_999.999, "99999999u"],
    [100_000, "100000m"],
    [99_999_999, "99999999m"],
    [100_000_000, "100000S"],
    [99_999_999_000, "99999999S"],
    [100_000_000_000, "1666667M"],
    [5_999_999_940_000, "99999999M"],
    [6_000_000_000_000, "1666667H"],
    [359_999_996_400_000, "99999999H"],
  ];
  for (const [ms, value] of cases) {
    test(`writes ${ms} ms as ${value}, the finest unit that fits in 8 digits`, () => {
      assert.equal(formatTimeout(ms), value);
    });
  }

  test("rounds up rather than shortening the deadline", () => {
    assert.equal(formatTimeout(0.0000001), "1n");
    assert.equal(formatTimeout(100.0000001), "100001u");
    assert.equal(formatTimeout(99_999_999.5), "100000S");
    assert.equal(formatTimeout(100_000_000_001), "1666667M");
  });

  test("writes an expired deadline as 1n", () => {
    for (const ms of [0, -0, -1, -1e12, Number.NEGATIVE_INFINITY, Number.NaN]) assert.equal(formatTimeout(ms), "1n");
  });

  test("clamps durations beyond 99999999H", () => {
    assert.equal(formatTimeout(359_999_996_400_001), "99999999H");
    assert.equal(formatTimeout(Number.MAX_VALUE), "99999999H");
    assert.equal(formatTimeout(Number.POSITIVE_INFINITY), "99999999H");
  });

  test("round-trips without ever shortening: parse(format(ms)) >= ms", () => {
    const samples = [1e-7, 1e-6, 0.1, 0.3, 1 / 3, 1.5, 7, 99.9999995, 1234.5678, 86_400_000, 2 ** 31, 1e14, 359_999_996_399_999.9];
    let seed = 42;
    for (let i = 0; i < 5000; i++) {
      seed = (Math.imul(seed, 1_103_515_245) + 12_345) >>> 0;
      samples.push((seed / 2 ** 32) * 10 ** ((i % 18) - 3));
    }
    for (const ms of samples) {
      const value = formatTimeout(ms);
      assert.match(value, /^[0-9]{1,8}[HMSmun]$/);
      assert.ok(parseTimeout(value) >= ms, `${ms} → ${value} → ${parseTimeout(value)}`);
    }
  });

  test("re-encodes a parsed value to the same duration, in the finest unit", () => {
    const table: Array<[string, string]> = [
      ["1n", "1n"],
      ["12345678n", "12345678n"],
      ["1u", "1000n"],
      ["7m", "7000000n"],
      ["30S", "30000000u"],
      ["59M", "3540000m"],
      ["24H", "86400000m"],
      ["99999999H", "99999999H"],
    ];
    for (const [value, finest] of table) {
      assert.equal(formatTimeout(parseTimeout(value)), finest);
      assert.equal(parseTimeout(finest), parseTimeout(value));
    }
  });
});
