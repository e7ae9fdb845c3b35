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

/** Runs `argv` as a container of the image would; what it writes goes to a throwaway layer. */
async function inImage(stateDir: string, stage: BuiltStage, argv: string[], env: Record<string, string>, log: Log, timeoutMs = 180_000) {
  const p = processEnv(stage, env);
  const upper = join(stateDir, "compose-check", "tmp", `container-${process.pid}-${++runs}`);
  try {
    return await runInLayers(stateDir, { lower: stage.layers, upper }, { argv: [ENTRYPOINT, ...argv], uid: p.uid, gid: p.gid, cwd: stage.config.workdir, env: p.env, hosts: SERVICE_HOSTS, timeoutMs }, (l) => log(`  ${l}`));
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
