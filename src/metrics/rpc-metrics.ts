/**
 * RPC metrics as an interceptor and a Prometheus endpoint: the OpenTelemetry RPC semantic
 * conventions' duration and messages-per-RPC histograms (as Prometheus names them: seconds,
 * `_total`), and what only a streaming server knows (open calls and connections, bytes held
 * against the memory budgets, producers that waited on flow control, `trySend` refusals).
 *
 *   const metrics = createRpcMetrics();
 *   const server = createServer({ observers: [metrics.observer], http: metrics.httpHandler });
 *   metrics.observeServer(server);            // GET /metrics on the server's own port
 *
 * `observer` and `interceptor` record the same metrics; the observer costs a call far less (no
 * copies, no iterator layers, no object of its own per call). Both work on channels too
 * (`rpc_client_*`). They count messages, not bytes.
 * @see https://opentelemetry.io/docs/specs/semconv/rpc/rpc-metrics/
 */
import { Code, codeName } from "../protocol/code.js";
import type { DescMethod } from "@bufbuild/protobuf";
import type { Protocol } from "../handler-context.js";
import type { Interceptor } from "../interceptor.js";
import { observeCall } from "../interceptors/observe-call.js";
import type { CallObservation, CallObserver, ObservedCall, ObservedOutcome } from "../observer.js";
import type { Server } from "../server/server.js";
import type { HttpHandler } from "../server/web-protocols.js";
import { prometheusContentType, Registry, type CounterSeries, type HistogramSeries } from "./registry.js";

/** Options of `createRpcMetrics`. */
export interface RpcMetricsOptions {
  /** Where the metrics go; a new one by default. Share one to render other metrics beside them. */
  registry?: Registry;
  /** Duration buckets in seconds. Default: 0.5 ms to 60 s, about ×2.5 apart (14 buckets). */
  durationBuckets?: readonly number[];
  /** Time source in milliseconds. Default `performance.now`. */
  now?: () => number;
}

/** What `observeHub` reads (a hub's `stats`). */
export interface SubscriberStats {
  readonly subscribers: number;
  readonly queuedEvents: number;
  readonly maxQueuedEvents: number;
  readonly cutSubscribers: number;
}

export interface RpcMetrics {
  readonly registry: Registry;
  /** Give to a server's or channel's `observers`: the same metrics as `interceptor`, at a fraction of its cost. */
  readonly observer: CallObserver;
  /** Add first to a server's or channel's interceptors, to time the whole call (`observer` is cheaper). */
  readonly interceptor: Interceptor;
  /** Answers `GET /metrics` with the Prometheus text (give it as `createServer({ http })`). */
  readonly httpHandler: HttpHandler;
  /** Reports `server`'s open calls and connections, buffered bytes and flow-control counters. */
  observeServer(server: Server): void;
  /** Reports a pub/sub hub's subscribers, their lag and those cut for it (`rill/pubsub`'s `createHub`). */
  observeHub(hub: { readonly stats: SubscriberStats }): void;
  /** The Prometheus text now. */
  render(): string;
}

const defaultDurationBuckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 60];
const messageBuckets = [1, 2, 5, 10, 100, 1000, 10_000, 100_000];
const labelNames = ["rpc_system", "rpc_service", "rpc_method", "rpc_grpc_status_code"] as const;

/** The `rpc.system` of each protocol (grpc-web is gRPC's, on the web). */
const systems = { grpc: "grpc", "grpc-web": "grpc", connect: "connect_rpc" } as const;

