/**
 * Kafka stopped -> 503 with Retry-After, never 202. Stops the shared broker (infrastructure/local/stack.sh) and
 * always starts it again in `finally`, then checks that capture recovers by itself.
 */
import { afterAll, expect, test } from "bun:test";
import { join } from "node:path";
import { newProject, startTestCapture, waitReady } from "./capture-stack.ts";

const STACK = join(import.meta.dir, "../../infrastructure/local/stack.sh");

async function stack(...args: string[]): Promise<void> {
  const proc = Bun.spawn([STACK, ...args], { stdout: "pipe", stderr: "pipe" });
  const [err, code] = await Promise.all([new Response(proc.stderr).text(), proc.exited]);
  if (code !== 0) throw new Error(`stack.sh ${args.join(" ")} exited ${code}: ${err}`);
}

let capture: ReturnType<typeof startTestCapture> | undefined;
afterAll(() => capture?.stop());

test("Kafka stopped: every request answered 503 + Retry-After, none 202; capture recovers when Kafka is back", async () => {
  const project = await newProject("capture-outage");
  capture = startTestCapture({ CAPTURE_PRODUCE_TIMEOUT_MS: "2000", CAPTURE_RETRY_AFTER_S: "7" });
  await waitReady(capture.url, 30_000);
  const send = (i: number) =>
    fetch(`${capture!.url}/v1/batch`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ api_key: project.token, batch: [{ event: "outage", distinct_id: `outage-${i}` }] }),
    });
  expect((await send(0)).status).toBe(202);

  try {
    await stack("stop", "kafka");
    const answers = await Promise.all(Array.from({ length: 8 }, (_, i) => send(i + 1)));
    for (const res of answers) {
      expect(res.status).toBe(503);
      expect(res.headers.get("retry-after")).toBe("7");
      expect(["produce_timeout", "kafka_unavailable"]).toContain(((await res.json()) as { code: string }).code);
    }
    const ready = await fetch(`${capture.url}/ready`);
    expect(ready.status).toBe(503);
    expect(((await ready.json()) as { failing: string[] }).failing).toContain("kafka");
  } finally {
    await stack("start", "kafka");
  }

  // Back: the same producer reconnects; answers are 503 until then, and 202 after - never anything else.
  const deadline = performance.now() + 90_000;
  let status = 0;
  while (performance.now() < deadline) {
    const res = await send(100);
    status = res.status;
    if (status === 202) break;
    expect(status).toBe(503);
    await Bun.sleep(500);
  }
  expect(status).toBe(202);
}, 180_000);
