/**
 * Debian root filesystems for the check: built once per release by `mmdebstrap` (minbase, the variant Docker's
 * `debian` images are made of) from Debian's archive, cached as a tarball in the state folder, and commands run
 * inside them with chroot.
 *
 * Every run happens in its own mount and PID namespace (`unshare --mount --pid --kill-child`): the overlay, /proc and
 * /dev are mounted inside that namespace only, so they disappear with its last process whatever way the run ends
 * (even SIGKILL), and no process started inside outlives it. `assertNoMounts` checks that before anything is
 * deleted.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { type DebianRelease, sourcesFor } from "./debian-apt.ts";

export type Log = (line: string) => void;

const WEEK_MS = 7 * 24 * 3600_000;

/** Runs `cmd`, handing each output line to `log`; resolves with the exit code and the collected output. */
export async function spawnLogged(cmd: string[], log: Log | null, opts: { env?: Record<string, string>; timeoutMs?: number; signal?: AbortSignal } = {}): Promise<{ code: number; out: string }> {
  const proc = Bun.spawn(cmd, { stdout: "pipe", stderr: "pipe", stdin: "ignore", env: opts.env ?? { ...process.env, LC_ALL: "C" } });
  const stop = () => proc.kill("SIGKILL");
  if (opts.signal?.aborted) stop();
  opts.signal?.addEventListener("abort", stop, { once: true });
  let out = "";
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    let pending = "";
    const decoder = new TextDecoder();
    for await (const bytes of stream) {
      const chunk = decoder.decode(bytes, { stream: true });
      out += chunk;
      pending += chunk;
      const lines = pending.split("\n");
      pending = lines.pop()!;
      for (const l of lines) log?.(l);
    }
    if (pending) log?.(pending);
  };
  const timer = opts.timeoutMs ? setTimeout(() => proc.kill("SIGKILL"), opts.timeoutMs) : null;
  try {
    const [code] = await Promise.all([proc.exited, pump(proc.stdout), pump(proc.stderr)]);
    return { code, out };
  } finally {
    if (timer) clearTimeout(timer);
  }
}

/**
 * The release's minbase tarball, built by mmdebstrap when missing or older than a week (so security updates
 * reach the check as they reach a fresh `docker pull`). Returns its path.
 */
