import { Code, parseCode } from "../protocol/code.js";

/**
 * gRPC service config: per-method timeouts, wait-for-ready and retry policies, retry
 * throttling, and the load-balancing policy, in the JSON form gRPC documents.
 * @see https://github.com/grpc/grpc/blob/master/doc/service_config.md
 * @see https://github.com/grpc/proposal/blob/master/A6-client-retries.md
 */

/** A retry policy with every field validated and converted to numbers. */
export interface RetryPolicy {
  /** Attempts in total, the first included; 2..5 (larger values are capped at 5, as A6 says). */
  maxAttempts: number;
  initialBackoffMs: number;
  maxBackoffMs: number;
  backoffMultiplier: number;
  retryableStatusCodes: ReadonlySet<Code>;
}

/** Per-method settings resolved from the service config. */
export interface MethodConfig {
  timeoutMs?: number;
  waitForReady?: boolean;
  retryPolicy?: RetryPolicy;
  /** The largest request message, in bytes; the smaller of this and the channel's `maxSendMessageBytes` applies. */
  maxRequestMessageBytes?: number;
  /** The largest response message, in bytes; the smaller of this and the channel's `maxReceiveMessageBytes` applies. */
  maxResponseMessageBytes?: number;
  /** An A6 hedging policy (never beside a retry policy). */
  hedgingPolicy?: HedgingPolicy;
}

/**
 * A hedging policy (gRFC A6): the call is sent again after `hedgingDelayMs` while no attempt has
 * answered, up to `maxAttempts` in all; the first attempt to answer wins and the others are
 * cancelled. A status in `nonFatalStatusCodes` lets the next hedge go at once; any other status
 * ends the call.
 */
export interface HedgingPolicy {
  /** Attempts in total, the first included; 2..5 (larger values are capped at 5, as A6 says). */
  maxAttempts: number;
  hedgingDelayMs: number;
  nonFatalStatusCodes: ReadonlySet<Code>;
}

/** The JSON shape of a hedging policy. */
export interface HedgingPolicyJson {
  maxAttempts: number;
  hedgingDelay?: string;
  nonFatalStatusCodes?: Array<string | number>;
}

/** Retry throttling parameters (A6): retries stop while tokens <= maxTokens / 2. */
export interface RetryThrottling {
  maxTokens: number;
  tokenRatio: number;
}

/** A parsed service config. */
export interface ServiceConfig {
  /** Looks up a method's config: exact method, then its service, then the default entry. */
  forMethod(service: string, method: string): MethodConfig | undefined;
  readonly retryThrottling: RetryThrottling | undefined;
  /** The deprecated `loadBalancingPolicy` field, used only without `loadBalancingConfig`. */
  readonly loadBalancingPolicy: string | undefined;
  /**
   * The policies of `loadBalancingConfig`, in order of preference: the channel uses the first
   * one it supports (gRPC's rule), and the config is invalid when it supports none.
   */
  readonly loadBalancingPolicies: readonly string[];
}

/** The JSON shape of a retry policy. */
export interface RetryPolicyJson {
  maxAttempts: number;
  initialBackoff: string;
  maxBackoff: string;
  backoffMultiplier: number;
  retryableStatusCodes: Array<string | number>;
}

/** The JSON shape of a service config (the subset Rill reads). */
export interface ServiceConfigJson {
  methodConfig?: Array<{
    name?: Array<{ service?: string; method?: string }>;
    timeout?: string;
    waitForReady?: boolean;
    retryPolicy?: RetryPolicyJson;
    maxRequestMessageBytes?: number | string;
    maxResponseMessageBytes?: number | string;
    hedgingPolicy?: HedgingPolicyJson;
  }>;
  retryThrottling?: { maxTokens: number; tokenRatio: number };
  loadBalancingPolicy?: string;
  loadBalancingConfig?: Array<Record<string, unknown>>;
}

/** Parses a protobuf JSON Duration ("1.5s"); throws on anything else. */
export function parseDuration(value: string, field: string): number {
  const m = /^(\d+)(?:\.(\d{1,9}))?s$/.exec(value);
  if (m === null) throw new Error(`service config: ${field} must be a duration like "0.5s", got ${JSON.stringify(value)}`);
  return Number(m[1]) * 1000 + (m[2] === undefined ? 0 : Number(`0.${m[2]}`) * 1000);
}

/** Validates a hedging policy as A6 requires; throws an Error naming the bad field. */
export function parseHedgingPolicy(json: HedgingPolicyJson): HedgingPolicy {
  const { maxAttempts } = json;
  if (!Number.isInteger(maxAttempts) || maxAttempts < 2) throw new Error("service config: hedgingPolicy.maxAttempts must be an integer >= 2");
  const hedgingDelayMs = json.hedgingDelay === undefined ? 0 : parseDuration(json.hedgingDelay, "hedgingPolicy.hedgingDelay");
  const nonFatalStatusCodes = new Set<Code>();
  for (const c of json.nonFatalStatusCodes ?? []) {
    const code = parseCode(c);
    if (code === undefined || code === Code.OK) throw new Error(`service config: unknown non-fatal status code ${JSON.stringify(c)}`);
    nonFatalStatusCodes.add(code);
  }
  return { maxAttempts: Math.min(maxAttempts, 5), hedgingDelayMs, nonFatalStatusCodes };
}

