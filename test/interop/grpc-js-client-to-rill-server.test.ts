/** Interop: a @grpc/grpc-js client calling a Rill server, all four call kinds. */
import { defineInteropSuite } from "./scenario/suite.js";
import { connect } from "./scenario/grpc-js-client.js";
import { start } from "./scenario/rill-scenario-server.js";

defineInteropSuite({ name: "grpc-js", connect }, { name: "Rill", start });
