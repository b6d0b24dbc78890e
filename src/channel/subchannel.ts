import { connect as http2Connect, constants, type ClientHttp2Session, type ClientHttp2Stream, type Http2Session, type OutgoingHttpHeaders } from "node:http2";
import { connect as netConnect } from "node:net";
import { connect as tlsConnect } from "node:tls";
import type { Logger } from "../logger.js";
import { windowSettings, type ResolvedWindowOptions } from "../flow-control/window-options.js";
import { WindowTuner } from "../flow-control/window-tuner.js";
import { ConnectionBackoff, type BackoffOptions, type Clock } from "./backoff.js";
import { explainConnectError, explainEarlyClose, type ChannelCredentials } from "./credentials.js";
import type { ConnectivityState } from "./connectivity.js";
import type { KeepaliveState } from "./keepalive.js";
import { startTimer, type LongTimer } from "../timer.js";
import { addressKey, type Address } from "./target.js";
import type { ClientCallStream, ClientTransport, DataObserver } from "../transport/call-stream.js";

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

/** What a channel and its balancer see of one backend: a connectivity state, and a transport for calls. */
export interface Subchannel extends ClientTransport {
  readonly state: ConnectivityState;
  /** Calls in flight on this subchannel. */
  readonly activeCalls: number;
  /** Starts connecting if IDLE; does nothing in any other state. */
  requestConnection(): void;
  /** Ends the subchannel: running calls finish (`graceful`) or are reset. */
  shutdown(graceful?: boolean): void;
}

/** Makes the subchannel of one address (an HTTP/2 connection, or the in-process transport). */
export type SubchannelFactory = (address: Address, ctx: SubchannelContext) => Subchannel;

/** The default factory: one HTTP/2 session at a time to the address. */
export const http2Subchannels: SubchannelFactory = (address, ctx) => new Http2Subchannel(address, ctx);

/**
 * One address and at most one HTTP/2 session to it at a time.
 *
 * States (gRPC connectivity semantics):
 *   IDLE ──requestConnection()──▶ CONNECTING ──server's SETTINGS received──▶ READY
 *   CONNECTING ──error/timeout──▶ TRANSIENT_FAILURE ──backoff elapsed──▶ CONNECTING
 *   READY ──connection lost / GOAWAY / keepalive timeout──▶ IDLE (calls already on the old
 *     session finish there; the balancer decides when to connect again)
 *   any ──shutdown()──▶ SHUTDOWN (final)
 * The attempt timeout and the wait between attempts follow the connection-backoff spec.
 */
