import { connect as http2Connect, constants, type ClientHttp2Session, type ClientHttp2Stream, type Http2Session, type OutgoingHttpHeaders } from "node:http2";
import { connect as netConnect } from "node:net";
import { connect as tlsConnect } from "node:tls";
import type { Logger } from "../logger.js";
import { windowSettings, type ResolvedWindowOptions } from "../transport/window-options.js";
import { WindowTuner } from "../transport/window-tuner.js";
import { ConnectionBackoff, type BackoffOptions, type Clock } from "./backoff.js";
import { explainConnectError, type ChannelCredentials } from "./credentials.js";
import type { ConnectivityState } from "./connectivity.js";
import type { KeepaliveState } from "./keepalive.js";
import { addressKey, type Address } from "./target.js";

/** What a subchannel needs from its channel. */
export interface SubchannelContext {
  readonly backoff: BackoffOptions;
  readonly clock: Clock;
  readonly keepalive: KeepaliveState;
  readonly logger: Logger;
  /** Flow-control windows and BDP probing of the sessions (what servers may send us). */
  readonly windows: ResolvedWindowOptions;
  /** How sessions are secured (TLS options, or plaintext). */
  readonly credentials: ChannelCredentials;
  /** Told of every state change. */
  onStateChange(subchannel: Subchannel): void;
}

/**
 * One address and at most one HTTP/2 session to it at a time.
 *
 * States (gRPC connectivity semantics):
 *   IDLE ──requestConnection()──▶ CONNECTING ──connected──▶ READY
 *   CONNECTING ──error/timeout──▶ TRANSIENT_FAILURE ──backoff elapsed──▶ CONNECTING
 *   READY ──connection lost / GOAWAY / keepalive timeout──▶ IDLE (calls already on the old
 *     session finish there; the balancer asks for a new connection)
 *   any ──shutdown()──▶ SHUTDOWN (final)
 * The attempt timeout and the wait between attempts follow the connection-backoff spec.
 */
export class Subchannel {
  state: ConnectivityState = "IDLE";
  /** Why the last attempt failed or the last session ended; for error messages. */
  lastError: Error | undefined;
  readonly key: string;
  private session: ClientHttp2Session | undefined;
  private readonly backoff: ConnectionBackoff;
  private connectTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private keepaliveTimer: NodeJS.Timeout | undefined;
  private active = 0;
  private readonly sessions = new Set<ClientHttp2Session>();
  private readonly tuners = new WeakMap<ClientHttp2Session, WindowTuner>();

  constructor(
    readonly address: Address,
    private readonly ctx: SubchannelContext,
  ) {
    this.key = addressKey(address);
    this.backoff = new ConnectionBackoff(ctx.backoff, ctx.clock);
  }

  /** Calls in flight on this subchannel's sessions. */
  get activeCalls(): number {
    return this.active;
  }

  /** Starts connecting if IDLE; does nothing in any other state. */
  requestConnection(): void {
    if (this.state === "IDLE") this.connect();
  }

  /** Opens a stream on the READY session. Throws if not READY (the caller picks again). */
  openStream(headers: OutgoingHttpHeaders, reset: AbortSignal | undefined): ClientHttp2Stream {
    const session = this.session;
    if (session !== undefined && (session.destroyed || session.closed)) {
      // Dead but its 'close' event not yet delivered: leave READY now so the next pick waits.
      this.detach(session, this.lastError);
    }
    if (this.state !== "READY" || this.session === undefined) throw new Error(`subchannel ${this.key} is ${this.state}`);
    const stream = this.session.request(headers, reset === undefined ? { endStream: false } : { endStream: false, signal: reset });
    if (this.active++ === 0) for (const s of this.sessions) s.ref();
    // A shared listener that finds the subchannel on the stream: no closure per call.
    (stream as SubchannelStream)[kSubchannel] = this;
    stream.on("close", onSubchannelStreamClose);
    return stream;
  }

  /** @internal The window tuner to tell of DATA read on `session`'s streams, if it probes. */
  tunerOf(session: Http2Session | undefined): WindowTuner | undefined {
    const tuner = session === undefined ? undefined : this.tuners.get(session as ClientHttp2Session);
    return tuner?.probing === true ? tuner : undefined;
  }

  /** @internal A stream opened by openStream closed. */
  streamClosed(): void {
    if (--this.active === 0) for (const s of this.sessions) s.unref();
  }

  /** Ends the subchannel: running calls finish on their session (`graceful`) or are reset. */
  shutdown(graceful = true): void {
    if (this.state === "SHUTDOWN") return;
    this.clearTimers();
    this.session = undefined;
    for (const s of this.sessions) {
      if (graceful) s.close();
      else s.destroy();
    }
    this.setState("SHUTDOWN");
  }

