/**
 * Every Kafka handle of the consumer gets the operator's CONSUMER_KAFKA_* properties: the group consumer, the
 * DLQ producer and the probe's handles (readiness metadata and lag). Observed through librdkafka's own
 * configuration dump (`debug=conf`), which each handle prints under its name (`<client.id>#<kind>-<n>`).
 */
import { afterAll, expect, test } from "bun:test";
import { type AppProcess, startApp } from "../support/apps.ts";
import { produceEvents } from "../support/events.ts";
import { uniqueName, uniqueTeamId, waitFor } from "../support/stack.ts";

const running: AppProcess[] = [];
afterAll(async () => {
  for (const p of running) if (p.proc.exitCode === null) await p.kill9();
});

/** handle name -> the properties its dump listed */
function configDumps(output: string, clientId: string): Map<string, Map<string, string>> {
  const dumps = new Map<string, Map<string, string>>();
  const line = new RegExp(`\\|CONF\\|(${clientId}#(?:consumer|producer)-\\d+)\\| \\[thrd:[^\\]]*\\]:\\s+([a-z._]+) = (.*)$`);
  for (const l of output.split("\n")) {
    const m = line.exec(l);
    if (!m) continue;
    const props = dumps.get(m[1]!) ?? new Map<string, string>();
    props.set(m[2]!, m[3]!.trim());
    dumps.set(m[1]!, props);
  }
  return dumps;
}

test("a property set as CONSUMER_KAFKA_* reaches the consumer, the DLQ producer and the probe handles; none warns", async () => {
  const topic = uniqueName("t-props");
  const clientId = uniqueName("props").replaceAll("-", "_");
  // The topic must exist for the lag sample (and its handle) to happen.
  await produceEvents(topic, uniqueTeamId(), 1);
  const app = await startApp("consumer", {
    CONSUMER_EVENTS_TOPIC: topic,
    CONSUMER_KAFKA_GROUP_ID: uniqueName("g"),
    CONSUMER_DLQ_TOPIC: `${topic}-dlq`,
    CONSUMER_LAG_INTERVAL_MS: "500",
    CONSUMER_KAFKA_CLIENT_ID: clientId,
    CONSUMER_KAFKA_DEBUG: "conf",
    CONSUMER_KAFKA_SOCKET_KEEPALIVE_ENABLE: "true",
    // A producer-only and a consumer-only property: each must reach only the handles that use it.
    CONSUMER_KAFKA_LINGER_MS: "7",
    CONSUMER_KAFKA_FETCH_WAIT_MAX_MS: "150",
  });
  running.push(app);
  // The consumer and producer are created at start; the probe's metadata handle at start, the lag handle for the
  // group on the first lag sample.
  const dumps = await waitFor("config dumps of four handles", 20_000, () => {
    const d = configDumps(app.output(), clientId);
    return [...d.keys()].filter((k) => k.includes("#consumer-")).length >= 3 && [...d.keys()].some((k) => k.includes("#producer-")) ? d : null;
  });
  for (const [handle, props] of dumps) {
    expect({ handle, keepalive: props.get("socket.keepalive.enable"), id: props.get("client.id") }).toEqual({ handle, keepalive: "true", id: clientId });
    if (handle.includes("#producer-")) {
      expect(props.get("queue.buffering.max.ms")).toBe("7");
      expect(props.has("fetch.wait.max.ms")).toBe(false);
      expect(props.has("group.id")).toBe(false);
    } else {
      expect(props.has("queue.buffering.max.ms")).toBe(false);
    }
  }
  // The group consumer is the one with our group id and the fetch setting.
  expect([...dumps.values()].some((p) => p.get("fetch.wait.max.ms") === "150" && p.get("group.id")?.startsWith("g-"))).toBe(true);
  expect(app.output()).not.toContain("CONFWARN");
  expect(await app.stop()).toBe(0);
}, 60_000);
