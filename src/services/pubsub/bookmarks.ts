/**
 * Bookmarks (Kubernetes BOOKMARK, etcd progress_notify): a subscription that asked for them and
 * has sent nothing for its interval gets its position without an event. One timer per hub serves
 * every such subscription: a timer per subscription would cost ~0.1 KB and a timer-list entry
 * each, for 10,000 idle streams. A subscription's position standing still is read from its
 * cursor at each tick, so sending events needs no hook here.
 */

/** What a bookmark needs of a subscription. */
export interface BookmarkTarget {
  /** The position the stream has reached (the last event sent, or where it started). */
  readonly cursor: string;
  /** Sends `message` now if the stream is live, idle and has room; false otherwise. */
  sendBookmark(message: unknown): boolean;
}

interface Schedule {
  readonly every: number;
  readonly make: (position: string) => unknown;
  cursor: string;
  since: number;
}

/** The bookmark schedules of one hub. `now` is injectable for tests. */
export class Bookmarks {
  private readonly schedules = new Map<BookmarkTarget, Schedule>();
  private timer: NodeJS.Timeout | undefined;
  private tickMs = Number.POSITIVE_INFINITY;

  constructor(private readonly now: () => number = Date.now) {}

  /** Bookmarks `target` every `every` ms of silence, with `make(position)` as the message. */
  add(target: BookmarkTarget, every: number, make: (position: string) => unknown): void {
    this.schedules.set(target, { every, make, cursor: target.cursor, since: this.now() });
    // A bookmark is at most a quarter of its interval late (and the timer ticks at most 40 times a second).
    const tick = Math.min(1000, Math.max(25, Math.floor(every / 4)));
    if (tick < this.tickMs) {
      this.tickMs = tick;
      this.stopTimer();
      this.timer = setInterval(() => this.tick(), tick);
      this.timer.unref();
    }
  }

  delete(target: BookmarkTarget): void {
    if (this.schedules.delete(target) && this.schedules.size === 0) this.stop();
  }

  /** Sends the bookmarks that are due. */
  tick(): void {
    const now = this.now();
    for (const [target, s] of this.schedules) {
      if (target.cursor !== s.cursor) {
        s.cursor = target.cursor;
        s.since = now;
      } else if (now - s.since >= s.every && target.sendBookmark(s.make(s.cursor))) {
        s.since = now;
      }
    }
  }

  /** Stops the timer (schedules added later start it again). */
  stop(): void {
    this.stopTimer();
    this.tickMs = Number.POSITIVE_INFINITY;
  }

  private stopTimer(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }
}