  private connect(): void {
    this.setState("CONNECTING");
    const timeoutMs = this.backoff.begin();
    const address = this.address;
    const creds = this.ctx.credentials;
    const session =
      "path" in address
        ? http2Connect(creds.secure ? "https://localhost" : "http://localhost", {
            createConnection: () => (creds.secure ? tlsConnect({ ...creds.connectOptions, path: address.path }) : netConnect(address.path)),
            settings: { enablePush: false, ...windowSettings(this.ctx.windows) },
          })
        : http2Connect(`${creds.secure ? "https" : "http"}://${this.key}`, { ...creds.connectOptions, settings: { enablePush: false, ...windowSettings(this.ctx.windows) } });
    this.session = session;
    this.sessions.add(session);
    const tuner = new WindowTuner(session, this.ctx.windows);
    this.tuners.set(session, tuner);
    if (this.active === 0) session.unref();
    this.connectTimer = setTimeout(() => {
      session.destroy(new Error(`connection attempt timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    this.connectTimer.unref();

    session.once("connect", () => {
      clearTimeout(this.connectTimer);
      tuner.start();
      if (this.session !== session) return;
      this.backoff.reset();
      this.lastError = undefined;
      this.setState("READY");
      this.scheduleKeepalive(session);
    });
    session.on("error", (e) => {
      if (this.session === session || this.lastError === undefined) this.lastError = explainConnectError(e, this.ctx.credentials, this.key);
    });
    session.on("goaway", (code, _lastStreamId, data) => {
      if (code === constants.NGHTTP2_ENHANCE_YOUR_CALM && data?.toString() === "too_many_pings") {
        this.ctx.keepalive.tooManyPings();
        this.ctx.logger.warn(`${this.key} said too_many_pings; keepalive time is now ${this.ctx.keepalive.timeMs} ms`);
      }
      this.detach(session, code === constants.NGHTTP2_NO_ERROR ? undefined : new Error(`the server sent GOAWAY with HTTP/2 error code ${code}`));
    });
    session.on("close", () => {
      this.sessions.delete(session);
      this.detach(session, undefined);
    });
  }

  /** The session can take no new calls: leave READY (or fail the attempt) and move on. */
  private detach(session: ClientHttp2Session, error: Error | undefined): void {
    if (this.session !== session) return;
    this.session = undefined;
    clearTimeout(this.connectTimer);
    clearTimeout(this.keepaliveTimer);
    if (error !== undefined) this.lastError = error;
    if (!session.closed && !session.destroyed) session.close();
    if (this.state === "CONNECTING") {
      this.lastError ??= new Error("the connection closed before it was established");
      this.setState("TRANSIENT_FAILURE");
      const delay = this.backoff.fail();
      this.retryTimer = setTimeout(() => {
        this.retryTimer = undefined;
        if (this.state === "TRANSIENT_FAILURE") this.connect();
      }, delay);
      this.retryTimer.unref();
    } else if (this.state === "READY") {
      this.setState("IDLE");
    }
  }

  private scheduleKeepalive(session: ClientHttp2Session): void {
    const ka = this.ctx.keepalive;
    if (!Number.isFinite(ka.timeMs)) return;
    this.keepaliveTimer = setTimeout(() => {
      if (this.session !== session) return;
      if (this.active === 0 && !ka.permitWithoutCalls) return this.scheduleKeepalive(session);
      const timeout = setTimeout(() => {
        this.ctx.logger.warn(`${this.key} did not answer a keepalive PING within ${ka.timeoutMs} ms; closing the connection`);
        this.lastError = new Error(`keepalive PING not acknowledged within ${ka.timeoutMs} ms`);
        session.destroy(this.lastError);
      }, ka.timeoutMs);
      timeout.unref();
      try {
        session.ping((err) => {
          clearTimeout(timeout);
          if (err === null) this.scheduleKeepalive(session);
        });
      } catch {
        clearTimeout(timeout);
      }
    }, ka.timeMs);
    this.keepaliveTimer.unref();
  }

  private clearTimers(): void {
    clearTimeout(this.connectTimer);
    clearTimeout(this.retryTimer);
    clearTimeout(this.keepaliveTimer);
  }

  private setState(state: ConnectivityState): void {
    if (this.state === state || this.state === "SHUTDOWN") return;
    this.state = state;
    this.ctx.onStateChange(this);
  }
}

const kSubchannel = Symbol("rill.subchannel");
type SubchannelStream = ClientHttp2Stream & { [kSubchannel]: Subchannel };

function onSubchannelStreamClose(this: SubchannelStream): void {
  this[kSubchannel].streamClosed();
}
