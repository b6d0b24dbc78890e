/**
 * The implementations by name, loaded lazily so a child process imports only the library it
 * measures.
 */
import type { ConnectClient, ImplName, StartServer } from "../common.js";

export interface Impl {
  startServer: StartServer;
  connectClient: ConnectClient;
}

export async function loadImpl(name: ImplName): Promise<Impl> {
  switch (name) {
    case "raw":
      return import("./raw.js");
    case "rill":
      return import("./rill.js");
    case "grpc-js":
      return import("./grpc-js.js");
    case "connect":
      return import("./connect.js");
    case "raw-tuned":
      return import("./raw-tuned.js");
    case "raw-iter":
      return import("./raw-iter.js");
    case "raw-ctx":
      return import("./raw-ctx.js");
    case "rill-observed":
      return import("./rill-observed.js");
    case "grpc-js-observed":
      return import("./grpc-js-observed.js");
  }
}
