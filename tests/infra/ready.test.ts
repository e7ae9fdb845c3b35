/** /ready is 503 naming the dependency that stopped answering, and 200 again once it is back. */
import { afterAll, describe, expect, test } from "bun:test";
import { type AppProcess, startApp } from "../support/apps.ts";
import { stack, waitFor } from "../support/stack.ts";

const apps: AppProcess[] = [];
afterAll(async () => {
  for (const a of apps) await a.stop();
});

async function readyState(url: string): Promise<{ status: number; failing: string[] }> {
  const res = await fetch(`${url}/ready`);
  const body = (await res.json()) as { failing?: string[] };
  return { status: res.status, failing: body.failing ?? [] };
}

describe("/ready follows the dependencies", () => {
  test("capture and query turn 503 when Redis stops and 200 when it is back", async () => {
    const capture = await startApp("capture", {});
    const query = await startApp("query", {});
    apps.push(capture, query);
    for (const a of [capture, query]) expect((await readyState(a.url)).status).toBe(200);
    await stack("stop", "redis");
    try {
      for (const a of [capture, query]) {
        const state = await waitFor("503 naming redis", 15_000, async () => {
          const s = await readyState(a.url);
          return s.status === 503 ? s : null;
        });
        expect(state.failing).toEqual(["redis"]);
      }
      // /health only says the process answers.
      expect((await fetch(`${capture.url}/health`)).status).toBe(200);
    } finally {
      await stack("start", "redis");
    }
    for (const a of [capture, query]) await waitFor("200 again", 20_000, async () => (await readyState(a.url)).status === 200);
  }, 120_000);
});
