/** The escaping SQL builder: unit tests of every value type, and a round trip of hostile strings through the real
 * ClickHouse 18.16 server proving each literal reads back as exactly the input. */
import { afterAll, describe, expect, test } from "bun:test";
import { createClickHouse } from "../../lib/clickhouse/client.ts";
import { escapeString, ident, join, literal, and, or, sql, SqlBuildError, SqlFragment } from "../../lib/clickhouse/sql.ts";
import { CLICKHOUSE_URL, HOSTILE } from "./fixtures.ts";


describe("escapeString / literal", () => {
  test("quotes and backslashes are escaped, control bytes become \\xHH", () => {
    expect(escapeString("it's")).toBe("it\\'s");
    expect(escapeString("a\\b")).toBe("a\\\\b");
    expect(escapeString("\u0000")).toBe("\\x00");
    expect(escapeString("\n\t\u007f")).toBe("\\x0a\\x09\\x7f");
    expect(escapeString("-- /* */ UNION")).toBe("-- /* */ UNION");
  });

  test("no escaped literal contains an unescaped quote", () => {
    for (const s of HOSTILE) {
      const text = literal(s).text;
      expect(text.startsWith("'") && text.endsWith("'")).toBe(true);
      const body = text.slice(1, -1);
      // Every quote in the body is preceded by an odd number of backslashes.
      for (let i = 0; i < body.length; i++) {
        if (body[i] !== "'") continue;
        let n = 0;
        for (let j = i - 1; j >= 0 && body[j] === "\\"; j--) n++;
        expect(n % 2).toBe(1);
      }
      // A backslash never ends the body unescaped (it would escape the closing quote).
      let trailing = 0;
      for (let j = body.length - 1; j >= 0 && body[j] === "\\"; j--) trailing++;
      expect(trailing % 2).toBe(0);
      expect(body).not.toMatch(/[\u0000-\u001f\u007f]/);
    }
  });

  test("numbers, booleans, null, dates, arrays", () => {
    expect(literal(42).text).toBe("42");
    expect(literal(-0).text).toBe("0");
    expect(literal(1.5).text).toBe("1.5");
    expect(literal(12345678901234567890n).text).toBe("12345678901234567890");
    expect(literal(true).text).toBe("1");
    expect(literal(null).text).toBe("NULL");
    expect(literal(new Date("2024-01-02T03:04:05Z")).text).toBe("toDateTime(1704164645, 'UTC')");
    expect(literal(["a'", 1, ["b"]]).text).toBe("['a\\'', 1, ['b']]");
    expect(() => literal(Number.NaN)).toThrow(SqlBuildError);
    expect(() => literal(Number.POSITIVE_INFINITY)).toThrow(SqlBuildError);
    expect(() => literal(2 ** 60)).toThrow(SqlBuildError);
    // Subnormal doubles are a syntax error on ClickHouse 18.16; the smallest normal one is not.
    expect(() => literal(5e-324)).toThrow(SqlBuildError);
    expect(() => literal(-1e-310)).toThrow(SqlBuildError);
    expect(literal(2.2250738585072014e-308).text).toBe("2.2250738585072014e-308");
    expect(() => literal(new Date("2024-01-02T03:04:05.500Z"))).toThrow(SqlBuildError);
    expect(() => literal(new Date(Number.NaN))).toThrow(SqlBuildError);
    expect(() => literal({} as never)).toThrow(SqlBuildError);
  });

  test("identifiers are validated, never escaped", () => {
    expect(ident("events").text).toBe("events");
    expect(ident("analytics.events").text).toBe("analytics.events");
    for (const bad of ["", "1a", "a b", "a;b", "a--", "a.b.c", "`x`", "x'", "événement"]) expect(() => ident(bad)).toThrow(SqlBuildError);
  });

  test("the template inlines values as literals and fragments as SQL", () => {
    const evil = "x' OR 1=1 --";
    const q = sql`SELECT count() FROM ${ident("events")} WHERE event = ${evil} AND ${and([sql`a = ${1}`, or([sql`b`, sql`c`])])}`;
    expect(q.text).toBe("SELECT count() FROM events WHERE event = 'x\\' OR 1=1 --' AND (a = 1) AND ((b) OR (c))");
    expect(and([]).text).toBe("1");
    expect(or([]).text).toBe("0");
    expect(join([sql`a`, "b"], " AND ").text).toBe("a AND 'b'");
  });

  test("shape: the same SQL with every inlined value as ?, through templates, joins, and/or", () => {
    const cond = and([sql`has(prop_keys, ${"email"})`, or([sql`x = ${42}`, sql`y IN ${["a", "b"]}`])]);
    const q = sql`SELECT count() FROM ${ident("events")} WHERE team_id = ${7} AND ${cond} AND z = ${literal("secret")} ${join([1, sql`w`], ", ")}`;
    expect(q.shape).toBe("SELECT count() FROM events WHERE team_id = ? AND (has(prop_keys, ?)) AND ((x = ?) OR (y IN [?, ?])) AND z = ? ?, w");
    expect(q.text).toContain("'secret'");
  });
  test("fragments cannot be made from text outside the builder", () => {
    expect(() => new SqlFragment(Symbol("SqlFragment") as never, "DROP TABLE x")).toThrow(SqlBuildError);
  });
});

describe("round trip through ClickHouse 18.16", () => {
  const ch = createClickHouse({ url: CLICKHOUSE_URL, database: "analytics" });
  afterAll(() => ch.close());

  test("every hostile string reads back unchanged, as one value", async () => {
    const q = sql`SELECT ${HOSTILE} AS values, length(values) AS n`;
    const rs = await ch.query({ query: q.text, format: "JSONEachRow" });
    const [row] = (await rs.json()) as { values: string[]; n: number }[];
    expect(Number(row!.n)).toBe(HOSTILE.length);
    expect(row!.values).toEqual(HOSTILE);
  });

  test("numbers and dates round-trip", async () => {
    const q = sql`SELECT ${1.25} AS f, ${-7} AS i, toUnixTimestamp(${new Date("2024-10-27T01:30:00Z")}) AS t, ${2.2250738585072014e-308} > 0 AS tiny, ${-1.5e-300} AS small`;
    const rs = await ch.query({ query: q.text, format: "JSONEachRow" });
    const [row] = (await rs.json()) as { f: number; i: number; t: number; tiny: number; small: number }[];
    expect(row).toEqual({ f: 1.25, i: -7, t: Date.parse("2024-10-27T01:30:00Z") / 1000, tiny: 1, small: -1.5e-300 });
  });
});
