/** Shared by the capture tests: an in-process capture app over in-memory dependencies, and request helpers. */
import { Registry } from "prom-client";
import { createCaptureApp, type CaptureAppOptions } from "../../apps/capture/capture-app.ts";
import { createCaptureMetrics } from "../../apps/capture/capture-metrics.ts";
import { MemoryEventSink } from "../../apps/capture/memory-sink.ts";
import { createLogger } from "../../lib/log/logger.ts";
import type { Project, ProjectSource } from "../../lib/projects/project.ts";
import { ProjectResolver } from "../../lib/projects/project-resolver.ts";

export const TOKEN = "phc_testtokenAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
export const OTHER_TOKEN = "phc_testtokenBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB";
export const NOW = Date.parse("2024-05-01T12:00:00.000Z");

/** Projects in a Map; `down` makes every lookup fail like an unreachable PostgreSQL. */
export class MapProjects implements ProjectSource {
  readonly projects = new Map<string, Project>();
  down = false;
  lookups = 0;
  constructor(projects: Project[] = []) {
    for (const p of projects) this.projects.set(p.token, p);
  }
  async findByToken(token: string): Promise<Project | null> {
    this.lookups++;
    if (this.down) throw new Error("connection refused");
    return this.projects.get(token) ?? null;
  }
}

export interface TestApp {
  app: ReturnType<typeof createCaptureApp>;
  sink: MemoryEventSink;
  registry: Registry;
  source: MapProjects;
  options: CaptureAppOptions;
}

let uuidCounter = 0;
/** Deterministic UUIDv7-shaped ids: the timestamp part is real, the rest counts. */
export function fakeUuid(ms: number): string {
  const hex = Math.floor(ms).toString(16).padStart(12, "0");
  const n = (++uuidCounter).toString(16).padStart(15, "0");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-7${n.slice(0, 3)}-8${n.slice(3, 6)}-${n.slice(6, 15)}000`;
}

export function testApp(overrides: Partial<CaptureAppOptions> = {}): TestApp {
  const sink = (overrides.sink as MemoryEventSink | undefined) ?? new MemoryEventSink();
  const registry = new Registry();
  const source = new MapProjects([
    { id: 7, name: "test", token: TOKEN },
    { id: 8, name: "other", token: OTHER_TOKEN },
  ]);
  const options: CaptureAppOptions = {
    limits: { maxEventsPerRequest: 10_000, maxEventBytes: 1_000_000 },
    maxRequestBytes: 2 * 1024 * 1024,
    maxBatchBytes: 20 * 1024 * 1024,
    projects: new ProjectResolver({ source, redis: null, ttlMs: 60_000, redisTtlMs: 60_000, negativeTtlMs: 10_000, capacity: 100 }),
    rateLimit: null,
    sink,
    topics: { events: "events", overflow: "events_overflow" },
    produceTimeoutMs: 5000,
    retryAfterS: 5,
    captureIp: true,
    trustProxy: true,
    newUuid: fakeUuid,
    metrics: createCaptureMetrics(registry, () => sink.queueDepth()),
    logger: createLogger("capture-test", "silent"),
    now: () => NOW,
    ...overrides,
  };
  return { app: createCaptureApp(options), sink, registry, source, options };
}

export function post(
  t: TestApp,
  path: string,
  body: RequestInit["body"],
  headers: Record<string, string> = { "content-type": "application/json" },
): Promise<Response> {
  return Promise.resolve(t.app.request(path, { method: "POST", body, headers }));
}

export function postJson(t: TestApp, path: string, json: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return post(t, path, JSON.stringify(json), { "content-type": "application/json", ...headers });
}

/** Value of one series of a counter, or 0. */
export async function counter(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = registry.getSingleMetric(name);
  if (!metric) return 0;
  const data = await metric.get();
  const match = data.values.find((v) => Object.entries(labels).every(([k, want]) => String(v.labels[k]) === want));
  return match?.value ?? 0;
}

export function event(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return { event: "$pageview", distinct_id: "user-1", properties: { $current_url: "https://example.com" }, ...overrides };
}
