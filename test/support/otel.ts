/**
 * An OpenTelemetry SDK for tests: a tracer provider whose spans go to the SDK's in-memory
 * exporter (through its SimpleSpanProcessor), and a way to await a number of ended spans instead
 * of sleeping.
 */
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan, type SpanProcessor } from "@opentelemetry/sdk-trace-base";

export interface TraceRecorder {
  readonly provider: BasicTracerProvider;
  readonly exporter: InMemorySpanExporter;
  /** Resolves with the exporter's spans once `n` spans have ended (and been exported); rejects after `timeoutMs`. */
  finished(n: number, timeoutMs?: number): Promise<ReadableSpan[]>;
  /** Forgets the spans so far. */
  reset(): void;
}

export function traceRecorder(): TraceRecorder {
  const exporter = new InMemorySpanExporter();
  let ended = 0;
  const waiters = new Set<{ n: number; resolve: () => void }>();
  const notifier: SpanProcessor = {
    onStart() {},
    onEnd() {
      ended++;
      for (const w of waiters) if (ended >= w.n) w.resolve();
    },
    forceFlush: async () => {},
    shutdown: async () => {},
  };
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter), notifier] });
  return {
    provider,
    exporter,
    async finished(n, timeoutMs = 5000) {
      if (ended < n) {
        let timer: NodeJS.Timeout | undefined;
        try {
          await new Promise<void>((resolve, reject) => {
            const w = { n, resolve };
            waiters.add(w);
            timer = setTimeout(() => {
              waiters.delete(w);
              reject(new Error(`${ended} spans ended within ${timeoutMs} ms, expected ${n}`));
            }, timeoutMs);
          });
        } finally {
          clearTimeout(timer);
        }
      }
      // SimpleSpanProcessor exports asynchronously: wait for it.
      await provider.forceFlush();
      return exporter.getFinishedSpans();
    },
    reset() {
      exporter.reset();
      ended = 0;
      waiters.clear();
    },
  };
}

/** The one span named `name` with the given kind (0 internal, 1 server, 2 client); fails otherwise. */
export function only(spans: readonly ReadableSpan[], kind: number, name?: string): ReadableSpan {
  const found = spans.filter((s) => s.kind === kind && (name === undefined || s.name === name));
  if (found.length !== 1) throw new Error(`expected one span of kind ${kind}${name === undefined ? "" : ` named ${name}`}, found ${found.length}: ${spans.map((s) => `${s.name}/${s.kind}`).join(", ")}`);
  return found[0]!;
}
