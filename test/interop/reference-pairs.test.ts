/**
 * The same interop suite with one stack on both sides. grpc-js → grpc-js proves the scenario
 * fixtures against the reference implementation (a failure there is a fixture bug, not a Rill bug);
 * Rill → Rill shows Rill agrees with itself on everything grpc-js agrees with.
 */
import { defineInteropSuite } from "./scenario/suite.js";
import { connect as connectGrpcJs } from "./scenario/grpc-js-client.js";
import { connect as connectRill } from "./scenario/rill-client.js";
import { start as startGrpcJs } from "./scenario/grpc-js-scenario-server.js";
import { start as startRill } from "./scenario/rill-scenario-server.js";

defineInteropSuite({ name: "grpc-js", connect: connectGrpcJs }, { name: "grpc-js", start: startGrpcJs });
defineInteropSuite({ name: "Rill", connect: connectRill }, { name: "Rill", start: startRill });
