/** grpcurl's argument habits rewritten into Rill's form, and the CLI's size parsing. Pure. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { normalizeArgs } from "../../src/cli/grpcurl-args.js";
import { parseHeaders, parseSize } from "../../src/cli/options.js";

test("flags first, then ADDRESS list|describe: the verb moves to the front", () => {
  assert.deepEqual(normalizeArgs(["-plaintext", "localhost:50051", "list"]), ["list", "localhost:50051", "--plaintext"]);
  assert.deepEqual(normalizeArgs(["-plaintext", "-H", "a: b", "localhost:50051", "describe", "pkg.S"]), ["describe", "localhost:50051", "pkg.S", "--plaintext", "-H", "a: b"]);
});

test("ADDRESS METHOD is a call, and flag values are never taken for positionals", () => {
  assert.deepEqual(normalizeArgs(["-d", "{}", "-max-time", "5", "h:1", "pkg.S/M"]), ["call", "h:1", "pkg.S/M", "-d", "{}", "--timeout", "5"]);
  assert.deepEqual(normalizeArgs(["-import-path", "protos", "-proto", "a/b.proto", "h:1", "list"]), ["list", "h:1", "--import-path", "protos", "--proto", "a/b.proto"]);
});

test("single-dash long flags and grpcurl's names are respelled; Rill's own form passes through", () => {
  assert.deepEqual(normalizeArgs(["call", "h:1", "p.S/M", "-format=json", "-max-msg-sz", "6000000", "-emit-defaults"]), ["call", "h:1", "p.S/M", "--format=json", "--max-receive-size", "6000000", "--emit-defaults"]);
  assert.deepEqual(normalizeArgs(["bench", "h:1", "p.S/M", "-c", "5", "-n", "10"]), ["bench", "h:1", "p.S/M", "-c", "5", "-n", "10"]);
  // A value that looks like a flag stays a value.
  assert.deepEqual(normalizeArgs(["call", "h:1", "p.S/M", "-d", "-plaintext"]), ["call", "h:1", "p.S/M", "-d", "-plaintext"]);
  assert.deepEqual(normalizeArgs(["-v", "list", "h:1"]), ["list", "-v", "h:1"]);
});

test("sizes: bytes, KiB/MiB/GiB, KB/MB; nonsense is a usage error", () => {
  assert.equal(parseSize("6000000", "-x"), 6_000_000);
  assert.equal(parseSize("16MiB", "-x"), 16 * 1024 * 1024);
  assert.equal(parseSize("5MB", "-x"), 5_000_000);
  assert.throws(() => parseSize("lots", "-x"), /takes a size/);
});

test("-bin metadata: base64 and base64url accepted, anything else refused", () => {
  assert.deepEqual(Buffer.from(parseHeaders(["x-bin: aGVsbG8="]).get("x-bin") as Uint8Array).toString(), "hello");
  assert.deepEqual(Buffer.from(parseHeaders(["x-bin: aGVsbG8"]).get("x-bin") as Uint8Array).toString(), "hello");
  assert.throws(() => parseHeaders(["x-bin: not base64!"]), /not base64/);
  assert.throws(() => parseHeaders(["x-bin: abcde"]), /not base64/);
});
