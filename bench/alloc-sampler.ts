/**
 * What a process allocates over a stretch, by code area (code-area.ts) and, for Rill's own code,
 * by function: V8's sampling heap profiler, counting objects collected since as well, so the
 * bytes are all that was allocated, not what survived. Used by warmup-curve.ts `--alloc` on both
 * of its processes (the server answers the "alloc" request, server.ts).
 */
import { Session } from "node:inspector/promises";
import { codeArea } from "./code-area.js";

/** Sampled bytes allocated, by area and by Rill function ("rill src/otel start:239"). */
export interface AllocReport {
  areas: Record<string, number>;
  rillFunctions: Record<string, number>;
}

interface SampleNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: SampleNode[];
}

export class AllocSampler {
  private session: Session | undefined;

  async start(): Promise<void> {
    const session = (this.session = new Session());
    session.connect();
    // A sample every 1 KiB on average: enough for per-call shares over a few seconds of load.
    await session.post("HeapProfiler.startSampling", { samplingInterval: 1024, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
  }

  async stop(): Promise<AllocReport> {
    const session = this.session;
    if (session === undefined) throw new Error("the allocation sampler was not started");
    this.session = undefined;
    const { profile } = (await session.post("HeapProfiler.stopSampling")) as { profile: { head: SampleNode } };
    session.disconnect();
    const areas: Record<string, number> = {};
    const rillFunctions: Record<string, number> = {};
    const walk = (n: SampleNode): void => {
      if (n.selfSize > 0) {
        const { url, functionName, lineNumber } = n.callFrame;
        const area = codeArea(url, functionName);
        areas[area] = (areas[area] ?? 0) + n.selfSize;
        if (area.startsWith("rill ")) {
          const fn = `${area} ${functionName || "(anonymous)"}:${lineNumber + 1}`;
          rillFunctions[fn] = (rillFunctions[fn] ?? 0) + n.selfSize;
        }
      }
      for (const c of n.children) walk(c);
    };
    walk(profile.head);
    return { areas, rillFunctions };
  }
}
