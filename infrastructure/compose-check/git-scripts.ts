/**
 * Scripts that run inside containers as git stores them: LF endings in the committed blob, `eol=lf` from
 * .gitattributes (so a Windows checkout does not turn them into CRLF), and mode 100755 (the run bit a bind
 * mount or COPY carries into the container).
 */

function git(root: string, args: string[]): string {
  const p = Bun.spawnSync(["git", "-C", root, ...args], { stdout: "pipe", stderr: "pipe" });
  if (p.exitCode !== 0) throw new Error(`git ${args.join(" ")} failed: ${p.stderr.toString().trim()}`);
  return p.stdout.toString();
}

/**
 * Problems with `path` (relative to the repository root), or an empty list. `executable` false: a configuration
 * file the container only reads, which needs LF but no run bit.
 */
export function scriptProblems(root: string, path: string, executable = true): string[] {
  const staged = git(root, ["ls-files", "-s", "--", path]).trim();
  if (!staged) return [`${path}: not in git`];
  const [mode, blob] = staged.split(/\s+/) as [string, string];
  const problems: string[] = [];
  if (executable && mode !== "100755") problems.push(`${path}: mode ${mode} in git, needs 100755 (git update-index --chmod=+x)`);
  if (git(root, ["cat-file", "-p", blob]).includes("\r")) problems.push(`${path}: CRLF line endings in git`);
  const eol = git(root, ["check-attr", "eol", "--", path]).trim().split(": ").at(-1);
  if (eol !== "lf") problems.push(`${path}: .gitattributes gives eol=${eol}, needs lf (checked out with CRLF on Windows)`);
  return problems;
}
