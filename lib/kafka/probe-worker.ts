/** Worker side of probe.ts: owns one ClusterClient and answers blocking queries one at a time. */
import { ClusterClient } from "./metadata.ts";

declare const self: Worker;
let client: ClusterClient | undefined;

self.onmessage = (e: MessageEvent) => {
  const msg = e.data;
  if (msg.init) {
    client = new ClusterClient(msg.init);
    return;
  }
  try {
    if (!client) throw new Error("probe not initialised");
    const result = msg.op === "metadata" ? client.metadata(msg.timeoutMs, msg.topic) : client.lag(msg.group, msg.topic, msg.timeoutMs);
    self.postMessage({ id: msg.id, ok: true, result });
  } catch (err) {
    self.postMessage({ id: msg.id, ok: false, error: err instanceof Error ? err.message : String(err) });
  }
};
