/**
 * JSON text -> the same text with every lone UTF-16 surrogate replaced by U+FFFD, before it is parsed: what
 * PostHog's capture does (rust/capture `InvalidSurrogatesPass`). A lone surrogate (a JS SDK cutting a string in
 * the middle of an emoji) survives JSON.parse and JSON.stringify as `\ud83d`, and ClickHouse refuses to insert
 * it ("missing second part of surrogate pair") on every version; fixing the text fixes every string at once:
 * event, distinct_id, keys and values at any depth, $set, $set_once.
 *
 * Two forms reach us: raw lone surrogates in the decoded text (only lz-string can produce them; UTF-8 decoding
 * already turns invalid bytes into U+FFFD), and `\uD800`-`\uDFFF` escapes. The common body has neither, and two
 * native scans prove it; only then is anything rewritten.
 */

/**
 * Escapes that matter, left to right: an escaped backslash (consumed whole, so `\\ud83d` stays text), a valid
 * escaped pair (kept), a lone surrogate escape (replaced). Other escapes (`\n`, `\u00e9`) cannot hide a
 * backslash, so the scan need not stop at them.
 */
const ESCAPES = /\\\\|\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}|\\u[dD][89a-fA-F][0-9a-fA-F]{2}/g;

function fixEscape(seq: string): string {
  // A lone surrogate escape is exactly 6 characters; an escaped backslash is 2 and a pair 12.
  return seq.length === 6 ? "\\ufffd" : seq;
}

/** Whether a `\uD800`-`\uDFFF` escape appears (an escaped backslash may make it text: the replace pass tells). */
function hasSurrogateEscape(text: string): boolean {
  // indexOf is several times faster than a regex test here, and most bodies hold no `\u` at all.
  for (let i = text.indexOf("\\u"); i !== -1; i = text.indexOf("\\u", i + 2)) {
    const d = text.charCodeAt(i + 2) | 0x20; // lower-cased
    const x = text.charCodeAt(i + 3) | 0x20;
    if (d === 0x64 /* d */ && (x === 0x38 || x === 0x39 || (x >= 0x61 && x <= 0x66)) /* 8-9, a-f */) return true;
  }
  return false;
}

export function wellFormedJsonText(text: string): string {
  const raw = text.isWellFormed() ? text : text.toWellFormed();
  return hasSurrogateEscape(raw) ? raw.replace(ESCAPES, fixEscape) : raw;
}
