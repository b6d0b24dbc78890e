/**
 * The SHA-256 of a file, read in 1 MiB pieces: what a sender announces and a payload directory
 * caches. One place, so every whole-file hash in Rill reads the same way.
 */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";

/** The file's SHA-256 digest and its size in bytes (as read, so the two always agree). */
export async function sha256File(path: string | URL): Promise<{ digest: Buffer; size: number }> {
  const hash = createHash("sha256");
  let size = 0;
  for await (const piece of createReadStream(path, { highWaterMark: 1024 * 1024 })) {
    hash.update(piece as Buffer);
    size += (piece as Buffer).byteLength;
  }
  return { digest: hash.digest(), size };
}
