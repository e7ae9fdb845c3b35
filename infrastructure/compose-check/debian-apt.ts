/**
 * apt pointed at one Debian release's package lists in a scratch directory: `apt-get update`, candidate
 * versions, `apt-get download`. The machine's own sources, lists and dpkg database are never read or written
 * (every apt directory is redirected into the scratch one); only Debian's public archive keys are used.
 */
import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export interface DebianRelease {
  /** Codename: trixie, bookworm, ... */
  suite: string;
}

const MIRROR = "http://deb.debian.org/debian";
const SECURITY = "http://deb.debian.org/debian-security";
const KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg";

/** The sources a Docker `debian:<suite>` image uses: the release, its updates and its security suite. */
export function sourcesFor(release: DebianRelease): string[] {
  return [
    `deb [signed-by=${KEYRING}] ${MIRROR} ${release.suite} main`,
    `deb [signed-by=${KEYRING}] ${MIRROR} ${release.suite}-updates main`,
    `deb [signed-by=${KEYRING}] ${SECURITY} ${release.suite}-security main`,
  ];
}

function run(cmd: string[], cwd?: string): string {
  const p = Bun.spawnSync(cmd, { stdout: "pipe", stderr: "pipe", ...(cwd ? { cwd } : {}), env: { ...process.env, LC_ALL: "C" } });
  if (p.exitCode !== 0) throw new Error(`${cmd.slice(0, 2).join(" ")} failed (${p.exitCode}):\n${p.stderr.toString().trim()}`);
  return p.stdout.toString();
}

export class ScratchApt {
  readonly dir: string;
  private readonly arch: string;

  constructor(stateDir: string, readonly release: DebianRelease) {
    this.dir = join(stateDir, "compose-check", "apt", release.suite);
    this.arch = run(["dpkg", "--print-architecture"]).trim();
    for (const d of ["etc/apt/apt.conf.d", "etc/apt/preferences.d", "etc/apt/sources.list.d", "etc/apt/trusted.gpg.d", "lists/partial", "archives/partial", "downloads"]) {
      mkdirSync(join(this.dir, d), { recursive: true });
    }
    writeFileSync(join(this.dir, "etc/apt/sources.list"), `${sourcesFor(release).join("\n")}\n`);
    if (!existsSync(join(this.dir, "status"))) writeFileSync(join(this.dir, "status"), "");
  }

  /** Options that send every apt path into the scratch directory. */
  private options(): string[] {
    const o = {
      Dir: this.dir,
      "Dir::Etc": join(this.dir, "etc/apt"),
      "Dir::Etc::sourcelist": join(this.dir, "etc/apt/sources.list"),
      "Dir::Etc::sourceparts": join(this.dir, "etc/apt/sources.list.d"),
      "Dir::Etc::parts": join(this.dir, "etc/apt/apt.conf.d"),
      "Dir::Etc::preferencesparts": join(this.dir, "etc/apt/preferences.d"),
      "Dir::Etc::trustedparts": join(this.dir, "etc/apt/trusted.gpg.d"),
      "Dir::State": this.dir,
      "Dir::State::lists": join(this.dir, "lists"),
      "Dir::State::status": join(this.dir, "status"),
      "Dir::Cache": this.dir,
      "Dir::Cache::archives": join(this.dir, "archives"),
      "APT::Architecture": this.arch,
      "APT::Architectures": this.arch,
      "Debug::NoLocking": "1",
    };
    return Object.entries(o).flatMap(([k, v]) => ["-o", `${k}=${v}`]);
  }

  /**
   * `cmd` under an exclusive flock of the scratch directory: worktrees and test runs share the state folder,
   * and apt's own locking is switched off here (Debug::NoLocking) so that nothing of the machine's is touched.
   */
  private locked(cmd: string[]): string[] {
    return ["flock", "-w", "600", join(this.dir, "apt.lock"), ...cmd];
  }

  /** `apt-get update` unless the lists are younger than `maxAgeMs`. */
  update(maxAgeMs = 24 * 3600_000): void {
    const lists = join(this.dir, "lists");
    const fresh = readdirSync(lists).some((f) => f.endsWith("_InRelease") && Date.now() - statSync(join(lists, f)).mtimeMs < maxAgeMs);
    if (fresh) return;
    run(this.locked(["apt-get", "-q", ...this.options(), "update"]));
    // apt keeps the lists' server times; the stamp is when we fetched them.
    const now = new Date();
    for (const f of readdirSync(lists)) if (f.endsWith("_InRelease")) Bun.spawnSync(["touch", "-d", now.toISOString(), join(lists, f)]);
  }

  /** The version apt would install, or null when the release has no such package. */
  candidate(pkg: string): string | null {
    return this.candidates([pkg]).get(pkg) ?? null;
  }

  /** Candidates of several packages with one apt-cache run (each run reads all the lists). */
  candidates(pkgs: string[]): Map<string, string | null> {
    const out = new Map<string, string | null>(pkgs.map((p) => [p, null]));
    if (pkgs.length === 0) return out;
    const text = run(["apt-cache", ...this.options(), "policy", ...pkgs]);
    // One block per package name apt knows: "name:" then indented lines; unknown names print nothing.
    for (const block of text.split(/^(?=\S+:\s*$)/m)) {
      const name = /^(\S+):/.exec(block)?.[1];
      const cand = /Candidate:\s*(\S+)/.exec(block)?.[1];
      if (name && out.has(name)) out.set(name, cand && cand !== "(none)" ? cand : null);
    }
    return out;
  }

  /** Downloads the candidate .deb of `pkg` (cached) and returns its path. */
  download(pkg: string): string {
    const dest = join(this.dir, "downloads");
    const version = this.candidate(pkg);
    if (!version) throw new Error(`${this.release.suite} has no package ${pkg}`);
    const file = readdirSync(dest).find((f) => f.startsWith(`${pkg}_${version.replace(/^\d+:/, "")}_`));
    if (file) return join(dest, file);
    run(this.locked(["apt-get", "-q", ...this.options(), "download", pkg]), dest);
    const got = readdirSync(dest).find((f) => f.startsWith(`${pkg}_`) && f.endsWith(".deb"));
    if (!got) throw new Error(`apt-get download ${pkg} left no .deb in ${dest}`);
    return join(dest, got);
  }
}
