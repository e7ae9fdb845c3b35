/**
 * Environment configuration, validated once at start-up with valibot. Every setting has a default; a bad value
 * stops the process with the variable's name and the expected form.
 */
import * as v from "valibot";

type EnvSchema = v.ObjectSchema<Record<string, v.GenericSchema<string | undefined, unknown>>, undefined>;

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  ${problems.join("\n  ")}`);
    this.name = "ConfigError";
  }
}

/** Parses `env` with `schema`; throws ConfigError listing every offending variable. */
export function loadConfig<S extends EnvSchema>(
  schema: S,
  env: Record<string, string | undefined> = process.env,
): v.InferOutput<S> {
  const input: Record<string, string | undefined> = {};
  for (const key of Object.keys(schema.entries)) {
    const raw = env[key];
    input[key] = raw === "" ? undefined : raw;
  }
  const result = v.safeParse(schema, input);
  if (result.success) return result.output;
  const problems = result.issues.map((issue) => {
    const name = issue.path?.map((p) => String(p.key)).join(".") ?? "?";
    // Quote what was set, not the half-transformed value the failing check saw, never a secret in it.
    const raw = input[String(issue.path?.[0]?.key ?? "")];
    const got = raw === undefined ? "nothing" : shownValue(name, raw);
    return `${name}: ${issue.message} (got ${got})`;
  });
  throw new ConfigError(problems);
}

const SECRET_NAME = /PASSWORD|SECRET|TOKEN|CREDENTIAL|_KEY$/i;

/**
 * A bad value as an error message may quote it: variables named like secrets not at all, URLs without what
 * precedes the host (`postgres://user:password@host` -> `postgres://***@host`), even when malformed.
 */
export function shownValue(name: string, raw: string): string {
  if (SECRET_NAME.test(name)) return `a value of ${raw.length} characters (not shown)`;
  const at = raw.lastIndexOf("@");
  if (at === -1) return JSON.stringify(raw);
  const scheme = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.exec(raw)?.[0] ?? "";
  return JSON.stringify(`${scheme}***${raw.slice(at)}`);
}

/** Runs `load`, printing a ConfigError and exiting with status 2 instead of throwing. */
export function configOrExit<T>(load: () => T): T {
  try {
    return load();
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      process.exit(2);
    }
    throw err;
  }
}

// Field helpers: env values are strings; each helper parses and names the expected form in its message.

export const str = (fallback: string) => v.optional(v.pipe(v.string(), v.minLength(1)), fallback);

export const int = (fallback: number, min = 0, max = Number.MAX_SAFE_INTEGER) =>
  v.pipe(
    v.optional(v.string(), String(fallback)),
    v.regex(/^-?\d+$/, `expected an integer between ${min} and ${max}`),
    v.transform(Number),
    v.number(),
    v.minValue(min, `expected an integer between ${min} and ${max}`),
    v.maxValue(max, `expected an integer between ${min} and ${max}`),
  );

export const port = (fallback: number) => int(fallback, 1, 65535);

export const bool = (fallback: boolean) =>
  v.pipe(
    v.optional(v.string(), String(fallback)),
    v.picklist(["true", "false", "1", "0", "yes", "no"], "expected true or false"),
    v.transform((s) => s === "true" || s === "1" || s === "yes"),
  );

export const oneOf = <const T extends readonly [string, ...string[]]>(options: T, fallback: T[number]) =>
  v.pipe(v.optional(v.string(), fallback), v.picklist(options, `expected one of ${options.join(", ")}`));

export const httpUrl = (fallback: string) =>
  v.pipe(
    v.optional(v.string(), fallback),
    v.url("expected a URL such as http://127.0.0.1:8123"),
    v.regex(/^https?:\/\//, "expected an http:// or https:// URL"),
  );

export const postgresUrl = (fallback: string) =>
  v.pipe(
    v.optional(v.string(), fallback),
    v.regex(/^postgres(ql)?:\/\/\S+$/, "expected a URL such as postgres://user:password@127.0.0.1:5432/db"),
  );

export const redisUrl = (fallback: string) =>
  v.pipe(v.optional(v.string(), fallback), v.regex(/^rediss?:\/\/\S+$/, "expected a URL such as redis://127.0.0.1:6379"));

export const identifier = (fallback: string) =>
  v.pipe(v.optional(v.string(), fallback), v.regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "expected an identifier ([A-Za-z_][A-Za-z0-9_]*)"));

export const logLevel = () =>
  oneOf(["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const, "info");

/**
 * librdkafka properties from the environment: every `<PREFIX>_<NAME>` variable becomes property `<name>` with
 * `_` read as `.` (CAPTURE_KAFKA_LINGER_MS -> linger.ms). librdkafka itself validates them when the client is
 * created, so a typo stops start-up with librdkafka's own message.
 */
export function kafkaProperties(prefix: string, env: Record<string, string | undefined> = process.env): Record<string, string> {
  const out: Record<string, string> = {};
  const head = `${prefix}_`;
  for (const [key, value] of Object.entries(env)) {
    if (!key.startsWith(head) || value === undefined || value === "") continue;
    const name = key.slice(head.length).toLowerCase().replaceAll("_", ".");
    if (name) out[name] = value;
  }
  return out;
}
