/** Shared by the stress scripts: the project to load, and durations written like vegeta's ("40s", "10m"). */
import { join } from "node:path";

const ROOT = join(import.meta.dir, "../..");

export interface StressProject {
  teamId: number;
  token: string;
  secretKey: string;
}

/**
 * CAPTURE_TOKEN / QUERY_KEY / CAPTURE_TEAM_ID from the environment when given, otherwise a new project created
 * with `bun run project:create` (the same CLI an operator uses).
 */
export async function ensureProject(name: string): Promise<StressProject> {
  const { CAPTURE_TOKEN, CAPTURE_TEAM_ID, QUERY_KEY } = process.env;
  if (CAPTURE_TOKEN && CAPTURE_TEAM_ID) return { token: CAPTURE_TOKEN, teamId: Number(CAPTURE_TEAM_ID), secretKey: QUERY_KEY ?? "" };
  const proc = Bun.spawn(["bun", join(ROOT, "lib/projects/create-cli.ts"), `${name}-${new Date().toISOString()}`, "--json"], { stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  if (code !== 0) throw new Error(`project:create failed: ${err}`);
  const p = JSON.parse(out) as { id: number; token: string; secret_key: string };
  return { teamId: p.id, token: p.token, secretKey: p.secret_key };
}

export function parseDuration(s: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(s.trim());
  if (!m) throw new Error(`expected a duration like 40s or 10m, got ${JSON.stringify(s)}`);
  const n = Number(m[1]);
  return { ms: n / 1000, s: n, m: n * 60, h: n * 3600, undefined: n }[m[2] ?? "s"] as number;
}
