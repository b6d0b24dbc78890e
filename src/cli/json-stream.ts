/**
 * Splits a stream of text into JSON objects as they complete, so `-d @` can send each request
 * the moment its closing brace arrives (interactive use: type one, see the answer, type the next).
 *
 * Objects may span lines or share one; whitespace and commas between them are ignored (so both
 * `{..}\n{..}` and `{..},{..}` work). Anything else between objects is an error naming the
 * position, never a silent skip.
 */
import { CliError } from "./output.js";

/** Incremental splitter: feed chunks, get the complete objects' texts back. */
export class JsonObjectSplitter {
  private buffer = "";
  private depth = 0;
  private inString = false;
  private escaped = false;
  private start = -1;
  private consumed = 0;

  /** Adds `chunk`; returns the text of every object completed by it. */
  push(chunk: string): string[] {
    const out: string[] = [];
    const base = this.buffer.length;
    this.buffer += chunk;
    for (let i = base; i < this.buffer.length; i++) {
      const c = this.buffer[i]!;
      if (this.depth === 0) {
        if (c === "{") {
          this.start = i;
          this.depth = 1;
        } else if (!/[\s,]/.test(c)) {
          throw new CliError(`expected a JSON object at input offset ${this.consumed + i}, found ${JSON.stringify(this.buffer.slice(i, i + 20))}`);
        }
        continue;
      }
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (c === "\\") this.escaped = true;
        else if (c === '"') this.inString = false;
        continue;
      }
      if (c === '"') this.inString = true;
      else if (c === "{" || c === "[") this.depth++;
      else if (c === "}" || c === "]") {
        this.depth--;
        if (this.depth === 0) out.push(this.buffer.slice(this.start, i + 1));
      }
    }
    // Keep only the unfinished object (if any) so the buffer does not grow with the stream.
    const keepFrom = this.depth > 0 ? this.start : this.buffer.length;
    this.consumed += keepFrom;
    this.buffer = this.buffer.slice(keepFrom);
    if (this.depth > 0) this.start = 0;
    return out;
  }

  /** Declares the end of input; throws if an object was left unfinished. */
  end(): void {
    if (this.depth > 0) throw new CliError(`the input ended inside a JSON object: ${JSON.stringify(this.buffer.slice(0, 60))}`);
  }
}

/** Every object in `text` (for `-d '{..} {..}'`). */
export function splitJsonObjects(text: string): string[] {
  const s = new JsonObjectSplitter();
  const out = s.push(text);
  s.end();
  return out;
}

/** Yields each object from `stream` as soon as it is complete. */
export async function* readJsonObjects(stream: NodeJS.ReadableStream): AsyncGenerator<string> {
  const s = new JsonObjectSplitter();
  stream.setEncoding?.("utf8");
  for await (const chunk of stream as AsyncIterable<string | Buffer>) {
    yield* s.push(typeof chunk === "string" ? chunk : chunk.toString("utf8"));
  }
  s.end();
}
