/**
 * Builds a Dockerfile target the way `docker build` would, as overlayfs layers: each stage starts from its base
 * image's layers (base-images.ts) or an earlier stage's, and every RUN, COPY and WORKDIR adds one layer. RUN
 * lines run with chroot as the stage's USER in its WORKDIR with its ENV; COPY copies from the build context
 * (minus .dockerignore, owned by root as Docker makes it) or from another stage.
 *
 * Layers are cached like Docker's layer cache, in the state folder: a layer's key hashes everything before it
 * (base image, instructions, the content of every file COPY took), so an unchanged prefix is not built again
 * and any change to it is.
 */
import { cpSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { dirname, join, posix } from "node:path";
import { type ImageConfig, baseImage } from "./base-images.ts";
import type { DebianRelease } from "./debian-apt.ts";
import { type Log, inNamespace, removeTree, runInLayers } from "./debian-rootfs.ts";
import { type Dockerfile, type Instruction, type Stage, shellQuote, stagesFor, substitute } from "./dockerfile.ts";

export interface BuiltStage {
  name: string;
  /** Overlay layers, bottom first. */
  layers: string[];
  config: ImageConfig;
  key: string;
  release: DebianRelease | null;
}

export interface ReplayOptions {
  stateDir: string;
  /** Build context: the repository root. */
  context: string;
  dockerfile: Dockerfile;
  log: Log;
}

export class ReplayError extends Error {}

/** `.dockerignore` as Docker reads it: one pattern a line, `#` comments, a pattern also excludes what is below it. */
function dockerignore(context: string): (rel: string) => boolean {
  const file = join(context, ".dockerignore");
  const patterns = existsSync(file)
    ? readFileSync(file, "utf8").split("\n").map((l) => l.trim()).filter((l) => l && !l.startsWith("#"))
    : [];
  if (patterns.some((p) => p.startsWith("!"))) throw new ReplayError(".dockerignore exceptions (!) are not replayed by the check");
  const globs = patterns.map((p) => new Bun.Glob(p.replace(/^\/+|\/+$/g, "")));
  return (rel) => {
    const parts = rel.split("/");
    for (let i = 1; i <= parts.length; i++) {
      const prefix = parts.slice(0, i).join("/");
      if (globs.some((g) => g.match(prefix))) return true;
    }
    return false;
  };
}

/** Files under `path` (or `path` itself), relative to the context, in a stable order, ignored ones left out. */
function contextFiles(context: string, path: string, ignored: (rel: string) => boolean): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    if (ignored(rel)) return;
    const st = lstatSync(join(context, rel));
    if (st.isDirectory()) for (const e of readdirSync(join(context, rel)).sort()) walk(`${rel}/${e}`);
    else out.push(rel);
  };
  if (!existsSync(join(context, path))) throw new ReplayError(`COPY ${path}: not found in the build context`);
  walk(path);
  return out;
}

function hashOf(parts: (string | Uint8Array)[]): string {
  const h = new Bun.CryptoHasher("sha256");
  for (const p of parts) {
    h.update(p);
    h.update("\0");
  }
  return h.digest("hex").slice(0, 24);
}

/** uid, gid and home of USER `user` (a name from /etc/passwd of the stage, or numeric). */
function passwdEntry(layers: string[], user: string): { uid: number; gid: number; home: string } {
  const [name, group] = user.split(":") as [string, string | undefined];
  if (/^\d+$/.test(name)) return { uid: Number(name), gid: group ? Number(group) : Number(name), home: "/" };
  // The topmost layer holding etc/passwd has the stage's version of it.
  const file = [...layers].reverse().map((l) => join(l, "etc/passwd")).find((f) => existsSync(f));
  const line = file ? readFileSync(file, "utf8").split("\n").find((l) => l.startsWith(`${name}:`)) : undefined;
  if (!line) throw new ReplayError(`USER ${name}: no such user in the image`);
  const f = line.split(":");
  return { uid: Number(f[2]), gid: Number(f[3]), home: f[5] ?? "/" };
}

