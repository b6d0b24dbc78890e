/**
 * The quiet-connection liveness check (server-connection.ts): a connection without calls for
 * 5 s sends one PING and closes itself when it is not acknowledged. A connection that serves one
 * call at a time runs out of calls after every call; the check must still come 5 s after the
 * last one, without a timer started and cancelled per call.
 */
import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import type { Http2Session } from "node:http2";
import { afterEach, beforeEach, describe, it, mock } from "node:test";
import { connectionPolicyDefaults } from "../../src/server/connection-policy.js";
import { ServerConnection, type ConnectionCall } from "../../src/server/server-connection.js";
import { silentLogger } from "../../src/index.js";

/** The part of an Http2Session a ServerConnection uses, recording PINGs. */
class FakeSession extends EventEmitter {
  destroyed = false;
  readonly socket = undefined;
  pings: Array<(err: Error | null) => void> = [];
  ping(cb: (err: Error | null) => void): boolean {
    this.pings.push(cb);
    return true;
  }
  destroy(): void {
    this.destroyed = true;
    this.emit("close");
  }
  close(): void {
    this.destroy();
  }
  goaway(): void {}
}

const call: ConnectionCall = { fail() {} };

describe("a server connection's liveness check", () => {
  let now = 0;
  let timersStarted = 0;
  beforeEach(() => {
    now = 0;
    mock.timers.enable({ apis: ["setTimeout"] });
    // Counts timers as node would start them (mock.timers replaced setTimeout above).
    const original = globalThis.setTimeout;
    timersStarted = 0;
    mock.method(globalThis, "setTimeout", (...args: Parameters<typeof setTimeout>) => {
      timersStarted++;
      return original(...args);
    });
  });
  afterEach(() => {
    mock.restoreAll();
    mock.timers.reset();
  });

  const advance = (ms: number): void => {
    now += ms;
    mock.timers.tick(ms);
  };

  function connection(): { session: FakeSession; conn: ServerConnection } {
    const session = new FakeSession();
    const conn = new ServerConnection(session as unknown as Http2Session, connectionPolicyDefaults, { logger: silentLogger, now: () => now });
    // The client's SETTINGS: the handshake is over.
    session.emit("remoteSettings");
    return { session, conn };
  }

  it("PINGs 5 s after the last of many one-at-a-time calls, starting no timer per call", () => {
    const { session, conn } = connection();
    const before = timersStarted;
    for (let i = 0; i < 1000; i++) {
      conn.callStarted(call);
      advance(4);
      conn.callEnded(call);
      advance(1);
    }
    assert.ok(timersStarted - before <= 2, `${timersStarted - before} timers started for 1,000 calls`);
    assert.equal(session.pings.length, 0, "no PING while calls keep coming");
    // The last call ended 1 ms ago.
    advance(4_990);
    assert.equal(session.pings.length, 0, "no PING before 5 s without calls");
    advance(10);
    assert.equal(session.pings.length, 1, "one PING once the connection was quiet for 5 s");
  });

  it("closes a quiet connection whose PING is never acknowledged, and keeps one that answers", () => {
    const dead = connection();
    advance(5_000);
    assert.equal(dead.session.pings.length, 1);
    advance(connectionPolicyDefaults.keepaliveTimeoutMs + 1);
    assert.equal(dead.session.destroyed, true);

    const alive = connection();
    advance(5_000);
    alive.session.pings[0]!(null);
    advance(connectionPolicyDefaults.keepaliveTimeoutMs + 1);
    assert.equal(alive.session.destroyed, false);
  });

  it("does not PING while a call runs, however long", () => {
    const { session, conn } = connection();
    conn.callStarted(call);
    advance(60_000);
    assert.equal(session.pings.length, 0);
    conn.callEnded(call);
    advance(5_000);
    assert.equal(session.pings.length, 1);
  });
});
