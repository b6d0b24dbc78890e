import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, test } from "node:test";
import { crc32c, crc32cImplementation } from "../../src/transfer/crc32c.js";
import { crc32cSlicing } from "../../src/transfer/crc32c-slicing.js";

/** Bit by bit, no table: the definition, against which both implementations are held. */
function crc32cBitwise(data: Uint8Array, previous = 0): number {
  let c = ~previous >>> 0;
  for (const byte of data) {
    c ^= byte;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  }
  return ~c >>> 0;
}

const ascii = (s: string) => new TextEncoder().encode(s);
const ascending = Uint8Array.from({ length: 32 }, (_, i) => i);
const descending = Uint8Array.from({ length: 32 }, (_, i) => 31 - i);

// Both paths, whichever `crc32c` picked: the native one (npm installs a binary of
// @node-rs/crc32 for this platform with the repo) and the JavaScript fallback.
const implementations = [
  ["crc32c (native, @node-rs/crc32)", crc32c],
  ["crc32cSlicing (JavaScript fallback)", crc32cSlicing],
] as const;

test("crc32c runs the native @node-rs/crc32 here, where npm installed its binary for this platform", () => {
  assert.equal(crc32cImplementation, "native");
});

test("where @node-rs/crc32 is not installed, crc32c loads all the same and runs the JavaScript, with the same results", () => {
  // The two compiled modules alone in a temporary folder, with no node_modules above them: what
  // an install that omitted optional dependencies, or found no binary for its platform, has.
  const dir = mkdtempSync(join(tmpdir(), "rill-crc32c-"));
  try {
    for (const f of ["crc32c.js", "crc32c-slicing.js"]) copyFileSync(fileURLToPath(new URL(`../../src/transfer/${f}`, import.meta.url)), join(dir, f));
    writeFileSync(join(dir, "package.json"), JSON.stringify({ type: "module" }));
    const code = 'import { crc32c, crc32cImplementation } from "./crc32c.js"; const a = new TextEncoder().encode("12345"), b = new TextEncoder().encode("6789"); console.log(crc32cImplementation, crc32c(b, crc32c(a)).toString(16), crc32c(new Uint8Array(32)).toString(16));';
    const out = execFileSync(process.execPath, ["--input-type=module", "-e", code], { cwd: dir, encoding: "utf8" }).trim();
    assert.equal(out, "js e3069283 8a9136aa");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

for (const [name, crc] of implementations) {
  describe(name, () => {
    test("RFC 3720 B.4 vectors: 32 zero bytes, 32 × 0xFF, bytes 0..31 ascending and descending", () => {
      assert.equal(crc(new Uint8Array(32)), 0x8a9136aa);
      assert.equal(crc(new Uint8Array(32).fill(0xff)), 0x62a8ab43);
      assert.equal(crc(ascending), 0x46dd794e);
      assert.equal(crc(descending), 0x113fdb5c);
    });

    test('"123456789" gives the check value 0xE3069283; empty input gives 0, or the previous value unchanged', () => {
      assert.equal(crc(ascii("123456789")), 0xe3069283);
      assert.equal(crc(new Uint8Array(0)), 0);
      assert.equal(crc(new Uint8Array(0), 0xe3069283), 0xe3069283);
    });

    test("the result is an unsigned 32-bit integer, and an unsigned previous value continues correctly", () => {
      const first = crc(ascii("1234"));
      assert.ok(Number.isInteger(first) && first >= 0 && first <= 0xffffffff);
      assert.ok(crc(new Uint8Array(32)) > 0x7fffffff); // 0x8A9136AA: not negative
      assert.equal(crc(ascii("56789"), first), 0xe3069283);
    });

    test("continuing from the CRC of a prefix equals the one-shot CRC, at every split of a random buffer", () => {
      const data = randomBytes(517); // 32 steps of 16 bytes and a tail, so splits fall everywhere in a step
      const whole = crc(data);
      assert.equal(whole, crc32cBitwise(data));
      for (let i = 0; i <= data.length; i++) {
        assert.equal(crc(data.subarray(i), crc(data.subarray(0, i))), whole, `split at ${i}`);
      }
      // And in three pieces, the middle of every length.
      for (let len = 0; len <= 64; len++) {
        const a = 100;
        const b = a + len;
        assert.equal(crc(data.subarray(b), crc(data.subarray(a, b), crc(data.subarray(0, a)))), whole, `middle ${a}..${b}`);
      }
    });

    test("subarrays at every byte offset (not a multiple of 4 or 8) and of every length up to 80 match the bitwise CRC", () => {
      const backing = randomBytes(256);
      for (let offset = 0; offset < 17; offset++) {
        for (let len = 0; len <= 80; len++) {
          const view = new Uint8Array(backing.buffer, backing.byteOffset + offset, len);
          assert.equal(crc(view), crc32cBitwise(view), `offset ${offset}, length ${len}`);
        }
      }
    });

    test("a 1 MiB random buffer, whole and as a subarray at an odd offset, matches the bitwise CRC", () => {
      const big = randomBytes(1024 * 1024 + 3);
      const at3 = big.subarray(3);
      assert.equal(crc(big), crc32cBitwise(big));
      assert.equal(crc(at3), crc32cBitwise(at3));
      // The same bytes in a fresh, aligned Uint8Array (not a pooled Buffer).
      assert.equal(crc(new Uint8Array(at3)), crc(at3));
    });
  });
}

test("the native and JavaScript paths agree on random buffers of random lengths, offsets and previous values", () => {
  const backing = randomBytes(70_000);
  for (let k = 0; k < 200; k++) {
    const offset = Math.floor(Math.random() * 64);
    const len = k < 100 ? k : Math.floor(Math.random() * (backing.length - offset));
    const view = backing.subarray(offset, offset + len);
    const previous = randomBytes(4).readUInt32LE(0);
    assert.equal(crc32c(view, previous), crc32cSlicing(view, previous), `offset ${offset}, length ${len}, previous ${previous}`);
  }
});
