/**
 * google.bytestream.ByteStream served over a content-addressed directory, as REAPI remote caches
 * (Bazel, Buck2, BuildBarn, bazel-remote) use it:
 *
 *   const bytestream = serveByteStream(server, { dir: "/srv/cas" });
 *
 * Blobs are `<dir>/sha256/<hash>` (blob-dir.ts); Read serves ranges of them (read-blob.ts);
 * Write receives them into a partial store, verified on finish_write (write-blob.ts). Every
 * instance name reads and writes the same blobs: the instance is a routing label here, which
 * is all REAPI requires of it.
 */
import { ByteStream } from "../../../gen/google/bytestream/bytestream_pb.js";
import type { Server } from "../../server/server.js";
import type { ServiceImpl } from "../../server/service-impl.js";
import { createPartialStore, type PartialStore, type PartialStoreOptions } from "../../transfer/partial-store.js";
import { BlobDir } from "./blob-dir.js";
import { readBlob } from "./read-blob.js";
import { BlobWrites } from "./write-blob.js";

export { ByteStream };

/** Options of `serveByteStream` / `createByteStream`. */
export interface ByteStreamOptions {
  /** The store's root: blobs in `<dir>/sha256/`, created when the first one arrives. */
  dir: string;
  /** Bytes per ReadResponse. Default 64 KiB. */
  chunkSize?: number;
  /**
   * Where unfinished writes wait: a store, or the options of one. Default: a store in
   * `<dir>/.partial` with the store's defaults (24 h expiry, 10 GiB of partials). It must be on
   * the same file system as `dir` for a finished blob to be moved, not copied, into place.
   */
  partials?: PartialStore | PartialStoreOptions;
}

/** A ByteStream service: its handlers, its blobs and its partial uploads. */
export interface ByteStreamService {
  /** The handlers to give `server.add(ByteStream, …)`. */
  readonly impl: ServiceImpl<typeof ByteStream>;
  /** The blob directory (`put` stores a blob directly, e.g. to seed a demo). */
  readonly blobs: BlobDir;
  /** The partial store of unfinished writes (created on first use): list, abort, usage. */
  partials(): Promise<PartialStore>;
  /** Stops the partial store's sweep timer, if this service created the store. */
  close(): void;
}

const DEFAULT_CHUNK_SIZE = 64 * 1024;

/** Creates the ByteStream handlers over `options.dir`. */
export function createByteStream(options: ByteStreamOptions): ByteStreamService {
  const chunkSize = options.chunkSize ?? DEFAULT_CHUNK_SIZE;
  if (!Number.isSafeInteger(chunkSize) || chunkSize <= 0) throw new RangeError(`chunkSize must be a positive integer, got ${chunkSize}`);
  const blobs = new BlobDir(options.dir);
  const given = options.partials;
  const owned = given === undefined || !isStore(given);
  let store: Promise<PartialStore> | undefined;
  const partials = (): Promise<PartialStore> =>
    (store ??= isStore(given) ? Promise.resolve(given) : createPartialStore(given ?? { dir: `${options.dir}/.partial` }));
  const writes = new BlobWrites(blobs, partials);
  return {
    impl: {
      read: (req, ctx) => readBlob(blobs, req, chunkSize, ctx.signal),
      write: (requests) => writes.write(requests),
      queryWriteStatus: (req) => writes.queryWriteStatus(req),
    },
    blobs,
    partials,
    close() {
      if (owned) void store?.then((s) => s.close(), () => {});
    },
  };
}

/** Adds ByteStream to `server` (and closes its partial store when the server shuts down). */
export function serveByteStream(server: Server, options: ByteStreamOptions): ByteStreamService {
  const service = createByteStream(options);
  server.add(ByteStream, service.impl);
  server.onShutdownStart(() => service.close());
  return service;
}

function isStore(p: ByteStreamOptions["partials"]): p is PartialStore {
  return p !== undefined && typeof (p as PartialStore).open === "function";
}
