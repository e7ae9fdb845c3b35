/**
 * A project's two credentials. The public token (`phc_...`, as PostHog names it) is embedded in web pages and
 * only allows writing events; the secret key (`phs_...`) allows querying, is shown once, and only its SHA-256 is
 * stored.
 */
const ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/** `length` characters drawn uniformly from base62 (rejection sampling: no modulo bias). */
export function randomBase62(length: number, random: (n: number) => Uint8Array = randomBytes): string {
  let out = "";
  while (out.length < length) {
    for (const byte of random(length * 2)) {
      if (byte < 248) out += ALPHABET[byte % 62];
      if (out.length === length) break;
    }
  }
  return out;
}

function randomBytes(n: number): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(n));
}

export function newProjectToken(random?: (n: number) => Uint8Array): string {
  return `phc_${randomBase62(43, random)}`;
}

export function newSecretKey(random?: (n: number) => Uint8Array): string {
  return `phs_${randomBase62(43, random)}`;
}

/** Hex SHA-256, the form `projects.secret_key_hash` holds. */
export function hashSecretKey(secret: string): string {
  return new Bun.CryptoHasher("sha256").update(secret).digest("hex");
}
