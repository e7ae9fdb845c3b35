/**
 * The ceiling: a bare Hono-on-Bun JSON endpoint that reads a body and answers 202, nothing else. The capture
 * benchmark runs it in the same session, so capture's throughput is judged as a fraction of what this machine's
 * HTTP stack can do at that moment. Port from BARE_PORT (0 = random); prints the port on stdout.
 */
import { Hono } from "hono";

const app = new Hono();
app.post("/capture", async (c) => {
  await c.req.arrayBuffer();
  return c.body('{"status":1}', 202, { "content-type": "application/json" });
});
const server = Bun.serve({ port: Number(process.env.BARE_PORT ?? 0), hostname: "127.0.0.1", fetch: app.fetch });
console.log(server.port);
process.on("SIGTERM", () => {
  void server.stop(true).then(() => process.exit(0));
});
