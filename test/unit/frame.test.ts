import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { Code, encodeFrame, encodeFrameHeader, FRAME_HEADER_LENGTH, FrameDecoder, type Frame } from "../../src/protocol/index.js";
import { RpcError } from "../../src/protocol/errors.js";
import { allocatePayload } from "../../src/protocol/frame.js";

const bytes = (...values: number[]) => new Uint8Array(values);
const text = (s: string) => new TextEncoder().encode(s);

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

// Plain arrays so Buffer views and Uint8Arrays compare equal.
const simplify = (frames: Frame[]) => frames.map((f) => ({ compressed: f.compressed, data: [...f.data] }));

function decodeChunks(chunks: Uint8Array[], decoder = new FrameDecoder()): Frame[] {
  const frames: Frame[] = [];
  for (const chunk of chunks) frames.push(...decoder.push(chunk));
  assert.equal(decoder.partial, false, "no bytes left over");
  assert.equal(decoder.bufferedBytes, 0);
  return frames;
}

const messages = [
  { compressed: false, data: text("hello") },
  { compressed: true, data: new Uint8Array(0) },
  { compressed: false, data: text("a longer third message, long enough to span several chunks") },
];
const stream = concat(...messages.map((m) => encodeFrame(m.data, m.compressed)));
const expected = simplify(messages);

describe("encodeFrame", () => {
  test("writes the flag byte, a big-endian length and the payload", () => {
    assert.deepEqual([...encodeFrame(bytes(0xaa, 0xbb, 0xcc))], [0, 0, 0, 0, 3, 0xaa, 0xbb, 0xcc]);
    assert.deepEqual([...encodeFrame(bytes(7), true)], [1, 0, 0, 0, 1, 7]);
  });

  test("frames an empty message as a bare header", () => {
    assert.deepEqual([...encodeFrame(new Uint8Array(0))], [0, 0, 0, 0, 0]);
  });

  test("encodes a payload that is a view into a larger buffer", () => {
    const backing = bytes(9, 9, 1, 2, 9);
    assert.deepEqual([...encodeFrame(backing.subarray(2, 4))], [0, 0, 0, 0, 2, 1, 2]);
  });
});

describe("allocatePayload", () => {
  test("leaves room for the header, so encodeFrame frames the payload in place, compressed flag included", () => {
    const payload = allocatePayload(70_000);
    for (let i = 0; i < payload.byteLength; i++) payload[i] = i & 0xff;
    for (const compressed of [false, true]) {
      const frame = encodeFrame(payload, compressed);
      assert.equal(frame.buffer, payload.buffer, "no copy");
      assert.equal(frame.byteOffset + FRAME_HEADER_LENGTH, payload.byteOffset);
      assert.deepEqual(new FrameDecoder().push(frame), [{ compressed, data: new Uint8Array(payload) }]);
    }
    // Any other payload, a view of it included, is copied into a new frame as before.
    const view = payload.subarray(1);
    const copied = encodeFrame(view);
    assert.notEqual(copied.buffer, payload.buffer);
    const [decoded] = new FrameDecoder().push(copied);
    assert.deepEqual([decoded?.compressed, new Uint8Array(decoded!.data)], [false, new Uint8Array(view)]);
    assert.equal(payload[0], 0, "the payload's own bytes are untouched");
  });
});

describe("encodeFrameHeader", () => {
  const cases: Array<[number, boolean, number[]]> = [
    [0, false, [0, 0, 0, 0, 0]],
    [1, true, [1, 0, 0, 0, 1]],
    [0x0102_0304, false, [0, 1, 2, 3, 4]],
    [0x8000_0000, false, [0, 0x80, 0, 0, 0]],
    [0xffff_ffff, true, [1, 0xff, 0xff, 0xff, 0xff]],
  ];
  for (const [length, compressed, header] of cases) {
    test(`encodes length ${length} (compressed=${compressed}) in ${FRAME_HEADER_LENGTH} bytes`, () => {
      assert.deepEqual([...encodeFrameHeader(length, compressed)], header);
    });
  }

  test("rejects a length that does not fit in 32 bits with RESOURCE_EXHAUSTED", () => {
    assert.throws(() => encodeFrameHeader(0x1_0000_0000, false), (e: unknown) => e instanceof RpcError && e.code === Code.ResourceExhausted);
  });

  test("rejects negative and fractional lengths as programming errors", () => {
    assert.throws(() => encodeFrameHeader(-1, false), RangeError);
    assert.throws(() => encodeFrameHeader(1.5, false), RangeError);
  });
});