/** A google.protobuf.UInt32Value in JSON: a number or a decimal string. */
function parseUint32(value: number | string, field: string): number {
  const n = typeof value === "string" && /^\d+$/.test(value) ? Number(value) : value;
  if (typeof n !== "number" || !Number.isInteger(n) || n < 0 || n > 0xffff_ffff) throw new Error(`service config: ${field} must be an integer from 0 to 4294967295, got ${JSON.stringify(value)}`);
  return n;
}

/** Validates a retry policy as A6 requires; throws an Error naming the bad field. */
export function parseRetryPolicy(json: RetryPolicyJson): RetryPolicy {
  const { maxAttempts, backoffMultiplier } = json;
  if (!Number.isInteger(maxAttempts) || maxAttempts < 2) throw new Error("service config: retryPolicy.maxAttempts must be an integer >= 2");
  if (!(backoffMultiplier > 0)) throw new Error("service config: retryPolicy.backoffMultiplier must be > 0");
  const initialBackoffMs = parseDuration(json.initialBackoff, "retryPolicy.initialBackoff");
  const maxBackoffMs = parseDuration(json.maxBackoff, "retryPolicy.maxBackoff");
  if (!(initialBackoffMs > 0) || !(maxBackoffMs > 0)) throw new Error("service config: retryPolicy backoffs must be > 0");
  if (!Array.isArray(json.retryableStatusCodes) || json.retryableStatusCodes.length === 0) {
    throw new Error("service config: retryPolicy.retryableStatusCodes must list at least one code");
  }
  const codes = new Set<Code>();
  for (const c of json.retryableStatusCodes) {
    const code = parseCode(c);
    if (code === undefined || code === Code.OK) throw new Error(`service config: unknown retryable status code ${JSON.stringify(c)}`);
    codes.add(code);
  }
  return { maxAttempts: Math.min(maxAttempts, 5), initialBackoffMs, maxBackoffMs, backoffMultiplier, retryableStatusCodes: codes };
}

/** Parses and validates a service config (object or JSON text). Throws an Error naming the bad field. */
export function parseServiceConfig(input: ServiceConfigJson | string): ServiceConfig {
  const json: ServiceConfigJson = typeof input === "string" ? (JSON.parse(input) as ServiceConfigJson) : input;
  const byMethod = new Map<string, MethodConfig>();
  const byService = new Map<string, MethodConfig>();
  let fallback: MethodConfig | undefined;
  for (const entry of json.methodConfig ?? []) {
    const config: MethodConfig = {};
    if (entry.timeout !== undefined) config.timeoutMs = parseDuration(entry.timeout, "methodConfig.timeout");
    if (entry.waitForReady !== undefined) config.waitForReady = entry.waitForReady;
    if (entry.retryPolicy !== undefined) config.retryPolicy = parseRetryPolicy(entry.retryPolicy);
    if (entry.hedgingPolicy !== undefined) {
      if (entry.retryPolicy !== undefined) throw new Error("service config: a method config may have a retryPolicy or a hedgingPolicy, not both");
      config.hedgingPolicy = parseHedgingPolicy(entry.hedgingPolicy);
    }
    if (entry.maxRequestMessageBytes !== undefined) config.maxRequestMessageBytes = parseUint32(entry.maxRequestMessageBytes, "methodConfig.maxRequestMessageBytes");
    if (entry.maxResponseMessageBytes !== undefined) config.maxResponseMessageBytes = parseUint32(entry.maxResponseMessageBytes, "methodConfig.maxResponseMessageBytes");
    for (const name of entry.name ?? [{}]) {
      const service = name.service ?? "";
      if (name.method !== undefined && name.method !== "") {
        if (service === "") throw new Error("service config: a name with a method needs a service");
        byMethod.set(`${service}/${name.method}`, config);
      } else if (service !== "") byService.set(service, config);
      else fallback = config;
    }
  }
  let retryThrottling: RetryThrottling | undefined;
  if (json.retryThrottling !== undefined) {
    const { maxTokens, tokenRatio } = json.retryThrottling;
    if (!(maxTokens > 0 && maxTokens <= 1000)) throw new Error("service config: retryThrottling.maxTokens must be in (0, 1000]");
    if (!(tokenRatio > 0)) throw new Error("service config: retryThrottling.tokenRatio must be > 0");
    retryThrottling = { maxTokens, tokenRatio: Math.floor(tokenRatio * 1000) / 1000 };
  }
  const loadBalancingPolicies: string[] = [];
  for (const lb of json.loadBalancingConfig ?? []) {
    const names = Object.keys(lb);
    if (names.length !== 1) throw new Error(`service config: each loadBalancingConfig entry names exactly one policy, got ${JSON.stringify(names)}`);
    loadBalancingPolicies.push(names[0]!);
  }
  return {
    forMethod: (service, method) => byMethod.get(`${service}/${method}`) ?? byService.get(service) ?? fallback,
    retryThrottling,
    loadBalancingPolicy: json.loadBalancingPolicy?.toLowerCase(),
    loadBalancingPolicies,
  };
}

/**
 * The retry token bucket of one channel (A6 "Retry Throttling"): each retryable failure takes
 * a token, each success gives back `tokenRatio`; retries are allowed while tokens > max / 2.
 */
export class RetryThrottle {
  private tokens: number;

  constructor(private readonly config: RetryThrottling) {
    this.tokens = config.maxTokens;
  }

  get allowsRetry(): boolean {
    return this.tokens > this.config.maxTokens / 2;
  }

  onFailure(): void {
    this.tokens = Math.max(0, this.tokens - 1);
  }

  onSuccess(): void {
    this.tokens = Math.min(this.config.maxTokens, this.tokens + this.config.tokenRatio);
  }
}
