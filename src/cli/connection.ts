/**
 * The CLI's channel: plaintext or TLS from the flags, and, when a call cannot get through, a
 * diagnosis that tells a new user what to change (nothing listening, TLS against plaintext or
 * the reverse) instead of a bare UNAVAILABLE.
 *
 * Decision: plaintext is the default (grpcurl defaults to TLS). Rill's demo and examples listen
 * on 127.0.0.1 without TLS, and a mismatch is detected and explained either way; any TLS flag
 * (--tls, --cacert, --cert, --insecure, --servername) switches TLS on, and --plaintext
 * together with one of them is a usage error.
 */
import { readFileSync } from "node:fs";
import { connect as connectHttp2 } from "node:http2";
import { connect as connectTls } from "node:tls";
import { createChannel, type Channel } from "../channel/channel.js";
import { insecure, tls, type ChannelCredentials } from "../channel/credentials.js";
import { parseTarget } from "../channel/target.js";
import { RpcError } from "../protocol/errors.js";
import { silentLogger } from "../logger.js";
import { Code } from "../protocol/code.js";
import type { Protocol } from "../transport/call-stream.js";
import { CliError } from "./output.js";

/** The TLS-related flags. */
export interface TlsFlags {
  plaintext?: boolean | undefined;
  tls?: boolean | undefined;
  insecure?: boolean | undefined;
  "skip-verify"?: boolean | undefined;
  cacert?: string | undefined;
  cert?: string | undefined;
  key?: string | undefined;
  servername?: string | undefined;
  protocol?: string | undefined;
}

function readPem(file: string, flag: string): Buffer {
  try {
    return readFileSync(file);
  } catch (e) {
    throw new CliError(`${flag} ${file}: ${(e as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (e as Error).message}`);
  }
}

/** Whether the flags ask for TLS. */
export function wantsTls(f: TlsFlags): boolean {
  const tlsFlags = f.tls === true || f.insecure === true || f["skip-verify"] === true || f.cacert !== undefined || f.cert !== undefined || f.key !== undefined || f.servername !== undefined;
  if (tlsFlags && f.plaintext === true) throw new CliError("--plaintext cannot be combined with TLS flags (--tls, --cacert, --cert, --key, --insecure, --servername)", 2);
  return tlsFlags;
}

/** Channel credentials for the flags. */
export function credentialsFor(f: TlsFlags): ChannelCredentials {
  if (!wantsTls(f)) return insecure();
  if ((f.cert === undefined) !== (f.key === undefined)) throw new CliError("--cert and --key go together (a client certificate needs its key)", 2);
  const c = tls({
    ...(f.cacert !== undefined ? { ca: readPem(f.cacert, "--cacert") } : {}),
    ...(f.cert !== undefined ? { cert: readPem(f.cert, "--cert") } : {}),
    ...(f.key !== undefined ? { key: readPem(f.key, "--key") } : {}),
    ...(f.servername !== undefined ? { serverNameOverride: f.servername } : {}),
  });
  // --insecure: encrypt, but accept any certificate (self-signed dev servers), like grpcurl -insecure.
  return f.insecure === true || f["skip-verify"] === true ? Object.freeze({ ...c, connectOptions: Object.freeze({ ...c.connectOptions, rejectUnauthorized: false }) }) : c;
}

/** Opens the channel the flags describe. Quiet: connection trouble is reported by the calls. */
export function openChannel(address: string, f: TlsFlags, extra: { maxReceiveMessageBytes?: number } = {}): Channel {
  return createChannel(address, { logger: silentLogger, credentials: credentialsFor(f), protocol: protocolFor(f), ...extra, backoff: { minConnectTimeoutMs: 10_000 } });
}

/** The wire protocol --protocol names. */
export function protocolFor(f: TlsFlags): Protocol {
  const p = f.protocol ?? "grpc";
  if (p !== "grpc" && p !== "grpc-web" && p !== "connect") throw new CliError(`--protocol takes grpc, grpc-web or connect, not "${p}"`, 2);
  return p;
}

