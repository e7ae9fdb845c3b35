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
