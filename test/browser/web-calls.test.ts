/* eslint-disable @typescript-eslint/no-explicit-any */
/**
 * @connectrpc/connect-web in Chromium calling Rill's Echo and RouteGuide: the call kinds a
 * browser can make (unary, server streaming; fetch has no request streaming) in the Connect
 * protocol (POST and GET) and gRPC-Web, with an error's code and details, from a page on another
 * origin than the server (CORS allowed for it). The page imports the modules through the demo's
 * import map, as the demo page does.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Echo } from "../../gen/echo/echo_pb.js";
import { RouteGuide } from "../../gen/routeguide/route_guide_pb.js";
import { Code, createServer, errorDetail, RpcError, silentLogger, type Server } from "../../src/index.js";
import { BadRequestSchema } from "../../src/error-details.js";
import { routeGuideService } from "../../examples/routeguide/server.js";
import { importMap, moduleFiles } from "../../examples/web/pages.js";
import { echoStreams } from "../support/echo.js";
import { launchBrowser, watchPageProblems, type LaunchedBrowser } from "../support/browser.js";

describe("connect-web in Chromium calls Rill", () => {
  let browser: LaunchedBrowser;
  let api: Server;
  let site: Server;
  let apiOrigin = "";
  let siteOrigin = "";

  before(async () => {
    browser = await launchBrowser();
    // The page's origin: a server that only serves the page and its modules.
    const modules = moduleFiles();
    const map = importMap();
    site = createServer({
      logger: silentLogger,
      http: (req) =>
        req.path === "/"
          ? { headers: { "content-type": "text/html" }, body: `<!doctype html><html><head><link rel="icon" href="data:,"><script type="importmap">${map}</script></head><body></body></html>` }
          : modules(req),
    });
    siteOrigin = `http://127.0.0.1:${(await site.listen({ port: 0 })).port}`;
    api = createServer({
      logger: silentLogger,
      cors: { allowedOrigins: [siteOrigin], exposedHeaders: ["x-answer"] },
    });
    api.add(Echo, {
      ...echoStreams,
      unaryEcho(req, ctx) {
        if (req.message === "bad") throw new RpcError(Code.InvalidArgument, "bad message", { details: [errorDetail(BadRequestSchema, { fieldViolations: [{ field: "message", description: "not that" }] })] });
        ctx.responseHeader.set("x-answer", "42");
        return { message: req.message };
      },
    });
    api.add(RouteGuide, routeGuideService());
    apiOrigin = `http://127.0.0.1:${(await api.listen({ port: 0 })).port}`;
    await browser.page.goto(`${siteOrigin}/`);
  });

  after(async () => {
    await browser?.close();
    await api?.shutdown({ graceMs: 100 });
    await site?.shutdown({ graceMs: 100 });
  });

  for (const protocol of ["connect", "grpc-web"] as const) {
    test(`${protocol}: unary, server streaming, errors with details, response headers through CORS`, async () => {
      const problems = watchPageProblems(browser.page);
      const result = await browser.page.evaluate(
        async ({ apiOrigin, protocol }) => {
          const { createClient, ConnectError } = await import("@connectrpc/connect");
          const web = await import("@connectrpc/connect-web");
          const { Echo } = await import("/rill/gen/echo/echo_pb.js" as string);
          const { RouteGuide } = await import("/rill/gen/routeguide/route_guide_pb.js" as string);
          const make = protocol === "connect" ? web.createConnectTransport : web.createGrpcWebTransport;
          const transport = make({ baseUrl: apiOrigin });
          // Typed loosely: the page loads the generated modules by URL, which TypeScript cannot follow.
          const echo = createClient(Echo, transport) as any;
          let answer: string | null = null;
          const unary = await echo.unaryEcho({ message: "héllo" }, { onHeader: (h: Headers) => (answer = h.get("x-answer")) });
          const streamed: string[] = [];
          for await (const r of echo.serverStreamingEcho({ message: "s" })) streamed.push(r.message);
          let error: { code: number; message: string; detailTypes: string[] } | undefined;
          try {
            await echo.unaryEcho({ message: "bad" });
          } catch (e) {
            const ce = ConnectError.from(e);
            error = { code: ce.code, message: ce.rawMessage, detailTypes: ce.details.map((d: { type?: string; desc?: { typeName: string } }) => d.type ?? d.desc?.typeName ?? "") };
          }
          const routes = createClient(RouteGuide, transport) as any;
          const feature = await routes.getFeature({ latitude: 407838351, longitude: -746143763 });
          let listed = 0;
          for await (const _f of routes.listFeatures({ lo: { latitude: 400000000, longitude: -750000000 }, hi: { latitude: 420000000, longitude: -730000000 } })) listed++;
          return { unary: unary.message, answer, streamed, error, feature: feature.name, listed };
        },
        { apiOrigin, protocol },
      );
      assert.equal(result.unary, "héllo");
      assert.equal(result.answer, "42");
      assert.deepEqual(result.streamed, ["s 0", "s 1", "s 2"]);
      assert.deepEqual(result.error, { code: Code.InvalidArgument, message: "bad message", detailTypes: ["google.rpc.BadRequest"] });
      assert.equal(result.feature, "Patriots Path, Mendham, NJ 07945, USA");
      assert.ok(result.listed > 10);
      // The Connect protocol sends an error with its HTTP status (invalid_argument: 400), which
      // Chromium logs as a failed load; that one is the test's own. Nothing else may go wrong.
      const unexpected = problems.list.filter((p) => !(protocol === "connect" && /status of 400 \(Bad Request\) \(.*\/UnaryEcho/.test(p)));
      assert.deepEqual(unexpected, []);
      problems.stop();
    });
  }

  test("connect with useHttpGet: side-effect-free methods go as GET", async () => {
    const result = await browser.page.evaluate(
      async ({ apiOrigin }) => {
        const { createClient } = await import("@connectrpc/connect");
        const web = await import("@connectrpc/connect-web");
        const { RouteGuide } = await import("/rill/gen/routeguide/route_guide_pb.js" as string);
        const seen: string[] = [];
        const transport = web.createConnectTransport({
          baseUrl: apiOrigin,
          useHttpGet: true,
          fetch: (input: string | URL | Request, init?: RequestInit) => {
            seen.push(init?.method ?? "GET");
            return fetch(input, init);
          },
        });
        const feature = await (createClient(RouteGuide, transport) as any).getFeature({ latitude: 407838351, longitude: -746143763 });
        return { name: feature.name, seen };
      },
      { apiOrigin },
    );
    assert.equal(result.name, "Patriots Path, Mendham, NJ 07945, USA");
    assert.deepEqual(result.seen, ["GET"]);
  });
});
