/**
 * The browser tests' groundwork works end to end: Debian's chromium launches headless under
 * playwright-core, loads a page from a server of the test's own on 127.0.0.1, runs its script,
 * which fetches from the same server, and reports no console or page errors. When chromium cannot
 * be installed or launched, this fails (it never skips).
 */
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { launchBrowser, watchPageProblems, type LaunchedBrowser } from "../support/browser.js";

/** The page: its script asks /ping and writes the answer into #answer (or the failure, loudly). */
const html = `<!doctype html>
<html>
<head>
<meta charset="utf-8">
<title>rill browser smoke</title>
<!-- No favicon request: a 404 for it would be a console error. -->
<link rel="icon" href="data:,">
</head>
<body>
<p id="answer" data-state="waiting">waiting</p>
<script type="module">
const out = document.getElementById("answer");
try {
  const res = await fetch("/ping", { cache: "no-store" });
  if (!res.ok) throw new Error("/ping answered " + res.status);
  out.textContent = await res.text();
  out.dataset.state = "done";
} catch (e) {
  out.textContent = String(e);
  out.dataset.state = "failed";
  console.error("fetching /ping failed:", e);
}
</script>
</body>
</html>
`;

describe("headless chromium (playwright-core)", () => {
  // Per run, so the text on the page can only have come from this server.
  const token = `pong ${process.pid}-${Date.now()}`;
  const requests: string[] = [];
  let server: Server | undefined;
  let origin = "";
  let launched: LaunchedBrowser | undefined;

  before(async () => {
    const s = createServer((req, res) => {
      requests.push(`${req.method} ${req.url}`);
      if (req.method === "GET" && req.url === "/") {
        res.writeHead(200, { "content-type": "text/html; charset=utf-8" }).end(html);
      } else if (req.method === "GET" && req.url === "/ping") {
        res.writeHead(200, { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store" }).end(token);
      } else {
        res.writeHead(404).end();
      }
    });
    server = s;
    await new Promise<void>((resolve, reject) => s.once("error", reject).listen(0, "127.0.0.1", resolve));
    origin = `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
    // Throws (so every test below fails) when chromium cannot be installed or launched.
    launched = await launchBrowser();
  });

  after(async () => {
    // The browser first: it holds keep-alive connections that would keep the server's close() waiting.
    try {
      await launched?.close();
    } finally {
      const s = server;
      if (s !== undefined) {
        s.closeAllConnections();
        await new Promise<void>((resolve) => s.close(() => resolve()));
      }
    }
  });

  test("a page served on 127.0.0.1 fetches /ping from its server and shows the answer, with no console or page errors", async () => {
    assert.ok(launched !== undefined, "the browser did not launch (see the before hook's error)");
    const { page } = launched;
    const problems = watchPageProblems(page);
    const res = await page.goto(`${origin}/`);
    assert.equal(res?.status(), 200);
    assert.equal(await page.title(), "rill browser smoke");
    const answer = page.locator("#answer");
    // Waits for the script to finish either way, so a failure shows its message rather than a time-out.
    await page.locator('#answer:not([data-state="waiting"])').waitFor();
    assert.deepEqual({ state: await answer.getAttribute("data-state"), text: await answer.textContent() }, { state: "done", text: token });
    assert.deepEqual(requests, ["GET /", "GET /ping"]);
    problems.stop();
    problems.assertNone();
  });

  test("the page problem watcher sees console errors and uncaught exceptions", async () => {
    // Proves the assertion above can fail: without this, a watcher that heard nothing would pass.
    assert.ok(launched !== undefined, "the browser did not launch (see the before hook's error)");
    const { context } = launched;
    const page = await context.newPage();
    try {
      const problems = watchPageProblems(page);
      await page.goto(`${origin}/`);
      // The exception is thrown from a timer, after addScriptTag returns: listen before it runs.
      const thrown = page.waitForEvent("pageerror");
      await page.addScriptTag({ content: `console.error("deliberate"); setTimeout(() => { throw new Error("thrown on purpose"); });` });
      await thrown;
      problems.stop();
      assert.equal(problems.list.length, 2, problems.list.join("\n"));
      assert.match(problems.list[0]!, /^console\.error: deliberate/);
      assert.match(problems.list[1]!, /^uncaught: Error: thrown on purpose/);
      assert.throws(() => problems.assertNone(), /reported 2 problem\(s\)/);
    } finally {
      await page.close();
    }
  });
});
