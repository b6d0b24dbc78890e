import type { Writable } from "node:stream";

/**
 * Resolves once `stream` drains or closes, whichever comes first.
 *
 * Callers re-check their own state after it resolves: a closed stream is not an error here,
 * because the call that owns the stream already knows why it closed.
 */
export function drained(stream: Writable): Promise<void> {
  if (stream.destroyed || stream.writableEnded) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      stream.off("drain", done);
      stream.off("close", done);
      resolve();
    };
    stream.on("drain", done);
    stream.on("close", done);
  });
}
