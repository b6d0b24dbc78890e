/**
 * A headless chromium for a browser test: Debian's package, found (or installed with apt-get)
 * by the project's setup script, which fails loudly when it cannot; driven by playwright-core,
 * which downloads no browser of its own. Every launch gets a temp dir of its own that holds
 * everything the browser writes, and `close()` ends the browser and removes that dir.
 */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type Browser, type BrowserContext, type ConsoleMessage, type Page } from "playwright-core";

/**
 * Flags this machine needs. --no-sandbox: the tests run as root, and chromium will not start
 * as root with its sandbox on. --disable-gpu: there is no GPU (Debian's wrapper asks for GPU
 * rasterization). The rest keep the browser off the network (which only reaches package
 * registries here): no QUIC, no background fetches, component updates or sync, and no
 * first-run work. Playwright passes some of these by default too; they are listed here so the
 * set this machine needs does not depend on Playwright's defaults, which change between releases.
 */
export const chromiumFlags = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
] as const;

/** How long launching and closing may take before the test fails (a cold start here is ~1 s). */
const launchTimeoutMs = 30_000;
const closeTimeoutMs = 10_000;
/** Default for each wait and navigation: a test's page waits fail in seconds, not Playwright's default 30 s. */
const actionTimeoutMs = 10_000;

export interface LaunchedBrowser {
  /** The browser; its newContext() gives further isolated contexts (incognito-like), closed with it. */
  browser: Browser;
  /** The one context, on the launch's own fresh profile. */
  context: BrowserContext;
  /** The page the browser opened with. */
  page: Page;
  /** Path of the chromium that runs (Debian's /usr/bin/chromium unless PATH has another). */
  executablePath: string;
  /** Closes the browser (killing it if it does not close in time) and removes its temp dir. Idempotent; never skips the cleanup, and rejects afterwards if the close failed. */
  close(): Promise<void>;
}

const setupScript = new URL("../../../scripts/setup-chromium.mjs", import.meta.url);

/** The chromium to launch: from scripts/setup-chromium.mjs, which installs Debian's when there is none and throws (loudly) when it cannot. */
export async function chromiumPath(): Promise<string> {
  const mod = (await import(setupScript.href)) as { ensureChromium(): Promise<string> };
  return mod.ensureChromium();
}

/**
 * PIDs of the live processes with an argument inside `root`: only processes of a browser launched
 * here on that dir (the browser, its zygotes and renderers name the profile; the crash handlers
 * it daemonizes, which outlive it briefly, name the crash database under its HOME). A zombie has
 * an empty command line and is not listed.
 */
function processesUnder(root: string): number[] {
  const pids: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const argv = readFileSync(`/proc/${name}/cmdline`, "utf8").split("\0");
      if (argv.some((a) => a.includes(`${root}/`))) pids.push(Number(name));
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return pids;
}

function timeout(ms: number, what: string): { promise: Promise<never>; cancel(): void } {
  let timer: NodeJS.Timeout | undefined;
  const promise = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms);
  });
  return { promise, cancel: () => clearTimeout(timer) };
}

/**
 * Launches headless chromium with `chromiumFlags` on a fresh profile.
 *
 * Why launchPersistentContext rather than launch(): Playwright refuses --user-data-dir in
 * `args`, and launch() would make its own profile under os.tmpdir(), where this code cannot
 * see it. With a persistent context on a profile inside our own temp dir, together with
 * `artifactsDir` and the browser's HOME and TMPDIR there too, every file the browser writes
 * (Debian's chromium otherwise adds ~/.config/chromium and ~/.cache/dconf) is in one dir that
 * close() removes, and that dir's path identifies this browser's processes for the
 * last-resort kill. The profile is new on each launch, so a test starts from a clean browser.
 */
