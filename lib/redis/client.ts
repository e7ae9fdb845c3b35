/**
 * Redis through ioredis, set up for a cache/rate-limit role: commands fail fast while Redis is down (no offline
 * queue, one retry) so callers fall back instead of hanging; reconnection keeps trying in the background.
 */
import Redis from "ioredis";

export type { Redis };

export function createRedis(url: string): Redis {
  const redis = new Redis(url, {
    lazyConnect: false,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 2000,
    commandTimeout: 1000,
    retryStrategy: (attempt) => Math.min(attempt * 200, 2000),
  });
  // Errors surface on the commands that fail; the connection's own error events would otherwise crash the process.
  redis.on("error", () => {});
  return redis;
}

export async function pingRedis(redis: Redis): Promise<void> {
  const pong = await redis.ping();
  if (pong !== "PONG") throw new Error(`unexpected PING answer ${pong}`);
}

/** Resolves once the connection is usable (commands fail fast before that, by design). */
export async function redisReady(redis: Redis, timeoutMs = 5000): Promise<void> {
  if (redis.status === "ready") return;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      redis.off("ready", onReady);
      reject(new Error(`Redis not ready within ${timeoutMs} ms (status ${redis.status})`));
    }, timeoutMs);
    const onReady = () => {
      clearTimeout(timer);
      resolve();
    };
    redis.once("ready", onReady);
  });
}
