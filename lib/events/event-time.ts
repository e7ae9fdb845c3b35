/**
 * Event time, corrected for the client's clock. Pure: the server's clock arrives as `nowMs`, so tests choose it.
 *
 * A client's clock may be hours off. The SDK stamps each event with its own clock (`timestamp`) and the request
 * with the moment it was sent (`sent_at`); the difference between our clock and `sent_at` is the skew. It is
 * computed ONCE per request and added to every event, so the gaps between one client's events - and therefore
 * their order - are exactly what the client recorded.
 */

/** Events dated further than this into the future are clamped to `now` (a broken clock, not a real plan). */
export const MAX_FUTURE_MS = 23 * 60 * 60 * 1000;
/**
 * What ClickHouse's `DateTime` (seconds since 1970 in a UInt32) holds. Outside it ClickHouse 18.16 stores a
 * wrapped or zeroed date without a word and current ClickHouse saturates; a year outside 0-9999 is not even text
 * either parses. So event times outside this range are not used at all.
 */
export const MIN_EVENT_MS = 0;
export const MAX_EVENT_MS = 4_294_967_295_000;

const EPOCH_DIGITS = /^\d{10,16}$/;

/** Epoch milliseconds from an ISO-8601 string, an epoch-ms number or an epoch-ms digit string; NaN otherwise. */
export function parseTime(value: string | number | null | undefined): number {
  if (value === null || value === undefined) return Number.NaN;
  if (typeof value === "number") return Number.isFinite(value) ? value : Number.NaN;
  if (EPOCH_DIGITS.test(value)) return Number(value);
  return Date.parse(value);
}

/** Server time minus the client's send time; 0 when the client did not say when it sent (or said nonsense). */
export function clockSkewMs(sentAt: string | number | null | undefined, nowMs: number): number {
  const sent = parseTime(sentAt);
  return Number.isNaN(sent) ? 0 : nowMs - sent;
}

export type TimeNote = "unparseable" | "out_of_range" | "clamped_future";

export interface EventTime {
  ms: number;
  /** Why the client's time was not used, for a marker property on the event. */
  note?: TimeNote;
}

/**
 * - `offset` (ms before sending, legacy posthog-js) wins: `now - offset`, already relative to our clock;
 * - no timestamp: now;
 * - unparseable timestamp: now, noted;
 * - otherwise `timestamp + skew`;
 * - a result outside what `DateTime` holds (before 1970-01-01T00:00:00Z, after 2106-02-07T06:28:15Z): now, noted;
 * - more than 23 h ahead: clamped to now, noted;
 * - a fraction of a millisecond (epoch-ms numbers, offsets) is dropped.
 */
export function resolveEventTime(
  event: { timestamp?: string | number | null; offset?: number | null },
  nowMs: number,
  skewMs: number,
): EventTime {
  let ms: number;
  if (event.offset !== undefined && event.offset !== null) {
    ms = nowMs - event.offset;
  } else if (event.timestamp === undefined || event.timestamp === null) {
    return { ms: nowMs };
  } else {
    const parsed = parseTime(event.timestamp);
    if (Number.isNaN(parsed)) return { ms: nowMs, note: "unparseable" };
    ms = parsed + skewMs;
  }
  // Written so that NaN (a non-finite offset or skew) fails it too.
  if (!(ms >= MIN_EVENT_MS && ms <= MAX_EVENT_MS)) return { ms: nowMs, note: "out_of_range" };
  if (ms - nowMs > MAX_FUTURE_MS) return { ms: nowMs, note: "clamped_future" };
  // Whole milliseconds, as Date keeps them: a UUIDv7 is made from this and refuses a fraction (1714564800000.5).
  return { ms: Math.floor(ms) };
}
