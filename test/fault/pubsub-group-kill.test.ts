/**
 * A consumer group survives a member killed mid-run: three member processes share 20,000
 * events; one is killed with SIGKILL while it holds unacknowledged deliveries. Every event must
 * be acknowledged exactly once (the hub counts each ack that completes an event, and nothing is
 * left pending), no member may see an event acknowledged twice, and what the dead member held is
 * redelivered to the others (the count is printed). On Redis (the state other hubs would share)
 * and on the memory log.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { describe, test } from "node:test";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { createServer, silentLogger } from "../../src/index.js";
import { PubSubService, createHub, createMemoryLog, createRedisLog, type EventLog } from "../../src/services/pubsub/index.js";
import { eventually } from "../support/harness.js";
import { useRedis } from "../support/redis.js";

const fixture = fileURLToPath(new URL("./fixtures/group-member.js", import.meta.url));
const total = 20_000;

interface Member {
  child: ChildProcess;
  acked: string[];
  redeliveries: number;
  exited: Promise<void>;
}

function startMember(target: string, topic: string, group: string): Promise<Member> {
  const child = spawn(process.execPath, [fixture, "--target", target, "--topic", topic, "--group", group, "--ack-deadline-ms", "2000", "--in-flight", "64"], { stdio: ["ignore", "pipe", "inherit"] });
  const m: Member = { child, acked: [], redeliveries: 0, exited: new Promise((resolve) => child.once("exit", () => resolve())) };
  return new Promise((resolve, reject) => {
    child.once("exit", (code) => reject(new Error(`group member exited early (${code})`)));
    createInterface({ input: child.stdout! }).on("line", (line) => {
      const o = JSON.parse(line) as { ready?: number; acked?: string[]; redelivery?: string };
      if (o.ready !== undefined) resolve(m);
      if (o.acked !== undefined) m.acked.push(...o.acked);
      if (o.redelivery !== undefined) m.redeliveries++;
    });
  });
}

async function run(log: EventLog): Promise<void> {
  const hub = createHub({ log });
  const server = createServer({ logger: silentLogger }).add(PubSubService, hub.service);
  const { port } = await server.listen({ host: "127.0.0.1", port: 0 });
  const target = `127.0.0.1:${port}`;
  const members: Member[] = [];
  try {
    for (let i = 0; i < 3; i++) members.push(await startMember(target, "work", "crew"));
    await eventually(() => hub.stats.groupMembers === 3, 10_000, "three members joined");
    // Bounded: 20,000 publishes, 64 in flight at a time, while the members work.
    const publishing = (async () => {
      for (let published = 0; published < total; published += 64) {
        const batch = Math.min(64, total - published);
        await Promise.all(Array.from({ length: batch }, (_, i) => hub.publish("work", new TextEncoder().encode(String(published + i)))));
      }
    })();
    // Killed mid-run, while it holds deliveries it has not acknowledged.
    await eventually(() => members[0]!.acked.length > total / 10 && hub.stats.unacknowledged > 0, 60_000, "the first member to be busy");
    members[0]!.child.kill("SIGKILL");
    await members[0]!.exited;
    const ackedAtKill = hub.stats.acknowledged;
    await publishing;
    assert.ok(ackedAtKill < total, `the kill came mid-run (${ackedAtKill} acknowledged then)`);
    await eventually(() => hub.stats.acknowledged >= total, 60_000, `every event acknowledged (${hub.stats.acknowledged} so far)`);
    await eventually(() => hub.stats.unacknowledged === 0, 10_000, "nothing left in flight");
    const pending = await log.groups.pending("work", "crew");
    const seen = members.flatMap((m) => m.acked);
    const twice = seen.length - new Set(seen).size;
    console.log(
      `# ${log.kind}: acknowledged ${hub.stats.acknowledged} of ${total}; acks seen per member ${members.map((m) => m.acked.length).join("/")}; redelivered ${hub.stats.redelivered} (members saw ${members.map((m) => m.redeliveries).join("/")}); dead-lettered ${hub.stats.deadLettered}; pending ${pending}`,
    );
    assert.equal(hub.stats.acknowledged, total, "each event's ack completed it exactly once");
    assert.equal(pending, 0, "no event left unacknowledged");
    assert.equal(hub.stats.deadLettered, 0);
    assert.equal(twice, 0, "no member was told twice that an event was acknowledged");
    assert.ok(hub.stats.redelivered > 0, "what the killed member held went to the others");
  } finally {
    for (const m of members) m.child.kill("SIGKILL");
    await Promise.all(members.map((m) => m.exited));
    await hub.close();
    await server.shutdown({ graceMs: 100 });
  }
}

describe("a consumer group with a member killed by SIGKILL", () => {
  const redis = useRedis();
  test("Redis log: 20,000 events, 3 members, one killed: each event acknowledged exactly once, what it held redelivered", async () => {
    await run(createRedisLog({ url: redis.get().url, prefix: "groupkill:", maxEvents: 50_000 }));
  });
  test("memory log: the same", async () => {
    await run(createMemoryLog({ maxEvents: 50_000 }));
  });
});
