/**
 * The demo page in a real browser (Debian's chromium, headless): `npm start`'s server serves the
 * page on its gRPC port, the page subscribes to a topic with `rill/web` over connect-web, and the
 * server is killed (SIGKILL) and restarted three times while events keep being published through
 * a second hub on the same Redis. The page must end with every event published after its first
 * one, each once and in order: 0 lost, 0 duplicated.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { createHub, createRedisLog, type Hub } from "../../src/services/pubsub/index.js";
import { launchBrowser, watchPageProblems, type LaunchedBrowser } from "../support/browser.js";
import { freePort } from "../support/ports.js";
import { startRedisServer, type RedisInstance } from "../support/redis.js";

const demo = fileURLToPath(new URL("../../examples/demo-server.js", import.meta.url));

/** Starts the demo server on `port`; resolves once it listens. */
function startDemo(port: number, redisUrl: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, [demo], { env: { ...process.env, PORT: String(port), REDIS_URL: redisUrl, DEMO_TICK_MS: "0" }, stdio: ["ignore", "pipe", "pipe"] });
  return new Promise((resolve, reject) => {
    let out = "";
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes("listening on")) {
        child.stdout!.off("data", onData);
        child.stdout!.resume();
        resolve(child);
      }
    };
    child.stdout!.on("data", onData);
    child.stderr!.resume();
    child.once("exit", (code) => reject(new Error(`the demo server exited (${code}) before listening:\n${out}`)));
  });
}

function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  child.kill("SIGKILL");
  return exited;
}

describe("the demo page in Chromium", () => {
  let redis: RedisInstance;
  let browser: LaunchedBrowser;
  let server: ChildProcess | undefined;
  let hub: Hub;

  before(async () => {
    redis = await startRedisServer();
    browser = await launchBrowser();
    hub = createHub({ log: createRedisLog({ url: redis.url }) });
  });
  after(async () => {
    if (server !== undefined) await kill(server);
    await browser?.close();
    await hub?.close();
    await redis?.stop();
  });

  test("the feed resumes after 3 server kills with every event once and in order", async () => {
    const port = await freePort();
    server = await startDemo(port, redis.url);
    const topic = `browser.${Date.now()}`;
    const problems = watchPageProblems(browser.page);
    await browser.page.goto(`http://127.0.0.1:${port}/?topic=${topic}`);
    await browser.page.waitForFunction(() => (globalThis as unknown as { rillDemo?: { states: string[] } }).rillDemo?.states.includes("live") === true, null, { timeout: 15_000 });
    await browser.page.waitForSelector("#videos tr", { timeout: 10_000 });

    // Published by another hub on the same Redis, so events keep coming while the page's server is down.
    const published: string[] = [];
    let publishing = true;
    const publisher = (async () => {
      for (let i = 0; publishing; i++) {
        published.push((await hub.publish(topic, new TextEncoder().encode(`event ${i}`))).id);
        await new Promise((r) => setTimeout(r, 40));
      }
    })();
    const received = () => browser.page.evaluate(() => (globalThis as unknown as { rillDemo: { ids: string[] } }).rillDemo.ids.length);
    for (let restart = 0; restart < 3; restart++) {
      const before = await received();
      await browser.page.waitForFunction((n) => (globalThis as unknown as { rillDemo: { ids: string[] } }).rillDemo.ids.length > n + 5, before, { timeout: 10_000 });
      await kill(server);
      await new Promise((r) => setTimeout(r, 700));
      server = await startDemo(port, redis.url);
    }
    await browser.page.waitForFunction(() => (globalThis as unknown as { rillDemo: { ids: string[] } }).rillDemo.ids.length > 0, null, { timeout: 10_000 });
    publishing = false;
    await publisher;
    const last = published.at(-1)!;
    await browser.page.waitForFunction((id) => (globalThis as unknown as { rillDemo: { ids: string[] } }).rillDemo.ids.includes(id), last, { timeout: 15_000 });

    const page = await browser.page.evaluate(() => (globalThis as unknown as { rillDemo: { ids: string[]; states: string[]; errors: string[] } }).rillDemo);
    const first = published.indexOf(page.ids[0]!);
    assert.ok(first >= 0, `the page's first event ${page.ids[0]} was not published by the test`);
    const expected = published.slice(first);
    assert.equal(new Set(page.ids).size, page.ids.length, "an event arrived twice");
    assert.deepEqual(page.ids, expected, `lost: ${expected.filter((id) => !page.ids.includes(id)).length}`);
    assert.ok(page.ids.length > 50, `received ${page.ids.length} events`);
    assert.ok(page.states.filter((s) => s === "reconnecting").length >= 3, `states: ${page.states.join(" → ")}`);
    assert.deepEqual(page.errors, []);
    assert.equal(await browser.page.locator(".gap").count() >= 3, true, "the page shows each gap");
    // The browser logs the requests the kills broke (a stream cut mid-body, refused connections); nothing else may go wrong.
    const unexpected = problems.list.filter((p) => !/Failed to load resource: net::ERR_(CONNECTION_REFUSED|CONNECTION_RESET|EMPTY_RESPONSE|INCOMPLETE_CHUNKED_ENCODING)/.test(p) && !/Failed to fetch/.test(p));
    assert.deepEqual(unexpected, []);
    problems.stop();
  });
});