type Speaks = "tls" | "plaintext" | "refused" | "unknown";

/** Finds out what is on the other end: a TLS server, an h2c server, nothing, or something else. */
async function probe(host: string, port: number, timeoutMs = 2000): Promise<{ speaks: Speaks; detail: string }> {
  const tlsProbe = new Promise<{ speaks: Speaks; detail: string }>((resolve) => {
    const socket = connectTls({ host, port, servername: /^[\d.]+$|:/.test(host) ? "" : host, ALPNProtocols: ["h2"], rejectUnauthorized: false });
    const timer = setTimeout(() => done({ speaks: "unknown", detail: "no answer" }), timeoutMs);
    const done = (r: { speaks: Speaks; detail: string }) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(r);
    };
    socket.once("secureConnect", () => done({ speaks: "tls", detail: `TLS handshake succeeded (ALPN ${String(socket.alpnProtocol)})` }));
    socket.once("error", (e: NodeJS.ErrnoException) => done({ speaks: e.code === "ECONNREFUSED" ? "refused" : "unknown", detail: e.message }));
  });
  const first = await tlsProbe;
  if (first.speaks !== "unknown") return first;
  const h2c = await new Promise<boolean>((resolve) => {
    const session = connectHttp2(`http://${host.includes(":") ? `[${host}]` : host}:${port}`);
    const timer = setTimeout(() => done(false), timeoutMs);
    const done = (ok: boolean) => {
      clearTimeout(timer);
      session.destroy();
      resolve(ok);
    };
    session.once("remoteSettings", () => done(true));
    session.once("error", () => done(false));
  });
  return h2c ? { speaks: "plaintext", detail: "the server answered plaintext HTTP/2" } : first;
}

/**
 * Rewrites a failed call's error into one that says what to do, when the cause is the
 * connection. Other errors come back unchanged.
 */
export async function explainFailure(e: unknown, address: string, f: TlsFlags): Promise<{ error: unknown; hint?: string }> {
  if (!(e instanceof RpcError) || e.code !== Code.Unavailable) return { error: e };
  // Only failures of the connection itself; an UNAVAILABLE the server chose (shutting down) is not ours to explain.
  if (!/cannot reach|connect|ECONN|EPIPE|socket|TLS|SSL|closed|protocol|reset|handshake/i.test(e.rawMessage)) return { error: e };
  let host: string;
  let port: number;
  try {
    const t = parseTarget(address);
    const a = t.addresses[0] ?? { host: t.host, port: t.port };
    if ("path" in a) return { error: e };
    host = a.host;
    port = a.port;
  } catch {
    return { error: e };
  }
  if (port <= 0) return { error: e };
  const usingTls = wantsTls(f);
  const seen = await probe(host, port);
  if (seen.speaks === "refused") {
    return {
      error: new RpcError(Code.Unavailable, `cannot connect to ${address}: connection refused (nothing is listening there)`),
      hint: "check the host and port, and that the server is running (`rill serve` listens on 127.0.0.1:50051)",
    };
  }
  if (seen.speaks === "tls" && !usingTls) {
    return {
      error: new RpcError(Code.Unavailable, `${address} speaks TLS, but this call used plaintext`),
      hint: `the server speaks TLS: ${f.plaintext === true ? "drop --plaintext and add" : "add"} --tls (with --cacert FILE for a private CA, or --insecure to skip verification)`,
    };
  }
  if (seen.speaks === "plaintext" && usingTls) {
    return {
      error: new RpcError(Code.Unavailable, `${address} speaks plaintext HTTP/2, but this call used TLS`),
      hint: "the server speaks plaintext: use --plaintext (and drop --tls, --cacert, --cert, --key, --insecure, --servername)",
    };
  }
  if (seen.speaks === "tls" && usingTls && /certificate|self.signed|unable to verify|altnames/i.test(e.rawMessage)) {
    return { error: e, hint: "the server's certificate did not verify: pass its CA with --cacert FILE, the expected name with --servername, or --insecure to skip verification" };
  }
  return { error: e };
}
