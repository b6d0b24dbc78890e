import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  isReservedHeader,
  Metadata,
  MetadataError,
  metadataFromHeaders,
  metadataToHeaders,
  parseMetadataStrict,
} from "../../src/protocol/index.js";

const bytes = (...values: number[]) => new Uint8Array(values);

function throwsMetadataError(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof MetadataError, `expected MetadataError, got ${String(e)}`);
    assert.match(e.message, pattern);
    return true;
  });
}

describe("Metadata", () => {
  test("stores several values per key and returns the first from get", () => {
    const md = new Metadata().append("x-a", "1").append("x-a", "2");
    assert.equal(md.get("x-a"), "1");
    assert.deepEqual(md.getAll("x-a"), ["1", "2"]);
    assert.equal(md.size, 2);
  });

  test("set replaces every value of a key", () => {
    const md = new Metadata({ "x-a": ["1", "2"], "x-b": "3" });
    md.set("x-a", "9");
    assert.deepEqual(md.getAll("x-a"), ["9"]);
    assert.equal(md.size, 2);
  });

  test("lower-cases keys on every method", () => {
    const md = new Metadata({ "X-Trace-ID": "abc" });
    assert.deepEqual([...md.keys()], ["x-trace-id"]);
    assert.equal(md.get("X-TRACE-ID"), "abc");
    assert.equal(md.has("x-Trace-id"), true);
    assert.equal(md.delete("X-trace-ID"), true);
    assert.equal(md.size, 0);
  });

  test("returns undefined and an empty array for a missing key", () => {
    const md = new Metadata();
    assert.equal(md.get("nope"), undefined);
    assert.deepEqual(md.getAll("nope"), []);
    assert.equal(md.has("nope"), false);
    assert.equal(md.delete("nope"), false);
  });

  test("getAll returns a copy the caller may change", () => {
    const md = new Metadata({ "x-a": "1" });
    md.getAll("x-a").push("2");
    assert.deepEqual(md.getAll("x-a"), ["1"]);
  });

  test("iterates pairs grouped by key, keys in first-insertion order", () => {
    const md = new Metadata().append("b", "1").append("a", "2").append("b", "3");
    assert.deepEqual([...md], [["b", "1"], ["b", "3"], ["a", "2"]]);
    assert.deepEqual([...md.keys()], ["b", "a"]);
  });

  test("builds from a record, an iterable of pairs, or another Metadata", () => {
    const bin = bytes(1, 2);
    const fromRecord = new Metadata({ "x-a": "1", "x-b": ["2", "3"], "x-c-bin": bin });
    const fromPairs = new Metadata([["x-a", "1"], ["x-b", "2"], ["x-b", "3"], ["x-c-bin", bin]]);
    const fromMap = new Metadata(new Map<string, string | Uint8Array>([["x-a", "1"]]));
    assert.deepEqual([...fromRecord], [...fromPairs]);
    assert.deepEqual([...new Metadata(fromRecord)], [...fromRecord]);
    assert.deepEqual([...fromMap], [["x-a", "1"]]);
    assert.equal(new Metadata({ "x-empty": [] }).size, 0);
  });

  test("clone is independent of the original", () => {
    const md = new Metadata({ "x-a": "1" });
    const copy = md.clone();
    copy.append("x-a", "2").set("x-b", "3");
    assert.deepEqual(md.getAll("x-a"), ["1"]);
    assert.equal(md.has("x-b"), false);
    assert.equal(copy.size, 3);
  });

  test("merge appends rather than replaces", () => {
    const md = new Metadata({ "x-a": "1" }).merge({ "x-a": "2", "x-b": "3" }).merge(new Metadata({ "x-a": "4" }));
    assert.deepEqual(md.getAll("x-a"), ["1", "2", "4"]);
    assert.equal(md.size, 4);
  });

  test("merging into itself doubles each value once", () => {
    const md = new Metadata({ "x-a": ["1", "2"] });
    md.merge(md);
    assert.deepEqual(md.getAll("x-a"), ["1", "2", "1", "2"]);
  });

  test("toJSON gives strings, arrays for repeated keys, and padded base64 for binary values", () => {
    const md = new Metadata({ "x-a": "1", "x-b": ["2", "3"], "x-c-bin": bytes(0xfb, 0xff) });
    assert.deepEqual(md.toJSON(), { "x-a": "1", "x-b": ["2", "3"], "x-c-bin": "+/8=" });
    assert.equal(JSON.stringify(new Metadata()), "{}");
  });

  test("accepts an empty string and every printable ASCII character", () => {
    let all = "";
    for (let c = 0x20; c <= 0x7e; c++) all += String.fromCharCode(c);
    const md = new Metadata({ "x-empty": "", "x-all": all });
    assert.equal(md.get("x-empty"), "");
    assert.equal(md.get("x-all"), all);
  });

  test("keeps user-agent and grpc-status-details-bin, which belong to the application", () => {
    const md = new Metadata({ "user-agent": "me/1.0", "grpc-status-details-bin": bytes(8) });
    assert.equal(md.size, 2);
  });

  describe("rejects with a MetadataError that says what to do", () => {
    const cases: Array<[string, () => unknown, RegExp]> = [
      ["an empty key", () => new Metadata({ "": "x" }), /must not be empty/],
      ["a key with a space", () => new Metadata().set("X a", "x"), /metadata key "X a" is invalid: keys may contain only 0-9 a-z _ \. -/],
      ["a key with a colon", () => new Metadata().append("a:b", "x"), /keys may contain only/],
      ["a key with non-ASCII", () => new Metadata().set("ключ", "x"), /keys may contain only/],
      ["a pseudo-header", () => new Metadata().set(":path", "/x"), /reserved/],
      ["grpc-timeout", () => new Metadata().set("grpc-timeout", "1S"), /"grpc-timeout" is reserved/],
      ["any grpc- key", () => new Metadata().set("grpc-custom", "1"), /reserved/],
      ["content-type", () => new Metadata().set("Content-Type", "text/plain"), /"Content-Type" is reserved/],
      ["te", () => new Metadata({ te: "trailers" }), /reserved/],
      ["connection", () => new Metadata([["connection", "close"]]), /reserved/],
      ["a string for a -bin key", () => new Metadata().set("x-bin", "AQI"), /ends in "-bin" and needs a Uint8Array value, got a string/],
      ["bytes for a text key", () => new Metadata().set("x-a", bytes(1)), /needs a string value, got a Uint8Array: binary values need a key ending in "-bin"/],
      ["a newline in a text value", () => new Metadata().set("x-a", "a\nb"), /printable ASCII.*0x0a at index 1/],
      ["a DEL in a text value", () => new Metadata().set("x-a", "\x7f"), /0x7f/],
      ["non-ASCII in a text value", () => new Metadata().set("x-a", "é"), /use a "-bin" key/],
      ["a non-string key from untyped code", () => new Metadata([[42 as unknown as string, "x"]]), /keys must be strings/],
      ["a number from untyped code", () => new Metadata().set("x-a", 42 as unknown as string), /got number/],
    ];
    for (const [what, fn, pattern] of cases) {
      test(what, () => throwsMetadataError(fn, pattern));
    }

    test("and reports the key as given", () => {
      assert.throws(() => new Metadata().set("Bad Key", "x"), (e: unknown) => e instanceof MetadataError && e.key === "Bad Key");
    });
  });
});

