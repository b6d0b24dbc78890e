/**
 * Where a chunked transfer's receiver puts the bytes. A sink keeps what arrived across
 * interruptions: `size()` is the offset a resumed transfer starts at, and `read()` gives the held
 * bytes back so the receiver can rebuild the SHA-256 of the prefix.
 */
import { createReadStream } from "node:fs";
import { open, rename, rm, stat, type FileHandle } from "node:fs/promises";

/** The receiving end of a transfer. Appends only; the receiver checks offsets before writing. */
export interface ChunkSink {
  /** Bytes held from earlier attempts: where the next chunk must start. */
  size(): Promise<number>;
  /**
   * The held bytes from the start, for re-hashing on resume. A sink without it can only take
   * transfers from offset 0.
   */
  read?(): AsyncIterable<Uint8Array>;
  /** Appends `data`; resolves once it is written (then it counts as acknowledged). */
  write(data: Uint8Array): Promise<void>;
  /** The payload arrived whole and its SHA-256 matched. */
  complete?(sha256: Uint8Array): Promise<void>;
  /** The payload failed verification: drop everything, so the next attempt starts at 0. */
  discard?(): Promise<void>;
  /** The transfer stopped (complete, failed or interrupted): release open resources. */
  close?(): Promise<void>;
}

/** A sink in memory, for tests and small payloads. */
export interface MemorySink extends ChunkSink {
  /** The bytes held so far, as one array. */
  bytes(): Uint8Array;
  /** The verified SHA-256, once complete. */
  readonly sha256: Uint8Array | undefined;
}

/** Creates an empty in-memory sink. */
export function memorySink(): MemorySink {
  let pieces: Uint8Array[] = [];
  let held = 0;
  let digest: Uint8Array | undefined;
  return {
    async size() {
      return held;
    },
    async *read() {
      yield* pieces;
    },
    async write(data) {
      // Received messages may share a buffer with the frame they came in; keep a copy of our own.
      pieces.push(data.slice());
      held += data.byteLength;
    },
    async complete(sha256) {
      digest = sha256;
    },
    async discard() {
      pieces = [];
      held = 0;
      digest = undefined;
    },
    bytes() {
      if (pieces.length !== 1) pieces = [Buffer.concat(pieces)];
      return pieces[0]!;
    },
    get sha256() {
      return digest;
    },
  };
}

/** Options of `fileSink`. */
export interface FileSinkOptions {
  /** Where bytes go until the payload is verified. Default: `${path}.part`. */
  partialPath?: string;
}

/**
 * A sink writing to a file. Bytes go to a partial file (`${path}.part`) that survives
 * interruptions and process restarts (its size is the resume offset); once the payload is
 * verified it is renamed to `path`. A payload that fails verification deletes the partial file.
 */
export function fileSink(path: string, options: FileSinkOptions = {}): ChunkSink {
  const partial = options.partialPath ?? `${path}.part`;
  let handle: FileHandle | undefined;
  const closeHandle = async () => {
    const h = handle;
    handle = undefined;
    await h?.close();
  };
  return {
    async size() {
      try {
        return (await stat(partial)).size;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === "ENOENT") return 0;
        throw e;
      }
    },
    read() {
      return createReadStream(partial);
    },
    async write(data) {
      handle ??= await open(partial, "a");
      for (let done = 0; done < data.byteLength; ) {
        const { bytesWritten } = await handle.write(data, done, data.byteLength - done);
        done += bytesWritten;
      }
    },
    async complete() {
      await closeHandle();
      // A payload of zero bytes never wrote anything: the partial file does not exist yet.
      await (await open(partial, "a")).close();
      await rename(partial, path);
    },
    async discard() {
      await closeHandle();
      await rm(partial, { force: true });
    },
    close: closeHandle,
  };
}
