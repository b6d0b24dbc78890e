/**
 * A parsed channel target: where to connect and what to send as `:authority`.
 *
 * Accepted now: `host:port`, `[v6]:port`, `dns:///host:port`, `ipv4:host:port`. A missing port
 * means 443 for TLS and 80 otherwise, as in gRPC's naming doc; the resolver issue extends this.
 * @see https://github.com/grpc/grpc/blob/master/doc/naming.md
 */
export interface Target {
  readonly host: string;
  readonly port: number;
  readonly authority: string;
}

/** Parses a target string; throws an Error that names the accepted forms when it cannot. */
export function parseTarget(target: string, defaultPort = 80): Target {
  let rest = target.trim();
  const scheme = /^([a-z][a-z0-9+.-]*):(\/\/[^/]*\/)?/i.exec(rest);
  if (scheme !== null && ["dns", "ipv4", "ipv6"].includes(scheme[1]!.toLowerCase())) rest = rest.slice(scheme[0].length);
  let host: string;
  let port: number | undefined;
  const v6 = /^\[([0-9a-fA-F:.%a-zA-Z]+)\](?::(\d+))?$/.exec(rest);
  if (v6 !== null) {
    host = v6[1]!;
    port = v6[2] === undefined ? undefined : Number(v6[2]);
  } else {
    const m = /^([^:/\s]+)(?::(\d+))?$/.exec(rest);
    if (m === null) {
      throw new Error(`invalid target "${target}": expected host:port, [ipv6]:port or dns:///host:port`);
    }
    host = m[1]!;
    port = m[2] === undefined ? undefined : Number(m[2]);
  }
  port ??= defaultPort;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`invalid port in target "${target}"`);
  const hostPart = host.includes(":") ? `[${host}]` : host;
  return { host, port, authority: `${hostPart}:${port}` };
}
