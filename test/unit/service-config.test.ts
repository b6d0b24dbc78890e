import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Code } from "../../src/protocol/code.js";
import { parseDuration, parseServiceConfig, RetryThrottle } from "../../src/channel/service-config.js";
import { parseTarget } from "../../src/channel/target.js";

const retryPolicy = {
  maxAttempts: 4,
  initialBackoff: "0.1s",
  maxBackoff: "1s",
  backoffMultiplier: 2,
  retryableStatusCodes: ["UNAVAILABLE", 4],
};

describe("service config", () => {
  test("finds a method's config by method, then service, then the default", () => {
    const sc = parseServiceConfig({
      methodConfig: [
        { name: [{ service: "a.S", method: "M" }], timeout: "1.5s" },
        { name: [{ service: "a.S" }], waitForReady: true },
        { name: [{}], timeout: "9s" },
      ],
    });
    assert.equal(sc.forMethod("a.S", "M")?.timeoutMs, 1500);
    assert.equal(sc.forMethod("a.S", "Other")?.waitForReady, true);
    assert.equal(sc.forMethod("b.T", "X")?.timeoutMs, 9000);
  });

  test("parses a retry policy from JSON text, capping maxAttempts at 5", () => {
    const sc = parseServiceConfig(JSON.stringify({ methodConfig: [{ name: [{ service: "s" }], retryPolicy: { ...retryPolicy, maxAttempts: 9 } }] }));
    const p = sc.forMethod("s", "m")?.retryPolicy;
    assert.equal(p?.maxAttempts, 5);
    assert.equal(p?.initialBackoffMs, 100);
    assert.equal(p?.maxBackoffMs, 1000);
    assert.deepEqual([...(p?.retryableStatusCodes ?? [])], [Code.Unavailable, Code.DeadlineExceeded]);
  });

  test("rejects invalid retry policies with the field's name", () => {
    const bad = (patch: object, re: RegExp) =>
      assert.throws(() => parseServiceConfig({ methodConfig: [{ name: [{ service: "s" }], retryPolicy: { ...retryPolicy, ...patch } }] }), re);
    bad({ maxAttempts: 1 }, /maxAttempts/);
    bad({ initialBackoff: "100ms" }, /initialBackoff/);
    bad({ backoffMultiplier: 0 }, /backoffMultiplier/);
    bad({ retryableStatusCodes: [] }, /retryableStatusCodes/);
    bad({ retryableStatusCodes: ["NOPE"] }, /NOPE/);
  });

  test("reads the load balancing policy from either field", () => {
    assert.equal(parseServiceConfig({ loadBalancingPolicy: "ROUND_ROBIN" }).loadBalancingPolicy, "round_robin");
    assert.deepEqual(parseServiceConfig({ loadBalancingConfig: [{ round_robin: {} }] }).loadBalancingPolicies, ["round_robin"]);
  });

  test("durations follow the protobuf JSON form", () => {
    assert.equal(parseDuration("0s", "t"), 0);
    assert.equal(parseDuration("2.000000001s", "t"), 2000.000001);
    assert.throws(() => parseDuration("2", "t"), /duration/);
  });

  test("retry throttling allows retries only while tokens exceed half the maximum", () => {
    const t = new RetryThrottle({ maxTokens: 10, tokenRatio: 0.5 });
    for (let i = 0; i < 4; i++) t.onFailure();
    assert.equal(t.allowsRetry, true); // 6 > 5
    t.onFailure();
    assert.equal(t.allowsRetry, false); // 5
    t.onSuccess();
    assert.equal(t.allowsRetry, true); // 5.5
  });
});

describe("targets (gRPC naming)", () => {
  const cases: Array<[string, string, string[]]> = [
    ["dns:///svc.local:50051", "dns", []],
    ["dns:svc.local:1", "dns", []],
    ["ipv4:127.0.0.1:1,127.0.0.2:2", "static", ["127.0.0.1:1", "127.0.0.2:2"]],
    ["ipv6:[::1]:3,[::2]:4", "static", ["[::1]:3", "[::2]:4"]],
    ["unix:///tmp/a.sock", "unix", ["unix:/tmp/a.sock"]],
    ["unix:rel.sock", "unix", ["unix:rel.sock"]],
    ["127.0.0.1:9", "static", ["127.0.0.1:9"]],
  ];
  for (const [input, scheme, addresses] of cases) {
    test(`parses ${input}`, async () => {
      const { addressKey } = await import("../../src/channel/target.js");
      const t = parseTarget(input);
      assert.equal(t.scheme, scheme);
      assert.deepEqual(t.addresses.map(addressKey), addresses);
    });
  }
  test("rejects an ipv4 list with a host name", () => {
    assert.throws(() => parseTarget("ipv4:example.com:1"), /IPv4/);
  });
});

describe("loadBalancingConfig", () => {
  test("keeps the policies in order, and a channel uses the first one it supports", async () => {
    const { createChannel, silentLogger } = await import("../../src/index.js");
    const config = parseServiceConfig({ loadBalancingConfig: [{ weighted_round_robin: {} }, { round_robin: {} }, { pick_first: {} }] });
    assert.deepEqual(config.loadBalancingPolicies, ["weighted_round_robin", "round_robin", "pick_first"]);
    const channel = createChannel("127.0.0.1:1", { logger: silentLogger, serviceConfig: { loadBalancingConfig: [{ weighted_round_robin: {} }, { round_robin: {} }] } });
    channel.close();
    assert.throws(
      () => createChannel("127.0.0.1:1", { logger: silentLogger, serviceConfig: { loadBalancingConfig: [{ weighted_round_robin: {} }] } }),
      /none of the loadBalancingConfig policies \["weighted_round_robin"\] is supported/,
    );
  });

  test("rejects a malformed message limit", () => {
    assert.throws(() => parseServiceConfig({ methodConfig: [{ maxRequestMessageBytes: -1 }] }), /maxRequestMessageBytes must be an integer/);
    assert.equal(parseServiceConfig({ methodConfig: [{ maxResponseMessageBytes: "1024" }] }).forMethod("a", "b")?.maxResponseMessageBytes, 1024);
  });
});

describe("hedgingPolicy", () => {
  test("is parsed as A6 says (maxAttempts capped at 5), and may not stand beside a retryPolicy", () => {
    const h = parseServiceConfig({ methodConfig: [{ name: [{ service: "a" }], hedgingPolicy: { maxAttempts: 7, hedgingDelay: "0.1s", nonFatalStatusCodes: ["UNAVAILABLE", 4] } }] }).forMethod("a", "b")?.hedgingPolicy;
    assert.deepEqual(h, { maxAttempts: 5, hedgingDelayMs: 100, nonFatalStatusCodes: new Set([Code.Unavailable, Code.DeadlineExceeded]) });
    assert.throws(() => parseServiceConfig({ methodConfig: [{ hedgingPolicy: { maxAttempts: 1 } }] }), /hedgingPolicy.maxAttempts must be an integer >= 2/);
    assert.throws(
      () =>
        parseServiceConfig({
          methodConfig: [
            {
              hedgingPolicy: { maxAttempts: 3 },
              retryPolicy: { maxAttempts: 2, initialBackoff: "1s", maxBackoff: "1s", backoffMultiplier: 1, retryableStatusCodes: ["UNAVAILABLE"] },
            },
          ],
        }),
      /retryPolicy or a hedgingPolicy, not both/,
    );
  });
});
