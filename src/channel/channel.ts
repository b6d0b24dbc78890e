import { RpcError } from "../protocol/errors.js";
import { Code } from "../protocol/code.js";
import { parseServiceConfig, RetryThrottle, type MethodConfig, type ServiceConfig } from "./service-config.js";
import { systemClock, type Clock } from "./backoff.js";
import { balancerFactory, balancerNames, type Balancer, type Picker } from "./balancer.js";
import type { ConnectivityState } from "./connectivity.js";
import { KeepaliveState } from "./keepalive.js";
import { defaultResolver, staticResolver, type Resolver } from "./resolver.js";
import { http2Subchannels, type Subchannel, type SubchannelFactory } from "./subchannel.js";
import { addressKey, parseTarget, type Address, type Target } from "./target.js";
import { startTimer, type LongTimer } from "../timer.js";
import { resolveChannelOptions, type ChannelOptions, type ResolvedChannelOptions } from "./channel-options.js";

export type { ChannelOptions, ResolvedChannelOptions } from "./channel-options.js";

/**
 * A channel: a virtual connection to a target, over any number of real ones.
 *
 * Resolver → balancer → subchannels: the resolver turns the target into addresses, each address
 * gets a subchannel (one HTTP/2 session at a time), and the balancer decides which subchannels
 * connect and which one each call uses. Nothing connects until the first call or
 * `waitForReady()`. Idle connections do not keep the process alive; `close()` ends the channel.
 */
export interface Channel {
  readonly target: string;
  /** The `:authority` sent with calls. */
  readonly authority: string;
  /** The channel's connectivity state. */
  readonly state: ConnectivityState;
  /** Resolves with the new state once it differs from `from` (rejects if `signal` aborts). */
  waitForStateChange(from: ConnectivityState, signal?: AbortSignal): Promise<ConnectivityState>;
  /** Connects if idle and resolves once READY; rejects on timeout/abort or when the channel is closed. */
  waitForReady(options?: { signal?: AbortSignal; timeoutMs?: number }): Promise<void>;
  /**
   * The keepalive interval in force: `keepalive.timeMs`, doubled each time a server answered
   * with GOAWAY(ENHANCE_YOUR_CALM, "too_many_pings"), as grpc-go does. Infinity when off. Public
   * because it is what an operator needs to see when a server throttles the pings.
   */
  readonly keepaliveTimeMs: number;
  /** Closes every connection; calls still running finish on them. Calls after this fail. */
  close(): void;
}

/**
 * @internal What the call layer needs of a channel beyond its public face: kept off `Channel`
 * so that users see (and may rely on) only what is theirs. Reached with `callChannelOf()`.
 */
export interface CallChannel extends Channel {
  readonly options: ResolvedChannelOptions;
  /**
   * Chooses the subchannel for a call. Synchronous when one is ready; otherwise waits while
   * connecting, and in TRANSIENT_FAILURE fails with UNAVAILABLE unless `waitForReady`.
   * `signal` cancels the wait; given as a function, it is created only if there is a wait.
   */
  pick(waitForReady: boolean, signal: AbortSignal | (() => AbortSignal) | undefined): Subchannel | Promise<Subchannel>;
  /** The service config's settings for a method, if any. */
  methodConfig(service: string, method: string): MethodConfig | undefined;
  /** The channel's retry token bucket, when the service config sets retryThrottling. */
  readonly retryThrottle: RetryThrottle | undefined;
}

const kCallChannel = Symbol("rill.callChannel");

/** @internal The call layer's view of `channel`; a channel not made by Rill is refused clearly. */
export function callChannelOf(channel: Channel): CallChannel {
  const inner = (channel as { [kCallChannel]?: CallChannel })[kCallChannel];
  if (inner === undefined) throw new TypeError("createClient: the channel must come from createChannel() or createInProcessChannel()");
  return inner;
}

/**
 * Creates a channel to `target`: `host:port`, `dns:///host:port`, `ipv4:a:p,b:p`,
 * `ipv6:[a]:p`, `unix:///path`, or an array of `host:port` strings (a static list).
 */
