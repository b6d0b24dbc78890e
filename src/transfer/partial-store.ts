/**
 * Partial transfers on disk, with expiry, abort and a disk budget: the uploads a server has
 * started to receive but not finished (Rill's TransferService, google.bytestream Write), kept
 * across streams and process restarts so a client resumes instead of starting over.
 *
 * Each transfer is a data file `<id>.part`, which the owner reads and writes itself, and a
 * sidecar `<id>.json` (partial-files.ts) holding the bytes it accounts, its times and the
 * owner's opaque `state`. A store is the only writer of its directory: give each server process
 * its own (two stores on one directory would each keep their own accounting).
 *
 * Invariants:
 * - **One writer per id.** `open` hands out a transfer's handle to one holder at a time; a
 *   second `open` of an id that is held fails at once with ABORTED (gRPC's "concurrency
 *   conflict, retry at a higher level"), never waits and never shares. The holder lets go with
 *   `release()`, `complete()` or `abort()`; a holder that runs parts at once (the TransferService
 *   writing several ranges of one id) shares its one handle among them, it does not open twice.
 * - **Expiry.** A partial not touched (opened, reserved, saved) for `maxAgeMs` expires: the sweep
 *   timer removes it, and `open`/`get`/`list` treat it as gone even before the sweep runs. A held
 *   partial never expires under its writer; its age counts from the moment it was released.
 * - **Disk budget.** Bytes are accounted with `reserve()` before they are written, against
 *   `maxTransferBytes` (one partial) and `maxBytes` (all of them). Over either, `reserve` throws
 *   RESOURCE_EXHAUSTED naming the option, and nothing is accounted. A store reopened after a
 *   restart accounts each partial as the larger of its sidecar's reservation and its file's size.
 * - **Abort wins.** `abort(id)` (or expiry) removes a held partial too: its holder's later
 *   `reserve`/`save`/`complete` fail with ABORTED, so a cancelled upload cannot come back.
 * - Sidecars are written atomically; at startup, a data file without a sidecar (a crash in the
 *   middle of a removal) and unreadable sidecars are removed, with their data.
 */
import { copyFile, mkdir, rename, rm } from "node:fs/promises";
import { Code } from "../protocol/code.js";
import { RpcError } from "../protocol/errors.js";
import { checkPartialId, createEmpty, loadSidecars, partPath, sidecarPath, writeSidecar, type Sidecar } from "./partial-files.js";

const GiB = 1024 ** 3;

/** Options of `createPartialStore`. */
export interface PartialStoreOptions {
  /** The store's directory; created if missing. One `<id>.part` and `<id>.json` per transfer. */
  dir: string;
  /** A partial not touched for this long expires. Default 24 h (what tus servers commonly keep). */
  maxAgeMs?: number;
  /**
   * Disk all partials may account together. Default 10 GiB: a fixed budget, so a peer can never
   * fill the disk by starting uploads it does not finish, large enough for typical remote-cache
   * and file-lending traffic. Raise it for larger payloads; Infinity turns the bound off.
   */
  maxBytes?: number;
  /** Disk one partial may account. Default: `maxBytes` (one transfer may use the whole budget). */
  maxTransferBytes?: number;
  /** How often an unref'd timer removes expired partials. Default 60 s; 0 never (call `sweep()`). */
  sweepIntervalMs?: number;
  /** The time source for expiry. Default `Date`. */
  clock?: { now(): number };
}

/** What `list()` reports of one partial. `bytes` is what it accounts against the disk budget. */
export interface PartialInfo {
  id: string;
  bytes: number;
  totalSize?: number;
  createdAt: number;
  updatedAt: number;
  expiresAt: number;
}

/** A partial transfer held by one writer (from `open`), or looked at (from `get`). */
export interface PartialTransfer {
  readonly id: string;
  /** The data file. Callers open it for positional reads and writes themselves. */
  readonly path: string;
  /** Opaque JSON the owner keeps with the transfer; persisted by `save()`. */
  state: unknown;
  /** Accounts `bytes` more disk before they are written; RESOURCE_EXHAUSTED naming the option over a budget. */
  reserve(bytes: number): void;
  /** Persists `state` and the accounting, and counts as activity for expiry. */
  save(): Promise<void>;
  /** Moves the data file to `to` (replacing what is there) and forgets the partial. */
  complete(to: string): Promise<void>;
  /** Removes the partial and its data. A no-op once it is gone. */
  abort(): Promise<void>;
  /** Saves, then lets go of the partial, so another `open` may hold it. A no-op once it is gone. */
  release(): Promise<void>;
}

