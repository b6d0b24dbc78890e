import { test } from "node:test";
import assert from "node:assert/strict";
import { Registry } from "../../src/metrics/index.js";

test("a bound counter or histogram series and adds by labels land in the same series", () => {
  const r = new Registry();
  const c = r.counter("calls_total", "Calls.", ["method"]);
  const h = r.histogram("size", "Sizes.", ["method"], [1, 10]);
  const boundC = c.bind({ method: "A" });
  const boundH = h.bind({ method: "A" });
  boundC.add();
  c.add({ method: "A" }, 2);
  c.add({ method: "B" });
  boundH.observe(0.5);
  h.observe({ method: "A" }, 5);
  boundH.observe(50);
  assert.equal(
    r.render(),
    [
      "# HELP calls_total Calls.",
      "# TYPE calls_total counter",
      'calls_total{method="A"} 3',
      'calls_total{method="B"} 1',
      "# HELP size Sizes.",
      "# TYPE size histogram",
      'size_bucket{method="A",le="1"} 1',
      'size_bucket{method="A",le="10"} 2',
      'size_bucket{method="A",le="+Inf"} 3',
      'size_sum{method="A"} 55.5',
      'size_count{method="A"} 3',
      "",
    ].join("\n"),
  );
});

test("binding a series that has seen nothing shows it at zero, as a first add would", () => {
  const r = new Registry();
  r.counter("c_total", "C.", ["k"]).bind({ k: "v" });
  assert.match(r.render(), /^c_total\{k="v"\} 0$/m);
});