export function createChannel(target: string | readonly string[], options: ChannelOptions = {}): Channel {
  const name = typeof target === "string" ? target : target.join(",");
  let parsed: Target;
  if (typeof target === "string") parsed = parseTarget(target);
  else {
    const addresses = target.map((t) => parseTarget(t).addresses[0] ?? { host: parseTarget(t).host, port: parseTarget(t).port });
    if (addresses.length === 0) throw new Error("createChannel: the address list is empty");
    parsed = { scheme: "static", host: "", port: 0, addresses, authority: addressKey(addresses[0]!) };
  }
  return new RillChannel(name, parsed, options, resolveChannelOptions(options), http2Subchannels);
}

/**
 * @internal A channel to fixed `addresses` whose subchannels `factory` makes: the in-process
 * transport's, with everything else (balancing, retries, service config, interceptors) as usual.
 */
export function createChannelOver(name: string, addresses: readonly Address[], options: ChannelOptions, factory: SubchannelFactory): Channel {
  const parsed: Target = { scheme: "static", host: "", port: 0, addresses, authority: name };
  return new RillChannel(name, parsed, options, resolveChannelOptions(options), factory);
}


/** The one channel implementation; what its subchannels are (HTTP/2 or in-process) is its factory's choice. */
class RillChannel implements CallChannel {
  get [kCallChannel](): CallChannel {
    return this;
  }

  state: ConnectivityState = "IDLE";
  readonly authority: string;
  readonly retryThrottle: RetryThrottle | undefined;
  private readonly serviceConfig: ServiceConfig | undefined;
  private readonly balancer: Balancer;
  private picker: Picker = { pick: () => undefined };
  private subchannels: Subchannel[] = [];
  private resolver: Resolver | undefined;
  private resolveError: Error | undefined;
  private readonly waiters = new Set<() => void>();
  private hold: NodeJS.Timeout | undefined;
  private readonly keepalive: KeepaliveState;
  private readonly clock: Clock;
  private readonly idleTimeoutMs: number;
  private idleTimer: LongTimer | undefined;
  /** A call picked since the idle timer last looked (a flag, not a timestamp: one store per call). */
  private used = false;

  constructor(
    readonly target: string,
    private readonly parsed: Target,
    private readonly raw: ChannelOptions,
    readonly options: ResolvedChannelOptions,
    private readonly makeSubchannel: SubchannelFactory,
  ) {
    this.authority = options.credentials.serverNameOverride ?? parsed.authority;
    this.serviceConfig = raw.serviceConfig === undefined ? undefined : parseServiceConfig(raw.serviceConfig);
    const throttling = this.serviceConfig?.retryThrottling;
    this.retryThrottle = throttling === undefined ? undefined : new RetryThrottle(throttling);
    const configured = this.serviceConfig?.loadBalancingPolicies ?? [];
    let policy: string;
    if (configured.length > 0) {
      // gRPC's rule: the first policy of loadBalancingConfig this client supports.
      const supported = configured.find((name) => balancerFactory(name) !== undefined);
      if (supported === undefined) {
        throw new Error(`service config: none of the loadBalancingConfig policies ${JSON.stringify(configured)} is supported (supported: ${balancerNames().join(", ")})`);
      }
      policy = supported;
    } else {
      policy = this.serviceConfig?.loadBalancingPolicy ?? raw.loadBalancingPolicy ?? "pick_first";
    }
    const factory = balancerFactory(policy);
    if (factory === undefined) throw new Error(`unknown load balancing policy "${policy}" (known: ${balancerNames().join(", ")})`);
    this.balancer = factory();
    this.keepalive = new KeepaliveState(raw.keepalive);
    this.clock = raw.clock ?? systemClock;
    const idle = raw.idleTimeoutMs ?? 30 * 60_000;
    if (!(idle >= 0)) throw new RangeError(`idleTimeoutMs must be a number of ms >= 0 (0 or Infinity: never), got ${idle}`);
    this.idleTimeoutMs = idle === 0 ? Infinity : idle;
  }

  get keepaliveTimeMs(): number {
    return this.keepalive.timeMs;
  }

