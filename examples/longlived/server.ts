/**
 * The classic long-lived streaming demo, on Rill's pub/sub hub.
 *
 * Each client subscribes with its id; while a client id has a subscriber, the server publishes
 * a piece of data for it every `intervalMs` into the hub topic `longlived/<id>`. Every Response
 * carries its event id, so a client that reconnects (server restart, lost connection) asks for
 * the data after the last one it saw: with REDIS_URL set (the Redis event log) a restarted
 * server continues exactly where each client was; with the default in-memory log a restart loses
 * the history and the client is told so (DATA_LOSS).
 *
 * Unsubscribe(id) ends that client's streams with OK and stops its data.
 */
import { pathToFileURL } from "node:url";
import { createServer, type ServiceImpl } from "../../src/index.js";
import { createHub, PubSubService, type EventMapper, type Hub } from "../../src/services/pubsub/index.js";
import { create } from "@bufbuild/protobuf";
import { Longlived, ResponseSchema, type Response } from "../../gen/longlived/longlived_pb.js";

/** Options of the Longlived implementation. */
export interface LonglivedOptions {
  /** How often each subscribed client gets data. Default 1000 ms. */
  intervalMs?: number;
}

const topicOf = (id: number) => `longlived/${id}`;
const decoder = new TextDecoder();
const encoder = new TextEncoder();
const toResponse: EventMapper<Response> = (ev) => create(ResponseSchema, { data: decoder.decode(ev.payload), eventId: ev.id });

/** The Longlived service on `hub`: `server.add(Longlived, longlived.service)`; `stop()` ends its producers. */
export interface LonglivedServer {
  readonly service: ServiceImpl<typeof Longlived>;
  stop(): void;
}

/** Creates the Longlived service on `hub`. */
export function createLonglived(hub: Hub, options: LonglivedOptions = {}): LonglivedServer {
  const intervalMs = options.intervalMs ?? 1000;
  const tickers = new Map<number, NodeJS.Timeout>();

  const stopTicker = (id: number) => {
    const t = tickers.get(id);
    if (t === undefined) return;
    clearInterval(t);
    tickers.delete(id);
  };

  // One producer per client id, alive while the id has a subscriber on this server.
  const startTicker = (id: number) => {
    if (tickers.has(id)) return;
    const timer = setInterval(() => {
      if (hub.subscriberCount(topicOf(id)) === 0) return stopTicker(id);
      const data = `data for client ${id} at ${new Date().toISOString()} from server pid ${process.pid}`;
      hub.publish(topicOf(id), encoder.encode(data)).catch(() => {
        // The log is away (Redis down): this tick's data is simply not produced.
      });
    }, intervalMs);
    tickers.set(id, timer);
  };

  const service: ServiceImpl<typeof Longlived> = {
    subscribe(req, ctx) {
      const done = hub.stream(ctx, { topic: topicOf(req.id), after: req.afterEventId, map: toResponse });
      startTicker(req.id);
      return done;
    },
    async unsubscribe(req) {
      const n = await hub.unsubscribeTopic(topicOf(req.id));
      stopTicker(req.id);
      return { data: `unsubscribed client ${req.id} (${n} stream${n === 1 ? "" : "s"} ended)` };
    },
  };
  return {
    service,
    stop() {
      for (const id of [...tickers.keys()]) stopTicker(id);
    },
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const port = Number(process.env.PORT ?? 50051);
  const hub = createHub();
  const longlived = createLonglived(hub);
  const server = createServer().add(Longlived, longlived.service).add(PubSubService, hub.service);
  const addr = await server.listen({ host: "127.0.0.1", port });
  console.log(`Longlived listening on ${addr.host}:${addr.port} (event log: ${hub.log.kind})`);
  const stop = () => {
    longlived.stop();
    void hub.close().then(() => server.shutdown({ graceMs: 2000 }));
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}
