import { constants, type Http2Session } from "node:http2";
import { RpcError } from "../protocol/errors.js";
import type { Logger } from "../logger.js";
import { Code } from "../protocol/code.js";
import { withJitter, type ConnectionPolicy } from "./connection-policy.js";
import type { ResolvedWindowOptions } from "../flow-control/window-options.js";
import { WindowTuner } from "../flow-control/window-tuner.js";
import { PingEnforcer } from "./keepalive-enforcement.js";
import type { ConnectionBudget } from "./memory-budget.js";
import { startTimer } from "../timer.js";

/** What a connection needs from a call running on it: a way to end it with a status. */
export interface ConnectionCall {
  fail(error: RpcError): void;
}

/** Clock and randomness, injectable for tests. */
export interface ConnectionEnvironment {
  readonly logger: Logger;
  readonly now?: () => number;
  readonly random?: () => number;
  /** Receive windows and BDP probing; without it the session keeps node's windows. */
  readonly windows?: ResolvedWindowOptions;
  /** The connection's memory budget: it also caps the stream window BDP probing may reach. */
  readonly budget?: ConnectionBudget;
}

type TimerName = "idle" | "age" | "grace" | "keepalive" | "pingTimeout" | "headsUp" | "handshake" | "liveness" | "livenessAck";

/**
 * How long a connection may sit without calls before the server checks, once, that its HTTP/2
 * session still works (a PING that must be acknowledged within the keepalive timeout). Node 20
 * leaves the socket open after nghttp2 answered a malformed frame with a connection-error
 * GOAWAY (RFC 9113 §5.4.1 says the endpoint MUST close it) and tells JavaScript nothing; such a
 * session never acknowledges a PING again. Node 22 and later close it themselves.
 */
const livenessCheckAfterMs = 5_000;

/**
 * Bytes the server may write between two client PINGs without any DATA: the previous PING's
 * ack (17), a SETTINGS ack (9), a few WINDOW_UPDATEs (13 each). More than this reads as DATA.
 * node:http2 counts no DATA per session, so this is approximate in one direction only: a server
 * reading a large upload writes many WINDOW_UPDATEs, and the client's pings then count as
 * following activity too, which is lenient, never stricter than counting DATA.
 */
const controlFrameBytes = 64;

/** The highest stream id: a GOAWAY carrying it warns the client without refusing anything yet. */
const headsUpLastStreamId = 2 ** 31 - 1;
/**
 * How long a drain waits for the client to acknowledge the warning GOAWAY before the final one
 * (grpc-go waits 5 s). Shorter here because node clients without streams close at the first
 * GOAWAY without acknowledging the PING, and node's server does not notice they left.
 */
const headsUpTimeoutMs = 1_000;

/**
 * One client connection (HTTP/2 session) on the server, and the policy that ends it.
 *
 * States:
 * ```
 * OPEN ──drain(reason)──▶ DRAINING ──PING ack or 1 s──▶ CLOSING ──last stream ends──▶ CLOSED
 *   │    (max idle, max age,  GOAWAY(NO_ERROR, 2^31-1) + PING;   session.close(): GOAWAY(NO_ERROR,
 *   │     server shutdown)    streams that crossed it are       last stream id); new streams are
 *   │                         still served                       refused; running calls finish
 *   └──terminate(error)──▶ CLOSED   from any state: keepalive timeout, too many pings, max-age
 *                                    grace over, forced shutdown. Running calls fail with
 *                                    `error` (UNAVAILABLE), the session is destroyed.
 * ```
 * The two-step GOAWAY is grpc-go's and Core's: a stream the client sent before it saw the first
 * GOAWAY is still served instead of being refused.
 *
 * Timers (unref'd except the 1 s heads-up wait; all cleared when the session closes): idle
 * (runs while there are no calls), age then age grace, keepalive (polls reads; PINGs the client
 * after `keepaliveTimeMs` without reading anything, so a dead peer is found within about
 * 1.25 × time + timeout), PING timeout, drain's heads-up wait.
 */
export class ServerConnection {
  private state: "open" | "draining" | "closing" | "closed" = "open";
  private readonly calls = new Set<ConnectionCall>();
  private readonly pings: PingEnforcer;
  private readonly now: () => number;
  private readonly timers = new Map<TimerName, () => void>();
  private lastBytesRead = 0;

