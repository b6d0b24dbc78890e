/**
 * The demo's web page, served by the demo server on its gRPC port (`createServer({ http })`):
 * `/` (the page), `/app.js` (its script), `/stats.json` (the server's numbers), and the ES
 * modules the page imports, without a bundler: Rill's own compiled modules under `/rill/` and
 * three packages from node_modules under `/vendor/`, named for the browser by an import map.
 * Only those folders are served, and only `.js` files in them.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, normalize, sep } from "node:path";
import { fileURLToPath } from "node:url";
import type { HttpHandler, HttpResponse, Interceptor, Server } from "../../src/index.js";

const root = fileURLToPath(new URL("../../../", import.meta.url));
const pageDir = join(root, "examples", "web");
const distDir = join(root, "dist");
/** The packages the page imports, and the folder of each that holds its ES modules. */
const vendored = ["@bufbuild/protobuf", "@connectrpc/connect", "@connectrpc/connect-web"];

/** Call and message counts, kept by an interceptor, for the page's numbers. */
export class DemoStats {
  calls = 0;
  messages = 0;
  readonly started = Date.now();

  /** Counts every call and every message of it, both ways. */
  readonly interceptor: Interceptor = (next) => async (req) => {
    this.calls++;
    const count = <T>(it: AsyncIterable<T>): AsyncIterable<T> => {
      const stats = this;
      return {
        async *[Symbol.asyncIterator]() {
          for await (const m of it) {
            stats.messages++;
            yield m;
          }
        },
      };
    };
    const res = await next({ ...req, messages: count(req.messages) });
    return { ...res, messages: count(res.messages) };
  };
}

/** The folder of an installed package (its package.json is not always among its exports). */
function packageDir(name: string): string {
  let dir = dirname(createRequire(join(root, "package.json")).resolve(name));
  for (;;) {
    try {
      if ((JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { name?: string }).name === name) return dir;
    } catch {
      // no package.json here: keep going up
    }
    const up = dirname(dir);
    if (up === dir) throw new Error(`cannot find the folder of ${name}`);
    dir = up;
  }
}

/** The import map: each vendored package and its subpath exports, as ES module URLs. */
export function importMap(): string {
  const imports: Record<string, string> = {};
  for (const name of vendored) {
    const pkg = JSON.parse(readFileSync(join(packageDir(name), "package.json"), "utf8")) as { exports: Record<string, { import?: string } | string> };
    for (const [sub, target] of Object.entries(pkg.exports)) {
      const file = typeof target === "string" ? target : target.import;
      if (file === undefined || !file.endsWith(".js")) continue;
      imports[sub === "." ? name : `${name}/${sub.slice(2)}`] = `/vendor/${name}/${file.slice(2)}`;
    }
  }
  return JSON.stringify({ imports }, null, 2);
}

/** A file under `dir`, if `rel` stays inside it and names a .js file. */
function jsFile(dir: string, rel: string): HttpResponse | undefined {
  const full = normalize(join(dir, rel));
  if (!full.startsWith(dir + sep) || !full.endsWith(".js")) return undefined;
  try {
    return { headers: { "content-type": "text/javascript; charset=utf-8", "cache-control": "no-cache" }, body: readFileSync(full) };
  } catch {
    return undefined;
  }
}

/** Serves the ES modules a page of the demo imports: Rill's under /rill/, the packages' under /vendor/. */
export function moduleFiles(): HttpHandler {
  const vendorDirs = new Map(vendored.map((name) => [name, packageDir(name)]));
  return (req) => {
    if (req.path.startsWith("/rill/")) {
      const rel = req.path.slice("/rill/".length);
      // Only what a browser may run: the web entry and generated messages.
      if (!/^(src\/web|gen)\//.test(rel)) return undefined;
      return jsFile(distDir, rel);
    }
    if (req.path.startsWith("/vendor/")) {
      const rest = req.path.slice("/vendor/".length);
      for (const [name, dir] of vendorDirs) if (rest.startsWith(`${name}/dist/esm/`)) return jsFile(join(dir, "dist", "esm"), rest.slice(`${name}/dist/esm/`.length));
    }
    return undefined;
  };
}

/** The demo server's `http` handler. */
export function demoPages(server: Server, stats: DemoStats): HttpHandler {
  let map: string;
  let modules: HttpHandler;
  try {
    map = importMap();
    modules = moduleFiles();
  } catch {
    // An installed package without the page's browser packages (optional peers): say what to add.
    const missing = `<!doctype html><meta charset="utf-8"><title>Rill demo</title><p>The demo page needs <code>@connectrpc/connect</code> and <code>@connectrpc/connect-web</code>: <code>npm install @connectrpc/connect @connectrpc/connect-web</code>, then restart the server. Every RPC on this port works without them.</p>`;
    return (req) => (req.path === "/" ? { status: 503, headers: { "content-type": "text/html; charset=utf-8" }, body: missing } : undefined);
  }
  let last = { at: Date.now(), calls: 0, messages: 0 };
  let rates = { callsPerSecond: 0, messagesPerSecond: 0 };
  return (req) => {
    if (req.path === "/" || req.path === "/index.html") {
      const html = readFileSync(join(pageDir, "index.html"), "utf8").replace("<!--IMPORT-MAP-->", `<script type="importmap">\n${map}\n</script>`);
      return { headers: { "content-type": "text/html; charset=utf-8", "cache-control": "no-cache" }, body: html };
    }
    if (req.path === "/app.js") return jsFile(pageDir, "app.js");
    if (req.path === "/stats.json") {
      const now = Date.now();
      if (now - last.at >= 500) {
        const s = (now - last.at) / 1000;
        rates = { callsPerSecond: Math.round((stats.calls - last.calls) / s), messagesPerSecond: Math.round((stats.messages - last.messages) / s) };
        last = { at: now, calls: stats.calls, messages: stats.messages };
      }
      const body = { connections: server.openConnections, activeCalls: server.activeCalls, ...rates, calls: stats.calls, messages: stats.messages, uptimeSeconds: Math.round((now - stats.started) / 1000) };
      return { headers: { "content-type": "application/json", "cache-control": "no-store" }, body: JSON.stringify(body) };
    }
    return modules(req);
  };
}
