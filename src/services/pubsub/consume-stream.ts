/**
 * The server side of one Consume stream: a member of a consumer group (group-member.ts) joined
 * with the stream's first request, fed acks by the later ones, and handed back to the group when
 * the stream ends, however it ends.
 */
import { randomBytes } from "node:crypto";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { ConsumeRequest, ConsumeResponseSchema, Event } from "../../../gen/rill/pubsub/v1/pubsub_pb.js";
import type { HandlerContext } from "../../handler-context.js";
import { RpcError } from "../../protocol/errors.js";
import { Code } from "../../protocol/code.js";
import type { EventLog, StoredEvent } from "./event-log.js";
import { GroupMember, type MemberSettings } from "./group-member.js";

type ConsumeResponseInit = MessageInitShape<typeof ConsumeResponseSchema>;

/** Response header naming a Consume stream's member (its consumer name in the group's state). */
export const memberIdKey = "rill-member-id";
/**
 * Response header, "1" when this join created the group. A member rejoining a group it was in
 * learns from it that the group's state was lost (a restart of a memory log, of Redis without
 * persistence, a deleted stream).
 */
export const groupCreatedKey = "rill-group-created";
/** The shortest ack deadline served: a member asking for less gets this. */
export const minAckDeadlineMs = 100;
/** The most deliveries one member may hold unacknowledged. */
const maxGroupInFlight = 10_000;

/** What a Consume stream needs of the hub. */
export interface ConsumeHost {
  readonly log: EventLog;
  readonly maxTopicLength: number;
  /** Throws INVALID_ARGUMENT for a topic name the hub does not take. */
  checkTopic(topic: string): void;
  /** The hub is shutting down: no new member. */
  readonly draining: boolean;
  /** Wakes `member` on each new event of `topic` (and counts it in the hub's stats) until the returned function is called. */
  watch(topic: string, member: GroupMember): Promise<() => void>;
  toEvent(ev: StoredEvent): Event;
  /** The hub's counts of members that have left. */
  readonly counters: { acknowledged: number; redelivered: number; deadLettered: number };
}

/** Serves one Consume stream. */
export async function serveConsume(requests: AsyncIterable<ConsumeRequest>, ctx: HandlerContext<ConsumeResponseInit>, host: ConsumeHost): Promise<void> {
  const it = requests[Symbol.asyncIterator]();
  const first = await it.next();
  if (first.done === true || first.value.kind.case !== "join") throw new RpcError(Code.InvalidArgument, "the first ConsumeRequest must be `join`");
  const join = first.value.kind.value;
  host.checkTopic(join.topic);
  if (join.group === "") throw new RpcError(Code.InvalidArgument, "group is empty");
  if (join.group.length > host.maxTopicLength) throw new RpcError(Code.InvalidArgument, `group is longer than ${host.maxTopicLength} characters`);
  const deadLetterTopic = join.deadLetterTopic === "" ? `${join.topic}.dead-letter` : join.deadLetterTopic;
  host.checkTopic(deadLetterTopic);
  if (deadLetterTopic === join.topic) throw new RpcError(Code.InvalidArgument, "dead_letter_topic is the topic itself");
  if (host.draining) throw new RpcError(Code.Unavailable, "the server is shutting down; join again (on another instance, if there is one)");
  const settings: MemberSettings = {
    topic: join.topic,
    group: join.group,
    consumer: randomBytes(9).toString("base64url"),
    maxInFlight: Math.min(join.maxInFlight === 0 ? 64 : join.maxInFlight, maxGroupInFlight),
    ackDeadlineMs: join.ackDeadlineMs === 0 ? 30_000 : Math.max(minAckDeadlineMs, join.ackDeadlineMs),
    maxDeliveries: join.maxDeliveries === 0 ? 5 : join.maxDeliveries,
  };
  let created: boolean;
  try {
    created = await host.log.groups.join(join.topic, join.group, join.fromOldest ? "oldest" : "next");
  } catch (e) {
    throw RpcError.from(e, Code.Unavailable);
  }
  const member = new GroupMember(host.log.groups, settings, {
    deliver: (d) => ctx.send({ kind: { case: "delivery", value: { event: host.toEvent(d.event), deliveryCount: d.deliveries } } }),
    deadLetter: async (d) => {
      await host.log.append(deadLetterTopic, d.event.payload, `${join.group}/${d.event.id}`);
    },
    now: Date.now,
  });
  const unwatch = await host.watch(join.topic, member);
  ctx.responseHeader.set(memberIdKey, settings.consumer);
  if (created) ctx.responseHeader.set(groupCreatedKey, "1");
  ctx.sendHeader();
  const acks = (async () => {
    for (;;) {
      const r = await it.next();
      if (r.done === true) return;
      if (r.value.kind.case !== "ack") throw new RpcError(Code.InvalidArgument, "after `join`, a ConsumeRequest must be `ack`");
      const ids = r.value.kind.value.eventIds;
      if (ids.length > settings.maxInFlight) throw new RpcError(Code.InvalidArgument, `an ack names ${ids.length} events; at most max_in_flight (${settings.maxInFlight}) can be unacknowledged`);
      const done = await member.ack(ids);
      host.counters.acknowledged += done.length;
      if (done.length > 0) await ctx.send({ kind: { case: "acked", value: { eventIds: done } } });
    }
  })();
  const run = member.run();
  // Whichever loses the race still settles, when the call ends: that is not unhandled.
  acks.catch(() => {});
  run.catch(() => {});
  try {
    // Closing the request stream leaves the group (OK); the member's run only ends by failing.
    await Promise.race([acks, run]);
  } finally {
    host.counters.redelivered += member.redelivered;
    host.counters.deadLettered += member.deadLettered;
    unwatch();
    // Handed back even when the stream broke, so the others need not wait out the deadline.
    await member.stop().catch(() => {});
  }
}
