/**
 * The event as SDKs send it (PostHog-compatible), validated with valibot before anything of a request is
 * produced. Each rule carries a stable error code as its message, so the first issue of a failed parse names
 * the code and the field for a 400 `{ type: "validation_error", code, detail, index? }`.
 */
import * as v from "valibot";

export const MAX_EVENT_NAME_LENGTH = 200;
export const MAX_DISTINCT_ID_LENGTH = 200;
export const MAX_PROPERTIES_DEPTH = 20;

/** Codes a single event can fail with; also the `reason` label of `capture_events_dropped_total`. */
export type EventValidationCode =
  | "invalid_event_shape"
  | "missing_event_name"
  | "invalid_event_name"
  | "event_name_too_long"
  | "missing_distinct_id"
  | "invalid_distinct_id"
  | "distinct_id_too_long"
  | "invalid_properties"
  | "properties_too_deep"
  | "invalid_set"
  | "invalid_set_once"
  | "invalid_uuid"
  | "invalid_timestamp"
  | "invalid_offset"
  | "invalid_sent_at";

const CODE_DETAIL: Record<EventValidationCode, string> = {
  invalid_event_shape: "an event must be a JSON object",
  missing_event_name: "`event` is required",
  invalid_event_name: "`event` must be a non-empty string",
  event_name_too_long: `\`event\` must be at most ${MAX_EVENT_NAME_LENGTH} characters`,
  missing_distinct_id: "`distinct_id` is required (or `$distinct_id`, or `properties.distinct_id`)",
  invalid_distinct_id: "`distinct_id` must be a non-empty string or a number",
  distinct_id_too_long: `\`distinct_id\` must be at most ${MAX_DISTINCT_ID_LENGTH} characters`,
  invalid_properties: "`properties` must be a JSON object",
  properties_too_deep: `\`properties\`, \`$set\` and \`$set_once\` must nest at most ${MAX_PROPERTIES_DEPTH} levels deep`,
  invalid_set: "`$set` must be a JSON object",
  invalid_set_once: "`$set_once` must be a JSON object",
  invalid_uuid: "`uuid` must be a UUID",
  invalid_timestamp: "`timestamp` must be an ISO-8601 string or epoch milliseconds",
  invalid_offset: "`offset` must be a non-negative number of milliseconds",
  invalid_sent_at: "`sent_at` must be an ISO-8601 string or epoch milliseconds",
};

export function describeValidationCode(code: EventValidationCode): string {
  return CODE_DETAIL[code];
}

/**
 * Depth of nested objects/arrays below `value` (a flat object is 1). Iterative, so a hostile 100k-deep payload
 * cannot overflow the stack; stops as soon as `limit` is exceeded.
 */
export function exceedsDepth(value: unknown, limit: number): boolean {
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length) {
    const [node, depth] = stack.pop()!;
    if (depth > limit) return true;
    if (Array.isArray(node)) {
      for (const child of node) if (child !== null && typeof child === "object") stack.push([child, depth + 1]);
    } else {
      for (const key in node as Record<string, unknown>) {
        const child = (node as Record<string, unknown>)[key];
        if (child !== null && typeof child === "object") stack.push([child, depth + 1]);
      }
    }
  }
  return false;
}

const isPlainObject = (x: unknown): x is Record<string, unknown> =>
  x !== null && typeof x === "object" && !Array.isArray(x);

// Fields are nullish: several SDKs send `null` for "not set"; null means the same as absent.
// Depth-limited like `properties`: they are encoded (JSON.stringify recurses) and stored the same way.
const objectField = (code: EventValidationCode) =>
  v.nullish(
    v.pipe(
      v.custom<Record<string, unknown>>(isPlainObject, code),
      v.check((o) => !exceedsDepth(o, MAX_PROPERTIES_DEPTH), "properties_too_deep"),
    ),
  );

const timeField = (code: EventValidationCode) =>
  v.nullish(v.union([v.string(code), v.pipe(v.number(code), v.finite(code))], code));

