import { IdleTimeoutError } from "../protocol/errors.js";
import { startTimer, type LongTimer } from "../timer.js";

/**
 * A call's idle timeout (`idleTimeoutMs`), the same on both sides: it fires once no message has
 * gone either way for `ms`. One timer, re-armed lazily: a message only records the time, and
 * the timer, when it fires early, sleeps again for what is left. Both ends run one (the client
 * tells the server its value in `rill-idle-timeout-ms`), so either may fire first; `expired`
 * lets the other end recognise the peer's reaction as the same timeout.
 */
export class IdleTimer {
  private lastActivity = performance.now();
  private timer: LongTimer | undefined;

  constructor(
    readonly ms: number,
    private readonly onIdle: (reason: IdleTimeoutError) => void,
  ) {
    this.timer = startTimer(ms, this.check, true);
  }

  /** A message went one way or the other. */
  touch(): void {
    this.lastActivity = performance.now();
  }

  /** Whether the call has been idle for (all but `slackMs` of) the timeout. */
  expired(slackMs: number): boolean {
    return this.timer !== undefined && performance.now() - this.lastActivity >= this.ms - slackMs;
  }

  cancel(): void {
    this.timer?.cancel();
    this.timer = undefined;
  }

  private readonly check = (): void => {
    const idle = performance.now() - this.lastActivity;
    if (idle + 1 >= this.ms) {
      this.onIdle(new IdleTimeoutError(this.ms));
    } else {
      this.timer = startTimer(this.ms - idle, this.check, true);
    }
  };
}
