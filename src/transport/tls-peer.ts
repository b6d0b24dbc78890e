import type { Socket } from "node:net";
import type { TLSSocket } from "node:tls";
import type { SocketLike } from "./call-stream.js";

/**
 * What the server knows about a caller's TLS session. Present only on TLS connections;
 * `certificate` only when the client presented one (mTLS, `requestClientCert`).
 */
export interface TlsPeer {
  /** Negotiated protocol, e.g. "TLSv1.3". */
  readonly protocol: string | undefined;
  /** Negotiated cipher suite name. */
  readonly cipher: string | undefined;
  /** Whether the client's certificate verified against the server's `ca`. */
  readonly authorized: boolean;
  /** The client certificate, when one was presented. */
  readonly certificate: PeerCertificate | undefined;
}

/** The parts of a client certificate handlers usually need (grpc-go's `peer.AuthInfo`). */
export interface PeerCertificate {
  /** Subject fields, e.g. `{ CN: "client-1", O: "Rill Tests" }`. */
  readonly subject: Readonly<Record<string, string>>;
  /** The subject as one string, e.g. "CN=client-1,O=Rill Tests". */
  readonly subjectName: string;
  /** Issuer fields. */
  readonly issuer: Readonly<Record<string, string>>;
  /** The subjectAltName extension as node reports it ("DNS:a, IP Address:127.0.0.1"), if any. */
  readonly subjectAltName: string | undefined;
  /** SHA-256 fingerprint, colon-separated hex. */
  readonly fingerprint256: string;
  /** Validity bounds as node reports them. */
  readonly validFrom: string;
  readonly validTo: string;
}

// One connection's TLS facts do not change after the handshake: worked out once per socket.
const cache = new WeakMap<object, TlsPeer>();

/** The TLS view of `socket`, or undefined for a plaintext connection. */
export function tlsPeerOf(socket: Socket | TLSSocket | SocketLike | undefined): TlsPeer | undefined {
  if (socket === undefined || !("encrypted" in socket) || socket.encrypted !== true) return undefined;
  let peer = cache.get(socket);
  if (peer === undefined) {
    peer = describe(socket as TLSSocket);
    cache.set(socket, peer);
  }
  return peer;
}

function describe(tls: TLSSocket): TlsPeer {
  const cert = tls.getPeerCertificate();
  const present = cert !== null && typeof cert === "object" && Object.keys(cert).length > 0;
  return {
    protocol: tls.getProtocol() ?? undefined,
    cipher: tls.getCipher()?.name,
    authorized: tls.authorized,
    certificate: present
      ? {
          subject: flatten(cert.subject),
          subjectName: Object.entries(flatten(cert.subject))
            .map(([k, v]) => `${k}=${v}`)
            .join(","),
          issuer: flatten(cert.issuer),
          subjectAltName: cert.subjectaltname,
          fingerprint256: cert.fingerprint256,
          validFrom: cert.valid_from,
          validTo: cert.valid_to,
        }
      : undefined,
  };
}

// node gives a field seen twice (two OUs) as an array: join so the type stays simple.
function flatten(fields: object | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (fields === undefined || fields === null) return out;
  for (const [k, v] of Object.entries(fields)) out[k] = Array.isArray(v) ? v.join("+") : String(v);
  return out;
}
