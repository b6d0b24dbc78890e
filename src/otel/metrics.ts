/**
 * OpenTelemetry metrics for Rill calls, through `@opentelemetry/api`'s meter (any SDK and
 * exporter): the RPC semantic conventions' call duration, and what only a streaming server
 * knows, under `rill.` names.
 *
 * | instrument | kind | unit |
 * |---|---|---|
 * | `rpc.server.call.duration`, `rpc.client.call.duration` | histogram | s |
 * | `rill.rpc.server.messages_received`, `…_sent` (and `client`) per RPC | histogram | {message} |
 * | `rill.server.active_calls`, `rill.server.connections` | gauge (observed) | {call}, {connection} |
 * | `rill.server.buffered_bytes` | gauge (observed) | By |
 * | `rill.server.flow_control.waits`, `rill.server.flow_control.wait_time` | counter (observed) | {wait}, s |
 * | `rill.server.try_send.refusals` | counter (observed) | {message} |
 * | `rill.pubsub.subscribers`, `…queued_events`, `…max_queued_events`, `…cut_subscribers` | gauges, counter (observed) | — |
 *
 * Attributes follow the spans' (semconv 1.45): `rpc.system.name` (`grpc`, `connectrpc`),
 * `rpc.method` (`package.Service/Method`), `rpc.status_code` (the code's name), `error.type` on
 * failures, and `rill.rpc.protocol`. Messages per RPC left the conventions without a
 * replacement; a streaming framework needs them, so they are kept under Rill's own names.
 * @see https://opentelemetry.io/docs/specs/semconv/rpc/rpc-metrics/
 */
import type { Attributes, Histogram, MeterProvider } from "@opentelemetry/api";
import type { DescMethod } from "@bufbuild/protobuf";
import type { Protocol } from "../handler-context.js";
import type { Interceptor } from "../interceptor.js";
import { observeCall } from "../interceptors/observe-call.js";
import type { CallObservation, CallObserver, ObservedCall, ObservedOutcome } from "../observer.js";
import { Code, codeName } from "../protocol/code.js";
import type { SubscriberStats } from "../metrics/rpc-metrics.js";
import type { Server } from "../server/server.js";
import { api } from "./api.js";

/** Options of `createOtelMetrics`. */
export interface OtelMetricsOptions {
  /** Default: the global meter provider (what the SDK registered). */
  meterProvider?: MeterProvider;
}

export interface OtelMetrics {
  /** Give to a server's or channel's `observers`: the same instruments as `interceptor`, at a fraction of its cost. */
  readonly observer: CallObserver;
  /** Add to a server's or channel's interceptors (first, to time the whole call; `observer` is cheaper). */
  readonly interceptor: Interceptor;
  /** Observes `server`'s open calls and connections, buffered bytes and flow-control counters. */
  observeServer(server: Server): void;
  /** Observes a pub/sub hub's subscribers, their lag and those cut for it. */
  observeHub(hub: { readonly stats: SubscriberStats }): void;
}

type SideInstruments = {
  readonly duration: Histogram;
  readonly received: Histogram;
  readonly sent: Histogram;
};

const protocolIndex: Readonly<Record<Protocol, number>> = { grpc: 0, "grpc-web": 1, connect: 2 };

/** The attributes of a call's end (semconv 1.45 names, as on the spans). */
function endAttributes(protocol: Protocol, path: string, code: Code): Attributes {
  const attributes: Attributes = {
    "rpc.system.name": protocol === "connect" ? "connectrpc" : "grpc",
    "rpc.method": path.slice(1),
    "rpc.status_code": codeName(code),
    "rill.rpc.protocol": protocol,
  };
  if (code !== Code.OK) attributes["error.type"] = codeName(code);
  return attributes;
}

function recordEnd(m: SideInstruments, attributes: Attributes, durationMs: number, sent: number, received: number): void {
  m.duration.record(durationMs / 1000, attributes);
  m.sent.record(sent, attributes);
  m.received.record(received, attributes);
}

/** The observation of every call of one method, side and protocol. */
class MethodInstruments implements CallObservation {
  private readonly byCode = new Map<Code, Attributes>();
  constructor(
    private readonly m: SideInstruments,
    private readonly protocol: Protocol,
    private readonly path: string,
  ) {}

  onEnd(o: ObservedOutcome): void {
    let attributes = this.byCode.get(o.code);
    if (attributes === undefined) this.byCode.set(o.code, (attributes = endAttributes(this.protocol, this.path, o.code)));
    recordEnd(this.m, attributes, o.durationMs, o.sent, o.received);
  }
}

