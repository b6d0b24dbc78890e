/**
 * A sliding-window byte rate: the bytes counted over roughly the last `windowMs`, per second.
 * Pure apart from the injectable clock, so progress reporting is testable without waiting.
 */
export class RateMeter {
  private readonly samples: Array<{ at: number; total: number }> = [];
  private total = 0;

  constructor(
    private readonly now: () => number = () => performance.now(),
    private readonly windowMs = 1000,
  ) {
    this.samples.push({ at: now(), total: 0 });
  }

  /** Counts `bytes` moved now and returns the current rate in bytes per second. */
  add(bytes: number): number {
    const at = this.now();
    this.total += bytes;
    this.samples.push({ at, total: this.total });
    // Keep one sample at or before the window start, so the rate always spans the whole window.
    while (this.samples.length > 2 && this.samples[1]!.at <= at - this.windowMs) this.samples.shift();
    const first = this.samples[0]!;
    const elapsed = at - first.at;
    return elapsed > 0 ? ((this.total - first.total) * 1000) / elapsed : 0;
  }
}
