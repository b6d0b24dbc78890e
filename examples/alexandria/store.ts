/**
 * Where the library keeps entries, bindings and lent files. Pluggable: the library talks only to
 * `LibraryStore`; `memoryStore()` is the default, `redisStore()` (redis-store.ts) keeps them on
 * Redis and disk across restarts.
 */
import { randomUUID } from "node:crypto";
import { createPushable } from "../../src/index.js";
import { memorySink, type ChunkSink, type ChunkSource, type MemorySink } from "../../src/transfer/index.js";
import type { Binding, LibraryEntry } from "./domain.js";

/** The library's storage. */
export interface LibraryStore {
  /** Saves (or replaces, by path) an entry of `agent`'s library. */
  saveEntry(agent: string, entry: LibraryEntry): Promise<void>;
  /** The entries of `agent`'s library. */
  entries(agent: string): Promise<LibraryEntry[]>;
  /** Records a binding (the same file, lender and borrower twice gives back the first one). */
  addBinding(binding: Omit<Binding, "id">): Promise<Binding>;
  /** The bindings `agent` takes part in, as lender or borrower. */
  bindings(agent: string): Promise<Binding[]>;
  /** Bindings `agent` takes part in, made from now on, until `signal` aborts. */
  watchBindings(agent: string, signal: AbortSignal): AsyncIterable<Binding>;
  /** The sink a lent file's bytes go to; the same object for the same hash, kept across attempts. */
  fileSink(hash: string): ChunkSink;
  /** A completely received file, or undefined when the library does not hold it whole. */
  file(hash: string): Promise<ChunkSource | undefined>;
  /** Releases connections; watchers end. The store is not used afterwards. */
  close(): Promise<void>;
}

/** A store in memory: nothing survives the process. */
export function memoryStore(): LibraryStore {
  const libraries = new Map<string, Map<string, LibraryEntry>>();
  const bindings: Binding[] = [];
  const files = new Map<string, MemorySink>();
  const watchers = new Set<{ agent: string; push: (b: Binding) => void; end: () => void }>();
  const involves = (b: Binding, agent: string) => b.lender === agent || b.borrower === agent;
  return {
    async saveEntry(agent, entry) {
      let library = libraries.get(agent);
      if (library === undefined) libraries.set(agent, (library = new Map()));
      library.set(entry.path, entry);
    },
    async entries(agent) {
      return [...(libraries.get(agent)?.values() ?? [])];
    },
    async addBinding(b) {
      const existing = bindings.find((x) => x.hash === b.hash && x.lender === b.lender && x.borrower === b.borrower);
      if (existing !== undefined) return existing;
      const binding = { ...b, id: randomUUID() };
      bindings.push(binding);
      for (const w of watchers) if (involves(binding, w.agent)) w.push(binding);
      return binding;
    },
    async bindings(agent) {
      return bindings.filter((b) => involves(b, agent));
    },
    watchBindings(agent, signal) {
      // Bindings are rare; a generous queue means a watcher never misses one.
      const queue = createPushable<Binding>({ highWaterMark: 1024 });
      const watcher = { agent, push: (b: Binding) => void queue.tryPush(b), end: () => stop() };
      watchers.add(watcher);
      const stop = () => {
        watchers.delete(watcher);
        queue.end();
      };
      if (signal.aborted) stop();
      else signal.addEventListener("abort", stop, { once: true });
      return queue;
    },
    fileSink(hash) {
      let sink = files.get(hash);
      if (sink === undefined) files.set(hash, (sink = memorySink()));
      return sink;
    },
    async file(hash) {
      const sink = files.get(hash);
      return sink?.sha256 !== undefined ? sink.bytes() : undefined;
    },
    async close() {
      for (const w of watchers) w.end();
      watchers.clear();
    },
  };
}