export async function baseTarball(stateDir: string, release: DebianRelease, log: Log): Promise<string> {
  const tar = join(stateDir, "compose-check", "rootfs", `${release.suite}-minbase.tar`);
  if (existsSync(tar) && Date.now() - statSync(tar).mtimeMs < WEEK_MS) return tar;
  if (!Bun.which("mmdebstrap")) throw new Error("mmdebstrap is missing: run `make deps` (Debian package mmdebstrap)");
  mkdirSync(dirname(tar), { recursive: true });
  const tmp = `${tar}.partial`;
  rmSync(tmp, { force: true });
  log(`mmdebstrap: building a ${release.suite} minbase root filesystem from Debian's packages (about a minute on first run)`);
  const started = Date.now();
  const { code } = await spawnLogged(
    ["mmdebstrap", "--mode=root", "--variant=minbase", "--format=tar", release.suite, tmp, ...sourcesFor(release)],
    (l) => { if (/^[IEW]:/.test(l)) log(`  ${l}`); },
  );
  if (code !== 0) throw new Error(`mmdebstrap failed (exit ${code})`);
  renameSync(tmp, tar);
  log(`mmdebstrap: done in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  return tar;
}

/** Mount points at or below `dir` in this process's mount namespace. */
export function mountsUnder(dir: string): string[] {
  const root = resolve(dir);
  return readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .map((l) => l.split(" ")[4])
    .filter((m): m is string => !!m && (m === root || m.startsWith(`${root}/`)));
}

export function assertNoMounts(dir: string): void {
  const left = mountsUnder(dir);
  if (left.length) throw new Error(`mounts left under ${dir}: ${left.join(", ")}`);
}

/** Deletes a filesystem directory, never while anything is mounted below it. */
export function removeTree(dir: string): void {
  if (!existsSync(dir)) return;
  assertNoMounts(dir);
  rmSync(dir, { recursive: true, force: true });
}

export async function extractTarball(tar: string, dir: string): Promise<void> {
  removeTree(dir);
  mkdirSync(dir, { recursive: true });
  const { code, out } = await spawnLogged(["tar", "-xf", tar, "-C", dir, "--numeric-owner"], null);
  if (code !== 0) throw new Error(`tar -xf ${tar} failed: ${out}`);
}

/**
 * A filesystem as overlayfs layers, the way Docker's overlay2 driver stacks an image: `lower` from the bottom
 * up (never written), and `upper`, the directory that receives this step's changes (deletions as whiteouts).
 */
export interface Layers {
  lower: string[];
  upper: string;
}

let mountSeq = 0;

/** Mount point, overlay work directory and scratch space for one run, under the state folder's compose-check. */
function scratch(base: string): { mnt: string; work: string; tmp: string; cleanup: () => void } {
  const id = `${process.pid}-${++mountSeq}`;
  const dirs = { mnt: join(base, "mnt", id), work: join(base, "ovl-work", id), tmp: join(base, "tmp", id) };
  for (const d of Object.values(dirs)) mkdirSync(d, { recursive: true });
  return { ...dirs, cleanup: () => { for (const d of Object.values(dirs)) removeTree(d); } };
}

function overlayOptions(l: Layers, work: string): string {
  const all = [...l.lower, l.upper, work];
  if (all.some((d) => /[:,\s]/.test(d))) throw new Error(`overlay paths may not hold ':', ',' or spaces: ${all.join(" ")}`);
  return `lowerdir=${[...l.lower].reverse().join(":")},upperdir=${l.upper},workdir=${work}`;
}

/**
 * Runs `script` (POSIX sh; $MNT is the mounted filesystem) in new mount and PID namespaces with `layers`
 * mounted by overlayfs at $MNT. The mounts exist only in that namespace: they disappear with its last process
 * however the run ends, and no process started in it outlives it.
 */
export async function inNamespace(stateDir: string, layers: Layers, script: string, env: Record<string, string>, log: Log | null, timeoutMs?: number, source?: string[], signal?: AbortSignal): Promise<{ code: number; out: string }> {
  const s = scratch(join(stateDir, "compose-check"));
  mkdirSync(layers.upper, { recursive: true });
  // `source`: another filesystem's layers, mounted read-only at $SRC (COPY --from reads a stage through it).
  const src = join(s.tmp, "src");
  let mountSource = "";
  if (source?.length === 1) mountSource = `mkdir -p "$SRC"; mount --bind ${source[0]} "$SRC"`;
  else if (source && source.length > 1) mountSource = `mkdir -p "$SRC"; mount -t overlay overlay -o lowerdir=${[...source].reverse().join(":")} "$SRC"`;
  try {
    const setup = `set -e; mount -t overlay overlay -o "$OVERLAY" "$MNT"\n${mountSource}\n${script}`;
    return await spawnLogged(
      ["unshare", "--mount", "--pid", "--fork", "--kill-child", "--propagation", "private", "--", "/bin/sh", "-c", setup],
      log,
      { env: { PATH: process.env.PATH ?? "/usr/bin:/bin", LC_ALL: "C", ...env, MNT: s.mnt, TMPD: s.tmp, SRC: src, OVERLAY: overlayOptions(layers, s.work) }, ...(timeoutMs ? { timeoutMs } : {}), ...(signal ? { signal } : {}) },
    );
  } finally {
    assertNoMounts(s.mnt);
    assertNoMounts(s.tmp);
    s.cleanup();
  }
}

export interface ChrootRun {
  /** argv run inside the root filesystem. */
  argv: string[];
  uid: number;
  gid: number;
  cwd: string;
  env: Record<string, string>;
  /** Extra /etc/hosts lines (name resolution Docker's network would give). */
  hosts?: string[];
  timeoutMs?: number;
  /** Aborting kills the run (and, through its PID namespace, everything it started). */
  signal?: AbortSignal;
}

/**
 * Runs one command with chroot in the filesystem `layers` stacks, as a container would: /proc of its own PID
 * namespace, the host's /dev, the host's resolver and its own /etc/hosts bind-mounted (so neither lands in the
 * layer), in `cwd` as `uid:gid` with exactly `env`.
 */
export async function runInLayers(stateDir: string, layers: Layers, run: ChrootRun, log: Log | null): Promise<{ code: number; out: string }> {
  // This machine's egress may present its own CA (declared to Node and Bun by NODE_EXTRA_CA_CERTS, else in the
  // system bundle): hand that bundle to the processes inside too, on a tmpfs that leaves nothing in the layer,
  // or no HTTPS works. It only adds trust the host already has; the image's own roots stay as they are.
  const hostCa = [process.env.NODE_EXTRA_CA_CERTS, "/etc/ssl/certs/ca-certificates.crt"].find((f) => !!f && existsSync(f)) ?? "";
  const env = { ...run.env, ...(hostCa ? { NODE_EXTRA_CA_CERTS: "/mnt/host-ca.crt" } : {}) };
  const hosts = ["127.0.0.1 localhost", "::1 localhost ip6-localhost ip6-loopback", ...(run.hosts ?? [])].join("\n");
  const q = (v: string) => `'${v.replaceAll("'", `'\\''`)}'`;
  const script = [
    'mount -t proc proc "$MNT/proc"',
    'mount --rbind /dev "$MNT/dev"',
    `printf '%s\\n' ${q(hosts)} > "$TMPD/hosts"`,
    'cp /etc/resolv.conf "$TMPD/resolv.conf"',
    'for f in hosts resolv.conf; do [ -e "$MNT/etc/$f" ] || [ -L "$MNT/etc/$f" ] || : > "$MNT/etc/$f"; mount --bind "$TMPD/$f" "$MNT/etc/$f"; done',
    hostCa ? `mount -t tmpfs -o size=8m tmpfs "$MNT/mnt"; cp ${q(hostCa)} "$MNT/mnt/host-ca.crt"; chmod 644 "$MNT/mnt/host-ca.crt"` : ":",
    // Not exec: this root shell stays PID 1 of the namespace. unshare --kill-child SIGKILLs it when unshare dies,
    // which ends every process in the namespace; the kernel would drop that death signal for a process that
    // changed its uid (a USER of the image), so the command must not be PID 1 itself.
    `chroot --userspec=${run.uid}:${run.gid} --groups=${run.gid} "$MNT" /usr/bin/env -i ${Object.entries(env).map(([k, v]) => q(`${k}=${v}`)).join(" ")} /bin/sh -c 'cd "$0" && exec "$@"' ${[run.cwd, ...run.argv].map(q).join(" ")}`,
  ].join("\n");
  return inNamespace(stateDir, layers, script, {}, log, run.timeoutMs, undefined, run.signal);
}
