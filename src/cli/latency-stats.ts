/**
 * Latency statistics of a benchmark run, in the shape ghz reports: extremes, mean,
 * percentiles (nearest rank) and a linear histogram between the fastest and slowest call.
 * Pure: numbers in, numbers out.
 */

/** One histogram bucket: calls with latency up to `markMs` (and above the previous mark). */
export interface Bucket {
  markMs: number;
  count: number;
  frequency: number;
}

/** The statistics of a set of latencies, in milliseconds. */
export interface LatencyStats {
  count: number;
  fastestMs: number;
  slowestMs: number;
  averageMs: number;
  /** Percentile → latency, for 10, 25, 50, 75, 90, 95, 99, 99.9. */
  percentiles: { percentage: number; latencyMs: number }[];
  histogram: Bucket[];
}

const percentages = [10, 25, 50, 75, 90, 95, 99, 99.9];

/** Computes the statistics of `latencies` (any order; not modified). Empty input gives zeros. */
export function latencyStats(latencies: ArrayLike<number>, buckets = 10): LatencyStats {
  const sorted = Float64Array.from(latencies).sort();
  const n = sorted.length;
  if (n === 0) return { count: 0, fastestMs: 0, slowestMs: 0, averageMs: 0, percentiles: [], histogram: [] };
  let sum = 0;
  for (const v of sorted) sum += v;
  const fastest = sorted[0]!;
  const slowest = sorted[n - 1]!;
  const percentiles = percentages.map((p) => ({ percentage: p, latencyMs: sorted[Math.min(n - 1, Math.max(0, Math.ceil((p / 100) * n) - 1))]! }));
  const width = (slowest - fastest) / buckets;
  const histogram: Bucket[] = [];
  if (width === 0) histogram.push({ markMs: fastest, count: n, frequency: 1 });
  else {
    for (let i = 0; i <= buckets; i++) histogram.push({ markMs: fastest + width * i, count: 0, frequency: 0 });
    // Bucket i holds (mark[i-1], mark[i]]; the fastest call sits in bucket 0 alone with its equals.
    for (const v of sorted) histogram[Math.min(buckets, Math.ceil((v - fastest) / width))]!.count++;
    for (const b of histogram) b.frequency = b.count / n;
  }
  return { count: n, fastestMs: fastest, slowestMs: slowest, averageMs: sum / n, percentiles, histogram };
}
