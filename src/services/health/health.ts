/**
 * The gRPC health checking service (`grpc.health.v1.Health`), per
 * https://github.com/grpc/grpc/blob/master/doc/health-checking.md.
 *
 * Invariants:
 * - The status of the server as a whole lives under the empty service name "".
 * - `Check` of a name never set fails with NOT_FOUND; `Watch` of it sends SERVICE_UNKNOWN and
 *   stays open, so a watcher started before the service is registered sees it arrive.
 * - A watcher receives the current status at once, then one message per change (a `set` to the
 *   status it already has sends nothing). Slow watchers never hold up `set`: each watcher keeps
 *   only the newest status not yet sent, which is all the protocol promises.
 * - After `shutdown()` every status is NOT_SERVING and `set` is ignored until `resume()`, so a
 *   late "SERVING" from application code cannot undo a shutdown in progress.
 */
import { create } from "@bufbuild/protobuf";
import {
  Health,
  HealthCheckResponse_ServingStatus as ServingStatus,
  HealthCheckResponseSchema,
  type HealthCheckResponse,
} from "../../../gen/grpc/health/v1/health_pb.js";
import { RpcError } from "../../protocol/errors.js";
import { Code } from "../../protocol/code.js";
import type { Server } from "../../server/server.js";
import type { ServiceImpl } from "../../server/service-impl.js";

export { Health, ServingStatus };

/** A status by its enum value or its name ("SERVING", "NOT_SERVING", ...). */
export type ServingStatusInit = ServingStatus | keyof typeof ServingStatus;

/** The statuses a server reports, and the service implementation that reports them. */
export interface HealthStatus {
  /** The handlers to give `server.add(Health, ...)`. */
  readonly impl: ServiceImpl<typeof Health>;
  /** Sets the status of `service` ("" for the whole server) and tells its watchers. Ignored after `shutdown()`. */
  set(service: string, status: ServingStatusInit): void;
  /** The status of `service`, or undefined when it was never set. */
  get(service: string): ServingStatus | undefined;
  /** Forgets `service`: Check answers NOT_FOUND, watchers see SERVICE_UNKNOWN. */
  clear(service: string): void;
  /** Sets every known service NOT_SERVING and ignores `set` until `resume()`. */
  shutdown(): void;
  /** Accepts `set` again after `shutdown()`; the statuses stay as they are until set. */
  resume(): void;
  /**
   * Ends every open Watch stream with UNAVAILABLE, after the last status was delivered. A server
   * shutting down calls this so that watchers (which never end on their own) do not hold up
   * its graceful drain; clients then reconnect elsewhere, as health clients are built to.
   */
  endWatches(): void;
  /** Open Watch streams; for tests and metrics. */
  readonly watchers: number;
}

/** One Watch stream: the newest status not yet sent, and how to wake the writer. */
interface Watcher {
  service: string;
  pending: ServingStatus | undefined;
  ended: boolean;
  wake: (() => void) | undefined;
}

function toStatus(s: ServingStatusInit): ServingStatus {
  const value = typeof s === "number" ? s : ServingStatus[s];
  if (value === undefined || ServingStatus[value] === undefined) throw new Error(`unknown serving status ${String(s)}`);
  return value;
}

function response(status: ServingStatus): HealthCheckResponse {
  return create(HealthCheckResponseSchema, { status });
}

/**
 * Creates the status table of a health service. `initial` sets statuses up front; the overall
 * status "" starts SERVING unless `initial` says otherwise.
 */
export function createHealthStatus(initial: Record<string, ServingStatusInit> = {}): HealthStatus {
  const statuses = new Map<string, ServingStatus>([["", ServingStatus.SERVING]]);
  for (const [name, s] of Object.entries(initial)) statuses.set(name, toStatus(s));
  const watchers = new Set<Watcher>();
  let frozen = false;

  const notify = (service: string) => {
    const now = statuses.get(service) ?? ServingStatus.SERVICE_UNKNOWN;
    for (const w of watchers) {
      if (w.service !== service) continue;
      w.pending = now;
      w.wake?.();
    }
  };
  const put = (service: string, status: ServingStatus) => {
    if (statuses.get(service) === status) return;
    statuses.set(service, status);
    notify(service);
  };

  async function* watch(service: string, signal: AbortSignal): AsyncGenerator<HealthCheckResponse> {
    const w: Watcher = { service, pending: statuses.get(service) ?? ServingStatus.SERVICE_UNKNOWN, ended: false, wake: undefined };
    watchers.add(w);
    const onAbort = () => w.wake?.();
    signal.addEventListener("abort", onAbort);
    try {
      let last: ServingStatus | undefined;
      for (;;) {
        if (w.pending !== undefined) {
          const next = w.pending;
          w.pending = undefined;
          if (next !== last) {
            last = next;
            yield response(next);
          }
          continue;
        }
        if (w.ended) throw new RpcError(Code.Unavailable, "the server is shutting down");
        if (signal.aborted) return;
        await new Promise<void>((resolve) => (w.wake = resolve));
        w.wake = undefined;
      }
    } finally {
      signal.removeEventListener("abort", onAbort);
      watchers.delete(w);
    }
  }

  return {
    impl: {
      check(req) {
        const status = statuses.get(req.service);
        if (status === undefined) throw new RpcError(Code.NotFound, `unknown service "${req.service}" (the health service reports on: ${[...statuses.keys()].map((k) => JSON.stringify(k)).join(", ")})`);
        return response(status);
      },
      list() {
        return { statuses: Object.fromEntries([...statuses].map(([k, v]) => [k, response(v)])) };
      },
      watch(req, ctx) {
        return watch(req.service, ctx.signal);
      },
    },
    set(service, status) {
      const s = toStatus(status);
      if (!frozen) put(service, s);
    },
    get: (service) => statuses.get(service),
    clear(service) {
      if (statuses.delete(service)) notify(service);
    },
    shutdown() {
      frozen = true;
      for (const name of [...statuses.keys()]) put(name, ServingStatus.NOT_SERVING);
    },
    resume() {
      frozen = false;
    },
    endWatches() {
      for (const w of watchers) {
        w.ended = true;
        w.wake?.();
      }
    },
    get watchers() {
      return watchers.size;
    },
  };
}

/**
 * Serves health checking on `server`: adds `grpc.health.v1.Health`, marks "" and every service
 * the server has at this moment SERVING (add the other services first), and turns everything
 * NOT_SERVING the moment graceful shutdown begins, ending Watch streams once they have seen it.
 * Returns the status table for the application to update.
 *
 * ```ts
 * const health = serveHealth(server);
 * health.set("video_service.VideoService", "NOT_SERVING"); // e.g. while its database is down
 * ```
 */
export function serveHealth(server: Server, status: HealthStatus = createHealthStatus()): HealthStatus {
  server.add(Health, status.impl);
  for (const s of server.services) if (status.get(s.typeName) === undefined) status.set(s.typeName, "SERVING");
  server.onShutdownStart(() => {
    status.shutdown();
    status.endWatches();
  });
  return status;
}
