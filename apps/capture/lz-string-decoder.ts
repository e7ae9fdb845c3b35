/**
 * lz-string's `decompressFromBase64` (the "lz64" compression of older posthog-js), with an output cap.
 *
 * Why not call npm `lz-string` directly: its decompressor has no output limit, and LZW output can grow
 * quadratically with input (every code may extend the previous entry by one character), so a 2 MB request
 * could expand to ~10^11 characters before we could check its size. This is the same algorithm (lz-string
 * 1.5.0, WTFPL/MIT), reading bits the same way, but it counts characters as it goes and stops at `maxChars`.
 * tests/capture/lz-string-decoder.test.ts checks it against npm `lz-string` (the compressor there is npm's).
 */

export class OutputLimitExceeded extends Error {
  constructor(readonly limit: number) {
    super(`decompressed payload exceeds ${limit} characters`);
    this.name = "OutputLimitExceeded";
  }
}

const BASE64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=";
const REVERSE = new Int16Array(128).fill(-1);
for (let i = 0; i < BASE64.length; i++) REVERSE[BASE64.charCodeAt(i)] = i;

/**
 * Returns the decompressed string, or null when the input is not a valid lz-string stream (npm returns null or
 * "" for those; both mean "not lz64" to us).
 * @throws OutputLimitExceeded as soon as the output would pass `maxChars`.
 */
export function decompressLz64(input: string, maxChars: number): string | null {
  if (input.length === 0) return null;
  const length = input.length;
  // Characters outside the alphabet read as 0, exactly as npm's lookup of `undefined` does in bit arithmetic.
  const valueAt = (i: number): number => {
    const code = input.charCodeAt(i);
    return code < 128 ? Math.max(0, REVERSE[code]!) : 0;
  };
  let val = valueAt(0);
  let position = 32;
  let index = 1;
  const readBits = (n: number): number => {
    let bits = 0;
    for (let power = 1, max = 1 << n; power !== max; power <<= 1) {
      const resb = val & position;
      position >>= 1;
      if (position === 0) {
        position = 32;
        val = valueAt(index++);
      }
      if (resb > 0) bits |= power;
    }
    return bits;
  };

  const dictionary: string[] = ["", "", ""];
  let enlargeIn = 4;
  let dictSize = 4;
  let numBits = 3;
  let total = 0;
  const result: string[] = [];
  const push = (s: string): void => {
    total += s.length;
    if (total > maxChars) throw new OutputLimitExceeded(maxChars);
    result.push(s);
  };

  let c: string;
  switch (readBits(2)) {
    case 0:
      c = String.fromCharCode(readBits(8));
      break;
    case 1:
      c = String.fromCharCode(readBits(16));
      break;
    case 2:
      return "";
    default:
      // npm's decoder crashes on this (it reads `undefined` as the first entry); it is simply not lz-string.
      return null;
  }
  dictionary[3] = c;
  let w = c;
  push(c);
  for (;;) {
    if (index > length) return "";
    let code = readBits(numBits);
    if (code === 0 || code === 1) {
      dictionary[dictSize++] = String.fromCharCode(readBits(code === 0 ? 8 : 16));
      code = dictSize - 1;
      enlargeIn--;
    } else if (code === 2) {
      return result.join("");
    }
    if (enlargeIn === 0) {
      enlargeIn = 2 ** numBits;
      numBits++;
    }
    let entry: string;
    if (dictionary[code] !== undefined) entry = dictionary[code]!;
    else if (code === dictSize) entry = w + w.charAt(0);
    else return null;
    push(entry);
    dictionary[dictSize++] = w + entry.charAt(0);
    enlargeIn--;
    w = entry;
    if (enlargeIn === 0) {
      enlargeIn = 2 ** numBits;
      numBits++;
    }
  }
}
