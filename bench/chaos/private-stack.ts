/**
 * A private instance of the native stack (Kafka, ClickHouse, PostgreSQL, Redis and the three apps) in its own
 * state folder and on its own free ports, driven through infrastructure/local/stack.sh exactly as `make up` drives
 * the shared one. Chaos kills and stops its services; the shared stack is never touched.
 */
import { mkdtempSync, rmSync, symlinkSync, mkdirSync, existsSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const ROOT = resolve(import.meta.dir, "../..");
const SHARED_STATE = process.env.INGEST_STATE_DIR ?? join(ROOT, ".local");

export type InfraService = "kafka" | "clickhouse" | "postgres" | "redis";
export type AppName = "capture" | "consumer" | "query";

function freePort(): number {
  const s = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response() });
  const port = s.port!;
  s.stop(true);
  return port;
}

export class PrivateStack {
  readonly state = mkdtempSync(join(tmpdir(), "ingest-chaos-"));
  readonly ports = {
    kafka: freePort(),
    kafkaController: freePort(),
    clickhouseHttp: freePort(),
    clickhouseTcp: freePort(),
    clickhouseInterserver: freePort(),
    postgres: freePort(),
    redis: freePort(),
    capture: freePort(),
    query: freePort(),
    consumer: freePort(),
  };
  readonly kafka = `127.0.0.1:${this.ports.kafka}`;
  readonly clickhouse = `http://127.0.0.1:${this.ports.clickhouseHttp}`;
  readonly postgres = `postgres://ingest:ingest@127.0.0.1:${this.ports.postgres}/ingest`;
  readonly capture = `http://127.0.0.1:${this.ports.capture}`;
  readonly query = `http://127.0.0.1:${this.ports.query}`;
  readonly consumer = `http://127.0.0.1:${this.ports.consumer}`;
  /** The environment stack.sh and the apps run with. */
  readonly env: Record<string, string>;

  constructor(appEnv: Record<string, string> = {}) {
    // The Kafka jars (and tools such as vegeta) come from the shared state folder's `make deps`.
    mkdirSync(join(this.state, "kafka"), { recursive: true });
    const libs = join(SHARED_STATE, "kafka", "libs");
    if (!existsSync(libs)) throw new Error(`Kafka jars missing in ${libs}: run 'make deps'`);
    symlinkSync(libs, join(this.state, "kafka", "libs"));
    if (existsSync(join(SHARED_STATE, "bin"))) symlinkSync(join(SHARED_STATE, "bin"), join(this.state, "bin"));
    const p = this.ports;
    const base: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) {
      // The private stack's own settings only: nothing inherited may point an app at the shared services.
      if (v !== undefined && !/^(CAPTURE|CONSUMER|QUERY)_|^(CLICKHOUSE|POSTGRES|REDIS|KAFKA)_/.test(k)) base[k] = v;
    }
    this.env = {
      ...base,
      INGEST_STATE_DIR: this.state,
      KAFKA_PORT: String(p.kafka),
      KAFKA_CONTROLLER_PORT: String(p.kafkaController),
      KAFKA_BROKER_HEAP: "-Xmx384m -Xms384m",
      CLICKHOUSE_HTTP_PORT: String(p.clickhouseHttp),
      CLICKHOUSE_TCP_PORT: String(p.clickhouseTcp),
      CLICKHOUSE_INTERSERVER_PORT: String(p.clickhouseInterserver),
      POSTGRES_PORT: String(p.postgres),
      REDIS_PORT: String(p.redis),
      CAPTURE_PORT: String(p.capture),
      QUERY_PORT: String(p.query),
      CONSUMER_PORT: String(p.consumer),
      CAPTURE_KAFKA_BOOTSTRAP_SERVERS: this.kafka,
      CONSUMER_KAFKA_BOOTSTRAP_SERVERS: this.kafka,
      CLICKHOUSE_URL: this.clickhouse,
      POSTGRES_URL: this.postgres,
      REDIS_URL: `redis://127.0.0.1:${p.redis}`,
      EVENTS_PARTITIONS: "6",
      LOG_LEVEL: "info",
      ...appEnv,
    };
  }

  /** Runs stack.sh with this instance's environment; throws with its output on failure. */
  async sh(...args: string[]): Promise<string> {
    const proc = Bun.spawn([join(ROOT, "infrastructure/local/stack.sh"), ...args], { env: this.env, stdout: "pipe", stderr: "pipe" });
    const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    if (code !== 0) throw new Error(`stack.sh ${args.join(" ")} failed (${code}):\n${out}\n${err}`);
    return out;
  }

  /** `make up` itself (deps, infrastructure, topics/DDL/migrations, apps), on this instance. */
  async makeUp(): Promise<void> {
    const proc = Bun.spawn(["make", "-s", "-C", ROOT, "up"], { env: this.env, stdout: "pipe", stderr: "pipe" });
    const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    if (code !== 0) throw new Error(`make up failed (${code}):\n${out}\n${err}`);
  }

  /** Infrastructure, topics, DDL, migrations, then the apps. */
  async up(): Promise<void> {
    await this.sh("up");
    await this.sh("apps-up");
  }

  pid(name: InfraService | AppName): number {
    const file = ["capture", "consumer", "query"].includes(name) ? `app-${name}.pid` : `${name}.pid`;
    return Number(readFileSync(join(this.state, "run", file), "utf8").trim());
  }

  /** Everything down, the state folder removed. */
  async destroy(): Promise<void> {
    try {
      await this.sh("down");
    } finally {
      rmSync(this.state, { recursive: true, force: true });
    }
  }
}
