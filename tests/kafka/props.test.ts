/** The consumer-only property list matches the installed librdkafka's own CONFIGURATION.md. */
import { expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import { CONSUMER_ONLY_PROPERTIES, consumerProperties, PRODUCER_ONLY_PROPERTIES, probeProperties, producerProperties } from "../../lib/kafka/props.ts";

const DOC = ["/usr/share/doc/librdkafka1/CONFIGURATION.md.gz", "/usr/share/doc/librdkafka-dev/CONFIGURATION.md.gz"].find((p) => existsSync(p));

async function documented(scope: "C" | "P"): Promise<string[]> {
  if (!DOC) throw new Error("librdkafka's CONFIGURATION.md is not installed (Debian librdkafka1 / librdkafka-dev: make deps)");
  const text = gunzipSync(new Uint8Array(await Bun.file(DOC).arrayBuffer())).toString("utf8");
  const rows = text.split("\n").map((l) => l.split("|").map((c) => c.trim()));
  return [...new Set(rows.filter((c) => c.length > 2 && c[1] === scope).map((c) => c[0]!))].sort();
}

test("CONSUMER_ONLY_PROPERTIES / PRODUCER_ONLY_PROPERTIES = librdkafka's rows with C/P = C / P", async () => {
  expect([...CONSUMER_ONLY_PROPERTIES].sort()).toEqual(await documented("C"));
  expect([...PRODUCER_ONLY_PROPERTIES].sort()).toEqual(await documented("P"));
});

test("the producer keeps shared properties and drops consumer-only ones; the probe drops group membership", () => {
  const props = { "bootstrap.servers": "b:9092", "security.protocol": "sasl_ssl", "client.id": "x", "group.id": "g", "group.instance.id": "g-1", "fetch.min.bytes": "1", "linger.ms": "5" };
  expect(consumerProperties(props)).toEqual({ "bootstrap.servers": "b:9092", "security.protocol": "sasl_ssl", "client.id": "x", "group.id": "g", "group.instance.id": "g-1", "fetch.min.bytes": "1" });
  expect(producerProperties(props)).toEqual({ "bootstrap.servers": "b:9092", "security.protocol": "sasl_ssl", "client.id": "x", "linger.ms": "5" });
  expect(probeProperties(props)).toEqual({ "bootstrap.servers": "b:9092", "security.protocol": "sasl_ssl", "client.id": "x", "fetch.min.bytes": "1" });
});
