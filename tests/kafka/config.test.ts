/**
 * Configuration errors are loud and precise: a bad librdkafka property throws KafkaConfigError naming the
 * property (with librdkafka's own message); LIBRDKAFKA_PATH pointing at a missing file fails with a message
 * naming the Debian package to install. Loading runs in a subprocess, since librdkafka is loaded once per process.
 */
import { expect, test } from "bun:test";
import { Consumer } from "../../lib/kafka/consumer.ts";
import { KafkaConfigError } from "../../lib/kafka/librdkafka.ts";
import { ClusterClient } from "../../lib/kafka/metadata.ts";
import { Producer } from "../../lib/kafka/producer.ts";
import { BOOTSTRAP, ROOT } from "./support.ts";

function configError(make: () => unknown): KafkaConfigError {
  try {
    make();
  } catch (err) {
    if (err instanceof KafkaConfigError) return err;
    throw new Error(`expected a KafkaConfigError, got ${String(err)}`);
  }
  throw new Error("expected a KafkaConfigError, nothing was thrown");
}

test("an unknown property throws KafkaConfigError naming it", () => {
  for (const make of [
    () => new Producer({ "bootstrap.servers": BOOTSTRAP, "no.such.property": 1 }),
    () => new Consumer({ "bootstrap.servers": BOOTSTRAP, "group.id": "g", "no.such.property": 1 }),
    () => new ClusterClient({ "bootstrap.servers": BOOTSTRAP, "no.such.property": 1 }),
  ]) {
    const err = configError(make);
    expect(err.name).toBe("KafkaConfigError");
    expect(err.property).toBe("no.such.property");
    expect(err.message).toContain("no.such.property");
    expect(err.message).toContain("No such configuration property");
  }
});

test("a bad value throws KafkaConfigError naming the property, with librdkafka's message", () => {
  const cases: [Record<string, string | number | boolean>, string][] = [
    [{ acks: "banana" }, "acks"],
    [{ "linger.ms": -5 }, "linger.ms"],
    [{ "compression.type": "rar" }, "compression.type"],
    [{ "enable.idempotence": "maybe" }, "enable.idempotence"],
  ];
  for (const [props, name] of cases) {
    const err = configError(() => new Producer({ "bootstrap.servers": BOOTSTRAP, ...props }));
    expect(err.property).toBe(name);
    expect(err.message).toContain(`"${name}"`);
    expect(err.message).toMatch(/Invalid value|outside allowed range|Expected bool value/i);
  }
  const err = configError(() => new Consumer({ "bootstrap.servers": BOOTSTRAP, "group.id": "g", "auto.offset.reset": "sideways" }));
  expect(err.property).toBe("auto.offset.reset");
});

test("a valid override passes through to librdkafka", async () => {
  const p = new Producer({ "bootstrap.servers": BOOTSTRAP, "linger.ms": 0, "batch.num.messages": 100, "compression.type": "zstd", "client.id": "config-test" });
  await p.close();
});

async function runWithPath(path: string): Promise<{ code: number; out: string; err: string }> {
  const script = `
    import { librdkafkaVersion } from ${JSON.stringify(`${ROOT}/lib/kafka/librdkafka.ts`)};
    console.log("version " + librdkafkaVersion());`;
  const proc = Bun.spawn([process.execPath, "-e", script], {
    env: { ...process.env, LIBRDKAFKA_PATH: path },
    stdout: "pipe",
    stderr: "pipe",
  });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, out, err };
}

test("LIBRDKAFKA_PATH at a missing file: an error naming the path and the package", async () => {
  const missing = "/nonexistent/lib/librdkafka.so.1";
  const r = await runWithPath(missing);
  expect(r.code).not.toBe(0);
  expect(r.err).toContain(`cannot load librdkafka from "${missing}"`);
  expect(r.err).toContain("librdkafka1");
  expect(r.err).toContain("LIBRDKAFKA_PATH");
});

test("LIBRDKAFKA_PATH at a real build loads it", async () => {
  const real = ["/usr/lib/x86_64-linux-gnu/librdkafka.so.1", "/usr/lib/aarch64-linux-gnu/librdkafka.so.1"].find((p) => Bun.file(p).size > 0);
  if (!real) throw new Error("librdkafka.so.1 not found in the Debian library directories");
  const r = await runWithPath(real);
  expect(r.code === 0 ? r.out.trim() : r.err).toMatch(/^version \d+\.\d+\.\d+/);
});