  private lastReadAt = 0;
  private pingSeq = 0;
  private writtenAtLastPing = 0;
  /** The memory budget the connection's calls count against. */
  get budget(): ConnectionBudget | undefined {
    return this.env.budget;
  }

  /** The connection's receive-window manager (what the client may send), when windows are configured. */
  readonly windows: WindowTuner | undefined;

  constructor(
    readonly session: Http2Session,
    private readonly policy: ConnectionPolicy,
    private readonly env: ConnectionEnvironment,
  ) {
    this.now = env.now ?? Date.now;
    this.pings = new PingEnforcer(policy);
    session.on("ping", () => this.onClientPing());
    if (env.windows !== undefined) {
      const tuner = new WindowTuner(session, env.windows);
      this.windows = tuner;
      tuner.start();
      // Calls tell the tuner of the DATA they read (see `dataTaken`); streams no call serves
      // (trailers-only answers) carry nothing worth a sample.
    }
    session.once("close", () => {
      this.state = "closed";
      this.clearTimers();
      env.budget?.close();
    });
    // The handshake ends with the client's SETTINGS; a TLS handshake before it is bounded by the
    // TLS server's own handshakeTimeout (set to the same value).
    if (Number.isFinite(policy.handshakeTimeoutMs)) {
      this.setTimer("handshake", policy.handshakeTimeoutMs, () => {
        this.env.logger.info(`client ${this.peer()} did not complete the HTTP/2 handshake within ${policy.handshakeTimeoutMs} ms; closing its connection`);
        this.destroySocket();
      });
      session.once("remoteSettings", () => this.clearTimer("handshake"));
    }
    this.armIdle();
    this.setTimer("age", withJitter(policy.maxConnectionAgeMs, env.random ?? Math.random), () => {
      this.drain("max_age");
      this.setTimer("grace", policy.maxConnectionAgeGraceMs, () =>
        this.terminate(new RpcError(Code.Unavailable, "the connection reached its maximum age and the grace period is over")),
      );
    });
    if (Number.isFinite(policy.keepaliveTimeMs)) {
      this.lastBytesRead = this.bytesRead();
      this.lastReadAt = this.now();
      this.scheduleKeepalive();
    }
  }

  /** Calls running on this connection. */
  get activeCalls(): number {
    return this.calls.size;
  }

  /** Whether a new stream on this connection should be served (OPEN, or DRAINING before the final GOAWAY). */
  get acceptsStreams(): boolean {
    return this.state === "open" || this.state === "draining";
  }

  /** A call started on this connection. */
  callStarted(call: ConnectionCall): void {
    this.calls.add(call);
    this.clearTimer("idle");
    // A call on the session is proof enough that it works; the liveness delay itself stays armed
    // (it looks again when it fires), so a connection serving one call at a time does not
    // start and cancel a timer per call.
    this.clearTimer("livenessAck");
    this.capWindows();
  }

  /** A call on this connection ended. */
  callEnded(call: ConnectionCall): void {
    if (!this.calls.delete(call)) return;
    if (this.calls.size === 0) this.armIdle();
    this.capWindows();
  }

  /**
   * Keeps what the connection's streams may hold unread within its budget. node buffers a paused
   * stream's DATA as views of its socket read buffers (64 KiB each), so a window's worth of
   * 16 KiB frames can pin four times its size: the stream window is capped at a quarter of the
   * budget divided among the open calls.
   */
  private capWindows(): void {
    const budget = this.env.budget;
    const tuner = this.windows;
    if (budget === undefined || tuner === undefined) return;
    tuner.setCeiling(Math.floor(budget.limit / (4 * Math.max(1, this.calls.size))));
  }

  /** The server wrote headers or data here: forgives the client's ping strikes. */
  dataSent(): void {
    this.pings.dataSent();
  }

