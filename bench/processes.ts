/**
 * The orchestrators' child processes (run.ts, transfer.ts): one run is a fresh server process
 * pinned to core 0 and a fresh client process pinned to core 1 (`taskset`, when it exists), on
 * 127.0.0.1, talking to the orchestrator over the IPC channel (ipc.ts: requests with an `id`
 * the reply repeats, events without one), asked to exit at the end and killed by PID if they
 * do not. Every child still running when the orchestrator exits or is interrupted is killed.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { sleep } from "./common.js";
import type { Event, Metrics } from "./ipc.js";

/** dist/bench: where the child scripts are. */
const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "..", "..");

/** How the children of one orchestrator are started. */
export interface SpawnOptions {
  /** Pins the server to core 0 and the client to core 1 (see `hasTaskset`). */
  taskset: boolean;
  /** Profiles every child (`node --cpu-prof`) into this directory. */
  cpuProfDir?: string | undefined;
  /** Node options for every child (e.g. `--expose-gc`). */
  nodeArgs?: readonly string[];
}

/** Whether `taskset` exists and may pin to core 0. */
export function hasTaskset(): boolean {
  return spawnSync("taskset", ["-c", "0", "true"]).status === 0;
}

const children = new Set<ChildProcess>();

/** Kills (SIGKILL, by PID) every child still running. */
export function killAll(): void {
  for (const c of children) if (c.pid !== undefined && c.exitCode === null) process.kill(c.pid, "SIGKILL");
  children.clear();
}

let cleanupInstalled = false;
function installCleanup(): void {
  if (cleanupInstalled) return;
  cleanupInstalled = true;
  process.on("exit", killAll);
  for (const sig of ["SIGINT", "SIGTERM"] as const)
    process.on(sig, () => {
      killAll();
      process.exit(130);
    });
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(what)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** A child process with request/reply over IPC. */
export class Child {
  private nextId = 1;
  private readonly replies = new Map<number, (m: Record<string, unknown>) => void>();
  private readonly events: Event[] = [];
  private eventWaiter: (() => void) | undefined;
  readonly exited: Promise<void>;

  constructor(
    readonly proc: ChildProcess,
    readonly label: string,
    /** How long `stop()` waits for the child to exit by itself. */
    private readonly exitGraceMs: number,
  ) {
    children.add(proc);
    proc.on("message", (m: Record<string, unknown>) => {
      if (typeof m.id === "number") {
        const r = this.replies.get(m.id);
        this.replies.delete(m.id);
        r?.(m);
      } else {
        this.events.push(m as Event);
        this.eventWaiter?.();
      }
    });
    this.exited = new Promise((resolve) => proc.once("exit", () => resolve()));
    proc.once("exit", () => {
      children.delete(proc);
      this.eventWaiter?.();
    });
  }

  request<T>(message: Record<string, unknown>, timeoutMs = 30_000): Promise<T & { error?: string }> {
    const id = this.nextId++;
    return withTimeout(
      new Promise((resolve) => {
        this.replies.set(id, resolve as (m: Record<string, unknown>) => void);
        this.proc.send({ ...message, id });
      }),
      timeoutMs,
      `${this.label}: no reply to ${String(message.type)}`,
    );
  }

  /** The next event matching `pick` (failures and exits reject). */
  async event(pick: (e: Event) => boolean, timeoutMs: number): Promise<Event> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.events.findIndex((e) => pick(e) || e.type === "failed");
      if (i >= 0) {
        const e = this.events.splice(i, 1)[0]!;
        if (e.type === "failed") throw new Error(`${this.label} failed: ${e.error}`);
        return e;
      }
      if (this.proc.exitCode !== null || this.proc.signalCode !== null) throw new Error(`${this.label} exited (${this.proc.exitCode ?? this.proc.signalCode})`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${this.label}: timed out waiting`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.eventWaiter = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.eventWaiter = undefined;
    }
  }

  /** Asks the child to exit (so --cpu-prof can write), then kills it by PID. */
  async stop(): Promise<void> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) {
      try {
        this.proc.send({ type: "exit", id: 0 });
      } catch {
        // channel already closed
      }
      await Promise.race([this.exited, sleep(this.exitGraceMs)]);
      if (this.proc.exitCode === null && this.proc.signalCode === null && this.proc.pid !== undefined) process.kill(this.proc.pid, "SIGKILL");
      await this.exited;
    }
    children.delete(this.proc);
  }
}

/** Starts `node <script> …args` (script relative to dist/bench) on `core`, with an IPC channel. */
export function startChild(script: string, args: readonly string[], core: number, label: string, profileName: string, o: SpawnOptions): Child {
  installCleanup();
  const nodeArgs = [...(o.nodeArgs ?? [])];
  if (o.cpuProfDir !== undefined) nodeArgs.push("--cpu-prof", "--cpu-prof-dir", resolve(o.cpuProfDir), "--cpu-prof-name", `${profileName}.cpuprofile`);
  const cmd = [process.execPath, ...nodeArgs, join(here, script), ...args];
  const [file, ...rest] = o.taskset ? ["taskset", "-c", String(core), ...cmd] : cmd;
  const proc = spawn(file!, rest, { stdio: ["ignore", "inherit", "inherit", "ipc"], cwd: root });
  return new Child(proc, label, o.cpuProfDir === undefined ? 1000 : 10_000);
}

/** One run: which server and client to start, and how to get its metrics. */
export interface PairRun {
  /** Names the processes in errors: `${label} server`, `${label} client`. */
  label: string;
  /** Names the profiles: `${tag}-server`, `${tag}-client`. */
  tag: string;
  server: { script: string; args: readonly string[] };
  /** The client's command line, given the port the server reported as ready. */
  client: (port: number) => { script: string; args: readonly string[] };
  /** How long the client may take to report its `result` event. */
  resultTimeoutMs: number;
  /** Drives the run step by step instead (the memory scenarios); default: await the client's `result`. */
  drive?: ((server: Child, client: Child) => Promise<Metrics>) | undefined;
}

/**
 * Starts the server (core 0), waits for its `ready` event and port, starts the client (core 1),
 * gets the run's metrics, and stops both whatever happened.
 */
export async function runPair(run: PairRun, o: SpawnOptions): Promise<Metrics> {
  const server = startChild(run.server.script, run.server.args, 0, `${run.label} server`, `${run.tag}-server`, o);
  let client: Child | undefined;
  try {
    const ready = await server.event((e) => e.type === "ready", 15_000);
    const port = (ready as { port: number }).port;
    const c = run.client(port);
    client = startChild(c.script, c.args, 1, `${run.label} client`, `${run.tag}-client`, o);
    if (run.drive !== undefined) return await run.drive(server, client);
    const e = await client.event((e) => e.type === "result", run.resultTimeoutMs);
    return (e as { metrics: Metrics }).metrics;
  } finally {
    await Promise.all([client?.stop(), server.stop()]);
  }
}
