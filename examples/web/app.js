// The demo page's script: a browser ES module, loaded as it is (no bundler). The packages come
// through the page's import map; Rill's compiled modules from /rill/.
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { subscribeTopic } from "/rill/src/web/index.js";
import { VideoService } from "/rill/gen/video/video_pb.js";

const params = new URLSearchParams(location.search);
const topic = params.get("topic") ?? "demo.ticks";
const transport = createConnectTransport({ baseUrl: location.origin });
const $ = (id) => document.getElementById(id);
const decoder = new TextDecoder();

// What a test (or a curious user in the console) can read: every event id received, in order,
// and every state the subscription went through.
const seen = { ids: [], payloads: [], states: [], errors: [] };
window.rillDemo = seen;

$("topic").textContent = topic;
let reconnectedAt;
let caughtUp = 0;
let afterReconnect = false;

function show(state, detail) {
  seen.states.push(state);
  const el = $("state");
  el.textContent = state;
  el.className = `state ${state}`;
  if (state === "reconnecting") {
    reconnectedAt ??= Date.now();
    $("why").textContent = `${detail.error?.rawMessage ?? detail.error?.message ?? ""} · retrying in ${(detail.delayMs / 1000).toFixed(1)} s`;
  } else if (state === "live") {
    if (reconnectedAt !== undefined) {
      const gap = document.createElement("li");
      gap.className = "gap";
      gap.textContent = `disconnected for ${((Date.now() - reconnectedAt) / 1000).toFixed(1)} s; resumed after ${detail.after ?? "the start"}`;
      $("feed").prepend(gap);
      afterReconnect = true;
    }
    reconnectedAt = undefined;
    $("why").textContent = "";
  } else {
    $("why").textContent = "";
  }
}

/** The demo's ticks as a line of text; any other payload as it is. */
function describe(text) {
  try {
    const t = JSON.parse(text);
    if (typeof t.tick === "number") return `tick ${t.tick} · ${new Date(t.at).toLocaleTimeString()} · from server ${t.server}`;
  } catch {
    // not JSON: shown as sent
  }
  return text;
}

async function feed() {
  for (;;) {
    try {
      for await (const ev of subscribeTopic(transport, topic, { bookmarkIntervalMs: 2000, backoff: { initialMs: 250, maxMs: 2000 }, onState: show })) {
        seen.ids.push(ev.eventId);
        const text = decoder.decode(ev.payload);
        seen.payloads.push(text);
        if (afterReconnect) caughtUp++;
        $("count").textContent = String(seen.ids.length);
        $("last").textContent = ev.eventId;
        $("caught").textContent = String(caughtUp);
        const li = document.createElement("li");
        const id = document.createElement("span");
        id.className = "id";
        id.textContent = ev.eventId;
        li.append(id, document.createTextNode(describe(text)));
        $("feed").prepend(li);
        while ($("feed").children.length > 200) $("feed").lastElementChild.remove();
      }
      show("ended", {});
      return;
    } catch (e) {
      // The hub can no longer resume (its log lost the history: a restart without Redis). Said
      // on the page, never skipped silently; then the feed starts again from now.
      seen.errors.push(String(e?.message ?? e));
      show("failed", {});
      $("why").textContent = `${e?.rawMessage ?? e} · subscribing again from now`;
      await new Promise((r) => setTimeout(r, 2000));
    }
  }
}

async function numbers() {
  for (;;) {
    try {
      const s = await (await fetch("/stats.json", { cache: "no-store" })).json();
      for (const k of ["connections", "activeCalls", "messagesPerSecond", "callsPerSecond"]) $(k).textContent = String(s[k]);
      $("serverState").textContent = `uptime ${s.uptimeSeconds} s · ${s.calls} calls, ${s.messages} messages since start`;
    } catch {
      $("serverState").textContent = "the server is not answering";
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}

async function videos() {
  const client = createClient(VideoService, transport);
  const rows = [];
  for await (const v of client.listVideos({})) {
    const tr = document.createElement("tr");
    for (const text of [v.title, v.author, `${Math.floor(v.duration / 60)}:${String(v.duration % 60).padStart(2, "0")}`]) {
      const td = document.createElement("td");
      td.textContent = text;
      tr.append(td);
    }
    rows.push(tr);
  }
  $("videos").replaceChildren(...rows);
  $("videosMeta").textContent = `${rows.length} videos, streamed by VideoService.ListVideos`;
}

void feed();
void numbers();
videos().catch((e) => ($("videosMeta").textContent = `could not list videos: ${e.message}`));