export function createRpcMetrics(options: RpcMetricsOptions = {}): RpcMetrics {
  const registry = options.registry ?? new Registry();
  const now = options.now ?? (() => performance.now());
  const buckets = options.durationBuckets ?? defaultDurationBuckets;
  const sides = {
    client: sideMetrics(registry, "client", buckets),
    server: sideMetrics(registry, "server", buckets),
  };
  // One set of series per method, side and protocol, shared by its calls (and by the
  // interceptor and the observer): everything a call's end needs is in its outcome, so a call
  // costs the metrics no object of its own.
  const series = new WeakMap<DescMethod, MethodSeries[]>();
  const seriesOf = (method: DescMethod, side: "client" | "server", protocol: Protocol): MethodSeries => {
    let byKey = series.get(method);
    if (byKey === undefined) series.set(method, (byKey = []));
    const key = (side === "client" ? 0 : 3) + protocolIndex[protocol];
    let s = byKey[key];
    if (s === undefined) {
      const labels = { rpc_system: systems[protocol], rpc_service: method.parent.typeName, rpc_method: method.name, rpc_grpc_status_code: "" };
      byKey[key] = s = new MethodSeries(sides[side], labels, side === "client");
    }
    return s;
  };
  const interceptor: Interceptor = (next) => (req) => {
    const s = seriesOf(req.method, req.side, req.protocol);
    s.started.add();
    return observeCall(req, next, now, (o) => s.end(o.code, o.durationMs, o.requests, o.responses));
  };
  const observer: CallObserver = {
    start(call: ObservedCall): CallObservation {
      const s = seriesOf(call.method, call.side, call.protocol);
      s.started.add();
      return s;
    },
  };
  const render = () => registry.render();
  return {
    registry,
    observer,
    interceptor,
    render,
    httpHandler: (req) => (req.path === "/metrics" ? { headers: { "content-type": prometheusContentType, "cache-control": "no-store" }, body: render() } : undefined),
    observeServer(server) {
      const one = (read: () => number) => () => [[{}, read()]] as Iterable<[Record<string, string>, number]>;
      registry.gauge("rill_server_active_calls", "Calls running on the server now (open streams).", one(() => server.activeCalls));
      registry.gauge("rill_server_open_connections", "Client connections open now (HTTP/2 sessions and HTTP/1.1 connections).", one(() => server.openConnections));
      registry.gauge("rill_server_buffered_bytes", "Request and response bytes held against the memory budgets now.", one(() => server.stats.bufferedBytes));
      registry.readCounter("rill_server_flow_control_waits_total", "Times a producer waited for a client to take what was buffered.", one(() => server.stats.flowControlWaits));
      registry.readCounter("rill_server_flow_control_wait_seconds_total", "Total time producers waited on flow control.", one(() => server.stats.flowControlWaitMs / 1000));
      registry.readCounter("rill_server_try_send_refusals_total", "ctx.trySend calls refused because the call's buffer was full.", one(() => server.stats.trySendRefusals));
    },
    observeHub(hub) {
      const one = (read: () => number) => () => [[{}, read()]] as Iterable<[Record<string, string>, number]>;
      registry.gauge("rill_pubsub_subscribers", "Open subscriptions on this hub.", one(() => hub.stats.subscribers));
      registry.gauge("rill_pubsub_queued_events", "Events queued for subscribers whose streams have not taken them yet (their lag, together).", one(() => hub.stats.queuedEvents));
      registry.gauge("rill_pubsub_max_queued_events", "The most events any one subscriber has queued (the worst lag).", one(() => hub.stats.maxQueuedEvents));
      registry.readCounter("rill_pubsub_cut_subscribers_total", "Subscribers ended for falling behind (RESOURCE_EXHAUSTED, resumable).", one(() => hub.stats.cutSubscribers));
    },
  };
}

type SideMetrics = ReturnType<typeof sideMetrics>;
type Labels = Readonly<Record<(typeof labelNames)[number], string>>;

const protocolIndex: Readonly<Record<Protocol, number>> = { grpc: 0, "grpc-web": 1, connect: 2 };

/**
 * The series of every call of one method, side and protocol (and the observation of those
 * calls), bound once (per status code for the ends), so a call makes no label key or labels object.
 */
class MethodSeries implements CallObservation {
  readonly started: CounterSeries;
  private readonly ends = new Map<Code, EndSeries>();

  constructor(
    private readonly m: SideMetrics,
    private readonly labels: Labels,
    private readonly client: boolean,
  ) {
    this.started = m.started.bind(labels);
  }

  onEnd(o: ObservedOutcome): void {
    // A client sends the requests and receives the responses; a server the other way round.
    if (this.client) this.end(o.code, o.durationMs, o.sent, o.received);
    else this.end(o.code, o.durationMs, o.received, o.sent);
  }

  /** One call's end, from the observer or the interceptor. */
  end(code: Code, durationMs: number, requests: number, responses: number): void {
    let e = this.ends.get(code);
    if (e === undefined) this.ends.set(code, (e = new EndSeries(this.m, this.labels, code)));
    e.duration.observe(durationMs / 1000);
    e.requests.observe(requests);
    e.responses.observe(responses);
    e.failed?.add();
  }
}

/** The series a call ending with one status code goes to. */
class EndSeries {
  readonly duration: HistogramSeries;
  readonly requests: HistogramSeries;
  readonly responses: HistogramSeries;
  readonly failed: CounterSeries | undefined;

  constructor(m: SideMetrics, labels: Labels, code: Code) {
    const done = { ...labels, rpc_grpc_status_code: String(code) };
    this.duration = m.duration.bind(done);
    this.requests = m.requests.bind(done);
    this.responses = m.responses.bind(done);
    this.failed = code === Code.OK ? undefined : m.failed.bind({ ...done, rpc_grpc_status_code: codeName(code) });
  }
}

function sideMetrics(registry: Registry, side: "client" | "server", buckets: readonly number[]) {
  return {
    started: registry.counter(`rpc_${side}_started_total`, `RPCs started (${side}).`, labelNames),
    failed: registry.counter(`rpc_${side}_failed_total`, `RPCs that ended with a status other than OK, by status name (${side}).`, labelNames),
    duration: registry.histogram(`rpc_${side}_duration_seconds`, `Duration of RPCs until their last message was read (${side}).`, labelNames, buckets),
    requests: registry.histogram(`rpc_${side}_requests_per_rpc`, `Request messages per RPC (${side}).`, labelNames, messageBuckets),
    responses: registry.histogram(`rpc_${side}_responses_per_rpc`, `Response messages per RPC (${side}).`, labelNames, messageBuckets),
  };
}