  methodConfig(service: string, method: string): MethodConfig | undefined {
    return this.serviceConfig?.forMethod(service, method);
  }

  pick(waitForReady: boolean, abortSignal: AbortSignal | (() => AbortSignal) | undefined): Subchannel | Promise<Subchannel> {
    this.used = true;
    const picked = this.picker.pick();
    if (picked !== undefined) return picked;
    this.exitIdle();
    const failure = this.failFast(waitForReady);
    if (failure !== undefined) throw failure;
    const signal = typeof abortSignal === "function" ? abortSignal() : abortSignal;
    return new Promise<Subchannel>((resolve, reject) => {
      const onAbort = () => {
        this.removeWaiter(retry);
        reject(signal?.reason);
      };
      const retry = () => {
        const s = this.picker.pick();
        const err = s === undefined ? this.failFast(waitForReady) : undefined;
        if (s === undefined && err === undefined) return;
        this.removeWaiter(retry);
        signal?.removeEventListener("abort", onAbort);
        if (s !== undefined) resolve(s);
        else reject(err);
      };
      if (signal?.aborted) return onAbort();
      signal?.addEventListener("abort", onAbort, { once: true });
      this.addWaiter(retry);
    });
  }

  waitForStateChange(from: ConnectivityState, signal?: AbortSignal): Promise<ConnectivityState> {
    if (this.state !== from) return Promise.resolve(this.state);
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        this.removeWaiter(check);
        reject(signal?.reason);
      };
      const check = () => {
        if (this.state === from) return;
        this.removeWaiter(check);
        signal?.removeEventListener("abort", onAbort);
        resolve(this.state);
      };
      if (signal?.aborted) return onAbort();
      signal?.addEventListener("abort", onAbort, { once: true });
      this.addWaiter(check);
    });
  }

  async waitForReady(options: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<void> {
    // Our own long timer, not AbortSignal.timeout: that one fires at once past 2^31-1 ms (24.8 days).
    const timeout = options.timeoutMs === undefined ? undefined : new AbortController();
    const timer = timeout === undefined ? undefined : startTimer(options.timeoutMs!, () => timeout.abort());
    const signals = [options.signal, timeout?.signal].filter((s): s is AbortSignal => s !== undefined);
    const signal = signals.length === 0 ? undefined : AbortSignal.any(signals);
    try {
      this.exitIdle();
      while (this.state !== "READY") {
        if (this.state === "SHUTDOWN") throw new RpcError(Code.Unavailable, `channel to ${this.target} is closed`);
        try {
          await this.waitForStateChange(this.state, signal);
        } catch {
          // The caller's own signal is a cancellation; only our timeoutMs is a deadline.
          const state = `(state ${this.state}${this.describeFailure()})`;
          if (options.signal?.aborted === true) {
            const reason: unknown = options.signal.reason;
            if (reason instanceof RpcError) throw reason;
            throw new RpcError(Code.Canceled, `waiting for ${this.target} to become ready was cancelled ${state}`, { cause: reason });
          }
          throw new RpcError(Code.DeadlineExceeded, `${this.target} did not become ready in time ${state}`);
        }
      }
    } finally {
      timer?.cancel();
    }
  }

  close(): void {
    if (this.state === "SHUTDOWN") return;
    this.idleTimer?.cancel();
    this.resolver?.close();
    for (const s of this.subchannels) s.shutdown(true);
    this.subchannels = [];
    this.picker = { pick: () => undefined };
    this.setState("SHUTDOWN");
  }

  /** Starts resolving (once); the resolver's addresses then drive connections. */
  private exitIdle(): void {
    if (this.resolver !== undefined || this.state === "SHUTDOWN") {
      if (this.state === "IDLE") {
        this.balancer.exitIdle?.();
        this.rebalance();
      }
      return;
    }
    this.armIdleTimer();
    const factory = this.raw.resolver ?? ((t: Target) => (t.scheme === "dns" ? defaultResolver(t) : staticResolver(t.addresses)));
    this.resolver = factory(this.parsed);
    this.setState("CONNECTING");
    this.resolver.start({
      onAddresses: (addresses) => this.onAddresses(addresses),
      onError: (error) => {
        this.resolveError = error;
        if (this.subchannels.length === 0) this.setState("TRANSIENT_FAILURE");
      },
    });
  }

  /**
   * The channel's idle timeout: a timer that looks every idleTimeoutMs whether any call was
   * picked or is still running since it last looked; if none, the channel goes IDLE. So an idle
   * channel lets go of its connections between idleTimeoutMs and twice that after its last call.
   */
  private armIdleTimer(): void {
    if (this.idleTimer !== undefined || !Number.isFinite(this.idleTimeoutMs)) return;
    this.used = false;
    this.idleTimer = startTimer(this.idleTimeoutMs, () => {
      this.idleTimer = undefined;
      const busy = this.used || this.waiters.size > 0 || this.subchannels.some((s) => s.activeCalls > 0);
      if (busy) this.armIdleTimer();
      else this.enterIdle();
    });
  }

  /** No calls for idleTimeoutMs: close connections and stop resolving until the next call. */
  private enterIdle(): void {
    if (this.state === "SHUTDOWN") return;
    this.resolver?.close();
    this.resolver = undefined;
    this.resolveError = undefined;
    for (const s of this.subchannels) s.shutdown(true);
    this.subchannels = [];
    this.picker = { pick: () => undefined };
    this.setState("IDLE");
  }

  private onAddresses(addresses: readonly Address[]): void {
    if (this.state === "SHUTDOWN") return;
    this.resolveError = undefined;
    const old = new Map(this.subchannels.map((s) => [s.key, s]));
    const next: Subchannel[] = [];
    for (const a of addresses) {
      const key = addressKey(a);
      const existing = old.get(key);
      if (existing !== undefined) {
        old.delete(key);
        next.push(existing);
      } else {
        next.push(
          this.makeSubchannel(a, {
            backoff: this.raw.backoff ?? {},
            clock: this.clock,
            keepalive: this.keepalive,
            logger: this.options.logger,
            windows: this.options.windows,
            credentials: this.options.credentials,
            onStateChange: (s) => this.onSubchannelState(s),
          }),
        );
      }
    }
    for (const gone of old.values()) gone.shutdown(true);
    this.subchannels = next;
    this.rebalance();
  }

  private onSubchannelState(s: Subchannel): void {
    if (s.state === "TRANSIENT_FAILURE") this.resolver?.refresh();
    this.rebalance();
  }

  private rebalance(): void {
    if (this.state === "SHUTDOWN") return;
    const { state, picker } = this.balancer.update(this.subchannels);
    this.picker = picker;
    this.setState(this.subchannels.length === 0 && this.resolveError !== undefined ? "TRANSIENT_FAILURE" : state);
    this.notify();
  }

  private failFast(waitForReady: boolean): RpcError | undefined {
    if (this.state === "SHUTDOWN") return new RpcError(Code.Unavailable, `the channel to ${this.target} is closed`);
    if (this.state !== "TRANSIENT_FAILURE" || waitForReady) return undefined;
    return new RpcError(Code.Unavailable, `cannot reach ${this.target}${this.describeFailure()}`);
  }

  private describeFailure(): string {
    const errors = this.subchannels.map((s) => s.lastError).filter((e): e is Error => e !== undefined);
    const first = this.resolveError ?? errors[0];
    return first === undefined ? "" : `: ${first.message}`;
  }

  private setState(state: ConnectivityState): void {
    if (this.state === state) return;
    this.state = state;
    this.notify();
  }

  /**
   * Someone awaits this channel: keep the process alive meanwhile. Connections are unref'd so an
   * idle channel never holds a process open, but a pending call or waitForReady must.
   */
  private addWaiter(w: () => void): void {
    this.waiters.add(w);
    this.hold ??= setInterval(() => {}, 1 << 30);
  }

  private removeWaiter(w: () => void): void {
    this.waiters.delete(w);
    if (this.waiters.size === 0 && this.hold !== undefined) {
      clearInterval(this.hold);
      this.hold = undefined;
    }
  }

  private notify(): void {
    for (const w of [...this.waiters]) w();
  }
}
