/**
 * CRC-32C (Castagnoli) of each transfer chunk: the native `@node-rs/crc32` where it loads, the
 * pure-JS slicing-by-16 of `crc32c-slicing.ts` where it does not.
 *
 * Why a native package (issue 20; `npm run bench:crc32c -- --nodes 20,22,24`, bench/crc32c.ts):
 * node has no CRC-32C built in (`zlib.crc32` is CRC-32/IEEE, another polynomial), and the best
 * JavaScript here, slicing-by-16, does 2.2 GB/s on 64 KiB chunks on Node 20, 22 and 24, where
 * `@node-rs/crc32` (SSE 4.2 / ARMv8 CRC instructions, Rust's `crc32c` crate) does 5.2–6.1 GB/s,
 * level with `zlib.crc32`. A transfer also hashes every byte with SHA-256 (1.65 GB/s here), so
 * in JavaScript the CRC would cost three quarters as much again per byte, on both ends; native,
 * a quarter. Wasm (hash-wasm, 2.0 GB/s) has no CRC instruction to reach for; `@aws-crypto/crc32c`
 * goes a byte at a time (0.1 GB/s); `sse4_crc32` is faster still (9 GB/s) but compiles with
 * node-gyp at install, which npm 11 does not run unless asked and which needs a compiler and
 * node's headers on every machine.
 *
 * Install story: an optional dependency. `@node-rs/crc32` itself is a small loader whose
 * prebuilt N-API binaries are its own optional dependencies, one per platform (glibc and musl
 * Linux on x64 and arm64, arm gnueabihf, macOS, Windows, FreeBSD, Android), chosen by npm from
 * their os/cpu/libc fields: no install script, no compiler, one binary for every Node version.
 * Where none fits (another CPU), where optional dependencies are omitted, or where the binary
 * fails to load, `require` throws here and the JavaScript takes over, with the same results.
 */
import { createRequire } from "node:module";
import { crc32cSlicing } from "./crc32c-slicing.js";

/** The part of `@node-rs/crc32` used here (declared here so the types do not need it installed). */
interface NativeCrc32 {
  crc32c(input: Uint8Array, initialState?: number): number;
}

function loadNative(): ((data: Uint8Array, previous?: number) => number) | undefined {
  try {
    const native = createRequire(import.meta.url)("@node-rs/crc32") as NativeCrc32;
    // "123456789" (the standard check value), then continued: a binary that loads but
    // answers differently is not used.
    const check = new TextEncoder().encode("123456789");
    if (native.crc32c(check) !== 0xe3069283) return undefined;
    if (native.crc32c(check.subarray(5), native.crc32c(check.subarray(0, 5))) !== 0xe3069283) return undefined;
    return (data, previous = 0) => native.crc32c(data, previous);
  } catch {
    return undefined;
  }
}

const native = loadNative();

/** Which implementation `crc32c` runs in this process: `"native"` (`@node-rs/crc32`) or `"js"`. */
export const crc32cImplementation: "native" | "js" = native === undefined ? "js" : "native";

/**
 * CRC-32C of `data`, continuing from `previous` (the result over the bytes before it; 0 to
 * start), like `zlib.crc32(data, value)`: `crc32c(b, crc32c(a))` is the CRC of a then b.
 * Unsigned 32-bit.
 */
export const crc32c: (data: Uint8Array, previous?: number) => number = native ?? crc32cSlicing;
