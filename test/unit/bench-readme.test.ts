import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { figure, floorOf, judge, readResults, regenerate, steadyMb, steadySpread, type ResultsFile } from "../../bench/readme.js";
import type { ImplResult, RunResult } from "../../bench/report.js";
import { summarize } from "../../bench/report.js";
import type { Target } from "../../bench/targets.js";

const root = fileURLToPath(new URL("../../../", import.meta.url));

test("the README's benchmark tables are exactly what their named results files give (run `npm run bench:readme` when this fails)", () => {
  const readme = readFileSync(`${root}README.md`, "utf8");
  const named = [...readme.matchAll(/<!-- bench:(\w+) (\S+) -->/g)].map((m) => m[1]);
  assert.ok(named.includes("table") && named.includes("targets"), "the README has the generated table and targets sections");
  assert.equal(regenerate(readme, (p) => readResults(root, p)), readme);
});

/** One implementation's result over rounds of one metric. */
const rounds = (values: number[], key = "rate"): RunResult[] => values.map((v) => ({ [key]: v }));

test("a figure is steady only with two or more rounds within the stated spread of its median", () => {
  const r = summarize({ a: rounds([100, 110, 120]), b: rounds([100, 200, 300]), c: rounds([100]) }, "a");
  const a = figure(r.a, "rate")!;
  assert.equal(a.value, 110);
  assert.ok(Math.abs(a.spread - 10 / 110) < 1e-9);
  assert.equal(a.steady, true);
  assert.equal(figure(r.b, "rate")!.steady, false, `±50 % is beyond ±${steadySpread * 100} %`);
  assert.equal(figure(r.c, "rate")!.steady, false, "one round has no spread to trust");
  assert.equal(figure(r.a, "missing"), undefined);
});

test("with five rounds or more the highest and lowest are left out of the spread; memory growths are judged in MB", () => {
  const r = summarize({ a: rounds([100, 101, 102, 103, 300]), b: rounds([0, 0, 1, 2, 40], "rssGrowth") });
  const a = figure(r.a, "rate")!;
  assert.equal(a.steady, true, "one disturbed round does not decide the spread");
  assert.deepEqual([a.lo, a.hi], [101, 103]);
  const b = figure(r.b, "rssGrowth", "mb")!;
  assert.equal(b.steady, true, `0–2 MB is within ±${steadyMb} MB though far from its median in share`);
  assert.equal(figure(summarize({ c: rounds([0, 30, 60], "rssGrowth") }).c, "rssGrowth", "mb")!.steady, false);
});

test("a target is met or not on the medians' ratio, and not judged when either side's rounds disagree", () => {
  const t: Target = { label: "x", scenario: "unary-100", metric: "rate", against: "raw", goal: "at least", limit: 0.8, shown: "≥ 0.8×" };
  const judged = (rill: number[], raw: number[]): string => judge(t, { "unary-100": summarize({ raw: rounds(raw), rill: rounds(rill) }) as Record<string, ImplResult> }).verdict;
  assert.equal(judged([85, 86, 84], [100, 101, 99]), "met");
  assert.equal(judged([70, 71, 69], [100, 101, 99]), "**not met**");
  assert.match(judged([20, 85, 150], [100, 101, 99]), /^unsteady rounds: not judged \(met on the medians\)$/);
  assert.equal(judge({ ...t, scenario: "unary-1" }, {}).verdict, "not measured");
});

test("a target without a baseline compares the value itself", () => {
  const t: Target = { label: "y", scenario: "idle-streams", metric: "heapPerSentStream", goal: "at most", limit: 3000, shown: "≤ 3,000 B" };
  const results = { "idle-streams": summarize({ rill: rounds([2900, 2950, 3000], "heapPerSentStream") }) } as ResultsFile["results"];
  assert.deepEqual(judge(t, results), { value: "2,950 B", verdict: "met" });
  const once = { "idle-streams": summarize({ rill: rounds([3100], "heapPerSentStream") }) } as ResultsFile["results"];
  assert.equal(judge(t, once).verdict, "one round: not judged (not met on the medians)");
});

test("a row with a floor shows the floor's ratio to raw and Rill's to the floor, and says so when any rounds disagree", () => {
  const t: Target = { label: "x", scenario: "server-stream-64", metric: "rate", against: "raw", goal: "at least", limit: 0.75, shown: "≥ 0.75× raw", floor: "raw-iter" };
  const results = { "server-stream-64": summarize({ raw: rounds([100, 101, 99]), "raw-iter": rounds([50, 51, 49]), rill: rounds([40, 41, 39]) }) as Record<string, ImplResult> };
  assert.equal(floorOf(t, results), "0.50× raw; Rill 0.80× the floor");
  const unsteady = { "server-stream-64": summarize({ raw: rounds([100, 101, 99]), "raw-iter": rounds([20, 50, 90]), rill: rounds([40, 41, 39]) }) as Record<string, ImplResult> };
  assert.match(floorOf(t, unsteady), /\(unsteady rounds\)$/);
  const { floor: _, ...withoutFloor } = t;
  assert.equal(floorOf(withoutFloor, results), "—");
  assert.equal(floorOf(t, {}), "not measured");
});
