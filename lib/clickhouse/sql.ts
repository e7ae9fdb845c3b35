/**
 * The one way SQL text is made in this project. ClickHouse 18.16 has no server-side query parameters, so every
 * value is inlined as a literal; this module is the only place that turns a value into SQL text, and it does so
 * by type:
 *
 *   - strings become single-quoted literals in which every byte that could end or alter the literal is escaped
 *     (`\` and `'` are backslash-escaped, control bytes and DEL become `\xHH`), so no input can leave the
 *     literal: quotes, backslashes, NUL, `--`, `/*`, `UNION` are all just characters inside it;
 *   - numbers must be finite (integers are written as integers, others in exponent-free decimal form);
 *   - Dates become `toDateTime(<unix seconds>, 'UTC')`;
 *   - arrays become `[a, b, ...]` of escaped elements;
 *   - identifiers (column, table, function names) come only through `ident()`, which accepts
 *     `[A-Za-z_][A-Za-z0-9_]*` (optionally dotted) and nothing else;
 *   - SQL keywords and structure come only from the static parts of the `sql` tagged template, i.e. from source
 *     code, never from a request.
 *
 * A `SqlFragment` is opaque: handlers can combine fragments but cannot make one out of a string.
 */

// Only this module holds the token, so only this module can make a fragment out of text.
const TOKEN: unique symbol = Symbol("SqlFragment");

export class SqlFragment {
  constructor(
    token: typeof TOKEN,
    readonly text: string,
    /** The same SQL with every inlined value written as `?`: what logs may show (values can be personal data). */
    readonly shape: string = text,
  ) {
    if (token !== TOKEN) throw new SqlBuildError("SqlFragment is made only by lib/clickhouse/sql.ts");
  }
  toString(): string {
    return this.text;
  }
}

const fragment = (text: string, shape: string = text) => new SqlFragment(TOKEN, text, shape);

export type SqlValue = SqlFragment | string | number | bigint | boolean | Date | null | readonly SqlValue[];

export class SqlBuildError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SqlBuildError";
  }
}

/** Escapes a string for a ClickHouse single-quoted literal (without the quotes). */
export function escapeString(value: string): string {
  let out = "";
  for (let i = 0; i < value.length; i++) {
    const ch = value[i]!;
    const code = value.charCodeAt(i);
    if (ch === "\\") out += "\\\\";
    else if (ch === "'") out += "\\'";
    else if (code < 0x20 || code === 0x7f) {
      // \xHH is understood by every ClickHouse version; it keeps NUL, newlines and tabs out of the SQL text.
      out += `\\x${code.toString(16).padStart(2, "0")}`;
    } else out += ch;
  }
  return out;
}

function numberLiteral(n: number): string {
  if (!Number.isFinite(n)) throw new SqlBuildError(`cannot inline non-finite number ${n}`);
  if (Number.isInteger(n)) {
    if (!Number.isSafeInteger(n)) throw new SqlBuildError(`integer ${n} is outside the exactly representable range`);
    return Object.is(n, -0) ? "0" : String(n);
  }
  // ClickHouse 18.16's parser refuses subnormal literals (`SELECT 5e-324` is a syntax error there).
  if (Math.abs(n) < 2.2250738585072014e-308) throw new SqlBuildError(`number ${n} is too small for ClickHouse 18.16 to parse`);
  // Exponent notation (1e-7) is valid ClickHouse too, but a plain decimal keeps the SQL readable in logs.
  const s = String(n);
  if (!/^-?\d+(\.\d+)?(e[+-]?\d+)?$/.test(s)) throw new SqlBuildError(`unexpected number form ${s}`);
  return s;
}

/** Renders one value as a SQL literal (or inlines a fragment as is). */
export function literal(value: SqlValue): SqlFragment {
  return fragment(render(value), renderShape(value));
}

function renderShape(value: SqlValue): string {
  if (value instanceof SqlFragment) return value.shape;
  if (Array.isArray(value)) return `[${value.map(renderShape).join(", ")}]`;
  return "?";
}

function render(value: SqlValue): string {
  if (value instanceof SqlFragment) return value.text;
  if (value === null) return "NULL";
  switch (typeof value) {
    case "string":
      return `'${escapeString(value)}'`;
    case "number":
      return numberLiteral(value);
    case "bigint":
      return value.toString();
    case "boolean":
      return value ? "1" : "0";
  }
  if (value instanceof Date) {
    const ms = value.getTime();
    if (!Number.isFinite(ms)) throw new SqlBuildError("cannot inline an invalid Date");
    if (ms % 1000 !== 0) throw new SqlBuildError("DateTime has second precision; round the Date first");
    const seconds = ms / 1000;
    if (seconds < 0 || seconds > 4294967295) throw new SqlBuildError("Date outside the DateTime range (1970..2106)");
    return `toDateTime(${seconds}, 'UTC')`;
  }
  if (Array.isArray(value)) return `[${value.map(render).join(", ")}]`;
  throw new SqlBuildError(`cannot inline a value of type ${typeof value}`);
}

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** A column, table, database or function name; `a.b` is accepted as two identifiers. */
export function ident(name: string): SqlFragment {
  const parts = name.split(".");
  if (parts.length > 2 || !parts.every((p) => IDENT.test(p))) {
    throw new SqlBuildError(`invalid identifier ${JSON.stringify(name)}`);
  }
  return fragment(parts.join("."));
}

/** Tagged template: static parts are SQL written in code; every `${value}` is rendered by `literal`. */
export function sql(strings: TemplateStringsArray, ...values: SqlValue[]): SqlFragment {
  let text = strings[0]!;
  let shape = text;
  for (let i = 0; i < values.length; i++) {
    text += render(values[i]!) + strings[i + 1]!;
    shape += renderShape(values[i]!) + strings[i + 1]!;
  }
  return fragment(text, shape);
}

/** Joins fragments (or literals) with a separator written in code, e.g. `join(conds, " AND ")`. */
export function join(parts: readonly SqlValue[], separator: ", " | " AND " | " OR " | " UNION ALL " | "\n" | " " = ", "): SqlFragment {
  return fragment(parts.map(render).join(separator), parts.map(renderShape).join(separator));
}

/** `a AND b AND ...`, or `1` when there is nothing to require. */
export function and(parts: readonly SqlFragment[]): SqlFragment {
  if (parts.length === 0) return fragment("1");
  return fragment(parts.map((p) => `(${p.text})`).join(" AND "), parts.map((p) => `(${p.shape})`).join(" AND "));
}

/** `a OR b OR ...`, or `0` when there is no alternative. */
export function or(parts: readonly SqlFragment[]): SqlFragment {
  if (parts.length === 0) return fragment("0");
  return fragment(parts.map((p) => `(${p.text})`).join(" OR "), parts.map((p) => `(${p.shape})`).join(" OR "));
}
