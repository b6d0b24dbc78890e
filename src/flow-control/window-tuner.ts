/**
 * Hooks a `BdpEstimator` to one node:http2 session: applies the connection window at connect,
 * starts a probe PING when a stream's reader takes fresh DATA, samples what arrived (socket
 * bytes, or bytes taken, whichever is larger) over the PING's round trip but at least 5 ms, and
 * raises the windows when the estimate grows. Used by server connections and client
 * subchannels alike.
 *
 * What node:http2 allows (Node 20, verified by experiment; see the README's window section):
 * - `session.setLocalWindowSize(n)` sets the connection window (WINDOW_UPDATE on stream 0).
 *   node returns connection-window credit as soon as DATA arrives, even to a stream nobody reads,
 *   so the connection window never bounds memory; only stream windows do.
 * - There is no per-stream `setLocalWindowSize`. A stream's window is raised only through
 *   `session.settings({ initialWindowSize })`: per RFC 7540 §6.9.2 the peer adjusts every open
 *   stream's window by the difference, and nghttp2 does the same on our side once the SETTINGS
 *   is acknowledged. So one SETTINGS grows running streams and sets new streams' windows: the
 *   window is per connection, as in grpc-go.
 * - A stream whose reader pauses stops returning stream-window credit, so a sender can have at
 *   most one stream window in flight to a stalled reader.
 *
 * Probes ride on data: a PING goes out only when a reader took DATA and no probe is
 * outstanding, so an idle or stalled connection sends none, and a server's keepalive
 * enforcement sees pings only right after it sent data (which forgives them).
 */
import type { Http2Session } from "node:http2";
import { BdpEstimator } from "./bdp-estimator.js";
import type { ResolvedWindowOptions } from "./window-options.js";

/**
 * Bytes the socket must read after a probe's ack before the next probe: more than the control
 * frames that may follow an ack (SETTINGS ack 9, PING 17, WINDOW_UPDATE 13), so only DATA counts.
 */
const freshDataBytes = 64;

/**
 * The shortest time a sample covers (ms), whatever the PING's round trip. On loopback and LANs
 * node acknowledges a PING within a fraction of a millisecond, far sooner than a reader's event
 * loop turns received DATA into stream credit (nghttp2 returns credit half a window at a time,
 * after the reader took it), so a sample of one PING round trip sees half a window at most and
 * the window never grows (seen stuck at 128 KiB). Counting for at least this long sizes the
 * window for that credit loop: twice what arrives in 5 ms, up to the cap. Longer round trips
 * (WANs) are measured as they are.
 */
const minSampleMs = 5;

/** The smallest stream window a ceiling sets: one full-size DATA frame. */
const minCeiling = 16 * 1024;

/** Clock and sampling floor of a `WindowTuner`; injectable for tests. */
export interface WindowTunerEnvironment {
  /** Milliseconds, monotonic. Default `performance.now`. */
  readonly now?: () => number;
  /** The shortest time a sample covers, in ms. Default 5. */
  readonly minSampleMs?: number;
}

/** A read-only view of a tuner's state; for tests and metrics. */
export interface WindowStats {
  /** The stream window this side advertises now (SETTINGS_INITIAL_WINDOW_SIZE once acknowledged). */
  readonly streamWindowBytes: number;
  /** The connection window this side set. */
  readonly connectionWindowBytes: number;
  /** Probe PINGs sent so far. */
  readonly probes: number;
  /** Times the windows grew. */
  readonly raises: number;
  /** The smoothed probe round-trip time in ms; 0 before the first ack. */
  readonly rttMs: number;
}

/** The receive-window manager of one HTTP/2 session. */
export class WindowTuner implements WindowStats {
  private readonly estimator: BdpEstimator | undefined;
  private stream: number;
  private connection: number;
  private probeCount = 0;
  private raiseCount = 0;
  private closed = false;
  /** The socket's read count when the last probe ended; a new probe waits for DATA read after it. */
  private readAtLastAck = -1;
  private takenDuringProbe = 0;
  private readonly now: () => number;
  private readonly minSampleMs: number;
  private sampleTimer: NodeJS.Timeout | undefined;
  /** The largest stream window allowed now (a memory budget divided among open streams). */
  private ceiling = Number.POSITIVE_INFINITY;

  /**
   * `session` must already advertise `options.initialStreamWindowBytes` in its initial SETTINGS
   * (see `windowSettings`). Call `start()` once the session is connected.
   */
  constructor(
    private readonly session: Http2Session,
    private readonly options: ResolvedWindowOptions,
    env: WindowTunerEnvironment = {},
  ) {
    const now = env.now ?? (() => performance.now());
    this.now = now;
    this.minSampleMs = env.minSampleMs ?? minSampleMs;
    this.stream = options.initialStreamWindowBytes;
    this.connection = 0;
    if (options.bdpProbe && options.maxWindowBytes > options.initialStreamWindowBytes) {
      this.estimator = new BdpEstimator({
        initialWindow: options.initialStreamWindowBytes,
        maxWindow: options.maxWindowBytes,
        now,
      });
    }
    session.once("close", () => {
      this.closed = true;
      clearTimeout(this.sampleTimer);
    });
  }

