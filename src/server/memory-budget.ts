/**
 * Memory budgets of a server: the bytes that calls buffer on behalf of their peers (request
 * messages received but not yet taken by a handler, responses written but not yet taken by
 * HTTP/2 within the client's window), counted per connection and per server.
 *
 * A budget never buffers and hopes: it is enforced where HTTP/2 lets a receiver push back. A call
 * on a connection over its budget stops reading its stream (so the client's window is no longer
 * replenished and it must stop sending), and a producer of responses waits as if its own buffer
 * were full. Nothing is dropped and no call fails because of a budget.
 *
 * Fairness: a connection may always use its fair share of the server budget (the server limit
 * divided by the connections that hold bytes), however much the others hold, so a few
 * connections that never read cannot starve the rest. A message that arrives on a connection
 * holding nothing is always admitted (a message is bounded by `maxReceiveMessageBytes`), so a
 * limit smaller than a message can slow a connection down but never wedge it.
 *
 * Pure bookkeeping: no I/O and no timers; callers pause and resume their own streams.
 */

/** The budget options of `createServer`, with their defaults. */
export interface MemoryBudgetOptions {
  /**
   * Bytes of request and response messages one connection may make the server buffer before its
   * calls stop reading and its producers wait. Also bounds the receive windows that BDP probing
   * gives the connection's streams (a quarter of the budget divided among its open calls).
   * Default 4 MiB: each call may also finish the message it is reading and send one response
   * beyond it, so 100 stalled calls hold about 13 MB (measured: +36 MB RSS with node's own
   * per-stream costs; see the README's "Limits and hardening").
   */
  maxConnectionBufferedBytes?: number;
  /**
   * Bytes all connections together may make the server buffer; past it, a connection holding
   * more than its fair share (this divided by the connections holding bytes) is pushed back.
   * Default 32 MiB.
   */
  maxServerBufferedBytes?: number;
}

export const budgetDefaults = Object.freeze({
  maxConnectionBufferedBytes: 4 * 1024 * 1024,
  maxServerBufferedBytes: 32 * 1024 * 1024,
});

function checkBytes(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 64 * 1024) throw new RangeError(`${name} must be an integer of at least 65536 bytes, got ${value}`);
  return value;
}

/** The server-wide budget; one per server. */
export class ServerBudget {
  used = 0;
  /** Connections that hold bytes now (for the fair share). */
  holding = 0;
  readonly limit: number;
  readonly connectionLimit: number;
  private readonly waiting = new Set<ConnectionBudget>();

  constructor(options: MemoryBudgetOptions = {}) {
    this.connectionLimit = checkBytes("maxConnectionBufferedBytes", options.maxConnectionBufferedBytes ?? budgetDefaults.maxConnectionBufferedBytes);
    this.limit = checkBytes("maxServerBufferedBytes", options.maxServerBufferedBytes ?? budgetDefaults.maxServerBufferedBytes);
  }

  /** A new connection's budget. */
  connection(): ConnectionBudget {
    return new ConnectionBudget(this);
  }

  /** The most one connection may hold while the server as a whole is over its limit. */
  get fairShare(): number {
    return Math.floor(this.limit / Math.max(1, this.holding));
  }

  /** @internal */
  park(c: ConnectionBudget): void {
    this.waiting.add(c);
  }

  /** @internal */
  unpark(c: ConnectionBudget): void {
    this.waiting.delete(c);
  }

  /** @internal Bytes were released somewhere: connections waiting on the server limit may go on. */
  relieve(): void {
    if (this.waiting.size === 0 || this.used > this.limit) return;
    for (const c of [...this.waiting]) c.wake();
  }
}

/** One connection's budget. */
export class ConnectionBudget {
  used = 0;
  private waiters: Array<{ bytes: number; fn: () => void }> | undefined;

  constructor(private readonly server: ServerBudget) {}

  /** The connection limit. */
  get limit(): number {
    return this.server.connectionLimit;
  }

  /** Whether `bytes` more may be buffered now (0: whether this connection is within its budget). */
  admits(bytes: number): boolean {
    if (this.used === 0) return true;
    const after = this.used + bytes;
    if (after > this.server.connectionLimit) return false;
    return this.server.used + bytes <= this.server.limit || after <= this.server.fairShare;
  }

  /** True while this connection holds more than it may (readers pause, producers wait). */
  get over(): boolean {
    return !this.admits(0);
  }

  /**
   * True while the connection holds twice its limit: then even a producer holding nothing waits
   * (the one-message allowance of each call no longer applies), which caps what the allowances
   * of many calls add up to. Calls waiting here are released as soon as their client reads.
   */
  get saturated(): boolean {
    return this.used >= 2 * this.server.connectionLimit || (this.server.used > this.server.limit && this.used >= 2 * this.server.fairShare);
  }

  /** Counts `bytes` as buffered (never refused: callers ask `admits` first where they can wait). */
  add(bytes: number): void {
    if (bytes <= 0) return;
    if (this.used === 0) this.server.holding++;
    this.used += bytes;
    this.server.used += bytes;
  }

  /** `bytes` counted by `add` are no longer buffered. */
  release(bytes: number): void {
    if (bytes <= 0) return;
    this.used -= bytes;
    this.server.used -= bytes;
    if (this.used <= 0) {
      this.used = 0;
      this.server.holding--;
    }
    if (this.waiters !== undefined) this.wake();
    this.server.relieve();
  }

  /** Runs `fn` once `bytes` more are admitted (at once if they are now). Waiters run in order. */
  whenAdmits(bytes: number, fn: () => void): void {
    if (this.waiters === undefined && this.admits(bytes)) return fn();
    (this.waiters ??= []).push({ bytes, fn });
    this.server.park(this);
  }

  /** @internal Runs the waiters now admitted, in order, stopping at the first that is not. */
  wake(): void {
    const w = this.waiters;
    if (w === undefined) return;
    this.waiters = undefined;
    this.server.unpark(this);
    let i = 0;
    // A waiter adds its own bytes when it runs, so each is judged after the ones before it.
    while (i < w.length && this.admits(w[i]!.bytes)) w[i++]!.fn();
    if (i < w.length) {
      const rest = w.slice(i);
      this.waiters = this.waiters === undefined ? rest : rest.concat(this.waiters);
      this.server.park(this);
    }
  }

  /** The connection closed: whatever it still counted is released, waiters are dropped. */
  close(): void {
    this.waiters = undefined;
    this.server.unpark(this);
    if (this.used > 0) this.release(this.used);
  }
}
