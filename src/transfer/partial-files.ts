/**
 * A partial store's files. Each transfer keeps, beside its data file `<id>.part`, a sidecar
 * `<id>.json`: its accounting (bytes reserved, times) and the owner's opaque state. Sidecars
 * are written whole to `<id>.json.tmp` and renamed over the old one, so a crash leaves either
 * the previous sidecar or the new one, never half.
 *
 * Ids come from the network: only names of letters, digits, `.`, `_` and `-` (not starting with
 * a dot, at most 200 characters) are accepted, so no id reaches outside the store's directory.
 * The suffixes `.part`, `.json` and `.json.tmp` then never collide between two ids' files.
 */
import { open, readFile, readdir, rename, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Code } from "../protocol/code.js";
import { RpcError } from "../protocol/errors.js";

const ID = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}$/;

/** Whether `id` is a plain file name by the rule above (shared with the payload directory's ids). */
export function isPlainName(id: string): boolean {
  return typeof id === "string" && ID.test(id);
}

/** Throws INVALID_ARGUMENT for an id that is not a plain file name. */
export function checkPartialId(id: string): string {
  if (!isPlainName(id)) {
    throw new RpcError(
      Code.InvalidArgument,
      `invalid partial transfer id ${JSON.stringify(String(id).slice(0, 64))}: use 1–200 letters, digits, ".", "_" or "-", not starting with "."`,
    );
  }
  return id;
}

/** The sidecar's content. `reserved` is what the transfer accounts against the disk budgets. */
export interface Sidecar {
  v: 1;
  id: string;
  totalSize?: number;
  reserved: number;
  createdAt: number;
  updatedAt: number;
  state: unknown;
}

export const partPath = (dir: string, id: string): string => join(dir, `${id}.part`);
export const sidecarPath = (dir: string, id: string): string => join(dir, `${id}.json`);

/** Reads the sidecar of `id`: undefined when there is none, or when it is not one we wrote (then it is treated as lost). */
export async function readSidecar(dir: string, id: string): Promise<Sidecar | undefined> {
  let text: string;
  try {
    text = await readFile(sidecarPath(dir, id), "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw e;
  }
  try {
    const s = JSON.parse(text) as Partial<Sidecar>;
    const num = (n: unknown): n is number => typeof n === "number" && Number.isFinite(n) && n >= 0;
    if (s.v !== 1 || s.id !== id || !num(s.reserved) || !num(s.createdAt) || !num(s.updatedAt)) return undefined;
    if (s.totalSize !== undefined && !num(s.totalSize)) return undefined;
    return s as Sidecar;
  } catch {
    return undefined;
  }
}

/** Writes the sidecar of `s.id` atomically (temp file, then rename). */
export async function writeSidecar(dir: string, s: Sidecar): Promise<void> {
  const tmp = `${sidecarPath(dir, s.id)}.tmp`;
  await writeFile(tmp, JSON.stringify(s));
  await rename(tmp, sidecarPath(dir, s.id));
}

/**
 * Reads every sidecar of `dir` (a store starting up), removing what a crash left half-done: temp
 * sidecars, unreadable sidecars, data files without a sidecar. A sidecar whose data file is gone
 * gets an empty one; each accounts the larger of its reservation and its data file's size.
 */
export async function loadSidecars(dir: string): Promise<Map<string, Sidecar>> {
  const entries = new Map<string, Sidecar>();
  const names = await readdir(dir);
  const parts = new Set<string>();
  for (const name of names) {
    if (name.endsWith(".json.tmp")) await rm(`${dir}/${name}`, { force: true });
    else if (name.endsWith(".part")) parts.add(name.slice(0, -5));
  }
  for (const name of names) {
    if (!name.endsWith(".json")) continue;
    const id = name.slice(0, -5);
    let sidecar: Sidecar | undefined;
    try {
      sidecar = await readSidecar(dir, checkPartialId(id));
    } catch {
      sidecar = undefined;
    }
    if (sidecar === undefined) {
      await rm(`${dir}/${name}`, { force: true });
      continue;
    }
    const size = parts.has(id) ? (await stat(partPath(dir, id))).size : await createEmpty(partPath(dir, id));
    parts.delete(id);
    sidecar.reserved = Math.max(sidecar.reserved, size);
    entries.set(id, sidecar);
  }
  for (const id of parts) await rm(partPath(dir, id), { force: true });
  return entries;
}

/** Creates an empty file at `path` unless one is there; its size (0). */
export async function createEmpty(path: string): Promise<number> {
  await (await open(path, "a")).close();
  return 0;
}
