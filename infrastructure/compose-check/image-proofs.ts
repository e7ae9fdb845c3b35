/**
 * What the built images must do, run inside their replayed filesystems through the base image's entrypoint,
 * as the image's user, with the compose service's environment. Compose's service names (kafka, clickhouse,
 * postgres, redis) resolve to 127.0.0.1, where the native stack listens, so the commands reach real services.
 */
import { type ComposeFile, environmentOf, unescapeDollars } from "./compose-file.ts";
import { join } from "node:path";
import { type Log, removeTree, runInLayers } from "./debian-rootfs.ts";
import { type BuiltStage, processEnv } from "./replay.ts";

const SERVICE_HOSTS = ["127.0.0.1 kafka clickhouse postgres redis"];
export const ENTRYPOINT = "/usr/local/bin/docker-entrypoint.sh";

let runs = 0;

async function answers(port: number): Promise<boolean> {
  if (port === 8123) return fetch("http://127.0.0.1:8123/ping", { signal: AbortSignal.timeout(2000) }).then((r) => r.ok, () => false);
  return new Promise((done) => {
    Bun.connect({ hostname: "127.0.0.1", port, socket: { open: (s) => { s.end(); done(true); }, data: () => {}, error: () => done(false), connectError: () => done(false) } }).catch(() => done(false));
  });
}

/**
 * Waits (up to `timeoutMs`) until the native Kafka, ClickHouse, PostgreSQL and Redis answer, as compose's
 * `depends_on: condition: service_healthy` holds the init service and the apps back. Returns what never did.
 */
export async function nativeStackAnswers(log: Log, timeoutMs = 120_000): Promise<string[]> {
  const ports: Record<string, number> = { kafka: 9092, clickhouse: 8123, postgres: 5432, redis: 6379 };
  const deadline = Date.now() + timeoutMs;
  let down: string[] = [];
  for (;;) {
    down = [];
    for (const [name, port] of Object.entries(ports)) if (!(await answers(port))) down.push(name);
    if (down.length === 0 || Date.now() > deadline) break;
    log(`waiting for the native ${down.join(", ")} (as depends_on: service_healthy would)`);
    await Bun.sleep(2000);
  }
  return down.map((n) => `native ${n} not answering on 127.0.0.1:${ports[n]}`);
}

/** Runs `argv` as a container of the image would; what it writes goes to a throwaway layer. */
async function inImage(stateDir: string, stage: BuiltStage, argv: string[], env: Record<string, string>, log: Log, timeoutMs = 180_000, signal?: AbortSignal) {
  const p = processEnv(stage, env);
  const upper = join(stateDir, "compose-check", "tmp", `container-${process.pid}-${++runs}`);
  try {
    return await runInLayers(stateDir, { lower: stage.layers, upper }, { argv: [ENTRYPOINT, ...argv], uid: p.uid, gid: p.gid, cwd: stage.config.workdir, env: p.env, hosts: SERVICE_HOSTS, timeoutMs, ...(signal ? { signal } : {}) }, (l) => log(`  ${l}`));
  } finally {
    removeTree(upper);
  }
}

/** librdkafka loads through bun:ffi at the release apt installed; `bun run project:create` works. */
export async function proveApp(stateDir: string, app: BuiltStage, compose: ComposeFile, candidates: Map<string, string>, log: Log): Promise<string[]> {
  const problems: string[] = [];
  const capture = compose.services.capture;
  if (!capture) return ["no capture service"];
  const env = environmentOf(capture);

  log("app: librdkafka version through bun:ffi (lib/kafka/librdkafka.ts)");
  const version = await inImage(stateDir, app, ["bun", "-e", 'const { librdkafkaVersion } = await import("./lib/kafka/librdkafka.ts"); console.log("librdkafka=" + librdkafkaVersion())'], env, log);
  const got = /librdkafka=(\S+)/.exec(version.out)?.[1];
  const expected = candidates.get("librdkafka1")?.replace(/^\d+:/, "").replace(/-[^-]+$/, "");
  if (version.code !== 0 || !got) problems.push(`librdkafka did not load through bun:ffi (exit ${version.code})`);
  else if (expected && got !== expected) problems.push(`librdkafka ${got} loaded, but apt installed ${expected}`);

  log("app: bun run project:create (migrations, then a project) against the native PostgreSQL");
  const name = `check-compose ${new Date().toISOString()}`;
  const created = await inImage(stateDir, app, ["bun", "run", "project:create", name, "--json"], env, log);
  const line = created.out.split("\n").find((l) => l.startsWith("{"));
  const project = line ? (JSON.parse(line) as { name?: string; token?: string }) : null;
  if (created.code !== 0 || project?.name !== name || !project.token) problems.push(`project:create failed (exit ${created.code})`);
  return problems;
}

