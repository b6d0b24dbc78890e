/**
 * A TCP proxy on 127.0.0.1 that forwards to a target and can break the path the ways real
 * networks do, in either direction or both:
 *
 * - `blackhole()`: bytes vanish, sockets stay open (a dead NAT entry, a partitioned link);
 * - `reset()`: every connection gets a TCP RST (a crashed peer or a middlebox killing flows);
 * - `cut()`: every connection is closed (FIN/RST as node likes it);
 * - `delay(ms)`: each chunk arrives `ms` late (a long path);
 * - `throttle(bytesPerSecond)`: a slow link.
 *
 * Delayed or throttled bytes queue in the proxy up to `queueBytes`; beyond that it stops reading
 * the sender, so TCP backpressure reaches it as on a real slow link. `restore()` clears every
 * fault. Counts accepted connections, so tests can check that a client did not reconnect.
 */
import { connect, createServer, type AddressInfo, type Socket } from "node:net";

/** Which way a fault applies: to bytes the client sends, bytes the server sends, or both. */
export type Direction = "toServer" | "toClient" | "both";

export interface FaultProxy {
  readonly port: number;
  readonly target: string;
  /** Connections accepted since start. */
  readonly connections: number;
  /** Connections open now. */
  readonly open: number;
  /** Drops bytes silently from now on (sockets stay open). */
  blackhole(direction?: Direction): void;
  /** Delays every chunk by `ms` from now on. */
  delay(ms: number, direction?: Direction): void;
  /** Limits the rate to `bytesPerSecond` from now on. */
  throttle(bytesPerSecond: number, direction?: Direction): void;
  /** Clears every fault; queued bytes go out. */
  restore(): void;
  /** Resets every open connection (TCP RST on both sides). New connections still work. */
  reset(): void;
  /** Destroys every open connection. New connections still work. */
  cut(): void;
  close(): Promise<void>;
}

export interface FaultProxyOptions {
  /** Bytes a delayed or throttled direction queues before it stops reading. Default 1 MiB. */
  queueBytes?: number;
}

interface Faults {
  blackhole: boolean;
  delayMs: number;
  bytesPerSecond: number;
}

const clean = (): Faults => ({ blackhole: false, delayMs: 0, bytesPerSecond: Infinity });
/** Throttled chunks go out in slices this big, so the rate is smooth. */
const SLICE = 16 * 1024;

/** One direction of one connection: reads `from`, applies the faults, writes `to`. */
class Pipe {
  private readonly queue: Array<{ at: number; chunk: Buffer }> = [];
  private queued = 0;
  private nextFree = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly held = new Set<string>();

  constructor(
    private readonly from: Socket,
    private readonly to: Socket,
    private readonly faults: Faults,
    private readonly queueBytes: number,
  ) {
    from.on("data", (chunk: Buffer) => this.push(chunk));
    to.on("drain", () => this.release("drain"));
  }

  private push(chunk: Buffer): void {
    const f = this.faults;
    if (f.blackhole) return;
    if (f.delayMs === 0 && f.bytesPerSecond === Infinity && this.queue.length === 0) return this.send(chunk);
    const now = Date.now();
    for (let i = 0; i < chunk.length; i += SLICE) {
      const slice = chunk.subarray(i, Math.min(i + SLICE, chunk.length));
      let at = Math.max(now + f.delayMs, this.nextFree);
      if (f.bytesPerSecond !== Infinity) at = Math.max(at, this.nextFree) + (slice.length * 1000) / f.bytesPerSecond;
      this.nextFree = at;
      this.queue.push({ at, chunk: slice });
      this.queued += slice.length;
    }
    if (this.queued >= this.queueBytes) this.hold("queue");
    this.schedule();
  }

  /** Faults changed: send what is due now (restore() makes everything due). */
  flushDue(): void {
    if (this.faults.delayMs === 0 && this.faults.bytesPerSecond === Infinity) {
      for (const q of this.queue) q.at = 0;
      this.nextFree = 0;
    }
    clearTimeout(this.timer);
    this.timer = undefined;
    this.schedule();
  }

  private schedule(): void {
    const now = Date.now();
    while (this.queue.length > 0 && this.queue[0]!.at <= now) {
      const { chunk } = this.queue.shift()!;
      this.queued -= chunk.length;
      if (!this.faults.blackhole) this.send(chunk);
    }
    if (this.queued < this.queueBytes) this.release("queue");
    if (this.queue.length > 0 && this.timer === undefined) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.schedule();
      }, this.queue[0]!.at - now);
    }
  }

  private send(chunk: Buffer): void {
    if (this.to.destroyed) return;
    if (!this.to.write(chunk)) this.hold("drain");
  }

  private hold(why: string): void {
    this.held.add(why);
    this.from.pause();
  }

  private release(why: string): void {
    if (!this.held.delete(why)) return;
    if (this.held.size === 0 && !this.from.destroyed) this.from.resume();
  }

  stop(): void {
    clearTimeout(this.timer);
    this.queue.length = 0;
  }
}

export async function startFaultProxy(upstreamPort: number, options: FaultProxyOptions = {}): Promise<FaultProxy> {
  const queueBytes = options.queueBytes ?? 1024 * 1024;
  const toServer = clean();
  const toClient = clean();
  const conns = new Set<{ client: Socket; upstream: Socket; pipes: Pipe[] }>();
  let accepted = 0;
  const server = createServer((client) => {
    accepted++;
    const upstream = connect(upstreamPort, "127.0.0.1");
    const conn = { client, upstream, pipes: [new Pipe(client, upstream, toServer, queueBytes), new Pipe(upstream, client, toClient, queueBytes)] };
    conns.add(conn);
    const end = () => {
      if (!conns.delete(conn)) return;
      for (const p of conn.pipes) p.stop();
      client.destroy();
      upstream.destroy();
    };
    client.on("close", end).on("error", end);
    upstream.on("close", end).on("error", end);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  const each = (direction: Direction, f: (faults: Faults) => void) => {
    if (direction !== "toClient") f(toServer);
    if (direction !== "toServer") f(toClient);
    for (const c of conns) for (const p of c.pipes) p.flushDue();
  };
  const cut = (how: (s: Socket) => void) => {
    for (const c of [...conns]) {
      conns.delete(c);
      for (const p of c.pipes) p.stop();
      how(c.client);
      how(c.upstream);
    }
  };
  return {
    port,
    target: `127.0.0.1:${port}`,
    get connections() {
      return accepted;
    },
    get open() {
      return conns.size;
    },
    blackhole: (direction = "both") => each(direction, (f) => (f.blackhole = true)),
    delay: (ms, direction = "both") => each(direction, (f) => (f.delayMs = ms)),
    throttle: (bytesPerSecond, direction = "both") => each(direction, (f) => (f.bytesPerSecond = bytesPerSecond)),
    restore: () => each("both", (f) => Object.assign(f, clean())),
    reset: () => cut((s) => s.resetAndDestroy()),
    cut: () => cut((s) => s.destroy()),
    close() {
      cut((s) => s.destroy());
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
