/**
 * Loads `@opentelemetry/api`, Rill's optional peer dependency, once, for `rill/otel` only.
 *
 * Why a wrapper instead of a static import: `rill` itself never loads the package, and a user who
 * imports `rill/otel` without it installed gets a message that says what to install instead of
 * node's bare ERR_MODULE_NOT_FOUND. The other modules of rill/otel import its types only
 * (`import type`), which compile away, so this is the one place it is loaded at run time.
 */
import type * as OtelApi from "@opentelemetry/api";

/** What `rill/otel` says when `@opentelemetry/api` cannot be found. */
export const missingApiMessage =
  "rill/otel needs the optional peer dependency @opentelemetry/api, which is not installed: npm install @opentelemetry/api";

async function load(): Promise<typeof OtelApi> {
  try {
    return await import("@opentelemetry/api");
  } catch (e) {
    const code = (e as { code?: unknown } | null)?.code;
    const about = String((e as { message?: unknown } | null)?.message ?? "").includes("@opentelemetry/api");
    if ((code === "ERR_MODULE_NOT_FOUND" || code === "MODULE_NOT_FOUND") && about) throw new Error(missingApiMessage, { cause: e });
    throw e;
  }
}

/** The `@opentelemetry/api` module (the global trace, context and propagation APIs). */
export const api: typeof OtelApi = await load();