describe("isReservedHeader", () => {
  const table: Array<[string, boolean]> = [
    [":path", true],
    [":authority", true],
    [":status", true],
    ["content-type", true],
    ["te", true],
    ["host", true],
    ["connection", true],
    ["transfer-encoding", true],
    ["upgrade", true],
    ["keep-alive", true],
    ["proxy-connection", true],
    ["grpc-timeout", true],
    ["grpc-encoding", true],
    ["grpc-accept-encoding", true],
    ["grpc-status", true],
    ["grpc-message", true],
    ["grpc-previous-rpc-attempts", true],
    ["grpc-retry-pushback-ms", true],
    ["grpc-status-details-bin", false],
    ["user-agent", false],
    ["authorization", false],
    ["x-grpc-thing", false],
    ["tea", false],
  ];
  for (const [key, reserved] of table) {
    test(`${reserved ? "reserves" : "allows"} ${key}`, () => assert.equal(isReservedHeader(key), reserved));
  }
});

describe("metadataToHeaders", () => {
  test("sends binary values as base64 without padding", () => {
    const headers = metadataToHeaders(new Metadata({ "a-bin": bytes(1), "b-bin": bytes(1, 2), "c-bin": bytes(1, 2, 3) }));
    assert.deepEqual(headers, { "a-bin": "AQ", "b-bin": "AQI", "c-bin": "AQID" });
  });

  test("uses the standard alphabet", () => {
    assert.deepEqual(metadataToHeaders(new Metadata({ "x-bin": bytes(0xfb, 0xff, 0xbf) })), { "x-bin": "+/+/" });
  });

  test("sends an empty binary value as an empty string", () => {
    assert.deepEqual(metadataToHeaders(new Metadata({ "x-bin": new Uint8Array(0) })), { "x-bin": "" });
  });

  test("encodes a view into a larger buffer by its own bytes only", () => {
    const backing = bytes(0, 1, 2, 3, 0);
    assert.deepEqual(metadataToHeaders(new Metadata({ "x-bin": backing.subarray(1, 4) })), { "x-bin": "AQID" });
  });

  test("sends repeated values as an array", () => {
    assert.deepEqual(metadataToHeaders(new Metadata({ "x-a": ["1", "2"], "x-b": "3" })), { "x-a": ["1", "2"], "x-b": "3" });
  });

  test("round-trips through metadataFromHeaders", () => {
    const md = new Metadata({ "x-a": ["1", "two, with comma"], "x-b-bin": [bytes(0xfb, 0xff), bytes(), bytes(1, 2, 3)] });
    assert.deepEqual([...metadataFromHeaders(metadataToHeaders(md))], [...md]);
  });
});

