/** Prometheus metrics (prom-client): one registry per app, default process metrics, and a `/metrics` route. */
import { Hono } from "hono";
import { collectDefaultMetrics, Registry } from "prom-client";

export function createRegistry(app: string): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ app });
  collectDefaultMetrics({ register: registry });
  return registry;
}

export function metricsRoute(registry: Registry): Hono {
  const app = new Hono();
  app.get("/metrics", async (c) => {
    return c.body(await registry.metrics(), 200, { "content-type": registry.contentType });
  });
  return app;
}
