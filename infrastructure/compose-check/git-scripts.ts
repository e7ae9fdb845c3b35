/**
 * Files that go into containers (bind mounts, COPY'd scripts) as git stores them: LF endings in the committed
 * blob and `eol=lf` from .gitattributes (so a Windows checkout does not turn them into CRLF), and for scripts
 * (a `#!` first line) mode 100755, the run bit a bind mount or COPY carries into the container.
 */

function git(root: string, args: string[]): string {
  const p = Bun.spawnSync(["git", "-C", root, ...args], { stdout: "pipe", stderr: "pipe" });
  if (p.exitCode !== 0) throw new Error(`git ${args.join(" ")} failed: ${p.stderr.toString().trim()}`);
  return p.stdout.toString();
}

/** Problems with `path` (relative to the repository root; a directory means every file below it), or []. */
export function scriptProblems(root: string, path: string): string[] {
  const staged = git(root, ["ls-files", "-s", "--", path]).trim();
  if (!staged) return [`${path}: not in git`];
  return staged.split("\n").flatMap((line) => {
    const [mode, blob, , file] = line.split(/\s+/) as [string, string, string, string];
    return fileProblems(root, file, mode, blob);
  });
}

function fileProblems(root: string, path: string, mode: string, blob: string): string[] {
  const problems: string[] = [];
  const content = git(root, ["cat-file", "-p", blob]);
  if (content.startsWith("#!") && mode !== "100755") problems.push(`${path}: mode ${mode} in git, needs 100755 (git update-index --chmod=+x)`);
  if (content.includes("\r")) problems.push(`${path}: CRLF line endings in git`);
  const eol = git(root, ["check-attr", "eol", "--", path]).trim().split(": ").at(-1);
  if (eol !== "lf") problems.push(`${path}: .gitattributes gives eol=${eol}, needs lf (checked out with CRLF on Windows)`);
  return problems;
}
