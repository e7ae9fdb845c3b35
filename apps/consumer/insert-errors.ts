/**
 * Why a ClickHouse insert failed, decided from the server's error code (`Code: NN` in the body on 18.16, the
 * X-ClickHouse-Exception-Code header on current servers; both reach us through the client's error message):
 *
 * - `rows`: the data is at fault (a value that does not parse, is out of range, a bad escape such as a lone
 *   surrogate, more partitions in one insert than the server allows). Retrying the same rows can never succeed:
 *   the batch is split until the offending rows are isolated (apps/consumer/isolate.ts).
 * - `transient`: the server or the way to it is at fault (no connection, timeouts, overload, too many parts,
 *   read-only or missing replicas, and configuration problems such as an unknown table or a wrong password that
 *   every row would hit). Retry with backoff while the partitions pause; never dead-letter.
 * - `unknown`: the server answered with a code in neither list (the generic 1000-1002 among them: they can come
 *   from the rows or the server). Retried like a transient failure for a bounded time
 *   (CONSUMER_UNKNOWN_ERROR_RETRY_MS), then treated like `rows`.
 *
 * A failure without any code (a refused connection, a reset, a proxy's 502, a client-side timeout) is always
 * transient: only the server itself can say that the rows are wrong.
 *
 * Codes from ClickHouse's src/Common/ErrorCodes.cpp; the numbers are the same in 18.16 and current releases.
 */
import { clickHouseErrorCode } from "../../lib/clickhouse/run.ts";

export type InsertFailureKind = "rows" | "transient" | "unknown";

export interface InsertFailure {
  kind: InsertFailureKind;
  /** The server's error code, when it answered with one. */
  code?: number;
  /** The server's message (or the client's), one line, as stored in the DLQ header. */
  message: string;
}

/** Caused by the rows themselves. */
export const ROW_ERROR_CODES: ReadonlyMap<number, string> = new Map([
  [6, "CANNOT_PARSE_TEXT"],
  [25, "CANNOT_PARSE_ESCAPE_SEQUENCE"],
  [26, "CANNOT_PARSE_QUOTED_STRING"],
  [27, "CANNOT_PARSE_INPUT_ASSERTION_FAILED"],
  [38, "CANNOT_PARSE_DATE"],
  [41, "CANNOT_PARSE_DATETIME"],
  [53, "TYPE_MISMATCH"],
  [69, "ARGUMENT_OUT_OF_BOUND"],
  [70, "CANNOT_CONVERT_TYPE"],
  [72, "CANNOT_PARSE_NUMBER"],
  [117, "INCORRECT_DATA"],
  [131, "TOO_LARGE_STRING_SIZE"],
  [190, "SIZES_OF_ARRAYS_DOESNT_MATCH"],
  [321, "VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE"],
  [349, "CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN"],
  [376, "CANNOT_PARSE_UUID"],
  [407, "DECIMAL_OVERFLOW"],
]);

/** Caused by the server, the network or the configuration: retrying (later) is right. */
export const TRANSIENT_ERROR_CODES: ReadonlyMap<number, string> = new Map([
  // A request body cut short on the way (the rows were whole when sent) and the server's own file and memory
  // failures: the same rows pass once the server or the connection is well again.
  [3, "UNEXPECTED_END_OF_FILE"],
  [32, "ATTEMPT_TO_READ_AFTER_EOF"],
  [33, "CANNOT_READ_ALL_DATA"],
  [74, "CANNOT_READ_FROM_FILE_DESCRIPTOR"],
  [75, "CANNOT_WRITE_TO_FILE_DESCRIPTOR"],
  [76, "CANNOT_OPEN_FILE"],
  [173, "CANNOT_ALLOCATE_MEMORY"],
  [16, "NO_SUCH_COLUMN_IN_TABLE"],
  [60, "UNKNOWN_TABLE"],
  [81, "UNKNOWN_DATABASE"],
  [159, "TIMEOUT_EXCEEDED"],
  [160, "TOO_SLOW"],
  [164, "READONLY"],
  [192, "UNKNOWN_USER"],
  [193, "WRONG_PASSWORD"],
  [194, "REQUIRED_PASSWORD"],
  [195, "IP_ADDRESS_NOT_ALLOWED"],
  [202, "TOO_MANY_SIMULTANEOUS_QUERIES"],
  [203, "NO_FREE_CONNECTION"],
  [209, "SOCKET_TIMEOUT"],
  [210, "NETWORK_ERROR"],
  [225, "NO_ZOOKEEPER"],
  [236, "ABORTED"],
  [241, "MEMORY_LIMIT_EXCEEDED"],
  [242, "TABLE_IS_READ_ONLY"],
  [243, "NOT_ENOUGH_SPACE"],
  [252, "TOO_MANY_PARTS"],
  [279, "ALL_CONNECTION_TRIES_FAILED"],
  [285, "TOO_FEW_LIVE_REPLICAS"],
  [286, "UNSATISFIED_QUORUM_FOR_PREVIOUS_WRITE"],
  [291, "DATABASE_ACCESS_DENIED"],
  [319, "UNKNOWN_STATUS_OF_INSERT"],
  [394, "QUERY_WAS_CANCELLED"],
  [425, "SYSTEM_ERROR"],
  [439, "CANNOT_SCHEDULE_TASK"],
  [497, "ACCESS_DENIED"],
  [516, "AUTHENTICATION_FAILED"],
  [999, "KEEPER_EXCEPTION"],
]);

/**
 * TOO_MANY_PARTS (252) is also what current servers answer when one insert spans more partitions than
 * max_partitions_per_insert_block: that one is caused by the rows (their months), and smaller inserts pass.
 */
const TOO_MANY_PARTITIONS = /Too many partitions for single INSERT block/i;

export function classifyInsertError(err: unknown): InsertFailure {
  const message = oneLine(err instanceof Error ? err.message : String(err));
  const raw = clickHouseErrorCode(err) ?? /\bCode: (\d+)/.exec(message)?.[1];
  const code = raw === undefined ? Number.NaN : Number(raw);
  if (!Number.isInteger(code)) return { kind: "transient", message };
  if (code === 252 && TOO_MANY_PARTITIONS.test(message)) return { kind: "rows", code, message };
  if (ROW_ERROR_CODES.has(code)) return { kind: "rows", code, message };
  if (TRANSIENT_ERROR_CODES.has(code)) return { kind: "transient", code, message };
  return { kind: "unknown", code, message };
}

function oneLine(s: string): string {
  return s.replace(/\s+/g, " ").trim().slice(0, 1000);
}