/** Duration buckets in seconds (semconv's advice for call duration). */
const durationBoundaries = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10];
const messageBoundaries = [1, 2, 5, 10, 100, 1000, 10_000, 100_000];

export function createOtelMetrics(options: OtelMetricsOptions = {}): OtelMetrics {
  const meter = (options.meterProvider ?? api.metrics.getMeterProvider()).getMeter("rill");
  const side = (s: "client" | "server") => ({
    duration: meter.createHistogram(`rpc.${s}.call.duration`, {
      unit: "s",
      description: `Duration of ${s === "server" ? "incoming" : "outgoing"} RPCs, until the last response message was read.`,
      advice: { explicitBucketBoundaries: durationBoundaries },
    }),
    received: meter.createHistogram(`rill.rpc.${s}.messages_received`, { unit: "{message}", description: "Messages received per RPC.", advice: { explicitBucketBoundaries: messageBoundaries } }),
    sent: meter.createHistogram(`rill.rpc.${s}.messages_sent`, { unit: "{message}", description: "Messages sent per RPC.", advice: { explicitBucketBoundaries: messageBoundaries } }),
  });
  const sides = { client: side("client"), server: side("server") };
  const interceptor: Interceptor = (next) => (req) => {
    const m = sides[req.side];
    return observeCall(req, next, () => performance.now(), (o) => {
      const attributes = endAttributes(req.protocol, req.path, o.code);
      // A client sends its requests and receives responses; a server the other way round.
      const [sent, received] = req.side === "client" ? [o.requests, o.responses] : [o.responses, o.requests];
      recordEnd(m, attributes, o.durationMs, sent, received);
    });
  };
  // One observation per method, side and protocol, shared by its calls (the outcome has all a
  // call's end needs), with its attributes made once per status code.
  const series = new WeakMap<DescMethod, MethodInstruments[]>();
  const observer: CallObserver = {
    start(call: ObservedCall): CallObservation {
      let byKey = series.get(call.method);
      if (byKey === undefined) series.set(call.method, (byKey = []));
      const key = (call.side === "client" ? 0 : 3) + protocolIndex[call.protocol];
      return (byKey[key] ??= new MethodInstruments(sides[call.side], call.protocol, call.path));
    },
  };
  return {
    observer,
    interceptor,
    observeServer(server) {
      const gauge = (name: string, unit: string, description: string, read: () => number) =>
        meter.createObservableGauge(name, { unit, description }).addCallback((r) => r.observe(read()));
      const counter = (name: string, unit: string, description: string, read: () => number) =>
        meter.createObservableCounter(name, { unit, description }).addCallback((r) => r.observe(read()));
      gauge("rill.server.active_calls", "{call}", "Calls running on the server now (open streams).", () => server.activeCalls);
      gauge("rill.server.connections", "{connection}", "Client connections open now (HTTP/2 sessions and HTTP/1.1 connections).", () => server.openConnections);
      gauge("rill.server.buffered_bytes", "By", "Request and response bytes held against the memory budgets now.", () => server.stats.bufferedBytes);
      counter("rill.server.flow_control.waits", "{wait}", "Times a producer waited for a client to take what was buffered.", () => server.stats.flowControlWaits);
      counter("rill.server.flow_control.wait_time", "s", "Total time producers waited on flow control.", () => server.stats.flowControlWaitMs / 1000);
      counter("rill.server.try_send.refusals", "{message}", "ctx.trySend calls refused because the call's buffer was full.", () => server.stats.trySendRefusals);
    },
    observeHub(hub) {
      meter.createObservableGauge("rill.pubsub.subscribers", { unit: "{subscription}", description: "Open subscriptions on this hub." }).addCallback((r) => r.observe(hub.stats.subscribers));
      meter.createObservableGauge("rill.pubsub.queued_events", { unit: "{event}", description: "Events queued for subscribers, all together (their lag)." }).addCallback((r) => r.observe(hub.stats.queuedEvents));
      meter.createObservableGauge("rill.pubsub.max_queued_events", { unit: "{event}", description: "The most events any one subscriber has queued." }).addCallback((r) => r.observe(hub.stats.maxQueuedEvents));
      meter.createObservableCounter("rill.pubsub.cut_subscribers", { unit: "{subscription}", description: "Subscribers ended for falling behind." }).addCallback((r) => r.observe(hub.stats.cutSubscribers));
    },
  };
}
