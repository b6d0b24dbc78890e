/**
 * ByteStream.Read over a BlobDir: `read_limit` bytes (0: all) of a blob from `read_offset`, in
 * chunks of `chunkSize`, one file read per chunk pulled. The server pulls the next chunk only
 * when the stream has room, so a slow reader of a large blob holds about one chunk (plus the
 * stream's buffers) in memory, never the file.
 *
 * Errors, as google/bytestream/bytestream.proto and REAPI say: a malformed name or a negative
 * `read_limit` is INVALID_ARGUMENT; a blob not present is NOT_FOUND; a negative `read_offset`
 * or one past the blob's size is OUT_OF_RANGE. An offset equal to the size reads nothing.
 */
import { open } from "node:fs/promises";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { ReadRequest, ReadResponseSchema } from "../../../gen/google/bytestream/bytestream_pb.js";
import { Code } from "../../protocol/code.js";
import { RpcError } from "../../protocol/errors.js";
import type { BlobDir } from "./blob-dir.js";
import { parseReadResource } from "./resource-name.js";

/** The chunks of one Read. */
export async function* readBlob(
  blobs: BlobDir,
  req: ReadRequest,
  chunkSize: number,
  signal: AbortSignal,
): AsyncGenerator<MessageInitShape<typeof ReadResponseSchema>, void, undefined> {
  const { digest } = parseReadResource(req.resourceName);
  if (req.readLimit < 0n) throw new RpcError(Code.InvalidArgument, `read_limit must not be negative, got ${req.readLimit}`);
  if (req.readOffset < 0n) throw new RpcError(Code.OutOfRange, `read_offset must not be negative, got ${req.readOffset}`);
  if (!(await blobs.has(digest))) throw notFound(req.resourceName);
  if (req.readOffset > BigInt(digest.size)) {
    throw new RpcError(Code.OutOfRange, `read_offset ${req.readOffset} is past the end of the ${digest.size}-byte blob`);
  }
  const offset = Number(req.readOffset);
  const end = req.readLimit === 0n || req.readOffset + req.readLimit > BigInt(digest.size) ? digest.size : offset + Number(req.readLimit);
  if (offset === end) return;
  let file;
  try {
    file = await open(blobs.path(digest.hash), "r");
  } catch (e) {
    // Removed between the check and the open (by whoever manages the directory).
    if ((e as NodeJS.ErrnoException).code === "ENOENT") throw notFound(req.resourceName);
    throw e;
  }
  try {
    for (let pos = offset; pos < end && !signal.aborted; ) {
      const n = Math.min(chunkSize, end - pos);
      const buf = Buffer.allocUnsafe(n);
      for (let got = 0; got < n; ) {
        const { bytesRead } = await file.read(buf, got, n - got, pos + got);
        if (bytesRead === 0) throw new RpcError(Code.DataLoss, `blob ${digest.hash} holds fewer than its ${digest.size} bytes`);
        got += bytesRead;
      }
      pos += n;
      yield { data: buf };
    }
  } finally {
    await file.close();
  }
}

function notFound(resourceName: string): RpcError {
  return new RpcError(Code.NotFound, `blob ${JSON.stringify(resourceName.slice(0, 200))} is not in this store`);
}
