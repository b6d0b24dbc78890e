/**
 * RouteGuide server: the classic gRPC example on Rill.
 *
 * `routeGuideService()` returns the implementation for `server.add(RouteGuide, impl)`; every call to
 * it makes a fresh, independent service (its own RouteChat board). Run this file directly to serve it:
 *
 *     node dist/examples/routeguide/server.js [--host 127.0.0.1] [--port 50051]
 */
import { parseArgs } from "node:util";
import { pathToFileURL } from "node:url";
import { create } from "@bufbuild/protobuf";
import { createServer, type HandlerContext } from "../../src/index.js";
import {
  FeatureSchema,
  RouteGuide,
  RouteNoteSchema,
  RouteSummarySchema,
  type Feature,
  type Point,
  type Rectangle,
  type RouteNote,
} from "../../gen/routeguide/route_guide_pb.js";
import { createNoteBoard, createRouteRecorder, featureAt, featuresIn, loadFeatures } from "./features.js";

/**
 * The RouteGuide implementation over `features` (by default the shipped database).
 *
 * - GetFeature: the named feature at the point, or a feature with an empty name at that location.
 * - ListFeatures: the named features inside the rectangle, stopping as soon as the call is cancelled.
 * - RecordRoute: point count, named features visited, distance in meters, elapsed whole seconds.
 * - RouteChat: for each incoming note, first the notes posted earlier at its location, then it is stored.
 */
export function routeGuideService(features: readonly Feature[] = loadFeatures()) {
  const board = createNoteBoard();
  return {
    async getFeature(point: Point, _ctx: HandlerContext): Promise<Feature> {
      const found = featureAt(features, point);
      return found ?? create(FeatureSchema, { name: "", location: { latitude: point.latitude, longitude: point.longitude } });
    },

    async *listFeatures(rect: Rectangle, ctx: HandlerContext): AsyncGenerator<Feature> {
      for (const feature of featuresIn(features, rect)) {
        if (ctx.signal.aborted) return;
        yield feature;
      }
    },

    async recordRoute(points: AsyncIterable<Point>, _ctx: HandlerContext) {
      const recorder = createRouteRecorder(features);
      for await (const point of points) recorder.add(point);
      return create(RouteSummarySchema, recorder.summary());
    },

    async *routeChat(notes: AsyncIterable<RouteNote>, _ctx: HandlerContext): AsyncGenerator<RouteNote> {
      for await (const note of notes) {
        for (const previous of board.post(note)) yield create(RouteNoteSchema, previous);
      }
    },
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { host: { type: "string", default: "127.0.0.1" }, port: { type: "string", default: "50051" } },
  });
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port: not a port number: ${values.port}`);
  const server = createServer();
  server.add(RouteGuide, routeGuideService());
  const address = await server.listen({ host: values.host, port });
  console.log(`RouteGuide server listening on ${values.host}:${address.port}`);
  const stop = (): void => {
    console.log("shutting down");
    const force = setTimeout(() => server.forceShutdown(), 5000);
    void server.shutdown().finally(() => clearTimeout(force));
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}
