import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { create, createFileRegistry, fromBinary, type DescService } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { TestService } from "../../gen/grpc/testing/test_pb.js";
import { VideoService } from "../../gen/video/video_pb.js";
import { ServerReflection as ReflectionV1 } from "../../gen/grpc/reflection/v1/reflection_pb.js";
import { ServerReflection as ReflectionV1Alpha } from "../../gen/grpc/reflection/v1alpha/reflection_pb.js";
import { addVideoService } from "../../examples/video/server.js";
import { createTestService as testService } from "../../src/interop/test-service.js";
import { Code, createClient, createPushable, RpcError } from "../../src/index.js";
import { createReflectionClient, serveReflection } from "../../src/services/reflection/index.js";
import { collect, from, transports, useHarness } from "../support/harness.js";

/** A proto2 file with an extendable message, an extension and a service, made at test time. */
function extensionService(): DescService {
  const file = create(FileDescriptorProtoSchema, {
    name: "ext/base.proto",
    package: "ext",
    syntax: "proto2",
    messageType: [{ name: "Base", field: [{ name: "id", number: 1, label: 1, type: 9, jsonName: "id" }], extensionRange: [{ start: 100, end: 200 }] }],
    extension: [
      { name: "extra", number: 100, label: 1, type: 5, extendee: ".ext.Base", jsonName: "extra" },
      { name: "more", number: 150, label: 1, type: 9, extendee: ".ext.Base", jsonName: "more" },
    ],
    service: [{ name: "BaseService", method: [{ name: "Get", inputType: ".ext.Base", outputType: ".ext.Base" }] }],
  });
  return createFileRegistry(create(FileDescriptorSetSchema, { file: [file] })).getService("ext.BaseService")!;
}