export async function launchBrowser(): Promise<LaunchedBrowser> {
  const executablePath = await chromiumPath();
  const root = mkdtempSync(join(tmpdir(), "rill-browser-"));
  const profile = join(root, "profile");
  const home = join(root, "home");
  const scratch = join(root, "tmp");
  for (const dir of [home, scratch]) mkdirSync(dir);
  // A test process that dies without close() still takes the dir (Playwright kills the browser
  // on exit itself).
  const removeRoot = () => rmSync(root, { recursive: true, force: true, maxRetries: 3 });
  process.once("exit", removeRoot);

  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
  Object.assign(env, { HOME: home, XDG_CONFIG_HOME: join(home, ".config"), XDG_CACHE_HOME: join(home, ".cache"), TMPDIR: scratch });

  let context: BrowserContext;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath,
      headless: true,
      args: [...chromiumFlags],
      artifactsDir: join(root, "artifacts"),
      env,
      timeout: launchTimeoutMs,
    });
  } catch (e) {
    for (const pid of processesUnder(root)) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
    removeRoot();
    process.removeListener("exit", removeRoot);
    throw new Error(`cannot launch ${executablePath} with playwright-core (flags: ${chromiumFlags.join(" ")}): ${(e as Error).message}`, { cause: e });
  }
  context.setDefaultTimeout(actionTimeoutMs);
  context.setDefaultNavigationTimeout(actionTimeoutMs);

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      let failure: unknown;
      const limit = timeout(closeTimeoutMs, "closing chromium");
      try {
        await Promise.race([context.close(), limit.promise]);
      } catch (e) {
        failure = e;
      } finally {
        limit.cancel();
      }
      // Whatever still runs on our dir (a browser that would not close, a stray renderer, a
      // crash handler) is ours: kill it by PID, and wait for it to go before removing the dir
      // it writes to.
      const until = Date.now() + 5_000;
      for (let pids = processesUnder(root); pids.length > 0; pids = processesUnder(root)) {
        for (const pid of pids) {
          try {
            process.kill(pid, "SIGKILL");
          } catch {
            // already gone
          }
        }
        if (Date.now() > until) {
          failure ??= new Error(`chromium processes ${pids.join(", ")} on ${root} survived SIGKILL`);
          break;
        }
        await new Promise((r) => setTimeout(r, 20));
      }
      removeRoot();
      process.removeListener("exit", removeRoot);
      if (failure !== undefined) throw failure;
    })());

  try {
    const browser = context.browser();
    if (browser === null) throw new Error("playwright-core gave the persistent context no Browser");
    const page = context.pages()[0] ?? (await context.newPage());
    return { browser, context, page, executablePath, close };
  } catch (e) {
    await close().catch(() => {});
    throw e;
  }
}

export interface PageProblems {
  /** What went wrong so far, one line each: console errors and assertion failures, uncaught exceptions and rejections, crashes. */
  readonly list: readonly string[];
  /** Fails the test, listing each problem, unless there were none. */
  assertNone(): void;
  /** Stops watching. */
  stop(): void;
}

/**
 * Watches `page` for what a person would see as broken in the devtools console: console.error
 * and failed console.assert (which include resources the browser failed to load), uncaught
 * exceptions and unhandled rejections (`pageerror`), and a crash of the page.
 */
export function watchPageProblems(page: Page): PageProblems {
  const list: string[] = [];
  const onConsole = (msg: ConsoleMessage) => {
    if (msg.type() !== "error" && msg.type() !== "assert") return;
    const { url, lineNumber, columnNumber } = msg.location();
    list.push(`console.${msg.type()}: ${msg.text()}${url === "" ? "" : ` (${url}:${lineNumber}:${columnNumber})`}`);
  };
  const onPageError = (e: Error) => list.push(`uncaught: ${e.stack ?? e.message}`);
  const onCrash = () => list.push("the page crashed");
  page.on("console", onConsole);
  page.on("pageerror", onPageError);
  page.on("crash", onCrash);
  return {
    list,
    assertNone() {
      assert.deepEqual(list, [], `the page reported ${list.length} problem(s):\n${list.join("\n")}`);
    },
    stop() {
      page.off("console", onConsole);
      page.off("pageerror", onPageError);
      page.off("crash", onCrash);
    },
  };
}
