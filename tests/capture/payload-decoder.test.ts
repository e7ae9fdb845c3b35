import { describe, expect, test } from "bun:test";
import { gzipSync } from "node:zlib";
import LZString from "lz-string";
import { CaptureError } from "../../apps/capture/capture-error.ts";
import { decodePayload, gunzipCapped, type BodyHints } from "../../apps/capture/payload-decoder.ts";

const enc = new TextEncoder();
const JSON_HINTS: BodyHints = { contentType: "application/json", contentEncoding: "", compression: undefined, queryData: undefined };
const FORM: BodyHints = { ...JSON_HINTS, contentType: "application/x-www-form-urlencoded" };
const LIMIT = 2 * 1024 * 1024;
const payload = { api_key: "t", batch: [{ event: "e", distinct_id: "d", properties: { emoji: "héllo ✓" } }] };
const text = JSON.stringify(payload);
const b64 = Buffer.from(text).toString("base64");

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof CaptureError) return err.code;
    throw err;
  }
  throw new Error("expected a CaptureError");
}

describe("raw bodies", () => {
  test("plain JSON (object and array)", () => {
    expect(decodePayload(enc.encode(text), JSON_HINTS, LIMIT)).toEqual(payload);
    expect(decodePayload(enc.encode(" \n[1,2]"), JSON_HINTS, LIMIT)).toEqual([1, 2]);
  });
  test("Content-Encoding: gzip", () => {
    expect(decodePayload(gzipSync(text), { ...JSON_HINTS, contentEncoding: "gzip" }, LIMIT)).toEqual(payload);
  });
  test("?compression=gzip-js and ?compression=gzip (posthog-js sends text/plain)", () => {
    for (const compression of ["gzip-js", "gzip"]) {
      expect(decodePayload(gzipSync(text), { ...JSON_HINTS, contentType: "text/plain", compression }, LIMIT)).toEqual(payload);
    }
  });
  test("gzip recognised by its magic bytes alone, even labelled as a form", () => {
    expect(decodePayload(gzipSync(text), { ...JSON_HINTS, contentType: "" }, LIMIT)).toEqual(payload);
    expect(decodePayload(gzipSync(text), FORM, LIMIT)).toEqual(payload);
  });
  test("?compression=lz64 and lz-string", () => {
    for (const compression of ["lz64", "lz-string"]) {
      const body = enc.encode(LZString.compressToBase64(text));
      expect(decodePayload(body, { ...JSON_HINTS, compression }, LIMIT)).toEqual(payload);
    }
  });
  test("?compression=base64, and a base64 body without any hint", () => {
    expect(decodePayload(enc.encode(b64), { ...JSON_HINTS, compression: "base64" }, LIMIT)).toEqual(payload);
    expect(decodePayload(enc.encode(b64), JSON_HINTS, LIMIT)).toEqual(payload);
  });
  test("a JSON body labelled as a form without a data field (curl -d)", () => {
    expect(decodePayload(enc.encode(text), FORM, LIMIT)).toEqual(payload);
  });
});

describe("data= forms and GET ?data=", () => {
  test("form data= with JSON, base64, lz64 (field or query compression)", () => {
    const form = (s: string) => enc.encode(`data=${encodeURIComponent(s)}`);
    expect(decodePayload(form(text), FORM, LIMIT)).toEqual(payload);
    expect(decodePayload(form(b64), FORM, LIMIT)).toEqual(payload);
    expect(decodePayload(form(b64), { ...FORM, compression: "base64" }, LIMIT)).toEqual(payload);
    const lz = LZString.compressToBase64(text);
    expect(decodePayload(form(lz), { ...FORM, compression: "lz64" }, LIMIT)).toEqual(payload);
    expect(decodePayload(enc.encode(`data=${encodeURIComponent(lz)}&compression=lz64`), FORM, LIMIT)).toEqual(payload);
  });
  test("an unescaped + in base64 data (decoded by the form parser as a space) still decodes", () => {
    const withPlus = Buffer.from('{"a":">>>?"}').toString("base64");
    expect(withPlus).toContain("+");
    expect(decodePayload(enc.encode(`data=${withPlus}`), { ...FORM, compression: "base64" }, LIMIT)).toEqual({ a: ">>>?" });
  });
  test("GET ?data= (empty body) in JSON, base64 and lz64", () => {
    expect(decodePayload(new Uint8Array(), { ...JSON_HINTS, queryData: text }, LIMIT)).toEqual(payload);
    expect(decodePayload(new Uint8Array(), { ...JSON_HINTS, queryData: b64 }, LIMIT)).toEqual(payload);
    const lz = LZString.compressToBase64(text);
    expect(decodePayload(new Uint8Array(), { ...JSON_HINTS, queryData: lz, compression: "lz64" }, LIMIT)).toEqual(payload);
  });
});

