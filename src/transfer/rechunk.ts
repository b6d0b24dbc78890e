/**
 * Re-cuts a stream of byte pieces of any size into pieces of exactly `size` bytes (the last may
 * be shorter). Pieces that already have the right size pass through untouched, larger ones are
 * sliced without copying; only pieces smaller than `size` are copied, into a fresh buffer per
 * output chunk (a yielded chunk is never written to again, so consumers may keep it).
 */
export async function* rechunk(pieces: AsyncIterable<Uint8Array>, size: number): AsyncGenerator<Uint8Array, void, undefined> {
  if (!Number.isSafeInteger(size) || size <= 0) throw new RangeError(`chunk size must be a positive integer, got ${size}`);
  let pending: Uint8Array | undefined;
  let filled = 0;
  for await (let piece of pieces) {
    while (piece.byteLength > 0) {
      if (pending === undefined) {
        if (piece.byteLength >= size) {
          yield piece.subarray(0, size);
          piece = piece.subarray(size);
          continue;
        }
        pending = new Uint8Array(size);
        filled = 0;
      }
      const n = Math.min(size - filled, piece.byteLength);
      pending.set(piece.subarray(0, n), filled);
      filled += n;
      piece = piece.subarray(n);
      if (filled === size) {
        yield pending;
        pending = undefined;
      }
    }
  }
  if (pending !== undefined && filled > 0) yield pending.subarray(0, filled);
}
