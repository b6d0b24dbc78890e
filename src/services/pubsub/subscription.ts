/**
 * One subscriber's side of the fan-out: a cursor (the last event handed to its stream) and a
 * bounded queue in front of the call's send buffer.
 *
 * Lifecycle: `catching-up` (history read from the log with `ctx.send`, so backpressure simply
 * waits; live events meanwhile wait in the queue) → `live` (each event goes out with
 * `ctx.trySend`; when the send buffer is full it waits in the queue, drained as the buffer
 * empties) → `ended`.
 *
 * Invariants:
 * - Events reach the stream in id order, each once, none skipped: the catch-up reads the log
 *   until it is empty, and only then are queued events (those after the cursor) sent.
 * - Memory per subscriber is bounded: the call's send buffer plus `maxQueued` events and
 *   `maxQueuedBytes` payload bytes, whichever comes first. A subscriber whose queue would grow
 *   past that is cut: its stream is reset (RST_STREAM ENHANCE_YOUR_CALM, which clients read as
 *   RESOURCE_EXHAUSTED) at once, so it learns while the position it reached is still retained
 *   and resumes from it; others are unaffected and `offer` never blocks the publisher.
 */
import type { HandlerContext } from "../../handler-context.js";
import { RpcError } from "../../protocol/errors.js";
import { Code } from "../../protocol/code.js";
import type { EventLog, StoredEvent } from "./event-log.js";

/** How a subscription turns a stored event into the stream's response message. */
export type EventMapper<M> = (event: StoredEvent) => M;

/** One subscriber of the fan-out, serving one call (see the module comment). */
export class Subscription<M = unknown> {
  private state: "catching-up" | "live" | "ended" = "catching-up";
  private queue: StoredEvent[] = [];
  private queueStart = 0;
  /** Payload bytes of the queued events (a count alone let 1024 events of 4 MiB each hold 4 GiB). */
  private queuedBytes = 0;
  private overflowed = false;
  private draining = false;
  /** While set, live events up to this id were already taken (see `catchUp`). */
  private newest: string | undefined;
  private settle!: { resolve: () => void; reject: (e: RpcError) => void };
  /** Settles when the subscription ends: resolves for Unsubscribe, rejects with the status otherwise. */
  readonly done: Promise<void>;
  /** The id of the last event handed to the stream (or the start position). */
  cursor: string;
  /** It was ended for falling behind (counted in the hub's stats). */
  cutForLag = false;
  /**
   * While set, events up to `until` (the head when the stream began) are history: sent through
   * `map`, then `end(until)` once the first later event is due or the log has no more.
   */
  history: { until: string; map: EventMapper<M>; end: (position: string) => M } | undefined;

  constructor(
    readonly id: string,
    readonly topic: string,
    start: string,
    private readonly ctx: HandlerContext<M>,
    private readonly log: EventLog,
    private readonly map: EventMapper<M>,
    private readonly maxQueued: number,
    private readonly onEnd: (s: Subscription<M>) => void,
    private readonly maxQueuedBytes: number = Number.POSITIVE_INFINITY,
  ) {
    this.cursor = start;
    this.done = new Promise((resolve, reject) => (this.settle = { resolve, reject }));
    // The caller awaits `done`; a rejection nobody reads yet must not count as unhandled.
    this.done.catch(() => {});
  }

  get ended(): boolean {
    return this.state === "ended";
  }

  /** Events waiting for this subscriber's stream to take them: how far behind it is. */
  get queued(): number {
    return this.queue.length - this.queueStart;
  }

  /** Whether one more event of `bytes` would take the queue past either bound. */
  private full(bytes: number): boolean {
    return this.queued >= this.maxQueued || (this.queued > 0 && this.queuedBytes + bytes > this.maxQueuedBytes);
  }

  private enqueue(ev: StoredEvent): void {
    this.queue.push(ev);
    this.queuedBytes += ev.payload.byteLength;
  }

