/**
 * Capture's SIGTERM with a drain period, on the real process (apps/capture/main.ts): /ready answers 503 at once
 * while requests are still served, then the process closes and exits 0 no sooner than the drain. And /metrics
 * served on its own port (not on the public one), or not at all.
 */
import { afterAll, expect, test } from "bun:test";
import { type AppProcess, startApp } from "../support/apps.ts";
import { freePort, KAFKA, ROOT, uniqueName, waitFor } from "../support/stack.ts";
import { loadCaptureConfig } from "../../apps/capture/config.ts";
import { newProject, startTestCapture } from "./capture-stack.ts";

const apps: AppProcess[] = [];
afterAll(async () => {
  for (const a of apps) if (a.proc.exitCode === null) await a.kill9();
});

const DRAIN_MS = 5000;

test("SIGTERM: /ready 503 during the drain while requests are still answered, then exit 0 after it", async () => {
  const project = await newProject("drain");
  const topic = uniqueName("drain_events").replaceAll("-", "_");
  const created = Bun.spawnSync([`${ROOT}/infrastructure/kafka/bin/kafka-topics`, "--bootstrap-server", KAFKA, "--create", "--topic", topic, "--partitions", "1", "--replication-factor", "1"]);
  expect(created.exitCode).toBe(0);
  const metricsPort = freePort();
  const capture = await startApp("capture", {
    CAPTURE_EVENTS_TOPIC: topic,
    CAPTURE_KAFKA_BOOTSTRAP_SERVERS: KAFKA,
    CAPTURE_DRAIN_MS: String(DRAIN_MS),
    CAPTURE_METRICS_PORT: String(metricsPort),
  });
  apps.push(capture);
  const send = (i: number) =>
    fetch(`${capture.url}/e`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ api_key: project.token, event: "drain", distinct_id: `d${i}` }),
    });
  expect((await send(0)).status).toBe(200);

  // /metrics only on its own port.
  expect((await fetch(`${capture.url}/metrics`)).status).toBe(404);
  const metrics = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
  expect(metrics.status).toBe(200);
  expect(await metrics.text()).toContain("capture_requests_total");

  const signalled = Date.now();
  capture.proc.kill("SIGTERM");
  const ready = await waitFor("/ready 503", DRAIN_MS / 2, async () => {
    const res = await fetch(`${capture.url}/ready`);
    return res.status === 503 ? ((await res.json()) as { reason?: string }) : null;
  });
  expect(ready.reason).toBe("shutting down");
  // Still serving: a balancer that has not yet seen /ready keeps sending, and nothing it sends is refused.
  const during = await Promise.all([1, 2, 3].map(send));
  expect(Date.now() - signalled).toBeLessThan(DRAIN_MS);
  expect(during.map((r) => r.status)).toEqual([200, 200, 200]);

  expect(await capture.proc.exited).toBe(0);
  expect(Date.now() - signalled).toBeGreaterThanOrEqual(DRAIN_MS);
  expect(capture.output()).toContain("draining");
  expect(capture.output()).toContain("capture stopped");
  // Closed: the port no longer answers.
  expect(await fetch(`${capture.url}/health`).then(() => "answered", () => "refused")).toBe("refused");
}, 60_000);

test("CAPTURE_METRICS_PORT=off: no /metrics anywhere; the default serves it on the public port", async () => {
  const off = startTestCapture({ CAPTURE_METRICS_PORT: "off" });
  const on = startTestCapture();
  try {
    expect((await fetch(`${off.url}/metrics`)).status).toBe(404);
    expect((await fetch(`${on.url}/metrics`)).status).toBe(200);
  } finally {
    await Promise.all([off.stop(), on.stop()]);
  }
});

test("CAPTURE_METRICS_PORT and CAPTURE_DRAIN_MS: defaults, and a bad value named at start-up", () => {
  const c = loadCaptureConfig({});
  expect([c.CAPTURE_METRICS_PORT, c.CAPTURE_DRAIN_MS]).toEqual(["public", 5000]);
  expect(loadCaptureConfig({ CAPTURE_METRICS_PORT: "9100" }).CAPTURE_METRICS_PORT).toBe(9100);
  for (const bad of ["70000", "0", "yes"]) {
    expect(() => loadCaptureConfig({ CAPTURE_METRICS_PORT: bad })).toThrow("CAPTURE_METRICS_PORT: expected public, off or a port number");
  }
  expect(() => loadCaptureConfig({ CAPTURE_DRAIN_MS: "-1" })).toThrow("CAPTURE_DRAIN_MS");
});
