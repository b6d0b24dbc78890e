/**
 * A clock that only moves when the test says so, for the parts of Rill that take a `now`
 * (connection backoff, the BDP estimator and window tuner, the pub/sub memory log, the transfer
 * rate meter). `now` is a plain function, so it can be handed over alone (`{ now: clock.now }`)
 * or as the whole clock (`new ConnectionBackoff(options, clock)`).
 *
 * It moves no timers: where the code under test also sets a timeout, drive that with
 * node:test's `mock.timers` and advance both.
 */
export interface FakeClock {
  /** The current time in ms. */
  readonly now: () => number;
  /** Moves the time forward by `ms`. */
  readonly advance: (ms: number) => void;
}

/** A fake clock reading `start` ms until advanced. */
export function fakeClock(start = 0): FakeClock {
  let t = start;
  return {
    now: () => t,
    advance: (ms) => {
      if (!(ms >= 0)) throw new Error(`a clock only moves forward (asked to advance ${ms} ms)`);
      t += ms;
    },
  };
}
