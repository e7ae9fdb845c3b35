/**
 * Runs the blocking cluster queries of metadata.ts in a worker thread, so /ready and lag metrics never stall the
 * event loop that serves requests. One worker per probe, one ClusterClient inside it, requests answered in order.
 */
import type { KafkaProps } from "./producer.ts";
import type { ClusterMetadata } from "./metadata.ts";
import type { PartitionLag } from "./types.ts";

type Request = { id: number; op: "metadata"; timeoutMs: number; topic?: string } | { id: number; op: "lag"; timeoutMs: number; group: string; topic: string };
type DistributiveOmit<T, K extends keyof T> = T extends unknown ? Omit<T, K> : never;
type Reply = { id: number; ok: true; result: unknown } | { id: number; ok: false; error: string };

export class KafkaProbe {
  private readonly worker: Worker;
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private nextId = 1;

  constructor(props: KafkaProps) {
    this.worker = new Worker(new URL("./probe-worker.ts", import.meta.url).href);
    this.worker.postMessage({ init: props });
    this.worker.onmessage = (e: MessageEvent<Reply>) => {
      const w = this.waiting.get(e.data.id);
      if (!w) return;
      this.waiting.delete(e.data.id);
      if (e.data.ok) w.resolve(e.data.result);
      else w.reject(new Error(e.data.error));
    };
    // The worker must not keep a finished process alive.
    this.worker.unref();
  }

  /** Resolves when a broker answered a metadata request within `timeoutMs`. */
  metadata(timeoutMs: number, topic?: string): Promise<ClusterMetadata> {
    return this.ask({ op: "metadata", timeoutMs, topic }) as Promise<ClusterMetadata>;
  }

  lag(group: string, topic: string, timeoutMs: number): Promise<PartitionLag[]> {
    return this.ask({ op: "lag", group, topic, timeoutMs }) as Promise<PartitionLag[]>;
  }

  close(): void {
    this.worker.terminate();
    for (const w of this.waiting.values()) w.reject(new Error("probe closed"));
    this.waiting.clear();
  }

  private ask(req: DistributiveOmit<Request, "id">): Promise<unknown> {
    const id = this.nextId++;
    const { promise, resolve, reject } = Promise.withResolvers<unknown>();
    this.waiting.set(id, { resolve, reject });
    this.worker.postMessage({ ...req, id });
    return promise;
  }
}
