import type { ConnectivityState } from "./connectivity.js";
import type { Subchannel } from "./subchannel.js";

/**
 * Chooses a subchannel for each call. `pick()` is synchronous over the snapshot the balancer
 * built at the last state change; undefined means "nothing ready: wait or fail".
 */
export interface Picker {
  pick(): Subchannel | undefined;
}

/**
 * A load-balancing policy: given the subchannels (in resolver order) it decides which ones to
 * connect, what the channel's state is, and how calls pick. Called again on every change.
 */
export interface Balancer {
  /** Recomputes after an address-list or subchannel-state change. */
  update(subchannels: readonly Subchannel[]): { state: ConnectivityState; picker: Picker };
  /** A call (or waitForReady) wants a connection while the policy is IDLE: connect again at the next update. */
  exitIdle?(): void;
}

/** The policies by their service-config name; `registerBalancer` adds to it. */
const registry = new Map<string, () => Balancer>();

/**
 * Makes a load-balancing policy available under `name`, for `loadBalancingPolicy` and the
 * service config's `loadBalancingConfig`. Throws if the name is taken: replacing a built-in
 * policy behind the back of every channel in the process is never what a caller means.
 */
export function registerBalancer(name: string, factory: () => Balancer): void {
  if (registry.has(name)) throw new Error(`registerBalancer: a policy named "${name}" is already registered`);
  registry.set(name, factory);
}

/** @internal The factory registered as `name`. */
export function balancerFactory(name: string): (() => Balancer) | undefined {
  return registry.get(name);
}

/** @internal The registered policies' names, for error messages. */
export function balancerNames(): string[] {
  return [...registry.keys()];
}

const nothing: Picker = { pick: () => undefined };

/** Aggregates subchannel states as gRPC does: READY > CONNECTING > IDLE > TRANSIENT_FAILURE. */
function aggregate(subchannels: readonly Subchannel[]): ConnectivityState {
  let connecting = false;
  let idle = false;
  for (const s of subchannels) {
    if (s.state === "READY") return "READY";
    if (s.state === "CONNECTING") connecting = true;
    if (s.state === "IDLE") idle = true;
  }
  if (connecting) return "CONNECTING";
  if (idle) return "IDLE";
  return subchannels.length === 0 ? "IDLE" : "TRANSIENT_FAILURE";
}

/**
 * pick_first: every call goes to the first address that is READY; connections are made one
 * address at a time, moving down the list while earlier ones fail. The default policy.
 *
 * Lazy after a loss: when the connected subchannel goes IDLE (GOAWAY, a closed connection) the
 * policy goes IDLE and connects again only once a call asks (exitIdle), as grpc-go and grpc-js
 * do. Reconnecting at once made a channel without calls reconnect over and over to a server
 * that closes idle connections.
 */
export function pickFirst(): Balancer {
  let connected: Subchannel | undefined;
  let idle = false;
  return {
    exitIdle() {
      idle = false;
    },
    update(subchannels) {
      const ready = subchannels.find((s) => s.state === "READY");
      if (ready !== undefined) {
        connected = ready;
        idle = false;
        return { state: "READY", picker: { pick: () => (ready.state === "READY" ? ready : undefined) } };
      }
      if (connected !== undefined && connected.state === "IDLE") idle = true;
      connected = undefined;
      if (idle) return { state: "IDLE", picker: nothing };
      if (!subchannels.some((s) => s.state === "CONNECTING")) {
        // Connect the first address that is not cooling off after a failure.
        const next = subchannels.find((s) => s.state === "IDLE");
        next?.requestConnection();
      }
      return { state: aggregate(subchannels), picker: nothing };
    },
  };
}

/**
 * round_robin: connects every address and spreads calls over the READY ones in turn. A
 * subchannel that fails leaves the rotation and rejoins once it reconnects.
 */
export function roundRobin(): Balancer {
  let next = 0;
  return {
    update(subchannels) {
      for (const s of subchannels) s.requestConnection();
      const ready = subchannels.filter((s) => s.state === "READY");
      if (ready.length === 0) return { state: aggregate(subchannels), picker: nothing };
      return {
        state: "READY",
        picker: {
          pick() {
            for (let i = 0; i < ready.length; i++) {
              const s = ready[next++ % ready.length]!;
              if (s.state === "READY") return s;
            }
            return undefined;
          },
        },
      };
    },
  };
}

registerBalancer("pick_first", pickFirst);
registerBalancer("round_robin", roundRobin);