export class Http2Subchannel implements Subchannel {
  state: ConnectivityState = "IDLE";
  /** Why the last attempt failed or the last session ended; for error messages. */
  lastError: Error | undefined;
  readonly key: string;
  private session: ClientHttp2Session | undefined;
  private readonly backoff: ConnectionBackoff;
  // Long timers: keepalive times, connect timeouts and backoffs are user-given, and setTimeout
  // fires at once past 24.8 days.
  private connectTimer: LongTimer | undefined;
  private retryTimer: LongTimer | undefined;
  private keepaliveTimer: LongTimer | undefined;
  private active = 0;
  private readonly sessions = new Set<ClientHttp2Session>();
  private readonly tuners = new WeakMap<ClientHttp2Session, WindowTuner>();
  private readonly endReasons = new WeakMap<ClientHttp2Session, Error>();

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
    // No options object unless there is a signal: node leaves a POST's stream open by default,
    // and on Node 20 request() given options (even `{ endStream: false }`) takes 16 µs against
    // 12 without; the same on 22 and 24 (bench/request-options.ts).
    const stream = reset === undefined && headers[":method"] === "POST" ? this.session.request(headers) : this.session.request(headers, { endStream: false, signal: reset });
    if (this.active++ === 0) for (const s of this.sessions) s.ref();
    // A shared listener that finds the subchannel on the stream: no closure per call.
    (stream as SubchannelStream)[kSubchannel] = this;
    // node forgets a stream's session once it closes; what ended the call is asked after that.
    (stream as SubchannelStream)[kSession] = this.session;
    stream.on("close", onSubchannelStreamClose);
    return stream;
  }

  /** The window tuner to tell of DATA read on `stream`'s session, if it probes. */
  dataObserver(stream: ClientCallStream): DataObserver | undefined {
    const session = sessionOf(stream);
    const tuner = session === undefined ? undefined : this.tuners.get(session as ClientHttp2Session);
    return tuner?.probing === true ? tuner : undefined;
  }

  unprocessed(stream: ClientCallStream, streamError: Error | undefined): boolean {
    // node fails the streams a GOAWAY left unprocessed with ERR_HTTP2_GOAWAY_SESSION.
    if ((streamError as NodeJS.ErrnoException | undefined)?.code === "ERR_HTTP2_GOAWAY_SESSION") return true;
    return unprocessedByServer(sessionOf(stream), stream.id);
  }

  connectionLost(stream: ClientCallStream): boolean {
    const session = sessionOf(stream);
    return session === undefined || session.destroyed;
  }

  explain(error: Error): Error {
    // node wraps the socket's error (ECONNREFUSED...) in ERR_HTTP2_STREAM_CANCEL; report the socket's.
    const cause = error.cause instanceof Error ? error.cause : error;
    return explainConnectError(cause, this.ctx.credentials, this.key);
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
    const options = {
      ...creds.connectOptions,
      settings: { enablePush: false, ...windowSettings(this.ctx.windows) },
      // Past maxSessionMemory (node's default: 10 MB) node refuses every new stream with
      // ENHANCE_YOUR_CALM and drops the server's frames: one unpaced 100 MiB request made all its
      // neighbours fail and its own early answer never arrive. Requests are paced now (each call
      // keeps about sendHighWaterMark in node), so the limit only guards against a runaway; it
      // must not be what fails healthy calls beside a few large ones, or a raised
      // sendHighWaterMark. grpc-js turns it off; we keep a cap far above what pacing holds.
      maxSessionMemory: maxSessionMemoryMb,
    };
    const session =
      "path" in address
        ? http2Connect(creds.secure ? "https://localhost" : "http://localhost", {
            ...options,
            createConnection: () => (creds.secure ? tlsConnect({ ...creds.connectOptions, path: address.path }) : netConnect(address.path)),
          })
        : http2Connect(`${creds.secure ? "https" : "http"}://${this.key}`, options);
    this.session = session;
    this.sessions.add(session);
    const tuner = new WindowTuner(session, this.ctx.windows);
    this.tuners.set(session, tuner);
    if (this.active === 0) session.unref();
    let socketConnected = false;
    this.connectTimer = startTimer(timeoutMs, () => {
      const error = socketConnected
        ? new Error(`the server accepted the connection but did not send its HTTP/2 settings within ${timeoutMs} ms (is it a gRPC server, and is it alive?)`)
        : new Error(`connection attempt timed out after ${timeoutMs} ms (no answer to the TCP connect: host down, firewalled, or its accept queue is full)`);
      this.lastError = error;
      // node destroys a session whose socket is still connecting without 'error' or 'close':
      // fail the attempt here rather than wait for events that never come.
      this.sessions.delete(session);
      session.destroy();
      this.detach(session, error);
    });

    // TCP (and TLS) connected is not READY: a peer that accepts and says nothing (a wedged
    // process, a balancer without a backend) would take every call and answer none. READY is
    // the server's SETTINGS frame, the first thing an HTTP/2 server sends (as grpc-go waits for it).
    session.once("connect", () => (socketConnected = true));
    session.once("remoteSettings", () => {
      this.connectTimer?.cancel();
      tuner.start();
      if (this.session !== session) return;
      this.backoff.reset();
      this.lastError = undefined;
      this.setState("READY");
      this.scheduleKeepalive(session);
    });
    const onError = (e: Error) => {
      const error = explainConnectError(e, this.ctx.credentials, this.key);
      if (!this.endReasons.has(session)) this.endReasons.set(session, error);
      if (this.session === session || this.lastError === undefined) this.lastError = error;
    };
    session.on("error", onError);
    // A TLS alert after the handshake (a server refusing our client certificate) errors the
    // socket and destroys the session, but node then emits neither 'error' nor 'close' on it.
    session.socket.once("error", (e) => {
      onError(e);
      if (!session.destroyed) session.destroy();
      this.sessions.delete(session);
      this.detach(session, undefined);
    });
    session.on("goaway", (code, lastStreamId, data) => {
      goawayLastStreamIds.set(session, lastStreamId);
      let error: Error | undefined;
      if (code === constants.NGHTTP2_ENHANCE_YOUR_CALM && data?.toString() === "too_many_pings") {
        const was = this.ctx.keepalive.timeMs;
        this.ctx.keepalive.tooManyPings();
        const message =
          `the server sent GOAWAY(ENHANCE_YOUR_CALM, "too_many_pings"): it allows keepalive pings less often than every ${was} ms; ` +
          `this channel now pings every ${this.ctx.keepalive.timeMs} ms. Raise the channel's keepalive.timeMs to the server's minimum ping interval ` +
          `(grpc-go and gRPC Core: 5 min unless configured)`;
        this.ctx.logger.warn(`${this.key}: ${message}`);
        error = new Error(message);
      } else if (code !== constants.NGHTTP2_NO_ERROR) {
        const debug = data === undefined || data.length === 0 ? "" : `, "${data.toString()}"`;
        error = new Error(`the server sent GOAWAY(${http2ErrorName(code)}${debug})`);
      }
      if (error !== undefined) this.endReasons.set(session, error);
      this.detach(session, error);
    });
    session.on("close", () => {
      this.sessions.delete(session);
      this.detach(session, undefined);
    });
  }

  /** Why `stream`'s session ended, when it ended with an error or an error GOAWAY. */
  endReason(stream: ClientCallStream): Error | undefined {
    const session = sessionOf(stream);
    return session === undefined ? undefined : this.endReasons.get(session);
  }

  /** The session can take no new calls: leave READY (or fail the attempt) and move on. */
  private detach(session: ClientHttp2Session, error: Error | undefined): void {
    if (this.session !== session) return;
    this.session = undefined;
    this.connectTimer?.cancel();
    this.keepaliveTimer?.cancel();
    if (error !== undefined) this.lastError = error;
    if (!session.closed && !session.destroyed) session.close();
    if (this.state === "CONNECTING") {
      this.lastError ??= explainEarlyClose(this.ctx.credentials, this.key);
      this.setState("TRANSIENT_FAILURE");
      const delay = this.backoff.fail();
      this.retryTimer = startTimer(delay, () => {
        this.retryTimer = undefined;
        if (this.state === "TRANSIENT_FAILURE") this.connect();
      });
    } else if (this.state === "READY") {
      this.setState("IDLE");
    }
  }

  private scheduleKeepalive(session: ClientHttp2Session): void {
    const ka = this.ctx.keepalive;
    if (!Number.isFinite(ka.timeMs)) return;
    this.keepaliveTimer = startTimer(ka.timeMs, () => {
      if (this.session !== session) return;
      if (this.active === 0 && !ka.permitWithoutCalls) return this.scheduleKeepalive(session);
      const timeout = startTimer(ka.timeoutMs, () => {
        this.ctx.logger.warn(`${this.key} did not answer a keepalive PING within ${ka.timeoutMs} ms; closing the connection`);
        this.lastError = new Error(`keepalive PING not acknowledged within ${ka.timeoutMs} ms`);
        session.destroy(this.lastError);
      });
      try {
        session.ping((err) => {
          timeout.cancel();
          if (err === null) this.scheduleKeepalive(session);
        });
      } catch {
        timeout.cancel();
      }
    });
  }

  private clearTimers(): void {
    this.connectTimer?.cancel();
    this.retryTimer?.cancel();
    this.keepaliveTimer?.cancel();
  }

  private setState(state: ConnectivityState): void {
    if (this.state === state || this.state === "SHUTDOWN") return;
    this.state = state;
    this.ctx.onStateChange(this);
  }
}

