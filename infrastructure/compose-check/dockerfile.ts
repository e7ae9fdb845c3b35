/**
 * A Dockerfile read into stages of instructions, as far as `make check-compose` needs it: line continuations,
 * comments, global and stage ARGs, `${VAR}` substitution, FROM ... AS, and the instructions' arguments.
 * Instructions it does not know are an error, so a new kind of line cannot slip past the check unreplayed.
 */

export type Instruction =
  | { kind: "RUN"; command: string; line: number }
  | { kind: "COPY"; from: string | null; sources: string[]; dest: string; line: number }
  | { kind: "ENV"; vars: [string, string][]; line: number }
  | { kind: "WORKDIR"; path: string; line: number }
  | { kind: "USER"; user: string; line: number }
  | { kind: "ARG"; name: string; value: string | null; line: number }
  | { kind: "META"; keyword: string; line: number }; // EXPOSE, CMD, ENTRYPOINT, LABEL: no effect on the filesystem

export interface Stage {
  /** `AS` name, or the stage's index as a string. */
  name: string;
  /** The FROM image after ARG substitution: an image reference or an earlier stage's name. */
  from: string;
  line: number;
  instructions: Instruction[];
}

export interface Dockerfile {
  globalArgs: Map<string, string>;
  stages: Stage[];
}

export class DockerfileError extends Error {}

const META = new Set(["EXPOSE", "CMD", "ENTRYPOINT", "LABEL", "STOPSIGNAL", "HEALTHCHECK", "SHELL", "VOLUME", "ONBUILD"]);

/** Physical lines joined into logical ones (trailing `\`), comment lines dropped, each with its first line number. */
function logicalLines(text: string): { text: string; line: number }[] {
  const out: { text: string; line: number }[] = [];
  let current: string | null = null;
  let start = 0;
  text.split(/\r?\n/).forEach((raw, i) => {
    const trimmed = raw.trim();
    // Docker drops comment lines even in the middle of a continued instruction.
    if (trimmed.startsWith("#")) return;
    if (current === null) {
      if (trimmed === "") return;
      current = "";
      start = i + 1;
    }
    if (trimmed.endsWith("\\")) {
      current += `${trimmed.slice(0, -1)} `;
    } else {
      current += trimmed;
      out.push({ text: current.trim(), line: start });
      current = null;
    }
  });
  if (current !== null) out.push({ text: (current as string).trim(), line: start });
  return out;
}

/** `${NAME}`, `${NAME:-default}` and `$NAME` from `vars`; an unknown name becomes "" as in Docker. */
export function substitute(s: string, vars: Map<string, string>): string {
  return s.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (_, braced, dflt, bare) => {
    const name = (braced ?? bare) as string;
    const value = vars.get(name);
    return value !== undefined && value !== "" ? value : (dflt ?? "");
  });
}

/** Whitespace-separated words; a JSON array form (`["a", "b"]`) is read as JSON. */
function words(args: string): string[] {
  if (args.startsWith("[")) {
    const parsed: unknown = JSON.parse(args);
    if (!Array.isArray(parsed) || !parsed.every((w) => typeof w === "string")) throw new DockerfileError(`bad JSON form: ${args}`);
    return parsed;
  }
  return args.split(/\s+/).filter(Boolean);
}

