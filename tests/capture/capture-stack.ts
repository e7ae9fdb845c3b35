/** Integration-test support: a project in PostgreSQL and a capture service on a random port over the real stack. */
import { startCaptureService, type CaptureService } from "../../apps/capture/capture-service.ts";
import { loadCaptureConfig, type CaptureConfig } from "../../apps/capture/config.ts";
import { createLogger } from "../../lib/log/logger.ts";
import { createPostgres } from "../../lib/postgres/client.ts";
import { createProject } from "../../lib/projects/create-project.ts";
import type { Project } from "../../lib/projects/project.ts";
import { freePort, waitFor } from "../support/stack.ts";

export const POSTGRES_URL = process.env.POSTGRES_URL ?? "postgres://ingest:ingest@127.0.0.1:5432/ingest";
export const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";

export async function newProject(name: string): Promise<Project> {
  const sql = createPostgres(POSTGRES_URL, { max: 1 });
  try {
    return (await createProject(sql, `${name} ${new Date().toISOString()}`)).project;
  } finally {
    await sql.end({ timeout: 2 });
  }
}

/** A capture service like production's, on a random port; `env` overrides settings (as strings, like the env). */
export function startTestCapture(env: Record<string, string> = {}): CaptureService & { config: CaptureConfig } {
  const config = {
    ...loadCaptureConfig({ POSTGRES_URL, REDIS_URL, LOG_LEVEL: "warn", CAPTURE_DRAIN_MS: "0", ...env }),
    CAPTURE_PORT: 0,
    CAPTURE_HOST: "127.0.0.1",
  };
  return { ...startCaptureService(config, createLogger("capture-test", config.LOG_LEVEL)), config };
}

export { freePort };

export async function waitReady(url: string, timeoutMs: number): Promise<void> {
  await waitFor(`${url}/ready to be 200`, timeoutMs, async () => (await fetch(`${url}/ready`)).status === 200, 100);
}
