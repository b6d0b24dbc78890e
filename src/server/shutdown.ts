/**
 * A server's shutdown, which happens once: whether it has begun, who is told when it begins
 * (a health service flips to NOT_SERVING there), and a promise for its end.
 *
 * Invariants: listeners run at most once each, in registration order, synchronously inside the
 * first `shutdown()`/`forceShutdown()` call; a listener that throws is logged and does not stop
 * the others or the shutdown. `done` is the same promise for every caller.
 */
import type { Logger } from "../logger.js";

/** Tracks the one shutdown of a server. */
export class Shutdown {
  private readonly listeners = new Set<() => void>();
  private begun = false;
  private finished: Promise<void> | undefined;

  constructor(private readonly logger: Logger) {}

  /** Whether shutdown has begun. */
  get started(): boolean {
    return this.begun;
  }

  /**
   * Registers `fn` to run when shutdown begins; if it already has, `fn` runs in a microtask.
   * Returns a function that unregisters it.
   */
  onStart(fn: () => void): () => void {
    if (this.begun) {
      queueMicrotask(() => this.run(fn));
      return () => {};
    }
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /**
   * Begins shutdown on the first call: runs the listeners, then `finish` (which starts closing
   * and returns the promise of the end). Later calls return that same promise.
   */
  begin(finish: () => Promise<void>): Promise<void> {
    if (this.finished !== undefined) return this.finished;
    this.begun = true;
    const listeners = [...this.listeners];
    this.listeners.clear();
    for (const fn of listeners) this.run(fn);
    this.finished = finish();
    return this.finished;
  }

  private run(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.logger.error("a shutdown listener failed", e);
    }
  }
}
