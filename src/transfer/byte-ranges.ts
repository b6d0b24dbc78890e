/**
 * The set of byte ranges a receiver holds of a payload, as sorted, disjoint, non-adjacent
 * half-open ranges [start, end). Pure: ranged transfers keep one per payload to know what to
 * ask for again (the gaps) and when the payload is whole.
 *
 * Adjacent ranges merge, so a payload received in order, or by a few parts, is a handful of
 * ranges whatever its size. A peer can make the set fragment (every other chunk), so the number
 * of ranges is bounded by the owner (`count`), not here.
 */

/** A half-open byte range [start, end). */
export type Range = readonly [start: number, end: number];

export class ByteRanges {
  /** Flattened starts and ends: [s0, e0, s1, e1, …], sorted, with s(i+1) > e(i). */
  private edges: number[] = [];

  constructor(ranges: Iterable<Range> = []) {
    for (const [start, end] of ranges) this.add(start, end);
  }

  /** Number of disjoint ranges. */
  get count(): number {
    return this.edges.length / 2;
  }

  /** Bytes covered. */
  get bytes(): number {
    let n = 0;
    for (let i = 0; i < this.edges.length; i += 2) n += this.edges[i + 1]! - this.edges[i]!;
    return n;
  }

  /** The end of the range that starts at 0: how many bytes are held from the start without a gap. */
  get prefix(): number {
    return this.edges[0] === 0 ? this.edges[1]! : 0;
  }

  /** Adds [start, end), merging with any range it touches or overlaps. */
  add(start: number, end: number): void {
    check(start, end);
    if (start === end) return;
    const e = this.edges;
    // First range whose end reaches `start` (it touches or overlaps the new one, or lies after it).
    let lo = 0;
    let hi = e.length / 2;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (e[mid * 2 + 1]! < start) lo = mid + 1;
      else hi = mid;
    }
    // Ranges from `lo` whose start is at or before `end` merge with it.
    let last = lo;
    while (last < e.length / 2 && e[last * 2]! <= end) last++;
    if (last > lo) {
      start = Math.min(start, e[lo * 2]!);
      end = Math.max(end, e[last * 2 - 1]!);
    }
    e.splice(lo * 2, (last - lo) * 2, start, end);
  }

  /** Whether every byte of [start, end) is held. */
  has(start: number, end: number): boolean {
    check(start, end);
    if (start === end) return true;
    const e = this.edges;
    for (let i = 0; i < e.length; i += 2) {
      if (e[i]! > start) return false;
      if (e[i + 1]! >= end) return true;
      if (e[i + 1]! > start) return false;
    }
    return false;
  }

  /** The gaps within [from, to): what is not held there, in order. */
  missing(from: number, to: number): Range[] {
    check(from, to);
    const gaps: Range[] = [];
    let pos = from;
    const e = this.edges;
    for (let i = 0; i < e.length && pos < to; i += 2) {
      const s = e[i]!;
      const end = e[i + 1]!;
      if (end <= pos) continue;
      if (s > pos) gaps.push([pos, Math.min(s, to)]);
      pos = Math.max(pos, end);
    }
    if (pos < to) gaps.push([pos, to]);
    return gaps;
  }

  /** The ranges, in order. */
  ranges(): Range[] {
    const out: Range[] = [];
    for (let i = 0; i < this.edges.length; i += 2) out.push([this.edges[i]!, this.edges[i + 1]!]);
    return out;
  }

  /** The ranges as JSON (an array of [start, end] pairs), for a sidecar file. */
  toJSON(): Array<[number, number]> {
    return this.ranges().map(([s, e]) => [s, e]);
  }
}

function check(start: number, end: number): void {
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start) {
    throw new RangeError(`invalid byte range [${start}, ${end})`);
  }
}