for (const transport of transports) describe(`server reflection (${transport})`, () => {
  const h = useHarness({ transport });

  test("lists every service of the server, reflection included, and ones added after it", async () => {
    const { target } = await h.server((s) => {
      addVideoService(s);
      serveReflection(s);
      s.add(TestService, testService());
    });
    const rc = createReflectionClient(h.channel(target));
    try {
      assert.deepEqual((await rc.listServices()).sort(), [
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
        "grpc.testing.TestService",
        "video_service.VideoService",
      ]);
      assert.equal(rc.version, "v1");
    } finally {
      rc.close();
    }
  });

  test("answers file-containing-symbol for services, methods, messages, fields and nested enums with the file and its imports", async () => {
    const { target } = await h.server((s) => {
      s.add(TestService, testService());
      serveReflection(s);
    });
    const rc = createReflectionClient(h.channel(target));
    try {
      const names = async (symbol: string) => (await rc.fileContainingSymbol(symbol)).map((f) => f.name);
      // test.proto imports empty.proto and messages.proto: all three come in one answer, the asked file first.
      const forService = await names("grpc.testing.TestService");
      assert.equal(forService[0], "grpc/testing/test.proto");
      assert.deepEqual([...forService].sort(), ["grpc/testing/empty.proto", "grpc/testing/messages.proto", "grpc/testing/test.proto"]);
      assert.equal((await names("grpc.testing.TestService.UnaryCall"))[0], "grpc/testing/test.proto");
      assert.deepEqual(await names("grpc.testing.SimpleRequest"), ["grpc/testing/messages.proto"]);
      assert.deepEqual(await names("grpc.testing.SimpleRequest.response_size"), ["grpc/testing/messages.proto"]);
      assert.deepEqual(await names(".grpc.testing.PayloadType"), ["grpc/testing/messages.proto"]);
      assert.deepEqual((await rc.fileByFilename("grpc/testing/empty.proto")).map((f) => f.name), ["grpc/testing/empty.proto"]);
    } finally {
      rc.close();
    }
  });

  test("an unknown symbol or file gets NOT_FOUND and the stream goes on answering", async () => {
    const { target } = await h.server((s) => {
      addVideoService(s);
      serveReflection(s);
    });
    const channel = h.channel(target);
    const requests = from([
      { host: "", messageRequest: { case: "fileContainingSymbol" as const, value: "no.such.Thing" } },
      { host: "", messageRequest: { case: "fileByFilename" as const, value: "nope.proto" } },
      { host: "", messageRequest: { case: "fileContainingSymbol" as const, value: "video_service.Video" } },
    ]);
    const answers = await collect(createClient(ReflectionV1, channel).serverReflectionInfo(requests));
    assert.equal(answers.length, 3);
    for (const a of answers.slice(0, 2)) {
      assert.equal(a.messageResponse.case, "errorResponse");
      assert.equal(a.messageResponse.case === "errorResponse" && a.messageResponse.value.errorCode, Code.NotFound);
    }
    assert.equal(answers[0]!.originalRequest?.messageRequest.value, "no.such.Thing");
    const last = answers[2]!.messageResponse;
    assert.equal(last.case, "fileDescriptorResponse");
    const file = fromBinary(FileDescriptorProtoSchema, last.case === "fileDescriptorResponse" ? last.value.fileDescriptorProto[0]! : new Uint8Array());
    assert.equal(file.name, "video/video.proto");
    assert.equal(file.package, "video_service");
    assert.deepEqual(file.service[0]!.method.map((m) => m.name), ["AddVideo", "ListVideos", "GetVideos", "GetVideo"]);
  });

  test("answers extension questions: the file of an extension and every extension number of a type", async () => {
    const ext = extensionService();
    const { target } = await h.server((s) => {
      s.add(ext, {});
      serveReflection(s);
    });
    const channel = h.channel(target);
    const requests = createPushable<unknown>();
    const it = createClient(ReflectionV1Alpha, channel).serverReflectionInfo(requests as AsyncIterable<never>)[Symbol.asyncIterator]();
    const ask = async (messageRequest: unknown) => {
      await requests.push({ host: "", messageRequest });
      return (await it.next()).value!.messageResponse;
    };
    const byExtension = await ask({ case: "fileContainingExtension", value: { containingType: "ext.Base", extensionNumber: 150 } });
    assert.equal(byExtension.case, "fileDescriptorResponse");
    const numbers = await ask({ case: "allExtensionNumbersOfType", value: "ext.Base" });
    assert.equal(numbers.case, "allExtensionNumbersResponse");
    assert.deepEqual(numbers.case === "allExtensionNumbersResponse" && [...numbers.value.extensionNumber].sort(), [100, 150]);
    const missing = await ask({ case: "fileContainingExtension", value: { containingType: "ext.Base", extensionNumber: 199 } });
    assert.equal(missing.case === "errorResponse" && missing.value.errorCode, Code.NotFound);
    const unknownType = await ask({ case: "allExtensionNumbersOfType", value: "ext.Nope" });
    assert.equal(unknownType.case === "errorResponse" && unknownType.value.errorCode, Code.NotFound);
    requests.end();
    assert.equal((await it.next()).done, true);
  });

  test("descriptors fetched through reflection are enough to call a method with no generated code", async () => {
    const { target } = await h.server((s) => {
      addVideoService(s);
      serveReflection(s);
    });
    const channel = h.channel(target);
    const rc = createReflectionClient(channel);
    const registry = await rc.registry();
    rc.close();
    const dynamic = registry.getService("video_service.VideoService")!;
    assert.notEqual(dynamic, VideoService, "the registry must be built from the wire, not the generated code");
    const client = createClient(dynamic, channel) as unknown as Record<string, (req: unknown) => AsyncIterable<{ id: string }>>;
    const ids = (await collect(client.listVideos!({}))).map((v) => v.id);
    assert.deepEqual(ids, ["v1", "v2", "v3"]);
  });

  test("a server without reflection gives a clear UNIMPLEMENTED after trying v1 and v1alpha", async () => {
    const { target } = await h.server((s) => addVideoService(s));
    const rc = createReflectionClient(h.channel(target));
    await assert.rejects(rc.listServices(), (e: unknown) => e instanceof RpcError && e.code === Code.Unimplemented && /v1alpha/.test(e.rawMessage));
    rc.close();
  });
});
