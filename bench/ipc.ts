/**
 * The messages between the orchestrator (run.ts) and its two children over the IPC channel of
 * `child_process.spawn`. Requests carry an `id` that the reply repeats.
 */

/** A request the orchestrator sends to a child. */
export type Request =
  | { id: number; type: "mem"; gc: boolean }
  | { id: number; type: "fanout" }
  | { id: number; type: "step"; step: string }
  | { id: number; type: "cpu" }
  | { id: number; type: "alloc"; action: "start" | "stop" }
  | { id: number; type: "exit" };

/** What a server child answers to "mem". */
export interface MemReport {
  rss: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
  produced: number;
  sinks: number;
}

/** What a server child answers to "fanout": when it started writing, and how long writing took. */
export interface FanoutReport {
  t0: number;
  writeMs: number;
  sinks: number;
}

/** What a server child answers to "cpu": its process's CPU time so far and when it read it. */
export interface CpuReport {
  /** User + system CPU time, µs (`process.cpuUsage()`). */
  cpuUs: number;
  /** `performance.now()` in the server, ms. */
  at: number;
}

/** Metrics of one run, by name (rates per second, latencies in µs, sizes in bytes, times in ms). */
export type Metrics = Record<string, number>;

/** Messages a child sends on its own (not replies). */
export type Event =
  | { type: "ready"; port: number }
  | { type: "event"; name: string; data?: Metrics }
  | { type: "result"; metrics: Metrics }
  | { type: "failed"; error: string };

/** Sends on the IPC channel; without one (a child started by hand) prints the message as JSON. */
export function send(message: unknown): void {
  if (process.send !== undefined) process.send(message);
  else console.log(JSON.stringify(message));
}
