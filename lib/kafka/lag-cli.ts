/**
 * `bun run lag` / `make lag`: per-partition lag of a consumer group, printed like kafka-consumer-groups --describe.
 *   bun run lag [--group event-consumers] [--topic events,events_overflow] [--bootstrap-server 127.0.0.1:9092] [--json]
 * Other CONSUMER_KAFKA_* properties (security.protocol, sasl.*, ...) apply as they do to the consumer.
 */
import { parseArgs } from "node:util";
import { kafkaProperties } from "../config/env.ts";
import { ClusterClient } from "./metadata.ts";
import { probeProperties } from "./props.ts";

const { values } = parseArgs({
  options: {
    group: { type: "string", default: process.env.CONSUMER_KAFKA_GROUP_ID ?? "event-consumers" },
    topic: { type: "string", default: process.env.CONSUMER_TOPICS || process.env.CONSUMER_EVENTS_TOPIC || "events,events_overflow" },
    "bootstrap-server": { type: "string", default: process.env.CONSUMER_KAFKA_BOOTSTRAP_SERVERS ?? "127.0.0.1:9092" },
    json: { type: "boolean", default: false },
  },
});

const client = new ClusterClient({ ...probeProperties(kafkaProperties("CONSUMER_KAFKA")), "bootstrap.servers": values["bootstrap-server"]! });
try {
  const rows = values.topic!.split(",").flatMap((topic) => client.lag(values.group!, topic, 10_000));
  if (values.json) {
    console.log(JSON.stringify(rows, (_, v) => (typeof v === "bigint" ? Number(v) : v)));
  } else {
    const table = rows.map((r) => ({
      GROUP: values.group!,
      TOPIC: r.topic,
      PARTITION: String(r.partition),
      "CURRENT-OFFSET": r.committed === null ? "-" : String(r.committed),
      "LOG-END-OFFSET": String(r.high),
      LAG: String(r.lag),
    }));
    const cols = Object.keys(table[0] ?? { GROUP: "" }) as (keyof (typeof table)[number])[];
    const width = (c: (typeof cols)[number]) => Math.max(c.length, ...table.map((r) => r[c].length));
    console.log(cols.map((c) => c.padEnd(width(c))).join("  "));
    for (const r of table) console.log(cols.map((c) => r[c].padEnd(width(c))).join("  "));
    const total = rows.reduce((a, r) => a + r.lag, 0n);
    const max = rows.reduce((a, r) => (r.lag > a ? r.lag : a), 0n);
    console.log(`\ntotal lag ${total}, max per partition ${max}`);
  }
} catch (err) {
  console.error(`lag: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
} finally {
  client.destroy();
}
