/**
 * One check-compose at a time per state folder: worktrees and test runs share `.local/compose-check`, and a
 * layer being built or pruned by one run must not be read by another. The lock is a directory (mkdir is
 * atomic) holding the owner's pid; a lock whose owner is gone is taken over.
 */
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Log } from "./debian-rootfs.ts";
import { removeTree } from "./debian-rootfs.ts";

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export async function withCacheLock<T>(stateDir: string, log: Log, fn: () => Promise<T>, timeoutMs = 1_200_000): Promise<T> {
  const base = join(stateDir, "compose-check");
  const lock = join(base, "lock");
  mkdirSync(base, { recursive: true });
  const deadline = Date.now() + timeoutMs;
  let said = false;
  for (;;) {
    try {
      mkdirSync(lock);
      writeFileSync(join(lock, "pid"), String(process.pid));
      break;
    } catch {
      let owner = 0;
      try {
        owner = Number(readFileSync(join(lock, "pid"), "utf8"));
      } catch {
        // Being created or removed right now: look again shortly.
      }
      if (owner && !alive(owner)) {
        rmSync(lock, { recursive: true, force: true });
        continue;
      }
      if (Date.now() > deadline) throw new Error(`another check-compose (pid ${owner}) held ${lock} too long`);
      if (!said) log(`waiting for another check-compose (pid ${owner}) using ${base}`);
      said = true;
      await Bun.sleep(1000);
    }
  }
  try {
    removeStaleScratch(base);
    return await fn();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

/** Scratch directories (named <pid>-<n>) left by runs that were killed before they could remove them. */
function removeStaleScratch(base: string): void {
  for (const kind of ["mnt", "ovl-work", "tmp"]) {
    let entries: string[] = [];
    try {
      entries = readdirSync(join(base, kind));
    } catch {
      continue;
    }
    for (const e of entries) {
      // Every scratch name holds its run's pid as the first number: "<pid>-<n>", "container-<pid>-<n>", ...
      const pid = Number(/(\d+)/.exec(e)?.[1]);
      if (pid && pid !== process.pid && !alive(pid)) removeTree(join(base, kind, e));
    }
  }
}