/** The init service's own command, as compose runs it, against the native stack. */
export async function proveInit(stateDir: string, init: BuiltStage, compose: ComposeFile, log: Log): Promise<string[]> {
  const service = compose.services.init;
  if (!service?.command) return ["no init service with a command"];
  const argv = (Array.isArray(service.command) ? service.command : ["/bin/sh", "-c", service.command]).map(unescapeDollars);
  log(`init: ${argv.slice(0, 4).join(" ")} ... (the compose file's command)`);
  const r = await inImage(stateDir, init, argv, environmentOf(service), log, 300_000);
  const problems: string[] = [];
  if (r.code !== 0) problems.push(`the init command exited ${r.code}`);
  if (!/applied \d+_\w+\.sql/.test(r.out)) problems.push("init-clickhouse.sh did not report applying the DDL");
  if (!/migrations up to date|applied \d+_projects/.test(r.out)) problems.push("migrate.ts did not report the migrations");
  return problems;
}

function freePort(): number {
  const s = Bun.serve({ port: 0, fetch: () => new Response() });
  const port = s.port!;
  s.stop(true);
  return port;
}

/**
 * The three app services' own commands, started in the app image with their compose environment (on a free
 * port each, so the native apps keep theirs), each answering /ready 200 within a minute: every dependency it
 * checks (Kafka through librdkafka 2.8, ClickHouse, PostgreSQL, Redis) answered from inside the image. The
 * consumer reads a topic and group of its own, never the shared `events` / `event-consumers`.
 */
export async function proveAppsReady(stateDir: string, root: string, app: BuiltStage, compose: ComposeFile, log: Log): Promise<string[]> {
  const topic = `check-compose-${Date.now().toString(36)}`;
  const kafkaTopics = join(root, "infrastructure/kafka/bin/kafka-topics");
  const created = Bun.spawnSync([kafkaTopics, "--bootstrap-server", "127.0.0.1:9092", "--create", "--topic", topic, "--partitions", "1", "--replication-factor", "1"], { stderr: "pipe" });
  if (created.exitCode !== 0) return [`cannot create topic ${topic} natively: ${created.stderr.toString().trim()}`];
  const apps: [service: string, portVar: string, extra: Record<string, string>][] = [
    ["capture", "CAPTURE_PORT", {}],
    ["query", "QUERY_PORT", {}],
    ["consumer", "CONSUMER_PORT", { CONSUMER_KAFKA_GROUP_ID: topic, CONSUMER_EVENTS_TOPIC: topic, CONSUMER_DLQ_TOPIC: `${topic}-dlq` }],
  ];
  try {
    const results = await Promise.all(apps.map(async ([name, portVar, extra]): Promise<string | null> => {
      const service = compose.services[name];
      if (!service || !Array.isArray(service.command)) return `no ${name} service with a command list`;
      const port = freePort();
      const stop = new AbortController();
      const running = inImage(stateDir, app, service.command, { ...environmentOf(service), ...extra, [portVar]: String(port) }, (l) => log(`${name}: ${l.trim()}`), 120_000, stop.signal);
      let exited = false;
      void running.then(() => { exited = true; });
      const deadline = Date.now() + 60_000;
      let last = "no answer";
      try {
        while (Date.now() < deadline && !exited) {
          try {
            const r = await fetch(`http://127.0.0.1:${port}/ready`, { signal: AbortSignal.timeout(3000) });
            last = `${r.status} ${(await r.text()).slice(0, 200)}`;
            if (r.status === 200) {
              log(`${name}: /ready 200 on port ${port}`);
              return null;
            }
          } catch (err) {
            last = err instanceof Error ? err.message : String(err);
          }
          await Bun.sleep(500);
        }
        return exited ? `${name} exited before /ready answered 200 (last: ${last})` : `${name}: /ready not 200 within 60 s (last: ${last})`;
      } finally {
        stop.abort();
        await running;
      }
    }));
    return results.filter((r): r is string => r !== null);
  } finally {
    Bun.spawnSync([kafkaTopics, "--bootstrap-server", "127.0.0.1:9092", "--delete", "--topic", topic], { stderr: "pipe" });
  }
}
