/**
 * @grpc/grpc-js in the transfer benchmark: a hand-rolled service definition with protobuf-es
 * serializers (as in ../impl/grpc-js.ts), the server writing the peers' chunks with
 * `write()`/`'drain'`, the client verifying them from `'data'` events.
 */
import * as grpc from "@grpc/grpc-js";
import { create } from "@bufbuild/protobuf";
import { PayloadSchema, type Payload } from "../../gen/bench/v1/bench_pb.js";
import { DownloadRequestSchema, DownloadResponseSchema, type DownloadRequest, type DownloadResponse } from "../../gen/rill/transfer/v1/transfer_pb.js";
import { protobufSerializer } from "../common.js";
import { BIDI_PATH, DOWNLOAD_PATH, Verifier, peerChunks, peerMessage, sizeOf, type TransferClient } from "./common.js";

const downloadReq = protobufSerializer(DownloadRequestSchema);
const downloadRes = protobufSerializer(DownloadResponseSchema);
const payloadSer = protobufSerializer(PayloadSchema);

const definition = {
  Download: {
    path: DOWNLOAD_PATH,
    requestStream: false,
    responseStream: true,
    requestSerialize: downloadReq.serialize,
    requestDeserialize: downloadReq.deserialize,
    responseSerialize: downloadRes.serialize,
    responseDeserialize: downloadRes.deserialize,
  },
  Bidi: {
    path: BIDI_PATH,
    requestStream: true,
    responseStream: true,
    requestSerialize: payloadSer.serialize,
    requestDeserialize: payloadSer.deserialize,
    responseSerialize: payloadSer.serialize,
    responseDeserialize: payloadSer.deserialize,
  },
} satisfies grpc.ServiceDefinition;

export async function serve(): Promise<number> {
  const server = new grpc.Server();
  server.addService(definition, {
    Download(call: grpc.ServerWritableStream<DownloadRequest, DownloadResponse>) {
      call.on("error", () => {});
      let cancelled = false;
      call.on("cancelled", () => (cancelled = true));
      const chunks = peerChunks(sizeOf(call.request));
      const pump = (): void => {
        for (let r = chunks.next(); !r.done; r = chunks.next()) {
          if (cancelled) return;
          if (!call.write(peerMessage(r.value))) {
            call.once("drain", pump);
            return;
          }
        }
        call.end();
      };
      pump();
    },
    Bidi(call: grpc.ServerDuplexStream<Payload, Payload>) {
      call.on("data", (m: Payload) => call.write(create(PayloadSchema, { data: m.data })));
      call.on("end", () => call.end());
      call.on("error", () => {});
    },
  } as grpc.UntypedServiceImplementation);
  return new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
  );
}

interface GrpcGeneric extends grpc.Client {
  Download(req: DownloadRequest): grpc.ClientReadableStream<DownloadResponse>;
  Bidi(): grpc.ClientDuplexStream<Payload, Payload>;
}

export async function connect(port: number): Promise<TransferClient> {
  const Ctor = grpc.makeGenericClientConstructor(definition, "TransferBench");
  const c = new Ctor(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as unknown as GrpcGeneric;
  await new Promise<void>((resolve, reject) => c.waitForReady(Date.now() + 5000, (e) => (e ? reject(e) : resolve())));
  return {
    download(size) {
      const call = c.Download(create(DownloadRequestSchema, { transferId: String(size) }));
      const v = new Verifier(size);
      return new Promise<void>((resolve, reject) => {
        call.on("data", (m: DownloadResponse) => {
          try {
            const ch = m.chunk!;
            v.accept(Number(ch.offset), ch.data, ch.last, ch.last ? ch.sha256 : undefined, ch.crc32c);
          } catch (e) {
            reject(e);
            call.cancel();
          }
        });
        call.on("error", reject);
        call.on("status", (s: grpc.StatusObject) => (s.code === 0 && v.complete ? resolve() : reject(new Error(`status ${s.code} ${s.details}`))));
      });
    },
    bidi() {
      const call = c.Bidi();
      const waiters: Array<(d: Uint8Array) => void> = [];
      call.on("data", (m: Payload) => waiters.shift()?.(m.data));
      call.on("error", () => {});
      const done = new Promise<void>((resolve) => call.on("status", () => resolve()));
      return {
        roundTrip(data) {
          return new Promise<Uint8Array>((resolve) => {
            waiters.push(resolve);
            call.write(create(PayloadSchema, { data }));
          });
        },
        async close() {
          call.end();
          await done;
        },
      };
    },
    close: () => c.close(),
  };
}
