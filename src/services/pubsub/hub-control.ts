/**
 * Ending subscriptions across instances: when hubs share a log with a control channel (Redis),
 * an Unsubscribe that reaches one instance is broadcast, every other instance ends what it
 * holds and answers with a count, and the asker sums the answers.
 *
 * Protocol (JSON strings on the control channel):
 *   {"t":"end","from":<instance>,"req":<id>,"sub"?:<subscription id>,"topic"?:<topic>}
 *   {"t":"ended","to":<instance>,"req":<id>,"n":<ended here>}
 * The asker expects one answer per other listener (PUBLISH's receiver count minus itself) and
 * stops waiting after `timeoutMs`; for a subscription id it stops at the first instance that
 * had it (ids are unique).
 */
import { randomBytes } from "node:crypto";
import type { EventLog } from "./event-log.js";

/** What to end: one subscription by id, or every subscription of a topic. */
export interface EndTarget {
  sub?: string | undefined;
  topic?: string | undefined;
}

interface Pending {
  /** Ending one subscription: the first instance that had it settles the request. */
  forSub: boolean;
  expect: number;
  got: number;
  n: number;
  done(): void;
}

/** The cross-instance side of a hub. `endLocal` ends what this instance holds. */
export function createControl(log: EventLog, endLocal: (target: EndTarget) => number, timeoutMs = 1000) {
  const channel = log.control;
  const instance = randomBytes(8).toString("hex");
  const pending = new Map<string, Pending>();
  let stopListening: (() => void) | undefined;
  let stopped = false;

  const onMessage = (raw: string) => {
    let m: { t?: unknown; from?: unknown; to?: unknown; req?: unknown; sub?: unknown; topic?: unknown; n?: unknown };
    try {
      m = JSON.parse(raw) as typeof m;
    } catch {
      return;
    }
    if (m.t === "end" && m.from !== instance && typeof m.req === "string") {
      const n = endLocal({ sub: typeof m.sub === "string" ? m.sub : undefined, topic: typeof m.topic === "string" ? m.topic : undefined });
      void channel!.publish(JSON.stringify({ t: "ended", to: m.from, req: m.req, n })).catch(() => {});
    } else if (m.t === "ended" && m.to === instance && typeof m.req === "string") {
      const p = pending.get(m.req);
      if (p === undefined) return;
      p.got++;
      p.n += typeof m.n === "number" ? m.n : 0;
      if (p.got >= p.expect || (p.forSub && p.n > 0)) p.done();
    }
  };

  // Listening starts at once; an end request waits for it so no answer is missed.
  const ready: Promise<void> =
    channel === undefined
      ? Promise.resolve()
      : channel.listen(onMessage).then(
          (stop) => {
            if (stopped) stop();
            else stopListening = stop;
          },
          () => {},
        );

  return {
    /** Ends `target` here and on every other instance; resolves with how many ended. */
    async end(target: EndTarget): Promise<number> {
      const here = endLocal(target);
      if (channel === undefined || stopped || (target.sub !== undefined && here > 0)) return here;
      await ready;
      const req = randomBytes(8).toString("hex");
      return new Promise<number>((resolve) => {
        const p: Pending = {
          forSub: target.sub !== undefined,
          expect: Number.POSITIVE_INFINITY,
          got: 0,
          n: here,
          done: () => {
            clearTimeout(timer);
            pending.delete(req);
            resolve(p.n);
          },
        };
        const timer = setTimeout(() => p.done(), timeoutMs);
        pending.set(req, p);
        channel.publish(JSON.stringify({ t: "end", from: instance, req, ...target })).then(
          (receivers) => {
            p.expect = receivers - 1;
            if (p.got >= p.expect) p.done();
          },
          () => p.done(),
        );
      });
    },
    /** Stops listening; pending requests resolve with what they have. */
    stop(): void {
      stopped = true;
      stopListening?.();
      for (const p of [...pending.values()]) p.done();
    },
  };
}