function parseEnv(args: string, line: number): [string, string][] {
  const unquote = (v: string) => (/^".*"$|^'.*'$/.test(v) ? v.slice(1, -1) : v);
  if (!/^[A-Za-z_][A-Za-z0-9_]*=/.test(args)) {
    // Legacy form: ENV NAME value with spaces
    const [name, ...rest] = args.split(/\s+/);
    if (!name || rest.length === 0) throw new DockerfileError(`line ${line}: ENV needs a value`);
    return [[name, rest.join(" ")]];
  }
  const pairs: [string, string][] = [];
  for (const m of args.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=("[^"]*"|'[^']*'|\S*)/g)) pairs.push([m[1]!, unquote(m[2]!)]);
  return pairs;
}

export function parseDockerfile(text: string): Dockerfile {
  const globalArgs = new Map<string, string>();
  const stages: Stage[] = [];
  for (const { text: l, line } of logicalLines(text)) {
    const m = /^(\w+)\s*(.*)$/s.exec(l);
    if (!m) throw new DockerfileError(`line ${line}: cannot read "${l}"`);
    const keyword = m[1]!.toUpperCase();
    const args = m[2]!.trim();
    const stage = stages.at(-1);
    if (keyword === "FROM") {
      const parts = words(args).filter((w) => !w.startsWith("--"));
      const image = parts[0];
      if (!image) throw new DockerfileError(`line ${line}: FROM without an image`);
      const name = parts.length === 3 && parts[1]!.toUpperCase() === "AS" ? parts[2]! : String(stages.length);
      stages.push({ name, from: substitute(image, globalArgs), line, instructions: [] });
      continue;
    }
    if (keyword === "ARG") {
      const [name, value] = args.split("=", 2) as [string, string | undefined];
      if (!stage) globalArgs.set(name, value ?? "");
      else stage.instructions.push({ kind: "ARG", name, value: value ?? null, line });
      continue;
    }
    if (!stage) throw new DockerfileError(`line ${line}: ${keyword} before the first FROM`);
    switch (keyword) {
      case "RUN":
        if (args.startsWith("[")) stage.instructions.push({ kind: "RUN", command: words(args).map(shellQuote).join(" "), line });
        else stage.instructions.push({ kind: "RUN", command: args, line });
        break;
      case "COPY": {
        const w = words(args);
        let from: string | null = null;
        const rest: string[] = [];
        for (const word of w) {
          if (word.startsWith("--from=")) from = word.slice("--from=".length);
          else if (word.startsWith("--")) throw new DockerfileError(`line ${line}: COPY option ${word} is not replayed by the check`);
          else rest.push(word);
        }
        if (rest.length < 2) throw new DockerfileError(`line ${line}: COPY needs a source and a destination`);
        stage.instructions.push({ kind: "COPY", from, sources: rest.slice(0, -1), dest: rest.at(-1)!, line });
        break;
      }
      case "ENV":
        stage.instructions.push({ kind: "ENV", vars: parseEnv(args, line), line });
        break;
      case "WORKDIR":
        stage.instructions.push({ kind: "WORKDIR", path: args, line });
        break;
      case "USER":
        stage.instructions.push({ kind: "USER", user: args, line });
        break;
      default:
        if (!META.has(keyword)) throw new DockerfileError(`line ${line}: ${keyword} is not replayed by the check`);
        stage.instructions.push({ kind: "META", keyword, line });
    }
  }
  if (stages.length === 0) throw new DockerfileError("no FROM");
  return { globalArgs, stages };
}

export function shellQuote(s: string): string {
  return /^[A-Za-z0-9_./:=@%+-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`;
}

/** Packages named by `apt-get install` in a RUN command (options and shell syntax around them left out). */
export function aptPackages(command: string): string[] {
  const out: string[] = [];
  for (const segment of command.split(/&&|;|\|\|/)) {
    const w = segment.trim().split(/\s+/);
    const i = w.findIndex((x, j) => (x === "apt-get" || x === "apt") && w[j + 1] === "install");
    if (i < 0) continue;
    // Debian package names (optionally name=version); options, redirections and the like are skipped.
    for (const x of w.slice(i + 2)) {
      const pkg = /^([a-z0-9][a-z0-9+.-]+)(=\S+)?$/.exec(x);
      if (pkg) out.push(pkg[1]!);
    }
  }
  return out;
}

/** The stages `target` needs, in build order (FROM chains and COPY --from). */
export function stagesFor(file: Dockerfile, target: string): Stage[] {
  const byName = new Map(file.stages.map((s) => [s.name, s]));
  const order: Stage[] = [];
  const visit = (name: string, seen: Set<string>) => {
    const stage = byName.get(name);
    if (!stage || order.includes(stage)) return;
    if (seen.has(name)) throw new DockerfileError(`stage ${name} depends on itself`);
    seen.add(name);
    visit(stage.from, seen);
    for (const i of stage.instructions) if (i.kind === "COPY" && i.from) visit(i.from, seen);
    order.push(stage);
  };
  if (!byName.has(target)) throw new DockerfileError(`no stage named ${target}`);
  visit(target, new Set());
  return order;
}
