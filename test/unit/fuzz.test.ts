import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  decodeStatusMessage,
  encodeFrame,
  encodeStatusMessage,
  formatTimeout,
  FrameDecoder,
  type HeaderRecord,
  Metadata,
  MetadataError,
  metadataFromHeaders,
  metadataToHeaders,
  parseContentType,
  parseMetadataStrict,
  parsePath,
  parseStatus,
  parseTimeout,
  validateRequestHeaders,
} from "../../src/protocol/index.js";
import { RpcError } from "../../src/protocol/errors.js";

const RUNS = 2000;
const loneSurrogate = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

// mulberry32: small, seeded, good enough to spread inputs; a failure is reproducible from its run number.
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class Gen {
  readonly random: () => number;
  constructor(seed: number) {
    this.random = prng(seed);
  }
  int(max: number): number {
    return Math.floor(this.random() * max);
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
  bytes(max: number): Uint8Array {
    const out = new Uint8Array(this.int(max + 1));
    for (let i = 0; i < out.length; i++) out[i] = this.int(256);
    return out;
  }
  // Biased towards the characters the parsers care about, plus hostile ones.
  string(max: number, alphabet = interesting): string {
    let s = "";
    const n = this.int(max + 1);
    for (let i = 0; i < n; i++) s += this.random() < 0.8 ? this.pick(alphabet) : String.fromCharCode(this.int(0x10000));
    return s;
  }
}

const interesting = [
  ..."0123456789abcdefABCDEF%+/=_-.,;: \t\r\n\x00\x7f/HMSmunxgrpc",
  "application/grpc",
  "+proto",
  "+json",
  "-web",
  "é",
  "☺",
  "😈",
  "\ud800",
  "\udc00",
  "%F0%9F%98%88",
  "%4",
  "-bin",
  "grpc-",
];

// The contract of every parser: a result, or a clear protocol error; never a TypeError or RangeError.
function expectCleanOutcome(run: number, input: unknown, fn: () => unknown, allowed: ReadonlyArray<new (...args: never[]) => Error>): void {
  try {
    fn();
  } catch (e) {
    if (allowed.some((type) => e instanceof type)) return;
    assert.fail(`run ${run}: input ${JSON.stringify(input, (_k, v: unknown) => (v instanceof Uint8Array ? [...v] : v))} threw ${String(e)}`);
  }
}

function randomChunks(g: Gen, data: Uint8Array): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  for (let at = 0; at < data.length; ) {
    const size = g.random() < 0.3 ? 1 : 1 + g.int(data.length);
    chunks.push(data.subarray(at, at + size));
    at += size;
  }
  return chunks;
}

function randomHeaders(g: Gen): HeaderRecord {
  const headers: HeaderRecord = {};
  const names = [":path", ":method", "content-type", "te", "grpc-status", "grpc-message", "grpc-timeout", "user-agent", "x-a", "x-bin", "grpc-status-details-bin"];
  const n = g.int(6);
  for (let i = 0; i < n; i++) {
    const name = g.random() < 0.6 ? g.pick(names) : g.string(12);
    const kind = g.int(4);
    headers[name] = kind === 0 ? g.string(30) : kind === 1 ? [g.string(20), g.string(20)] : kind === 2 ? g.int(1000) : undefined;
  }
  return headers;
}