/** node's `maxSessionMemory` of client sessions, in MB (node's default is 10); see connect(). */
const maxSessionMemoryMb = 1024;

const http2ErrorNames = [
  "NO_ERROR",
  "PROTOCOL_ERROR",
  "INTERNAL_ERROR",
  "FLOW_CONTROL_ERROR",
  "SETTINGS_TIMEOUT",
  "STREAM_CLOSED",
  "FRAME_SIZE_ERROR",
  "REFUSED_STREAM",
  "CANCEL",
  "COMPRESSION_ERROR",
  "CONNECT_ERROR",
  "ENHANCE_YOUR_CALM",
  "INADEQUATE_SECURITY",
  "HTTP_1_1_REQUIRED",
];

/** An HTTP/2 error code's name (RFC 9113 §7), or its number when unknown. */
export function http2ErrorName(code: number): string {
  return http2ErrorNames[code] ?? `error code ${code}`;
}

const kSubchannel = Symbol("rill.subchannel");
const kSession = Symbol("rill.session");
type SubchannelStream = ClientHttp2Stream & { [kSubchannel]: Http2Subchannel; [kSession]: ClientHttp2Session };

function onSubchannelStreamClose(this: SubchannelStream): void {
  this[kSubchannel].streamClosed();
}

/** The last stream id of the GOAWAY each session received (node destroys the session on an error GOAWAY before its streams close). */
/** The node session a stream of this subchannel was opened on (kept: node forgets it at close). */
function sessionOf(stream: ClientCallStream): ClientHttp2Session | undefined {
  return (stream as unknown as SubchannelStream)[kSession];
}

const goawayLastStreamIds = new WeakMap<Http2Session, number>();

/**
 * Whether the server said, by a GOAWAY on `session`, that it never processed the stream `id`
 * (beyond the GOAWAY's last stream id, or never given an id): such a call is safe to retry
 * transparently (gRPC A6), whatever the GOAWAY's error code. node destroys a session at once on
 * an error GOAWAY, so its streams otherwise look like a lost connection.
 */
export function unprocessedByServer(session: Http2Session | undefined, id: number | undefined): boolean {
  if (session === undefined) return false;
  const last = goawayLastStreamIds.get(session);
  return last !== undefined && (id === undefined || id > last);
}
