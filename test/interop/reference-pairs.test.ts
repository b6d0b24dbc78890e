/**
 * The same interop suite with one stack on both sides. grpc-js → grpc-js proves the scenario
 * fixtures against the reference implementation (a failure there is a fixture bug, not a Rill bug);
 * Rill → Rill shows Rill agrees with itself on everything grpc-js agrees with.
 */
import { defineInteropSuite } from "./fixtures/suite.js";
import { connect as connectGrpcJs } from "./fixtures/grpc-js-client.js";
import { connect as connectRill } from "./fixtures/rill-client.js";
import { start as startGrpcJs } from "./fixtures/grpc-js-peer.js";
import { start as startRill } from "./fixtures/rill-peer.js";

defineInteropSuite({ name: "grpc-js", connect: connectGrpcJs }, { name: "grpc-js", start: startGrpcJs });
defineInteropSuite({ name: "Rill", connect: connectRill }, { name: "Rill", start: startRill });