  /**
   * Starts a graceful close: warning GOAWAY(NO_ERROR, 2^31-1, `reason` as debug data) and a PING;
   * on its ack (or after 1 s) the final GOAWAY, after which running calls finish. Idempotent.
   */
  drain(reason: string): void {
    if (this.state !== "open") return;
    this.state = "draining";
    this.clearTimer("idle");
    const session = this.session;
    if (session.closed || session.destroyed) return;
    // Without calls there is nothing for the warning to protect but a stream racing the final
    // GOAWAY, which the client retries elsewhere (it is beyond the GOAWAY's last stream id). And
    // the warning can wedge an idle connection: a client closing at the same moment as it sends
    // its own GOAWAY, nghttp2 on both ends then stops reading (no streams, GOAWAY sent), and
    // neither notices the other leave until the heads-up timer (seen on Node 20, 22 and 24).
    if (this.calls.size === 0) {
      try {
        // The final GOAWAY, with the reason as debug data (lastStreamId 0: the last stream the
        // session processed); close() then ends the session.
        session.goaway(constants.NGHTTP2_NO_ERROR, 0, Buffer.from(reason));
      } catch {
        // A session closing under us: close() below is all that is left to do.
      }
      return this.close();
    }
    try {
      session.goaway(constants.NGHTTP2_NO_ERROR, headsUpLastStreamId, Buffer.from(reason));
      const sent = session.ping((err) => {
        if (err === null) this.close();
      });
      if (!sent) return this.close();
    } catch {
      return this.close();
    }
    // Kept ref'd: a node client that left without acknowledging leaves nothing else to wake us.
    this.setTimer("headsUp", headsUpTimeoutMs, () => this.close(), true);
  }

  /** Final GOAWAY now (no warning first): new streams are refused, running calls finish. */
  close(): void {
    if (this.state === "closing" || this.state === "closed") return;
    this.state = "closing";
    this.clearTimer("headsUp");
    this.clearTimer("idle");
    if (!this.session.closed && !this.session.destroyed) this.session.close();
  }

  /**
   * Ends the connection now: every running call fails with `error` (its signal aborts with it,
   * and the client gets it as the status when the connection can still carry it), then the
   * session is destroyed with a final GOAWAY carrying `code`.
   */
  terminate(error: RpcError, code: number = constants.NGHTTP2_NO_ERROR): void {
    if (this.state === "closed") return;
    this.state = "closed";
    this.clearTimers();
    for (const call of [...this.calls]) call.fail(error);
    this.calls.clear();
    if (!this.session.destroyed) this.session.destroy(undefined, code);
  }

  private onClientPing(): void {
    if (this.state === "closed") return;
    // DATA that node sent on its own (a buffered response leaving as the client's window opens)
    // counts as sent data too, as in grpc-go and Core: a client's BDP probe follows it.
    const written = this.session.socket?.bytesWritten ?? 0;
    if (written - this.writtenAtLastPing > controlFrameBytes) this.pings.dataSent();
    this.writtenAtLastPing = written;
    if (!this.pings.onPing(this.now(), this.calls.size > 0)) return;
    this.env.logger.warn(`client ${this.peer()} sent too many pings (${this.pings.strikeCount} strikes); closing its connection`);
    try {
      this.session.goaway(constants.NGHTTP2_ENHANCE_YOUR_CALM, 0, Buffer.from("too_many_pings"));
    } catch {
      // the session is already going away
    }
    this.terminate(new RpcError(Code.Unavailable, "the client sent too many pings"), constants.NGHTTP2_ENHANCE_YOUR_CALM);
  }

  private armIdle(): void {
    if (this.state === "open") {
      this.quietSince = this.now();
      if (!this.timers.has("liveness")) this.setTimer("liveness", livenessCheckAfterMs, this.livenessDue);
    }
    // Never idle out (the default): no timer and no closures each time the last call ends.
    if (this.state !== "open" || !Number.isFinite(this.policy.maxConnectionIdleMs)) return;
    this.setTimer("idle", this.policy.maxConnectionIdleMs, () => {
      if (this.calls.size === 0) this.drain("max_idle");
    });
  }

  /** When the connection last ran out of calls (`now()`), for the liveness check. */
  private quietSince = 0;

  /**
   * The liveness delay ran out: checks when the connection is quiet for livenessCheckAfterMs since
   * it last ran out of calls, else waits for the rest of that (or, with calls running, for the
   * next time they run out).
   */
  private readonly livenessDue = (): void => {
    if (this.state !== "open" || this.calls.size > 0) return;
    const quiet = this.now() - this.quietSince;
    if (quiet < livenessCheckAfterMs) this.setTimer("liveness", livenessCheckAfterMs - quiet, this.livenessDue);
    else this.checkLiveness();
  };

