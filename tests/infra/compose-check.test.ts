/**
 * `make check-compose` (infrastructure/compose-check): passes on this repository, and fails for the mistakes it
 * exists to catch: a package the base image's Debian release lacks, an unpinned image, a compose file the
 * Compose Specification rejects, a script stored with CRLF or without its run bit. The full run builds (first
 * time) and replays the Dockerfile in Debian trixie root filesystems cached under the state folder.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { aptPackages, parseDockerfile, stagesFor } from "../../infrastructure/compose-check/dockerfile.ts";
import { runInLayers, mountsUnder } from "../../infrastructure/compose-check/debian-rootfs.ts";
import { scriptProblems } from "../../infrastructure/compose-check/git-scripts.ts";
import { unpinnedReason } from "../../infrastructure/compose-check/image-tags.ts";
import { ROOT } from "../support/stack.ts";

const MAIN = join(ROOT, "infrastructure/compose-check/main.ts");
const STATE = process.env.INGEST_STATE_DIR ?? join(ROOT, ".local");
const tmp = mkdtempSync(join(tmpdir(), "compose-check-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Runs the check as `make check-compose` does, echoing its progress to stderr as it goes. */
async function checkCompose(args: string[]): Promise<{ code: number; out: string }> {
  const proc = Bun.spawn(["bun", MAIN, ...args], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
  let out = "";
  const pump = async (s: ReadableStream<Uint8Array>) => {
    const d = new TextDecoder();
    for await (const chunk of s) {
      const text = d.decode(chunk, { stream: true });
      out += text;
      process.stderr.write(text);
    }
  };
  const [code] = await Promise.all([proc.exited, pump(proc.stdout), pump(proc.stderr)]);
  return { code, out };
}

describe("make check-compose", () => {
  test("passes on the repository's compose file and Dockerfile (every stage replayed on trixie)", async () => {
    const { code, out } = await checkCompose([]);
    expect(out).toContain("check-compose: all checks passed");
    expect(out).toContain("ok    every Dockerfile stage's commands run in a Debian root filesystem");
    expect(out).toContain("ok    init image: the init service's command runs against the native stack");
    expect(out).toContain("ok    app image: capture, query and consumer start and answer /ready 200");
    expect(out).toMatch(/librdkafka=2\.8\.\d/);
    expect(code).toBe(0);
    // Nothing it mounted is visible outside its namespaces.
    expect(mountsUnder(join(STATE, "compose-check"))).toEqual([]);
  }, 1_200_000);

  test("fails when the Dockerfile installs a package the base image's release lacks", async () => {
    // The very mistake that broke `docker compose up`: openjdk-17 on oven/bun's trixie.
    const good = readFileSync(join(ROOT, "infrastructure/Dockerfile"), "utf8");
    expect(good).toContain("openjdk-21-jre-headless");
    const bad = join(tmp, "Dockerfile.jdk17");
    writeFileSync(bad, good.replace("openjdk-21-jre-headless", "openjdk-17-jre-headless"));
    const { code, out } = await checkCompose(["--dockerfile", bad]);
    expect(code).toBe(1);
    expect(out).toContain("package openjdk-17-jre-headless has no candidate in trixie (base image oven/bun:1.4.5)");
    expect(out).toContain("skip  stage replay: the checks above failed");
  }, 120_000);

  test("fails for a compose file the schema rejects, unpinned images and unportable settings", async () => {
    const compose = join(ROOT, "infrastructure", "compose-check-test.yml");
    const text = readFileSync(join(ROOT, "infrastructure/docker-compose.yml"), "utf8")
      .replace("image: redis:7", "image: redis")
      .replace("image: postgres:16", "image: postgres:latest")
      .replace("    hostname: kafka\n", "    hostname: kafka\n    ulimitz: {}\n    ulimits: { nofile: 262144 }\n")
      .replace("/usr/local/bin/kafka-topics:ro,z", "/usr/local/bin/kafka-topics:ro")
      .replace('"127.0.0.1:6379:6379"', '"6379:6379"')
      .replace("HOST://127.0.0.1:9092", "HOST://localhost:9092");
    // Beside the real one, so its relative paths (build context, bind mounts) mean the same.
    writeFileSync(compose, text);
    try {
      const { code, out } = await checkCompose(["--compose", compose, "--static-only"]);
      expect(code).toBe(1);
      expect(out).toContain("/services/kafka: must NOT have additional properties (ulimitz)");
      expect(out).toContain("service redis: redis: no tag (means latest)");
      expect(out).toContain("service postgres: postgres:latest: tag latest");
      expect(out).toContain("service kafka: bind mount ./kafka/compose-bin/kafka-topics:/usr/local/bin/kafka-topics:ro has no :z");
      expect(out).toContain("service kafka: ulimits (rootless Docker and Podman refuse to start it)");
      expect(out).toContain(`service redis: port "6379:6379" is published on every interface, not 127.0.0.1`);
      expect(out).toContain("service kafka: KAFKA_ADVERTISED_LISTENERS names localhost");
    } finally {
      rmSync(compose, { force: true });
    }
  }, 120_000);

  test("a run killed on its timeout leaves no mount and no process behind", async () => {
    const debian = [...new Bun.Glob("debian-trixie-*.complete").scanSync(join(STATE, "compose-check/images"))][0];
    expect(debian).toBeDefined();
    const upper = join(STATE, "compose-check", "tmp", `kill-test-${process.pid}`);
    const marker = `check-compose-kill-${process.pid}`;
    try {
      const started = Date.now();
      const r = await runInLayers(STATE, { lower: [join(STATE, "compose-check/images", debian!.replace(/\.complete$/, ""))], upper }, {
        // A child in the background and one in the foreground, both still running when the timeout kills the run,
        // as an unprivileged user (as the images' USER bun): the kernel drops a parent-death signal on a uid change.
        argv: ["/bin/bash", "-c", `(exec -a ${marker} sleep 300) & exec -a ${marker} sleep 300`], uid: 1000, gid: 1000, cwd: "/", env: { PATH: "/usr/bin:/bin" }, timeoutMs: 1500,
      }, null);
      expect(Date.now() - started).toBeGreaterThanOrEqual(1400);
      expect(r.code).not.toBe(0);
      expect(mountsUnder(join(STATE, "compose-check"))).toEqual([]);
      const left = Bun.spawnSync(["pgrep", "-f", marker]).stdout.toString().trim();
      expect(left).toBe("");
    } finally {
      rmSync(upper, { recursive: true, force: true });
    }
  }, 60_000);
});

describe("check-compose pieces", () => {
  test("image tags: a version tag or a digest is pinned; none, latest or a codename is not", () => {
    expect(unpinnedReason("apache/kafka:4.3.1")).toBeNull();
    expect(unpinnedReason("postgres:16")).toBeNull();
    expect(unpinnedReason("localhost:5000/x:1.2")).toBeNull();
    expect(unpinnedReason("redis@sha256:abc")).toBeNull();
    expect(unpinnedReason("redis")).toBe("no tag (means latest)");
    expect(unpinnedReason("localhost:5000/x")).toBe("no tag (means latest)");
    expect(unpinnedReason("redis:latest")).toBe("tag latest");
    expect(unpinnedReason("debian:bookworm")).toBe("tag bookworm names no version");
  });

  test("the Dockerfile reader: continuations, comments, ARG substitution, apt-get packages, stage order", () => {
    const d = parseDockerfile([
      "ARG V=1.2.3",
      "FROM oven/bun:${V} AS base",
      "RUN apt-get update \\",
      "# a comment inside the continuation",
      " && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends a1 b-c=2.0 >/dev/null \\",
      " && rm -rf /var/lib/apt/lists/*",
      "FROM base AS two",
      "COPY --from=base /x ./y",
    ].join("\n"));
    expect(d.stages.map((s) => [s.name, s.from])).toEqual([["base", "oven/bun:1.2.3"], ["two", "base"]]);
    const run = d.stages[0]!.instructions[0]!;
    expect(run.kind).toBe("RUN");
    if (run.kind === "RUN") expect(aptPackages(run.command)).toEqual(["a1", "b-c"]);
    expect(stagesFor(d, "two").map((s) => s.name)).toEqual(["base", "two"]);
    expect(() => parseDockerfile("FROM x\nADD a b\n")).toThrow("ADD is not replayed");
  });

  test("scripts: CRLF in git, a missing run bit and no eol=lf are each reported", () => {
    const repo = join(tmp, "repo");
    const git = (...a: string[]) => expect(Bun.spawnSync(["git", "-C", repo, ...a], { stderr: "pipe" }).exitCode).toBe(0);
    expect(Bun.spawnSync(["git", "init", "-q", repo]).exitCode).toBe(0);
    writeFileSync(join(repo, "good.sh"), "#!/bin/sh\necho ok\n", { mode: 0o755 });
    writeFileSync(join(repo, "bad.sh"), "#!/bin/sh\r\necho ok\r\n", { mode: 0o644 });
    writeFileSync(join(repo, ".gitattributes"), "good.sh text eol=lf\n");
    git("-c", "core.autocrlf=false", "add", ".");
    expect(scriptProblems(repo, "good.sh")).toEqual([]);
    const bad = scriptProblems(repo, "bad.sh");
    expect(bad).toHaveLength(3);
    expect(bad.join("\n")).toContain("mode 100644");
    expect(bad.join("\n")).toContain("CRLF");
    expect(bad.join("\n")).toContain("eol=");
    expect(scriptProblems(repo, "missing.sh")).toEqual(["missing.sh: not in git"]);
    // A mounted configuration file needs LF but no run bit.
    writeFileSync(join(repo, "app.properties"), "a=1\n", { mode: 0o644 });
    writeFileSync(join(repo, ".gitattributes"), "* text=auto eol=lf\n");
    git("add", ".");
    expect(scriptProblems(repo, "app.properties")).toEqual([]);
    expect(existsSync(join(repo, ".git"))).toBe(true);
  });
});
