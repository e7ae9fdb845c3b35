/**
 * `make check-compose`: what can be proven about infrastructure/docker-compose.yml and infrastructure/Dockerfile
 * without a Docker engine (README, "Docker compose", says what it proves and what it cannot).
 *
 *   bun infrastructure/compose-check/main.ts [--compose FILE] [--dockerfile FILE] [--static-only]
 *
 * Static checks first (schema, pinned images, versions, scripts in git, apt packages); the Dockerfile's stages
 * are replayed only when those pass. Exit 0 when everything passed, 1 otherwise.
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { parseArgs } from "node:util";
import { type ComposeFile, portabilityProblems, readCompose, schemaErrors } from "./compose-file.ts";
import { type DebianRelease, ScratchApt } from "./debian-apt.ts";
import { ovenBunRelease } from "./base-images.ts";
import { aptPackages, type Dockerfile, parseDockerfile } from "./dockerfile.ts";
import { scriptProblems } from "./git-scripts.ts";
import { parseImage, unpinnedReason } from "./image-tags.ts";
import { nativeStackAnswers, proveApp, proveAppsReady, proveInit } from "./image-proofs.ts";
import { withCacheLock } from "./cache-lock.ts";
import { Replayer } from "./replay.ts";

const ROOT = resolve(import.meta.dir, "../..");
const { values } = parseArgs({
  options: {
    compose: { type: "string", default: join(ROOT, "infrastructure/docker-compose.yml") },
    dockerfile: { type: "string" },
    "static-only": { type: "boolean", default: false },
  },
});
const STATE = process.env.INGEST_STATE_DIR ?? join(ROOT, ".local");
const started = Date.now();
const elapsed = () => `${((Date.now() - started) / 1000).toFixed(0)}s`;
const log = (line: string) => console.log(`[check-compose ${elapsed()}] ${line}`);
const failures: string[] = [];

function check(name: string, problems: string[], detail = ""): void {
  if (problems.length === 0) {
    console.log(`ok    ${name}${detail ? `: ${detail}` : ""}`);
  } else {
    console.log(`FAIL  ${name}`);
    for (const p of problems) console.log(`      - ${p}`);
    failures.push(name);
  }
}

const composePath = resolve(values.compose!);
const composeDir = dirname(composePath);
const compose: ComposeFile = readCompose(readFileSync(composePath, "utf8"));

// ---- 1. the Compose Specification's schema, and what the schema cannot say ----
const builds = Object.entries(compose.services).flatMap(([name, s]) => {
  if (!s.build) return [];
  const b = typeof s.build === "string" ? { context: s.build } : s.build;
  const context = resolve(composeDir, b.context ?? ".");
  return [{ service: name, context, dockerfile: resolve(context, b.dockerfile ?? "Dockerfile"), target: b.target ?? null }];
});
{
  const problems = await schemaErrors(compose, ROOT);
  for (const [name, s] of Object.entries(compose.services)) if (!s.image && !s.build) problems.push(`service ${name}: neither image nor build`);
  for (const b of builds) if (!existsSync(b.dockerfile)) problems.push(`service ${b.service}: ${b.dockerfile} missing`);
  check("compose file validates against the Compose Specification schema", problems, `${Object.keys(compose.services).length} services`);
}

check("compose file is portable: bind mounts :z, no ulimits, ports on 127.0.0.1, Kafka advertises 127.0.0.1", portabilityProblems(compose));

const dockerfilePaths = [...new Set(builds.map((b) => b.dockerfile))];
if (dockerfilePaths.length !== 1 && !values.dockerfile) throw new Error(`expected one Dockerfile, found ${dockerfilePaths.join(", ")}`);
const dockerfilePath = values.dockerfile ? resolve(values.dockerfile) : dockerfilePaths[0]!;
const context = builds[0]?.context ?? ROOT;
const dockerfile: Dockerfile = parseDockerfile(readFileSync(dockerfilePath, "utf8"));
const stageNames = new Set(dockerfile.stages.map((s) => s.name));
const images = [
  ...Object.entries(compose.services).flatMap(([n, s]) => (s.image ? [{ where: `service ${n}`, ref: s.image }] : [])),
  ...dockerfile.stages.filter((s) => !stageNames.has(s.from)).map((s) => ({ where: `Dockerfile line ${s.line}`, ref: s.from })),
];

// ---- 2. pinned images, and the versions shared with the native stack ----
check(
  "every image is pinned to a version tag",
  images.flatMap(({ where, ref }) => {
    const why = unpinnedReason(ref);
    return why ? [`${where}: ${ref}: ${why}`] : [];
  }),
  [...new Set(images.map((i) => i.ref))].join(", "),
);
{
  const problems: string[] = [];
  const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { engines?: { bun?: string } };
  const kafka = /<kafka\.version>([^<]+)</.exec(readFileSync(join(ROOT, "infrastructure/kafka/pom.xml"), "utf8"))?.[1];
  for (const { where, ref } of images) {
    const { repository, tag } = parseImage(ref);
    if (repository === "oven/bun" && tag !== pkg.engines?.bun) problems.push(`${where}: ${ref}, but package.json pins bun ${pkg.engines?.bun}`);
    if (repository === "apache/kafka" && tag !== kafka) problems.push(`${where}: ${ref}, but infrastructure/kafka/pom.xml pins Kafka ${kafka}`);
  }
  check("images match the native stack's Bun and Kafka versions", problems);
}

// ---- 3. files that go into containers: LF (and run bits for scripts) in git ----
{
  const scripts = new Set<string>();
  for (const s of Object.values(compose.services)) {
    for (const v of s.volumes ?? []) {
      const src = typeof v === "string" ? v.split(":")[0]! : String((v as { source?: string }).source ?? "");
      if (src.startsWith(".") || src.startsWith("/")) scripts.add(relative(ROOT, resolve(composeDir, src)));
    }
  }
  for (const st of dockerfile.stages) for (const i of st.instructions) {
    if (i.kind === "COPY" && !i.from) for (const s of i.sources) if (s.endsWith(".sh")) scripts.add(s);
  }
  // Mounted configuration (the cluster profile's ClickHouse and Keeper XML) is read, never run: LF only;
  // scriptProblems asks a run bit of `#!` files alone.
  check("files mounted or copied into containers are LF in git, scripts mode 100755", [...scripts].flatMap((s) => scriptProblems(ROOT, s)), [...scripts].join(", "));
}

// ---- 4. every apt package exists in the base image's Debian release ----
const stageRelease = new Map<string, DebianRelease | null>();
const stageImage = new Map<string, string>();
for (const st of dockerfile.stages) {
  const parent = stageRelease.get(st.from);
  const { repository, tag } = parseImage(st.from);
  stageRelease.set(st.name, parent !== undefined ? parent : repository === "oven/bun" && tag ? ovenBunRelease(tag) : null);
  stageImage.set(st.name, stageImage.get(st.from) ?? st.from);
}
const candidates = new Map<string, string>();
{
  const problems: string[] = [];
  const found: string[] = [];
  const apts = new Map<string, ScratchApt>();
  for (const st of dockerfile.stages) {
    for (const i of st.instructions) {
      if (i.kind !== "RUN") continue;
      const pkgs = aptPackages(i.command);
      if (pkgs.length === 0) continue;
      const release = stageRelease.get(st.name);
      if (!release) {
        problems.push(`stage ${st.name} (line ${i.line}) installs ${pkgs.join(" ")} on ${stageImage.get(st.name)}, whose Debian release the check does not know`);
        continue;
      }
      let apt = apts.get(release.suite);
      if (!apt) {
        log(`apt-get update for ${release.suite} in ${relative(ROOT, join(STATE, "compose-check/apt"))} (the machine's sources untouched)`);
        apt = new ScratchApt(STATE, release);
        apt.update();
        apts.set(release.suite, apt);
      }
      for (const [p, v] of apt.candidates(pkgs)) {
        if (v) {
          found.push(`${p} ${v}`);
          candidates.set(p, v);
        } else {
          problems.push(`Dockerfile line ${i.line} (stage ${st.name}): package ${p} has no candidate in ${release.suite} (base image ${stageImage.get(st.name)})`);
        }
      }
    }
  }
  check("every apt package the Dockerfile installs exists in its base image's Debian release", problems, found.join(", "));
}

// ---- 5. the stages replayed in Debian root filesystems, and what the images must do ----
if (failures.length) {
  console.log("skip  stage replay: the checks above failed");
} else if (values["static-only"]) {
  console.log("skip  stage replay: --static-only");
} else {
  await withCacheLock(STATE, log, async () => {
    const replayer = new Replayer({ stateDir: STATE, context, dockerfile, log });
    let ok = false;
    try {
      const targets = [...new Set(builds.map((b) => b.target ?? dockerfile.stages.at(-1)!.name))];
      let stages = new Map();
      for (const t of targets) {
        log(`building target ${t}`);
        stages = await replayer.build(t);
      }
      check("every Dockerfile stage's commands run in a Debian root filesystem", [], [...stages.keys()].join(", "));
      const app = stages.get("app");
      const init = stages.get("init");
      if (!app || !init) throw new Error("the Dockerfile has no app or init stage");
      check("the native stack answers (what the images are run against)", await nativeStackAnswers(log));
      check("app image: librdkafka through bun:ffi, project:create finds its migrations", await proveApp(STATE, app, compose, candidates, log));
      check("init image: the init service's command runs against the native stack", await proveInit(STATE, init, compose, log));
      check("app image: capture, query and consumer start and answer /ready 200", await proveAppsReady(STATE, ROOT, app, compose, log));
      ok = failures.length === 0;
    } catch (err) {
      check("every Dockerfile stage's commands run in a Debian root filesystem", [err instanceof Error ? err.message : String(err)]);
    } finally {
      if (ok) replayer.prune();
    }
  });
}

console.log(failures.length ? `check-compose: ${failures.length} check(s) failed (${elapsed()})` : `check-compose: all checks passed (${elapsed()})`);
process.exit(failures.length ? 1 : 0);