  /** One PING on a connection that went quiet; a session that cannot acknowledge it is dead. */
  private checkLiveness(): void {
    if (this.state === "closed" || this.calls.size > 0 || this.session.destroyed) return;
    let sent = false;
    try {
      sent = this.session.ping((err) => {
        if (err === null) this.clearTimer("livenessAck");
      });
    } catch {
      return;
    }
    if (!sent) return;
    this.setTimer("livenessAck", this.policy.keepaliveTimeoutMs, () => {
      this.env.logger.info(`connection from ${this.peer()} did not acknowledge a PING within ${this.policy.keepaliveTimeoutMs} ms; closing it`);
      this.terminate(new RpcError(Code.Unavailable, "the connection stopped answering"));
      this.destroySocket();
    });
  }

  /** Closes the connection outright: for sessions node would leave open. */
  private destroySocket(): void {
    this.state = "closed";
    this.clearTimers();
    // Destroying the session destroys its socket (node forbids touching the socket directly).
    if (!this.session.destroyed) this.session.destroy();
  }

  // Keepalive: poll the socket's read counter every quarter of keepaliveTimeMs; once nothing has
  // been read for keepaliveTimeMs, PING, and give up on the client after keepaliveTimeoutMs
  // unless the ack (or anything else) arrives.
  private scheduleKeepalive(): void {
    const time = this.policy.keepaliveTimeMs;
    const idleFor = this.now() - this.lastReadAt;
    const delay = Math.max(1, Math.min(time / 4, time - idleFor));
    this.setTimer("keepalive", delay, () => this.keepaliveTick());
  }

  private keepaliveTick(): void {
    if (this.state === "closed" || this.session.destroyed) return;
    this.noteReads();
    if (this.now() - this.lastReadAt < this.policy.keepaliveTimeMs) return this.scheduleKeepalive();
    const seq = ++this.pingSeq;
    let sent = false;
    try {
      sent = this.session.ping((err) => {
        if (err !== null || seq !== this.pingSeq || this.state === "closed") return;
        this.clearTimer("pingTimeout");
        this.lastReadAt = this.now();
        this.lastBytesRead = this.bytesRead();
        this.scheduleKeepalive();
      });
    } catch {
      return; // the session is closing
    }
    if (!sent) {
      // Too many pings outstanding already: treat as not idle and look again later.
      this.lastReadAt = this.now();
      return this.scheduleKeepalive();
    }
    const readBefore = this.bytesRead();
    this.setTimer("pingTimeout", this.policy.keepaliveTimeoutMs, () => {
      if (this.bytesRead() !== readBefore) {
        // The client is talking, only the ack is late: it is alive (grpc-go counts any read).
        this.pingSeq++;
        this.noteReads();
        return this.scheduleKeepalive();
      }
      this.env.logger.warn(`client ${this.peer()} did not answer a keepalive ping within ${this.policy.keepaliveTimeoutMs} ms; closing its connection`);
      this.terminate(new RpcError(Code.Unavailable, `keepalive: the client did not answer a ping within ${this.policy.keepaliveTimeoutMs} ms`));
    });
  }

  private noteReads(): void {
    const read = this.bytesRead();
    if (read !== this.lastBytesRead) {
      this.lastBytesRead = read;
      this.lastReadAt = this.now();
    }
  }

  private bytesRead(): number {
    return this.session.socket?.bytesRead ?? 0;
  }

  private peer(): string {
    const s = this.session.socket;
    return `${s?.remoteAddress ?? "unknown"}:${s?.remotePort ?? 0}`;
  }

  private setTimer(name: TimerName, ms: number, fn: () => void, ref = false): void {
    this.clearTimer(name);
    if (this.state === "closed") return;
    const timer = startTimer(
      ms,
      () => {
        this.timers.delete(name);
        fn();
      },
      ref,
    );
    this.timers.set(name, () => timer.cancel());
  }

  private clearTimer(name: TimerName): void {
    const cancel = this.timers.get(name);
    if (cancel === undefined) return;
    this.timers.delete(name);
    cancel();
  }

  private clearTimers(): void {
    for (const cancel of this.timers.values()) cancel();
    this.timers.clear();
  }
}
