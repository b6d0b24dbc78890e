import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Code } from "../../src/protocol/code.js";
import { decideHedge, decideRetry, mayHedge } from "../../src/client/retry-decision.js";
import { parseHedgingPolicy, parseRetryPolicy, RetryThrottle } from "../../src/channel/service-config.js";

const retry = parseRetryPolicy({ maxAttempts: 4, initialBackoff: "0.1s", maxBackoff: "0.3s", backoffMultiplier: 2, retryableStatusCodes: ["UNAVAILABLE"] });
const hedge = parseHedgingPolicy({ maxAttempts: 3, hedgingDelay: "0.5s", nonFatalStatusCodes: ["UNAVAILABLE"] });

describe("retry decisions (A6)", () => {
  test("the backoff is random in [0, min(initial × multiplier^(n-1), max))", () => {
    assert.deepEqual(decideRetry(retry, 1, Code.Unavailable, undefined, undefined, () => 0.5), { retry: true, delayMs: 50 });
    assert.deepEqual(decideRetry(retry, 2, Code.Unavailable, undefined, undefined, () => 0.5), { retry: true, delayMs: 100 });
    assert.deepEqual(decideRetry(retry, 3, Code.Unavailable, undefined, undefined, () => 0.999), { retry: true, delayMs: 0.999 * 300 });
  });

  test("stops at maxAttempts, on codes not listed, and on a pushback of -1", () => {
    assert.deepEqual(decideRetry(retry, 4, Code.Unavailable, undefined, undefined, () => 0), { retry: false });
    assert.deepEqual(decideRetry(retry, 1, Code.Internal, undefined, undefined, () => 0), { retry: false });
    assert.deepEqual(decideRetry(retry, 1, Code.Unavailable, -1, undefined, () => 0), { retry: false });
  });

  test("a server pushback replaces the random backoff", () => {
    assert.deepEqual(decideRetry(retry, 1, Code.Unavailable, 1234, undefined, () => 0.5), { retry: true, delayMs: 1234 });
  });

  test("throttling is charged for retryable failures only and stops retries at half the tokens", () => {
    const t = new RetryThrottle({ maxTokens: 4, tokenRatio: 1 });
    assert.equal(decideRetry(retry, 1, Code.Internal, undefined, t, () => 0).retry, false);
    assert.equal(decideRetry(retry, 1, Code.Unavailable, undefined, t, () => 0).retry, true); // 3 tokens
    assert.equal(decideRetry(retry, 1, Code.Unavailable, undefined, t, () => 0).retry, false); // 2 tokens
  });
});

describe("hedging decisions (A6)", () => {
  test("parses the policy: delay defaults to 0, maxAttempts capped at 5, codes validated", () => {
    const p = parseHedgingPolicy({ maxAttempts: 8 });
    assert.equal(p.maxAttempts, 5);
    assert.equal(p.hedgingDelayMs, 0);
    assert.equal(p.nonFatalStatusCodes.size, 0);
    assert.throws(() => parseHedgingPolicy({ maxAttempts: 1 }), /hedgingPolicy\.maxAttempts/);
    assert.throws(() => parseHedgingPolicy({ maxAttempts: 2, nonFatalStatusCodes: ["NOPE"] }), /NOPE/);
    assert.throws(() => parseHedgingPolicy({ maxAttempts: 2, hedgingDelay: "5" }), /hedgingDelay/);
  });

  test("a fatal code ends the call at once", () => {
    assert.deepEqual(decideHedge(hedge, 2, 1, Code.InvalidArgument, undefined, undefined), { finish: true, nextHedgeMs: undefined });
  });

  test("a non-fatal code starts the next hedge now, or after the server's pushback", () => {
    assert.deepEqual(decideHedge(hedge, 1, 0, Code.Unavailable, undefined, undefined), { finish: false, nextHedgeMs: 0 });
    assert.deepEqual(decideHedge(hedge, 1, 0, Code.Unavailable, 700, undefined), { finish: false, nextHedgeMs: 700 });
  });

  test("no more hedges after maxAttempts or a pushback of -1: the call ends with the last attempt", () => {
    assert.deepEqual(decideHedge(hedge, 3, 1, Code.Unavailable, undefined, undefined), { finish: false, nextHedgeMs: undefined });
    assert.deepEqual(decideHedge(hedge, 3, 0, Code.Unavailable, undefined, undefined), { finish: true, nextHedgeMs: undefined });
    assert.deepEqual(decideHedge(hedge, 1, 1, Code.Unavailable, -1, undefined), { finish: false, nextHedgeMs: undefined });
  });

  test("throttling, shared with retries, stops hedges", () => {
    const t = new RetryThrottle({ maxTokens: 4, tokenRatio: 1 });
    assert.equal(mayHedge(hedge, 1, t), true);
    assert.equal(decideHedge(hedge, 1, 0, Code.Unavailable, undefined, t).nextHedgeMs, 0); // 3 tokens
    assert.deepEqual(decideHedge(hedge, 2, 0, Code.Unavailable, undefined, t), { finish: true, nextHedgeMs: undefined }); // 2 tokens
    assert.equal(mayHedge(hedge, 2, t), false);
    assert.equal(mayHedge(hedge, 3, undefined), false);
  });
});
