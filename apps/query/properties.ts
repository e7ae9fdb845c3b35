/**
 * Event property filters and breakdown values: their request schema and their SQL. Properties are read from the
 * parallel `prop_keys` / `prop_values` arrays (18.16 has no JSONExtract*); numbers and booleans are stored as their
 * JSON text, strings as they are.
 *
 * Operator semantics (the tests' oracle implements exactly these):
 *   eq / in            property set and its text equals the value (numbers/booleans compared as JSON text)
 *   neq                property not set, or set to another value
 *   contains           property set and the value is a substring (case-sensitive)
 *   not_contains       property not set, or set and not containing the value
 *   regex              property set and matches the RE2 pattern (ClickHouse `match`)
 *   is_set / is_not_set
 *   gt / lt            property set, parses as a number, and compares (values that are not numbers never match)
 * Filters in a list are ANDed; `{ any: [...] }` is one OR group of filters.
 *
 * `type`: "event" (default) reads the event's properties; "person" reads the properties of the person the event
 * belongs to (persons table, as of query time), with the same operators. A breakdown is a property name (event)
 * or `{ type, key }`.
 */
import * as v from "valibot";
import { and, or, sql, type SqlFragment } from "../../lib/clickhouse/sql.ts";

/** Keys and event names: any printable text (escaped into literals), no control characters, bounded length. */
export const NameSchema = v.pipe(
  v.string(),
  v.minLength(1, "must not be empty"),
  v.maxLength(200, "at most 200 characters"),
  // eslint-disable-next-line no-control-regex
  v.regex(/^[^\u0000-\u001f\u007f]+$/, "control characters (including \\0) are not allowed"),
);

// Inlined as a SQL number literal, which must be exact (lib/clickhouse/sql.ts): every double past 2^53 is an
// integer that is not. ClickHouse 18.16's parser refuses subnormal literals (5e-324 is a syntax error there),
// so the smallest magnitude is the smallest normal double. (eq/in compare text, so they take any finite number.)
const SAFE = `between ${-Number.MAX_SAFE_INTEGER} and ${Number.MAX_SAFE_INTEGER}`;
const MIN_NORMAL = 2.2250738585072014e-308;
const ComparedNumber = v.pipe(
  v.number(),
  v.finite(),
  v.minValue(-Number.MAX_SAFE_INTEGER, `must be ${SAFE}`),
  v.maxValue(Number.MAX_SAFE_INTEGER, `must be ${SAFE}`),
  v.check((n) => n === 0 || Math.abs(n) >= MIN_NORMAL, `must be 0 or at least ${MIN_NORMAL} in magnitude`),
);

const Scalar = v.union([v.pipe(v.string(), v.maxLength(2000)), v.pipe(v.number(), v.finite()), v.boolean()]);

export const PROPERTY_TYPES = ["event", "person"] as const;
export type PropertyType = (typeof PROPERTY_TYPES)[number];
const TypeSchema = v.optional(v.pipe(v.picklist(PROPERTY_TYPES), v.description("event (default) or person properties")), "event");

export const PropertyFilterSchema = v.variant("operator", [
  v.strictObject({ type: TypeSchema, key: NameSchema, operator: v.picklist(["eq", "neq"]), value: Scalar }),
  v.strictObject({ type: TypeSchema, key: NameSchema, operator: v.literal("in"), value: v.pipe(v.array(Scalar), v.minLength(1), v.maxLength(1000)) }),
  v.strictObject({ type: TypeSchema, key: NameSchema, operator: v.picklist(["contains", "not_contains"]), value: v.pipe(v.string(), v.maxLength(2000)) }),
  v.strictObject({ type: TypeSchema, key: NameSchema, operator: v.literal("regex"), value: v.pipe(v.string(), v.minLength(1), v.maxLength(1000)) }),
  v.strictObject({ type: TypeSchema, key: NameSchema, operator: v.picklist(["is_set", "is_not_set"]) }),
  v.strictObject({ type: TypeSchema, key: NameSchema, operator: v.picklist(["gt", "lt"]), value: ComparedNumber }),
]);
export type PropertyFilter = v.InferOutput<typeof PropertyFilterSchema>;

