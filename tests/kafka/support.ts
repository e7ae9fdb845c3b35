/** Shared by the kafka integration tests: the broker address, unique topic names, the Kafka CLI wrappers. */
import { join } from "node:path";
import type { Consumer } from "../../lib/kafka/consumer.ts";
import type { ConsumedMessage } from "../../lib/kafka/types.ts";

export const BOOTSTRAP = process.env.KAFKA_BOOTSTRAP_SERVERS ?? "127.0.0.1:9092";
export const ROOT = join(import.meta.dir, "..", "..");
export const KAFKA_BIN = join(ROOT, "infrastructure", "kafka", "bin");
export const STACK = join(ROOT, "infrastructure", "local", "stack.sh");

/** A topic name no other run uses; the broker auto-creates it with 12 partitions on first use. */
export function uniqueTopic(what: string): string {
  return `test-kafka-${what}-${Date.now().toString(36)}-${Math.floor(Math.random() * 1e6).toString(36)}`;
}

/** Runs one of the Kafka CLI wrappers (a JVM: about a second), returning stdout; throws on a non-zero exit. */
export async function kafkaCli(tool: string, args: string[], stdin?: string): Promise<string> {
  const proc = Bun.spawn([join(KAFKA_BIN, tool), ...args], {
    stdin: stdin === undefined ? "ignore" : new Blob([stdin]),
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, KAFKA_HEAP_OPTS: "-Xmx192m" },
  });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  if (code !== 0) throw new Error(`${tool} ${args.join(" ")} exited ${code}: ${err}`);
  return out;
}

/** Deletes test topics (best effort: a failed cleanup must not fail the test that made them). */
export async function deleteTopics(topics: string[]): Promise<void> {
  for (const t of topics) {
    try {
      await kafkaCli("kafka-topics", ["--bootstrap-server", BOOTSTRAP, "--delete", "--if-exists", "--topic", t]);
    } catch (err) {
      console.warn(`could not delete topic ${t}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
}

/** Polls `consumer` (non-blocking, small sleeps when idle) handing each batch to `onBatch` until `done()`. */
export async function consumeUntil(
  consumer: Consumer,
  onBatch: (msgs: ConsumedMessage[]) => void,
  done: () => boolean,
  timeoutMs: number,
  max = 10_000,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!done()) {
    if (performance.now() > deadline) throw new Error(`consumeUntil: not done after ${timeoutMs} ms`);
    const msgs = await consumer.poll(max);
    if (msgs.length > 0) onBatch(msgs);
    else await Bun.sleep(5);
  }
}

export async function waitFor(what: string, cond: () => boolean, timeoutMs: number, stepMs = 20): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!cond()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await Bun.sleep(stepMs);
  }
}

export const decoder = new TextDecoder();
export function text(b: Uint8Array | null): string {
  return b === null ? "<null>" : decoder.decode(b);
}