/** The identity and environment a process in the image gets: the image's ENV plus HOME of its user, as Docker sets it. */
export function processEnv(stage: { layers: string[]; config: ImageConfig }, extra: Record<string, string> = {}): { uid: number; gid: number; env: Record<string, string> } {
  const p = passwdEntry(stage.layers, stage.config.user);
  return { uid: p.uid, gid: p.gid, env: { HOSTNAME: "check-compose", HOME: p.home, ...Object.fromEntries(stage.config.env), ...extra } };
}

export class Replayer {
  private readonly built = new Map<string, BuiltStage>();
  private readonly usedLayers = new Set<string>();
  private readonly ignored: (rel: string) => boolean;
  readonly layersDir: string;

  constructor(private readonly opts: ReplayOptions) {
    this.ignored = dockerignore(opts.context);
    this.layersDir = join(opts.stateDir, "compose-check", "layers");
    mkdirSync(this.layersDir, { recursive: true });
  }

  /** Builds `target` and the stages it needs; returns every stage built so far, by name. */
  async build(target: string): Promise<Map<string, BuiltStage>> {
    for (const stage of stagesFor(this.opts.dockerfile, target)) {
      if (!this.built.has(stage.name)) this.built.set(stage.name, await this.buildStage(stage));
    }
    return this.built;
  }

