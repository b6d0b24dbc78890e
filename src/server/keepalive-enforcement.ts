/**
 * The server's judgement of a client's PINGs (gRPC keepalive enforcement, as grpc-go's
 * `http2Server.handlePing` and Core's ping abuse policy). Pure: time comes in as an argument.
 *
 * Rules, per connection:
 * - The first PING is never a strike.
 * - While the connection has calls (or `permitWithoutCalls`), a PING less than
 *   `minPingIntervalMs` after the previous one is a strike.
 * - Without calls and without `permitWithoutCalls`, a PING less than 2 h after the previous
 *   one is a strike.
 * - When the server has sent headers or data since the last PING, that PING is forgiven and
 *   the strikes start again from 0 (a client pinging a busy connection is not abusing it).
 * - Past `maxPingStrikes` strikes the client is sent away: GOAWAY(ENHANCE_YOUR_CALM, "too_many_pings").
 */
import { pingIntervalWithoutCallsMs, type ConnectionPolicy } from "./connection-policy.js";

/** Counts a client's ping strikes on one connection. */
export class PingEnforcer {
  private strikes = 0;
  private lastPingAt: number | undefined;
  private sentSinceLastPing = false;

  constructor(private readonly policy: Pick<ConnectionPolicy, "minPingIntervalMs" | "permitWithoutCalls" | "maxPingStrikes">) {}

  /** Records that the server wrote headers or data on the connection. */
  dataSent(): void {
    this.sentSinceLastPing = true;
  }

  /** The strikes counted so far. */
  get strikeCount(): number {
    return this.strikes;
  }

  /**
   * Judges a PING received at `now` (ms) on a connection that has calls running or not.
   * Returns true when the client is past its allowed strikes and must be sent away.
   */
  onPing(now: number, hasCalls: boolean): boolean {
    const last = this.lastPingAt;
    this.lastPingAt = now;
    if (this.sentSinceLastPing) {
      this.sentSinceLastPing = false;
      this.strikes = 0;
      return false;
    }
    const min = hasCalls || this.policy.permitWithoutCalls ? this.policy.minPingIntervalMs : pingIntervalWithoutCallsMs;
    if (last !== undefined && now - last < min) this.strikes++;
    return this.strikes > this.policy.maxPingStrikes;
  }
}
