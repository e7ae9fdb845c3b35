/**
 * `make chaos`: the full fault schedule on a private stack (see chaos.ts), the per-fault table, and
 * bench/results/chaos-<time>.json. `CHAOS=short` runs the short schedule `make test` runs.
 * Exits 1 when a check fails (events lost, trend total off, DLQ not exactly the poison events).
 */
import { writeResult } from "../lib/results.ts";
import { faultTable, FULL, runChaos, SHORT } from "./chaos.ts";

const short = process.env.CHAOS === "short";
const figures = await runChaos(short ? SHORT : FULL);
console.log(`\n${faultTable(figures)}\n`);
console.log(
  `acknowledged ${figures.acknowledged} (unacknowledged batches ${figures.unacknowledged}), missing ${figures.missing}; ` +
    `load events stored ${figures.stored_distinct}, of them acknowledged ${figures.acknowledged_stored}, trend total ${figures.trend_total}; ` +
    `poison ${figures.poison_sent}, DLQ ${figures.dlq_messages} (${figures.dlq_distinct_poison} distinct poison, ${figures.dlq_unexpected} unexpected)`,
);
const path = await writeResult(short ? "chaos-short" : "chaos", figures);
console.log(`${figures.ok ? "PASS" : "FAIL"}  ${path}`);
process.exit(figures.ok ? 0 : 1);
