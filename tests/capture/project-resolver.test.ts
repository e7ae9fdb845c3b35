import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { ProjectLookupUnavailable, type Project } from "../../lib/projects/project.ts";
import { ProjectResolver, type ProjectResolverOptions } from "../../lib/projects/project-resolver.ts";
import { PostgresProjects } from "../../lib/projects/postgres-projects.ts";
import { createProject } from "../../lib/projects/create-project.ts";
import { hashSecretKey } from "../../lib/projects/project-keys.ts";
import { createPostgres } from "../../lib/postgres/client.ts";
import { createRedis } from "../../lib/redis/client.ts";
import { MapProjects } from "./support.ts";

const P1: Project = { id: 1, name: "one", token: "phc_one" };

/** Redis' get/set as a Map; `down` fails every call like an unreachable server. */
class MapRedis {
  readonly data = new Map<string, string>();
  down = false;
  gets = 0;
  async get(key: string): Promise<string | null> {
    this.gets++;
    if (this.down) throw new Error("Connection is closed.");
    return this.data.get(key) ?? null;
  }
  async set(key: string, value: string): Promise<"OK"> {
    if (this.down) throw new Error("Connection is closed.");
    this.data.set(key, value);
    return "OK";
  }
}

function setup(opts: Partial<ProjectResolverOptions> = {}) {
  let now = 1_000_000;
  const source = new MapProjects([P1]);
  const redis = new MapRedis();
  const errors: string[] = [];
  const resolver = new ProjectResolver({
    source,
    redis: redis as never,
    ttlMs: 60_000,
    redisTtlMs: 600_000,
    negativeTtlMs: 10_000,
    capacity: 100,
    now: () => now,
    onStoreError: (store) => errors.push(store),
    ...opts,
  });
  return { resolver, source, redis, errors, advance: (ms: number) => (now += ms) };
}

describe("ProjectResolver tiers", () => {
  test("miss -> PostgreSQL, then cached in process and in Redis", async () => {
    const { resolver, source, redis } = setup();
    expect(await resolver.resolve("phc_one")).toEqual(P1);
    expect(source.lookups).toBe(1);
    expect(JSON.parse(redis.data.get("capture:project:phc_one")!)).toEqual(P1);
    expect(await resolver.resolve("phc_one")).toEqual(P1);
    expect(source.lookups).toBe(1);
    expect(redis.gets).toBe(1);
  });
  test("Redis answers before PostgreSQL is asked", async () => {
    const { resolver, source, redis } = setup();
    redis.data.set("capture:project:phc_two", JSON.stringify({ id: 2, name: "two", token: "phc_two" }));
    expect(await resolver.resolve("phc_two")).toEqual({ id: 2, name: "two", token: "phc_two" });
    expect(source.lookups).toBe(0);
  });
  test("unknown tokens are cached as unknown (no PostgreSQL query per request), for the negative TTL", async () => {
    const { resolver, source, advance } = setup();
    expect(await resolver.resolve("phc_bogus")).toBeNull();
    expect(await resolver.resolve("phc_bogus")).toBeNull();
    expect(source.lookups).toBe(1);
    advance(10_001);
    await resolver.resolve("phc_bogus"); // stale: answered, refreshed in the background
    await Bun.sleep(0);
    expect(source.lookups).toBe(1); // Redis still had the negative entry
  });
  test("concurrent misses for one token share one lookup", async () => {
    const { resolver, source } = setup();
    const all = await Promise.all(Array.from({ length: 50 }, () => resolver.resolve("phc_one")));
    expect(all.every((p) => p?.id === 1)).toBe(true);
    expect(source.lookups).toBe(1);
  });
  test("after the TTL an entry is answered at once and refreshed behind the request", async () => {
    const { resolver, source, redis, advance } = setup();
    await resolver.resolve("phc_one");
    source.projects.set("phc_one", { ...P1, name: "renamed" });
    redis.data.clear();
    advance(60_001);
    expect((await resolver.resolve("phc_one"))?.name).toBe("one");
    await Bun.sleep(1);
    expect((await resolver.resolve("phc_one"))?.name).toBe("renamed");
  });
});