/** Partial transfers in one directory. */
export interface PartialStore {
  /** Holds partial `id`, creating it or reopening it (after a restart too); ABORTED while another holds it. */
  open(id: string, meta?: { totalSize?: number }): Promise<PartialTransfer>;
  /**
   * Partial `id` without holding it: its holder's handle while held, else a view whose `state`
   * is the saved one and on which only `abort()` acts. Undefined when there is none.
   */
  get(id: string): Promise<PartialTransfer | undefined>;
  /** Every partial that has not expired, oldest first. */
  list(): Promise<PartialInfo[]>;
  /** Removes partial `id` (held or not); false when there was none. */
  abort(id: string): Promise<boolean>;
  /** Removes the expired partials now; their ids. */
  sweep(): Promise<string[]>;
  /** Partials kept and the bytes they account, against `maxBytes`. */
  usage(): { transfers: number; bytes: number; maxBytes: number };
  /** Stops the sweep timer. Partials stay on disk for the next store on this directory. */
  close(): void;
}

interface Entry {
  sidecar: Sidecar;
  holder: Handle | undefined;
}

/** Creates (or reopens) the store in `options.dir`. */
export async function createPartialStore(options: PartialStoreOptions): Promise<PartialStore> {
  const o = resolveOptions(options);
  await mkdir(o.dir, { recursive: true });
  const entries = new Map<string, Entry>();
  for (const [id, sidecar] of await loadSidecars(o.dir)) entries.set(id, { sidecar, holder: undefined });
  const store = new Store(o, entries);
  await store.sweep();
  store.startTimer();
  return store;
}

type Resolved = Required<Omit<PartialStoreOptions, "clock">> & { clock: { now(): number } };

function resolveOptions(options: PartialStoreOptions): Resolved {
  if (typeof options.dir !== "string" || options.dir === "") throw new TypeError("PartialStoreOptions.dir must be a directory path");
  const maxBytes = options.maxBytes ?? 10 * GiB;
  const o: Resolved = {
    dir: options.dir,
    maxAgeMs: options.maxAgeMs ?? 24 * 3600_000,
    maxBytes,
    maxTransferBytes: options.maxTransferBytes ?? maxBytes,
    sweepIntervalMs: options.sweepIntervalMs ?? 60_000,
    clock: options.clock ?? Date,
  };
  for (const k of ["maxAgeMs", "maxBytes", "maxTransferBytes"] as const) {
    if (!(o[k] > 0)) throw new RangeError(`PartialStoreOptions.${k} must be positive, got ${o[k]}`);
  }
  if (!(o.sweepIntervalMs >= 0) || !Number.isFinite(o.sweepIntervalMs)) throw new RangeError(`PartialStoreOptions.sweepIntervalMs must be 0 or more, got ${o.sweepIntervalMs}`);
  return o;
}

class Store implements PartialStore {
  private used = 0;
  private readonly opening = new Set<string>();
  /** Per-id chain of file operations, so a save never lands after the abort that removed the files. */
  private readonly chains = new Map<string, Promise<unknown>>();
  private timer: NodeJS.Timeout | undefined;
  private sweeping = false;

  constructor(
    readonly o: Resolved,
    readonly entries: Map<string, Entry>,
  ) {
    for (const e of entries.values()) this.used += e.sidecar.reserved;
  }

  startTimer(): void {
    if (this.o.sweepIntervalMs === 0) return;
    this.timer = setInterval(() => {
      if (this.sweeping) return;
      this.sweeping = true;
      // A sweep that fails (the directory unreadable for a moment) is tried again next interval.
      this.sweep()
        .catch(() => {})
        .finally(() => (this.sweeping = false));
    }, this.o.sweepIntervalMs);
    this.timer.unref();
  }

  close(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Runs `fn` after every earlier file operation on `id`. */
  serial<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.chains.get(id) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.catch(() => {});
    this.chains.set(id, tail);
    void tail.then(() => this.chains.get(id) === tail && this.chains.delete(id));
    return next;
  }

