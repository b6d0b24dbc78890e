/**
 * `grpc.testing.TestService` served by Rill: the server half of the gRPC interop tests.
 *
 * Every server feature of the interop test descriptions is implemented: EmptyCall, UnaryCall
 * (response size, Echo Status, CompressedRequest, CompressedResponse), CacheableUnaryCall
 * (answered over POST: Rill has no GET), StreamingOutputCall and FullDuplexCall (observing
 * `interval_us` and per-response `compressed`), StreamingInputCall, HalfDuplexCall, and Echo
 * Metadata on every method. UnimplementedCall is left out on purpose, so it answers
 * UNIMPLEMENTED like the spec wants.
 *
 * @see https://github.com/grpc/grpc/blob/master/doc/interop-test-descriptions.md#server
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { Code, RpcError, withCompression, type HandlerContext, type ServiceImpl } from "../index.js";
import type {
  BoolValue,
  EchoStatus,
  ResponseParameters,
  StreamingOutputCallResponseSchema,
} from "../../gen/grpc/testing/messages_pb.js";
import { PayloadType } from "../../gen/grpc/testing/messages_pb.js";
import type { TestService } from "../../gen/grpc/testing/test_pb.js";

/** Request metadata echoed back in the response headers (Echo Metadata). */
export const echoInitialKey = "x-grpc-test-echo-initial";
/** Request metadata echoed back in the trailers (Echo Metadata). */
export const echoTrailingKey = "x-grpc-test-echo-trailing-bin";

type StreamingResponse = MessageInitShape<typeof StreamingOutputCallResponseSchema>;

/** Creates the TestService handlers. Stateless: one instance can serve any number of servers. */
export function createTestService(): ServiceImpl<typeof TestService> {
  return {
    emptyCall(_req, ctx) {
      echoMetadata(ctx);
      return {};
    },

    unaryCall(req, ctx) {
      echoMetadata(ctx);
      checkExpectCompressed(req.expectCompressed, ctx);
      if (req.responseType !== PayloadType.COMPRESSABLE) {
        throw new RpcError(Code.InvalidArgument, `unsupported response_type ${req.responseType}`);
      }
      if (req.responseCompressed?.value === true) ctx.setResponseCompression("gzip");
      echoStatus(req.responseStatus);
      const response = { payload: zeros(req.responseSize) };
      return req.responseCompressed?.value === false ? withCompression(response, false) : response;
    },

    cacheableUnaryCall(_req, ctx) {
      echoMetadata(ctx);
      ctx.responseHeader.set("cache-control", "max-age=60, public");
      return { payload: { body: new TextEncoder().encode(String(process.hrtime.bigint())) } };
    },

    async *streamingOutputCall(req, ctx) {
      echoMetadata(ctx);
      echoStatus(req.responseStatus);
      compressIfAsked(req.responseParameters, ctx);
      yield* respond(req.responseParameters, ctx);
    },

    async streamingInputCall(requests, ctx) {
      echoMetadata(ctx);
      let total = 0;
      for await (const req of requests) {
        checkExpectCompressed(req.expectCompressed, ctx);
        total += req.payload?.body.byteLength ?? 0;
      }
      return { aggregatedPayloadSize: total };
    },

    async *fullDuplexCall(requests, ctx) {
      echoMetadata(ctx);
      let first = true;
      for await (const req of requests) {
        echoStatus(req.responseStatus);
        // Response compression is per call and fixed with the headers: the first request decides.
        if (first) compressIfAsked(req.responseParameters, ctx);
        first = false;
        yield* respond(req.responseParameters, ctx);
      }
    },

    async *halfDuplexCall(requests, ctx) {
      echoMetadata(ctx);
      const all = [];
      for await (const req of requests) all.push(req);
      for (const [i, req] of all.entries()) {
        echoStatus(req.responseStatus);
        if (i === 0) compressIfAsked(req.responseParameters, ctx);
        yield* respond(req.responseParameters, ctx);
      }
    },
  };
}

/** A payload of `size` zero bytes (type COMPRESSABLE). */
function zeros(size: number) {
  if (size < 0) throw new RpcError(Code.InvalidArgument, `negative payload size ${size}`);
  return { type: PayloadType.COMPRESSABLE, body: new Uint8Array(size) };
}

/** Echo Metadata: copies the two test keys into the response headers and trailers. */
function echoMetadata(ctx: HandlerContext): void {
  for (const v of ctx.requestMetadata.getAll(echoInitialKey)) ctx.responseHeader.append(echoInitialKey, v);
  for (const v of ctx.requestMetadata.getAll(echoTrailingKey)) ctx.responseTrailer.append(echoTrailingKey, v);
}

/** Echo Status: ends the call with the requested status (trailers still carry the echo). */
function echoStatus(status: EchoStatus | undefined): void {
  if (status === undefined || status.code === 0) return;
  throw new RpcError(status.code as Code, status.message);
}

/**
 * CompressedRequest: when `expect` is set, the request message just read must have arrived
 * with the compressed flag exactly when `expect.value` is true; otherwise INVALID_ARGUMENT.
 */
function checkExpectCompressed(expect: BoolValue | undefined, ctx: HandlerContext): void {
  if (expect === undefined) return;
  if (expect.value && !ctx.lastRequestCompressed) {
    throw new RpcError(Code.InvalidArgument, "expected a compressed request message, got an uncompressed one");
  }
  if (!expect.value && ctx.lastRequestCompressed) {
    throw new RpcError(Code.InvalidArgument, "expected an uncompressed request message, got a compressed one");
  }
}

/** CompressedResponse for streams: gzip the call when any response asks to be compressed. */
function compressIfAsked(params: ResponseParameters[], ctx: HandlerContext): void {
  if (params.some((p) => p.compressed?.value === true)) ctx.setResponseCompression("gzip");
}

/**
 * One response per ResponseParameters, in order, each after sleeping its `interval_us`
 * (cancelled with the call). `compressed: false` sends that message uncompressed.
 */
async function* respond(params: ResponseParameters[], ctx: HandlerContext): AsyncGenerator<StreamingResponse> {
  for (const p of params) {
    if (p.intervalUs > 0) await sleep(p.intervalUs / 1000, undefined, { signal: ctx.signal });
    const response = { payload: zeros(p.size) };
    yield p.compressed?.value === false ? withCompression(response, false) : response;
  }
}
