/**
 * Per-token event rate limits in Redis, shared by every capture process. Two algorithms (config):
 *
 * - fixed_window: at most `ratePerSecond * windowSeconds` events per aligned window. One INCRBY; cheap, but a
 *   client may send up to twice the limit across a window boundary.
 * - token_bucket: `burst` tokens refilled at `ratePerSecond`; smooth. A request larger than the whole bucket is
 *   let through when the bucket is full and leaves it in debt, so a big batch is limited, not banned forever.
 *
 * Both cost one Redis round trip per request (a Lua script, atomic across processes). The clock is passed in.
 */
import type { Redis } from "../../lib/redis/client.ts";

export type RateDecision = { allowed: true } | { allowed: false; retryAfterS: number };

export interface RateLimiter {
  take(token: string, events: number, nowMs: number): Promise<RateDecision>;
}

export type RateLimitAlgorithm = "fixed_window" | "token_bucket";

export interface RedisRateLimiterOptions {
  algorithm: RateLimitAlgorithm;
  ratePerSecond: number;
  /** token_bucket capacity (events). */
  burst: number;
  /** fixed_window length. */
  windowSeconds: number;
  keyPrefix?: string;
}

const FIXED_WINDOW = `
local n = redis.call('INCRBY', KEYS[1], ARGV[1])
if n == tonumber(ARGV[1]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return n`;

// State: t = tokens (may be negative: debt), ts = last update (ms). Returns {allowed, ms until allowed}.
const TOKEN_BUCKET = `
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local cost = tonumber(ARGV[4])
local s = redis.call('HMGET', KEYS[1], 't', 'ts')
local tokens = tonumber(s[1]) or burst
local ts = tonumber(s[2]) or now
if now > ts then tokens = math.min(burst, tokens + (now - ts) * rate) else now = ts end
local need = math.min(cost, burst)
local allowed = 0
local wait = 0
if tokens >= need then
  tokens = tokens - cost
  allowed = 1
else
  wait = math.ceil((need - tokens) / rate)
end
redis.call('HSET', KEYS[1], 't', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate) + 1000)
return {allowed, wait}`;

type Scripted = Redis & {
  captureFixedWindow(key: string, cost: number, ttlMs: number): Promise<number>;
  captureTokenBucket(key: string, ratePerMs: number, burst: number, nowMs: number, cost: number): Promise<[number, number]>;
};

export class RedisRateLimiter implements RateLimiter {
  readonly #redis: Scripted;
  readonly #prefix: string;

  constructor(redis: Redis, private readonly opts: RedisRateLimiterOptions) {
    if (!(opts.ratePerSecond > 0)) throw new RangeError("ratePerSecond must be positive");
    // defineCommand sends EVALSHA and falls back to EVAL once, so the script text is not sent per request.
    redis.defineCommand("captureFixedWindow", { numberOfKeys: 1, lua: FIXED_WINDOW });
    redis.defineCommand("captureTokenBucket", { numberOfKeys: 1, lua: TOKEN_BUCKET });
    this.#redis = redis as Scripted;
    this.#prefix = opts.keyPrefix ?? "capture:rate:";
  }

  async take(token: string, events: number, nowMs: number): Promise<RateDecision> {
    const o = this.opts;
    if (o.algorithm === "fixed_window") {
      const windowMs = o.windowSeconds * 1000;
      const window = Math.floor(nowMs / windowMs);
      const count = await this.#redis.captureFixedWindow(`${this.#prefix}fw:${token}:${window}`, events, windowMs + 1000);
      if (count <= o.ratePerSecond * o.windowSeconds) return { allowed: true };
      return { allowed: false, retryAfterS: Math.max(1, Math.ceil(((window + 1) * windowMs - nowMs) / 1000)) };
    }
    const [allowed, waitMs] = await this.#redis.captureTokenBucket(
      `${this.#prefix}tb:${token}`,
      o.ratePerSecond / 1000,
      o.burst,
      nowMs,
      events,
    );
    return allowed === 1 ? { allowed: true } : { allowed: false, retryAfterS: Math.max(1, Math.ceil(waitMs / 1000)) };
  }
}
