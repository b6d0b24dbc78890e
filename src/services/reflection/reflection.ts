/**
 * gRPC server reflection (`grpc.reflection.v1.ServerReflection` and its older twin
 * `grpc.reflection.v1alpha.ServerReflection`), per
 * https://github.com/grpc/grpc/blob/master/doc/server-reflection.md.
 *
 * It describes the server from the protobuf-es descriptors the server was given, so tools such
 * as grpcurl, `buf curl` and `rill` can list, describe and call every service without .proto
 * files. Invariants:
 * - One response per request, in request order, each echoing the request; a request the server
 *   cannot answer gets an `error_response` (NOT_FOUND, INVALID_ARGUMENT) and the stream goes on.
 * - File answers carry the file and everything it imports, transitively: a client never has
 *   to ask twice to build a complete descriptor pool.
 * - The service list is read at each request, so services added after reflection are included.
 */
import type { DescService } from "@bufbuild/protobuf";
import { ServerReflection as ServerReflectionV1 } from "../../../gen/grpc/reflection/v1/reflection_pb.js";
import { ServerReflection as ServerReflectionV1Alpha } from "../../../gen/grpc/reflection/v1alpha/reflection_pb.js";
import { Code } from "../../protocol/code.js";
import type { Server } from "../../server/server.js";
import type { ServiceImpl } from "../../server/service-impl.js";
import { createDescriptorIndex, fileDescriptorBytes, type DescriptorIndex } from "./descriptor-index.js";

export { ServerReflectionV1, ServerReflectionV1Alpha };

/** A reflection request, the same shape in v1 and v1alpha. */
interface Request {
  host: string;
  messageRequest:
    | { case: "fileByFilename" | "fileContainingSymbol" | "allExtensionNumbersOfType" | "listServices"; value: string }
    | { case: "fileContainingExtension"; value: { containingType: string; extensionNumber: number } }
    | { case: undefined; value?: undefined };
}

type Answer =
  | { case: "fileDescriptorResponse"; value: { fileDescriptorProto: Uint8Array[] } }
  | { case: "allExtensionNumbersResponse"; value: { baseTypeName: string; extensionNumber: number[] } }
  | { case: "listServicesResponse"; value: { service: { name: string }[] } }
  | { case: "errorResponse"; value: { errorCode: number; errorMessage: string } };

// The index of the last service list seen: tools ask many questions in a row about the same server.
let cached: { services: readonly DescService[]; index: DescriptorIndex } | undefined;
function indexOf(services: readonly DescService[]): DescriptorIndex {
  const same = cached !== undefined && cached.services.length === services.length && cached.services.every((s, i) => s === services[i]);
  if (!same) cached = { services: [...services], index: createDescriptorIndex(services) };
  return cached!.index;
}

const notFound = (message: string): Answer => ({ case: "errorResponse", value: { errorCode: Code.NotFound, errorMessage: message } });

/** Answers one reflection request from the services `services()` returns now. */
export function answerReflection(request: Request, services: readonly DescService[]): Answer {
  const index = indexOf(services);
  const files = (file: ReturnType<DescriptorIndex["file"]>, what: string): Answer =>
    file === undefined ? notFound(what) : { case: "fileDescriptorResponse", value: { fileDescriptorProto: index.closure(file).map(fileDescriptorBytes) } };
  const r = request.messageRequest;
  switch (r.case) {
    case "listServices":
      return { case: "listServicesResponse", value: { service: services.map((s) => ({ name: s.typeName })) } };
    case "fileByFilename":
      return files(index.file(r.value), `file "${r.value}" not found`);
    case "fileContainingSymbol":
      return files(index.fileContainingSymbol(r.value), `symbol "${r.value}" not found`);
    case "fileContainingExtension":
      return files(
        index.fileContainingExtension(r.value.containingType, r.value.extensionNumber),
        `extension ${r.value.extensionNumber} of "${r.value.containingType}" not found`,
      );
    case "allExtensionNumbersOfType": {
      const numbers = index.extensionNumbers(r.value);
      if (numbers === undefined) return notFound(`message type "${r.value}" not found`);
      return { case: "allExtensionNumbersResponse", value: { baseTypeName: r.value, extensionNumber: numbers } };
    }
    default:
      return { case: "errorResponse", value: { errorCode: Code.InvalidArgument, errorMessage: "the request names no question (message_request is empty)" } };
  }
}

function impl(services: () => readonly DescService[]) {
  return {
    async *serverReflectionInfo(requests: AsyncIterable<Request>) {
      for await (const request of requests) {
        yield { validHost: request.host, originalRequest: request, messageResponse: answerReflection(request, services()) };
      }
    },
  };
}

/** The handlers of reflection v1, describing what `services()` returns at each request. */
export function reflectionV1Impl(services: () => readonly DescService[]): ServiceImpl<typeof ServerReflectionV1> {
  return impl(services) as unknown as ServiceImpl<typeof ServerReflectionV1>;
}

/** The handlers of reflection v1alpha (what grpcio's and older tools ask for). */
export function reflectionV1AlphaImpl(services: () => readonly DescService[]): ServiceImpl<typeof ServerReflectionV1Alpha> {
  return impl(services) as unknown as ServiceImpl<typeof ServerReflectionV1Alpha>;
}

/**
 * Serves reflection v1 and v1alpha on `server`, describing every service the server has
 * (including ones added later, and reflection itself).
 *
 * ```ts
 * server.add(VideoService, videos);
 * serveReflection(server); // `rill list 127.0.0.1:50051` now works without .proto files
 * ```
 */
export function serveReflection(server: Server): Server {
  const services = () => server.services;
  return server.add(ServerReflectionV1, reflectionV1Impl(services)).add(ServerReflectionV1Alpha, reflectionV1AlphaImpl(services));
}