describe("FrameDecoder", () => {
  test("decodes several messages packed into one chunk", () => {
    assert.deepEqual(simplify(new FrameDecoder().push(stream)), expected);
  });

  test("returns frames inside one chunk as zero-copy views of it", () => {
    const [first, second] = new FrameDecoder().push(stream);
    assert.equal(first!.data.buffer, stream.buffer);
    assert.equal(first!.data.byteOffset, FRAME_HEADER_LENGTH);
    assert.equal(second!.data.buffer, stream.buffer);
  });

  test("reassembles a message split across every possible chunk boundary", () => {
    for (let cut = 0; cut <= stream.byteLength; cut++) {
      const frames = decodeChunks([stream.subarray(0, cut), stream.subarray(cut)]);
      assert.deepEqual(simplify(frames), expected, `split at ${cut}`);
    }
  });

  test("reassembles the stream for every pair of chunk boundaries", () => {
    for (let a = 0; a <= stream.byteLength; a++) {
      for (let b = a; b <= stream.byteLength; b++) {
        const frames = decodeChunks([stream.subarray(0, a), stream.subarray(a, b), stream.subarray(b)]);
        assert.deepEqual(simplify(frames), expected, `split at ${a} and ${b}`);
      }
    }
  });

  test("reassembles a stream delivered one byte at a time", () => {
    const chunks = [...stream].map((b) => bytes(b));
    assert.deepEqual(simplify(decodeChunks(chunks)), expected);
  });

  test("allocates a split message once, at exactly its declared size", () => {
    const frame = encodeFrame(text("split me"));
    const decoder = new FrameDecoder();
    assert.deepEqual(decoder.push(frame.subarray(0, 7)), []);
    const [out] = decoder.push(frame.subarray(7));
    assert.equal(out!.data.byteLength, 8);
    assert.equal(out!.data.buffer.byteLength, 8);
    assert.notEqual(out!.data.buffer, frame.buffer);
  });

  test("returns a message whose header was split but whose body is whole as a view of the last chunk", () => {
    const frame = encodeFrame(text("body"));
    const decoder = new FrameDecoder();
    decoder.push(frame.subarray(0, 2));
    const last = frame.subarray(2);
    const [out] = decoder.push(last);
    assert.equal(out!.data.buffer, last.buffer);
    assert.deepEqual([...out!.data], [...text("body")]);
  });

  test("decodes zero-length messages, alone, packed and split", () => {
    const empty = encodeFrame(new Uint8Array(0));
    assert.deepEqual(simplify(new FrameDecoder().push(empty)), [{ compressed: false, data: [] }]);
    assert.deepEqual(simplify(new FrameDecoder().push(concat(empty, empty, empty))).length, 3);
    const decoder = new FrameDecoder();
    assert.deepEqual(decoder.push(empty.subarray(0, 4)), []);
    assert.deepEqual(simplify(decoder.push(empty.subarray(4))), [{ compressed: false, data: [] }]);
  });

  test("returns nothing for an empty chunk", () => {
    const decoder = new FrameDecoder();
    assert.deepEqual(decoder.push(new Uint8Array(0)), []);
    assert.equal(decoder.partial, false);
  });

  test("reports a truncated message through partial and bufferedBytes", () => {
    const frame = encodeFrame(text("truncated"));
    const decoder = new FrameDecoder();
    assert.equal(decoder.partial, false);
    decoder.push(frame.subarray(0, 3));
    assert.equal(decoder.partial, true);
    assert.equal(decoder.bufferedBytes, 3);
    decoder.push(frame.subarray(3, 8));
    assert.equal(decoder.partial, true);
    assert.equal(decoder.bufferedBytes, 8);
    decoder.push(frame.subarray(8));
    assert.equal(decoder.partial, false);
    assert.equal(decoder.bufferedBytes, 0);
  });

  test("decodes a length with the top bit set as a large positive number", () => {
    const decoder = new FrameDecoder(10);
    assert.throws(() => decoder.push(bytes(0, 0x80, 0, 0, 0)), /larger than max \(2147483648 vs\. 10\)/);
  });

  describe("size limit", () => {
    const isExhausted = (e: unknown) => e instanceof RpcError && e.code === Code.ResourceExhausted;

    test("accepts a message exactly at the limit", () => {
      const frames = new FrameDecoder(4).push(encodeFrame(bytes(1, 2, 3, 4)));
      assert.equal(frames[0]!.data.byteLength, 4);
    });

    test("rejects a message one byte over the limit from its header, before any body arrives", () => {
      const decoder = new FrameDecoder(4);
      assert.throws(() => decoder.push(encodeFrameHeader(5, false)), isExhausted);
    });

    test("rejects an oversized message when its header is split across chunks", () => {
      const header = encodeFrameHeader(1000, false);
      const decoder = new FrameDecoder(999);
      for (let i = 0; i < 4; i++) assert.deepEqual(decoder.push(header.subarray(i, i + 1)), []);
      assert.throws(() => decoder.push(header.subarray(4)), isExhausted);
    });

    test("uses the message text grpc-go uses", () => {
      assert.throws(() => new FrameDecoder(3).push(encodeFrame(bytes(1, 2, 3, 4))), {
        message: "RESOURCE_EXHAUSTED: received message larger than max (4 vs. 3)",
      });
    });

    test("allows empty messages with a zero limit", () => {
      assert.equal(new FrameDecoder(0).push(encodeFrame(new Uint8Array(0))).length, 1);
    });

    test("refuses a negative or NaN limit at construction", () => {
      assert.throws(() => new FrameDecoder(-1), RangeError);
      assert.throws(() => new FrameDecoder(Number.NaN), RangeError);
    });
  });

  describe("flags", () => {
    test("decodes the compressed bit", () => {
      const [plain, compressed] = new FrameDecoder().push(concat(encodeFrame(bytes(1)), encodeFrame(bytes(2), true)));
      assert.equal(plain!.compressed, false);
      assert.equal(compressed!.compressed, true);
    });

    for (const flags of [0x02, 0x03, 0x80, 0xff]) {
      test(`rejects reserved flag bits 0x${flags.toString(16)} with INTERNAL`, () => {
        assert.throws(
          () => new FrameDecoder().push(bytes(flags, 0, 0, 0, 0)),
          (e: unknown) => e instanceof RpcError && e.code === Code.Internal && /invalid message flags/.test(e.message),
        );
      });
    }

    test("stays failed after an error, rethrowing it on every push", () => {
      const decoder = new FrameDecoder();
      let first: unknown;
      try {
        decoder.push(bytes(0x04, 0, 0, 0, 0));
      } catch (e) {
        first = e;
      }
      assert.ok(first instanceof RpcError);
      assert.throws(() => decoder.push(encodeFrame(bytes(1))), (e: unknown) => e === first);
    });
  });

  describe("pushTo", () => {
    test("hands each frame to the receiver and returns how many the chunk completed", () => {
      const decoder = new FrameDecoder();
      const got: Frame[] = [];
      const receiver = { onFrame: (f: Frame) => void got.push(f) };
      const stream = concat(encodeFrame(bytes(1)), encodeFrame(bytes(2, 3), true), encodeFrame(bytes(4, 5, 6)));
      assert.equal(decoder.pushTo(stream.subarray(0, 9), receiver), 1);
      assert.equal(decoder.pushTo(stream.subarray(9), receiver), 2);
      assert.deepEqual(simplify(got), [
        { compressed: false, data: [1] },
        { compressed: true, data: [2, 3] },
        { compressed: false, data: [4, 5, 6] },
      ]);
    });

    test("hands over the frames before a bad header, then throws, and stays failed", () => {
      const decoder = new FrameDecoder(4);
      const got: number[][] = [];
      const receiver = { onFrame: (f: Frame) => void got.push([...f.data]) };
      const stream = concat(encodeFrame(bytes(1)), encodeFrame(bytes(2)), encodeFrame(bytes(1, 2, 3, 4, 5)));
      assert.throws(() => decoder.pushTo(stream, receiver), (e: unknown) => e instanceof RpcError && e.code === Code.ResourceExhausted);
      assert.deepEqual(got, [[1], [2]]);
      assert.throws(() => decoder.pushTo(encodeFrame(bytes(9)), receiver), /larger than max/);
      assert.deepEqual(got, [[1], [2]]);
    });

    test("an error thrown by the receiver is not the framing's: the decoder goes on", () => {
      const decoder = new FrameDecoder();
      let calls = 0;
      const failing = {
        onFrame: () => {
          calls++;
          throw new RpcError(Code.Internal, "the receiver's own");
        },
      };
      assert.throws(() => decoder.pushTo(encodeFrame(bytes(1)), failing), /the receiver's own/);
      assert.deepEqual(simplify(decoder.push(encodeFrame(bytes(2)))), [{ compressed: false, data: [2] }]);
      assert.equal(calls, 1);
    });
  });
});