describe("bad input", () => {
  test("empty body without ?data=", () => {
    expect(code(() => decodePayload(new Uint8Array(), JSON_HINTS, LIMIT))).toBe("invalid_payload");
  });
  test("invalid JSON", () => {
    expect(code(() => decodePayload(enc.encode('{"event": '), JSON_HINTS, LIMIT))).toBe("invalid_json");
    expect(code(() => decodePayload(enc.encode(`data=${encodeURIComponent("[1,")}`), FORM, LIMIT))).toBe("invalid_json");
  });
  test("neither JSON nor base64", () => {
    expect(code(() => decodePayload(enc.encode("hello world!"), JSON_HINTS, LIMIT))).toBe("invalid_payload");
  });
  test("base64 that is not JSON inside", () => {
    expect(code(() => decodePayload(enc.encode(Buffer.from("nope").toString("base64")), JSON_HINTS, LIMIT))).toBe("invalid_payload");
    expect(code(() => decodePayload(enc.encode(Buffer.from("[1,").toString("base64")), JSON_HINTS, LIMIT))).toBe("invalid_json");
  });
  test("declared gzip that is not gzip", () => {
    expect(code(() => decodePayload(enc.encode(text), { ...JSON_HINTS, compression: "gzip-js" }, LIMIT))).toBe("invalid_compression");
  });
  test("truncated gzip", () => {
    const gz = gzipSync(text);
    expect(code(() => decodePayload(gz.subarray(0, gz.length - 12), JSON_HINTS, LIMIT))).toBe("invalid_compression");
  });
  test("lz64 that is not lz-string", () => {
    expect(code(() => decodePayload(enc.encode("!!!!"), { ...JSON_HINTS, compression: "lz64" }, LIMIT))).toBe("invalid_compression");
  });
  test("unknown compression", () => {
    expect(code(() => decodePayload(enc.encode(text), { ...JSON_HINTS, compression: "brotli" }, LIMIT))).toBe("invalid_compression");
    expect(code(() => decodePayload(enc.encode(`data=${text}`), { ...FORM, compression: "zstd" }, LIMIT))).toBe("invalid_compression");
  });
});

describe("decompression caps", () => {
  test("a 10 GB gzip bomb (10 MB on the wire) stops at the cap without inflating", () => {
    // 600 gzip members of 16 MiB of zeros each: a valid gzip stream of ~10 GB, built in milliseconds.
    const member = gzipSync(new Uint8Array(1 << 24), { level: 9 });
    const bomb = Buffer.concat(Array.from({ length: Math.ceil(9_500_000 / member.length) }, () => member));
    expect(bomb.length).toBeGreaterThan(9_500_000);
    const rssBefore = process.memoryUsage().rss;
    const started = performance.now();
    expect(code(() => gunzipCapped(bomb, 20 * 1024 * 1024))).toBe("request_too_large");
    expect(code(() => decodePayload(bomb, JSON_HINTS, 20 * 1024 * 1024))).toBe("request_too_large");
    expect(performance.now() - started).toBeLessThan(5000);
    // Far below the 10 GB the bomb would become (the 20 MiB cap plus allocator slack).
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(300 * 1024 * 1024);
  });
  test("the cap applies on both paths: small input (Bun.gunzipSync) and large input (capped inflate)", () => {
    const small = gzipSync("a".repeat(500));
    expect(small.length * 1032).toBeLessThan(1_000_000);
    expect(gunzipCapped(small, 1_000_000).length).toBe(500);
    expect(gunzipCapped(small, 500).length).toBe(500);
    expect(code(() => gunzipCapped(small, 499))).toBe("request_too_large");
    const large = gzipSync(JSON.stringify({ x: "a".repeat(50_000) }));
    expect(large.length * 1032).toBeGreaterThan(1000);
    expect(code(() => gunzipCapped(large, 1000))).toBe("request_too_large");
    expect(gunzipCapped(large, 60_000).length).toBe(50_008);
  });
  test("an lz64 body whose output passes the cap", () => {
    const lz = LZString.compressToBase64("a".repeat(100_000));
    expect(lz.length).toBeLessThan(2000);
    expect(code(() => decodePayload(enc.encode(lz), { ...JSON_HINTS, compression: "lz64" }, 10_000))).toBe("request_too_large");
  });
});