  /** Sends the retained history after the cursor, then goes live. Rejections end the subscription. */
  async catchUp(batch: number): Promise<void> {
    try {
      for (;;) {
        const events = await this.log.read(this.topic, this.cursor, batch);
        if (this.ended) return;
        if (events.length === 0) {
          // Live events dropped while the queue overflowed are in the log: read them first.
          if (this.overflowed) {
            this.overflowed = false;
            continue;
          }
          break;
        }
        for (const ev of events) {
          const h = this.history;
          if (h !== undefined && this.log.compare(ev.id, h.until) > 0) await this.endHistory(h);
          await this.ctx.send(this.history !== undefined ? this.history.map(ev) : this.map(ev));
          if (this.ended) return;
          this.cursor = ev.id;
        }
      }
      if (this.history !== undefined) await this.endHistory(this.history);
      if (this.ended) return;
    } catch (e) {
      this.fail(RpcError.from(e, Code.Unavailable));
      return;
    }
    this.state = "live";
    // Queued events the history already covered are dropped here. A follower may still lag
    // behind the history read (Redis: its XREAD answers after our XRANGE), so live events are
    // compared with the newest one taken until the first newer one passes; the follower's
    // order makes every later one newer too.
    const fresh: StoredEvent[] = [];
    for (let i = this.queueStart; i < this.queue.length; i++) {
      const ev = this.queue[i]!;
      if (this.log.compare(ev.id, this.cursor) > 0) fresh.push(ev);
    }
    this.queue = fresh;
    this.queueStart = 0;
    this.queuedBytes = fresh.reduce((n, ev) => n + ev.payload.byteLength, 0);
    this.newest = fresh.length > 0 ? fresh[fresh.length - 1]!.id : this.cursor;
    if (this.queued > 0) void this.drain();
  }

  private async endHistory(h: NonNullable<Subscription<M>["history"]>): Promise<void> {
    this.history = undefined;
    await this.ctx.send(h.end(h.until));
  }

  /** Takes one live event from the fan-out. Never blocks. */
  offer(ev: StoredEvent): void {
    if (this.state === "ended") return;
    if (this.state === "catching-up") {
      if (this.full(ev.payload.byteLength)) {
        this.queue = [];
        this.queueStart = 0;
        this.queuedBytes = 0;
        this.overflowed = true;
      }
      this.enqueue(ev);
      return;
    }
    if (this.newest !== undefined) {
      if (this.log.compare(ev.id, this.newest) <= 0) return;
      this.newest = undefined;
    }
    if (this.queued === 0 && this.ctx.trySend(this.map(ev))) {
      this.cursor = ev.id;
      return;
    }
    if (this.full(ev.payload.byteLength)) {
      this.cutForLag = true;
      // A status would queue behind everything already buffered for this reader (the send
      // buffer, the peer's window, the client's own buffers): at its pace that can take hours,
      // by which time its position may be trimmed. The reset overtakes all of it; the reader
      // resumes after the last event it handled, still retained now.
      this.ctx.resetStream(Code.ResourceExhausted);
      const behind = this.queued >= this.maxQueued ? `${this.maxQueued} events` : `${this.maxQueuedBytes} bytes of events (maxQueuedBytes)`;
      this.fail(new RpcError(Code.ResourceExhausted, `subscriber to "${this.topic}" fell behind by more than ${behind}; the stream was reset`));
      return;
    }
    this.enqueue(ev);
    if (!this.draining) void this.drain();
  }

  private async drain(): Promise<void> {
    this.draining = true;
    try {
      while (this.queued > 0 && !this.ended) {
        const ev = this.queue[this.queueStart]!;
        if (!this.ctx.trySend(this.map(ev))) {
          await this.ctx.writable();
          continue;
        }
        this.cursor = ev.id;
        this.queuedBytes -= ev.payload.byteLength;
        this.queue[this.queueStart++] = undefined as never;
        if (this.queueStart > 256 && this.queueStart * 2 > this.queue.length) {
          this.queue = this.queue.slice(this.queueStart);
          this.queueStart = 0;
        }
      }
    } finally {
      this.draining = false;
    }
  }

  /**
   * Sends `message` (a bookmark) if the stream is live with nothing queued and room in its send
   * buffer: it carries no event, so it never waits and never counts against the queue.
   */
  sendBookmark(message: M): boolean {
    return this.state === "live" && this.queued === 0 && this.ctx.trySend(message);
  }

  /** Ends the stream with OK (Unsubscribe). */
  end(): void {
    if (this.finish()) this.settle.resolve();
  }

  /** Ends the stream with `error`'s status. */
  fail(error: RpcError): void {
    if (this.finish()) this.settle.reject(error);
  }

  private finish(): boolean {
    if (this.state === "ended") return false;
    this.state = "ended";
    this.queue = [];
    this.queueStart = 0;
    this.onEnd(this);
    return true;
  }
}
