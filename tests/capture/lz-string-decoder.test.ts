import { describe, expect, test } from "bun:test";
import LZString from "lz-string";
import { decompressLz64, OutputLimitExceeded } from "../../apps/capture/lz-string-decoder.ts";

/** Deterministic pseudo-random text generator (xorshift), so failures reproduce. */
function randomText(seed: number, length: number, alphabet: string): string {
  let x = seed || 1;
  let out = "";
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out += alphabet[Math.abs(x) % alphabet.length];
  }
  return out;
}

describe("decompressLz64 matches npm lz-string", () => {
  test("on JSON, unicode, repetitive and random inputs", () => {
    const samples = [
      "a",
      "aa",
      JSON.stringify({ event: "$pageview", properties: { $current_url: "https://example.com/ä/✓/😀", n: 1.5 } }),
      "abc".repeat(10_000),
      randomText(42, 5000, "abcdefghij{}[]:,\" 0123456789"),
      randomText(7, 3000, "αβγδεζηθ日本語😀\u0000\uffff"),
    ];
    for (const s of samples) {
      const compressed = LZString.compressToBase64(s);
      expect(decompressLz64(compressed, 10_000_000)).toBe(LZString.decompressFromBase64(compressed));
      expect(decompressLz64(compressed, 10_000_000)).toBe(s);
    }
  });

  test("invalid streams come back null or empty like npm's, never throw", () => {
    for (const junk of ["", "!!!!", "AAAA", "////////", "zzzzzzzzzzzzzzzzzz"]) {
      const ours = decompressLz64(junk, 1_000_000);
      let theirs: string | null;
      try {
        theirs = LZString.decompressFromBase64(junk);
      } catch {
        theirs = null; // npm crashes on some junk ("////////"); ours must answer "not lz64" instead
      }
      expect(ours || null).toBe(theirs || null);
    }
  });

  test("stops at the output cap (an LZW stream can grow quadratically)", () => {
    const compressed = LZString.compressToBase64("x".repeat(1_000_000));
    expect(compressed.length).toBeLessThan(4000);
    expect(() => decompressLz64(compressed, 100_000)).toThrow(OutputLimitExceeded);
    expect(decompressLz64(compressed, 1_000_000)!.length).toBe(1_000_000);
  });
});
