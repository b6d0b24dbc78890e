import type { EventLog } from "../../src/services/pubsub/index.js";

/**
 * A position before every retained event of any topic: the memory log's epoch is the log's, so the
 * head of a topic that has no event serves; the Redis log's epochs are per topic, and its bare
 * "0-0" is the start of whatever history a topic has.
 */
export async function origin(log: EventLog): Promise<string> {
  return log.kind === "redis" ? "0-0" : log.head(`never-published-${Math.random()}`);
}
