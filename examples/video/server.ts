/**
 * The video catalogue (mission §4): a service meant to be driven from the command line.
 *
 * AddVideo stores, ListVideos streams the catalogue, GetVideos answers once the client has
 * streamed all its ids, GetVideo answers each id as it arrives (interactive). The catalogue
 * lives in memory and starts with a few videos so there is something to list. Responses are
 * gzip-compressed for every client that accepts gzip (the handlers ask for it per call).
 *
 * Run alone: `node dist/examples/video/server.js` (PORT, default 50051); it serves health,
 * reflection, gzip and a logging interceptor, so `rill list 127.0.0.1:50051` works with no
 * .proto file at hand and every call leaves a line on stderr.
 */
import { pathToFileURL } from "node:url";
import { Code, createServer, RpcError, type Server, type ServiceImpl } from "../../src/index.js";
import { createLoggingInterceptor } from "../../src/interceptors/logging.js";
import { serveHealth } from "../../src/services/health/index.js";
import { serveReflection } from "../../src/services/reflection/index.js";
import { VideoService, type Video } from "../../gen/video/video_pb.js";

/** A video without its message type tag: what the store keeps. */
export type VideoRecord = Pick<Video, "id" | "title" | "author" | "url" | "duration">;

/** The catalogue every new store starts with. */
export const sampleVideos: readonly VideoRecord[] = [
  { id: "v1", title: "Streams that survive failure", author: "ada", url: "https://videos.example/v1", duration: 754 },
  { id: "v2", title: "Backpressure in one picture", author: "grace", url: "https://videos.example/v2", duration: 312 },
  { id: "v3", title: "HTTP/2 flow control, slowly", author: "ada", url: "https://videos.example/v3", duration: 1260 },
];

/** Options of the video service. */
export interface VideoOptions {
  /** The videos the catalogue starts with. Default `sampleVideos`. */
  videos?: readonly VideoRecord[];
}

/** The VideoService implementation, ready for `server.add(VideoService, videoService())`. */
export function videoService(options: VideoOptions = {}): ServiceImpl<typeof VideoService> {
  const store = new Map<string, VideoRecord>();
  for (const v of options.videos ?? sampleVideos) store.set(v.id, { ...v });
  let nextId = store.size + 1;

  const find = (id: string): VideoRecord => {
    const v = store.get(id);
    if (v === undefined) {
      throw new RpcError(Code.NotFound, `no video with id "${id}" (known ids: ${[...store.keys()].join(", ") || "none"})`);
    }
    return v;
  };

  return {
    addVideo(video, ctx) {
      ctx.setResponseCompression("gzip");
      if (video.title.trim() === "") throw new RpcError(Code.InvalidArgument, "a video needs a title");
      if (video.duration < 0) throw new RpcError(Code.InvalidArgument, `duration must be 0 or more seconds, got ${video.duration}`);
      let id = video.id;
      if (id === "") {
        while (store.has(`v${nextId}`)) nextId++;
        id = `v${nextId++}`;
      }
      store.set(id, { id, title: video.title, author: video.author, url: video.url, duration: video.duration });
      return { id };
    },

    async *listVideos(req, ctx) {
      ctx.setResponseCompression("gzip");
      for (const v of [...store.values()]) if (req.author === "" || v.author === req.author) yield v;
    },

    async getVideos(ids, ctx) {
      ctx.setResponseCompression("gzip");
      const videos: VideoRecord[] = [];
      for await (const { id } of ids) videos.push(find(id));
      return { videos };
    },

    async *getVideo(ids, ctx) {
      ctx.setResponseCompression("gzip");
      for await (const { id } of ids) yield find(id);
    },
  };
}

/**
 * Adds the video catalogue to `server`. Health and reflection are added by whoever assembles
 * the server (they describe every service on it, so they are added once, last).
 */
export function addVideoService(server: Server, options: VideoOptions = {}): Server {
  return server.add(VideoService, videoService(options));
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const port = Number(process.env.PORT ?? 50051);
  // One log line per call on stderr: method, status, duration, message counts, peer.
  const server = createServer({ interceptors: [createLoggingInterceptor()] });
  addVideoService(server);
  serveReflection(server);
  serveHealth(server);
  const addr = await server.listen({ host: "127.0.0.1", port });
  console.log(`VideoService listening on ${addr.host}:${addr.port} (health, reflection, gzip, call logging)`);
  const stop = () => void server.shutdown({ graceMs: 2000 });
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}