export const FilterSchema = v.union([
  PropertyFilterSchema,
  v.strictObject({ any: v.pipe(v.array(PropertyFilterSchema), v.minLength(1), v.maxLength(20)) }),
]);
export type Filter = v.InferOutput<typeof FilterSchema>;

export const FiltersSchema = v.optional(v.pipe(v.array(FilterSchema), v.maxLength(30)), []);

export const OPERATORS = ["eq", "neq", "in", "contains", "not_contains", "regex", "is_set", "is_not_set", "gt", "lt"] as const;

const textOf = (value: string | number | boolean) => (typeof value === "string" ? value : JSON.stringify(value));

/** A breakdown: an event property's name, or a property of either type. */
export const BreakdownSchema = v.union([NameSchema, v.strictObject({ type: v.picklist(PROPERTY_TYPES), key: NameSchema })]);
export type Breakdown = v.InferOutput<typeof BreakdownSchema>;
export const breakdownRef = (b: Breakdown): { type: PropertyType; key: string } => (typeof b === "string" ? { type: "event", key: b } : b);

const ARRAYS = {
  event: { keys: sql`prop_keys`, values: sql`prop_values` },
  person: { keys: sql`person_keys`, values: sql`person_values` },
} as const;

export const isSet = (key: string, type: PropertyType = "event") => sql`has(${ARRAYS[type].keys}, ${key})`;
export const valueOf = (key: string, type: PropertyType = "event") =>
  sql`arrayElement(${ARRAYS[type].values}, indexOf(${ARRAYS[type].keys}, ${key}))`;

/** The breakdown value of one property: its text, or `$none` when the event (or its person) does not have it. */
export const breakdownValue = (b: Breakdown) => {
  const { type, key } = breakdownRef(b);
  return sql`if(${isSet(key, type)}, ${valueOf(key, type)}, '$none')`;
};

/** Whether any filter or breakdown reads person properties (the query then joins the persons table). */
export function usesPersonProperties(filters: readonly Filter[], breakdowns: readonly Breakdown[] = []): boolean {
  const one = (f: PropertyFilter) => f.type === "person";
  return filters.some((f) => ("any" in f ? f.any.some(one) : one(f))) || breakdowns.some((b) => breakdownRef(b).type === "person");
}

function propertyCondition(f: PropertyFilter): SqlFragment {
  const set = isSet(f.key, f.type);
  const val = valueOf(f.key, f.type);
  switch (f.operator) {
    case "eq":
      return sql`${set} AND ${val} = ${textOf(f.value)}`;
    case "neq":
      return sql`NOT (${set} AND ${val} = ${textOf(f.value)})`;
    case "in":
      return sql`${set} AND has(${f.value.map(textOf)}, ${val})`;
    case "contains":
      return sql`${set} AND position(${val}, ${f.value}) > 0`;
    case "not_contains":
      return sql`NOT (${set} AND position(${val}, ${f.value}) > 0)`;
    case "regex":
      return sql`${set} AND match(${val}, ${f.value})`;
    case "is_set":
      return set;
    case "is_not_set":
      return sql`NOT ${set}`;
    // ifNull: a comparison with NULL (not a number) must be a plain 0, since step conditions go into UInt8 arrays.
    case "gt":
      return sql`${set} AND ifNull(toFloat64OrNull(${val}) > ${f.value}, 0)`;
    case "lt":
      return sql`${set} AND ifNull(toFloat64OrNull(${val}) < ${f.value}, 0)`;
  }
}

export function filterCondition(filters: readonly Filter[]): SqlFragment {
  return and(filters.map((f) => ("any" in f ? or(f.any.map(propertyCondition)) : propertyCondition(f))));
}
