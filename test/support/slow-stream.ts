import { Writable } from "node:stream";

/**
 * A Writable that takes a write only when told to (`take()`), like an HTTP/2 stream out of
 * window, for the FrameWriter tests. `got` keeps a copy of each chunk taken: a writer may reuse
 * a payload's memory once its write is done, so a view would show later bytes.
 */
export function slowStream() {
  const pending: Array<{ chunk: Buffer; cb: (error?: Error | null) => void }> = [];
  const got: Buffer[] = [];
  let ended = false;
  const stream = new Writable({
    highWaterMark: 1 << 30,
    write(chunk: Buffer, _enc, cb) {
      pending.push({ chunk, cb });
    },
    final(cb) {
      ended = true;
      cb();
    },
  });
  return {
    stream,
    got,
    /** The stream was ended (its final callback ran). */
    get ended() {
      return ended;
    },
    /** Takes the oldest write waiting, if any; false when none waits. */
    take(): boolean {
      const p = pending.shift();
      if (p === undefined) return false;
      got.push(Buffer.from(p.chunk));
      p.cb();
      return true;
    },
  };
}

export type SlowStream = ReturnType<typeof slowStream>;
