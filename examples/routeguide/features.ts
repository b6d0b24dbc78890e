/**
 * RouteGuide feature database and geometry: pure functions, no I/O besides reading the shipped JSON.
 *
 * Coordinates are E7 (degrees × 10^7, rounded), as in `route_guide.proto`. A feature with an empty
 * name marks a known location with nothing at it; it "exists" only when it has a name.
 */
import { readFileSync } from "node:fs";
import { create } from "@bufbuild/protobuf";
import { FeatureSchema, type Feature } from "../../gen/routeguide/route_guide_pb.js";

/** A point as any peer holds it: a generated `Point` or a plain object with the same fields. */
export interface PointLike {
  latitude: number;
  longitude: number;
}

/** A rectangle as any peer holds it: a generated `Rectangle` or a plain object with the same fields. */
export interface RectangleLike {
  lo?: PointLike | null | undefined;
  hi?: PointLike | null | undefined;
}

/**
 * Where the shipped database lives. This module compiles to `dist/examples/routeguide/`, so the path
 * climbs back to the repository root and into the source folder, where the JSON stays.
 */
export const defaultDatabaseUrl = new URL("../../../examples/routeguide/route_guide_db.json", import.meta.url);

/** Mean Earth radius in meters, as the haversine formula uses it. */
const earthRadiusMeters = 6_371_000;

/** One E7 unit in degrees. */
const e7 = 1e7;

/**
 * Loads the feature database (by default the one shipped with the example).
 * Throws an Error naming the file and the bad entry when an entry lacks an integer location.
 */
export function loadFeatures(url: URL = defaultDatabaseUrl): Feature[] {
  const raw: unknown = JSON.parse(readFileSync(url, "utf8"));
  if (!Array.isArray(raw)) throw new Error(`${url.pathname}: expected a JSON array of features`);
  return raw.map((entry: unknown, i) => {
    const e = entry as { name?: unknown; location?: { latitude?: unknown; longitude?: unknown } };
    const latitude = e.location?.latitude;
    const longitude = e.location?.longitude;
    if (!Number.isInteger(latitude) || !Number.isInteger(longitude)) {
      throw new Error(`${url.pathname}: entry ${i} has no integer E7 location`);
    }
    return create(FeatureSchema, {
      name: typeof e.name === "string" ? e.name : "",
      location: { latitude: latitude as number, longitude: longitude as number },
    });
  });
}

/** A stable string key for a point ("latitude,longitude"), for maps keyed by location. */
export function pointKey(p: PointLike | null | undefined): string {
  return `${p?.latitude ?? 0},${p?.longitude ?? 0}`;
}

/** Whether two points are the same location. A missing point is the origin (0, 0), as on the wire. */
export function samePoint(a: PointLike | null | undefined, b: PointLike | null | undefined): boolean {
  return pointKey(a) === pointKey(b);
}

/**
 * Whether `p` lies inside `rect`, borders included. `lo` and `hi` may be any two diagonally
 * opposite corners; a missing corner is the origin.
 */
export function inRectangle(p: PointLike | null | undefined, rect: RectangleLike): boolean {
  const lat = p?.latitude ?? 0;
  const lng = p?.longitude ?? 0;
  const lo = rect.lo ?? { latitude: 0, longitude: 0 };
  const hi = rect.hi ?? { latitude: 0, longitude: 0 };
  return (
    lat >= Math.min(lo.latitude, hi.latitude) &&
    lat <= Math.max(lo.latitude, hi.latitude) &&
    lng >= Math.min(lo.longitude, hi.longitude) &&
    lng <= Math.max(lo.longitude, hi.longitude)
  );
}

/**
 * The great-circle distance between two points in meters (haversine formula on a sphere of
 * radius 6,371 km). Not rounded.
 */
export function distanceMeters(p1: PointLike, p2: PointLike): number {
  const rad = (e7deg: number): number => ((e7deg / e7) * Math.PI) / 180;
  const lat1 = rad(p1.latitude);
  const lat2 = rad(p2.latitude);
  const dLat = lat2 - lat1;
  const dLng = rad(p2.longitude) - rad(p1.longitude);
  const a = Math.sin(dLat / 2) ** 2 + Math.cos(lat1) * Math.cos(lat2) * Math.sin(dLng / 2) ** 2;
  return 2 * earthRadiusMeters * Math.atan2(Math.sqrt(a), Math.sqrt(1 - a));
}

/** The named feature at exactly `p`, or undefined when there is none (unnamed entries do not count). */
export function featureAt(features: readonly Feature[], p: PointLike | null | undefined): Feature | undefined {
  const key = pointKey(p);
  return features.find((f) => f.name !== "" && pointKey(f.location) === key);
}

/** The named features inside `rect`, in database order. */
export function featuresIn(features: readonly Feature[], rect: RectangleLike): Feature[] {
  return features.filter((f) => f.name !== "" && inRectangle(f.location, rect));
}

/** A route summary as any peer holds it (camelCase field names of `routeguide.RouteSummary`). */
export interface RouteSummaryLike {
  pointCount: number;
  featureCount: number;
  distance: number;
  elapsedTime: number;
}

/**
 * Accumulates a RecordRoute call: points, named features visited, distance travelled (meters,
 * rounded once at the end) and whole seconds elapsed since the recorder was created (the call start).
 */
export function createRouteRecorder(
  features: readonly Feature[],
  now: () => number = Date.now,
): { add(p: PointLike): void; summary(): RouteSummaryLike } {
  const start = now();
  let pointCount = 0;
  let featureCount = 0;
  let distance = 0;
  let previous: PointLike | undefined;
  return {
    add(p) {
      pointCount++;
      if (featureAt(features, p) !== undefined) featureCount++;
      if (previous !== undefined) distance += distanceMeters(previous, p);
      previous = { latitude: p.latitude, longitude: p.longitude };
    },
    summary() {
      return { pointCount, featureCount, distance: Math.round(distance), elapsedTime: Math.floor((now() - start) / 1000) };
    },
  };
}

/** A route note as any peer holds it. */
export interface RouteNoteLike {
  location?: PointLike | null | undefined;
  message: string;
}

/**
 * The shared RouteChat board: `post` returns the notes posted earlier at the same location (oldest
 * first), then stores the new one. State lives in the returned object, so each server has its own.
 */
export function createNoteBoard(): { post(note: RouteNoteLike): Array<{ location: PointLike; message: string }> } {
  const notes = new Map<string, Array<{ location: PointLike; message: string }>>();
  return {
    post(note) {
      const key = pointKey(note.location);
      const here = notes.get(key) ?? [];
      const previous = here.slice();
      here.push({ location: { latitude: note.location?.latitude ?? 0, longitude: note.location?.longitude ?? 0 }, message: note.message });
      notes.set(key, here);
      return previous;
    },
  };
}
