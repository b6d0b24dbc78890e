/** Interop: a Rill client calling a @grpc/grpc-js server, all four call kinds. */
import { defineInteropSuite } from "./fixtures/suite.js";
import { connect } from "./fixtures/rill-client.js";
import { start } from "./fixtures/grpc-js-peer.js";

defineInteropSuite({ name: "Rill", connect }, { name: "grpc-js", start });
