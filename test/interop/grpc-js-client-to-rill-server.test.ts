/** Interop: a @grpc/grpc-js client calling a Rill server, all four call kinds. */
import { defineInteropSuite } from "./fixtures/suite.js";
import { connect } from "./fixtures/grpc-js-client.js";
import { start } from "./fixtures/rill-peer.js";

defineInteropSuite({ name: "grpc-js", connect }, { name: "Rill", start });
