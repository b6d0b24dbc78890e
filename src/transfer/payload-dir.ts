/**
 * The complete payloads a TransferService serves: files in one directory, named by transfer id,
 * with their SHA-256 computed once and kept beside them (`.sha256/<id>`, tagged with the size
 * and modification time it was computed for, so a replaced file is hashed again).
 *
 * Transfer ids come from the network: only names of letters, digits, `.`, `_` and `-` (not
 * starting with a dot, at most 200 characters) are accepted, so no id reaches outside the
 * directory or onto the hash files.
 */
import { mkdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Code } from "../protocol/code.js";
import { RpcError } from "../protocol/errors.js";
import { sha256File } from "./file-hash.js";
import { isPlainName } from "./partial-files.js";

/** Throws INVALID_ARGUMENT for an id that is not a plain file name. */
export function checkTransferId(id: string): string {
  if (!isPlainName(id)) {
    throw new RpcError(Code.InvalidArgument, `invalid transfer id ${JSON.stringify(id.slice(0, 64))}: use 1–200 letters, digits, ".", "_" or "-", not starting with "."`);
  }
  return id;
}

/** A complete payload: its path, size and SHA-256. */
export interface Payload {
  readonly path: string;
  readonly size: number;
  readonly sha256: Buffer;
}

export class PayloadDir {
  private readonly hashing = new Map<string, Promise<Buffer>>();

  constructor(readonly dir: string) {}

  /** The complete payload `id`, or undefined when there is none. */
  async get(id: string): Promise<Payload | undefined> {
    const path = join(this.dir, checkTransferId(id));
    let s;
    try {
      s = await stat(path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw e;
    }
    if (!s.isFile()) return undefined;
    const tag = `${s.size}:${s.mtimeMs}`;
    const key = `${id}\n${tag}`;
    let pending = this.hashing.get(key);
    if (pending === undefined) {
      pending = this.hash(id, path, tag);
      this.hashing.set(key, pending);
      // Kept while it runs, so concurrent downloads of a new file hash it once.
      void pending.finally(() => this.hashing.delete(key)).catch(() => {});
    }
    return { path, size: s.size, sha256: await pending };
  }

  /** Records the verified hash of payload `id` (just moved in), so it is never computed again. */
  async recordHash(id: string, sha256: Buffer): Promise<void> {
    const s = await stat(join(this.dir, checkTransferId(id)));
    await this.saveHash(id, `${s.size}:${s.mtimeMs}`, sha256);
  }

  private async hash(id: string, path: string, tag: string): Promise<Buffer> {
    const sidecar = join(this.dir, ".sha256", id);
    try {
      const [savedTag, hex] = (await readFile(sidecar, "utf8")).split(" ");
      if (savedTag === tag && hex?.length === 64) return Buffer.from(hex, "hex");
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
    }
    const { digest } = await sha256File(path);
    await this.saveHash(id, tag, digest);
    return digest;
  }

  private async saveHash(id: string, tag: string, sha256: Buffer): Promise<void> {
    await mkdir(join(this.dir, ".sha256"), { recursive: true });
    await writeFile(join(this.dir, ".sha256", id), `${tag} ${sha256.toString("hex")}`);
  }
}
