/**
 * `/health` (the process answers) and `/ready` (every dependency answers within a deadline). A failing `/ready`
 * is 503 with JSON naming each failing dependency and why, so an orchestrator and a person both see the cause.
 */
import { Hono } from "hono";

export type ReadinessCheck = () => Promise<unknown>;

export interface DependencyStatus {
  ok: boolean;
  ms: number;
  error?: string;
}

export async function checkDependencies(
  checks: Record<string, ReadinessCheck>,
  timeoutMs = 2000,
): Promise<{ ok: boolean; dependencies: Record<string, DependencyStatus> }> {
  const entries = await Promise.all(
    Object.entries(checks).map(async ([name, check]): Promise<[string, DependencyStatus]> => {
      const started = performance.now();
      let timer: ReturnType<typeof setTimeout> | undefined;
      try {
        await Promise.race([
          check(),
          new Promise((_, reject) => {
            timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
          }),
        ]);
        return [name, { ok: true, ms: Math.round(performance.now() - started) }];
      } catch (err) {
        const error = err instanceof Error ? err.message : String(err);
        return [name, { ok: false, ms: Math.round(performance.now() - started), error }];
      } finally {
        clearTimeout(timer);
      }
    }),
  );
  const dependencies = Object.fromEntries(entries);
  return { ok: entries.every(([, s]) => s.ok), dependencies };
}

export interface HealthOptions {
  checks: Record<string, ReadinessCheck>;
  /** Extra facts reported by /ready (versions, ...). */
  info?: () => Record<string, unknown>;
  timeoutMs?: number;
  /** False while shutting down: /ready answers 503 so load balancers stop sending traffic. */
  accepting?: () => boolean;
}

export function healthRoutes(opts: HealthOptions): Hono {
  const app = new Hono();
  app.get("/health", (c) => c.json({ status: "ok" }));
  app.get("/ready", async (c) => {
    const { ok, dependencies } = await checkDependencies(opts.checks, opts.timeoutMs);
    const accepting = opts.accepting?.() ?? true;
    const ready = ok && accepting;
    const failing = Object.entries(dependencies)
      .filter(([, s]) => !s.ok)
      .map(([n]) => n);
    return c.json(
      {
        status: ready ? "ready" : "unavailable",
        ...(accepting ? {} : { reason: "shutting down" }),
        ...(failing.length ? { failing } : {}),
        dependencies,
        ...opts.info?.(),
      },
      ready ? 200 : 503,
    );
  });
  return app;
}
