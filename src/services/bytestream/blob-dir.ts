/**
 * A content-addressed directory of blobs: `<dir>/sha256/<hash>`, one file per SHA-256. A blob
 * is present when its file exists with the digest's size (the size is part of the digest, so a
 * file of another size is another blob, absent here). Files are only ever created by renaming a
 * complete, verified file into place, so a reader never sees half a blob, and an open reader
 * keeps the bytes it opened even if the blob is replaced by an identical one.
 *
 * The empty blob is always present (REAPI: "servers MUST behave as though empty blobs are always
 * available"), with or without a file.
 */
import { createHash, randomUUID } from "node:crypto";
import { mkdir, rename, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { BlobDigest } from "./resource-name.js";

/** SHA-256 of zero bytes. */
export const EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

export class BlobDir {
  /** The folder blob files live in. */
  readonly blobsDir: string;
  private made: Promise<unknown> | undefined;

  constructor(readonly dir: string) {
    this.blobsDir = join(dir, "sha256");
  }

  /** Where blob `hash` lives (the hash must have been checked: 64 lowercase hex digits). */
  path(hash: string): string {
    return join(this.blobsDir, hash);
  }

  /** Creates the blob folder once. */
  ready(): Promise<unknown> {
    return (this.made ??= mkdir(this.blobsDir, { recursive: true }));
  }

  /** Whether blob `digest` is present. */
  async has(digest: BlobDigest): Promise<boolean> {
    if (digest.size === 0 && digest.hash === EMPTY_SHA256) return true;
    try {
      const s = await stat(this.path(digest.hash));
      return s.isFile() && s.size === digest.size;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return false;
      throw e;
    }
  }

  /** Stores `data` (a temp file renamed into place) and returns its digest. For seeding and tests. */
  async put(data: Uint8Array): Promise<BlobDigest> {
    const digest = { hash: createHash("sha256").update(data).digest("hex"), size: data.byteLength };
    await this.ready();
    const tmp = join(this.blobsDir, `.put-${randomUUID()}`);
    await writeFile(tmp, data);
    await rename(tmp, this.path(digest.hash));
    return digest;
  }
}
