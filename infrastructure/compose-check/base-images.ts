/**
 * The images the Dockerfile builds FROM, as the check stands them in without a registry:
 *
 * - `oven/bun:<v>`: a Debian minbase root filesystem of the image's release (trixie since bun 1.3.4, see
 *   oven-sh/bun's dockerhub/debian/Dockerfile) with what that Dockerfile adds: the baseline build of bun <v> at
 *   /usr/local/bin/bun (here from npm's @oven/bun-linux-x64-baseline, the same build), the `bunx` link, user and
 *   group `bun` (1000), its environment and WORKDIR /home/bun/app.
 * - `apache/kafka:<v>`: only used through `COPY --from`; stood in by the same release's jars from Maven Central
 *   (`make deps`, infrastructure/kafka/pom.xml) under /opt/kafka/libs and a /opt/kafka/bin/kafka-topics.sh that
 *   runs Kafka's TopicCommand from them. It proves the init image's JRE runs Kafka <v>'s tools, not the image's
 *   own scripts.
 */
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { DebianRelease } from "./debian-apt.ts";
import { type Log, baseTarball, extractTarball, removeTree, runInLayers, spawnLogged } from "./debian-rootfs.ts";
import { parseImage } from "./image-tags.ts";

export interface ImageConfig {
  env: Map<string, string>;
  workdir: string;
  user: string;
}

export interface BaseImage {
  /** Cache identity: changes when what the directory holds would change. */
  key: string;
  /** The image's filesystem as overlay layers, bottom first (never modified: stages stack their own on top). */
  layers: string[];
  config: ImageConfig;
  /** Debian release, for images whose RUN lines use apt. */
  release: DebianRelease | null;
}

const DEBIAN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** What oven/bun's Dockerfile does on top of Debian, in its order. */
const OVEN_BUN_SETUP = "groupadd bun --gid 1000 && useradd bun --uid 1000 --gid bun --shell /bin/sh --create-home && ln -s /usr/local/bin/bun /usr/local/bin/bunx && mkdir -p /home/bun/app && bun --version";

/** Behaves as oven/bun's docker-entrypoint.sh: arguments that are not a runnable command are handed to bun. */
const OVEN_BUN_ENTRYPOINT = `#!/bin/sh
set -e
run_with_bun() { exec /usr/local/bin/bun "$@"; }
case "$1" in -*) run_with_bun "$@" ;; esac
command -v "$1" >/dev/null 2>&1 || run_with_bun "$@"
if [ -f "$1" ] && [ ! -x "$1" ]; then run_with_bun "$@"; fi
exec "$@"
`;

/** Which Debian release an oven/bun tag is built on (the tags without a variant are the `debian` images). */
export function ovenBunRelease(tag: string): DebianRelease {
  const m = /^(\d+)\.(\d+)\.(\d+)$/.exec(tag);
  if (!m) throw new Error(`oven/bun:${tag}: the check knows the Debian release of plain version tags only`);
  const [maj, min, rev] = m.slice(1).map(Number) as [number, number, number];
  const v = maj * 1_000_000 + min * 1000 + rev;
  if (v >= 1_003_004) return { suite: "trixie" };
  if (v >= 1_001_000) return { suite: "bookworm" };
  throw new Error(`oven/bun:${tag} is older than the check knows`);
}

function npmBunPackage(): string {
  const arch = process.arch;
  if (arch === "x64") return "@oven/bun-linux-x64-baseline";
  if (arch === "arm64") return "@oven/bun-linux-aarch64";
  throw new Error(`no bun build for ${arch}`);
}

/** bun <version>'s binary from npm (the registry package ships it), cached in the state folder. */
async function bunBinary(stateDir: string, version: string, log: Log): Promise<string> {
  const dir = join(stateDir, "compose-check", "bun", version);
  const bin = join(dir, "bun");
  if (existsSync(bin)) return bin;
  mkdirSync(dir, { recursive: true });
  const pkg = `${npmBunPackage()}@${version}`;
  log(`npm pack ${pkg}`);
  const packed = await spawnLogged(["npm", "pack", "--silent", pkg, "--pack-destination", dir], null);
  if (packed.code !== 0) throw new Error(`npm pack ${pkg} failed: ${packed.out}`);
  const tgz = readdirSync(dir).find((f) => f.endsWith(".tgz"));
  if (!tgz) throw new Error(`npm pack ${pkg} left no tarball`);
  const x = await spawnLogged(["tar", "-xzf", join(dir, tgz), "-C", dir, "--strip-components=2", "package/bin/bun"], null);
  if (x.code !== 0) throw new Error(`cannot extract bun from ${tgz}: ${x.out}`);
  rmSync(join(dir, tgz));
  return bin;
}

