/**
 * `consumeGroup`: the client side of a consumer-group member, kept alive across failures.
 *
 * Each message comes with `ack()`. The acks travel on the same stream; if it breaks before an
 * ack is sent, the hub hands that event to a member again (at-least-once), so acknowledge only
 * once the event is handled, and make handling idempotent (the event id is a natural key). On
 * UNAVAILABLE and the other transient codes it rejoins with the gRPC connection backoff, as
 * `subscribeTopic` resubscribes; DATA_LOSS (the group's state was lost while it was away) and
 * OUT_OF_RANGE (events lost before the group had them) are thrown.
 */
import type { BackoffOptions } from "../../channel/backoff.js";
import type { Client } from "../../client/client.js";
import { subscribe, type SubscribeOptions } from "../../client/subscribe.js";
import { createPushable, type Pushable } from "../../stream/pushable.js";
import { RpcError } from "../../protocol/errors.js";
import { Code } from "../../protocol/code.js";
import { groupCreatedKey } from "./consume-stream.js";
import type { ConsumeResponse, Event, PubSubService } from "../../../gen/rill/pubsub/v1/pubsub_pb.js";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { ConsumeRequestSchema, JoinGroupSchema } from "../../../gen/rill/pubsub/v1/pubsub_pb.js";

/** Options of `consumeGroup`: the JoinGroup fields, and how to recover. */
export interface ConsumeGroupOptions extends Omit<MessageInitShape<typeof JoinGroupSchema>, "$typeName" | "topic" | "group"> {
  signal?: AbortSignal | undefined;
  backoff?: BackoffOptions | undefined;
  onRetry?: SubscribeOptions<unknown, ConsumeResponse>["onRetry"];
  /** Told the ids whose acks completed an event (an ack not listed was late: someone had acked it). */
  onAcked?: ((eventIds: readonly string[]) => void) | undefined;
}

/** One delivery of the group to this member. */
export interface GroupMessage {
  readonly event: Event;
  /** 1 the first time the group hands the event out. */
  readonly deliveries: number;
  /** Acknowledges the event (on the stream it came on; lost with it if that stream breaks). */
  ack(): void;
}

/**
 * Joins `group` of `topic` and yields its deliveries to this member, rejoining after failures.
 *
 *   for await (const m of consumeGroup(client, "orders", "billing", { signal })) {
 *     await bill(m.event);
 *     m.ack();
 *   }
 */
export function consumeGroup(client: Client<typeof PubSubService>, topic: string, group: string, options: ConsumeGroupOptions = {}): AsyncIterable<GroupMessage> {
  const { signal, backoff, onRetry, onAcked, ...settings } = options;
  const join: MessageInitShape<typeof JoinGroupSchema> = { ...settings, topic, group };
  // Acks never wait for room: at most max_in_flight of them are outstanding.
  const room = (settings.maxInFlight ?? 0) === 0 ? 64 : settings.maxInFlight!;
  let requests: Pushable<MessageInitShape<typeof ConsumeRequestSchema>> | undefined;
  let joined = false;
  const responses = subscribe<MessageInitShape<typeof JoinGroupSchema>, ConsumeResponse>(
    (j, callOptions) => {
      requests?.end();
      const r = (requests = createPushable({ highWaterMark: room + 1 }));
      const rejoin = joined;
      // A group recreated while we were away lost its state. Rejoining from the oldest retained
      // event, nothing published since is skipped; the join that finds it gone says DATA_LOSS.
      void r.push({ kind: { case: "join", value: rejoin ? { ...j, fromOldest: true } : j } });
      const call = new AbortController();
      const onAbort = () => call.abort(signal?.reason);
      signal?.addEventListener("abort", onAbort, { once: true });
      const responses = client.consume(r, {
        ...callOptions,
        signal: call.signal,
        onHeader: (md) => {
          callOptions?.onHeader?.(md);
          if (rejoin && md.get(groupCreatedKey) === "1") {
            call.abort(
              new RpcError(
                Code.DataLoss,
                `consumer group "${group}" of topic "${topic}" was gone when this member rejoined (a restart of the hub's memory log, or of Redis without persistence, or a deleted stream); it was created again from the oldest retained event: events it handed out before may come again, events the log lost are lost`,
              ),
            );
          }
          joined = true;
        },
      });
      return (async function* () {
        try {
          yield* responses;
        } finally {
          signal?.removeEventListener("abort", onAbort);
        }
      })();
    },
    {
      makeRequest: () => join,
      idOf: () => "",
      isBookmark: (r) => {
        if (r.kind.case === "acked") onAcked?.(r.kind.value.eventIds);
        return r.kind.case !== "delivery";
      },
      signal,
      backoff,
      onRetry,
    },
  );
  // Acks made in one turn of the event loop go out as one Ack message (one XACK pipeline on Redis).
  let batch: { on: Pushable<MessageInitShape<typeof ConsumeRequestSchema>>; ids: string[] } | undefined;
  const flush = () => {
    const b = batch;
    if (b === undefined) return;
    batch = undefined;
    if (!b.on.ended) void b.on.push({ kind: { case: "ack", value: { eventIds: b.ids } } }).catch(() => {});
  };
  const ack = (on: Pushable<MessageInitShape<typeof ConsumeRequestSchema>>, id: string) => {
    if (batch !== undefined && batch.on !== on) flush();
    if (batch === undefined) {
      batch = { on, ids: [] };
      queueMicrotask(flush);
    }
    batch.ids.push(id);
  };
  return {
    async *[Symbol.asyncIterator]() {
      try {
        for await (const r of responses) {
          if (r.kind.case !== "delivery") continue;
          const d = r.kind.value;
          const on = requests!;
          const id = d.event!.eventId;
          let acked = false;
          yield {
            event: d.event!,
            deliveries: d.deliveryCount,
            ack: () => {
              if (acked) return;
              acked = true;
              ack(on, id);
            },
          };
        }
      } finally {
        requests?.end();
      }
    },
  };
}
