/**
 * The real write path for the official-SDK tests: an isolated topic, capture (in process) and the consumer (a
 * process) on it, a recording proxy in front of capture so a test sees every request an SDK made and every
 * answer it got, and ClickHouse checks for "stored exactly once".
 */
import { join } from "node:path";
import { newProject, startTestCapture, waitReady } from "../capture/capture-stack.ts";
import { type AppProcess, startApp } from "../support/apps.ts";
import { ch, KAFKA, ROOT, uniqueName, waitFor } from "../support/stack.ts";

export interface SeenRequest {
  method: string;
  path: string;
  search: string;
  status: number;
  /** The browser's Sec-Fetch-Mode ("cors" for fetch/XHR, "no-cors" for sendBeacon of a text body); null elsewhere. */
  fetchMode: string | null;
  contentType: string | null;
}

export interface SdkStack {
  /** The proxy's URL: what an SDK is pointed at. */
  url: string;
  requests: SeenRequest[];
  newProject: typeof newProject;
  stop(): Promise<void>;
}

export async function startSdkStack(): Promise<SdkStack> {
  const topic = uniqueName("sdk_events").replaceAll("-", "_");
  const created = Bun.spawnSync([join(ROOT, "infrastructure/kafka/bin/kafka-topics"), "--bootstrap-server", KAFKA, "--create", "--topic", topic, "--partitions", "3", "--replication-factor", "1"]);
  if (created.exitCode !== 0) throw new Error(`kafka-topics --create ${topic}: ${created.stderr.toString()}`);
  const capture = startTestCapture({ CAPTURE_EVENTS_TOPIC: topic });
  let consumer: AppProcess | undefined;
  try {
    await waitReady(capture.url, 60_000);
    consumer = await startApp("consumer", {
      CONSUMER_EVENTS_TOPIC: topic,
      CONSUMER_KAFKA_GROUP_ID: uniqueName("sdk"),
      CONSUMER_DLQ_TOPIC: `${topic}_dlq`,
      CONSUMER_BATCH_LINGER_MS: "200",
    });
  } catch (err) {
    await capture.stop();
    throw err;
  }
  const requests: SeenRequest[] = [];
  // Forwards everything as it came (method, headers, body) and records what was asked and answered.
  const proxy = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    async fetch(req) {
      const url = new URL(req.url);
      const headers = new Headers(req.headers);
      headers.delete("host");
      const body = req.method === "GET" || req.method === "HEAD" ? undefined : await req.arrayBuffer();
      const res = await fetch(`${capture.url}${url.pathname}${url.search}`, { method: req.method, headers, body, redirect: "manual" });
      requests.push({
        method: req.method,
        path: url.pathname,
        search: url.search,
        status: res.status,
        fetchMode: req.headers.get("sec-fetch-mode"),
        contentType: req.headers.get("content-type"),
      });
      const out = new Headers(res.headers);
      // fetch already decoded the body; the length and encoding it was sent with no longer apply.
      out.delete("content-encoding");
      out.delete("content-length");
      return new Response(await res.arrayBuffer(), { status: res.status, headers: out });
    },
  });
  return {
    url: `http://127.0.0.1:${proxy.port}`,
    requests,
    newProject,
    async stop() {
      proxy.stop(true);
      if (consumer && consumer.proc.exitCode === null) await consumer.stop();
      await capture.stop();
    },
  };
}

export interface StoredEvents {
  /** Rows per event name. */
  byName: Map<string, number>;
  rows: number;
  uuids: Set<string>;
}

export async function storedEvents(teamId: number): Promise<StoredEvents> {
  const rows = await ch(`SELECT toString(uuid), event FROM events WHERE team_id = ${Number(teamId)}`);
  const byName = new Map<string, number>();
  for (const [, name] of rows) byName.set(name!, (byName.get(name!) ?? 0) + 1);
  return { byName, rows: rows.length, uuids: new Set(rows.map(([u]) => u!)) };
}

/** Waits until ClickHouse holds at least `n` distinct events of the project, then returns what is stored. */
export async function waitStored(teamId: number, n: number, what: string, timeoutMs = 60_000): Promise<StoredEvents> {
  return waitFor(`${what}: ${n} events of team ${teamId} in ClickHouse`, timeoutMs, async () => {
    const s = await storedEvents(teamId);
    return s.uuids.size >= n ? s : null;
  }, 250);
}
