/**
 * One batch on its way to ClickHouse: rows, the Kafka message each row came from (what goes to the DLQ when
 * ClickHouse rejects that row), their size, and the next offset to commit per partition.
 */
import type { ConsumedMessage, TopicPartitionOffset } from "../../lib/kafka/types.ts";
import type { EventRow } from "../../lib/events/event-row.ts";
import type { PersonUpdate } from "./persons/person-update.ts";

export interface BatchLimits {
  maxRows: number;
  maxBytes: number;
  lingerMs: number;
}

export class Batch {
  readonly rows: EventRow[] = [];
  /** sources[i] is the message rows[i] was decoded from. */
  readonly sources: ConsumedMessage[] = [];
  bytes = 0;
  /** Person updates of the batch's events, in Kafka order (applied before the rows are inserted). */
  readonly personUpdates: PersonUpdate[] = [];
  private readonly next = new Map<string, TopicPartitionOffset>();
  private firstAt = 0;

  constructor(private readonly now: () => number = performance.now.bind(performance)) {}

  get size(): number {
    return this.rows.length;
  }

  /** Messages seen (rows or DLQ'd) since the batch started: offsets to commit exist even without rows. */
  get empty(): boolean {
    return this.next.size === 0;
  }

  /** Adds a message: with its row, or without one (it goes to the DLQ) so that its offset is committed. */
  add(m: ConsumedMessage, row: EventRow | null, bytes: number): void {
    const { topic, partition, offset } = m;
    if (this.next.size === 0) this.firstAt = this.now();
    if (row) {
      this.rows.push(row);
      this.sources.push(m);
    }
    this.bytes += bytes;
    const k = `${topic}:${partition}`;
    const cur = this.next.get(k);
    if (!cur || cur.offset <= offset) this.next.set(k, { topic, partition, offset: offset + 1n });
  }

  full(limits: BatchLimits): boolean {
    return this.rows.length >= limits.maxRows || this.bytes >= limits.maxBytes;
  }

  due(limits: BatchLimits): boolean {
    return !this.empty && (this.full(limits) || this.now() - this.firstAt >= limits.lingerMs);
  }

  offsets(): TopicPartitionOffset[] {
    return [...this.next.values()];
  }
}
