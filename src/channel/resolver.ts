import { lookup } from "node:dns/promises";
import type { Address, Target } from "./target.js";

/** What a resolver reports: the current address list, or why there is none. */
export interface ResolverListener {
  onAddresses(addresses: readonly Address[]): void;
  onError(error: Error): void;
}

/**
 * Turns a target into addresses and keeps them current.
 *
 * `refresh()` is called by the channel when connections fail (so a moved service is found
 * again); implementations rate-limit it themselves. Plug in your own (a service registry)
 * through the channel's `resolver` option.
 */
export interface Resolver {
  start(listener: ResolverListener): void;
  refresh(): void;
  close(): void;
}

/** Builds a resolver for a parsed target. */
export type ResolverFactory = (target: Target) => Resolver;

/** A resolver for a fixed list: reports it once. */
export function staticResolver(addresses: readonly Address[]): Resolver {
  let listener: ResolverListener | undefined;
  return {
    start(l) {
      listener = l;
      queueMicrotask(() => listener?.onAddresses(addresses));
    },
    refresh() {},
    close() {
      listener = undefined;
    },
  };
}

/** Options of the DNS resolver. */
export interface DnsResolverOptions {
  /** Re-resolve this often even without failures. Default 30 s. */
  refreshIntervalMs?: number;
  /** Never re-resolve more often than this (refresh() calls in between are coalesced). Default 1 s. */
  minRefreshIntervalMs?: number;
  /** Lookup function (A and AAAA). Default: node:dns `lookup(host, { all: true })`. */
  lookup?: (host: string) => Promise<string[]>;
}

const defaultLookup = async (host: string) => (await lookup(host, { all: true })).map((r) => r.address);

/**
 * Resolves a host name with the system resolver (A and AAAA), on start, on `refresh()` (at most
 * once per `minRefreshIntervalMs`), and every `refreshIntervalMs`.
 */
export function dnsResolver(host: string, port: number, options: DnsResolverOptions = {}): Resolver {
  const interval = options.refreshIntervalMs ?? 30_000;
  const minInterval = options.minRefreshIntervalMs ?? 1_000;
  const resolve = options.lookup ?? defaultLookup;
  let listener: ResolverListener | undefined;
  let timer: NodeJS.Timeout | undefined;
  let last = 0;
  let running = false;
  let pending = false;

  const run = async () => {
    if (listener === undefined) return;
    if (running) {
      pending = true;
      return;
    }
    running = true;
    last = Date.now();
    try {
      const ips = await resolve(host);
      if (ips.length === 0) throw new Error(`DNS returned no addresses for ${host}`);
      listener?.onAddresses(ips.map((ip) => ({ host: ip, port })));
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      listener?.onError(new Error(`cannot resolve ${host}: ${err.code ?? err.message}`, { cause: e }));
    } finally {
      running = false;
      schedule(interval);
      if (pending) {
        pending = false;
        refresh();
      }
    }
  };
  const schedule = (ms: number) => {
    if (listener === undefined) return;
    if (timer !== undefined) clearTimeout(timer);
    timer = setTimeout(() => void run(), ms);
    timer.unref();
  };
  const refresh = () => {
    const since = Date.now() - last;
    if (since >= minInterval) void run();
    else schedule(minInterval - since);
  };
  return {
    start(l) {
      listener = l;
      void run();
    },
    refresh,
    close() {
      listener = undefined;
      if (timer !== undefined) clearTimeout(timer);
    },
  };
}

/** The default resolver for a target: DNS for host names, the literal list otherwise. */
export function defaultResolver(target: Target): Resolver {
  return target.scheme === "dns" ? dnsResolver(target.host, target.port) : staticResolver(target.addresses);
}
