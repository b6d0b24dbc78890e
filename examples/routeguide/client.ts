/**
 * RouteGuide client: calls all four methods of a RouteGuide server and prints what comes back.
 *
 *     node dist/examples/routeguide/client.js [--target 127.0.0.1:50051]
 */
import { setTimeout as sleep } from "node:timers/promises";
import { createChannel, createClient, silentLogger } from "../../src/index.js";
import { commonExampleHelp, exampleArgs, runExample } from "../example-cli.js";
import { RouteGuide, type Feature } from "../../gen/routeguide/route_guide_pb.js";
import { loadFeatures, type PointLike } from "./features.js";

/** Formats an E7 point as degrees. */
function formatPoint(p: PointLike | undefined): string {
  return `(${((p?.latitude ?? 0) / 1e7).toFixed(7)}, ${((p?.longitude ?? 0) / 1e7).toFixed(7)})`;
}

function describe(f: Feature): string {
  return f.name === "" ? `no feature at ${formatPoint(f.location)}` : `"${f.name}" at ${formatPoint(f.location)}`;
}

const usage = `usage: node dist/examples/routeguide/client.js [--target HOST:PORT]

Calls routeguide.RouteGuide's four methods and prints what comes back.
${commonExampleHelp}`;

const { target } = exampleArgs(usage, {});

async function main(): Promise<void> {
  const channel = createChannel(target, { logger: silentLogger });
  const client = createClient(RouteGuide, channel);
  try {
    console.log("-- GetFeature");
    console.log(describe(await client.getFeature({ latitude: 409642566, longitude: -746017679 })));
    console.log(describe(await client.getFeature({ latitude: 0, longitude: 0 })));

    console.log("-- ListFeatures in (40.0, -75.0) .. (41.0, -74.0)");
    const rect = { lo: { latitude: 400000000, longitude: -750000000 }, hi: { latitude: 410000000, longitude: -740000000 } };
    for await (const feature of client.listFeatures(rect)) console.log(describe(feature));

    console.log("-- RecordRoute");
    const db = loadFeatures();
    const summary = await client.recordRoute(
      (async function* () {
        for (let i = 0; i < 10; i++) {
          const f = db[Math.floor(Math.random() * db.length)];
          if (f?.location === undefined) continue;
          console.log(`visiting ${formatPoint(f.location)}`);
          yield { latitude: f.location.latitude, longitude: f.location.longitude };
          await sleep(50);
        }
      })(),
    );
    console.log(
      `finished trip with ${summary.pointCount} points; passed ${summary.featureCount} features; ` +
        `travelled ${summary.distance} meters; took ${summary.elapsedTime} seconds`,
    );

    console.log("-- RouteChat");
    const notes: Array<{ location: { latitude: number; longitude: number }; message: string }> = [
      { location: { latitude: 0, longitude: 1 }, message: "First message" },
      { location: { latitude: 0, longitude: 2 }, message: "Second message" },
      { location: { latitude: 0, longitude: 3 }, message: "Third message" },
      { location: { latitude: 0, longitude: 1 }, message: "Fourth message" },
      { location: { latitude: 0, longitude: 2 }, message: "Fifth message" },
      { location: { latitude: 0, longitude: 3 }, message: "Sixth message" },
    ];
    const replies = client.routeChat(
      (async function* () {
        for (const note of notes) {
          console.log(`sending "${note.message}" at ${formatPoint(note.location)}`);
          yield note;
        }
      })(),
    );
    for await (const note of replies) {
      console.log(`got message "${note.message}" at ${formatPoint(note.location)}`);
    }
  } finally {
    channel.close();
  }
}

await runExample(target, main);