  get streamWindowBytes(): number {
    return this.stream;
  }

  get connectionWindowBytes(): number {
    return this.connection;
  }

  get probes(): number {
    return this.probeCount;
  }

  get raises(): number {
    return this.raiseCount;
  }

  get rttMs(): number {
    return this.estimator?.rttMs ?? 0;
  }

  /** Sets the connection window; call when the session is connected (a server session is at once). */
  start(): void {
    this.setConnectionWindow(Math.max(this.options.connectionWindowBytes, this.stream));
  }

  /** Whether the tuner wants to hear of DATA its session's readers take (BDP probing is on). */
  get probing(): boolean {
    return this.estimator !== undefined;
  }

  /**
   * `bytes` of DATA were taken by a reader of one of the session's streams. Told by the stream's
   * own 'data' listener (a second listener would make node copy the listener array on every chunk).
   *
   * A reader taking data is what starts a probe (so a stalled reader starts none). The sample is
   * the larger of what readers took and what the socket delivered between the PING and its ack.
   * Either alone undercounts on a busy host and stalls the window (seen at 128 KiB on loopback):
   * readers take nothing while one decodes a large message, and the socket delivers in bursts
   * of half a window because that is when node returns stream credit.
   */
  dataTaken(bytes: number): void {
    const estimator = this.estimator;
    if (estimator === undefined || this.closed) return;
    if (estimator.probeOutstanding) {
      this.takenDuringProbe += bytes;
      return;
    }
    // Taken bytes may have arrived long ago (a reader catching up on its buffer). Probe only
    // when the peer sent something since the last probe ended, so that every PING follows fresh
    // DATA: servers forgive pings that follow data they sent (gRPC keepalive enforcement) and
    // count the others as strikes.
    const readAtProbe = this.bytesRead();
    if (readAtProbe <= this.readAtLastAck + freshDataBytes) return;
    if (!estimator.onData(0)) return;
    this.takenDuringProbe = bytes;
    const sentAt = this.now();
    const finish = (): void => {
      this.sampleTimer = undefined;
      if (this.closed) return estimator.probeFailed();
      this.readAtLastAck = this.bytesRead();
      estimator.onData(Math.max(this.readAtLastAck - readAtProbe, this.takenDuringProbe));
      const raised = estimator.probeAcked();
      if (raised !== undefined) this.raise(raised);
    };
    let sent = false;
    try {
      sent = this.session.ping((err) => {
        if (err !== null) return estimator.probeFailed();
        estimator.ackArrived();
        const left = sentAt + this.minSampleMs - this.now();
        if (left <= 0 || this.closed) return finish();
        this.sampleTimer = setTimeout(finish, left);
        this.sampleTimer.unref();
      });
    } catch {
      // The session is closing.
    }
    if (sent) {
      estimator.probeSent();
      this.probeCount++;
    } else {
      estimator.probeFailed();
    }
  }

  private bytesRead(): number {
    return this.session.socket?.bytesRead ?? 0;
  }

  /**
   * Caps the stream window at `bytes` (never below one 16 KiB frame): lowers it at once when it is
   * above, by a power of two at least, so a connection whose streams come and go sends few
   * SETTINGS. BDP probing then grows the window no further than the cap.
   */
  setCeiling(bytes: number): void {
    const floor = Math.min(this.options.initialStreamWindowBytes, minCeiling);
    this.ceiling = Math.max(floor, bytes);
    if (this.stream <= this.ceiling) return;
    let lowered = this.stream;
    while (lowered > this.ceiling) lowered = Math.floor(lowered / 2);
    this.applyWindow(Math.max(floor, lowered));
  }

  private raise(window: number): void {
    this.applyWindow(Math.min(window, this.ceiling));
  }

  private applyWindow(window: number): void {
    if (window === this.stream) return;
    if (this.closed || this.session.destroyed || this.session.closed) return;
    try {
      // Raise the connection window first, so the streams' new credit is never held back by it.
      this.setConnectionWindow(Math.max(this.connection, window));
      this.session.settings({ initialWindowSize: window });
      if (window > this.stream) this.raiseCount++;
      this.stream = window;
      this.estimator?.clampWindow(window);
    } catch {
      // Too many SETTINGS unacknowledged, or the session is going away: keep the old window.
    }
  }

  private setConnectionWindow(bytes: number): void {
    if (bytes <= this.connection || this.session.destroyed) return;
    try {
      this.session.setLocalWindowSize(bytes);
      this.connection = bytes;
    } catch {
      // Not connected yet or already closing: the window stays where it is.
    }
  }
}
