/** Interop: a Rill client calling a @grpc/grpc-js server, all four call kinds. */
import { defineInteropSuite } from "./scenario/suite.js";
import { connect } from "./scenario/rill-client.js";
import { start } from "./scenario/grpc-js-scenario-server.js";

defineInteropSuite({ name: "Rill", connect }, { name: "grpc-js", start });