async function ovenBun(stateDir: string, tag: string, log: Log): Promise<BaseImage> {
  const release = ovenBunRelease(tag);
  const tar = await baseTarball(stateDir, release, log);
  const images = join(stateDir, "compose-check", "images");
  const debian = join(images, `debian-${release.suite}-${Bun.file(tar).lastModified}`);
  const recipe = Bun.hash(OVEN_BUN_SETUP + OVEN_BUN_ENTRYPOINT).toString(16);
  const key = `oven-bun-${tag}-${release.suite}-${Bun.file(tar).lastModified}-${recipe}`;
  const bunLayer = join(images, key);
  const config: ImageConfig = {
    env: new Map([["PATH", DEBIAN_PATH], ["BUN_RUNTIME_TRANSPILER_CACHE_PATH", "0"], ["BUN_INSTALL_BIN", "/usr/local/bin"]]),
    workdir: "/home/bun/app",
    user: "root",
  };
  const image = { key, layers: [debian, bunLayer], config, release };
  if (existsSync(`${debian}.complete`) && existsSync(`${bunLayer}.complete`)) return image;
  if (!existsSync(`${debian}.complete`)) {
    await extractTarball(tar, debian);
    writeFileSync(`${debian}.complete`, "");
  }
  log(`oven/bun:${tag}: ${release.suite} root filesystem + bun ${tag} from npm`);
  const bin = await bunBinary(stateDir, tag, log);
  removeTree(bunLayer);
  mkdirSync(join(bunLayer, "usr/local/bin"), { recursive: true });
  cpSync(bin, join(bunLayer, "usr/local/bin/bun"));
  writeFileSync(join(bunLayer, "usr/local/bin/docker-entrypoint.sh"), OVEN_BUN_ENTRYPOINT, { mode: 0o755 });
  const setup = await runInLayers(stateDir, { lower: [debian], upper: bunLayer }, {
    argv: ["sh", "-c", OVEN_BUN_SETUP], uid: 0, gid: 0, cwd: "/", env: Object.fromEntries(config.env),
  }, (l) => log(`  ${l}`));
  if (setup.code !== 0) throw new Error(`setting up oven/bun:${tag} failed`);
  if (setup.out.trim() !== tag) throw new Error(`bun --version in the image printed ${setup.out.trim()}, expected ${tag}`);
  writeFileSync(`${bunLayer}.complete`, "");
  return image;
}

function apacheKafka(stateDir: string, root: string, tag: string): BaseImage {
  const pom = readFileSync(join(root, "infrastructure/kafka/pom.xml"), "utf8");
  const pinned = /<kafka\.version>([^<]+)<\/kafka\.version>/.exec(pom)?.[1];
  if (pinned !== tag) throw new Error(`apache/kafka:${tag} cannot be stood in by the native jars: pom.xml pins Kafka ${pinned}`);
  const libs = join(stateDir, "kafka", "libs");
  if (!existsSync(libs)) throw new Error(`${libs} missing: run make deps`);
  const script = [
    "#!/bin/sh",
    "# Stand-in for the apache/kafka image's script (make check-compose): Kafka's TopicCommand from the same release's jars.",
    'exec java ${KAFKA_HEAP_OPTS:--Xmx256m} -Dlog4j2.configurationFile=/opt/kafka/config/log4j2.properties -Dkafka.logs.dir="${LOG_DIR:-/tmp}" -Dkafka.root.level=WARN -Dkafka.log.appender=STDERR -cp "/opt/kafka/libs/*" org.apache.kafka.tools.TopicCommand "$@"',
    "",
  ].join("\n");
  const log4j = readFileSync(join(root, "infrastructure/kafka/log4j2.properties"));
  const key = `apache-kafka-${tag}-standin-${Bun.hash(readdirSync(libs).sort().join(",") + script + log4j.toString()).toString(16)}`;
  const dir = join(stateDir, "compose-check", "images", key);
  const image = { key, layers: [dir], config: { env: new Map(), workdir: "/", user: "root" }, release: null };
  if (existsSync(`${dir}.complete`)) return image;
  removeTree(dir);
  mkdirSync(join(dir, "opt/kafka/bin"), { recursive: true });
  mkdirSync(join(dir, "opt/kafka/config"), { recursive: true });
  cpSync(libs, join(dir, "opt/kafka/libs"), { recursive: true, filter: (src) => !src.endsWith(".sha256") });
  writeFileSync(join(dir, "opt/kafka/config/log4j2.properties"), log4j);
  writeFileSync(join(dir, "opt/kafka/bin/kafka-topics.sh"), script, { mode: 0o755 });
  writeFileSync(`${dir}.complete`, "");
  return image;
}

/** The stand-in for `ref`; throws for an image the check cannot stand in. */
export async function baseImage(stateDir: string, root: string, ref: string, log: Log): Promise<BaseImage> {
  const { repository, tag } = parseImage(ref);
  if (repository === "oven/bun" && tag) return ovenBun(stateDir, tag, log);
  if (repository === "apache/kafka" && tag) return apacheKafka(stateDir, root, tag);
  throw new Error(`the check has no stand-in for image ${ref}`);
}
