/** Starts the real app processes (bun apps/<name>/main.ts) on free ports for integration tests. */
import type { Subprocess } from "bun";
import { join } from "node:path";
import { freePort, ROOT, waitFor } from "./stack.ts";

export interface AppProcess {
  proc: Subprocess;
  port: number;
  url: string;
  output: () => string;
  /** SIGTERM and wait for exit; returns the exit code. */
  stop: () => Promise<number>;
  /** SIGKILL: no flush, no commit. */
  kill9: () => Promise<void>;
}

/**
 * Starts `bun apps/<name>/main.ts` and waits until `readyPath` answers 200 (`/health` for a process whose
 * dependencies are down on purpose). The port is `env`'s port variable when given (a restart on the same slot),
 * else a free one. A process that exits while starting fails at once with its output; when it exits because
 * another process took the free port first (many test runs share the machine), it starts again on another.
 */
export async function startApp(name: "capture" | "consumer" | "query", env: Record<string, string>, readyTimeoutMs = 60_000, readyPath = "/ready"): Promise<AppProcess> {
  const portVar = { capture: "CAPTURE_PORT", consumer: "CONSUMER_PORT", query: "QUERY_PORT" }[name];
  for (let attempt = 1; ; attempt++) {
    const started = await startOnce(name, env, portVar, readyTimeoutMs, readyPath);
    if (started !== "port_taken") return started;
    if (env[portVar] || attempt >= 3) throw new Error(`${name}: port taken by another process (attempt ${attempt})`);
  }
}

async function startOnce(
  name: "capture" | "consumer" | "query",
  env: Record<string, string>,
  portVar: string,
  readyTimeoutMs: number,
  readyPath: string,
): Promise<AppProcess | "port_taken"> {
  const port = env[portVar] ? Number(env[portVar]) : freePort();
  let out = "";
  const proc = Bun.spawn(["bun", join(ROOT, `apps/${name}/main.ts`)], {
    cwd: ROOT,
    // No drain period on SIGTERM unless a test asks for one: stop() would otherwise wait 5 s per capture.
    env: { ...process.env, LOG_LEVEL: "info", CAPTURE_DRAIN_MS: "0", ...env, [portVar]: String(port) },
    stdout: "pipe",
    stderr: "pipe",
  });
  const drain = async (s: ReadableStream<Uint8Array>) => {
    const dec = new TextDecoder();
    for await (const chunk of s) out += dec.decode(chunk);
  };
  const drained = Promise.all([drain(proc.stdout as ReadableStream<Uint8Array>), drain(proc.stderr as ReadableStream<Uint8Array>)]);
  const url = `http://127.0.0.1:${port}`;
  let outcome: "ready" | "exited";
  try {
    outcome = await waitFor(`${name} ${readyPath}`, readyTimeoutMs, async () => {
      if (proc.exitCode !== null) return "exited" as const;
      const res = await fetch(`${url}${readyPath}`);
      if (!res.ok) throw new Error(`${readyPath} answered ${res.status}: ${await res.text()}`);
      return "ready" as const;
    });
  } catch (err) {
    proc.kill("SIGKILL");
    throw new Error(`${String(err)}\n--- ${name} output ---\n${out.slice(-4000)}`);
  }
  if (outcome === "exited") {
    await Promise.race([drained, Bun.sleep(1000)]);
    if (/EADDRINUSE|Is port \d+ in use/.test(out)) return "port_taken";
    throw new Error(`${name} exited with ${proc.exitCode} while starting:\n${out.slice(-4000)}`);
  }
  return {
    proc,
    port,
    url,
    output: () => out,
    stop: async () => {
      proc.kill("SIGTERM");
      return await proc.exited;
    },
    kill9: async () => {
      proc.kill("SIGKILL");
      await proc.exited;
    },
  };
}
