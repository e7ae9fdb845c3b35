/**
 * The compose file as Compose reads it (YAML with anchors and `<<` merge keys resolved), validated against the
 * Compose Specification's JSON schema. The schema file comes from the npm package `dclint` (pinned, MIT), which
 * ships compose-spec's `schema/compose-spec.json` (Apache-2.0) as `schemas/compose.schema.json`.
 */
import Ajv from "ajv";
import { join } from "node:path";

export interface ComposeService {
  image?: string;
  build?: string | { context?: string; dockerfile?: string; target?: string };
  command?: string | string[];
  environment?: Record<string, string | number | boolean | null> | string[];
  volumes?: (string | Record<string, unknown>)[];
  [key: string]: unknown;
}

export interface ComposeFile {
  services: Record<string, ComposeService>;
  [key: string]: unknown;
}

export function readCompose(text: string): ComposeFile {
  const doc: unknown = Bun.YAML.parse(text);
  if (typeof doc !== "object" || doc === null || !("services" in doc)) throw new Error("compose file has no services");
  return doc as ComposeFile;
}

/** Schema violations as "path: message" lines; empty when the file is valid. */
export async function schemaErrors(doc: unknown, root: string): Promise<string[]> {
  const schema = (await Bun.file(join(root, "node_modules/dclint/schemas/compose.schema.json")).json()) as Record<string, unknown>;
  // The schema declares draft-07 under a URL spelling Ajv does not know by that name; its keywords are draft-07's.
  const { $schema: _, ...body } = schema;
  const ajv = new Ajv({ allErrors: true, strict: false });
  const validate = ajv.compile(body);
  if (validate(doc)) return [];
  return (validate.errors ?? []).map((e) => `${e.instancePath || "/"}: ${e.message ?? "invalid"}${e.params && "additionalProperty" in e.params ? ` (${String(e.params.additionalProperty)})` : ""}`);
}

/** A service's environment as a map (the list form `KEY=value` included). */
export function environmentOf(service: ComposeService): Record<string, string> {
  const env = service.environment;
  if (!env) return {};
  if (Array.isArray(env)) {
    return Object.fromEntries(env.map((kv) => {
      const i = kv.indexOf("=");
      return i < 0 ? [kv, ""] : [kv.slice(0, i), kv.slice(i + 1)];
    }));
  }
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, v === null ? "" : String(v)]));
}

/** Compose's `$$` escapes a literal `$` (the shell inside the container sees one). */
export function unescapeDollars(s: string): string {
  return s.replaceAll("$$", "$");
}

/**
 * What keeps the stack starting on every engine the README promises (Linux, macOS, Windows, SELinux hosts,
 * rootless Docker and Podman) and apart from the host's other listeners:
 * - bind mounts carry `z`/`Z` (an SELinux host refuses the container access to unlabelled files);
 * - no `ulimits` (rootless engines refuse limits above their own; the services raise what they need);
 * - published ports bind 127.0.0.1, as the native services listen;
 * - no Kafka listener advertises `localhost` (a host client may resolve it to ::1, which is not published).
 */
export function portabilityProblems(doc: ComposeFile): string[] {
  const problems: string[] = [];
  for (const [name, s] of Object.entries(doc.services)) {
    for (const v of s.volumes ?? []) {
      if (typeof v === "string") {
        const parts = v.split(":");
        const source = parts[0] ?? "";
        const bind = source.startsWith(".") || source.startsWith("/") || source.startsWith("~");
        const options = parts.length > 2 ? parts.at(-1)!.split(",") : [];
        if (bind && !options.some((o) => o === "z" || o === "Z")) problems.push(`service ${name}: bind mount ${v} has no :z (SELinux hosts deny it)`);
      } else if (v.type === "bind") {
        const selinux = (v.bind as { selinux?: string } | undefined)?.selinux;
        if (selinux !== "z" && selinux !== "Z") problems.push(`service ${name}: bind mount of ${String(v.source)} has no bind.selinux z`);
      }
    }
    if ("ulimits" in s) problems.push(`service ${name}: ulimits (rootless Docker and Podman refuse to start it)`);
    for (const p of (s.ports ?? []) as (string | number | { host_ip?: string; published?: unknown })[]) {
      const hostIp = typeof p === "object" ? p.host_ip : /^(\d+\.\d+\.\d+\.\d+):/.exec(String(p))?.[1];
      if (hostIp !== "127.0.0.1") problems.push(`service ${name}: port ${JSON.stringify(p)} is published on every interface, not 127.0.0.1`);
    }
    const advertised = environmentOf(s).KAFKA_ADVERTISED_LISTENERS ?? "";
    if (/\/\/localhost:/.test(advertised)) problems.push(`service ${name}: KAFKA_ADVERTISED_LISTENERS names localhost (host clients may try ::1); advertise 127.0.0.1`);
  }
  return problems;
}