  now(): number {
    return this.o.clock.now();
  }

  private expired(e: Entry): boolean {
    return e.holder === undefined && this.now() - e.sidecar.updatedAt >= this.o.maxAgeMs;
  }

  async open(id: string, meta: { totalSize?: number } = {}): Promise<PartialTransfer> {
    checkPartialId(id);
    if (this.opening.has(id) || this.entries.get(id)?.holder !== undefined) {
      throw new RpcError(Code.Aborted, `partial transfer ${id} is being written by another stream; retry when it ends, or abort it`);
    }
    const { totalSize } = meta;
    if (totalSize !== undefined && (!Number.isSafeInteger(totalSize) || totalSize < 0)) throw new RangeError(`totalSize must be a non-negative integer, got ${totalSize}`);
    this.opening.add(id);
    try {
      let entry = this.entries.get(id);
      if (entry !== undefined && this.expired(entry)) {
        await this.remove(id);
        entry = undefined;
      }
      const now = this.now();
      if (entry === undefined) {
        if (totalSize !== undefined && totalSize > this.o.maxTransferBytes) throw this.overTransferBudget(id, totalSize);
        const sidecar: Sidecar = { v: 1, id, reserved: 0, createdAt: now, updatedAt: now, state: undefined };
        if (totalSize !== undefined) sidecar.totalSize = totalSize;
        // Sidecar first, then data: a crash in between leaves a sidecar whose data file is
        // recreated empty, never a data file nobody accounts.
        await this.serial(id, async () => {
          await writeSidecar(this.o.dir, sidecar);
          await createEmpty(partPath(this.o.dir, id));
        });
        entry = { sidecar, holder: undefined };
        this.entries.set(id, entry);
      } else {
        if (totalSize !== undefined && entry.sidecar.totalSize === undefined) entry.sidecar.totalSize = totalSize;
        entry.sidecar.updatedAt = now;
      }
      const handle = new Handle(this, entry, true);
      entry.holder = handle;
      return handle;
    } finally {
      this.opening.delete(id);
    }
  }

  async get(id: string): Promise<PartialTransfer | undefined> {
    checkPartialId(id);
    const entry = this.entries.get(id);
    if (entry === undefined) return undefined;
    if (this.expired(entry)) {
      await this.remove(id);
      return undefined;
    }
    return entry.holder ?? new Handle(this, entry, false);
  }

  async list(): Promise<PartialInfo[]> {
    await this.sweep();
    const now = this.now();
    return [...this.entries.values()]
      .map(({ sidecar: s, holder }) => {
        const info: PartialInfo = {
          id: s.id,
          bytes: s.reserved,
          createdAt: s.createdAt,
          updatedAt: s.updatedAt,
          // A held partial cannot expire before it is released, and then only maxAgeMs later.
          expiresAt: (holder === undefined ? s.updatedAt : Math.max(now, s.updatedAt)) + this.o.maxAgeMs,
        };
        if (s.totalSize !== undefined) info.totalSize = s.totalSize;
        return info;
      })
      .sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : 1));
  }

  async abort(id: string): Promise<boolean> {
    checkPartialId(id);
    if (!this.entries.has(id)) return false;
    await this.remove(id);
    return true;
  }

  async sweep(): Promise<string[]> {
    const gone: string[] = [];
    for (const [id, e] of this.entries) {
      if (!this.expired(e)) continue;
      await this.remove(id);
      gone.push(id);
    }
    return gone;
  }

  usage(): { transfers: number; bytes: number; maxBytes: number } {
    return { transfers: this.entries.size, bytes: this.used, maxBytes: this.o.maxBytes };
  }

  /** Forgets `id` at once (its holder is cut off), then deletes its files: sidecar first. */
  remove(id: string): Promise<void> {
    const entry = this.entries.get(id);
    if (entry !== undefined) this.forget(id, entry);
    return this.serial(id, async () => {
      await rm(sidecarPath(this.o.dir, id), { force: true });
      await rm(partPath(this.o.dir, id), { force: true });
    });
  }

  forget(id: string, entry: Entry): void {
    if (this.entries.get(id) !== entry) return;
    this.entries.delete(id);
    this.used -= entry.sidecar.reserved;
    entry.holder = undefined;
  }

  /** Accounts `bytes` more for `entry`, or throws RESOURCE_EXHAUSTED naming the budget. */
  reserve(entry: Entry, bytes: number): void {
    if (!Number.isSafeInteger(bytes) || bytes < 0) throw new RangeError(`reserve() takes a non-negative integer, got ${bytes}`);
    const s = entry.sidecar;
    if (s.reserved + bytes > this.o.maxTransferBytes) throw this.overTransferBudget(s.id, s.reserved + bytes);
    if (this.used + bytes > this.o.maxBytes) {
      throw new RpcError(
        Code.ResourceExhausted,
        `partial transfers would hold ${this.used + bytes} bytes, over the store's maxBytes (${this.o.maxBytes}): ` +
          `wait for uploads in progress to finish or expire, abort some, or raise maxBytes`,
      );
    }
    s.reserved += bytes;
    this.used += bytes;
    s.updatedAt = this.now();
  }

  private overTransferBudget(id: string, bytes: number): RpcError {
    if (this.o.maxTransferBytes >= this.o.maxBytes) {
      // No tighter per-transfer bound was set: the store's budget is what refuses it.
      return new RpcError(
        Code.ResourceExhausted,
        `partial transfer ${id} would hold ${bytes} bytes, over the store's maxBytes (${this.o.maxBytes}), which bounds every transfer: send a smaller payload or raise maxBytes`,
      );
    }
    return new RpcError(
      Code.ResourceExhausted,
      `partial transfer ${id} would hold ${bytes} bytes, over the store's maxTransferBytes (${this.o.maxTransferBytes}): send a smaller payload or raise maxTransferBytes`,
    );
  }
}