const idValue = v.union(
  [
    v.pipe(v.string("invalid_distinct_id"), v.minLength(1, "invalid_distinct_id")),
    v.pipe(v.number("invalid_distinct_id"), v.finite("invalid_distinct_id")),
  ],
  "invalid_distinct_id",
);

export const IncomingEventSchema = v.pipe(
  // valibot's object schema accepts arrays; an event is a plain object.
  v.custom<Record<string, unknown>>(isPlainObject, "invalid_event_shape"),
  v.looseObject(
    {
      event: v.pipe(
        v.string((issue) => (issue.input === undefined ? "missing_event_name" : "invalid_event_name")),
        v.minLength(1, "invalid_event_name"),
        v.maxLength(MAX_EVENT_NAME_LENGTH, "event_name_too_long"),
      ),
      distinct_id: v.nullish(idValue),
      $distinct_id: v.nullish(idValue),
      properties: v.nullish(
        v.pipe(
          v.custom<Record<string, unknown>>(isPlainObject, "invalid_properties"),
          v.check((p) => !exceedsDepth(p, MAX_PROPERTIES_DEPTH), "properties_too_deep"),
        ),
      ),
      $set: objectField("invalid_set"),
      $set_once: objectField("invalid_set_once"),
      uuid: v.nullish(v.pipe(v.string("invalid_uuid"), v.uuid("invalid_uuid"))),
      timestamp: timeField("invalid_timestamp"),
      offset: v.nullish(v.pipe(v.number("invalid_offset"), v.finite("invalid_offset"), v.minValue(0, "invalid_offset"))),
      sent_at: timeField("invalid_sent_at"),
    },
    // A missing key is reported by the object schema itself, with the key in the issue's path.
    (issue) => (issue.input === undefined && issue.path?.[0]?.key === "event" ? "missing_event_name" : "invalid_event_shape"),
  ),
  // distinct_id may sit in three places; resolve once here so every later step sees one string.
  v.rawTransform(({ dataset, addIssue, NEVER }) => {
    const e = dataset.value;
    const props = e.properties;
    let raw: unknown = e.distinct_id ?? e.$distinct_id ?? props?.distinct_id;
    if (raw === undefined || raw === null) {
      addIssue({ message: "missing_distinct_id", path: pathTo(e, "distinct_id") });
      return NEVER;
    }
    if (typeof raw === "number" && Number.isFinite(raw)) raw = String(raw);
    if (typeof raw !== "string" || raw.length === 0) {
      addIssue({ message: "invalid_distinct_id", path: pathTo(e, "distinct_id") });
      return NEVER;
    }
    if (raw.length > MAX_DISTINCT_ID_LENGTH) {
      addIssue({ message: "distinct_id_too_long", path: pathTo(e, "distinct_id") });
      return NEVER;
    }
    return { ...e, properties: props ?? {}, distinct_id: raw as string };
  }),
);

function pathTo(input: Record<string, unknown>, key: string): [v.ObjectPathItem] {
  return [{ type: "object", origin: "value", input, key, value: input[key] }];
}

export type IncomingEvent = v.InferOutput<typeof IncomingEventSchema>;

export type EventValidation =
  | { ok: true; event: IncomingEvent }
  | { ok: false; code: EventValidationCode; field: string; detail: string };

const KNOWN_CODES = new Set(Object.keys(CODE_DETAIL));

/** Validates one incoming event; on failure names the first offending field and its code. */
export function validateIncomingEvent(input: unknown): EventValidation {
  const result = v.safeParse(IncomingEventSchema, input, { abortEarly: true });
  if (result.success) return { ok: true, event: result.output };
  const issue = result.issues[0];
  const code = (KNOWN_CODES.has(issue.message) ? issue.message : "invalid_event_shape") as EventValidationCode;
  const field = issue.path?.map((p) => String(p.key)).join(".") ?? "";
  return { ok: false, code, field, detail: field ? `${field}: ${CODE_DETAIL[code]}` : CODE_DETAIL[code] };
}
