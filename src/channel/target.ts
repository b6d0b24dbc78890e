/**
 * Channel targets in gRPC's naming syntax.
 *
 * Accepted: `host:port`, `[v6]:port`, `dns:///host:port` (also `dns:host:port`),
 * `ipv4:addr:port,addr:port`, `ipv6:[addr]:port,...`, `unix:///abs/path` / `unix:path`.
 * A missing port means 443 for TLS and 80 otherwise.
 * @see https://github.com/grpc/grpc/blob/master/doc/naming.md
 */

/** One endpoint: a TCP host and port, or a unix socket path. */
export type Address = { readonly host: string; readonly port: number } | { readonly path: string };

/** A parsed target: how to resolve it and what to send as `:authority`. */
export interface Target {
  /** "dns" (resolve the host), "static" (fixed addresses) or "unix". */
  readonly scheme: "dns" | "static" | "unix";
  /** For dns: the host to resolve and the port. */
  readonly host: string;
  readonly port: number;
  /** For static and unix targets: the addresses themselves. */
  readonly addresses: readonly Address[];
  /** The `:authority` of requests: `host:port`, or "localhost" for unix sockets. */
  readonly authority: string;
}

/** A stable key for an address, for maps and logs. */
export function addressKey(a: Address): string {
  return "path" in a ? `unix:${a.path}` : a.host.includes(":") ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}

const v4 = /^\d{1,3}(\.\d{1,3}){3}$/;

function parseHostPort(text: string, defaultPort: number, original: string): { host: string; port: number } {
  let host: string;
  let port: number | undefined;
  const bracketed = /^\[([0-9a-fA-F:.]+(?:%[\w.-]+)?)\](?::(\d+))?$/.exec(text);
  if (bracketed !== null) {
    host = bracketed[1]!;
    port = bracketed[2] === undefined ? undefined : Number(bracketed[2]);
  } else {
    const m = /^([^:/\s\[\]]+)(?::(\d+))?$/.exec(text);
    if (m === null) {
      throw new Error(`invalid target "${original}": expected host:port, [ipv6]:port, dns:///host:port, ipv4:a:p,b:p, ipv6:[a]:p or unix:///path`);
    }
    host = m[1]!;
    port = m[2] === undefined ? undefined : Number(m[2]);
  }
  port ??= defaultPort;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`invalid port in target "${original}"`);
  return { host, port };
}

/** Parses a target string; throws an Error naming the accepted forms when it cannot. */
export function parseTarget(target: string, defaultPort = 80): Target {
  const t = target.trim();
  const authorityOf = (a: { host: string; port: number }) => addressKey(a);
  if (t.startsWith("unix:")) {
    const path = t.startsWith("unix://") ? t.slice("unix://".length) : t.slice("unix:".length);
    if (path === "" || (t.startsWith("unix://") && !path.startsWith("/"))) {
      throw new Error(`invalid target "${target}": unix targets are unix:relative/path or unix:///absolute/path`);
    }
    return { scheme: "unix", host: "localhost", port: 0, addresses: [{ path }], authority: "localhost" };
  }
  if (t.startsWith("ipv4:") || t.startsWith("ipv6:")) {
    const list = t.slice(5).split(",").filter((s) => s !== "");
    if (list.length === 0) throw new Error(`invalid target "${target}": no addresses after the scheme`);
    const addresses = list.map((s) => parseHostPort(s, defaultPort, target));
    for (const a of addresses) {
      if (t.startsWith("ipv4:") && !v4.test(a.host)) throw new Error(`invalid target "${target}": ${a.host} is not an IPv4 address`);
      if (t.startsWith("ipv6:") && !a.host.includes(":")) throw new Error(`invalid target "${target}": ${a.host} is not an IPv6 address`);
    }
    return { scheme: "static", host: addresses[0]!.host, port: addresses[0]!.port, addresses, authority: authorityOf(addresses[0]!) };
  }
  let rest = t;
  if (rest.startsWith("dns:")) {
    rest = rest.slice(4);
    // dns://authority/host:port names a DNS server; we use the system's and ignore it.
    if (rest.startsWith("//")) rest = rest.slice(rest.indexOf("/", 2) + 1);
  }
  const hp = parseHostPort(rest, defaultPort, target);
  const literal = v4.test(hp.host) || hp.host.includes(":");
  return {
    scheme: literal ? "static" : "dns",
    host: hp.host,
    port: hp.port,
    addresses: literal ? [hp] : [],
    authority: authorityOf(hp),
  };
}