class Handle implements PartialTransfer {
  readonly id: string;
  readonly path: string;
  state: unknown;

  constructor(
    private readonly store: Store,
    private readonly entry: Entry,
    private readonly writable: boolean,
  ) {
    this.id = entry.sidecar.id;
    this.path = partPath(store.o.dir, this.id);
    this.state = entry.sidecar.state;
  }

  /** Still the holder of a partial the store keeps. */
  private get live(): boolean {
    return this.entry.holder === this && this.store.entries.get(this.id) === this.entry;
  }

  private check(what: string): void {
    if (!this.writable) throw new RpcError(Code.FailedPrecondition, `partial transfer ${this.id} was looked up with get(); open() it to ${what}`);
    if (!this.live) throw new RpcError(Code.Aborted, `partial transfer ${this.id} was aborted, expired or finished while being written`);
  }

  reserve(bytes: number): void {
    this.check("reserve");
    this.store.reserve(this.entry, bytes);
  }

  async save(): Promise<void> {
    this.check("save");
    return this.store.serial(this.id, async () => {
      this.check("save");
      const s = this.entry.sidecar;
      s.state = this.state;
      s.updatedAt = this.store.now();
      await writeSidecar(this.store.o.dir, s);
    });
  }

  async complete(to: string): Promise<void> {
    this.check("complete");
    return this.store.serial(this.id, async () => {
      this.check("complete");
      try {
        await rename(this.path, to);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "EXDEV") throw e;
        // Another file system: copy beside the target, then rename there, so `to` is never half.
        await copyFile(this.path, `${to}.partial-copy`);
        await rename(`${to}.partial-copy`, to);
        await rm(this.path, { force: true });
      }
      this.store.forget(this.id, this.entry);
      await rm(sidecarPath(this.store.o.dir, this.id), { force: true });
    });
  }

  async abort(): Promise<void> {
    if (this.store.entries.get(this.id) !== this.entry) return;
    await this.store.remove(this.id);
  }

  release(): Promise<void> {
    if (!this.live) return Promise.resolve();
    // Let go at once (an open() right after this call succeeds) with the state captured now;
    // the sidecar is written in order with whatever the next holder saves.
    const s = this.entry.sidecar;
    s.state = this.state;
    s.updatedAt = this.store.now();
    this.entry.holder = undefined;
    return this.store.serial(this.id, async () => {
      if (this.store.entries.get(this.id) === this.entry) await writeSidecar(this.store.o.dir, s);
    });
  }
}
