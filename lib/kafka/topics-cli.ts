/**
 * `bun lib/kafka/topics-cli.ts [--bootstrap-server 127.0.0.1:9092]`: the cluster's topic names, one per line, from
 * one metadata request. stack.sh uses it so that `make up` on a running stack starts no JVM to find the topics
 * already there (a kafka-topics run costs seconds; this, a fraction of one).
 */
import { parseArgs } from "node:util";
import { ClusterClient } from "./metadata.ts";

const { values } = parseArgs({ options: { "bootstrap-server": { type: "string", default: "127.0.0.1:9092" } } });
const client = new ClusterClient({ "bootstrap.servers": values["bootstrap-server"]! });
try {
  for (const t of client.metadata(5000).topics) if (t.err === 0) console.log(t.name);
} catch (err) {
  console.error(`topics: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
} finally {
  client.destroy();
}
