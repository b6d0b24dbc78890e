/**
 * A small metrics registry that renders the Prometheus text format (version 0.0.4): counters,
 * gauges read when scraped, and histograms with fixed buckets, each with labels. No dependency:
 * a server that is scraped needs nothing else, and `rill top` reads the same text.
 *
 * Label sets are kept per metric in a map keyed by their values in a fixed order, so recording
 * costs one map lookup and a few additions; nothing is allocated per observation once a label
 * set has been seen.
 * @see https://prometheus.io/docs/instrumenting/exposition_formats/
 */

type Labels = Readonly<Record<string, string>>;

interface Metric {
  readonly name: string;
  readonly help: string;
  readonly type: "counter" | "gauge" | "histogram";
  render(out: string[]): void;
}

/** A monotonically increasing count per label set. */
export class Counter implements Metric {
  readonly type = "counter";
  private readonly values = new Map<string, { labels: Labels; value: number }>();
  constructor(
    readonly name: string,
    readonly help: string,
    private readonly labelNames: readonly string[],
  ) {}

  add(labels: Labels, n = 1): void {
    this.entry(labels).value += n;
  }

  /** The series of `labels`, for a caller that adds to it often: no label key made per add. */
  bind(labels: Labels): CounterSeries {
    return new CounterSeries(this.entry(labels));
  }

  private entry(labels: Labels): { labels: Labels; value: number } {
    const key = keyOf(this.labelNames, labels);
    let v = this.values.get(key);
    if (v === undefined) this.values.set(key, (v = { labels, value: 0 }));
    return v;
  }

  render(out: string[]): void {
    for (const { labels, value } of this.values.values()) out.push(`${this.name}${labelText(this.labelNames, labels)} ${value}`);
  }
}

/**
 * A value read when the registry is rendered: a gauge (open streams, bytes held), or a counter
 * kept elsewhere (a server's own totals).
 */
export class Gauge implements Metric {
  constructor(
    readonly name: string,
    readonly help: string,
    private readonly read: () => Iterable<[Labels, number]>,
    private readonly labelNames: readonly string[],
    readonly type: "gauge" | "counter" = "gauge",
  ) {}

  render(out: string[]): void {
    for (const [labels, value] of this.read()) out.push(`${this.name}${labelText(this.labelNames, labels)} ${value}`);
  }
}

/** Observations counted into cumulative buckets (`le`), with their sum and count. */
export class Histogram implements Metric {
  readonly type = "histogram";
  private readonly series = new Map<string, HistogramEntry>();
  constructor(
    readonly name: string,
    readonly help: string,
    private readonly labelNames: readonly string[],
    /** Upper bounds, ascending; +Inf is implied. */
    readonly buckets: readonly number[],
  ) {}

  observe(labels: Labels, value: number): void {
    observeInto(this.entry(labels), this.buckets, value);
  }

  /** The series of `labels`, for a caller that observes it often: no label key made per value. */
  bind(labels: Labels): HistogramSeries {
    return new HistogramSeries(this.entry(labels), this.buckets);
  }

  private entry(labels: Labels): HistogramEntry {
    const key = keyOf(this.labelNames, labels);
    let s = this.series.get(key);
    if (s === undefined) this.series.set(key, (s = { labels, counts: new Array<number>(this.buckets.length).fill(0), sum: 0, count: 0 }));
    return s;
  }

  render(out: string[]): void {
    for (const s of this.series.values()) {
      let cumulative = 0;
      for (let i = 0; i < this.buckets.length; i++) {
        cumulative += s.counts[i]!;
        out.push(`${this.name}_bucket${labelText(this.labelNames, s.labels, ["le", formatNumber(this.buckets[i]!)])} ${cumulative}`);
      }
      out.push(`${this.name}_bucket${labelText(this.labelNames, s.labels, ["le", "+Inf"])} ${s.count}`);
      out.push(`${this.name}_sum${labelText(this.labelNames, s.labels)} ${formatNumber(s.sum)}`);
      out.push(`${this.name}_count${labelText(this.labelNames, s.labels)} ${s.count}`);
    }
  }
}

/** One counter series, bound to its labels (`Counter.bind`). */
export class CounterSeries {
  constructor(private readonly entry: { value: number }) {}
  add(n = 1): void {
    this.entry.value += n;
  }
}

interface HistogramEntry {
  readonly labels: Labels;
  readonly counts: number[];
  sum: number;
  count: number;
}

/** One histogram series, bound to its labels (`Histogram.bind`). */
export class HistogramSeries {
  constructor(
    private readonly entry: HistogramEntry,
    private readonly buckets: readonly number[],
  ) {}
  observe(value: number): void {
    observeInto(this.entry, this.buckets, value);
  }
}

function observeInto(s: HistogramEntry, buckets: readonly number[], value: number): void {
  // Counted into the first bucket that holds it; cumulated when rendered.
  let i = 0;
  while (i < buckets.length && value > buckets[i]!) i++;
  if (i < buckets.length) s.counts[i]!++;
  s.sum += value;
  s.count++;
}

/** Metrics by name, rendered together. */
export class Registry {
  private readonly metrics = new Map<string, Metric>();

  counter(name: string, help: string, labelNames: readonly string[] = []): Counter {
    return this.add(new Counter(name, help, labelNames));
  }

  gauge(name: string, help: string, read: () => Iterable<[Labels, number]>, labelNames: readonly string[] = []): Gauge {
    return this.add(new Gauge(name, help, read, labelNames));
  }

  /** A counter whose total is kept elsewhere and read when rendered. */
  readCounter(name: string, help: string, read: () => Iterable<[Labels, number]>, labelNames: readonly string[] = []): Gauge {
    return this.add(new Gauge(name, help, read, labelNames, "counter"));
  }

  histogram(name: string, help: string, labelNames: readonly string[], buckets: readonly number[]): Histogram {
    return this.add(new Histogram(name, help, labelNames, buckets));
  }

  /** The Prometheus text of every metric. */
  render(): string {
    const out: string[] = [];
    for (const m of this.metrics.values()) {
      out.push(`# HELP ${m.name} ${m.help.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")}`);
      out.push(`# TYPE ${m.name} ${m.type}`);
      m.render(out);
    }
    return `${out.join("\n")}\n`;
  }

  private add<M extends Metric>(metric: M): M {
    if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(metric.name)) throw new Error(`invalid metric name ${JSON.stringify(metric.name)}`);
    if (this.metrics.has(metric.name)) throw new Error(`metric ${metric.name} is already registered`);
    this.metrics.set(metric.name, metric);
    return metric;
  }
}

/** The content type of the text format, for the HTTP answer. */
export const prometheusContentType = "text/plain; version=0.0.4; charset=utf-8";

function keyOf(names: readonly string[], labels: Labels): string {
  let key = "";
  for (const n of names) key += `${labels[n] ?? ""}\u0000`;
  return key;
}

function labelText(names: readonly string[], labels: Labels, extra?: [string, string]): string {
  const parts: string[] = [];
  for (const n of names) parts.push(`${n}="${escapeLabel(labels[n] ?? "")}"`);
  if (extra !== undefined) parts.push(`${extra[0]}="${extra[1]}"`);
  return parts.length === 0 ? "" : `{${parts.join(",")}}`;
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

function formatNumber(n: number): string {
  if (n === Number.POSITIVE_INFINITY) return "+Inf";
  return String(n);
}