describe("metadataFromHeaders", () => {
  const binCases: Array<[string, string, number[][]]> = [
    ["unpadded", "AQI", [[1, 2]]],
    ["padded", "AQI=", [[1, 2]]],
    ["double-padded", "AQ==", [[1]]],
    ["unpadded one byte", "AQ", [[1]]],
    ["empty", "", [[]]],
    ["standard alphabet", "+/8", [[0xfb, 0xff]]],
    ["url-safe alphabet", "-_8", [[0xfb, 0xff]]],
    ["comma-joined by node:http2", "AQ, AgM=, -_8", [[1], [2, 3], [0xfb, 0xff]]],
    ["comma-joined without spaces", "AQ,Ag", [[1], [2]]],
  ];
  for (const [what, value, expected] of binCases) {
    test(`decodes a -bin value that is ${what}`, () => {
      const md = metadataFromHeaders({ "x-bin": value });
      assert.deepEqual(md.getAll("x-bin").map((v) => [...(v as Uint8Array)]), expected);
    });
  }

  test("returns decoded bytes as plain Uint8Arrays", () => {
    const value = metadataFromHeaders({ "x-bin": "AQI" }).get("x-bin");
    assert.deepEqual(value, bytes(1, 2));
  });

  test("decodes an array of -bin values", () => {
    const md = metadataFromHeaders({ "x-bin": ["AQ", "Ag, Aw"] });
    assert.deepEqual(md.getAll("x-bin").map((v) => [...(v as Uint8Array)]), [[1], [2], [3]]);
  });

  test("leaves comma-joined text values joined", () => {
    assert.deepEqual(metadataFromHeaders({ "x-a": "1, 2" }).getAll("x-a"), ["1, 2"]);
    assert.deepEqual(metadataFromHeaders({ "x-a": ["1", "2"] }).getAll("x-a"), ["1", "2"]);
  });

  test("filters reserved headers and keeps user-agent and grpc-status-details-bin", () => {
    const md = metadataFromHeaders({
      ":method": "POST",
      ":path": "/a.B/C",
      ":authority": "localhost",
      ":scheme": "http",
      ":status": 200,
      "content-type": "application/grpc",
      te: "trailers",
      host: "localhost",
      "grpc-timeout": "1S",
      "grpc-encoding": "gzip",
      "grpc-accept-encoding": "gzip,identity",
      "grpc-status": "0",
      "grpc-message": "ok",
      "grpc-previous-rpc-attempts": "1",
      "grpc-retry-pushback-ms": "10",
      "grpc-status-details-bin": "CAU",
      "user-agent": "grpc-node-js/1.14.0",
      "x-custom": "yes",
    });
    // Retry headers stay readable (as in grpc-go) though applications cannot set them.
    assert.deepEqual([...md.keys()], ["grpc-previous-rpc-attempts", "grpc-retry-pushback-ms", "grpc-status-details-bin", "user-agent", "x-custom"]);
    assert.deepEqual(md.get("grpc-status-details-bin"), bytes(8, 5));
  });

  test("returns empty metadata for headers that carry none", () => {
    assert.equal(metadataFromHeaders({}).size, 0);
    assert.equal(metadataFromHeaders({ ":method": "POST", "content-type": "application/grpc", "x-u": undefined }).size, 0);
  });

  test("lower-cases names from sources other than node:http2", () => {
    assert.equal(metadataFromHeaders({ "X-Custom": "1" }).get("x-custom"), "1");
  });

  test("stringifies a numeric value", () => {
    assert.equal(metadataFromHeaders({ "x-n": 42 }).get("x-n"), "42");
  });

  const invalid: Array<[string, Record<string, string>]> = [
    ["a key with invalid characters", { "bad key": "1" }],
    ["a text value with a control character", { "x-a": "a\u0001b" }],
    ["a text value with a non-ASCII character", { "x-a": "caf\u00e9" }],
    ["a -bin value with invalid characters", { "x-bin": "AQ*" }],
    ["a -bin value of one base64 digit", { "x-bin": "A" }],
    ["a -bin value with misplaced padding", { "x-bin": "A=Q" }],
    ["a -bin value with padding that does not complete a quantum", { "x-bin": "AQ=" }],
    ["a -bin value with too much padding", { "x-bin": "AQ===" }],
  ];
  for (const [what, headers] of invalid) {
    test(`skips ${what}, and parseMetadataStrict throws on it`, () => {
      assert.equal(metadataFromHeaders({ ...headers, "x-ok": "1" }).size, 1);
      assert.throws(() => parseMetadataStrict(headers), MetadataError);
    });
  }

  test("skips only the invalid part of a comma-joined -bin value", () => {
    const md = metadataFromHeaders({ "x-bin": "AQ, *, Ag" });
    assert.deepEqual(md.getAll("x-bin").map((v) => [...(v as Uint8Array)]), [[1], [2]]);
  });

  test("parseMetadataStrict still skips reserved headers", () => {
    assert.equal(parseMetadataStrict({ ":path": "/a.B/C", "grpc-timeout": "1S", "x-a": "1" }).size, 1);
  });
});
