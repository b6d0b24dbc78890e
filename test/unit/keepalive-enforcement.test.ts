import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { connectionPolicyDefaults, resolveConnectionPolicy, withJitter } from "../../src/server/connection-policy.js";
import { PingEnforcer } from "../../src/server/keepalive-enforcement.js";

const policy = { minPingIntervalMs: 1000, permitWithoutCalls: false, maxPingStrikes: 2 };

/** Feeds pings at the given times; returns the index of the ping that sent the client away, or -1. */
function firstGoaway(enforcer: PingEnforcer, times: number[], hasCalls: boolean): number {
  return times.findIndex((t) => enforcer.onPing(t, hasCalls));
}

describe("ping enforcement (grpc-go's handlePing)", () => {
  test("the third strike after the first ping sends the client away", () => {
    // ping 0 is free, pings 1..3 are strikes 1..3; strike 3 > maxPingStrikes 2
    assert.equal(firstGoaway(new PingEnforcer(policy), [0, 10, 20, 30, 40], true), 3);
  });

  test("pings at least minPingIntervalMs apart are never strikes while calls run", () => {
    assert.equal(firstGoaway(new PingEnforcer(policy), [0, 1000, 2000, 3000, 4000, 5000], true), -1);
  });

  test("without calls the interval is 2 h unless permitWithoutCalls", () => {
    const times = [0, 1000, 2000, 3000, 4000];
    assert.equal(firstGoaway(new PingEnforcer(policy), times, false), 3);
    assert.equal(firstGoaway(new PingEnforcer({ ...policy, permitWithoutCalls: true }), times, false), -1);
    const twoHours = 2 * 60 * 60 * 1000;
    assert.equal(firstGoaway(new PingEnforcer(policy), [0, twoHours, 2 * twoHours, 3 * twoHours], false), -1);
  });

  test("data sent by the server forgives the next ping and resets the strikes", () => {
    const e = new PingEnforcer(policy);
    assert.equal(e.onPing(0, true), false);
    assert.equal(e.onPing(10, true), false);
    assert.equal(e.onPing(20, true), false);
    assert.equal(e.strikeCount, 2);
    e.dataSent();
    assert.equal(e.onPing(30, true), false);
    assert.equal(e.strikeCount, 0);
    assert.equal(e.onPing(40, true), false);
    assert.equal(e.onPing(50, true), false);
    assert.equal(e.onPing(60, true), true);
  });

  test("maxPingStrikes 0 sends away at the first strike", () => {
    assert.equal(firstGoaway(new PingEnforcer({ ...policy, maxPingStrikes: 0 }), [0, 10], true), 1);
  });
});

describe("connection policy", () => {
  test("defaults match grpc-go's server", () => {
    assert.deepEqual(resolveConnectionPolicy({}), connectionPolicyDefaults);
    assert.equal(connectionPolicyDefaults.keepaliveTimeMs, 7_200_000);
    assert.equal(connectionPolicyDefaults.keepaliveTimeoutMs, 20_000);
    assert.equal(connectionPolicyDefaults.minPingIntervalMs, 300_000);
    assert.equal(connectionPolicyDefaults.maxConnectionAgeMs, Number.POSITIVE_INFINITY);
  });

  test("rejects negative, NaN and zero keepalive time", () => {
    assert.throws(() => resolveConnectionPolicy({ maxConnectionIdleMs: -5 }), /maxConnectionIdleMs/);
    assert.throws(() => resolveConnectionPolicy({ keepalive: { timeoutMs: Number.NaN } }), /timeoutMs/);
    assert.throws(() => resolveConnectionPolicy({ keepalive: { timeMs: 0 } }), /timeMs/);
  });

  test("max age jitter stays within ±10 %", () => {
    assert.equal(withJitter(1000, () => 0), 900);
    assert.equal(withJitter(1000, () => 0.5), 1000);
    assert.ok(withJitter(1000, () => 0.999999) < 1100);
    assert.equal(withJitter(Number.POSITIVE_INFINITY, () => 0), Number.POSITIVE_INFINITY);
  });
});
