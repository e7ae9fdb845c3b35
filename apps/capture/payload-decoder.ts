/**
 * Request body -> JSON value, for every form PostHog SDKs send:
 *
 *   raw JSON                         application/json or text/plain (posthog-node, server SDKs)
 *   gzip                             Content-Encoding: gzip, ?compression=gzip-js|gzip, or the 1f 8b magic bytes
 *   lz64 / lz-string                 ?compression=lz64 (older posthog-js), body = lz-string compressToBase64
 *   base64                           ?compression=base64, or a body that is not JSON but decodes as base64
 *   form   data=<...>                application/x-www-form-urlencoded; `data` is JSON, base64 or lz64
 *                                    (a `compression` form field counts like the query parameter)
 *   GET ?data=<...>                  legacy beacons: the same as a form's `data`
 *
 * Every decompression stops at `maxBytes` of output while it runs: a 10 MB gzip bomb never becomes 10 GB.
 * Every string of the result is well-formed UTF-16 (lone surrogates replaced by U+FFFD).
 * Pure: no I/O, throws CaptureError with a code.
 */
import { gunzipSync } from "node:zlib";
import { CaptureError } from "./capture-error.ts";
import { decompressLz64, OutputLimitExceeded } from "./lz-string-decoder.ts";
import { wellFormedJsonText } from "./well-formed-json.ts";

export interface BodyHints {
  contentType: string;
  contentEncoding: string;
  /** `?compression=`, lower-cased; undefined when absent. */
  compression: string | undefined;
  /** `?data=` (GET beacons); used when the body is empty. */
  queryData: string | undefined;
}

/** Deflate cannot expand more than ~1032:1, so below this input size Bun's faster, uncapped gunzip is safe. */
const DEFLATE_MAX_RATIO = 1032;

const decoder = new TextDecoder();

export function decodePayload(body: Uint8Array, hints: BodyHints, maxBytes: number): unknown {
  if (body.length === 0) {
    if (hints.queryData !== undefined) return decodeDataField(hints.queryData, hints.compression, maxBytes);
    throw new CaptureError("invalid_payload", "empty body and no `data` query parameter");
  }
  if (hints.contentType.includes("application/x-www-form-urlencoded") && !isGzip(body)) {
    const form = new URLSearchParams(decoder.decode(body));
    const data = form.get("data");
    // Without a `data` field the label is wrong (curl -d '{...}', gzip sent as a form): decode it as a raw body.
    if (data !== null) return decodeDataField(data, form.get("compression")?.toLowerCase() ?? hints.compression, maxBytes);
  }
  return decodeRawBody(body, hints, maxBytes);
}

function isGzip(b: Uint8Array): boolean {
  return b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b;
}

function decodeRawBody(body: Uint8Array, hints: BodyHints, maxBytes: number): unknown {
  const compression = hints.compression;
  if (compression === "gzip-js" || compression === "gzip" || hints.contentEncoding.includes("gzip") || isGzip(body)) {
    return parseJson(decoder.decode(gunzipCapped(body, maxBytes)));
  }
  if (compression === "lz64" || compression === "lz-string") {
    return parseJson(lz64(decoder.decode(body), maxBytes));
  }
  if (compression === "base64") return parseJson(base64(decoder.decode(body)));
  if (compression !== undefined && compression !== "" && compression !== "none" && compression !== "identity") {
    throw new CaptureError("invalid_compression", `unknown compression ${JSON.stringify(compression.slice(0, 32))}`);
  }
  const text = decoder.decode(body);
  return looksLikeJson(text) ? parseJson(text) : parseJson(base64(text));
}

/** A `data` value from a form field or `?data=`: JSON, base64 or lz64. */
function decodeDataField(raw: string, compression: string | undefined, maxBytes: number): unknown {
  // Form decoding turns an unescaped "+" into a space; neither base64 nor lz64 contains spaces, JSON may.
  if (compression === "lz64" || compression === "lz-string") return parseJson(lz64(raw.replaceAll(" ", "+"), maxBytes));
  if (compression === "base64") return parseJson(base64(raw.replaceAll(" ", "+")));
  if (compression !== undefined && compression !== "" && compression !== "none") {
    throw new CaptureError("invalid_compression", `unknown compression ${JSON.stringify(compression.slice(0, 32))} for a data field`);
  }
  return looksLikeJson(raw) ? parseJson(raw) : parseJson(base64(raw.replaceAll(" ", "+")));
}

export function gunzipCapped(body: Uint8Array, maxBytes: number): Uint8Array {
  try {
    if (body.length * DEFLATE_MAX_RATIO <= maxBytes) {
      const out = Bun.gunzipSync(body as Uint8Array<ArrayBuffer>);
      if (out.length > maxBytes) throw new RangeError("over limit");
      return out;
    }
    // node:zlib inflates chunk by chunk and gives up once the output passes maxOutputLength.
    return gunzipSync(body, { maxOutputLength: maxBytes });
  } catch (err) {
    if (err instanceof RangeError || (err as { code?: string }).code === "ERR_BUFFER_TOO_LARGE") {
      throw new CaptureError("request_too_large", `decompressed body exceeds ${maxBytes} bytes`);
    }
    throw new CaptureError("invalid_compression", "body is not valid gzip", { cause: err });
  }
}

function lz64(text: string, maxBytes: number): string {
  let out: string | null;
  try {
    out = decompressLz64(text.trim(), maxBytes);
  } catch (err) {
    if (err instanceof OutputLimitExceeded) {
      throw new CaptureError("request_too_large", `decompressed body exceeds ${maxBytes} characters`);
    }
    throw err;
  }
  if (!out) throw new CaptureError("invalid_compression", "body is not valid lz64 (lz-string base64)");
  return out;
}

const BASE64_CHARS = /^[A-Za-z0-9+/_-]+={0,2}$/;

function base64(text: string): string {
  const trimmed = text.trim();
  if (!BASE64_CHARS.test(trimmed)) throw new CaptureError("invalid_payload", "body is neither JSON nor base64");
  const out = decoder.decode(Buffer.from(trimmed, "base64"));
  // Every payload is an object or an array: anything else means the text was not base64 of ours at all.
  if (!looksLikeJson(out)) throw new CaptureError("invalid_payload", "body is neither JSON nor base64-encoded JSON");
  return out;
}

function looksLikeJson(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (ch === 0x7b /* { */ || ch === 0x5b /* [ */) return true;
    if (ch !== 0x20 && ch !== 0x0a && ch !== 0x0d && ch !== 0x09 && ch !== 0xfeff) return false;
  }
  return false;
}

/** Lone surrogates become U+FFFD here, before parsing: ClickHouse cannot store them (well-formed-json.ts). */
function parseJson(text: string): unknown {
  try {
    return JSON.parse(wellFormedJsonText(text));
  } catch (err) {
    throw new CaptureError("invalid_json", `body is not valid JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
}
