/**
 * One member of a consumer group, serving one Consume stream: it claims events for its stream
 * while it has room (`maxInFlight` unacknowledged), takes acks, and when the stream ends hands
 * back what it held, so the other members get it at once instead of after the ack deadline.
 *
 * It claims when woken: a new event on the topic (the hub's follower), an ack that made room,
 * and a tick every quarter of the ack deadline (bounded to 50 ms – 1 s), which is when events
 * other members left unacknowledged become its to take. A delivered event counts against the
 * room until it is acknowledged or its deadline passes (another member may have it by then).
 *
 * Past `maxDeliveries` an event is not delivered again: `deadLetter` publishes it to the
 * dead-letter topic and it is acknowledged, so it counts as handled, once.
 */
import { RpcError } from "../../protocol/errors.js";
import { Code } from "../../protocol/code.js";
import type { ConsumerGroups, GroupDelivery } from "./event-log.js";

/** A member's settings (JoinGroup, with defaults applied). */
export interface MemberSettings {
  readonly topic: string;
  readonly group: string;
  /** The member's name in the group's state (unique per stream). */
  readonly consumer: string;
  readonly maxInFlight: number;
  readonly ackDeadlineMs: number;
  /** 0: no limit. */
  readonly maxDeliveries: number;
}

/** What a member does with what it claims. */
export interface MemberHost {
  /** Sends a delivery on the stream (resolves under its backpressure). */
  deliver(d: GroupDelivery): Promise<void>;
  /** Publishes an event delivered `maxDeliveries` times to the dead-letter topic. */
  deadLetter(d: GroupDelivery): Promise<void>;
  now(): number;
}

export class GroupMember {
  /** Delivered, not acknowledged: id → when its ack deadline passes. */
  private readonly inFlight = new Map<string, number>();
  private woken = false;
  /**
   * Events no member has had may be waiting (set by a new event or freed room; cleared by a
   * claim that reads them). A tick alone only looks for expired deliveries: with Redis that is one
   * command instead of four, for every idle member every tick.
   */
  private fresh = true;
  private wakeUp: (() => void) | undefined;
  private failure: RpcError | undefined;
  private stopped = false;
  /** Events this member sent to the dead-letter topic. */
  deadLettered = 0;
  /** Deliveries that were redeliveries (count > 1). */
  redelivered = 0;

  constructor(
    private readonly groups: ConsumerGroups,
    readonly settings: MemberSettings,
    private readonly host: MemberHost,
  ) {}

  /** Something changed (a new event, room): claim again, new events included. */
  wake(): void {
    this.fresh = true;
    this.rouse();
  }

  private rouse(): void {
    this.woken = true;
    const w = this.wakeUp;
    this.wakeUp = undefined;
    w?.();
  }

  /** Ends `run()` with `error` (the hub drains, the log lost the group). */
  fail(error: RpcError): void {
    this.failure ??= error;
    this.rouse();
  }

  /** Claims and delivers until `stop()` or `fail()`; rejects with the failure. */
  async run(): Promise<void> {
    const { topic, group, consumer, maxInFlight, ackDeadlineMs, maxDeliveries } = this.settings;
    const tickMs = Math.min(1000, Math.max(50, Math.floor(ackDeadlineMs / 4)));
    while (!this.stopped) {
      if (this.failure !== undefined) throw this.failure;
      this.expire();
      const room = maxInFlight - this.inFlight.size;
      this.woken = false;
      let claimed = 0;
      if (room > 0) {
        let batch: GroupDelivery[];
        const readNew = this.fresh;
        this.fresh = false;
        try {
          batch = await this.groups.claim(topic, group, consumer, room, ackDeadlineMs, readNew);
        } catch (e) {
          const error = RpcError.from(e, Code.Unavailable);
          if (error.code !== Code.FailedPrecondition) throw error;
          throw new RpcError(Code.DataLoss, `the state of consumer group "${group}" of topic "${topic}" is gone from the event log (Redis restarted without it, or the stream was deleted): events it had not handed out or that were not acknowledged may be lost; join again to start a new group`);
        }
        claimed = batch.length;
        for (const d of batch) {
          if (this.stopped || this.failure !== undefined) break;
          if (maxDeliveries > 0 && d.deliveries > maxDeliveries) {
            await this.host.deadLetter(d);
            await this.groups.ack(topic, group, [d.event.id]);
            this.deadLettered++;
            continue;
          }
          if (d.deliveries > 1) this.redelivered++;
          this.inFlight.set(d.event.id, this.host.now() + ackDeadlineMs);
          await this.host.deliver(d);
        }
      }
      if (claimed > 0 && claimed === room) {
        this.fresh = true; // a full batch: there may be more
        continue;
      }
      if (this.woken || this.stopped) continue;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          this.wakeUp = undefined;
          resolve();
        }, tickMs);
        this.wakeUp = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  /** Acknowledges `ids`; resolves with those the ack completed. */
  async ack(ids: readonly string[]): Promise<string[]> {
    let freed = false;
    for (const id of ids) if (this.inFlight.delete(id)) freed = true;
    const done = ids.length === 0 ? [] : await this.groups.ack(this.settings.topic, this.settings.group, ids);
    // Only room made wakes the claims: empty or foreign acks cost the log nothing more.
    if (freed) this.wake();
    return done;
  }

  /** The stream ended: stop claiming and hand back what is unacknowledged. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.rouse();
    const held = [...this.inFlight.keys()];
    this.inFlight.clear();
    if (held.length > 0) await this.groups.release(this.settings.topic, this.settings.group, this.settings.consumer, held);
  }

  /** Deliveries past their deadline no longer take room: another member may hold them now. */
  private expire(): void {
    const now = this.host.now();
    for (const [id, deadline] of this.inFlight) if (deadline <= now) this.inFlight.delete(id);
  }

  /** Delivered and not acknowledged. */
  get unacknowledged(): number {
    return this.inFlight.size;
  }
}
