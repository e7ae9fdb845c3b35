/** Reads a DLQ topic from the start with a throwaway group: each message with its headers as text. */
import { Consumer } from "../../lib/kafka/consumer.ts";
import { KAFKA, uniqueName, waitFor } from "./stack.ts";

export interface DeadLetterRead {
  reason: string;
  detail: string;
  sourceTopic: string;
  sourcePartition: number;
  sourceOffset: bigint;
  value: string;
}

/** Waits until at least `atLeast` dead letters are there, then reads on for `settleMs` to catch any extra copy. */
export async function readDeadLetters(topic: string, atLeast: number, timeoutMs = 30_000, settleMs = 1500, bootstrap = KAFKA): Promise<DeadLetterRead[]> {
  const c = new Consumer({ "bootstrap.servers": bootstrap, "group.id": uniqueName("dlq-reader") }, { headers: true });
  c.subscribe([topic]);
  const got: DeadLetterRead[] = [];
  const dec = new TextDecoder();
  const drain = async () => {
    for (const m of await c.poll(1000)) {
      const h = Object.fromEntries((m.headers ?? []).map((x) => [x.key, dec.decode(x.value ?? new Uint8Array())]));
      got.push({
        reason: h.dlq_reason ?? "",
        detail: h.dlq_detail ?? "",
        sourceTopic: h.source_topic ?? "",
        sourcePartition: Number(h.source_partition),
        sourceOffset: BigInt(h.source_offset ?? "-1"),
        value: m.value ? dec.decode(m.value) : "",
      });
    }
  };
  try {
    await waitFor(`${atLeast} dead letters on ${topic}`, timeoutMs, async () => {
      await drain();
      return got.length >= atLeast;
    });
    const until = Date.now() + settleMs;
    while (Date.now() < until) {
      await drain();
      await Bun.sleep(100);
    }
  } finally {
    await c.close();
  }
  return got;
}
