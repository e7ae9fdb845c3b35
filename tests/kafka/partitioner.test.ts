/**
 * The default partitioner (murmur2_random) puts a key where Kafka's Java client puts it: same key -> same
 * partition across producer restarts (a new Producer in this process and one in another process), equal to the
 * partition the Java console producer picks, and equal to Java's formula toPositive(murmur2(key)) % partitions.
 */
import { afterAll, expect, test } from "bun:test";
import { Consumer } from "../../lib/kafka/consumer.ts";
import { Producer } from "../../lib/kafka/producer.ts";
import { BOOTSTRAP, consumeUntil, deleteTopics, kafkaCli, ROOT, text, uniqueTopic } from "./support.ts";

const topic = uniqueTopic("partitioner");
const PARTITIONS = 12;

/** org.apache.kafka.common.utils.Utils.murmur2, on the key's UTF-8 bytes. */
function murmur2(data: Uint8Array): number {
  const m = 0x5bd1e995;
  let h = 0x9747b28c ^ data.length;
  const len4 = data.length >> 2;
  for (let i = 0; i < len4; i++) {
    const i4 = i * 4;
    let k = data[i4]! | (data[i4 + 1]! << 8) | (data[i4 + 2]! << 16) | (data[i4 + 3]! << 24);
    k = Math.imul(k, m);
    k ^= k >>> 24;
    k = Math.imul(k, m);
    h = Math.imul(h, m) ^ k;
  }
  const tail = data.length & ~3;
  // Java's switch falls through from 3 to 2 to 1.
  const rem = data.length & 3;
  if (rem === 3) h ^= data[tail + 2]! << 16;
  if (rem >= 2) h ^= data[tail + 1]! << 8;
  if (rem >= 1) {
    h ^= data[tail]!;
    h = Math.imul(h, m);
  }
  h ^= h >>> 13;
  h = Math.imul(h, m);
  h ^= h >>> 15;
  return h;
}
const javaPartition = (key: string) => (murmur2(new TextEncoder().encode(key)) & 0x7fffffff) % PARTITIONS;

// Keys of every length class (murmur2 has a 4-byte body and a 0-3 byte tail), ids, UUIDs and non-ASCII text.
// No ':' (the console producer's key separator) and no newlines.
const KEYS = [
  ...Array.from({ length: 150 }, (_, i) => `user-${i}`),
  ...Array.from({ length: 40 }, (_, i) => "x".repeat(i + 1)),
  ...Array.from({ length: 50 }, (_, i) => crypto.randomUUID() + (i % 2 ? "" : `-${i}`)),
  "distinct_id 42",
  "Ünïcödé-ключ",
  "用户-123",
  "emoji-😀-🚀",
  "0",
  "a",
  "ab",
  "abc",
  "abcd",
];

async function produceAll(tag: string): Promise<Map<string, number>> {
  const producer = new Producer({ "bootstrap.servers": BOOTSTRAP });
  try {
    const reports = await Promise.all(KEYS.map((k) => producer.produce(topic, k, `${tag}|${k}`)));
    return new Map(KEYS.map((k, i) => [k, reports[i]!.partition]));
  } finally {
    await producer.close();
  }
}

afterAll(async () => {
  await deleteTopics([topic]);
}, 30_000);

test("same key -> same partition across restarts and as the Java producer", async () => {
  const first = await produceAll("first");
  const second = await produceAll("second");

  // A restart in the full sense: another process with its own librdkafka instance.
  const script = `
    import { Producer } from ${JSON.stringify(`${ROOT}/lib/kafka/producer.ts`)};
    const keys = JSON.parse(await Bun.stdin.text());
    const p = new Producer({ "bootstrap.servers": ${JSON.stringify(BOOTSTRAP)} });
    const rs = await Promise.all(keys.map((k) => p.produce(${JSON.stringify(topic)}, k, "process|" + k)));
    await p.close();
    console.log(JSON.stringify(rs.map((r) => r.partition)));`;
  const proc = Bun.spawn([process.execPath, "-e", script], { stdin: new Blob([JSON.stringify(KEYS)]), stdout: "pipe", stderr: "pipe", cwd: ROOT });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  expect(err.trim() === "" ? code : `${code}: ${err}`).toBe(0);
  const fromProcess = JSON.parse(out) as number[];
  const third = new Map(KEYS.map((k, i) => [k, fromProcess[i]!]));

  // The Java client: kafka-console-producer with key:value lines.
  await kafkaCli(
    "kafka-console-producer",
    ["--bootstrap-server", BOOTSTRAP, "--topic", topic, "--property", "parse.key=true", "--property", "key.separator=:"],
    KEYS.map((k) => `${k}:java|${k}\n`).join(""),
  );

  // Read everything back with our consumer; the partition each message landed on is the partition chosen.
  const landed = new Map<string, Map<string, number>>(); // tag -> key -> partition
  let count = 0;
  const consumer = new Consumer({ "bootstrap.servers": BOOTSTRAP, "group.id": `${topic}-g` });
  consumer.subscribe([topic]);
  try {
    await consumeUntil(
      consumer,
      (msgs) => {
        for (const m of msgs) {
          const value = text(m.value);
          const bar = value.indexOf("|");
          const tag = value.slice(0, bar);
          const key = value.slice(bar + 1);
          expect(text(m.key)).toBe(key);
          let byKey = landed.get(tag);
          if (!byKey) landed.set(tag, (byKey = new Map()));
          expect(byKey.has(key)).toBe(false);
          byKey.set(key, m.partition);
          count++;
        }
      },
      () => count >= 4 * KEYS.length,
      60_000,
    );
  } finally {
    await consumer.close();
  }
  expect(count).toBe(4 * KEYS.length);
  expect([...landed.keys()].sort()).toEqual(["first", "java", "process", "second"]);

  const expected = Object.fromEntries(KEYS.map((k) => [k, javaPartition(k)]));
  const asObject = (m: Map<string, number>) => Object.fromEntries(KEYS.map((k) => [k, m.get(k)]));
  // Delivery reports of the three runs of our producer.
  expect(asObject(first)).toEqual(expected);
  expect(asObject(second)).toEqual(expected);
  expect(asObject(third)).toEqual(expected);
  // Where the messages actually are, ours and Java's.
  for (const tag of ["first", "second", "process", "java"]) expect(asObject(landed.get(tag)!)).toEqual(expected);
  // The keys are spread: a broken partitioner putting everything in one place would not get here unnoticed.
  expect(new Set(Object.values(expected)).size).toBe(PARTITIONS);
}, 90_000);
