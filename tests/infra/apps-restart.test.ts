/**
 * `stack.sh apps-up` (what `make up` runs last) restarts an app whose recorded process is dead or a zombie
 * (kill -0 succeeds on a zombie: the state in /proc/<pid>/stat says Z), and after a kill -9 of the consumer and an
 * immediate apps-up, events are queryable again within 10 s. The apps run from a private state folder, on their
 * own ports, topics and group, against the shared infrastructure: the shared apps are never touched.
 */
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { newProject } from "../capture/capture-stack.ts";
import { ch, freePort, KAFKA, ROOT, uniqueName, waitFor } from "../support/stack.ts";

const state = mkdtempSync(join(tmpdir(), "ingest-apps-"));
const topic = uniqueName("restart_events").replaceAll("-", "_");
const env: Record<string, string> = {
  ...(process.env as Record<string, string>),
  INGEST_STATE_DIR: state,
  CAPTURE_PORT: String(freePort()),
  QUERY_PORT: String(freePort()),
  CONSUMER_PORT: String(freePort()),
  CAPTURE_EVENTS_TOPIC: topic,
  CAPTURE_OVERFLOW_TOPIC: `${topic}_overflow`,
  CONSUMER_TOPICS: topic,
  CONSUMER_DLQ_TOPIC: `${topic}_dlq`,
  CONSUMER_KAFKA_GROUP_ID: uniqueName("g-restart"),
  CONSUMER_BATCH_LINGER_MS: "300",
  LOG_LEVEL: "info",
};

async function stackSh(...args: string[]): Promise<string> {
  const proc = Bun.spawn([join(ROOT, "infrastructure/local/stack.sh"), ...args], { env, stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  if (code !== 0) throw new Error(`stack.sh ${args.join(" ")} failed (${code}):\n${out}\n${err}`);
  return out;
}

const pidOf = (app: string) => Number(readFileSync(join(state, "run", `app-${app}.pid`), "utf8").trim());
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return !readFileSync(`/proc/${pid}/stat`, "utf8").replace(/^.*\) /, "").startsWith("Z");
  } catch {
    return false;
  }
};

afterAll(async () => {
  await stackSh("apps-down").catch(() => {});
  if (process.env.KEEP_STATE !== "1") rmSync(state, { recursive: true, force: true });
  else console.log(`state kept: ${state}`);
});

test("apps-up restarts a zombie or killed consumer; after kill -9 + apps-up, events are queryable within 10 s", async () => {
  for (const t of [topic, `${topic}_overflow`]) {
    const r = Bun.spawnSync([`${ROOT}/infrastructure/kafka/bin/kafka-topics`, "--bootstrap-server", KAFKA, "--create", "--if-not-exists", "--topic", t, "--partitions", "3", "--replication-factor", "1"], {
      env: { ...process.env, KAFKA_HEAP_OPTS: "-Xmx192m" },
    });
    expect(r.exitCode).toBe(0);
  }
  const project = await newProject("restart");
  await stackSh("apps-up");
  const capture = `http://127.0.0.1:${env.CAPTURE_PORT}`;
  let sent = 0;
  const send = async () => {
    const batch = Array.from({ length: 10 }, (_, i) => ({ event: "restart", distinct_id: `u${i}`, uuid: crypto.randomUUID() }));
    const res = await fetch(`${capture}/batch`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ api_key: project.token, batch }) });
    expect(res.status).toBeLessThan(300);
    sent += batch.length;
  };
  const stored = async () => Number((await ch(`SELECT uniqExact(uuid) FROM events WHERE team_id = ${project.id}`))[0]![0]);
  await send();
  await waitFor("first events stored", 30_000, async () => (await stored()) === sent);

  // kill -9 of the consumer; then, where its pid file points, a zombie (a child that exited and that its parent
  // never reaps): kill -0 succeeds on it, so a check by kill -0 alone would say "already running".
  const killed = pidOf("consumer");
  process.kill(killed, "SIGKILL");
  const killedAt = Date.now();
  const parent = Bun.spawn(["perl", "-e", '$| = 1; my $c = fork(); if ($c) { print "$c\\n"; sleep 60 } else { exit 0 }'], { stdout: "pipe" });
  try {
    const reader = (parent.stdout as ReadableStream<Uint8Array>).getReader();
    const zombie = Number(new TextDecoder().decode((await reader.read()).value).trim());
    await waitFor("the child to be a zombie", 5_000, () => readFileSync(`/proc/${zombie}/stat`, "utf8").replace(/^.*\) /, "").startsWith("Z"), 20);
    await waitFor("the killed consumer gone", 5_000, () => !alive(killed), 20);
    writeFileSync(join(state, "run", "app-consumer.pid"), `${zombie}\n`);
    const out = await stackSh("apps-up");
    expect(out).not.toMatch(/consumer\S*\s+already running/);
    expect(out).toMatch(/capture\S*\s+already running/);
    expect(pidOf("consumer")).not.toBe(zombie);
    expect(alive(pidOf("consumer"))).toBe(true);
  } finally {
    parent.kill("SIGKILL");
  }
  await send();
  await waitFor("events sent after the kill stored", 10_000 - (Date.now() - killedAt), async () => (await stored()) === sent, 100);
  console.log(`kill -9 -> apps-up -> events queryable: ${((Date.now() - killedAt) / 1000).toFixed(1)} s`);
}, 180_000);