describe("fuzz: parsers fail only with a clear protocol error", () => {
  test("FrameDecoder.push on random bytes in random chunks", () => {
    for (let run = 0; run < RUNS; run++) {
      const g = new Gen(run);
      const stream = g.bytes(64);
      // Bias the header towards plausible frames so bodies get exercised, not only flag errors.
      if (stream.length >= 5 && g.random() < 0.7) {
        stream[0] = g.int(2);
        stream[1] = 0;
        stream[2] = 0;
        stream[3] = 0;
        stream[4] = g.int(80);
      }
      const decoder = new FrameDecoder(g.random() < 0.5 ? 1 << 16 : g.int(70));
      expectCleanOutcome(run, stream, () => {
        for (const chunk of randomChunks(g, stream)) decoder.push(chunk);
      }, [RpcError]);
    }
  });

  test("FrameDecoder reproduces any sequence of frames under any chunking", () => {
    for (let run = 0; run < RUNS; run++) {
      const g = new Gen(run + 1_000_000);
      const messages = Array.from({ length: g.int(5) }, () => ({ compressed: g.random() < 0.5, data: g.bytes(g.random() < 0.2 ? 0 : 40) }));
      const encoded = messages.map((m) => encodeFrame(m.data, m.compressed));
      const stream = new Uint8Array(encoded.reduce((n, f) => n + f.length, 0));
      encoded.reduce((at, f) => (stream.set(f, at), at + f.length), 0);
      const decoder = new FrameDecoder();
      const frames = randomChunks(g, stream).flatMap((chunk) => decoder.push(chunk));
      assert.equal(decoder.partial, false, `run ${run}`);
      assert.deepEqual(
        frames.map((f) => ({ compressed: f.compressed, data: [...f.data] })),
        messages.map((m) => ({ compressed: m.compressed, data: [...m.data] })),
        `run ${run}`,
      );
    }
  });

  test("parseTimeout", () => {
    for (let run = 0; run < RUNS; run++) {
      const g = new Gen(run);
      const value = g.string(12);
      expectCleanOutcome(run, value, () => {
        const ms = parseTimeout(value);
        assert.ok(Number.isFinite(ms) && ms >= 0, `run ${run}: ${value} → ${ms}`);
      }, [RpcError]);
    }
  });

  test("formatTimeout always writes a header parseTimeout accepts", () => {
    const specials = [0, -0, Number.NaN, Infinity, -Infinity, Number.MIN_VALUE, Number.MAX_VALUE, Number.EPSILON];
    for (let run = 0; run < RUNS; run++) {
      const g = new Gen(run);
      const ms = run < specials.length ? specials[run]! : (g.random() - 0.1) * 10 ** (g.int(40) - 10);
      const value = formatTimeout(ms);
      assert.match(value, /^[0-9]{1,8}[HMSmun]$/, `run ${run}: ${ms}`);
      if (ms <= 359_999_996_400_000) assert.ok(parseTimeout(value) >= ms, `run ${run}: ${ms} → ${value}`);
    }
  });

  test("decodeStatusMessage never throws, and inverts encodeStatusMessage", () => {
    for (let run = 0; run < RUNS; run++) {
      const g = new Gen(run);
      const value = g.string(40);
      expectCleanOutcome(run, value, () => decodeStatusMessage(value), []);
      const wellFormed = value.replace(loneSurrogate, "\ufffd");
      const encoded = encodeStatusMessage(wellFormed);
      assert.match(encoded, /^[\x20-\x7e]*$/, `run ${run}`);
      assert.equal(decodeStatusMessage(encoded), wellFormed, `run ${run}`);
    }
  });

  test("parseStatus never throws", () => {
    for (let run = 0; run < RUNS; run++) {
      const headers = randomHeaders(new Gen(run));
      expectCleanOutcome(run, headers, () => parseStatus(headers), []);
    }
  });

  test("metadataFromHeaders never throws, and parseMetadataStrict throws only MetadataError", () => {
    for (let run = 0; run < RUNS; run++) {
      const headers = randomHeaders(new Gen(run));
      expectCleanOutcome(run, headers, () => {
        const md = metadataFromHeaders(headers);
        // Whatever was accepted must be sendable again.
        metadataToHeaders(md);
      }, []);
      expectCleanOutcome(run, headers, () => parseMetadataStrict(headers), [MetadataError]);
    }
  });

  test("Metadata rejects bad user input only with MetadataError", () => {
    for (let run = 0; run < RUNS; run++) {
      const g = new Gen(run);
      const key = g.random() < 0.5 ? g.string(10) + (g.random() < 0.5 ? "-bin" : "") : g.pick(["x-a", "x-bin", "grpc-x", ":path", "te"]);
      const value = g.random() < 0.5 ? g.string(20) : g.bytes(10);
      expectCleanOutcome(run, [key, value], () => new Metadata().append(key, value).set(key, value), [MetadataError]);
    }
  });

  test("parseContentType", () => {
    for (let run = 0; run < RUNS; run++) {
      const value = "application/grpc".slice(0, new Gen(run).int(17)) + new Gen(run + 7).string(20);
      expectCleanOutcome(run, value, () => parseContentType(value), []);
    }
  });

  test("parsePath", () => {
    for (let run = 0; run < RUNS; run++) {
      const value = new Gen(run).string(30, [..."/._aZ09", "pkg", "Service", "Method", "//"]);
      expectCleanOutcome(run, value, () => {
        const parts = parsePath(value);
        if (parts !== undefined) assert.equal(`/${parts.service}/${parts.method}`, value, `run ${run}`);
      }, []);
    }
  });

  test("validateRequestHeaders", () => {
    for (let run = 0; run < RUNS; run++) {
      const headers = randomHeaders(new Gen(run));
      expectCleanOutcome(run, headers, () => validateRequestHeaders(headers), []);
    }
  });
});
