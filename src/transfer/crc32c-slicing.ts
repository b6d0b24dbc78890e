/**
 * CRC-32C (Castagnoli, reflected polynomial 0x82F63B78) in plain JavaScript, slicing-by-16:
 * sixteen 256-entry tables let one step fold 16 input bytes into the running value with 16
 * independent table loads instead of 16 dependent ones. The fallback of `crc32c.ts` where the
 * native package cannot load: 2.2 GB/s here on Node 20, 22 and 24, against 0.45 GB/s for the
 * one-table loop.
 *
 * The words are read through a DataView as little-endian, so the result does not depend on the
 * host's byte order nor on the view's alignment (a chunk is often a subarray at any offset); V8
 * compiles those reads to plain loads, as fast here as an Int32Array over the aligned middle.
 */

const POLY = 0x82f63b78;
const SLICES = 16;

/** TABLE[k * 256 + b]: the CRC of byte b followed by k zero bytes (k = 0 is the classic table). */
const TABLE = makeTable();

function makeTable(): Int32Array {
  const t = new Int32Array(256 * SLICES);
  for (let b = 0; b < 256; b++) {
    let c = b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
    t[b] = c;
  }
  for (let k = 1; k < SLICES; k++) {
    for (let b = 0; b < 256; b++) {
      const prev = t[(k - 1) * 256 + b]!;
      t[k * 256 + b] = (prev >>> 8) ^ t[prev & 0xff]!;
    }
  }
  return t;
}

/**
 * CRC-32C of `data`, continuing from `previous` (the result of an earlier call over the bytes
 * before it, 0 to start), as `zlib.crc32(data, value)` does for CRC-32: unsigned 32-bit.
 */
export function crc32cSlicing(data: Uint8Array, previous = 0): number {
  const T = TABLE;
  const n = data.length;
  let c = ~previous;
  let i = 0;
  if (n >= SLICES) {
    const view = new DataView(data.buffer, data.byteOffset, n);
    const end = n - (n % SLICES);
    for (; i < end; i += SLICES) {
      c ^= view.getInt32(i, true);
      const a = view.getInt32(i + 4, true);
      const b = view.getInt32(i + 8, true);
      const d = view.getInt32(i + 12, true);
      // The first word meets the tables that stand for the most zero bytes after it.
      c =
        T[3840 + (c & 0xff)]! ^ T[3584 + ((c >>> 8) & 0xff)]! ^ T[3328 + ((c >>> 16) & 0xff)]! ^ T[3072 + (c >>> 24)]! ^
        T[2816 + (a & 0xff)]! ^ T[2560 + ((a >>> 8) & 0xff)]! ^ T[2304 + ((a >>> 16) & 0xff)]! ^ T[2048 + (a >>> 24)]! ^
        T[1792 + (b & 0xff)]! ^ T[1536 + ((b >>> 8) & 0xff)]! ^ T[1280 + ((b >>> 16) & 0xff)]! ^ T[1024 + (b >>> 24)]! ^
        T[768 + (d & 0xff)]! ^ T[512 + ((d >>> 8) & 0xff)]! ^ T[256 + ((d >>> 16) & 0xff)]! ^ T[d >>> 24]!;
    }
  }
  for (; i < n; i++) c = T[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}
