/**
 * Transfer progress for a terminal: a bar redrawn in place on a TTY (at most ten times a
 * second), plain lines at every 10% otherwise (logs, pipes, CI).
 */
import type { TransferProgress } from "../../src/transfer/index.js";

const MB = 1e6;

/** One line describing `p`, with a bar of `width` cells when the total is known. */
export function formatProgress(label: string, p: TransferProgress, width = 24): string {
  const rate = `${(p.bytesPerSecond / MB).toFixed(1)} MB/s`;
  if (p.total === undefined || p.total === 0) return `${label} ${(p.bytes / MB).toFixed(1)} MB ${rate}`;
  const fraction = Math.min(1, p.bytes / p.total);
  const filled = Math.round(fraction * width);
  const bar = "#".repeat(filled) + "-".repeat(width - filled);
  return `${label} [${bar}] ${Math.floor(fraction * 100)}% ${(p.bytes / MB).toFixed(1)}/${(p.total / MB).toFixed(1)} MB ${rate}`;
}

/** A progress callback drawing on `out` (stderr by default). */
export function progressBar(label: string, out: NodeJS.WriteStream = process.stderr): (p: TransferProgress) => void {
  let lastDraw = 0;
  let lastStep = -1;
  return (p) => {
    if (out.isTTY) {
      const now = performance.now();
      if (!p.done && now - lastDraw < 100) return;
      lastDraw = now;
      out.write(`\r${formatProgress(label, p, Math.max(10, Math.min(40, (out.columns ?? 80) - label.length - 40)))}\x1b[K${p.done ? "\n" : ""}`);
      return;
    }
    const step = p.total ? Math.floor((10 * p.bytes) / p.total) : Math.floor(p.bytes / (10 * MB));
    if (step === lastStep && !p.done) return;
    lastStep = step;
    out.write(`${formatProgress(label, p)}\n`);
  };
}