describe("ProjectResolver outages", () => {
  test("PostgreSQL and Redis down: a known token keeps resolving (stale), errors reported", async () => {
    const { resolver, source, redis, errors, advance } = setup();
    await resolver.resolve("phc_one");
    source.down = true;
    redis.down = true;
    advance(3_600_000);
    expect(await resolver.resolve("phc_one")).toEqual(P1);
    await Bun.sleep(1);
    expect(await resolver.resolve("phc_one")).toEqual(P1);
    expect(errors).toContain("postgres");
    expect(errors).toContain("redis");
  });
  test("PostgreSQL down, Redis up: tokens Redis knows keep working in a fresh process", async () => {
    const { redis } = setup();
    redis.data.set("capture:project:phc_one", JSON.stringify(P1));
    const fresh = new ProjectResolver({
      source: { findByToken: () => Promise.reject(new Error("down")) },
      redis: redis as never,
      ttlMs: 1000,
      redisTtlMs: 1000,
      negativeTtlMs: 1000,
      capacity: 10,
    });
    expect(await fresh.resolve("phc_one")).toEqual(P1);
  });
  test("a token never seen while every store is down: ProjectLookupUnavailable (not 'unknown')", async () => {
    const { resolver, source, redis } = setup();
    source.down = true;
    redis.down = true;
    await expect(resolver.resolve("phc_one")).rejects.toBeInstanceOf(ProjectLookupUnavailable);
  });
  test("unknown tokens cannot evict known projects (separate LRUs)", async () => {
    const { resolver, source } = setup({ capacity: 2 });
    await resolver.resolve("phc_one");
    for (let i = 0; i < 10; i++) await resolver.resolve(`phc_bogus_${i}`);
    source.down = true;
    expect(await resolver.resolve("phc_one")).toEqual(P1);
  });
});

describe("against PostgreSQL and Redis", () => {
  const sql = createPostgres(process.env.POSTGRES_URL ?? "postgres://ingest:ingest@127.0.0.1:5432/ingest", { max: 2 });
  const redis = createRedis(process.env.REDIS_URL ?? "redis://127.0.0.1:6379");
  beforeAll(async () => {
    if (redis.status !== "ready") await new Promise((resolve) => redis.once("ready", resolve));
  });
  afterAll(async () => {
    redis.disconnect();
    await sql.end({ timeout: 2 });
  });

  test("createProject stores only the secret's SHA-256; the resolver finds the project through both stores", async () => {
    const { project, secretKey } = await createProject(sql, `capture-test ${Date.now()}`);
    expect(project.token).toMatch(/^phc_[0-9A-Za-z]{43}$/);
    expect(secretKey).toMatch(/^phs_[0-9A-Za-z]{43}$/);
    const [row] = await sql<{ secret_key_hash: string }[]>`SELECT secret_key_hash FROM projects WHERE id = ${project.id}`;
    expect(row!.secret_key_hash).toBe(hashSecretKey(secretKey));
    expect(row!.secret_key_hash).not.toContain(secretKey.slice(4));

    const prefix = `test:capture:project:${Date.now()}:`;
    const opts = { source: new PostgresProjects(sql), redis, ttlMs: 60_000, redisTtlMs: 60_000, negativeTtlMs: 5000, capacity: 10, redisKeyPrefix: prefix };
    expect(await new ProjectResolver(opts).resolve(project.token)).toEqual(project);
    await Bun.sleep(20); // the Redis write is off the request path
    expect(JSON.parse((await redis.get(prefix + project.token))!)).toEqual(project);
    // A second process with PostgreSQL unreachable still resolves it from Redis.
    const viaRedis = new ProjectResolver({ ...opts, source: { findByToken: () => Promise.reject(new Error("down")) } });
    expect(await viaRedis.resolve(project.token)).toEqual(project);
    expect(await new ProjectResolver(opts).resolve("phc_does_not_exist")).toBeNull();
    await redis.del(prefix + project.token, prefix + "phc_does_not_exist");
  });

  test("bun run project:create prints the token and the secret once", async () => {
    const proc = Bun.spawn(["bun", "run", "project:create", `capture-cli-test ${Date.now()}`, "--json"], {
      cwd: `${import.meta.dir}/../..`,
      stdout: "pipe",
      stderr: "pipe",
    });
    const [out, code] = await Promise.all([new Response(proc.stdout).text(), proc.exited]);
    expect(code).toBe(0);
    const printed = JSON.parse(out.trim()) as { id: number; token: string; secret_key: string };
    const [row] = await sql<{ token: string; secret_key_hash: string }[]>`SELECT token, secret_key_hash FROM projects WHERE id = ${printed.id}`;
    expect(row!.token).toBe(printed.token);
    expect(row!.secret_key_hash).toBe(hashSecretKey(printed.secret_key));
  });
});