  private async buildStage(stage: Stage): Promise<BuiltStage> {
    const { log, stateDir } = this.opts;
    const parent = this.built.get(stage.from);
    const base = parent ?? (await baseImage(stateDir, this.opts.context, stage.from, log));
    const layers = [...base.layers];
    let key = base.key;
    const config: ImageConfig = { env: new Map(base.config.env), workdir: base.config.workdir, user: base.config.user };
    for (const ins of stage.instructions) {
      const extra: (string | Uint8Array)[] = [];
      switch (ins.kind) {
        case "ENV":
          for (const [k, v] of ins.vars) config.env.set(k, substitute(v, config.env));
          break;
        case "WORKDIR":
          config.workdir = posix.resolve(config.workdir, substitute(ins.path, config.env));
          break;
        case "USER":
          config.user = substitute(ins.user, config.env);
          break;
        case "ARG":
          if (ins.value !== null && !config.env.has(ins.name)) config.env.set(ins.name, ins.value);
          break;
        case "COPY":
          if (ins.from) extra.push(this.stageNamed(ins.from).key);
          else for (const s of ins.sources) for (const f of contextFiles(this.opts.context, s.replace(/\/+$/, ""), this.ignored)) {
            extra.push(f, readFileSync(join(this.opts.context, f)), String(lstatSync(join(this.opts.context, f)).mode & 0o777));
          }
          break;
        default:
      }
      key = hashOf([key, JSON.stringify({ ...ins, line: 0 }), config.workdir, config.user, ...extra]);
      if (ins.kind !== "RUN" && ins.kind !== "COPY" && ins.kind !== "WORKDIR") continue;
      const layer = join(this.layersDir, key);
      const tag = `[${stage.name}] line ${ins.line}: ${ins.kind}`;
      if (existsSync(`${layer}.complete`)) {
        if (ins.kind === "RUN") log(`${tag} cached`);
        // Its age says when a build last used it (see prune).
        const now = new Date();
        utimesSync(`${layer}.complete`, now, now);
      } else {
        removeTree(layer);
        mkdirSync(layer, { recursive: true });
        const started = Date.now();
        if (ins.kind !== "WORKDIR") log(`${tag} ${ins.kind === "RUN" ? ins.command : `${ins.from ? `--from=${ins.from} ` : ""}${ins.sources.join(" ")} ${ins.dest}`}`);
        await this.apply(ins, { lower: layers, upper: layer }, config, tag);
        writeFileSync(`${layer}.complete`, "");
        if (ins.kind === "RUN") log(`${tag} done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
      }
      this.usedLayers.add(key);
      layers.push(layer);
    }
    return { name: stage.name, layers, config, key, release: base.release };
  }

  private stageNamed(name: string): BuiltStage {
    const s = this.built.get(name);
    if (!s) throw new ReplayError(`COPY --from=${name}: no stage of that name was built before`);
    return s;
  }

  private async apply(ins: Instruction, fs: { lower: string[]; upper: string }, config: ImageConfig, tag: string): Promise<void> {
    const { log, stateDir } = this.opts;
    const sub = (l: string) => log(`  ${l}`);
    if (ins.kind === "RUN") {
      const { uid, gid, env } = processEnv({ layers: fs.lower, config });
      const r = await runInLayers(stateDir, fs, { argv: ["/bin/sh", "-c", ins.command], uid, gid, cwd: config.workdir, env }, sub);
      if (r.code !== 0) throw new ReplayError(`${tag} exited ${r.code}`);
      return;
    }
    if (ins.kind === "WORKDIR") {
      const r = await inNamespace(stateDir, fs, `mkdir -p "$MNT"${shellQuote(config.workdir)}`, {}, sub);
      if (r.code !== 0) throw new ReplayError(`${tag} failed`);
      return;
    }
    if (ins.kind !== "COPY") return;
    // Sources are read below $SRC: the other stage's filesystem, or a root-owned copy of the context's files.
    let staging: string | null = null;
    let source: string[];
    if (ins.from) {
      source = this.stageNamed(ins.from).layers;
    } else {
      staging = join(stateDir, "compose-check", "tmp", `context-${process.pid}`);
      removeTree(staging);
      for (const s of ins.sources) {
        for (const f of contextFiles(this.opts.context, s.replace(/\/+$/, ""), this.ignored)) {
          mkdirSync(dirname(join(staging, f)), { recursive: true });
          cpSync(join(this.opts.context, f), join(staging, f), { verbatimSymlinks: true });
        }
      }
      Bun.spawnSync(["chown", "-R", "0:0", staging]);
      source = [staging];
    }
    const dest = posix.resolve(config.workdir, substitute(ins.dest, config.env));
    const intoDir = ins.dest.endsWith("/") || ins.sources.length > 1;
    const lines = ins.sources.map((s) => {
      const from = `"$SRC"/${shellQuote(posix.normalize(`./${s}`))}`;
      const to = `"$MNT"${shellQuote(dest)}`;
      // Docker copies a directory's contents, not the directory itself; a file lands in a directory
      // destination under its own name.
      return `if [ -d ${from} ]; then mkdir -p ${to} && cp -a ${from}/. ${to}/; ` +
        `elif [ -e ${from} ]; then ${intoDir ? `mkdir -p ${to} && cp -a ${from} ${to}/` : `mkdir -p "$(dirname ${to})" && cp -a ${from} ${to}`}; ` +
        `else echo "COPY: ${s} not found" >&2; exit 1; fi`;
    });
    try {
      const r = await inNamespace(stateDir, fs, lines.join("\n"), {}, sub, undefined, source);
      if (r.code !== 0) throw new ReplayError(`${tag} failed`);
    } finally {
      if (staging) removeTree(staging);
    }
  }

  /**
   * Deletes cached layers no build has used for `maxAgeMs` (layers of older Dockerfiles and contexts; other
   * worktrees sharing the state folder keep theirs while they use them), and unfinished ones.
   */
  prune(maxAgeMs = 3 * 24 * 3600_000): void {
    const entries = readdirSync(this.layersDir);
    const complete = new Set(entries.filter((e) => e.endsWith(".complete")).map((e) => e.replace(/\.complete$/, "")));
    const stale = (key: string) => !complete.has(key) || Date.now() - statSync(join(this.layersDir, `${key}.complete`)).mtimeMs > maxAgeMs;
    const unused = entries.filter((e) => {
      const key = e.replace(/\.complete$/, "");
      return !this.usedLayers.has(key) && stale(key);
    });
    // Markers first: a layer is never left looking complete while half deleted.
    for (const e of unused.filter((e) => e.endsWith(".complete"))) removeTree(join(this.layersDir, e));
    for (const e of unused.filter((e) => !e.endsWith(".complete"))) removeTree(join(this.layersDir, e));
  }
}
