// TEMPORARY stand-in (replaced by the bytestream branch's partial store).
import { mkdir, readFile, readdir, rename, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Code } from "../protocol/code.js";
import { RpcError } from "../protocol/errors.js";
export interface PartialStoreOptions { dir: string; maxAgeMs?: number; maxBytes?: number; maxTransferBytes?: number; sweepIntervalMs?: number; clock?: { now(): number } }
export interface PartialInfo { id: string; bytes: number; totalSize?: number; createdAt: number; updatedAt: number; expiresAt: number }
export interface PartialTransfer { readonly id: string; readonly path: string; state: unknown; reserve(bytes: number): void; save(): Promise<void>; complete(to: string): Promise<void>; abort(): Promise<void> }
export interface PartialStore { open(id: string, meta?: { totalSize?: number }): Promise<PartialTransfer>; get(id: string): Promise<PartialTransfer | undefined>; list(): Promise<PartialInfo[]>; abort(id: string): Promise<boolean>; sweep(): Promise<string[]>; usage(): { transfers: number; bytes: number; maxBytes: number }; close(): void }
export async function createPartialStore(o: PartialStoreOptions): Promise<PartialStore> {
  await mkdir(o.dir, { recursive: true });
  const maxBytes = o.maxBytes ?? Infinity;
  const reserved = new Map<string, number>();
  const used = () => [...reserved.values()].reduce((a, b) => a + b, 0);
  const make = async (id: string): Promise<PartialTransfer> => {
    const path = join(o.dir, `${id}.part`);
    let state: unknown;
    try { state = JSON.parse(await readFile(join(o.dir, `${id}.json`), "utf8")).state; } catch { state = undefined; }
    const t: PartialTransfer = {
      id, path, state,
      reserve(bytes) { if (used() + bytes > maxBytes) throw new RpcError(Code.ResourceExhausted, `maxBytes ${maxBytes} exceeded`); reserved.set(id, (reserved.get(id) ?? 0) + bytes); },
      async save() { await writeFile(join(o.dir, `${id}.json`), JSON.stringify({ state: t.state, updatedAt: Date.now() })); },
      async complete(to) { await rename(path, to); await rm(join(o.dir, `${id}.json`), { force: true }); reserved.delete(id); },
      async abort() { await rm(path, { force: true }); await rm(join(o.dir, `${id}.json`), { force: true }); reserved.delete(id); },
    };
    return t;
  };
  const exists = async (id: string) => stat(join(o.dir, `${id}.json`)).then(() => true, () => false);
  return {
    open: make,
    async get(id) { return (await exists(id)) ? make(id) : undefined; },
    async list() { return (await readdir(o.dir)).filter((f) => f.endsWith(".json")).map((f) => ({ id: f.slice(0, -5), bytes: 0, createdAt: 0, updatedAt: Date.now(), expiresAt: Date.now() + 86_400_000 })); },
    async abort(id) { if (!(await exists(id))) return false; await (await make(id)).abort(); return true; },
    async sweep() { return []; },
    usage() { return { transfers: reserved.size, bytes: used(), maxBytes }; },
    close() {},
  };
}
