/** Latency samples and the statistics the report prints. */

/** A growable list of latency samples in milliseconds. */
export class Samples {
  private data = new Float64Array(1 << 16);
  private n = 0;

  add(ms: number): void {
    if (this.n === this.data.length) {
      const bigger = new Float64Array(this.data.length * 2);
      bigger.set(this.data);
      this.data = bigger;
    }
    this.data[this.n++] = ms;
  }

  get count(): number {
    return this.n;
  }

  /** The q-quantile (0..1) in microseconds, nearest-rank; NaN without samples. */
  quantileUs(q: number): number {
    if (this.n === 0) return NaN;
    const sorted = this.data.slice(0, this.n).sort();
    const i = Math.min(this.n - 1, Math.max(0, Math.ceil(q * this.n) - 1));
    return sorted[i]! * 1000;
  }
}

/** The median of the finite values; NaN when there are none. */
export function median(values: number[]): number {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const mid = v.length >> 1;
  return v.length % 2 === 1 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
}
