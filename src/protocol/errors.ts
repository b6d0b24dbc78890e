import { create, type DescMessage, type MessageInitShape, type MessageShape } from "@bufbuild/protobuf";
import { anyIs, anyPack, anyUnpack, type Any } from "@bufbuild/protobuf/wkt";
import { Code, codeName } from "./code.js";
import { Metadata } from "./metadata.js";

/**
 * An RPC failure: a gRPC status code, a message, and the trailing metadata that came with it.
 *
 * A handler that throws an RpcError sends exactly this status to the client. Anything else a handler
 * throws becomes `Code.Unknown` with a generic message (details stay in the server log).
 * On the client, every failed call rejects with an RpcError.
 *
 * `details` are gRPC's rich error details: typed messages (google.rpc.BadRequest, RetryInfo,
 * ErrorInfo… or the application's own) sent in the `grpc-status-details-bin` trailer as a
 * google.rpc.Status, which every gRPC implementation reads. Make one with `errorDetail(Schema,
 * init)`; read them with `err.findDetails(Schema)`.
 */
export class RpcError extends Error {
  override name = "RpcError";
  /** The status code. Never `Code.OK`. */
  readonly code: Code;
  /** The status message exactly as sent (`grpc-message`, percent-decoded), without the code prefix. */
  readonly rawMessage: string;
  /** Trailing metadata of the failed call (server side: metadata to send with the status). */
  readonly metadata: Metadata;
  /** Rich error details, packed (see the class comment); empty when there are none. */
  readonly details: readonly Any[];

  constructor(code: Code, message = "", options?: { metadata?: Metadata | undefined; cause?: unknown; details?: readonly Any[] | undefined }) {
    super(message === "" ? codeName(code) : `${codeName(code)}: ${message}`, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code === Code.OK ? Code.Unknown : code;
    this.rawMessage = message;
    this.metadata = options?.metadata ?? new Metadata();
    this.details = options?.details ?? noDetails;
  }

  /** The details of type `schema`, decoded, in the order they were sent. */
  findDetails<Desc extends DescMessage>(schema: Desc): MessageShape<Desc>[] {
    const out: MessageShape<Desc>[] = [];
    for (const d of this.details) {
      if (!anyIs(d, schema)) continue;
      const m = anyUnpack(d, schema);
      if (m !== undefined) out.push(m);
    }
    return out;
  }

  /**
   * Converts anything thrown into an RpcError. An RpcError passes through; an AbortSignal's reason
   * that is an RpcError passes through; anything else becomes `fallback` with `message`.
   */
  static from(reason: unknown, fallback: Code = Code.Unknown, message?: string): RpcError {
    if (reason instanceof RpcError) return reason;
    if (reason instanceof Error && reason.name === "AbortError" && reason.cause instanceof RpcError) return reason.cause;
    const text = message ?? (reason instanceof Error ? reason.message : String(reason));
    return new RpcError(fallback, text, { cause: reason });
  }
}

/**
 * The reason a call ended because no message went either way for its idle timeout
 * (`idleTimeoutMs`). A handler sees it as `ctx.signal.reason`; the client gets DEADLINE_EXCEEDED.
 */
export class IdleTimeoutError extends RpcError {
  override name = "IdleTimeoutError";
  constructor(readonly idleTimeoutMs: number, options?: { metadata?: Metadata | undefined }) {
    super(Code.DeadlineExceeded, `idle timeout: no message in either direction for ${idleTimeoutMs} ms`, options);
  }
}

const noDetails: readonly Any[] = Object.freeze([]);

/** One rich error detail: `schema`'s message made from `init`, packed for `RpcError`'s `details`. */
export function errorDetail<Desc extends DescMessage>(schema: Desc, init: MessageInitShape<Desc>): Any {
  return anyPack(schema, create(schema, init));
}
