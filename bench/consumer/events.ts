/**
 * Realistic CapturedEvents for the consumer benchmark: the shape a web SDK sends (about twenty properties:
 * browser, OS, screen, URL parts, session and window ids, referrer, library, feature flags; `amount` on
 * purchases), so that decode, toRow and the JSON the consumer re-serialises cost what they cost in production.
 *
 * Filling a topic with millions of them must not be the slow part of the benchmark, so values are built from a
 * pool of pre-serialised templates: each template is the JSON of a complete event split around its uuid, and an
 * event is `head + crypto.randomUUID() + tail` (uuids must be unique: the table is a ReplacingMergeTree on uuid).
 */
import { type CapturedEvent, encodeCapturedEvent } from "../../lib/events/captured-event.ts";
import { createRng } from "../../lib/events/generator.ts";

const EVENTS = [
  ["$pageview", 50],
  ["$autocapture", 25],
  ["$pageleave", 10],
  ["signup", 5],
  ["activate", 4],
  ["purchase", 3],
  ["$identify", 3],
] as const;
const BROWSERS = [
  ["Chrome", 126],
  ["Safari", 17.5],
  ["Firefox", 127],
  ["Microsoft Edge", 125],
  ["Samsung Internet", 25],
] as const;
const SYSTEMS = [
  ["Windows", "10.0", "Desktop", 1920, 1080],
  ["Mac OS X", "14.5.0", "Desktop", 1512, 982],
  ["iOS", "17.5.1", "Mobile", 390, 844],
  ["Android", "14.0.0", "Mobile", 412, 915],
  ["Linux", "", "Desktop", 2560, 1440],
] as const;
const PATHS = ["/", "/pricing", "/docs/getting-started", "/blog/how-we-scaled-ingestion", "/signup", "/app/dashboard", "/app/insights/trends", "/checkout"];
const REFERRERS = ["$direct", "https://www.google.com/", "https://news.ycombinator.com/", "https://twitter.com/", "https://github.com/"];
const FLAGS = ["new-onboarding", "beta-query-engine", "pricing-v3", "dark-mode"];

function pick<T>(r: () => number, xs: readonly T[]): T {
  return xs[Math.floor(r() * xs.length)]!;
}

function pickEvent(r: () => number): string {
  let x = r() * 100;
  for (const [name, w] of EVENTS) {
    x -= w;
    if (x < 0) return name;
  }
  return "$pageview";
}

function hexId(r: () => number, n: number): string {
  let s = "";
  for (let i = 0; i < n; i++) s += Math.floor(r() * 16).toString(16);
  return s;
}

/** One realistic event (uuid placeholder filled by the caller). `extra` properties are added last. */
export function realisticEvent(team: number, r: () => number, at: Date, extra: Record<string, unknown> = {}): CapturedEvent {
  const event = pickEvent(r);
  const [browser, browserVersion] = pick(r, BROWSERS);
  const [os, osVersion, device, sw, sh] = pick(r, SYSTEMS);
  const path = pick(r, PATHS);
  const referrer = pick(r, REFERRERS);
  const user = Math.floor(r() * 200_000);
  const iso = at.toISOString();
  const properties: Record<string, unknown> = {
    $current_url: `https://app.example.com${path}${r() < 0.3 ? "?utm_source=newsletter&utm_medium=email&utm_campaign=launch" : ""}`,
    $host: "app.example.com",
    $pathname: path,
    $browser: browser,
    $browser_version: browserVersion,
    $os: os,
    $os_version: osVersion,
    $device_type: device,
    $screen_width: sw,
    $screen_height: sh,
    $viewport_width: sw - 16,
    $viewport_height: sh - 120,
    $lib: "web",
    $lib_version: "1.160.3",
    $insert_id: hexId(r, 16),
    $time: at.getTime() / 1000,
    $session_id: `0190${hexId(r, 4)}-${hexId(r, 4)}-7${hexId(r, 3)}-8${hexId(r, 3)}-${hexId(r, 12)}`,
    $window_id: `0190${hexId(r, 4)}-${hexId(r, 4)}-7${hexId(r, 3)}-9${hexId(r, 3)}-${hexId(r, 12)}`,
    $referrer: referrer,
    $referring_domain: referrer === "$direct" ? "$direct" : new URL(referrer).host,
    $active_feature_flags: FLAGS.filter(() => r() < 0.4),
    plan: r() < 0.8 ? "free" : "pro",
    is_first: r() < 0.05,
    ...(event === "purchase" ? { amount: Math.round(r() * 50_000) / 100, currency: "EUR" } : {}),
    ...extra,
  };
  return {
    v: 1,
    uuid: "00000000-0000-4000-8000-000000000000",
    team_id: team,
    event,
    distinct_id: `user-${user.toString(36)}-${hexId(r, 8)}`,
    timestamp: iso,
    properties,
    ip: `203.0.113.${Math.floor(r() * 250) + 1}`,
    received_at: iso,
  };
}

const UUID_SLOT = '"uuid":"00000000-0000-4000-8000-000000000000"';

/** A pool of serialised events split around the uuid, for cheap bulk generation. */
export class EventTemplates {
  private readonly heads: string[] = [];
  private readonly tails: string[] = [];
  private readonly keys: string[] = [];
  private next = 0;

  constructor(team: number, size = 4096, seed = 42, at = new Date()) {
    const r = createRng(seed);
    for (let i = 0; i < size; i++) {
      // Spread event times over the last hour, like a live stream.
      const e = realisticEvent(team, r, new Date(at.getTime() - Math.floor(r() * 3_600_000)));
      const json = encodeCapturedEvent(e);
      const k = json.indexOf(UUID_SLOT);
      if (k < 0) throw new Error("template: uuid slot not found");
      this.heads.push(`${json.slice(0, k)}"uuid":"`);
      this.tails.push(json.slice(k + UUID_SLOT.length - 1));
      this.keys.push(e.distinct_id);
    }
  }

  /** Next event: Kafka key (distinct_id) and value (JSON) with a fresh uuid. */
  take(): { key: string; value: string } {
    const i = this.next++ % this.heads.length;
    return { key: this.keys[i]!, value: this.heads[i]! + crypto.randomUUID() + this.tails[i]! };
  }

  /** Average value size in bytes over the pool. */
  averageBytes(): number {
    let n = 0;
    for (let i = 0; i < this.heads.length; i++) n += Buffer.byteLength(this.heads[i]! + this.tails[i]!) + 36;
    return n / this.heads.length;
  }
}

